// The seed design's channel choices, measured on a real local Redis.
//
//   build/benchmarks/bench_channels [--benchmark_filter=...]
//
// The program starts its own redis-server on a free loopback port (as
// bench_redis_publish does). Five hubs share it, each with its own
// redis_pubsub broker, on one io_context, with the memory transport (the
// WebSocket side is not what is compared here):
// - rooms/global_channel, rooms/per_room_channel: the seed's quiz 3 made
//   real. 1,000 rooms of 10 users, each user on a hub chosen at random as a
//   balancer would; an iteration sends one message to every room.
// - direct/per_user_channel, direct/shared_channel (the seed's Option A),
//   direct/instance_channel (Option B: the host looked up in Redis presence,
//   then its instance channel) with 10,000 and 100,000 users, each with one
//   connection on a hub chosen at random; an iteration sends 1,000 direct
//   messages between random users.
// An iteration ends when every publish is answered and every subscriber has
// handed over what it received (a PING barrier on every connection). Its
// counters: messages each hub received from Redis per message sent
// (received/msg, over all hubs), Redis's CPU per message (INFO cpu, user and
// system), the channels Redis holds (pubsub_channels), deliveries per
// message; for direct messages also the latency of one alone, from the send
// to its delivery (the median of 200, sent one after the other).
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/hub.hpp>
#include <backplane/locator/redis_presence.hpp>
#include <backplane/transport/memory.hpp>

#include "run_until.hpp"
#include "support/redis_server.hpp"

#include <asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

namespace bp = backplane;
using bp::bench::run_until;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::unique_ptr<bp::test::redis_server> server;
const std::string payload(64, 'x');
constexpr int hub_count = 5;

// What Redis says of itself: INFO's "name:value" lines.
class redis_meter {
public:
    explicit redis_meter(asio::io_context& io) : io_(io), admin_(io.get_executor(), bp::redis::parse_url(server->url()))
    {
    }

    double cpu_seconds() { return field("cpu", "used_cpu_sys:") + field("cpu", "used_cpu_user:"); }
    double channels() { return field("stats", "pubsub_channels:"); }
    std::int64_t integer(std::vector<std::string> args)
    {
        bp::redis::reply out;
        bool done = false;
        admin_.execute(std::move(args), [&](std::error_code, const bp::redis::reply& r) {
            out = r;
            done = true;
        });
        run_until(io_, [&] { return done; });
        return out.integer;
    }

private:
    double field(const char* section, std::string_view name)
    {
        std::string text;
        bool done = false;
        admin_.execute({"INFO", section}, [&](std::error_code, const bp::redis::reply& r) {
            text = r.text;
            done = true;
        });
        run_until(io_, [&] { return done; });
        const auto at = text.find(name);
        return at == std::string::npos ? -1 : std::strtod(text.c_str() + at + name.size(), nullptr);
    }

    asio::io_context& io_;
    bp::redis::connection admin_;
};

// Five hubs on the server, the users' connections, and the barrier.
template <class Locator>
class hubs {
public:
    using hub_type = bp::basic_hub<bp::transport::memory, bp::broker::redis_pubsub, Locator>;

    explicit hubs(bp::hub_options base)
    {
        for (int i = 0; i < hub_count; ++i) {
            auto o = base;
            o.instance_id = "i" + std::to_string(i + 1);
            bp::broker::redis_pubsub_options bo;
            bo.client_name = o.instance_id;
            bo.connection.max_pending = 1 << 20;
            bp::broker::redis_pubsub broker(io.get_executor(), server->url(), bo);
            if constexpr (std::is_same_v<Locator, bp::locator::none>) {
                all_.push_back(std::make_unique<hub_type>(bp::transport::memory{}, std::move(broker), o));
            } else {
                // Heartbeats far apart: their writes are not what is measured.
                bp::locator::redis_presence_options po;
                po.heartbeat_interval = 600s;
                po.ttl = 1200s;
                po.listen_expirations = false;
                po.sweep_interval = 0ms;
                all_.push_back(std::make_unique<hub_type>(
                    bp::transport::memory{}, std::move(broker), Locator(io.get_executor(), server->url(), po), o));
            }
        }
        run_until(io, [&] {
            return std::all_of(all_.begin(), all_.end(), [](auto& h) { return h->broker().connected(); });
        });
    }

