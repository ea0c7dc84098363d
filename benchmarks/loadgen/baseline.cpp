// backplane-baseline: the least a WebSocket broadcaster can do, as a yardstick
// for backplane-instance under the same load generator.
//
//   build/benchmarks/loadgen/backplane-baseline --port 8090
//
// One process, one thread, epoll, no backplane, no JSON: every text message a
// client sends goes back, as it is, to every connected client. What it takes
// per message is what this machine's kernel and loopback take; the gap between
// its figures and backplane-instance's is what the backplane, the protocol and
// the library cost. It speaks just enough WebSocket for backplane-loadgen:
// the handshake, a welcome text frame, masked text frames in, close and ping.
//
// The messages read in one pass over the ready sockets leave together: one
// send per connection carries them all (what backplane's transport does at the
// end of a turn). A connection whose socket is full keeps the rest in its own
// queue until the socket has room.
#include <backplane/detail/ws_frame.hpp>

#include <websocketpp/base64/base64.hpp>
#include <websocketpp/sha1/sha1.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

namespace ws = backplane::detail::ws;

struct client {
    std::string in, out; // bytes read and not yet parsed; bytes the socket has not taken
    bool open = false;   // handshake done
};

std::string accept_key(std::string_view key)
{
    const std::string s = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char hash[20];
    websocketpp::sha1::calc(s.data(), s.size(), hash);
    return websocketpp::base64_encode(hash, sizeof hash);
}

class server {
public:
    explicit server(int port)
    {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        const int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 4096) != 0) {
            std::perror("backplane-baseline: listen");
            std::exit(1);
        }
        epoll_ = ::epoll_create1(0);
        watch(listener_, EPOLLIN);
        std::printf("listening on %d\n", port);
        std::fflush(stdout);
    }

    [[noreturn]] void run()
    {
        epoll_event events[512];
        for (;;) {
            const int n = ::epoll_wait(epoll_, events, 512, -1);
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == listener_)
                    accept_all();
                else if (events[i].events & EPOLLOUT)
                    write_queued(fd);
                else
                    read(fd);
            }
            broadcast();
        }
    }

private:
    void watch(int fd, std::uint32_t events, int op = EPOLL_CTL_ADD)
    {
        epoll_event e{};
        e.events = events;
        e.data.fd = fd;
        ::epoll_ctl(epoll_, op, fd, &e);
    }

    void accept_all()
    {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK);
            if (fd < 0)
                return;
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            clients_[fd];
            watch(fd, EPOLLIN);
        }
    }

    void drop(int fd)
    {
        ::close(fd);
        clients_.erase(fd);
    }

    void read(int fd)
    {
        client& c = clients_[fd];
        char buf[16384];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return drop(fd);
        if (n < 0)
            return;
        c.in.append(buf, static_cast<std::size_t>(n));
        if (!c.open) {
            const auto end = c.in.find("\r\n\r\n");
            if (end == std::string::npos)
                return;
            const auto k = c.in.find("Sec-WebSocket-Key: ");
            if (k == std::string::npos || k > end)
                return drop(fd);
            const auto key_end = c.in.find("\r\n", k);
            const std::string reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Accept: " + accept_key(std::string_view(c.in).substr(k + 19, key_end - k - 19))
                + "\r\n\r\n" + ws::encode_frame(ws::text, "{\"type\":\"welcome\"}");
            c.in.erase(0, end + 4);
            c.open = true;
            if (!send(fd, c, reply))
                return;
        }
        parse(fd, c);
    }

    // Client frames are masked; a text frame joins this pass's batch.
    void parse(int fd, client& c)
    {
        std::size_t at = 0;
        for (;;) {
            const auto h = ws::decode_header(c.in.data() + at, c.in.size() - at);
            if (!h)
                break;
            if (h->length > 65536)
                return drop(fd); // no client of the benchmark sends that much
            const auto len = static_cast<std::size_t>(h->length);
            if (c.in.size() - at - h->size < len)
                break;
            std::string payload(c.in, at + h->size, len);
            if (h->mask)
                ws::apply_mask(payload.data(), len, *h->mask);
            at += h->size + len;
            if (h->op == ws::text)
                batch_ += ws::encode_frame(ws::text, payload);
            else if (h->op == ws::ping && !send(fd, c, ws::encode_frame(ws::pong, payload)))
                return;
            else if (h->op == ws::close)
                return drop(fd);
        }
        c.in.erase(0, at);
    }

    void broadcast()
    {
        if (batch_.empty())
            return;
        for (auto it = clients_.begin(); it != clients_.end();) {
            const int fd = it->first;
            client& c = it->second;
            ++it; // send may drop this one
            if (c.open)
                send(fd, c, batch_);
        }
        batch_.clear();
    }

    // False if the connection failed and is gone.
    bool send(int fd, client& c, std::string_view bytes)
    {
        if (!c.out.empty()) {
            c.out.append(bytes);
            return true;
        }
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            drop(fd);
            return false;
        }
        const std::size_t sent = n < 0 ? 0 : static_cast<std::size_t>(n);
        if (sent < bytes.size()) {
            c.out.assign(bytes.substr(sent));
            watch(fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        }
        return true;
    }

    void write_queued(int fd)
    {
        client& c = clients_[fd];
        const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN)
            return drop(fd);
        c.out.erase(0, n < 0 ? 0 : static_cast<std::size_t>(n));
        if (c.out.empty())
            watch(fd, EPOLLIN, EPOLL_CTL_MOD);
    }

    int listener_ = -1, epoll_ = -1;
    std::unordered_map<int, client> clients_;
    std::string batch_; // frames read in this pass, to every client
};

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3 || std::strcmp(argv[1], "--port") != 0) {
        std::fprintf(stderr, "usage: backplane-baseline --port N\n");
        return 2;
    }
    server(std::atoi(argv[2])).run();
}
