// The reference server's JSON: reading a client request and writing the
// frame every recipient of a message shares, each against nlohmann-json.
//
//   build/benchmarks/bench_json
//
// read/*: a typical request ({"op":"send","room":"r1","text":...}) read by
// the server's reader (demo/json.hpp) and by nlohmann-json's DOM parser.
// write/*: a message frame written by the server's writer and by building a
// nlohmann::json object and dumping it. Bytes per second count the JSON text.
#include "json.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <string>

namespace {

const std::string request =
    R"({"op":"send","room":"room-17","text":"hello from a client, with an \u00e9 and a \"quote\" in it"})";
const std::string text = "hello from a client, with an \xc3\xa9 and a \"quote\" in it";

void read_server(benchmark::State& state)
{
    demo::json::flat_object o;
    for (auto _ : state) {
        auto why = demo::json::parse(request, o);
        benchmark::DoNotOptimize(why);
        benchmark::DoNotOptimize(o.members.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations() * request.size()));
}
BENCHMARK(read_server)->Name("read/server");

void read_nlohmann_dom(benchmark::State& state)
{
    for (auto _ : state) {
        auto j = nlohmann::json::parse(request, nullptr, false);
        benchmark::DoNotOptimize(j);
    }
    state.SetBytesProcessed(std::int64_t(state.iterations() * request.size()));
}
BENCHMARK(read_nlohmann_dom)->Name("read/nlohmann-dom");

void write_server(benchmark::State& state)
{
    std::string out;
    for (auto _ : state) {
        out.clear();
        demo::json::object_writer(out)
            .add("type", "message")
            .add("scope", "room")
            .add("room", "room-17")
            .add("from", "alice")
            .add("id", "1733011200000-0")
            .add("text", text)
            .add("instance", "a");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations() * out.size()));
}
BENCHMARK(write_server)->Name("write/server");

void write_nlohmann(benchmark::State& state)
{
    std::string out;
    for (auto _ : state) {
        nlohmann::ordered_json j;
        j["type"] = "message";
        j["scope"] = "room";
        j["room"] = "room-17";
        j["from"] = "alice";
        j["id"] = "1733011200000-0";
        j["text"] = text;
        j["instance"] = "a";
        out = j.dump();
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations() * out.size()));
}
BENCHMARK(write_nlohmann)->Name("write/nlohmann");

} // namespace

BENCHMARK_MAIN();
