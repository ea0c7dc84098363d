// backplane/redis/slot.hpp - which of Redis Cluster's 16,384 slots a key or
// a channel belongs to.
//
//   redis::hash_slot("chat:room:lobby")            // CRC16 of the whole name
//   redis::hash_slot("stream:{chat:room:lobby}")   // of "chat:room:lobby" alone
//
// As the Redis Cluster specification defines it (and `CLUSTER KEYSLOT`
// answers): CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key,
// modulo 16384. If the key holds a "{" and, after it, a "}" with at least one
// byte between them, only the bytes between the first "{" and the first "}"
// after it are hashed: the hash tag, which puts keys that must be touched by
// one script (a stream and its inbox) in one slot. Sharded Pub/Sub channels
// (SSUBSCRIBE, SPUBLISH) are placed by the same function.
//
// No I/O, no allocation; valid C++17 and C++20.
#ifndef BACKPLANE_REDIS_SLOT_HPP
#define BACKPLANE_REDIS_SLOT_HPP

#include <array>
#include <cstdint>
#include <string_view>

namespace backplane::redis {

/// Slots in a Redis Cluster.
inline constexpr std::uint16_t slot_count = 16384;

namespace detail {

// CRC16-XMODEM a byte at a time, from a table built at compile time.
inline constexpr std::array<std::uint16_t, 256> crc16_table = [] {
    std::array<std::uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; ++i) {
        unsigned crc = i << 8;
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
        t[i] = static_cast<std::uint16_t>(crc);
    }
    return t;
}();

constexpr std::uint16_t crc16(std::string_view bytes) noexcept
{
    unsigned crc = 0;
    for (const char c : bytes)
        crc = ((crc << 8) ^ crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]) & 0xffff;
    return static_cast<std::uint16_t>(crc);
}

} // namespace detail

/// The part of `key` that is hashed: its hash tag if it has one, else all of it.
constexpr std::string_view hash_tag(std::string_view key) noexcept
{
    const auto open = key.find('{');
    if (open == std::string_view::npos)
        return key;
    const auto close = key.find('}', open + 1);
    if (close == std::string_view::npos || close == open + 1)
        return key;
    return key.substr(open + 1, close - open - 1);
}

/// The cluster slot of a key or a sharded channel.
constexpr std::uint16_t hash_slot(std::string_view key) noexcept
{
    return static_cast<std::uint16_t>(detail::crc16(hash_tag(key)) % slot_count);
}

} // namespace backplane::redis

#endif
