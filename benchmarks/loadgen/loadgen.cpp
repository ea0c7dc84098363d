// backplane-loadgen: real WebSocket clients against backplane-instance.
//
//   build/benchmarks/loadgen/backplane-loadgen --target 127.0.0.1:8081 --target 127.0.0.1:8082
//       --clients 1000 --senders 1 --rate 1000 --size 64 --duration 10
//   build/benchmarks/loadgen/backplane-loadgen --target 127.0.0.1:8081 --idle 15000
//   build/benchmarks/loadgen/backplane-loadgen --target 127.0.0.1:8080 --clients 3000 --sources 300
//       --rooms 30 --room-share 0.5 --reconnect --resume --json results.json
//   build/benchmarks/loadgen/backplane-loadgen --protocol socketio --target 127.0.0.1:3001 --target 127.0.0.1:3002
//   (benchmarks/loadgen/run.sh runs the load scenarios, lb/run.sh the load-balancer demo,
//   benchmarks/run.sh the benchmarks; --protocol socketio speaks to benchmarks/peers/socketio.js)
//
// N clients are spread round-robin over the targets (one target: a load
// balancer). Client k is user "{user-prefix}{k}". The first `senders` send
// messages at a fixed total rate, each text `size` bytes and starting with
// "SEQ:NANOSECONDS:" so that every receiver can time it from send to receipt.
// A message goes to everyone (a broadcast), or, with --rooms R, a share of
// them (--room-share) to the sender's room: client k is a member of room
// k % R (with --senders R, every room has a sender). Every
// client counts what it receives by sequence number, so a run knows, per
// client, what arrived, what is missing and what came twice; what did not
// arrive within `--grace` seconds after the last send is missing.
//
// Without --reconnect the exit status is 0 only if nothing was missing and
// no connection closed. With --reconnect a closed client (closed by the
// server, refused, or cut) connects again after a jittered exponential
// backoff, as a browser client should: a random wait in [0, d], d starting at
// --backoff-initial and doubling up to --backoff-max; with --resume it asks
// for what it missed (last_id in the URL, last_id in its room's join). Each
// client's connections (instance, open and close times, close code) and
// receipts are then written with --json, with the per-instance connection
// counts every 100 ms as the generator saw them (from each welcome's
// "instance"), and latency percentiles for the clients that were never
// disconnected, overall and during the disruption (from the first close to
// the last client back) or a --window given. Recording every receipt for
// --json costs the generator enough at high rates to show in its own p99
// (at 1,000,000 deliveries/s, 72 to 96 ms against 14 ms without, here):
// --summary writes the summary figures alone.
//
// --sources N binds client k to the source address 127.(1 + s/256).(s%256).1,
// s = k % N (the kernel routes all of 127/8 to loopback), so that a balancer
// hashing the client's address has something to hash; each address is in a
// /24 of its own, because nginx's ip_hash hashes the first three octets.
// --nat-share F puts that fraction of the clients behind the first address,
// as an office behind one NAT.
//
// The clients are split over `--threads` threads (default 1), each with its
// own io_uring ring (ring.hpp). The generator shares the machine with what
// it measures, so it should do as little as it can: frames are parsed in
// place from the ring's buffers, and sends are masked with the zero key
// (valid WebSocket, and no per-byte work).
#include "ring.hpp"

#include <backplane/detail/ws_frame.hpp>

#include <CLI/CLI.hpp>
#include <jwt.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace ws = backplane::detail::ws;
using clock_type = std::chrono::steady_clock;

// Valid WebSocket, and no per-byte work (see above).
constexpr ws::masking_key zero_key{};

std::int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

// CPU seconds this process has used (user, system).
std::pair<double, double> cpu_seconds()
{
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return {s(u.ru_utime), s(u.ru_stime)};
}

struct settings {
    std::vector<std::string> targets_given; // IPV4:PORT
    std::vector<sockaddr_in> targets;
    std::vector<std::string> hosts;         // for the Host header
    int clients = 1000;
    int senders = 1;
    double rate = 1000;                     // messages per second, all senders together; 0: none
    std::size_t size = 64;                  // bytes of text per message
    double duration = 10;                   // seconds of sending (or of holding, with --rate 0)
    double grace = 3;                       // seconds to wait for stragglers
    int idle = 0;                           // idle mode: this many clients, no messages
    int batch = 1;                          // messages per tick (tick = batch / rate)
    int threads = 1;                        // each with its own ring and its share of the clients
    std::string user_prefix = "load";
    int sources = 0;                        // source addresses; 0: the kernel's choice
    double nat_share = 0;                   // share of the clients on the first source address
    int rooms = 0;                          // client k is a member of room k % rooms
    double room_share = 0;                  // share of the messages sent to a room
    bool room_in_url = false;               // "&room=R" in the URL (for a balancer that hashes it)
    bool reconnect = false;
    bool resume = false;                    // last_id on reconnect (the streams broker)
    int backoff_initial_ms = 250;
    int backoff_max_ms = 5000;
    std::string json;                       // detailed results, to this file
    std::string summary;                    // the summary figures only, to this file
    bool start_on_stdin = false;            // "ready", then wait for a line before sending
    std::vector<double> window;             // [from, to] seconds after sending began
    std::string token_key;                  // HS256 secret: each client presents a token
    bool socketio = false;                  // speak Socket.IO 4 (benchmarks/peers/socketio.js)
};

// A token for `user`, signed with `secret` as a login service would, valid
// for a day: what an instance with --auth jwt asks of every client.
std::string mint_token(const std::string& secret, const std::string& user)
{
    jwt_t* raw = nullptr;
    if (::jwt_new(&raw) != 0)
        return {};
    const std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, ::jwt_free);
    const long exp = static_cast<long>(std::time(nullptr)) + 24 * 3600;
    if (::jwt_add_grant(jwt.get(), "sub", user.c_str()) != 0 || ::jwt_add_grant_int(jwt.get(), "exp", exp) != 0
        || ::jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                         static_cast<int>(secret.size())) != 0)
        return {};
    const std::unique_ptr<char, void (*)(void*)> text(::jwt_encode_str(jwt.get()), std::free);
    return text ? std::string(text.get()) : std::string();
}