    hub_type& operator[](int i) { return *all_[static_cast<std::size_t>(i)]; }

    /// Opens a connection for `user` on hub `i`.
    std::pair<bp::transport::memory::connection_handle, bp::connection_id> connect(int i, const std::string& user)
    {
        auto c = bp::transport::memory::make_connection();
        std::error_code ec;
        const auto id = (*this)[i].open(c, user, ec);
        if (ec)
            std::abort();
        return {c, id};
    }

    /// Every publish answered, then every subscriber's PING answered: what
    /// was published has been handed to the hubs.
    bool settle()
    {
        std::size_t left = all_.size();
        for (auto& h : all_)
            h->broker().publisher().execute({"PING"}, [&](std::error_code, const bp::redis::reply&) { --left; });
        if (!run_until(io, [&] { return left == 0; }))
            return false;
        left = all_.size();
        for (auto& h : all_)
            h->broker().subscriber().ping([&](std::error_code) { --left; });
        return run_until(io, [&] { return left == 0; });
    }

    template <class F>
    std::uint64_t sum(F f)
    {
        std::uint64_t n = 0;
        for (auto& h : all_)
            n += f(*h);
        return n;
    }
    std::uint64_t received() { return sum([](hub_type& h) { return h.broker().stats().received; }); }
    std::uint64_t deliveries() { return sum([](hub_type& h) { return h.stats().deliveries; }); }

    asio::io_context io;

private:
    std::vector<std::unique_ptr<hub_type>> all_;
};

// Counters of a run, from what changed between `start` and its end.
template <class Hubs>
struct tally {
    tally(Hubs& h, redis_meter& m) : hubs(h), meter(m), received(h.received()), deliveries(h.deliveries()),
                                     cpu(m.cpu_seconds())
    {
    }

    void report(benchmark::State& state, double messages)
    {
        state.counters["msgs/s"] = benchmark::Counter(messages, benchmark::Counter::kIsRate);
        state.counters["received/msg"] = double(hubs.received() - received) / messages;
        state.counters["deliveries/msg"] = double(hubs.deliveries() - deliveries) / messages;
        state.counters["redis_cpu_us/msg"] = (meter.cpu_seconds() - cpu) * 1e6 / messages;
        state.counters["channels"] = meter.channels();
    }

    Hubs& hubs;
    redis_meter& meter;
    std::uint64_t received, deliveries;
    double cpu;
};

void rooms(benchmark::State& state, bp::room_routing routing)
{
    constexpr int room_count = 1000, per_room = 10;
    bp::hub_options o;
    o.rooms = routing;
    hubs<bp::locator::none> h(o);
    redis_meter meter(h.io);
    meter.integer({"FLUSHALL"});
    std::mt19937 rng(3);
    std::vector<bp::transport::memory::connection_handle> held;
    std::vector<int> sender(room_count); // the hub of each room's first member
    for (int r = 0; r < room_count; ++r)
        for (int u = 0; u < per_room; ++u) {
            const int at = int(rng() % hub_count);
            auto [c, id] = h.connect(at, "u" + std::to_string(r * per_room + u));
            if (h[at].join(id, "room" + std::to_string(r)))
                return state.SkipWithError("join refused");
            held.push_back(c);
            if (u == 0)
                sender[r] = at;
        }
    if (!h.settle())
        return state.SkipWithError("no barrier");

    tally<decltype(h)> t(h, meter);
    for (auto _ : state) {
        for (int r = 0; r < room_count; ++r)
            h[sender[r]].send_to_room("room" + std::to_string(r), payload);
        if (!h.settle())
            return state.SkipWithError("no barrier");
    }
    t.report(state, double(state.iterations()) * room_count);
}

