// libFuzzer target for the URL pieces: percent decoding and query parameters
// (backplane/detail/url.hpp) and Redis URLs (backplane/redis/config.hpp).
// Built with -DBACKPLANE_FUZZ=ON and clang:
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON && cmake --build build-fuzz --target fuzz_url
//   build-fuzz/tests/fuzz/fuzz_url -max_total_time=60 tests/fuzz/corpus/fuzz_url
//
// The input is read three ways. As an escaped string: decoding it must agree
// with a decoder written here, and the input, percent-encoded, must decode back
// to itself. As a query whose key is the text before its first '\n': the value
// found must be that of the first pair named so, and a pair put first must be
// found. As a Redis URL: what parses must be a usable config, and the config
// written back as a URL, with or without credentials, must parse to the same
// config.
#include <backplane/detail/url.hpp>
#include <backplane/redis/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace {

using backplane::detail::plus_sign;

// Every byte but the unreserved ones (RFC 3986, 2.3) as %XX.
std::string percent_encode(std::string_view in, plus_sign plus)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : in) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'
            || c == '_' || c == '~')
            out.push_back(ch);
        else if (c == ' ' && plus == plus_sign::space)
            out.push_back('+');
        else
            out.append({'%', hex[c >> 4], hex[c & 15]});
    }
    return out;
}

// Decodes as RFC 3986 says, one byte at a time; nullopt on a broken escape.
std::optional<std::string> reference_decode(std::string_view in, plus_sign plus)
{
    const auto hex = [](char c) {
        const std::string_view digits = "0123456789abcdef";
        const auto lower = c >= 'A' && c <= 'F' ? char(c - 'A' + 'a') : c;
        const auto at = digits.find(lower);
        return at == std::string_view::npos ? -1 : int(at);
    };
    std::string out;
    while (!in.empty()) {
        if (in.front() == '%') {
            if (in.size() < 3 || hex(in[1]) < 0 || hex(in[2]) < 0)
                return std::nullopt;
            out.push_back(char(hex(in[1]) * 16 + hex(in[2])));
            in.remove_prefix(3);
            continue;
        }
        out.push_back(in.front() == '+' && plus == plus_sign::space ? ' ' : in.front());
        in.remove_prefix(1);
    }
    return out;
}

void check_decoding(std::string_view in)
{
    for (auto plus : {plus_sign::literal, plus_sign::space}) {
        std::string out;
        const bool ok = backplane::detail::percent_decode(in, out, plus);
        const auto expected = reference_decode(in, plus);
        if (ok != expected.has_value() || (ok && out != *expected))
            std::abort();
        if (!backplane::detail::percent_decode(percent_encode(in, plus), out, plus) || out != in)
            std::abort();
    }
}

void check_query(std::string_view in)
{
    const auto newline = in.find('\n');
    if (newline == std::string_view::npos)
        return;
    const auto key = in.substr(0, newline), query = in.substr(newline + 1);

    // The first pair "key=..." of the query, decoded, or nullopt.
    std::optional<std::string> expected;
    for (std::string_view rest = query; !rest.empty();) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.size() > key.size() && pair.compare(0, key.size(), key) == 0 && pair[key.size()] == '=') {
            expected = reference_decode(pair.substr(key.size() + 1), plus_sign::space);
            break;
        }
    }
    if (backplane::detail::query_value(query, key) != expected)
        std::abort();

    // A key without '&' put first with the query as its value is found.
    if (key.find('&') == std::string_view::npos) {
        const std::string first = std::string(key) + "=" + percent_encode(query, plus_sign::space) + "&"
                                  + std::string(query);
        if (backplane::detail::query_value(first, key) != std::optional<std::string>(query))
            std::abort();
    }
}

// The URL that names `c`, credentials and database included.
std::string to_url(const backplane::redis::config& c)
{
    std::string url = c.unix_path.empty() ? "redis://" : "unix://";
    if (!c.password.empty())
        url += percent_encode(c.user, plus_sign::literal) + ":" + percent_encode(c.password, plus_sign::literal)
               + "@";
    if (!c.unix_path.empty())
        return url + c.unix_path + "?db=" + std::to_string(c.database);
    // A host that starts with '[' would be read as an IPv6 literal's bracket.
    url += c.host.front() == '[' ? "[" + c.host + "]" : c.host;
    return url + ":" + std::to_string(c.port) + "/" + std::to_string(c.database);
}

bool same(const backplane::redis::config& a, const backplane::redis::config& b)
{
    return a.unix_path == b.unix_path && a.host == b.host && a.port == b.port && a.user == b.user
           && a.password == b.password && a.database == b.database;
}

void check_redis_url(std::string_view in)
{
    std::error_code ec;
    const auto c = backplane::redis::parse_url(in, ec);
    if (ec) {
        if (!same(c, backplane::redis::config{}))
            std::abort();
        return;
    }
    if (c.database < 0 || c.database > 1 << 20 || (!c.user.empty() && c.password.empty()))
        std::abort();
    if (c.unix_path.empty()) {
        if (c.host.empty() || c.host.find_first_of(" /?#@") != std::string::npos || c.port == 0)
            std::abort();
    } else if (c.unix_path.front() != '/' || c.unix_path.find('?') != std::string::npos) {
        std::abort();
    }
    const auto again = backplane::redis::parse_url(to_url(c), ec);
    if (ec || !same(again, c))
        std::abort();
    // Any server may take credentials, whatever its host or path holds.
    auto with_login = c;
    with_login.user = "u@:/";
    with_login.password = "p@ss:/?";
    const auto logged_in = backplane::redis::parse_url(to_url(with_login), ec);
    if (ec || !same(logged_in, with_login))
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    check_decoding(in);
    check_query(in);
    check_redis_url(in);
    return 0;
}