settings parse_args(int argc, char** argv)
{
    settings s;
    CLI::App app{"backplane-loadgen: real WebSocket clients against backplane-instance"};
    app.add_option("--target", s.targets_given, "IPV4:PORT of an instance or a load balancer (repeatable)")->required();
    app.add_option("--clients", s.clients, "clients")->check(CLI::Range(1, 1000000));
    app.add_option("--senders", s.senders, "the first N clients send")->check(CLI::Range(1, 1000000));
    app.add_option("--rate", s.rate, "messages per second, all senders together (0: none)")->check(CLI::Range(0.0, 1e7));
    app.add_option("--size", s.size, "bytes of text per message (at least 32)")->check(CLI::Range(32, 60000));
    app.add_option("--duration", s.duration, "seconds of sending")->check(CLI::Range(0.0, 86400.0));
    app.add_option("--grace", s.grace, "seconds to wait for the last messages")->check(CLI::Range(0.0, 3600.0));
    app.add_option("--batch", s.batch, "messages per tick")->check(CLI::Range(1, 100000));
    app.add_option("--threads", s.threads, "reading threads, each with its own io_uring ring")->check(CLI::Range(1, 64));
    app.add_option("--idle", s.idle, "connect N clients and hold them until SIGINT or SIGTERM")->check(CLI::Range(1, 1000000));
    app.add_option("--user-prefix", s.user_prefix, "client k is user PREFIX{k}");
    app.add_option("--sources", s.sources, "source addresses 127.X.Y.1, one /24 each")->check(CLI::Range(1, 65000));
    app.add_option("--nat-share", s.nat_share, "share of the clients behind the first source address")->check(CLI::Range(0.0, 1.0));
    app.add_option("--rooms", s.rooms, "client k joins room k % N")->check(CLI::Range(1, 1000000));
    app.add_option("--room-share", s.room_share, "share of the messages sent to a room")->check(CLI::Range(0.0, 1.0));
    app.add_flag("--room-in-url", s.room_in_url, "add &room=R to the URL");
    std::string protocol = "backplane";
    app.add_option("--protocol", protocol,
                   "backplane (backplane-instance) or socketio (the same requests as Socket.IO events, "
                   "benchmarks/peers/socketio.js)")
        ->check(CLI::IsMember({"backplane", "socketio"}));
    app.add_flag("--reconnect", s.reconnect, "reconnect closed clients with jittered exponential backoff");
    app.add_flag("--resume", s.resume, "on reconnect, ask for what was missed (last_id)");
    app.add_option("--backoff-initial", s.backoff_initial_ms, "first backoff bound, ms")->check(CLI::Range(1, 600000));
    app.add_option("--backoff-max", s.backoff_max_ms, "largest backoff bound, ms")->check(CLI::Range(1, 600000));
    app.add_option("--json", s.json, "write detailed results to this file");
    app.add_option("--summary", s.summary,
                   "write the summary figures to this file as JSON (without --json's per-message samples, "
                   "whose recording costs the generator time at high rates)");
    app.add_flag("--start-on-stdin", s.start_on_stdin, "once connected print \"ready\", start sending on a line of stdin");
    app.add_option("--window", s.window, "FROM TO: seconds after sending began, for the latency of the undisturbed")
        ->expected(2);
    std::string token_key_file;
    app.add_option("--token-key", token_key_file,
                   "file with the instances' HS256 secret (--auth-key): each client presents a token for its user");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e));
    }
    s.socketio = protocol == "socketio";
    if (!token_key_file.empty()) {
        std::ifstream in(token_key_file, std::ios::binary);
        std::ostringstream key;
        key << in.rdbuf();
        s.token_key = key.str();
        // As the instance reads it: one trailing newline is not part of the secret.
        if (!s.token_key.empty() && s.token_key.back() == '\n')
            s.token_key.pop_back();
        if (!s.token_key.empty() && s.token_key.back() == '\r')
            s.token_key.pop_back();
        if (!in || s.token_key.size() < 32) {
            std::fprintf(stderr, "backplane-loadgen: --token-key %s: cannot read 32 bytes or more\n",
                         token_key_file.c_str());
            std::exit(2);
        }
    }
    for (const auto& v : s.targets_given) {
        const auto colon = v.rfind(':');
        sockaddr_in a{};
        a.sin_family = AF_INET;
        int port = 0;
        if (colon != std::string::npos)
            port = std::atoi(v.c_str() + colon + 1);
        if (colon == std::string::npos || port <= 0 || port > 65535
            || ::inet_pton(AF_INET, v.substr(0, colon).c_str(), &a.sin_addr) != 1) {
            std::fprintf(stderr, "backplane-loadgen: --target wants IPV4:PORT, not %s\n", v.c_str());
            std::exit(2);
        }
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        s.targets.push_back(a);
        s.hosts.push_back(v.substr(0, colon));
    }
    if (s.idle > 0) {
        s.clients = s.idle;
        s.rate = 0;
    }
    if (s.room_share > 0 && s.rooms == 0) {
        std::fprintf(stderr, "backplane-loadgen: --room-share needs --rooms\n");
        std::exit(2);
    }
    s.senders = std::min(s.senders, s.clients);
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
    std::uint64_t count() const { return count_; }
    void merge(const histogram& o)
    {
        for (std::size_t i = 0; i < buckets_.size(); ++i)
            buckets_[i] += o.buckets_[i];
        max_ = std::max(max_, o.max_);
        count_ += o.count_;
    }
    nlohmann::json summary() const
    {
        return {{"count", count_}, {"p50_ms", percentile_ms(0.5)}, {"p90_ms", percentile_ms(0.9)},
                {"p99_ms", percentile_ms(0.99)}, {"max_ms", max_ms()}};
    }

private:
    std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(1000000);
    std::int64_t max_ = 0;
    std::uint64_t count_ = 0;
};

// What message `seq` is: a broadcast (-1) or the room it goes to: its
// sender's own (sender k is client k, a member of room k % rooms), as a
// member speaks in a room it is in. The same on every thread, without
// coordination.
int room_of_message(const settings& s, std::uint64_t seq)
{
    if (s.rooms == 0 || s.room_share <= 0)
        return -1;
    std::uint64_t h = seq + 0x9e3779b97f4a7c15ull; // splitmix64
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    if (static_cast<double>(h % 1000000) >= s.room_share * 1e6)
        return -1;
    const auto sender = seq % static_cast<std::uint64_t>(s.senders);
    return static_cast<int>(sender % static_cast<std::uint64_t>(s.rooms));
}

// The instances the clients were welcomed by, by name, and how many clients
// each holds now; shared by the threads.
class instance_registry {
public:
    static constexpr int max_instances = 64;