template <class Locator>
void direct(benchmark::State& state, bp::direct_routing routing, int users)
{
    constexpr int batch = 1000;
    bp::hub_options o;
    o.direct = routing;
    hubs<Locator> h(o);
    redis_meter meter(h.io);
    meter.integer({"FLUSHALL"});
    std::mt19937 rng(7);
    std::vector<bp::transport::memory::connection_handle> conns;
    std::vector<int> hub_of;
    for (int u = 0; u < users; ++u) {
        hub_of.push_back(int(rng() % hub_count));
        conns.push_back(h.connect(hub_of.back(), "u" + std::to_string(u)).first);
    }
    // Option B looks the host up: every user must be in presence first.
    if (routing == bp::direct_routing::instance_channel
        && !run_until(h.io, [&] { return meter.integer({"HLEN", "user:host"}) == users; }))
        return state.SkipWithError("presence incomplete");
    if (!h.settle())
        return state.SkipWithError("no barrier");

    // Published: sent at once, or (Option B) once the lookup answered.
    const auto published = [&] { return h.sum([](auto& hub) { return hub.stats().published; }); };
    tally<decltype(h)> t(h, meter);
    for (auto _ : state) {
        const auto before = published();
        for (int k = 0; k < batch; ++k) {
            const auto from = rng() % std::uint32_t(users), to = rng() % std::uint32_t(users);
            h[hub_of[from]].send_to_user("u" + std::to_string(to), payload);
        }
        if (!run_until(h.io, [&] { return published() - before == batch; }) || !h.settle())
            return state.SkipWithError("no barrier");
    }
    const double messages = double(state.iterations()) * batch;
    if (h.deliveries() - t.deliveries != std::uint64_t(messages))
        return state.SkipWithError("a direct message was lost or delivered twice");
    t.report(state, messages);

    // One at a time: the latency of a direct message alone.
    std::vector<double> us;
    for (int k = 0; k < 200; ++k) {
        const auto from = rng() % std::uint32_t(users), to = rng() % std::uint32_t(users);
        const auto had = conns[to]->frames_received();
        const auto start = clock_type::now();
        h[hub_of[from]].send_to_user("u" + std::to_string(to), payload);
        if (!run_until(h.io, [&] { return conns[to]->frames_received() > had; }))
            return state.SkipWithError("a direct message did not arrive");
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
    }
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    state.counters["latency_us"] = us[us.size() / 2];
}

} // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    server = std::make_unique<bp::test::redis_server>();
    const auto each = [](benchmark::internal::Benchmark* b) { b->Unit(benchmark::kMillisecond)->UseRealTime(); };
    each(benchmark::RegisterBenchmark("rooms/global_channel", rooms, bp::room_routing::global_channel));
    each(benchmark::RegisterBenchmark("rooms/per_room_channel", rooms, bp::room_routing::per_room_channel));
    for (int users : {10000, 100000}) {
        const auto n = "/" + std::to_string(users);
        each(benchmark::RegisterBenchmark(("direct/per_user_channel" + n).c_str(), direct<bp::locator::none>,
                                          bp::direct_routing::per_user_channel, users));
        each(benchmark::RegisterBenchmark(("direct/shared_channel" + n).c_str(), direct<bp::locator::none>,
                                          bp::direct_routing::shared_channel, users));
        each(benchmark::RegisterBenchmark(("direct/instance_channel" + n).c_str(),
                                          direct<bp::locator::redis_presence>, bp::direct_routing::instance_channel,
                                          users));
    }
    benchmark::RunSpecifiedBenchmarks();
    server.reset();
    benchmark::Shutdown();
}
