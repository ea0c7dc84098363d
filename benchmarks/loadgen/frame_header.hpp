// WebSocket frames (RFC 6455, 5.2) for the benchmark's own minimal client
// and server: a final frame with its header, and the lengths of one read.
#ifndef BACKPLANE_BENCHMARKS_FRAME_HEADER_HPP
#define BACKPLANE_BENCHMARKS_FRAME_HEADER_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

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

// A final frame of `opcode` carrying `payload`. A client's frame is masked
// (`masked`) with the zero key, so the payload goes as it is.
inline std::string make_frame(int opcode, std::string_view payload, bool masked)
{
    const char mask = masked ? char(0x80) : char(0);
    std::string f(1, static_cast<char>(0x80 | opcode));
    if (payload.size() < 126) {
        f += static_cast<char>(mask | static_cast<char>(payload.size()));
    } else if (payload.size() < 65536) {
        f += static_cast<char>(mask | 126);
        f += static_cast<char>(payload.size() >> 8);
        f += static_cast<char>(payload.size() & 0xff);
    } else {
        f += static_cast<char>(mask | 127);
        for (int i = 7; i >= 0; --i)
            f += static_cast<char>((payload.size() >> (8 * i)) & 0xff);
    }
    if (masked)
        f.append(4, '\0');
    return f.append(payload);
}

#endif