    int index(std::string_view name)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (std::size_t i = 0; i < names_.size(); ++i)
            if (names_[i] == name)
                return static_cast<int>(i);
        if (names_.size() == max_instances)
            return max_instances - 1;
        names_.emplace_back(name);
        return static_cast<int>(names_.size() - 1);
    }
    std::vector<std::string> names()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return names_;
    }
    std::array<std::atomic<int>, max_instances> connected{};

private:
    std::mutex mutex_;
    std::vector<std::string> names_;
};

std::atomic<bool> stopping{false}; // set by SIGINT and SIGTERM

// One connection of a client, as it went.
struct segment {
    int instance = -1;          // -1: refused or cut before its welcome
    std::int64_t opened = 0;    // ns: welcomed
    std::int64_t closed = 0;    // ns; 0: still open
    int code = 0;               // close code the server sent; 1006: none (cut)
};

// One delivery, kept for the latency of chosen clients and windows.
struct sample {
    std::uint32_t client;
    std::uint32_t seq;
    std::uint32_t latency_us;
};

// A thread's results. The main thread reads them once the threads are over.
struct totals {
    std::uint64_t received = 0;   // distinct deliveries of this run's messages
    std::uint64_t received_room = 0; // of those, room messages
    std::uint64_t duplicates = 0; // deliveries of a message the client had already
    std::uint64_t closed = 0;     // connections closed under us once welcomed
    std::uint64_t failed = 0;     // connections refused or closed before their welcome
    int welcomed = 0;
    std::int64_t first_send = 0;
    std::int64_t last_receipt = 0;
    std::vector<std::uint64_t> sent;  // bitmap of the messages this thread's senders sent
    histogram latency;
    std::vector<sample> samples;      // with --json
};

// What the threads and the main thread share.
struct run {
    explicit run(const settings& s)
        : totals(static_cast<std::size_t>(s.threads)),
          total_messages(static_cast<std::uint64_t>(s.rate * s.duration)),
          sender_on(static_cast<std::size_t>(s.senders)),
          client_instance(new std::atomic<int>[static_cast<std::size_t>(s.clients)]),
          tick(s.rate > 0 ? static_cast<std::int64_t>(1e9 * s.batch / s.rate) : 0),
          batch(static_cast<std::uint64_t>(s.batch))
    {
        for (int k = 0; k < s.clients; ++k)
            client_instance[static_cast<std::size_t>(k)] = -1;
    }
    std::vector<::totals> totals;
    instance_registry instances;
    const std::uint64_t total_messages;
    std::atomic<int> ready_threads{0};
    std::atomic<int> welcomed{0};
    std::atomic<int> open_now{0};        // clients open now
    std::atomic<int> joined{0};          // first joins answered
    std::mutex senders_mutex;
    std::vector<std::string> sender_on; // the instance of each sender, as last welcomed
    std::unique_ptr<std::atomic<int>[]> client_instance; // of each client, as last welcomed; -1: none
    std::atomic<std::int64_t> first_close{0};
    std::atomic<std::int64_t> last_back{0};
    // 0 until the main thread says: -1 to end, else when sending begins
    // (now_ns()); every thread runs the same schedule, sending the messages
    // of the senders it has.
    std::atomic<std::int64_t> start{0};
    const std::int64_t tick; // between batches of messages, ns

    // When message `seq` is due.
    std::int64_t due(std::uint64_t seq) const
    {
        return start + static_cast<std::int64_t>(seq / batch) * tick;
    }
    const std::uint64_t batch;
};

class generator {
public:
    // Clients `first` to `first + count - 1` of the run, known here by
    // their index from 0 (the run's index names the user, picks the target
    // and the source address).
    generator(const settings& s, run& r, totals& t, int first, int count)
        : settings_(s), run_(r), totals_(t), first_(static_cast<std::size_t>(first)),
          clients_(static_cast<std::size_t>(count)), rng_(static_cast<unsigned>(first) * 7919u + 1)
    {
        const std::size_t words = (r.total_messages + 63) / 64;
        for (auto& c : clients_)
            c.got.assign(words, 0);
        totals_.sent.assign(words, 0);
    }

    std::size_t size() const { return clients_.size(); }
    std::uint64_t global(std::size_t i) const { return first_ + i; }

