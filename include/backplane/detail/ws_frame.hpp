// backplane/detail/ws_frame.hpp - WebSocket frame headers (RFC 6455, 5.2):
// writing one, and reading one from bytes that may not all have arrived.
//
// The websocketpp transport writes the headers of the frames it prepares
// with it; the load generator, the bare broadcaster of the benchmarks and
// the tests' client, which speak WebSocket on plain sockets, whole frames.
#ifndef BACKPLANE_DETAIL_WS_FRAME_HPP
#define BACKPLANE_DETAIL_WS_FRAME_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace backplane::detail::ws {

/// Frame opcodes.
enum opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xa,
};

/// A client's masking key, in the order of the bytes on the wire.
using masking_key = std::array<std::uint8_t, 4>;

/// A header as it goes on the wire: at most 2 bytes, 8 of extended length
/// and 4 of masking key.
struct encoded_header {
    std::array<char, 14> bytes{};
    std::size_t size = 0;

    std::string_view view() const noexcept { return {bytes.data(), size}; }
};

/// The header of a frame of `op` with `length` bytes of payload; with a
/// `mask` (a client's frame), the mask bit and the key. `fin` false: a
/// fragment, more of the message follows.
inline encoded_header encode_header(std::uint8_t op, std::uint64_t length,
                                    const std::optional<masking_key>& mask = std::nullopt, bool fin = true) noexcept
{
    encoded_header h;
    auto put = [&h](unsigned v) { h.bytes[h.size++] = static_cast<char>(v & 0xff); };
    put((fin ? 0x80u : 0u) | (op & 0x0fu));
    const unsigned mask_bit = mask ? 0x80u : 0u;
    if (length < 126) {
        put(mask_bit | static_cast<unsigned>(length));
    } else if (length < 65536) {
        put(mask_bit | 126u);
        put(static_cast<unsigned>(length >> 8));
        put(static_cast<unsigned>(length));
    } else {
        put(mask_bit | 127u);
        for (int i = 7; i >= 0; --i)
            put(static_cast<unsigned>(length >> (8 * i)));
    }
    if (mask)
        for (const auto b : *mask)
            put(b);
    return h;
}

/// XORs `n` bytes at `data` with `key`: masks a payload, or unmasks it.
inline void apply_mask(char* data, std::size_t n, const masking_key& key) noexcept
{
    for (std::size_t i = 0; i < n; ++i)
        data[i] = static_cast<char>(data[i] ^ static_cast<char>(key[i & 3]));
}

/// A whole frame of `op` carrying `payload`, masked with `mask` if given.
inline std::string encode_frame(std::uint8_t op, std::string_view payload,
                                const std::optional<masking_key>& mask = std::nullopt, bool fin = true)
{
    const auto h = encode_header(op, payload.size(), mask, fin);
    std::string f;
    f.reserve(h.size + payload.size());
    f.append(h.view()).append(payload);
    /* The load generator masks with the zero key, which changes nothing:
       its frames skip the pass over the payload. */
    if (mask && *mask != masking_key{})
        apply_mask(f.data() + h.size, payload.size(), *mask);
    return f;
}

/// A header as read.
struct header {
    bool fin = true;
    std::uint8_t op = 0;
    std::uint64_t length = 0;        ///< bytes of payload
    std::size_t size = 0;            ///< bytes of header, masking key included
    std::optional<masking_key> mask; ///< a client's frame's key
};

/// The header at the start of `data`, of which `available` bytes have
/// arrived; nullopt until it is whole.
inline std::optional<header> decode_header(const void* data, std::size_t available) noexcept
{
    const auto* b = static_cast<const unsigned char*>(data);
    if (available < 2)
        return std::nullopt;
    header h;
    h.fin = (b[0] & 0x80) != 0;
    h.op = b[0] & 0x0f;
    const bool masked = (b[1] & 0x80) != 0;
    h.length = b[1] & 0x7f;
    h.size = 2;
    if (h.length == 126) {
        h.size = 4;
    } else if (h.length == 127) {
        h.size = 10;
    }
    if (available < h.size + (masked ? 4 : 0))
        return std::nullopt;
    if (h.size > 2) {
        h.length = 0;
        for (std::size_t i = 2; i < h.size; ++i)
            h.length = (h.length << 8) | b[i];
    }
    if (masked) {
        h.mask = masking_key{b[h.size], b[h.size + 1], b[h.size + 2], b[h.size + 3]};
        h.size += 4;
    }
    return h;
}

} // namespace backplane::detail::ws

#endif
