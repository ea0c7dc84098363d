// The length of a WebSocket frame's header and payload (RFC 6455, 5.2), for
// the benchmark's own minimal client and server.
#ifndef BACKPLANE_BENCHMARKS_FRAME_HEADER_HPP
#define BACKPLANE_BENCHMARKS_FRAME_HEADER_HPP

#include <cstddef>
#include <optional>

struct frame_header {
    std::size_t size;    // bytes of the header, without a masking key
    std::size_t payload; // bytes of the payload
};

// The header at `b`, of which `left` bytes have arrived; none until it is whole.
inline std::optional<frame_header> read_frame_header(const unsigned char* b, std::size_t left)
{
    if (left < 2)
        return std::nullopt;
    const std::size_t len = b[1] & 0x7f;
    if (len < 126)
        return frame_header{2, len};
    if (len == 126) {
        if (left < 4)
            return std::nullopt;
        return frame_header{4, (std::size_t(b[2]) << 8) | b[3]};
    }
    if (left < 10)
        return std::nullopt;
    std::size_t n = 0;
    for (int i = 0; i < 8; ++i)
        n = (n << 8) | b[2 + i];
    return frame_header{10, n};
}

#endif
