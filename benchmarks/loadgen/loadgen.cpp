// backplane-loadgen: real WebSocket clients against backplane-instance.
//
//   build/benchmarks/loadgen/backplane-loadgen --target 127.0.0.1:8081 --target 127.0.0.1:8082
//       --clients 1000 --senders 1 --rate 1000 --size 64 --duration 10
//   build/benchmarks/loadgen/backplane-loadgen --target 127.0.0.1:8081 --idle 15000
//   (benchmarks/loadgen/run.sh starts Redis and two instances and runs the scenarios)
//
// N clients are spread round-robin over the targets; the first `senders` of
// them send global messages at a fixed total rate, each text `size` bytes and
// starting with "SEQ:NANOSECONDS:" so that every client can time the message
// from send to receipt. Every client receives every message (the sender too),
// so a run expects clients x messages deliveries; what did not arrive within
// `--grace` seconds after the last send is counted lost. With --idle N the
// clients connect, are welcomed, and stay idle until SIGINT/SIGTERM (for
// memory measurements).
//
// One thread, Asio, and a minimal client: frames are parsed in place from
// each connection's read buffer, and sends are masked with the zero key
// (valid WebSocket, and no per-byte work).
#include "frame_header.hpp"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

// CPU seconds this process has used (user, system).
std::pair<double, double> cpu_seconds()
{
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return {s(u.ru_utime), s(u.ru_stime)};
}

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

struct settings {
    std::vector<std::pair<std::string, std::string>> targets;
    int clients = 1000;
    int senders = 1;
    double rate = 1000;      // messages per second, all senders together
    std::size_t size = 64;   // bytes of text per message
    double duration = 10;    // seconds of sending
    double grace = 3;        // seconds to wait for stragglers
    int idle = 0;            // idle mode: this many clients, no messages
    int batch = 1;           // messages per tick (tick = batch / rate)
};

[[noreturn]] void usage(const char* why)
{
    std::fprintf(stderr,
                 "backplane-loadgen: %s\n"
                 "usage: backplane-loadgen --target HOST:PORT [--target ...] [--clients N] [--senders N]\n"
                 "         [--rate MSG_PER_S] [--size BYTES] [--duration S] [--grace S] [--batch N]\n"
                 "       backplane-loadgen --target HOST:PORT --idle N\n",
                 why);
    std::exit(2);
}

settings parse_args(int argc, char** argv)
{
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc)
            usage("a flag lacks its value");
        const std::string v = argv[++i];
        if (flag == "--target") {
            const auto colon = v.rfind(':');
            if (colon == std::string::npos)
                usage("--target wants HOST:PORT");
            s.targets.emplace_back(v.substr(0, colon), v.substr(colon + 1));
        }
        else if (flag == "--clients") s.clients = std::atoi(v.c_str());
        else if (flag == "--senders") s.senders = std::atoi(v.c_str());
        else if (flag == "--rate") s.rate = std::atof(v.c_str());
        else if (flag == "--size") s.size = std::strtoul(v.c_str(), nullptr, 10);
        else if (flag == "--duration") s.duration = std::atof(v.c_str());
        else if (flag == "--grace") s.grace = std::atof(v.c_str());
        else if (flag == "--idle") s.idle = std::atoi(v.c_str());
        else if (flag == "--batch") s.batch = std::max(1, std::atoi(v.c_str()));
        else usage("unknown flag");
    }
    if (s.targets.empty())
        usage("no --target");
    if (s.idle > 0)
        s.clients = s.idle;
    if (s.size < 32)
        usage("--size must be at least 32 (the text carries a sequence number and a timestamp)");
    s.senders = std::min(s.senders, s.clients);
    return s;
}

