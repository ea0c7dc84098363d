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
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
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

/// The integer reply of one command (REQUIREs no error).
inline std::int64_t integer(asio::io_context& io, redis::connection& conn, std::vector<std::string> args)
{
    auto [ec, r] = call(io, conn, std::move(args));
    REQUIRE_FALSE(ec);
    return r.integer;
}

// Whether a broker resumes streams after a reconnect (redis_streams): the
// cluster's barrier then also waits until no resume is under way.
template <class Broker, class = void>
struct resumes : std::false_type {};
template <class Broker>
struct resumes<Broker, std::void_t<decltype(std::declval<const Broker&>().resumed())>> : std::true_type {};

/// N hubs, named "i1".."iN", each with its own Redis broker on one server,
/// on one io_context. Connection names in CLIENT LIST: "i1:pub",
/// "i1:sub"...
template <class Broker, class BrokerOptions, class Locator = locator::none>
struct basic_redis_cluster {
    using hub_type = basic_hub<transport::memory, Broker, Locator>;

    /// `make_locator(io)` makes each hub's locator; without it, Locator(executor).
    basic_redis_cluster(const redis_server& server, int n, hub_options base = {}, BrokerOptions broker_options = {},
                        std::function<Locator(asio::io_context&)> make_locator = {})
    {
        for (int i = 0; i < n; ++i) {
            auto options = base;
            options.instance_id = "i" + std::to_string(i + 1);
            auto bo = broker_options;
            bo.client_name = options.instance_id;
            Broker broker(io.get_executor(), server.url(), bo);
            if constexpr (std::is_constructible_v<Locator, asio::any_io_executor>)
                hubs.push_back(std::make_unique<hub_type>(transport::memory{}, std::move(broker),
                                                          make_locator ? make_locator(io) : Locator(io.get_executor()),
                                                          options));
            else
                hubs.push_back(
                    std::make_unique<hub_type>(transport::memory{}, std::move(broker), make_locator(io), options));
        }
        REQUIRE(run_until(io, [&] { return connected(); }));
    }

    hub_type& operator[](int i) { return *hubs[i]; }

    bool connected() const
    {
        for (const auto& h : hubs)
            if (!const_cast<hub_type&>(*h).broker().connected())
                return false;
        return true;
    }

    /// No broker is resuming its streams (always true without streams).
    bool resumed() const
    {
        if constexpr (resumes<Broker>::value)
            for (const auto& h : hubs)
                if (!const_cast<hub_type&>(*h).broker().resumed())
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
    /// over, and every subscription change before it is in effect), and no
    /// resume under way.
    void run()
    {
        REQUIRE(run_until(io, [&] { return connected() && resumed(); }, 10000ms));
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
        REQUIRE(run_until(io, [&] { return resumed(); }));
    }

    void settle() { run(); }

    asio::io_context io;
    std::vector<std::unique_ptr<hub_type>> hubs;
};

using redis_cluster = basic_redis_cluster<broker::redis_pubsub, broker::redis_pubsub_options>;

} // namespace backplane::test

#endif
