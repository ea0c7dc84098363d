// backplane/envelope.hpp - what crosses the broker.
//
// Every message a hub publishes is wrapped in an envelope that says where it
// came from and whom it is for, so that the hubs receiving it can route it to
// their local connections without parsing the application's payload.
//
// Wire format, version 1 (all integers are LEB128 varints):
//
//   byte 0      magic 'b' (0x62)
//   byte 1      version (1)
//   byte 2      kind: 1 broadcast, 2 room, 3 user
//   varint n    origin length, then n bytes: the publishing hub's instance id
//   varint n    target length, then n bytes: room or user (empty for broadcast)
//   varint      excluded connection on the origin hub (0: none)
//   varint      sequence number assigned by the origin hub
//   rest        the payload, opaque to the library
//
// decode() never reads past its input: every length is checked against what
// remains, and truncated or inconsistent input yields an error.
#ifndef BACKPLANE_ENVELOPE_HPP
#define BACKPLANE_ENVELOPE_HPP

#include <backplane/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace backplane {

/// Whom a message is for.
enum class message_kind : std::uint8_t {
    broadcast = 1, ///< every connection, through the global channel
    room = 2,      ///< every member of a room
    user = 3,      ///< every connection of a user
};

/// A decoded envelope. The views point into the buffer it was decoded from.
struct envelope {
    message_kind kind = message_kind::broadcast;
    std::string_view origin;      ///< instance id of the publishing hub
    std::string_view target;      ///< room or user name; empty for broadcast
    std::uint64_t exclude = 0;    ///< connection id on `origin` to skip; 0 for none
    std::uint64_t sequence = 0;   ///< assigned by the origin, increasing
    std::string_view payload;     ///< the application's bytes
};

inline constexpr unsigned char envelope_magic = 0x62;
inline constexpr unsigned char envelope_version = 1;

namespace detail {

inline void put_varint(std::string& out, std::uint64_t v)
{
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

// Reads a varint from [p, end); false on truncation or more than 64 bits.
inline bool get_varint(const unsigned char*& p, const unsigned char* end, std::uint64_t& v) noexcept
{
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end)
            return false;
        const unsigned char b = *p++;
        if (shift == 63 && b > 1) // the tenth byte may carry one bit only
            return false;
        v |= std::uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

inline bool get_bytes(const unsigned char*& p, const unsigned char* end, std::string_view& s) noexcept
{
    std::uint64_t n;
    if (!get_varint(p, end, n) || n > std::uint64_t(end - p))
        return false;
    s = {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
    p += n;
    return true;
}

} // namespace detail

/// Appends the encoding of `e` to `out`.
inline void encode(const envelope& e, std::string& out)
{
    out.push_back(static_cast<char>(envelope_magic));
    out.push_back(static_cast<char>(envelope_version));
    out.push_back(static_cast<char>(e.kind));
    detail::put_varint(out, e.origin.size());
    out.append(e.origin);
    detail::put_varint(out, e.target.size());
    out.append(e.target);
    detail::put_varint(out, e.exclude);
    detail::put_varint(out, e.sequence);
    out.append(e.payload);
}

/// Decodes `in` into `e`, whose views then point into `in`.
/// @returns error::unsupported_envelope_version for another version of the
/// format, error::malformed_envelope for anything truncated or inconsistent
/// (bad magic, unknown kind, empty origin, a target where none belongs or none
/// where one must be); otherwise an empty error code.
inline std::error_code decode(std::string_view in, envelope& e) noexcept
{
    auto p = reinterpret_cast<const unsigned char*>(in.data());
    const auto end = p + in.size();
    if (in.size() < 3 || p[0] != envelope_magic)
        return error::malformed_envelope;
    if (p[1] != envelope_version)
        return error::unsupported_envelope_version;
    if (p[2] < 1 || p[2] > 3)
        return error::malformed_envelope;
    e.kind = static_cast<message_kind>(p[2]);
    p += 3;
    if (!detail::get_bytes(p, end, e.origin) || e.origin.empty()
        || !detail::get_bytes(p, end, e.target)
        || e.target.empty() != (e.kind == message_kind::broadcast)
        || !detail::get_varint(p, end, e.exclude)
        || !detail::get_varint(p, end, e.sequence))
        return error::malformed_envelope;
    e.payload = {reinterpret_cast<const char*>(p), static_cast<std::size_t>(end - p)};
    return {};
}

} // namespace backplane

#endif
