// backplane/stream_id.hpp - ids of messages kept in a broker's history.
//
// A history-keeping broker gives every message an id of the form "ms-seq"
// (two decimal integers), the form of Redis stream ids. Ids grow with each
// message of a channel, so comparing them tells what a client has missed.
#ifndef BACKPLANE_STREAM_ID_HPP
#define BACKPLANE_STREAM_ID_HPP

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

namespace backplane {

struct stream_id {
    std::uint64_t ms = 0;
    std::uint64_t seq = 0;

    friend bool operator==(const stream_id& a, const stream_id& b) noexcept
    {
        return a.ms == b.ms && a.seq == b.seq;
    }
    friend bool operator!=(const stream_id& a, const stream_id& b) noexcept { return !(a == b); }
    friend bool operator<(const stream_id& a, const stream_id& b) noexcept
    {
        return std::tie(a.ms, a.seq) < std::tie(b.ms, b.seq);
    }
    friend bool operator<=(const stream_id& a, const stream_id& b) noexcept { return !(b < a); }
    friend bool operator>(const stream_id& a, const stream_id& b) noexcept { return b < a; }

    std::string to_string() const { return std::to_string(ms) + "-" + std::to_string(seq); }
};

namespace detail {

inline bool parse_decimal(std::string_view s, std::uint64_t& v) noexcept
{
    if (s.empty() || s.size() > 20)
        return false;
    v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        const std::uint64_t d = std::uint64_t(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    return true;
}

} // namespace detail

/// Parses "ms-seq". @returns false, leaving `id` unspecified, for anything else.
inline bool parse_stream_id(std::string_view s, stream_id& id) noexcept
{
    const auto dash = s.find('-');
    return dash != std::string_view::npos && detail::parse_decimal(s.substr(0, dash), id.ms)
           && detail::parse_decimal(s.substr(dash + 1), id.seq);
}

} // namespace backplane

#endif
