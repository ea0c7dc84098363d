// A broadcast's whole path through one hub with each broker policy, the
// broker's round trip in the loop: the in-memory bus, and a real local Redis
// for Pub/Sub and Streams (the program starts its own redis-server, as
// bench_redis_publish does).
//
//   build/benchmarks/bench_roundtrip
//
// - latency/BROKER/N: one message alone, from broadcast() (called in a handler
//   on the io_context, as a server calls it) to its delivery to
//   the last of N local connections (memory transport, counting only):
//   publish, the broker's round trip, decode, one frame for all N.
// - throughput/BROKER/N: 100 messages at once, until all are delivered.
// Counters: deliveries per second, and heap allocations per message and per
// delivery, every allocation of the process counted (the hub, Asio's
// handlers, hiredis's replies): this program replaces malloc and its kin
// with counting calls to glibc's own (not under a sanitizer, which replaces
// them itself).
#include <backplane/broker/memory.hpp>
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/broker/redis_streams.hpp>
#include <backplane/hub.hpp>
#include <backplane/transport/memory.hpp>

#include "run_until.hpp"
#include "support/redis_server.hpp"

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BACKPLANE_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define BACKPLANE_COUNT_MALLOC 0
#endif
#endif
#ifndef BACKPLANE_COUNT_MALLOC
#define BACKPLANE_COUNT_MALLOC 1
#endif

namespace {
std::atomic<std::uint64_t> allocations{0};
}

#if BACKPLANE_COUNT_MALLOC
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) // Asio's handler memory
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n)
{
    allocations.fetch_add(1, std::memory_order_relaxed);
    *out = __libc_memalign(alignment, n);
    return *out ? 0 : ENOMEM;
}
}
#endif

namespace {

namespace bp = backplane;
using bp::bench::run_until;
using namespace std::chrono_literals;

std::unique_ptr<bp::test::redis_server> server;
const std::string payload(64, 'x');

// Every SUBSCRIBE of a Redis broker answered: its subscriber's PING comes
// after them.
template <class Broker>
bool subscribed(Broker& b, asio::io_context& io)
{
    bool done = false;
    b.subscriber().ping([&](std::error_code) { done = true; });
    return run_until(io, [&] { return done; });
}

// Each broker policy, made on an io_context.
struct memory_bus {
    static constexpr const char* name = "memory";
    using broker = bp::broker::memory;
    bp::broker::memory_bus bus;
    broker make(asio::io_context& io) { return broker(bus, io.get_executor()); }
    static bool ready(broker&) { return true; }
    static bool settle(broker&, asio::io_context&) { return true; }
};
struct redis_pubsub {
    static constexpr const char* name = "redis_pubsub";
    using broker = bp::broker::redis_pubsub;
    broker make(asio::io_context& io)
    {
        bp::broker::redis_pubsub_options o;
        o.connection.max_pending = 1 << 20;
        return broker(io.get_executor(), server->url(), o);
    }
    static bool ready(broker& b) { return b.connected(); }
    static bool settle(broker& b, asio::io_context& io) { return subscribed(b, io); }
};
struct redis_streams {
    static constexpr const char* name = "redis_streams";
    using broker = bp::broker::redis_streams;
    broker make(asio::io_context& io)
    {
        bp::broker::redis_streams_options o;
        o.connection.max_pending = 1 << 20;
        return broker(io.get_executor(), server->url(), o);
    }
    static bool ready(broker& b) { return b.connected() && b.resumed(); }
    static bool settle(broker& b, asio::io_context& io)
    {
        return subscribed(b, io) && run_until(io, [&] { return b.resumed(); });
    }
};

template <class Policy>
void roundtrip(benchmark::State& state, int batch)
{
    const auto n = static_cast<std::size_t>(state.range(0));
    asio::io_context io;
    Policy policy;
    bp::basic_hub<bp::transport::memory, typename Policy::broker> hub({}, policy.make(io));
    if (!run_until(io, [&] { return Policy::ready(hub.broker()); }))
        return state.SkipWithError("the broker did not connect");
    std::vector<bp::transport::memory::connection_handle> conns;
    std::error_code ec;
    for (std::size_t i = 0; i < n; ++i) {
        conns.push_back(bp::transport::memory::make_connection(bp::transport::memory::connection::record_mode::count));
        hub.open(conns.back(), "user" + std::to_string(i), ec);
    }
    // Subscribed (every user's channel too), and buffers at their size: a
    // batch through first.
    if (!Policy::settle(hub.broker(), io))
        return state.SkipWithError("the subscriptions were not answered");
    // Sent from a handler, as a server sends on a client's request (where
    // Asio recycles its handlers' memory).
    const auto send = [&] {
        asio::post(io, [&] {
            for (int k = 0; k < batch; ++k)
                hub.broadcast(payload);
        });
    };
    send();
    std::uint64_t expected = std::uint64_t(batch);
    if (!run_until(io, [&] { return conns.back()->frames_received() == expected; }))
        return state.SkipWithError("the first messages did not arrive");

    const auto before = allocations.load();
    for (auto _ : state) {
        send();
        expected += std::uint64_t(batch);
        if (!run_until(io, [&] { return conns.back()->frames_received() == expected; }))
            return state.SkipWithError("a message did not arrive");
    }
    const double messages = double(state.iterations()) * batch;
    const double allocated = double(allocations.load() - before);
    if (conns.front()->frames_received() != expected)
        return state.SkipWithError("a connection missed a message");
    state.counters["deliveries/s"] = benchmark::Counter(messages * double(n), benchmark::Counter::kIsRate);
    if (BACKPLANE_COUNT_MALLOC) {
        state.counters["allocs/message"] = allocated / messages;
        state.counters["allocs/delivery"] = allocated / (messages * double(n));
    }
}

template <class Policy>
void add(const char* kind, int batch)
{
    const std::string name = std::string(kind) + "/" + Policy::name;
    benchmark::RegisterBenchmark(name.c_str(), roundtrip<Policy>, batch)
        ->Arg(1)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

} // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    server = std::make_unique<bp::test::redis_server>();
    add<memory_bus>("latency", 1);
    add<redis_pubsub>("latency", 1);
    add<redis_streams>("latency", 1);
    add<memory_bus>("throughput", 100);
    add<redis_pubsub>("throughput", 100);
    add<redis_streams>("throughput", 100);
    benchmark::RunSpecifiedBenchmarks();
    server.reset();
    benchmark::Shutdown();
}