    // Connects client `i` (blocking: loopback, a few microseconds) and sends
    // its handshake; false if the socket cannot even be made.
    bool connect(std::size_t i)
    {
        client& c = clients_[i];
        ++c.gen;
        c.ended = false;
        c.handshaken = c.open = c.welcomed = c.closing = false;
        c.partial.clear();
        c.writing.clear();
        c.queued.clear();
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            std::fprintf(stderr, "backplane-loadgen: socket: %s\n", std::strerror(errno));
            return false;
        }
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (settings_.sources > 0) {
            ::setsockopt(c.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_in from{};
            from.sin_family = AF_INET;
            from.sin_addr.s_addr = htonl(source_address(global(i)));
            if (::bind(c.fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
                std::fprintf(stderr, "backplane-loadgen: bind: %s\n", std::strerror(errno));
                return fail_connect(i);
            }
        }
        const std::size_t target = global(i) % settings_.targets.size();
        const auto* to = reinterpret_cast<const sockaddr*>(&settings_.targets[target]);
        if (::connect(c.fd, to, sizeof(sockaddr_in)) != 0) {
            if (!settings_.reconnect)
                std::fprintf(stderr, "backplane-loadgen: connect: %s\n", std::strerror(errno));
            return fail_connect(i);
        }
        ring_.receive(c.fd, token(i));
        std::string path = (settings_.socketio ? "/socket.io/?EIO=4&transport=websocket&user=" : "/ws?user=") + user(i);
        c.guessed_global = c.last_global.empty() && !c.last_room.empty();
        if (const auto from = resume_from(c.last_global, c.last_room); settings_.resume && !from.empty())
            path += "&last_id=" + from;
        if (settings_.room_in_url && settings_.rooms > 0)
            path += "&room=" + room_name(i);
        std::string authorization;
        if (!settings_.token_key.empty())
            authorization = "Authorization: Bearer " + mint_token(settings_.token_key, user(i)) + "\r\n";
        write(i, "GET " + path + " HTTP/1.1\r\nHost: " + settings_.hosts[target]
                     + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     + authorization + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        return true;
    }

    // Queues one text frame from client `i`; false if it is not open.
    bool send_text(std::size_t i, std::string_view text)
    {
        if (!clients_[i].open || !clients_[i].welcomed || clients_[i].closing)
            return false;
        if (settings_.socketio) // a Socket.IO event "op" (Engine.IO message 4, Socket.IO event 2)
            write(i, ws::encode_frame(ws::text, "42[\"op\"," + std::string(text) + "]", zero_key));
        else
            write(i, ws::encode_frame(ws::text, text, zero_key));
        return true;
    }

    // Waits up to `timeout_ns` for completions, and reconnects the clients
    // whose backoff is over.
    void run_once(std::int64_t timeout_ns)
    {
        if (!pending_.empty()) {
            const std::int64_t next = pending_.front().first - now_ns();
            timeout_ns = std::min(timeout_ns, std::max<std::int64_t>(next, 0));
        }
        ring_.run_once(std::max<std::int64_t>(timeout_ns, 0));
        const std::int64_t now = now_ns();
        while (!pending_.empty() && pending_.front().first <= now && !stopping) {
            std::pop_heap(pending_.begin(), pending_.end(), std::greater<>());
            const std::size_t i = pending_.back().second;
            pending_.pop_back();
            connect(i);
        }
    }

    // The ring's completions. A token names a client and the connection
    // (generation) the operation was for: those of an earlier connection
    // of the client are stale and ignored.
    void on_receive(std::uint64_t token, std::string_view bytes)
    {
        const auto i = index_of(token);
        if (!current(token))
            return;
        client& c = clients_[i];
        if (c.partial.empty()) {
            keep_rest(c, consume(i, bytes), bytes);
        } else {
            c.partial.append(bytes);
            const std::string_view all = c.partial;
            keep_rest(c, consume(i, all), all);
        }
    }
    void on_receive_end(std::uint64_t token, int result)
    {
        if (!current(token))
            return;
        client& c = clients_[index_of(token)];
        if (!c.ended && !settings_.reconnect)
            std::fprintf(stderr, "backplane-loadgen: read: %s\n",
                         result == 0 ? "the server closed the connection" : std::strerror(-result));
        end(index_of(token), 1006);
    }
    void rearm(std::uint64_t token)
    {
        if (current(token) && !clients_[index_of(token)].ended)
            ring_.receive(clients_[index_of(token)].fd, token);
    }
    void on_sent(std::uint64_t token, int result)
    {
        if (!current(token))
            return;
        const auto i = index_of(token);
        client& c = clients_[i];
        if (result < 0) {
            if (!c.ended && !settings_.reconnect)
                std::fprintf(stderr, "backplane-loadgen: write: %s\n", std::strerror(-result));
            end(i, 1006);
            return;
        }
        c.writing.erase(0, static_cast<std::size_t>(result));
        c.writing += c.queued; // a partial send goes on with what queued since
        c.queued.clear();
        if (!c.writing.empty())
            ring_.send(c.fd, c.writing, token);
    }

    // Adds what this thread's clients hold to the JSON of the run.
    void describe(nlohmann::json& out, const std::vector<std::uint64_t>& sent) const
    {
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            const client& c = clients_[i];
            nlohmann::json segments = nlohmann::json::array();
            for (const auto& g : c.segments)
                segments.push_back({g.instance, ms_since_start(g.opened), g.closed ? ms_since_start(g.closed) : -1.0,
                                    g.code});
            std::uint64_t expected = 0, missing = 0;
            nlohmann::json missing_seqs = nlohmann::json::array(); // the first few, to look into
            for (std::uint64_t seq = 0; seq < run_.total_messages; ++seq) {
                if (!(sent[seq / 64] >> (seq % 64) & 1) || !expects(i, seq))
                    continue;
                ++expected;
                if (c.got[seq / 64] >> (seq % 64) & 1)
                    continue;
                if (++missing <= 20)
                    missing_seqs.push_back(seq);
            }
            out.push_back({{"user", user(i)},
                           {"source", settings_.sources > 0 ? address_text(source_address(global(i))) : ""},
                           {"room", settings_.rooms > 0 ? static_cast<int>(global(i) % settings_.rooms) : -1},
                           {"segments", segments},
                           {"expected", expected},
                           {"missing", missing},
                           {"missing_seqs", missing_seqs},
                           {"duplicates", c.duplicates},
                           {"recovered", c.recovered},
                           {"unrecovered", c.unrecovered},
                           {"resumed_by_time", c.resumed_by_time},
                           {"back_ms", c.back_ms}});
        }
    }

    // Whether client `i` should receive message `seq` (if it was sent).
    bool expects(std::size_t i, std::uint64_t seq) const
    {
        const int room = room_of_message(settings_, seq);
        return room < 0 || static_cast<int>(global(i) % static_cast<std::uint64_t>(settings_.rooms)) == room;
    }

    // Whether client `i` had one connection from before sending to the end.
    bool undisturbed(std::size_t i) const
    {
        int welcomed = 0;
        for (const auto& g : clients_[i].segments)
            if (g.instance >= 0 && (++welcomed > 1 || g.closed != 0 || g.opened > run_.start))
                return false;
        return welcomed == 1;
    }

    double ms_since_start(std::int64_t t) const
    {
        const std::int64_t start = run_.start > 0 ? run_.start.load() : t;
        return static_cast<double>(t - start) / 1e6;
    }

private:
    struct client {
        int fd = -1;
        std::uint32_t gen = 0;        // which connection of the client this is
        std::string partial;          // the start of a frame not yet whole
        std::string writing, queued;  // bytes being sent; bytes waiting for that
        bool handshaken = false, open = false, welcomed = false, ended = true;
        bool closing = false;         // our close frame is sent: no more messages
        bool welcomed_once = false, joined_once = false;
        int attempts = 0;             // reconnect attempts since the last welcome
        std::int64_t down_since = 0;  // when the last connection ended; 0: not down
        std::string last_global, last_room; // the last ids received (--resume)
        bool guessed_global = false, guessed_room = false; // resumed from the other scope's id
        std::vector<segment> segments;
        std::vector<std::uint64_t> got; // bitmap: messages received
        std::uint64_t duplicates = 0;
        int recovered = 0, unrecovered = 0; // recovery answers for resumes from an id received
        int resumed_by_time = 0;            // recovery answers for resumes from a guessed id
        std::vector<double> back_ms;   // for each time it was down: how long
    };

    // Where a scope resumes: after the last id received in it; or, if none
    // was (no message of that scope arrived since the client joined it),
    // from just before the last id of the other scope. Stream ids on one
    // Redis are its clock ("ms-seq"), so anything of this scope published
    // after that other message has a later id; what was published before,
    // the client would have received live.
    static std::string resume_from(const std::string& mine, const std::string& other)
    {
        if (!mine.empty() || other.empty())
            return mine;
        const auto dash = other.find('-');
        const std::uint64_t ms = std::strtoull(other.substr(0, dash).c_str(), nullptr, 10);
        return ms == 0 ? std::string("0-0") : std::to_string(ms - 1) + "-18446744073709551615";
    }

    static constexpr int token_gen_bits = 16;

    std::uint64_t token(std::size_t i) const
    {
        return (static_cast<std::uint64_t>(i) << token_gen_bits) | (clients_[i].gen & 0xffff);
    }
    static std::size_t index_of(std::uint64_t token) { return static_cast<std::size_t>(token >> token_gen_bits); }
    bool current(std::uint64_t token) const
    {
        const auto i = index_of(token);
        return i < clients_.size() && (clients_[i].gen & 0xffff) == (token & 0xffff);
    }

    std::string user(std::size_t i) const { return settings_.user_prefix + std::to_string(global(i)); }
    std::string room_name(std::size_t i) const
    {
        return "room" + std::to_string(global(i) % static_cast<std::uint64_t>(settings_.rooms));
    }

    std::uint32_t source_address(std::uint64_t k) const
    {
        const auto n = static_cast<std::uint64_t>(settings_.sources);
        const auto natted = static_cast<std::uint64_t>(settings_.nat_share * static_cast<double>(settings_.clients));
        // The first `natted` clients share address 0; the others spread over the rest.
        const std::uint64_t s = k < natted || n == 1 ? 0 : 1 + (k - natted) % (n - 1);
        return (127u << 24) | static_cast<std::uint32_t>((1 + s / 256) << 16) | static_cast<std::uint32_t>((s % 256) << 8) | 1u;
    }
    static std::string address_text(std::uint32_t a)
    {
        return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255)
            + "." + std::to_string(a & 255);
    }

