// One Redis against a Redis Cluster: what each message costs the Redis
// servers, and so how much traffic each carries before one of its processes
// fills a core.
//
//   build/benchmarks/bench_cluster [--benchmark_filter=...]
//
// The program starts its own servers on free loopback ports: one
// redis-server, and a cluster of 3 masters with a replica each. N hubs (2, 8,
// 32: the instances of a service, without WebSocket clients: the memory
// transport) share one of them, each with its own broker, on one io_context:
// redis_pubsub on the one Redis, redis_sharded (SSUBSCRIBE, SPUBLISH) on the
// cluster; with history, redis_streams on the one Redis and
// redis_sharded_streams on the cluster (a stream per channel, written by the
// same script that publishes).
// - rooms/... and rooms/..._streams: 1,000 rooms of 10 users, each user on a hub chosen at random
//   as a balancer would; an iteration sends one message to every room, and
//   as many times that as there are masters (1, 3): each master gets as many
//   messages at a time as the one Redis, as it would near its limit (Redis's
//   cost per message falls with the messages it reads at a time).
// - global/...: one connection per hub; an iteration sends 1,000 broadcasts
//   per master, each from a hub chosen at random; global/cluster_spread with
//   hub_options::global_channels = 16 (each hub publishes on one of 16
//   channels, and subscribes all 16).
// An iteration ends when every publish is answered and every subscriber has
// handed over what it received. Counters: Redis CPU per message (INFO cpu,
// user and system) over the masters and on the busiest master, and what
// that makes the busiest master's limit: 1 s of CPU / its CPU per message,
// the messages per second at which it would fill its core (capacity/s).
// Replicas are not counted: each would run on its own host, as its master.
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/broker/redis_sharded.hpp>
#include <backplane/broker/redis_sharded_streams.hpp>
#include <backplane/broker/redis_streams.hpp>
#include <backplane/hub.hpp>
#include <backplane/transport/memory.hpp>

#include "support/redis_cluster_server.hpp"
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
using namespace std::chrono_literals;

std::unique_ptr<bp::test::redis_server> one_redis;
std::unique_ptr<bp::test::redis_cluster_server> cluster;
const std::string payload(64, 'x');

// The CPU each master has used (INFO cpu, user and system), in seconds.
class cpu_meter {
public:
    cpu_meter(asio::io_context& io, const std::vector<std::string>& urls) : io_(io)
    {
        for (const auto& url : urls)
            nodes_.push_back(std::make_unique<bp::redis::connection>(io.get_executor(), bp::redis::parse_url(url)));
    }

    std::size_t masters() const noexcept { return nodes_.size(); }

    std::vector<double> seconds()
    {
        std::vector<double> out;
        for (auto& node : nodes_) {
            std::string text;
            bool done = false;
            node->execute({"INFO", "cpu"}, [&](std::error_code, const bp::redis::reply& r) {
                text = r.text;
                done = true;
            });
            run_until(io_, [&] { return done; });
            out.push_back(field(text, "used_cpu_sys:") + field(text, "used_cpu_user:"));
        }
        return out;
    }

private:
    static double field(const std::string& text, std::string_view name)
    {
        const auto at = text.find(name);
        return at == std::string::npos ? 0 : std::strtod(text.c_str() + at + name.size(), nullptr);
    }

    asio::io_context& io_;
    std::vector<std::unique_ptr<bp::redis::connection>> nodes_;
};

// Whether the broker runs on the one Redis (else on the cluster).
template <class Broker>
constexpr bool on_one_redis =
    std::is_same_v<Broker, bp::broker::redis_pubsub> || std::is_same_v<Broker, bp::broker::redis_streams>;

// The masters' URLs (the one Redis, or the cluster's masters).
template <class Broker>
std::vector<std::string> masters()
{
    if constexpr (on_one_redis<Broker>)
        return {one_redis->url()};
    std::vector<std::string> out;
    for (std::size_t i = 0; i < cluster->size(); ++i)
        if (cluster->cli_output(i, {"ROLE"}).rfind("master", 0) == 0)
            out.push_back(cluster->node(i).url());
    return out;
}