// Latencies in 10 us buckets up to 10 s, and the maximum.
class histogram {
public:
    void add(std::int64_t ns)
    {
        const auto b = static_cast<std::size_t>(std::max<std::int64_t>(ns, 0) / 10000);
        ++buckets_[std::min(b, buckets_.size() - 1)];
        max_ = std::max(max_, ns);
        ++count_;
    }
    double percentile_ms(double p) const
    {
        const auto want = static_cast<std::uint64_t>(p * static_cast<double>(count_));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen > want)
                return static_cast<double>(i + 1) * 0.01; // the bucket's upper bound
        }
        return max_ms();
    }
    double max_ms() const { return static_cast<double>(max_) / 1e6; }
    std::uint64_t count() const { return count_; }

private:
    std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(1000000);
    std::int64_t max_ = 0;
    std::uint64_t count_ = 0;
};

struct totals {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;   // deliveries of messages of this run
    std::uint64_t other = 0;      // other frames (welcome, errors)
    std::uint64_t closed = 0;     // connections closed under us
    int welcomed = 0;
    std::int64_t first_send = 0;
    std::int64_t last_receipt = 0;
    histogram latency;
};

class client : public std::enable_shared_from_this<client> {
public:
    client(asio::io_context& io, totals& t, std::size_t buffer) : socket_(io), totals_(t), buf_(buffer) {}

    void start(const asio::ip::tcp::resolver::results_type& where, const std::string& host, int index)
    {
        request_ = "GET /ws?user=load" + std::to_string(index) + " HTTP/1.1\r\nHost: " + host
            + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        asio::async_connect(socket_, where, [self = shared_from_this()](std::error_code ec, const auto&) {
            if (ec)
                return self->fail("connect", ec);
            self->socket_.set_option(asio::ip::tcp::no_delay(true));
            asio::async_write(self->socket_, asio::buffer(self->request_),
                              [self](std::error_code e, std::size_t) {
                                  if (e)
                                      return self->fail("handshake", e);
                                  self->request_.clear();
                                  self->request_.shrink_to_fit();
                                  self->read();
                              });
        });
    }

    // Queues one text frame; frames queued while a write is out leave together.
    void send_text(std::string_view text)
    {
        std::string& out = writing_ ? pending_ : outgoing_;
        out.push_back(static_cast<char>(0x81));
        if (text.size() < 126) {
            out.push_back(static_cast<char>(0x80 | text.size()));
        } else {
            out.push_back(static_cast<char>(0x80 | 126));
            out.push_back(static_cast<char>(text.size() >> 8));
            out.push_back(static_cast<char>(text.size() & 0xff));
        }
        out.append(4, '\0'); // the zero masking key: the payload goes as is
        out.append(text);
        if (!writing_)
            write();
    }

    bool open() const noexcept { return open_; }

private:
    void fail(const char* what, std::error_code ec)
    {
        if (open_ || !welcomed_)
            std::fprintf(stderr, "backplane-loadgen: %s: %s\n", what, ec.message().c_str());
        if (open_)
            ++totals_.closed;
        open_ = false;
    }

    void write()
    {
        writing_ = true;
        asio::async_write(socket_, asio::buffer(outgoing_), [self = shared_from_this()](std::error_code ec, std::size_t) {
            self->writing_ = false;
            if (ec)
                return self->fail("write", ec);
            self->outgoing_.clear();
            if (!self->pending_.empty()) {
                self->outgoing_.swap(self->pending_);
                self->write();
            }
        });
    }

    void read()
    {
        if (have_ == buf_.size())
            buf_.resize(buf_.size() * 2); // a frame larger than the buffer
        socket_.async_read_some(asio::buffer(buf_.data() + have_, buf_.size() - have_),
                                [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                    if (ec)
                                        return self->fail("read", ec);
                                    self->have_ += n;
                                    if (self->consume())
                                        self->read();
                                });
    }