    bool fail_connect(std::size_t i)
    {
        client& c = clients_[i];
        if (c.fd >= 0)
            ::close(c.fd);
        c.fd = -1;
        c.ended = true;
        ++totals_.failed;
        c.segments.push_back({-1, now_ns(), now_ns(), 0});
        schedule_reconnect(i);
        return false;
    }

    void end(std::size_t i, int code)
    {
        client& c = clients_[i];
        if (c.ended)
            return;
        c.ended = true;
        const std::int64_t now = now_ns();
        if (c.welcomed) {
            ++totals_.closed;
            --run_.open_now;
            --run_.instances.connected[static_cast<std::size_t>(c.segments.back().instance)];
            c.segments.back().closed = now;
            c.segments.back().code = code;
            std::int64_t zero = 0;
            run_.first_close.compare_exchange_strong(zero, now);
        } else {
            ++totals_.failed;
            c.segments.push_back({-1, now, now, code});
        }
        if (c.down_since == 0)
            c.down_since = now;
        c.open = c.welcomed = false;
        // The socket goes now; completions still on their way for it carry
        // this generation and are ignored.
        ::close(c.fd);
        c.fd = -1;
        ++c.gen;
        schedule_reconnect(i);
    }

    void schedule_reconnect(std::size_t i)
    {
        if (!settings_.reconnect || stopping || run_.start < 0)
            return;
        client& c = clients_[i];
        const double bound = std::min<double>(settings_.backoff_max_ms,
                                              settings_.backoff_initial_ms * std::pow(2.0, std::min(c.attempts, 20)));
        ++c.attempts;
        std::uniform_real_distribution<double> wait(0, bound);
        pending_.emplace_back(now_ns() + static_cast<std::int64_t>(wait(rng_) * 1e6), i);
        std::push_heap(pending_.begin(), pending_.end(), std::greater<>());
    }