// Each broker's options, and their connection settings.
template <class Broker>
struct options;
template <>
struct options<bp::broker::redis_pubsub> {
    using type = bp::broker::redis_pubsub_options;
};
template <>
struct options<bp::broker::redis_streams> {
    using type = bp::broker::redis_streams_options;
};
template <>
struct options<bp::broker::redis_sharded> {
    using type = bp::broker::redis_sharded_options;
};
template <>
struct options<bp::broker::redis_sharded_streams> {
    using type = bp::broker::redis_sharded_streams_options;
};
template <class O>
bp::redis::connection_options& connection_options(O& o)
{
    if constexpr (std::is_same_v<O, bp::broker::redis_sharded_streams_options>)
        return o.streams.connection;
    else
        return o.connection;
}

// N hubs on the server or the cluster, their users' connections, the barrier.
template <class Broker>
class hubs {
public:
    using hub_type = bp::basic_hub<bp::transport::memory, Broker>;

    explicit hubs(int n, std::size_t global_channels = 1)
    {
        for (int i = 0; i < n; ++i) {
            bp::hub_options o;
            o.global_channels = global_channels;
            o.instance_id = "i" + std::to_string(i + 1);
            typename options<Broker>::type bo;
            connection_options(bo).max_pending = 1 << 20;
            if constexpr (std::is_same_v<Broker, bp::broker::redis_sharded_streams>) {
                // A stream in its channel's slot: the room is the hash tag.
                o.global_channel = "chat:{global}";
                o.room_channel = "chat:room:{{room}}";
                o.user_channel = "notif:user:{{user}}";
            }
            const std::string url = on_one_redis<Broker> ? one_redis->url() : "redis://" + cluster->seeds();
            all_.push_back(std::make_unique<hub_type>(bp::transport::memory{}, Broker(io.get_executor(), url, bo), o));
        }
        run_until(io, [&] { return connected(); });
    }

    int size() const { return int(all_.size()); }
    hub_type& operator[](int i) { return *all_[static_cast<std::size_t>(i)]; }

    bool connected()
    {
        return std::all_of(all_.begin(), all_.end(), [](auto& h) { return h->broker().connected(); });
    }

    std::pair<bp::transport::memory::connection_handle, bp::connection_id> connect(int i, const std::string& user)
    {
        auto c = bp::transport::memory::make_connection();
        std::error_code ec;
        const auto id = (*this)[i].open(c, user, ec);
        if (ec)
            std::abort();
        return {c, id};
    }

    /// Every publish answered, then every subscriber's PING answered.
    bool settle()
    {
        if (!run_until(io, [&] { return connected(); }))
            return false;
        std::size_t left = all_.size();
        if constexpr (on_one_redis<Broker>) {
            for (auto& h : all_)
                h->broker().publisher().execute({"PING"}, [&](std::error_code, const bp::redis::reply&) { --left; });
            if (!run_until(io, [&] { return left == 0; }))
                return false;
            left = all_.size();
            for (auto& h : all_)
                h->broker().subscriber().ping([&](std::error_code) { --left; });
        } else {
            for (auto& h : all_)
                h->broker().ping([&](std::error_code) { --left; });
        }
        return run_until(io, [&] { return left == 0; });
    }

    std::uint64_t received()
    {
        std::uint64_t n = 0;
        for (auto& h : all_)
            n += h->broker().stats().received;
        return n;
    }

    asio::io_context io;

private:
    std::vector<std::unique_ptr<hub_type>> all_;
};

// The counters, from what changed since construction.
template <class Hubs>
struct tally {
    tally(Hubs& h, cpu_meter& m) : hubs(h), meter(m), received(h.received()), cpu(m.seconds()) {}

    void report(benchmark::State& state, double messages)
    {
        const auto now = meter.seconds();
        double total = 0, busiest = 0;
        for (std::size_t i = 0; i < now.size(); ++i) {
            total += now[i] - cpu[i];
            busiest = std::max(busiest, now[i] - cpu[i]);
        }
        state.counters["msgs/s"] = benchmark::Counter(messages, benchmark::Counter::kIsRate);
        state.counters["received/msg"] = double(hubs.received() - received) / messages;
        state.counters["redis_cpu_us/msg"] = total * 1e6 / messages;
        state.counters["busiest_cpu_us/msg"] = busiest * 1e6 / messages;
        state.counters["capacity/s"] = busiest > 0 ? messages / busiest : 0;
        state.counters["masters"] = double(now.size());
    }