    // Parses what is buffered; false once the connection is done.
    bool consume()
    {
        std::size_t at = 0;
        if (!handshaken_) {
            const std::string_view in(buf_.data(), have_);
            const auto end = in.find("\r\n\r\n");
            if (end == std::string_view::npos)
                return true;
            if (in.compare(0, 12, "HTTP/1.1 101") != 0) {
                std::fprintf(stderr, "backplane-loadgen: handshake refused: %.*s\n",
                             static_cast<int>(in.find('\r')), in.data());
                return false;
            }
            handshaken_ = true;
            open_ = true;
            at = end + 4;
        }
        const std::int64_t now = now_ns();
        for (;;) {
            const auto* b = reinterpret_cast<const unsigned char*>(buf_.data() + at);
            const auto h = read_frame_header(b, have_ - at);
            if (!h)
                break;
            const std::size_t head = h->size, len = h->payload;
            if (have_ - at < head + len) {
                if (head + len > buf_.size())
                    buf_.resize(head + len);
                break;
            }
            on_frame(b[0] & 0x0f, std::string_view(buf_.data() + at + head, len), now);
            at += head + len;
            if (!open_)
                return false;
        }
        std::memmove(buf_.data(), buf_.data() + at, have_ - at);
        have_ -= at;
        return true;
    }

    void on_frame(int opcode, std::string_view payload, std::int64_t now)
    {
        if (opcode == 8) {
            std::fprintf(stderr, "backplane-loadgen: closed by the server (%u)\n",
                         payload.size() >= 2 ? (unsigned(static_cast<unsigned char>(payload[0])) << 8)
                                 | static_cast<unsigned char>(payload[1]) : 1005u);
            ++totals_.closed;
            open_ = false;
            return;
        }
        if (opcode == 9) { // ping: pong with the same payload
            send_control(10, payload);
            return;
        }
        static constexpr std::string_view key = "\"text\":\"";
        const auto t = payload.find(key);
        if (opcode != 1 || t == std::string_view::npos) {
            ++totals_.other;
            if (!welcomed_ && payload.find("\"welcome\"") != std::string_view::npos) {
                welcomed_ = true;
                ++totals_.welcomed;
            }
            return;
        }
        // "SEQ:NANOSECONDS:padding"
        const char* p = payload.data() + t + key.size();
        const char* end = payload.data() + payload.size();
        while (p < end && *p != ':')
            ++p;
        std::int64_t sent = 0;
        for (++p; p < end && *p >= '0' && *p <= '9'; ++p)
            sent = sent * 10 + (*p - '0');
        ++totals_.received;
        totals_.latency.add(now - sent);
        totals_.last_receipt = now;
    }

    void send_control(int opcode, std::string_view payload)
    {
        std::string& out = writing_ ? pending_ : outgoing_;
        out.push_back(static_cast<char>(0x80 | opcode));
        out.push_back(static_cast<char>(0x80 | payload.size()));
        out.append(4, '\0');
        out.append(payload);
        if (!writing_)
            write();
    }

    asio::ip::tcp::socket socket_;
    totals& totals_;
    std::vector<char> buf_;
    std::size_t have_ = 0;
    std::string request_, outgoing_, pending_;
    bool writing_ = false, handshaken_ = false, open_ = false, welcomed_ = false;
};

} // namespace