    void write(std::size_t i, std::string_view bytes)
    {
        client& c = clients_[i];
        if (!c.writing.empty()) {
            c.queued.append(bytes);
            return;
        }
        c.writing.assign(bytes);
        ring_.send(c.fd, c.writing, token(i));
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
            c.handshaken = true;
            if (in.compare(0, 12, "HTTP/1.1 101") != 0) {
                if (!settings_.reconnect)
                    std::fprintf(stderr, "backplane-loadgen: handshake refused: %.*s\n",
                                 static_cast<int>(in.find('\r')), in.data());
                end(i, 0);
                return in.size();
            }
            c.open = true;
            at = end_of_head + 4;
        }
        const std::int64_t now = now_ns();
        const std::uint32_t gen = c.gen;
        while (c.open && c.gen == gen) {
            const auto h = ws::decode_header(in.data() + at, in.size() - at);
            if (!h || in.size() - at - h->size < h->length)
                break;
            const auto length = static_cast<std::size_t>(h->length);
            on_frame(i, h->op, in.substr(at + h->size, length), now);
            at += h->size + length;
        }
        return c.open && c.gen == gen ? at : in.size();
    }

    // The string value of `"key":"` in a frame of the server (whose strings
    // hold no escaped quote where this reads them: ids, names, the text).
    static std::string_view string_field(std::string_view payload, std::string_view key)
    {
        const auto at = payload.find(key);
        if (at == std::string_view::npos)
            return {};
        const auto from = at + key.size();
        const auto to = payload.find('"', from);
        return to == std::string_view::npos ? std::string_view{} : payload.substr(from, to - from);
    }

    void on_frame(std::size_t i, int opcode, std::string_view payload, std::int64_t now)
    {
        client& c = clients_[i];
        if (opcode == 8) {
            const int code = payload.size() >= 2 ? (int(static_cast<unsigned char>(payload[0])) << 8)
                    | static_cast<unsigned char>(payload[1]) : 1005;
            if (!settings_.reconnect)
                std::fprintf(stderr, "backplane-loadgen: closed by the server (%d)\n", code);
            end(i, code);
            return;
        }
        if (opcode == 9) { // ping: pong with the same payload
            write(i, ws::encode_frame(ws::pong, payload, zero_key));
            return;
        }
        if (opcode != 1)
            return;
        if (settings_.socketio && !socketio_event(i, payload))
            return;
        static constexpr std::string_view text_key = "\"text\":\"";
        const auto t = payload.find(text_key);
        if (t == std::string_view::npos) {
            if (!c.welcomed && payload.find("\"type\":\"welcome\"") != std::string_view::npos)
                welcome(i, string_field(payload, "\"instance\":\""), now);
            else if (payload.find("\"type\":\"joined\"") != std::string_view::npos && !c.joined_once) {
                c.joined_once = true;
                ++run_.joined;
            } else if (payload.find("\"type\":\"draining\"") != std::string_view::npos && !c.closing) {
                // The instance is going away: our close, after the last
                // message we sent, keeps that message; the server's echo
                // ends the connection (and the reconnect follows).
                c.closing = true;
                write(i, ws::encode_frame(ws::close, std::string_view("\x03\xe8", 2), zero_key));
            } else if (payload.find("\"type\":\"recovery\"") != std::string_view::npos) {
                // A resume from a guessed id cannot find that id in the
                // stream, so the server cannot vouch for it: what arrived
                // says whether anything is missing.
                const bool room = payload.find("\"scope\":\"room\"") != std::string_view::npos;
                if (room ? c.guessed_room : c.guessed_global)
                    ++c.resumed_by_time;
                else
                    ++(payload.find("\"recovered\":true") != std::string_view::npos ? c.recovered : c.unrecovered);
            }
            return;
        }
        // "SEQ:NANOSECONDS:padding"
        const char* p = payload.data() + t + text_key.size();
        const char* end = payload.data() + payload.size();
        std::uint64_t seq = 0;
        for (; p < end && *p >= '0' && *p <= '9'; ++p)
            seq = seq * 10 + static_cast<std::uint64_t>(*p - '0');
        std::int64_t sent = 0;
        for (++p; p < end && *p >= '0' && *p <= '9'; ++p)
            sent = sent * 10 + (*p - '0');
        if (seq >= run_.total_messages)
            return; // not this run's
        if (settings_.resume) {
            const auto id = string_field(payload, "\"id\":\"");
            (payload.find("\"scope\":\"room\"") != std::string_view::npos ? c.last_room : c.last_global).assign(id);
        }
        auto& word = c.got[seq / 64];
        const std::uint64_t bit = std::uint64_t(1) << (seq % 64);
        if (word & bit) {
            ++c.duplicates;
            ++totals_.duplicates;
            return;
        }
        word |= bit;
        ++totals_.received;
        totals_.received_room += room_of_message(settings_, seq) >= 0;
        totals_.latency.add(now - sent);
        totals_.last_receipt = now;
        if (!settings_.json.empty())
            totals_.samples.push_back({static_cast<std::uint32_t>(global(i)), static_cast<std::uint32_t>(seq),
                                       static_cast<std::uint32_t>(std::clamp<std::int64_t>((now - sent) / 1000, 0,
                                                                                            UINT32_MAX))});
    }

    // Engine.IO 4 and Socket.IO 5 framing: answers the open packet with a
    // connect to the main namespace and a ping with a pong; true for an event,
    // whose arguments the caller reads as it reads a frame of backplane's.
    bool socketio_event(std::size_t i, std::string_view payload)
    {
        if (payload.substr(0, 1) == "0") // open: {"sid":...,"pingInterval":...}
            write(i, ws::encode_frame(ws::text, "40", zero_key));
        else if (payload == "2")
            write(i, ws::encode_frame(ws::text, "3", zero_key));
        return payload.substr(0, 2) == "42";
    }

    void welcome(std::size_t i, std::string_view instance, std::int64_t now)
    {
        client& c = clients_[i];
        c.welcomed = true;
        const int at = run_.instances.index(instance);
        c.segments.push_back({at, now, 0, 0});
        run_.client_instance[global(i)] = at;
        if (global(i) < static_cast<std::uint64_t>(settings_.senders)) {
            std::lock_guard<std::mutex> lock(run_.senders_mutex);
            run_.sender_on[global(i)] = std::string(instance);
        }
        ++run_.instances.connected[static_cast<std::size_t>(at)];
        ++run_.open_now;
        if (!c.welcomed_once) {
            c.welcomed_once = true;
            ++totals_.welcomed;
        }
        if (c.down_since != 0) {
            c.back_ms.push_back(static_cast<double>(now - c.down_since) / 1e6);
            c.down_since = 0;
            run_.last_back = now;
        }
        c.attempts = 0;
        if (settings_.rooms > 0) {
            std::string join = "{\"op\":\"join\",\"room\":\"" + room_name(i) + "\"";
            c.guessed_room = c.last_room.empty() && !c.last_global.empty();
            if (const auto from = resume_from(c.last_room, c.last_global); settings_.resume && !from.empty())
                join += ",\"last_id\":\"" + from + "\"";
            send_text(i, join + "}");
        }
    }

    const settings& settings_;
    run& run_;
    totals& totals_;
    const std::size_t first_;
    std::vector<client> clients_;
    std::vector<std::pair<std::int64_t, std::size_t>> pending_; // min-heap: (when, client) to reconnect
    std::mt19937 rng_;
    // 2,048 buffers of 16 KiB: enough for every client of a run to have
    // a read in flight at once; if they run out, a receive is armed again.
    ring<generator> ring_{*this, 2048, 16384};

};

