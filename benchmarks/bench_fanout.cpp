// Fan-out of one message to N local memory-transport connections.
//
//   build/benchmarks/bench_fanout
//
// Each iteration is the whole path of one broadcast through one hub: encode
// the envelope, publish on the in-memory bus, decode, build the frame once,
// hand it to all N connections. The connections count what they receive
// (record_mode::count), which is the least a sink can do; the figures are
// those of the core.
//
// Counters: deliveries per second, and heap allocations per message and per
// delivery, counted by replacing the global operator new in this program.
//
// join_leave: one join and one leave by a connection that is in N rooms
// already, of a room whose other member is in N rooms too (so that leaving
// moves it in the room's list): the cost must not grow with N.
#include <backplane/backplane.hpp>

#include <asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace {
std::uint64_t allocations = 0; // the benchmark is single-threaded
}

void* operator new(std::size_t n)
{
    ++allocations;
    if (void* p = std::malloc(n ? n : 1))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

static void fanout(benchmark::State& state)
{
    using namespace backplane;
    const auto n = static_cast<std::size_t>(state.range(0));
    asio::io_context io;
    broker::memory_bus bus;
    memory_hub hub({}, broker::memory(bus, io.get_executor()));
    std::vector<transport::memory::connection_handle> conns;
    std::error_code ec;
    for (std::size_t i = 0; i < n; ++i) {
        conns.push_back(transport::memory::make_connection(transport::memory::connection::record_mode::count));
        hub.open(conns.back(), "user" + std::to_string(i), ec);
    }
    const std::string payload(64, 'x');
    hub.broadcast(payload); // warm up: buffers reach their size
    io.run();

    const auto before = allocations;
    for (auto _ : state) {
        hub.broadcast(payload);
        io.restart();
        io.run();
    }
    const double messages = double(state.iterations());
    const double allocated = double(allocations - before);
    if (conns.front()->frames_received() != std::uint64_t(messages) + 1)
        state.SkipWithError("a connection missed a message");
    state.counters["deliveries/s"] =
        benchmark::Counter(messages * double(n), benchmark::Counter::kIsRate);
    state.counters["allocs/message"] = allocated / messages;
    state.counters["allocs/delivery"] = allocated / (messages * double(n));
}
BENCHMARK(fanout)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

static void join_leave(benchmark::State& state)
{
    using namespace backplane;
    const auto n = static_cast<std::size_t>(state.range(0));
    asio::io_context io;
    broker::memory_bus bus;
    hub_options o;
    o.max_rooms_per_connection = 0;
    memory_hub hub({}, broker::memory(bus, io.get_executor()), o);
    std::error_code ec;
    const auto joiner = hub.open(transport::memory::make_connection(), "joiner", ec);
    const auto other = hub.open(transport::memory::make_connection(), "other", ec);
    for (std::size_t i = 0; i < n; ++i) {
        hub.join(joiner, "held" + std::to_string(i));
        hub.join(other, "also" + std::to_string(i));
    }
    hub.join(other, "busy"); // the room stays: no subscribe per iteration
    for (auto _ : state) {
        hub.join(joiner, "busy");
        hub.leave(joiner, "busy");
    }
    state.counters["rooms held"] = double(n);
}
BENCHMARK(join_leave)->Arg(1)->Arg(8)->Arg(100)->Arg(1000)->Arg(10000);

BENCHMARK_MAIN();
