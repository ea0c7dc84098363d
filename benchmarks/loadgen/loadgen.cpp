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
// `--grace` seconds after the last send is counted lost. The exit status is 0
// only if nothing was lost and no connection closed. With --idle N the
// clients connect, are welcomed, and stay idle until SIGINT/SIGTERM (for
// memory measurements).
//
// The clients are split over `--threads` threads (default 1), each with its
// own io_uring ring (liburing; Linux 6.0 or later). Every client's socket has
// one multishot receive armed on its thread's ring, drawing from the ring's
// pool of provided buffers: whenever a thread waits, the kernel reads every
// socket of its clients that has data, with no system call per socket and
// no read buffer per client; sends go through the same ring. The generator
// shares the machine with what it measures, so it should do as little as it
// can. A read costs the reader about as much kernel time as the write cost
// the server, so one thread reading the 1,000 receipts of a message can be
// the last to finish while a core waits idle (run.sh reads with two).
// Frames are parsed in place from the pool's buffers (a frame split between
// two reads is kept by its client), and sends are masked with the zero key
// (valid WebSocket, and no per-byte work).
#include "frame_header.hpp"

#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
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
    std::vector<sockaddr_in> targets;
    std::vector<std::string> hosts; // as given, for the Host header
    int clients = 1000;
    int senders = 1;
    double rate = 1000;      // messages per second, all senders together
    std::size_t size = 64;   // bytes of text per message
    double duration = 10;    // seconds of sending
    double grace = 3;        // seconds to wait for stragglers
    int idle = 0;            // idle mode: this many clients, no messages
    int batch = 1;           // messages per tick (tick = batch / rate)
    int threads = 1;         // each with its own ring and its share of the clients
};

[[noreturn]] void usage(const char* why)
{
    std::fprintf(stderr,
                 "backplane-loadgen: %s\n"
                 "usage: backplane-loadgen --target IPV4:PORT [--target ...] [--clients N] [--senders N]\n"
                 "         [--rate MSG_PER_S] [--size BYTES] [--duration S] [--grace S] [--batch N]\n"
                 "         [--threads N]\n"
                 "       backplane-loadgen --target IPV4:PORT --idle N [--threads N]\n",
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
            sockaddr_in a{};
            a.sin_family = AF_INET;
            const int port = colon == std::string::npos ? 0 : std::atoi(v.c_str() + colon + 1);
            if (port <= 0 || port > 65535 || ::inet_pton(AF_INET, v.substr(0, colon).c_str(), &a.sin_addr) != 1)
                usage("--target wants IPV4:PORT");
            a.sin_port = htons(static_cast<std::uint16_t>(port));
            s.targets.push_back(a);
            s.hosts.push_back(v.substr(0, colon));
        }
        else if (flag == "--clients") s.clients = std::atoi(v.c_str());
        else if (flag == "--senders") s.senders = std::atoi(v.c_str());
        else if (flag == "--rate") s.rate = std::atof(v.c_str());
        else if (flag == "--size") s.size = std::strtoul(v.c_str(), nullptr, 10);
        else if (flag == "--duration") s.duration = std::atof(v.c_str());
        else if (flag == "--grace") s.grace = std::atof(v.c_str());
        else if (flag == "--idle") s.idle = std::atoi(v.c_str());
        else if (flag == "--batch") s.batch = std::max(1, std::atoi(v.c_str()));
        else if (flag == "--threads") s.threads = std::atoi(v.c_str());
        else usage("unknown flag");
    }
    if (s.targets.empty())
        usage("no --target");
    if (s.idle > 0)
        s.clients = s.idle;
    if (s.clients < 1 || s.rate <= 0 || s.threads < 1)
        usage("--clients, --rate and --threads must be positive");
    if (s.size < 32)
        usage("--size must be at least 32 (the text carries a sequence number and a timestamp)");
    s.senders = std::clamp(s.senders, 1, s.clients);
    s.threads = std::min(s.threads, s.clients);
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
    void merge(const histogram& o)
    {
        for (std::size_t i = 0; i < buckets_.size(); ++i)
            buckets_[i] += o.buckets_[i];
        max_ = std::max(max_, o.max_);
        count_ += o.count_;
    }