// Connects this thread's clients, waits for the start, then sends the
// messages of its senders on the common schedule and reads until the end.
void client_thread(const settings& s, run& r, int k, std::unique_ptr<generator>& out)
{
    totals& t = r.totals[static_cast<std::size_t>(k)];
    const int first = static_cast<int>(std::int64_t(s.clients) * k / s.threads);
    const int count = static_cast<int>(std::int64_t(s.clients) * (k + 1) / s.threads) - first;
    out = std::make_unique<generator>(s, r, t, first, count); // made here: the ring is this thread's
    generator& g = *out;
    const auto failed = [&] { return s.reconnect ? 0 : static_cast<int>(t.failed); };

    // Connect in waves, so that the listen backlog is never the limit.
    for (int i = 0; i < count && !stopping; ++i) {
        if (!g.connect(static_cast<std::size_t>(i)) && !s.reconnect) {
            t.failed += static_cast<std::uint64_t>(count - i - 1);
            break;
        }
        if (i % 500 == 499)
            while (t.welcomed + failed() < i - 1000 && !stopping)
                g.run_once(100'000'000);
    }
    const auto deadline = clock_type::now() + std::chrono::seconds(30);
    while (t.welcomed + failed() < count && clock_type::now() < deadline && !stopping)
        g.run_once(100'000'000);
    r.welcomed += t.welcomed;
    ++r.ready_threads;
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
    // A sender that is not connected at its turn sends nothing: the message
    // is not sent, and nobody expects it.
    std::string text;
    const std::uint64_t total = r.total_messages;
    std::uint64_t j = 0;
    while (!stopping && j < total) {
        for (; j < total && r.due(j) <= now_ns(); ++j) {
            const auto sender = static_cast<int>(j % static_cast<std::uint64_t>(s.senders));
            if (sender < first || sender >= first + count)
                continue;
            const std::int64_t now = now_ns();
            std::string body = std::to_string(j) + ":" + std::to_string(now) + ":";
            body.resize(s.size, 'x');
            const int room = room_of_message(s, j);
            text.assign("{\"op\":\"send\",");
            if (room >= 0)
                text.append("\"room\":\"room").append(std::to_string(room)).append("\",");
            text.append("\"text\":\"").append(body).append("\"}");
            if (!g.send_text(static_cast<std::size_t>(sender - first), text))
                continue;
            if (t.first_send == 0)
                t.first_send = now;
            t.sent[j / 64] |= std::uint64_t(1) << (j % 64);
        }
        g.run_once(j < total ? r.due(j) - now_ns() : 0);
    }
    const std::int64_t end = start + static_cast<std::int64_t>(s.duration * 1e9);
    while (!stopping && now_ns() < end) // --rate 0: the connections are held for the duration
        g.run_once(end - now_ns());
    // The grace period, for the last messages: until every client of this
    // thread has every message it expects of all that were scheduled (those
    // some sender skipped never come), or it is over.
    std::uint64_t expected = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
        for (std::uint64_t seq = 0; seq < total; ++seq)
            expected += g.expects(i, seq);
    const std::int64_t grace_end = now_ns() + static_cast<std::int64_t>(s.grace * 1e9);
    while (!stopping && t.received < expected && now_ns() < grace_end)
        g.run_once(50'000'000);
}

