// Publishes per second from one hub to one local Redis, with pipelining,
// beside redis-benchmark against the same server in the same run.
//
//   build/benchmarks/bench_redis_publish
//
// The program starts its own redis-server on a free loopback port (as the
// tests do; BACKPLANE_REDIS_SERVER may name the binary), then:
// - hub_broadcast: one hub with a redis_pubsub broker broadcasts a 64-byte
//   payload in batches; the hub is subscribed to the global channel, so the
//   server also sends every message back to it (the hub decodes it and finds
//   no local connection). A batch ends when every PUBLISH is answered.
// - broker_publish: the same through the broker alone, on a channel nobody
//   subscribes to.
// - then `redis-benchmark -p PORT -P 16 -c 1 -n 1000000 -q PUBLISH ch <64 bytes>`
//   and the same with its default 50 clients, and prints every figure and
//   the ratios.
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/hub.hpp>
#include <backplane/transport/memory.hpp>

#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

namespace {

std::unique_ptr<backplane::test::redis_server> server;
double best_hub_rate = 0, best_broker_rate = 0;
const std::string payload(64, 'x');

using redis_hub = backplane::basic_hub<backplane::transport::memory, backplane::broker::redis_pubsub>;

template <class Ready>
void run_until(asio::io_context& io, Ready ready)
{
    io.restart();
    while (!ready())
        io.run_one();
}

void hub_broadcast(benchmark::State& state)
{
    using namespace backplane;
    const auto batch = static_cast<int>(state.range(0));
    asio::io_context io;
    broker::redis_pubsub_options o;
    o.connection.max_pending = 1 << 20;
    redis_hub hub({}, broker::redis_pubsub(io.get_executor(), server->url(), o));
    run_until(io, [&] { return hub.broker().connected(); });
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        for (int i = 0; i < batch; ++i)
            hub.broadcast(payload);
        run_until(io, [&] { return hub.broker().publisher().pending() == 0; });
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double published = double(state.iterations()) * batch;
    best_hub_rate = std::max(best_hub_rate, published / seconds);
    state.counters["publishes/s"] = benchmark::Counter(published, benchmark::Counter::kIsRate);
    state.counters["errors"] = double(hub.broker().stats().publish_errors);
}

void broker_publish(benchmark::State& state)
{
    using namespace backplane;
    const auto batch = static_cast<int>(state.range(0));
    asio::io_context io;
    broker::redis_pubsub_options o;
    o.connection.max_pending = 1 << 20;
    broker::redis_pubsub b(io.get_executor(), server->url(), o);
    run_until(io, [&] { return b.connected(); });
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        for (int i = 0; i < batch; ++i)
            b.publish("bench:nobody", payload, nullptr);
        run_until(io, [&] { return b.publisher().pending() == 0; });
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double published = double(state.iterations()) * batch;
    best_broker_rate = std::max(best_broker_rate, published / seconds);
    state.counters["publishes/s"] = benchmark::Counter(published, benchmark::Counter::kIsRate);
}

BENCHMARK(hub_broadcast)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(broker_publish)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Runs redis-benchmark and returns its requests per second (0 on failure).
double redis_benchmark(const std::string& clients, std::string& command_line)
{
    const auto log = (server->directory() / "redis-benchmark.out").string();
    std::remove(log.c_str());
    std::vector<std::string> argv{"redis-benchmark", "-p", std::to_string(server->port()), "-P", "16",
                                  "-c", clients, "-n", "1000000", "-q", "PUBLISH", "ch", payload};
    command_line.clear();
    for (const auto& a : argv)
        command_line += (a == payload ? "<64 x>" : a) + " ";
    try {
        backplane::test::process_options po;
        po.output_file = log;
        backplane::test::process p(argv, po);
        p.wait();
    } catch (const std::exception& e) {
        std::cerr << "redis-benchmark: " << e.what() << "\n";
        return 0;
    }
    std::ifstream in(log);
    std::stringstream all;
    all << in.rdbuf();
    // "PUBLISH ch xxx: 123456.79 requests per second, p50=..." (after \r progress lines)
    const std::string text = all.str();
    const auto at = text.rfind(" requests per second");
    if (at == std::string::npos)
        return 0;
    const auto begin = text.rfind(' ', at - 1);
    return std::stod(text.substr(begin + 1, at - begin - 1));
}

} // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    server = std::make_unique<backplane::test::redis_server>();
    benchmark::RunSpecifiedBenchmarks();

    std::string one_line, fifty_line;
    const double one = redis_benchmark("1", one_line);
    const double fifty = redis_benchmark("50", fifty_line);
    std::printf("\nhub_broadcast (one hub, one connection, pipelined): %.0f publishes/s\n", best_hub_rate);
    std::printf("broker_publish (no subscriber):                      %.0f publishes/s\n", best_broker_rate);
    std::printf("%s: %.0f requests/s\n", one_line.c_str(), one);
    std::printf("%s: %.0f requests/s\n", fifty_line.c_str(), fifty);
    if (one > 0 && fifty > 0)
        std::printf("ratio hub / redis-benchmark: %.2f (1 client), %.2f (50 clients)\n", best_hub_rate / one,
                    best_hub_rate / fifty);
    server.reset();
    benchmark::Shutdown();
}
