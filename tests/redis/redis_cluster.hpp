// Test support for the Redis tests: running an io_context until something
// happens, and several hubs on one Redis (the Cluster of scenarios.hpp).
#ifndef BACKPLANE_TESTS_REDIS_CLUSTER_HPP
#define BACKPLANE_TESTS_REDIS_CLUSTER_HPP

#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/hub.hpp>
#include <backplane/transport/memory.hpp>

#include "../support/redis_server.hpp"

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::test {

using namespace std::chrono_literals;

/// Runs `io` until `done()` or `timeout`; returns done().
template <class Predicate>
bool run_until(asio::io_context& io, Predicate done, std::chrono::milliseconds timeout = 5000ms)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    io.restart();
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return done();
        io.run_one_for(5ms);
    }
    return true;
}

/// Runs `io` for `d`, whatever happens.
inline void run_for(asio::io_context& io, std::chrono::milliseconds d)
{
    io.restart();
    io.run_for(d);
}

/// Sends one command and runs `io` until its reply (REQUIREs one within 5 s).
inline std::pair<std::error_code, redis::reply> call(asio::io_context& io, redis::connection& conn,
                                                      std::vector<std::string> args)
{
    bool done = false;
    std::pair<std::error_code, redis::reply> out;
    conn.execute(args, [&](std::error_code ec, const redis::reply& r) {
        out = {ec, r};
        done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    return out;
}

using redis_hub = basic_hub<transport::memory, broker::redis_pubsub>;

/// N hubs, named "i1".."iN", each with its own redis_pubsub broker on one
/// server, on one io_context. Connection names in CLIENT LIST: "i1:pub",
/// "i1:sub"...
struct redis_cluster {
    using hub_type = redis_hub;

    redis_cluster(const redis_server& server, int n, hub_options base = {},
                  broker::redis_pubsub_options broker_options = {})
    {
        for (int i = 0; i < n; ++i) {
            auto options = base;
            options.instance_id = "i" + std::to_string(i + 1);
            auto bo = broker_options;
            bo.client_name = options.instance_id;
            hubs.push_back(std::make_unique<redis_hub>(
                transport::memory{}, broker::redis_pubsub(io.get_executor(), server.url(), bo), options));
        }
        REQUIRE(run_until(io, [&] { return connected(); }));
    }

    redis_hub& operator[](int i) { return *hubs[i]; }

    bool connected() const
    {
        for (const auto& h : hubs)
            if (!const_cast<redis_hub&>(*h).broker().connected())
                return false;
        return true;
    }

    std::pair<transport::memory::connection_handle, connection_id> connect(int i, std::string_view user)
    {
        auto c = transport::memory::make_connection();
        std::error_code ec;
        const auto id = hubs[i]->open(c, user, ec);
        REQUIRE_FALSE(ec);
        return {c, id};
    }

    /// A barrier: every publish so far answered by the server (so every
    /// message is in the subscribers' output), then a PING on every
    /// subscriber connection answered (so every message has been handed
    /// over, and every subscription change before it is in effect).
    void run()
    {
        REQUIRE(run_until(io, [&] { return connected(); }));
        std::size_t left = hubs.size();
        for (auto& h : hubs)
            h->broker().publisher().execute({"PING"}, [&](std::error_code ec, const redis::reply&) {
                CHECK_FALSE(ec);
                --left;
            });
        REQUIRE(run_until(io, [&] { return left == 0; }));
        left = hubs.size();
        for (auto& h : hubs)
            h->broker().subscriber().ping([&](std::error_code ec) {
                CHECK_FALSE(ec);
                --left;
            });
        REQUIRE(run_until(io, [&] { return left == 0; }));
    }

    void settle() { run(); }

    asio::io_context io;
    std::vector<std::unique_ptr<redis_hub>> hubs;
};

} // namespace backplane::test

#endif