// The run's results: the summary lines on stdout and, with --json, the details.
int report(const settings& s, run& r, const std::vector<std::unique_ptr<generator>>& generators,
           const std::vector<std::vector<int>>& timeline, std::int64_t start, std::pair<double, double> cpu)
{
    totals t;
    t.sent.assign((r.total_messages + 63) / 64, 0);
    for (const totals& each : r.totals) {
        t.received += each.received;
        t.received_room += each.received_room;
        t.duplicates += each.duplicates;
        t.closed += each.closed;
        if (each.first_send != 0 && (t.first_send == 0 || each.first_send < t.first_send))
            t.first_send = each.first_send;
        t.last_receipt = std::max(t.last_receipt, each.last_receipt);
        t.latency.merge(each.latency);
        for (std::size_t w = 0; w < t.sent.size(); ++w)
            t.sent[w] |= each.sent[w];
    }
    std::vector<std::uint64_t> members(static_cast<std::size_t>(std::max(s.rooms, 1)), 0);
    for (int k = 0; k < s.clients && s.rooms > 0; ++k)
        ++members[static_cast<std::size_t>(k % s.rooms)];
    std::uint64_t sent = 0, expected = 0, expected_room = 0;
    for (std::uint64_t seq = 0; seq < r.total_messages; ++seq) {
        if (!(t.sent[seq / 64] >> (seq % 64) & 1))
            continue;
        ++sent;
        const int room = room_of_message(s, seq);
        expected += room < 0 ? static_cast<std::uint64_t>(s.clients) : members[static_cast<std::size_t>(room)];
        expected_room += room < 0 ? 0 : members[static_cast<std::size_t>(room)];
    }
    const double window_s = static_cast<double>(t.last_receipt - t.first_send) / 1e9;
    const std::uint64_t lost = expected > t.received ? expected - t.received : 0;
    std::printf("sent %llu messages of %zu bytes at %.0f/s for %.1f s from %d sender(s)\n",
                static_cast<unsigned long long>(sent), s.size, s.rate, s.duration, s.senders);
    std::printf("deliveries: expected %llu, received %llu, lost %llu (%.4f%%), connections closed %llu\n",
                static_cast<unsigned long long>(expected), static_cast<unsigned long long>(t.received),
                static_cast<unsigned long long>(lost),
                expected ? 100.0 * static_cast<double>(lost) / static_cast<double>(expected) : 0.0,
                static_cast<unsigned long long>(t.closed));
    std::printf("duplicates: %llu\n", static_cast<unsigned long long>(t.duplicates));
    std::printf("deliveries/s: %.0f (first send to last receipt: %.2f s)\n",
                window_s > 0 ? static_cast<double>(t.received) / window_s : 0.0, window_s);
    std::printf("latency send->receipt: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", t.latency.percentile_ms(0.50),
                t.latency.percentile_ms(0.99), t.latency.max_ms());
    // The generator shares the machine with what it measures: its own cost.
    const double per = t.received ? 1e6 / static_cast<double>(t.received) : 0.0;
    std::printf("load generator CPU: %.2f us user + %.2f us system per delivery\n", cpu.first * per, cpu.second * per);

    if (!s.summary.empty()) {
        const nlohmann::json out = {
            {"clients", s.clients},
            {"rate", s.rate},
            {"size", s.size},
            {"duration_s", s.duration},
            {"sent", sent},
            {"expected", expected},
            {"received", t.received},
            {"missing", lost},
            {"duplicates", t.duplicates},
            {"closed", t.closed},
            {"deliveries_per_s", window_s > 0 ? static_cast<double>(t.received) / window_s : 0.0},
            {"latency", {{"all", t.latency.summary()}}},
            {"cpu_s", {{"user", cpu.first}, {"system", cpu.second}}},
        };
        std::ofstream(s.summary) << out.dump() << '\n';
    }
    if (!s.json.empty()) {
        using nlohmann::json;
        const auto ms = [&](std::int64_t when) { return static_cast<double>(when - start) / 1e6; };
        // The clients with one connection from before the start to the end,
        // and the disruption: from the first close to the last client back.
        std::vector<bool> undisturbed(static_cast<std::size_t>(s.clients), false);
        json clients = json::array();
        for (const auto& g : generators) {
            for (std::size_t i = 0; i < g->size(); ++i)
                undisturbed[g->global(i)] = g->undisturbed(i);
            g->describe(clients, t.sent);
        }
        double from = 0, to = 0;
        bool has_window = s.window.size() == 2;
        if (has_window) {
            from = s.window[0] * 1e3;
            to = s.window[1] * 1e3;
        } else if (r.first_close > 0) {
            has_window = true;
            from = ms(r.first_close);
            to = r.last_back > r.first_close ? ms(r.last_back) : s.duration * 1e3;
        }
        histogram calm, disturbed_window;
        for (const totals& each : r.totals)
            for (const sample& x : each.samples) {
                if (!undisturbed[x.client])
                    continue;
                const std::int64_t ns = static_cast<std::int64_t>(x.latency_us) * 1000;
                calm.add(ns);
                const double at = ms(r.due(x.seq));
                if (has_window && at >= from && at <= to)
                    disturbed_window.add(ns);
            }
        std::vector<std::string> names = r.instances.names();
        json counts = json::array();
        for (const auto& row : timeline)
            counts.push_back(std::vector<int>(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(names.size())));
        const json out = {
            {"clients", s.clients},
            {"sources", s.sources},
            {"nat_share", s.nat_share},
            {"rooms", s.rooms},
            {"rate", s.rate},
            {"duration_s", s.duration},
            {"instances", names},
            {"sent", sent},
            {"expected", expected},
            {"received", t.received},
            {"missing", lost},
            {"duplicates", t.duplicates},
            {"by_kind", {{"broadcast", {{"expected", expected - expected_room},
                                        {"received", t.received - t.received_room}}},
                         {"room", {{"expected", expected_room}, {"received", t.received_room}}}}},
            {"latency", {{"all", t.latency.summary()},
                         {"undisturbed", calm.summary()},
                         {"undisturbed_in_window", disturbed_window.summary()},
                         {"window_ms", has_window ? json::array({from, to}) : json(nullptr)}}},
            {"disruption", r.first_close > 0 ? json{{"first_close_ms", ms(r.first_close)},
                                                    {"last_back_ms", r.last_back > 0 ? ms(r.last_back) : -1.0}}
                                             : json(nullptr)},
            {"timeline", {{"interval_ms", 100}, {"instances", names}, {"counts", counts}}},
            {"cpu_s", {{"user", cpu.first}, {"system", cpu.second}}},
            {"clients_detail", clients},
        };
        std::ofstream(s.json) << out.dump() << '\n';
    }
    if (s.reconnect)
        return 0; // the details say what happened
    return t.received == expected && t.closed == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    const settings s = parse_args(argc, argv);
    std::signal(SIGINT, [](int) { stopping = true; });
    std::signal(SIGTERM, [](int) { stopping = true; });
    std::signal(SIGPIPE, SIG_IGN);
    run r(s);
    std::vector<std::unique_ptr<generator>> generators(static_cast<std::size_t>(s.threads));
    std::vector<std::thread> threads;
    const auto connect_start = clock_type::now();
    for (int k = 0; k < s.threads; ++k)
        threads.emplace_back(client_thread, std::cref(s), std::ref(r), k,
                             std::ref(generators[static_cast<std::size_t>(k)]));
    const auto join_all = [&] {
        for (std::thread& t : threads)
            t.join();
    };

    while (r.ready_threads < s.threads)
        std::this_thread::sleep_for(std::chrono::milliseconds(1)); // polls the threads' count
    const double connect_s = std::chrono::duration<double>(clock_type::now() - connect_start).count();
    std::printf("connected %d/%d clients over %zu instance(s) in %.2f s\n", r.welcomed.load(), s.clients,
                s.targets.size(), connect_s);
    std::fflush(stdout);
    if (r.welcomed < s.clients && !s.reconnect) {
        r.start = -1;
        join_all();
        return 1;
    }
    if (s.idle > 0) {
        std::printf("idle; SIGINT or SIGTERM ends\n");
        std::fflush(stdout);
        r.start = now_ns();
        join_all();
        return 0;
    }
    // Every first join answered, so that room messages have their members.
    while (s.rooms > 0 && r.joined < s.clients && !stopping)
        std::this_thread::sleep_for(std::chrono::milliseconds(1)); // polls the threads' count
    if (s.start_on_stdin) {
        // Which instances the senders are on, for a script that disrupts
        // another one.
        std::printf("ready; senders on");
        {
            std::lock_guard<std::mutex> lock(r.senders_mutex);
            for (const auto& name : r.sender_on)
                std::printf(" %s", name.c_str());
        }
        // And which instances host each room's members: each of them must
        // hold the room's channel before a room message can reach them all.
        const auto names = r.instances.names();
        std::vector<std::vector<bool>> hosts(static_cast<std::size_t>(s.rooms), std::vector<bool>(names.size()));
        for (int k = 0; k < s.clients && s.rooms > 0; ++k)
            if (const int at = r.client_instance[static_cast<std::size_t>(k)]; at >= 0)
                hosts[static_cast<std::size_t>(k % s.rooms)][static_cast<std::size_t>(at)] = true;
        std::printf("; rooms");
        for (std::size_t room = 0; room < hosts.size(); ++room) {
            std::printf(" room%zu=", room);
            const char* comma = "";
            for (std::size_t at = 0; at < names.size(); ++at)
                if (hosts[room][at]) {
                    std::printf("%s%s", comma, names[at].c_str());
                    comma = ",";
                }
        }
        std::printf("\n");
        std::fflush(stdout);
        std::string line;
        std::getline(std::cin, line);
    }

    const auto cpu_start = cpu_seconds();
    const std::int64_t start = now_ns();
    std::printf("sending from %lld ms (realtime)\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()));
    std::fflush(stdout);
    r.start = start;

    // Per-instance connections every 100 ms, as the clients were welcomed.
    std::vector<std::vector<int>> timeline;
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
        auto next = clock_type::now();
        while (sampling) {
            std::vector<int> counts;
            for (const auto& c : r.instances.connected)
                counts.push_back(c.load());
            timeline.push_back(std::move(counts));
            next += std::chrono::milliseconds(100);
            std::this_thread::sleep_until(next); // the sampling period
        }
    });
    join_all();
    sampling = false;
    sampler.join();
    const auto cpu_end = cpu_seconds();
    return report(s, r, generators, timeline, start,
                  {cpu_end.first - cpu_start.first, cpu_end.second - cpu_start.second});
}
