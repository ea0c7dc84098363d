// tests/e2e/ws_client.hpp - a small blocking WebSocket client for the end to
// end tests, on plain POSIX sockets so that a test controls every byte: it
// can send a malformed frame, stop reading (a slow consumer), or read with a
// deadline. Answers pings and close frames as a browser does.
#ifndef BACKPLANE_TESTS_E2E_WS_CLIENT_HPP
#define BACKPLANE_TESTS_E2E_WS_CLIENT_HPP

#include <backplane/detail/ws_frame.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace backplane::test {

namespace ws = backplane::detail::ws;

/// One frame as received.
struct ws_frame {
    int opcode = 0;       ///< 1 text, 2 binary, 8 close, 9 ping, 10 pong
    std::string payload;  ///< for a close frame: the 2-byte code, then the reason

    /// The close code of a close frame (1005 when it carries none).
    int close_code() const
    {
        return payload.size() < 2 ? 1005
                                  : (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
    }
    std::string close_reason() const { return payload.size() < 2 ? std::string() : payload.substr(2); }
};

/// Connects a TCP socket to 127.0.0.1:port; -1 on failure.
inline int connect_loopback(std::uint16_t port, int rcvbuf = 0)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0) // before connect, so that the window is small from the start
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// A plain HTTP GET; returns the whole response ("" on failure).
inline std::string http_get(std::uint16_t port, std::string_view path)
{
    const int fd = connect_loopback(port);
    if (fd < 0)
        return {};
    const std::string req = "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return {};
    }
    std::string out;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 2000) <= 0)
            break;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

/// The value of `name` in a Prometheus text body, or -1.
inline long long metric_value(const std::string& body, std::string_view name)
{
    const std::string key = "\n" + std::string(name) + "{";
    const auto at = body.find(key);
    if (at == std::string::npos)
        return -1;
    const auto sp = body.find("} ", at);
    return sp == std::string::npos ? -1 : std::stoll(body.substr(sp + 2));
}

/// A WebSocket handshake request for `path` ("/ws?user=a") on 127.0.0.1,
/// with `headers` ("Origin: x\r\n") besides those the handshake needs.
inline std::string handshake_request(std::string_view path, std::string_view headers = {})
{
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(headers)
        + "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
}

/// Sends `request` on a new connection and reads until the server closes
/// it: a refused handshake's whole answer ("" on failure).
inline std::string round_trip(std::uint16_t port, std::string_view request)
{
    const int fd = connect_loopback(port);
    if (fd < 0)
        return {};
    std::string out;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
            out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

class ws_client {
public:
    using clock = std::chrono::steady_clock;

    /// Connects and completes the handshake for `path` ("/ws?user=a"),
    /// with `headers` ("Name: value\r\n" each) added to the request.
    /// @throws std::runtime_error if either fails, with the status line.
    ws_client(std::uint16_t port, std::string_view path, int rcvbuf = 0, std::string_view headers = {})
    {
        fd_ = connect_loopback(port, rcvbuf);
        if (fd_ < 0)
            throw std::runtime_error("ws_client: cannot connect");
        write_all(handshake_request(path, headers));
        const auto deadline = clock::now() + std::chrono::seconds(5);
        std::size_t end;
        while ((end = in_.find("\r\n\r\n")) == std::string::npos)
            if (!fill(deadline))
                throw std::runtime_error("ws_client: no handshake response");
        response_ = in_.substr(0, end);
        in_.erase(0, end + 4);
        if (response_.compare(0, 12, "HTTP/1.1 101") != 0)
            throw std::runtime_error("ws_client: handshake refused: " + response_.substr(0, response_.find('\r')));
    }

    /// The handshake's answer: status line and headers.
    const std::string& response() const noexcept { return response_; }

    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;
    ~ws_client()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }

    /// Sends one frame, masked with a random key.
    void send_frame(int opcode, std::string_view payload, bool fin = true)
    {
        const std::uint32_t r = rng_();
        const ws::masking_key key{std::uint8_t(r), std::uint8_t(r >> 8), std::uint8_t(r >> 16), std::uint8_t(r >> 24)};
        write_all(ws::encode_frame(static_cast<std::uint8_t>(opcode), payload, key, fin));
    }

    void send_text(std::string_view text) { send_frame(1, text); }

    /// The next text, binary or close frame within `timeout`, answering pings
    /// (and a close frame, once) on the way; nullopt on timeout or EOF.
    std::optional<ws_frame> read(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000))
    {
        const auto deadline = clock::now() + timeout;
        for (;;) {
            if (auto f = parse()) {
                if (f->opcode == 9) {
                    reply(10, f->payload);
                    continue;
                }
                if (f->opcode == 10) {
                    pongs_.push_back(f->payload);
                    continue;
                }
                if (f->opcode == 8 && !close_sent_) {
                    close_sent_ = true;
                    reply(8, f->payload.substr(0, 2));
                }
                return f;
            }
            if (!fill(deadline))
                return std::nullopt;
        }
    }

    /// The next text frame; nullopt if another frame or nothing comes.
    std::optional<std::string> read_text(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000))
    {
        auto f = read(timeout);
        if (!f || f->opcode != 1)
            return std::nullopt;
        return f->payload;
    }

    /// The payloads of the pongs read so far.
    const std::vector<std::string>& pongs() const noexcept { return pongs_; }

    /// Whether the peer closed the TCP connection (read returned 0).
    bool eof() const noexcept { return eof_; }
    int fd() const noexcept { return fd_; }

private:
    // A pong or the close echo: best effort, the peer may be gone already.
    void reply(int opcode, std::string_view payload)
    {
        try {
            send_frame(opcode, payload);
        } catch (const std::runtime_error&) {
        }
    }

    void write_all(std::string_view data)
    {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                throw std::runtime_error("ws_client: send failed");
            }
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // Reads what is there, waiting until `deadline`; false on timeout or EOF.
    bool fill(clock::time_point deadline)
    {
        if (eof_)
            return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        pollfd p{fd_, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
            return false;
        char buf[65536];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        in_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    // One complete frame from the buffer, if there is one.
    std::optional<ws_frame> parse()
    {
        const auto h = ws::decode_header(in_.data(), in_.size());
        if (!h)
            return std::nullopt;
        if (h->mask)
            throw std::runtime_error("ws_client: the server masked a frame");
        if (in_.size() - h->size < h->length)
            return std::nullopt;
        const auto len = static_cast<std::size_t>(h->length);
        ws_frame f;
        f.opcode = h->op;
        f.payload = in_.substr(h->size, len);
        in_.erase(0, h->size + len);
        return f;
    }

    int fd_ = -1;
    std::string in_;
    std::vector<std::string> pongs_;
    std::string response_;
    bool eof_ = false;
    bool close_sent_ = false;
    std::mt19937 rng_{std::random_device{}()};
};

} // namespace backplane::test

#endif