int main(int argc, char** argv)
{
    const settings s = parse_args(argc, argv);
    asio::io_context io(1);
    totals t;
    bool stop = false;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            stop = true;
            io.stop();
        }
    });

    std::vector<asio::ip::tcp::resolver::results_type> where;
    asio::ip::tcp::resolver resolver(io);
    for (const auto& [host, port] : s.targets)
        where.push_back(resolver.resolve(host, port));

    // Connect in waves, so that the listen backlog is never the limit.
    std::vector<std::shared_ptr<client>> clients;
    const std::size_t buffer = s.idle > 0 ? 1024 : 16384;
    const auto connect_start = clock_type::now();
    for (int i = 0; i < s.clients && !stop; ++i) {
        const auto target = static_cast<std::size_t>(i) % s.targets.size();
        clients.push_back(std::make_shared<client>(io, t, buffer));
        clients.back()->start(where[target], s.targets[target].first, i);
        if (i % 500 == 499)
            while (t.welcomed < i - 1000 && !stop)
                io.run_one();
    }
    const auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (t.welcomed < s.clients && clock_type::now() < deadline && !stop)
        io.run_one_for(std::chrono::milliseconds(100));
    const double connect_s = std::chrono::duration<double>(clock_type::now() - connect_start).count();
    std::printf("connected %d/%d clients over %zu instance(s) in %.2f s\n", t.welcomed, s.clients,
                s.targets.size(), connect_s);
    std::fflush(stdout);
    if (t.welcomed < s.clients)
        return 1;
    if (s.idle > 0) {
        std::printf("idle; SIGINT or SIGTERM ends\n");
        std::fflush(stdout);
        io.run();
        return 0;
    }

    // Sending: `batch` messages every batch/rate seconds, senders in turn.
    std::string text;
    const auto tick = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * s.batch / s.rate));
    const std::uint64_t total = static_cast<std::uint64_t>(s.rate * s.duration);
    asio::steady_timer timer(io);
    auto next = clock_type::now();
    std::function<void()> send_tick = [&] {
        for (int k = 0; k < s.batch && t.sent < total; ++k) {
            const std::int64_t now = now_ns();
            if (t.first_send == 0)
                t.first_send = now;
            std::string body = std::to_string(t.sent) + ":" + std::to_string(now) + ":";
            body.resize(s.size, 'x');
            text.assign("{\"op\":\"send\",\"text\":\"").append(body).append("\"}");
            clients[t.sent % static_cast<std::uint64_t>(s.senders)]->send_text(text);
            ++t.sent;
        }
        if (t.sent >= total || stop)
            return;
        next += tick;
        timer.expires_at(next);
        timer.async_wait([&](std::error_code ec) {
            if (!ec)
                send_tick();
        });
    };
    const auto cpu_start = cpu_seconds();
    send_tick();
    const std::uint64_t expected_per_message = static_cast<std::uint64_t>(s.clients);
    while (!stop && t.sent < total)
        io.run_one();
    const auto grace_end = clock_type::now() + std::chrono::milliseconds(static_cast<int>(s.grace * 1000));
    while (!stop && t.received < t.sent * expected_per_message && clock_type::now() < grace_end)
        io.run_one_for(std::chrono::milliseconds(50));

    const auto cpu_end = cpu_seconds();
    const std::uint64_t expected = t.sent * expected_per_message;
    const double window_s = static_cast<double>(t.last_receipt - t.first_send) / 1e9;
    std::printf("sent %llu messages of %zu bytes at %.0f/s for %.1f s from %d sender(s)\n",
                static_cast<unsigned long long>(t.sent), s.size, s.rate, s.duration, s.senders);
    std::printf("deliveries: expected %llu, received %llu, lost %llu (%.4f%%), connections closed %llu\n",
                static_cast<unsigned long long>(expected), static_cast<unsigned long long>(t.received),
                static_cast<unsigned long long>(expected > t.received ? expected - t.received : 0),
                expected ? 100.0 * static_cast<double>(expected - std::min(expected, t.received))
                        / static_cast<double>(expected) : 0.0,
                static_cast<unsigned long long>(t.closed));
    std::printf("deliveries/s: %.0f (first send to last receipt: %.2f s)\n",
                window_s > 0 ? static_cast<double>(t.received) / window_s : 0.0, window_s);
    std::printf("latency send->receipt: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", t.latency.percentile_ms(0.50),
                t.latency.percentile_ms(0.99), t.latency.max_ms());
    // The generator shares the machine with what it measures: its own cost.
    const double per = t.received ? 1e6 / static_cast<double>(t.received) : 0.0;
    std::printf("load generator CPU: %.2f us user + %.2f us system per delivery\n",
                (cpu_end.first - cpu_start.first) * per, (cpu_end.second - cpu_start.second) * per);
    return t.received == expected && t.closed == 0 ? 0 : 1;
}