    Hubs& hubs;
    cpu_meter& meter;
    std::uint64_t received;
    std::vector<double> cpu;
};

template <class Broker>
void rooms(benchmark::State& state)
{
    constexpr int room_count = 1000, per_room = 10;
    hubs<Broker> h(int(state.range(0)));
    cpu_meter meter(h.io, masters<Broker>());
    std::mt19937 rng(3);
    std::vector<bp::transport::memory::connection_handle> held;
    std::vector<int> sender(room_count); // the hub of each room's first member
    for (int r = 0; r < room_count; ++r)
        for (int u = 0; u < per_room; ++u) {
            const int at = int(rng() % std::uint32_t(h.size()));
            auto [c, id] = h.connect(at, "u" + std::to_string(r * per_room + u));
            if (h[at].join(id, "room" + std::to_string(r)))
                return state.SkipWithError("join refused");
            held.push_back(c);
            if (u == 0)
                sender[r] = at;
        }
    if (!h.settle())
        return state.SkipWithError("no barrier");

    // As much for each master per iteration as for the one Redis: a master
    // near its limit reads as many messages at a time as the one Redis near
    // its own, and Redis's cost per message falls with the messages per read.
    const int rounds = int(meter.masters());
    tally<hubs<Broker>> t(h, meter);
    for (auto _ : state) {
        for (int k = 0; k < rounds; ++k)
            for (int r = 0; r < room_count; ++r)
                h[sender[r]].send_to_room("room" + std::to_string(r), payload);
        if (!h.settle())
            return state.SkipWithError("no barrier");
    }
    t.report(state, double(state.iterations()) * room_count * rounds);
}

template <class Broker>
void global(benchmark::State& state, std::size_t global_channels)
{
    constexpr int batch = 1000;
    hubs<Broker> h(int(state.range(0)), global_channels);
    cpu_meter meter(h.io, masters<Broker>());
    std::vector<bp::transport::memory::connection_handle> held;
    for (int i = 0; i < h.size(); ++i)
        held.push_back(h.connect(i, "u" + std::to_string(i)).first);
    if (!h.settle())
        return state.SkipWithError("no barrier");
    std::mt19937 rng(5);
    const int count = batch * int(meter.masters()); // as for rooms
    tally<hubs<Broker>> t(h, meter);
    for (auto _ : state) {
        for (int k = 0; k < count; ++k)
            h[int(rng() % std::uint32_t(h.size()))].broadcast(payload);
        if (!h.settle())
            return state.SkipWithError("no barrier");
    }
    t.report(state, double(state.iterations()) * count);
}

} // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    one_redis = std::make_unique<bp::test::redis_server>();
    // BENCH_CLUSTER_REPLICAS=0: masters alone (a sharded message is also
    // sent to each replica of its shard, over the cluster bus).
    const char* replicas = std::getenv("BENCH_CLUSTER_REPLICAS");
    cluster = std::make_unique<bp::test::redis_cluster_server>(3, replicas ? std::atoi(replicas) : 1);
    const auto each = [](benchmark::internal::Benchmark* b) {
        b->Unit(benchmark::kMillisecond)->UseRealTime()->ArgName("hubs")->Arg(2)->Arg(8)->Arg(32);
    };
    each(benchmark::RegisterBenchmark("rooms/one_redis", rooms<bp::broker::redis_pubsub>));
    each(benchmark::RegisterBenchmark("rooms/cluster", rooms<bp::broker::redis_sharded>));
    each(benchmark::RegisterBenchmark("rooms/one_redis_streams", rooms<bp::broker::redis_streams>));
    each(benchmark::RegisterBenchmark("rooms/cluster_streams", rooms<bp::broker::redis_sharded_streams>));
    each(benchmark::RegisterBenchmark("global/one_redis", global<bp::broker::redis_pubsub>, 1));
    each(benchmark::RegisterBenchmark("global/cluster", global<bp::broker::redis_sharded>, 1));
    each(benchmark::RegisterBenchmark("global/cluster_spread", global<bp::broker::redis_sharded>, 16));
    benchmark::RunSpecifiedBenchmarks();
    cluster.reset();
    one_redis.reset();
    benchmark::Shutdown();
}
