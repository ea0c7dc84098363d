// backplane/detail/url.hpp - the pieces of a URL that need decoding: percent
// escapes (RFC 3986, 2.1) and query parameters.
//
// One home for both: the Redis URL's user and password, and the query of an
// HTTP request (http_request::query_parameter).
#ifndef BACKPLANE_DETAIL_URL_HPP
#define BACKPLANE_DETAIL_URL_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace backplane::detail {

/// What a '+' stands for: itself (RFC 3986: a Redis URL's password), or a
/// space (a query, as HTML forms write it).
enum class plus_sign { literal, space };

/// The value of a hexadecimal digit; -1 for any other character.
inline int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Decodes `in` into `out` ("%41" -> "A"); false on a broken escape.
inline bool percent_decode(std::string_view in, std::string& out, plus_sign plus = plus_sign::literal)
{
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+' && plus == plus_sign::space) {
            out.push_back(' ');
            continue;
        }
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size())
            return false;
        const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return true;
}

/// The value of the first parameter `key` in `query` ("a=1&b=x%20y"),
/// decoded as a form's; nullopt if it is absent, or malformed.
inline std::optional<std::string> query_value(std::string_view query, std::string_view key)
{
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=') {
            std::string value;
            if (!percent_decode(pair.substr(key.size() + 1), value, plus_sign::space))
                return std::nullopt;
            return value;
        }
    }
    return std::nullopt;
}

} // namespace backplane::detail

#endif
