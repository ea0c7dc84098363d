// backplane/query.hpp - values from the query of a request target.
//
// A WebSocket client names itself in the handshake's URL
// ("/ws?user=alice&last_id=1733011200000-0"): these read it, the same way
// for every transport. Values are percent-decoded, '+' as a space, as HTML
// forms and URLSearchParams write them.
#ifndef BACKPLANE_QUERY_HPP
#define BACKPLANE_QUERY_HPP

#include <optional>
#include <string>
#include <string_view>

namespace backplane {

/// Decodes the %XX escapes of `in` into `out`, and '+' as a space when
/// `plus_is_space`. @returns false on a broken escape.
inline bool percent_decode(std::string_view in, std::string& out, bool plus_is_space = false)
{
    const auto hex = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+' && plus_is_space) {
            out.push_back(' ');
        } else if (in[i] != '%') {
            out.push_back(in[i]);
        } else {
            if (i + 2 >= in.size())
                return false;
            const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        }
    }
    return true;
}

/// The path of a request target: what precedes its query.
inline std::string_view target_path(std::string_view target)
{
    return target.substr(0, target.find('?'));
}

/// The decoded value of the first `key=` in the query of `target`; nullopt
/// if there is none or its escapes are broken.
inline std::optional<std::string> query_value(std::string_view target, std::string_view key)
{
    const auto q = target.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=') {
            std::string value;
            if (!percent_decode(pair.substr(key.size() + 1), value, true))
                return std::nullopt;
            return value;
        }
    }
    return std::nullopt;
}

} // namespace backplane

#endif