private:
    std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(1000000);
    std::int64_t max_ = 0;
    std::uint64_t count_ = 0;
};

struct totals {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;   // deliveries of messages of this run
    std::uint64_t closed = 0;     // connections closed under us once welcomed
    int welcomed = 0;
    int failed = 0;               // connections refused or closed before their welcome
    std::int64_t first_send = 0;
    std::int64_t last_receipt = 0;
    histogram latency;

    // Adds another thread's results (its connection counts are not results).
    void merge(const totals& o)
    {
        sent += o.sent;
        received += o.received;
        closed += o.closed;
        if (o.first_send != 0 && (first_send == 0 || o.first_send < first_send))
            first_send = o.first_send;
        last_receipt = std::max(last_receipt, o.last_receipt);
        latency.merge(o.latency);
    }
};

std::atomic<bool> stopping{false}; // set by SIGINT and SIGTERM

// One io_uring ring: multishot receives into a pool of provided buffers,
// and sends. Completions go to the owner with the index the operation was
// started for: on_receive (bytes read), on_receive_end (the connection
// ended or failed), rearm (a receive stopped for want of buffers, or by
// the kernel's choice: start another) and on_sent.
template <class Owner>
class ring {
public:
    ring(Owner& owner, unsigned buffers, unsigned buffer_size)
        : owner_(owner), count_(buffers), size_(buffer_size), memory_(std::size_t(buffers) * buffer_size)
    {
        io_uring_params p{};
        // Completions are reaped by this one thread when it waits; the
        // receives run then, all together (DEFER_TASKRUN).
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
        p.cq_entries = 32768;
        if (const int e = ::io_uring_queue_init_params(1024, &ring_, &p); e < 0)
            fail("io_uring_queue_init", e);
        void* table = nullptr;
        if (::posix_memalign(&table, 4096, std::size_t(count_) * sizeof(io_uring_buf)) != 0)
            fail("posix_memalign", -ENOMEM);
        pool_ = static_cast<io_uring_buf_ring*>(table);
        ::io_uring_buf_ring_init(pool_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(pool_);
        reg.ring_entries = count_;
        reg.bgid = 0;
        if (const int e = ::io_uring_register_buf_ring(&ring_, &reg, 0); e < 0)
            fail("io_uring_register_buf_ring", e);
        for (unsigned i = 0; i < count_; ++i)
            give_back(i, i);
        ::io_uring_buf_ring_advance(pool_, count_);
    }
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring()
    {
        ::io_uring_queue_exit(&ring_);
        std::free(pool_);
    }

    // Receives on `fd` until it fails or ends: on_receive(index, bytes) per read.
    void receive(int fd, std::size_t index)
    {
        io_uring_sqe* e = entry();
        ::io_uring_prep_recv_multishot(e, fd, nullptr, 0, 0);
        e->flags |= IOSQE_BUFFER_SELECT;
        e->buf_group = 0;
        ::io_uring_sqe_set_data64(e, index << 1);
    }

    // Sends bytes that must stay put until on_sent(index, result).
    void send(int fd, std::string_view bytes, std::size_t index)
    {
        io_uring_sqe* e = entry();
        ::io_uring_prep_send(e, fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        ::io_uring_sqe_set_data64(e, (index << 1) | 1);
    }

    // Submits what was queued, waits up to `timeout_ns` for a completion,
    // and hands over every completion there is.
    void run_once(std::int64_t timeout_ns)
    {
        __kernel_timespec ts{timeout_ns / 1000000000, timeout_ns % 1000000000};
        io_uring_cqe* cqe = nullptr;
        ::io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        unsigned head, seen = 0, returned = 0;
        io_uring_for_each_cqe(&ring_, head, cqe)
        {
            ++seen;
            const std::uint64_t data = ::io_uring_cqe_get_data64(cqe);
            const std::size_t index = data >> 1;
            if (data & 1) {
                owner_.on_sent(index, cqe->res);
                continue;
            }
            if (cqe->flags & IORING_CQE_F_BUFFER) {
                const unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                char* b = memory_.data() + std::size_t(id) * size_;
                if (cqe->res > 0)
                    owner_.on_receive(index, std::string_view(b, static_cast<std::size_t>(cqe->res)));
                give_back(id, returned++);
            }
            if (!(cqe->flags & IORING_CQE_F_MORE)) {
                // The receive is over: out of buffers for a moment (armed
                // again), or the connection ended or failed.
                if (cqe->res == -ENOBUFS || cqe->res > 0)
                    rearm_.push_back(index);
                else
                    owner_.on_receive_end(index, cqe->res);
            }
        }
        ::io_uring_cq_advance(&ring_, seen);
        ::io_uring_buf_ring_advance(pool_, returned);
        for (const std::size_t index : rearm_)
            owner_.rearm(index);
        rearm_.clear();
    }

private:
    [[noreturn]] static void fail(const char* what, int e)
    {
        std::fprintf(stderr, "backplane-loadgen: %s: %s (io_uring as this program uses it needs Linux 6.0 or later)\n",
                     what, std::strerror(-e));
        std::exit(2);
    }

    io_uring_sqe* entry()
    {
        io_uring_sqe* e = ::io_uring_get_sqe(&ring_);
        if (!e) { // the submission queue is full: make room
            ::io_uring_submit(&ring_);
            e = ::io_uring_get_sqe(&ring_);
        }
        return e;
    }

    void give_back(unsigned id, unsigned offset)
    {
        ::io_uring_buf_ring_add(pool_, memory_.data() + std::size_t(id) * size_, size_, static_cast<unsigned short>(id),
                                ::io_uring_buf_ring_mask(count_), static_cast<int>(offset));
    }

    Owner& owner_;
    io_uring ring_{};
    io_uring_buf_ring* pool_ = nullptr;
    const unsigned count_, size_;
    std::vector<char> memory_;
    std::vector<std::size_t> rearm_;
};

class generator {
public:
    // Clients `first` to `first + count - 1` of the run, known here by
    // their index from 0 (the run's index names the user and picks the target).
    generator(const settings& s, totals& t, int first, int count)
        : settings_(s), totals_(t), first_(static_cast<std::size_t>(first)), clients_(static_cast<std::size_t>(count))
    {
    }

    // Connects client `i` (blocking: loopback, a few microseconds) and sends its handshake.
    bool connect(std::size_t i)
    {
        const std::size_t target = (first_ + i) % settings_.targets.size();
        client& c = clients_[i];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        const auto* to = reinterpret_cast<const sockaddr*>(&settings_.targets[target]);
        if (c.fd < 0 || ::connect(c.fd, to, sizeof(sockaddr_in)) != 0) {
            std::fprintf(stderr, "backplane-loadgen: connect: %s\n", std::strerror(errno));
            return false;
        }
        ring_.receive(c.fd, i);
        write(i, "GET /ws?user=load" + std::to_string(first_ + i) + " HTTP/1.1\r\nHost: " + settings_.hosts[target]
                     + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        return true;
    }

    // Queues one text frame from client `i`.
    void send_text(std::size_t i, std::string_view text) { write(i, make_frame(1, text, true)); }

    void run_once(std::int64_t timeout_ns) { ring_.run_once(std::max<std::int64_t>(timeout_ns, 0)); }

    // The ring's completions.
    void on_receive(std::size_t i, std::string_view bytes)
    {
        client& c = clients_[i];
        if (c.partial.empty()) {
            keep_rest(c, consume(i, bytes), bytes);
        } else {
            c.partial.append(bytes);
            const std::string_view all = c.partial;
            keep_rest(c, consume(i, all), all);
        }
    }
    void on_receive_end(std::size_t i, int result)
    {
        client& c = clients_[i];
        if (!c.ended)
            std::fprintf(stderr, "backplane-loadgen: read: %s\n",
                         result == 0 ? "the server closed the connection" : std::strerror(-result));
        end(c);
    }
    void rearm(std::size_t i)
    {
        if (!clients_[i].ended)
            ring_.receive(clients_[i].fd, i);
    }
    void on_sent(std::size_t i, int result)
    {
        client& c = clients_[i];
        if (result < 0) {
            if (!c.ended)
                std::fprintf(stderr, "backplane-loadgen: write: %s\n", std::strerror(-result));
            end(c);
            return;
        }
        c.writing.erase(0, static_cast<std::size_t>(result));
        c.writing += c.queued; // a partial send goes on with what queued since
        c.queued.clear();
        if (!c.writing.empty())
            ring_.send(c.fd, c.writing, i);
    }

private:
    struct client {
        int fd = -1;
        std::string partial;          // the start of a frame not yet whole
        std::string writing, queued;  // bytes being sent; bytes waiting for that
        bool handshaken = false, open = false, welcomed = false, ended = false;
    };

    void end(client& c)
    {
        if (c.ended)
            return;
        c.ended = true;
        c.open = false;
        if (c.welcomed)
            ++totals_.closed;
        else
            ++totals_.failed;
    }

    void write(std::size_t i, std::string_view bytes)
    {
        client& c = clients_[i];
        if (!c.writing.empty()) {
            c.queued.append(bytes);
            return;
        }
        c.writing.assign(bytes);
        ring_.send(c.fd, c.writing, i);
    }

    // Keeps the bytes of `in` from `at` on as the start of the next frame
    // (`in` may be the client's own `partial`).
    static void keep_rest(client& c, std::size_t at, std::string_view in)
    {
        if (at == in.size())
            c.partial.clear();
        else if (in.data() == c.partial.data())
            c.partial.erase(0, at);
        else
            c.partial.assign(in.substr(at));
    }

    // Handles the whole frames in `in`; returns where the first partial one starts.
    std::size_t consume(std::size_t i, std::string_view in)
    {
        client& c = clients_[i];
        std::size_t at = 0;
        if (!c.handshaken) {
            const auto end_of_head = in.find("\r\n\r\n");
            if (end_of_head == std::string_view::npos)
                return 0;
            if (in.compare(0, 12, "HTTP/1.1 101") != 0) {
                std::fprintf(stderr, "backplane-loadgen: handshake refused: %.*s\n",
                             static_cast<int>(in.find('\r')), in.data());
                c.handshaken = true;
                end(c);
                return in.size();
            }
            c.handshaken = true;
            c.open = true;
            at = end_of_head + 4;
        }
        const std::int64_t now = now_ns();
        while (c.open) {
            const auto* b = reinterpret_cast<const unsigned char*>(in.data() + at);
            const auto h = read_frame_header(b, in.size() - at);
            if (!h || in.size() - at < h->size + h->payload)
                break;
            on_frame(i, b[0] & 0x0f, in.substr(at + h->size, h->payload), now);
            at += h->size + h->payload;
        }
        return c.open ? at : in.size();
    }

    void on_frame(std::size_t i, int opcode, std::string_view payload, std::int64_t now)
    {
        client& c = clients_[i];
        if (opcode == 8) {
            std::fprintf(stderr, "backplane-loadgen: closed by the server (%u)\n",
                         payload.size() >= 2 ? (unsigned(static_cast<unsigned char>(payload[0])) << 8)
                                 | static_cast<unsigned char>(payload[1]) : 1005u);
            end(c);
            return;
        }
        if (opcode == 9) { // ping: pong with the same payload
            write(i, make_frame(10, payload, true));
            return;
        }
        static constexpr std::string_view key = "\"text\":\"";
        const auto t = payload.find(key);
        if (opcode != 1 || t == std::string_view::npos) {
            if (!c.welcomed && payload.find("\"welcome\"") != std::string_view::npos) {
                c.welcomed = true;
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

    const settings& settings_;
    totals& totals_;
    const std::size_t first_;
    std::vector<client> clients_;
    // 2,048 buffers of 16 KiB: enough for every client of a run to have
    // a read in flight at once; if they run out, a receive is armed again.
    ring<generator> ring_{*this, 2048, 16384};
};

// What the threads and the main thread share. Each thread fills totals of
// its own; the main thread reads them once the threads are over, and before
// that only the counts a thread adds here when its clients are connected.
struct run {
    explicit run(int threads) : totals(static_cast<std::size_t>(threads)) {}
    std::vector<::totals> totals;
    std::atomic<int> connected_threads{0};
    std::atomic<int> welcomed{0};
    // 0 until the main thread says: -1 to end, else when sending begins
    // (now_ns()); every thread runs the same schedule, sending the messages
    // of the senders it has.
    std::atomic<std::int64_t> start{0};
};

void client_thread(const settings& s, run& r, int k)
{
    totals& t = r.totals[static_cast<std::size_t>(k)];
    const int first = static_cast<int>(std::int64_t(s.clients) * k / s.threads);
    const int count = static_cast<int>(std::int64_t(s.clients) * (k + 1) / s.threads) - first;
    generator g(s, t, first, count);

    // Connect in waves, so that the listen backlog is never the limit.
    for (int i = 0; i < count && !stopping; ++i) {
        if (!g.connect(static_cast<std::size_t>(i))) {
            t.failed += count - i;
            break;
        }
        if (i % 500 == 499)
            while (t.welcomed + t.failed < i - 1000 && !stopping)
                g.run_once(100'000'000);
    }
    const auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (t.welcomed + t.failed < count && clock_type::now() < deadline && !stopping)
        g.run_once(100'000'000);
    r.welcomed += t.welcomed;
    ++r.connected_threads;
    while (r.start == 0 && !stopping)
        g.run_once(1'000'000);
    const std::int64_t start = r.start;
    if (start < 0)
        return;
    if (s.idle > 0) {
        while (!stopping)
            g.run_once(1'000'000'000);
        return;
    }

    // Sending: `batch` messages every batch/rate seconds; message j comes
    // from sender j % senders, the senders being the run's first clients.
    std::string text;
    const auto tick = static_cast<std::int64_t>(1e9 * s.batch / s.rate);
    const auto total = static_cast<std::uint64_t>(s.rate * s.duration);
    const auto due = [&](std::uint64_t j) {
        return start + static_cast<std::int64_t>(j / static_cast<std::uint64_t>(s.batch)) * tick;
    };
    std::uint64_t j = 0;
    while (!stopping && j < total) {
        for (; j < total && due(j) <= now_ns(); ++j) {
            const auto sender = static_cast<int>(j % static_cast<std::uint64_t>(s.senders));
            if (sender < first || sender >= first + count)
                continue;
            const std::int64_t now = now_ns();
            if (t.first_send == 0)
                t.first_send = now;
            std::string body = std::to_string(j) + ":" + std::to_string(now) + ":";
            body.resize(s.size, 'x');
            text.assign("{\"op\":\"send\",\"text\":\"").append(body).append("\"}");
            g.send_text(static_cast<std::size_t>(sender - first), text);
            ++t.sent;
        }
        g.run_once(j < total ? due(j) - now_ns() : 0);
    }
    const std::uint64_t expected = total * static_cast<std::uint64_t>(count);
    const std::int64_t grace_end = now_ns() + static_cast<std::int64_t>(s.grace * 1e9);
    while (!stopping && t.received < expected && now_ns() < grace_end)
        g.run_once(50'000'000);
}

} // namespace

int main(int argc, char** argv)
{
    const settings s = parse_args(argc, argv);
    std::signal(SIGINT, [](int) { stopping = true; });
    std::signal(SIGTERM, [](int) { stopping = true; });
    run r(s.threads);
    std::vector<std::thread> threads;
    const auto connect_start = clock_type::now();
    for (int k = 0; k < s.threads; ++k)
        threads.emplace_back(client_thread, std::cref(s), std::ref(r), k);
    const auto finish = [&](std::int64_t start) {
        r.start = start;
        for (std::thread& t : threads)
            t.join();
    };

    while (r.connected_threads < s.threads)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double connect_s = std::chrono::duration<double>(clock_type::now() - connect_start).count();
    std::printf("connected %d/%d clients over %zu instance(s) in %.2f s\n", r.welcomed.load(), s.clients,
                s.targets.size(), connect_s);
    std::fflush(stdout);
    if (r.welcomed < s.clients) {
        finish(-1);
        return 1;
    }
    if (s.idle > 0) {
        std::printf("idle; SIGINT or SIGTERM ends\n");
        std::fflush(stdout);
        finish(now_ns());
        return 0;
    }

    const auto cpu_start = cpu_seconds();
    finish(now_ns());
    const auto cpu_end = cpu_seconds();
    totals t;
    for (const totals& each : r.totals)
        t.merge(each);
    const std::uint64_t expected = t.sent * static_cast<std::uint64_t>(s.clients);
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
