// Faults injected into a real Redis: the promises are kept (resubscribed,
// delivery resumes within a bound, a dead server detected, clear errors,
// bounded memory).
#include <backplane/broker/redis_pubsub.hpp>

#include "redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using strings = std::vector<std::string>;
using clock_type = std::chrono::steady_clock;

namespace {

// Hub 1 sends to room "r" every 10 ms until alice (on hub 0) gets one;
// returns how long that took.
std::chrono::milliseconds time_to_delivery(redis_cluster& c, const transport::memory::connection_handle& alice,
                                           std::chrono::milliseconds limit = 3000ms)
{
    const auto start = clock_type::now();
    const auto before = alice->frames_received();
    while (alice->frames_received() == before && clock_type::now() - start < limit) {
        c[1].send_to_room("r", "ping");
        run_for(c.io, 10ms);
    }
    REQUIRE(alice->frames_received() > before);
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
}

strings channels(redis_cluster& c, redis::connection& admin)
{
    auto [ec, r] = call(c.io, admin, {"PUBSUB", "CHANNELS", "*"});
    REQUIRE_FALSE(ec);
    strings out;
    for (const auto& e : r.elements)
        out.push_back(e.text);
    std::sort(out.begin(), out.end());
    return out;
}

const strings all_channels{"chat:global", "chat:room:r", "notif:user:alice", "notif:user:bob"};

} // namespace

TEST_CASE("kill -9 and a restart on the same port: every channel back, delivery within a second", "[timing]")
{
    redis_server server;
    redis_cluster c(server, 2);
    auto [alice, a_id] = c.connect(0, "alice");
    auto [bob, b_id] = c.connect(1, "bob");
    c[0].join(a_id, "r");
    c[1].join(b_id, "r");
    c.settle();

    server.kill();
    run_for(c.io, 300ms); // several failed attempts: the backoff grows
    CHECK_FALSE(c[0].broker().connected());
    server.start();
    const auto waited = time_to_delivery(c, alice);
    CHECK(waited < 1000ms);
    c.settle();
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    CHECK(channels(c, admin) == all_channels);
    CHECK(c[0].broker().stats().resubscribed == 3); // global, room, alice
    CHECK(c[1].broker().stats().resubscribed == 3);
    CHECK(c[0].broker().stats().reconnects == 2);   // publisher and subscriber
}

TEST_CASE("CLIENT KILL TYPE pubsub: the subscribers come back with every channel", "[timing]")
{
    redis_server server;
    redis_cluster c(server, 2);
    auto [alice, a_id] = c.connect(0, "alice");
    auto [bob, b_id] = c.connect(1, "bob");
    c[0].join(a_id, "r");
    c[1].join(b_id, "r");
    c.settle();
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    auto [ec, killed] = call(c.io, admin, {"CLIENT", "KILL", "TYPE", "pubsub"});
    REQUIRE_FALSE(ec);
    CHECK(killed.integer == 2);
    const auto waited = time_to_delivery(c, alice);
    CHECK(waited < 1000ms);
    c.settle();
    CHECK(channels(c, admin) == all_channels);
    CHECK(c[0].broker().subscriber().stats().connection.reconnects == 1);
    CHECK(c[0].broker().publisher().stats().connection.reconnects == 0);
    CHECK(c[0].broker().stats().resubscribed == 3);
}

TEST_CASE("a stopped server (SIGSTOP) is detected by the liveness probe within its timeout", "[timing]")
{
    redis_server server;
    broker::redis_pubsub_options o;
    o.connection.ping_interval = 100ms;
    o.connection.ping_timeout = 300ms;
    o.connection.connect_timeout = 500ms;
    redis_cluster c(server, 2, {}, o);
    auto [alice, a_id] = c.connect(0, "alice");
    auto [bob, b_id] = c.connect(1, "bob");
    c[0].join(a_id, "r");
    c[1].join(b_id, "r");
    c.settle();

    server.suspend();
    const auto start = clock_type::now();
    REQUIRE(run_until(c.io, [&] { return c[0].broker().subscriber_state() != redis::connection_state::ready; },
                      2000ms));
    const auto detected = clock_type::now() - start;
    CHECK(detected <= o.connection.ping_interval + o.connection.ping_timeout + 100ms);
    CHECK(c[0].broker().stats().probe_timeouts >= 1);

    server.resume();
    const auto waited = time_to_delivery(c, alice);
    CHECK(waited < 1500ms);
    CHECK(c[0].broker().stats().resubscribed == 3);
}

TEST_CASE("publishes during an outage fail with an error, memory stays bounded, the hub recovers", "[timing]")
{
    redis_server server;
    broker::redis_pubsub_options o;
    o.connection.max_pending = 100;
    redis_cluster c(server, 2, {}, o);
    auto [alice, a_id] = c.connect(0, "alice");
    auto [bob, b_id] = c.connect(1, "bob");
    c[0].join(a_id, "r");
    c[1].join(b_id, "r");
    c.settle();

    // In flight when the server dies: they fail with connection_lost.
    server.suspend();
    auto& broker = c[1].broker();
    std::vector<std::error_code> results;
    for (int i = 0; i < 5; ++i)
        broker.publish("chat:room:r", "lost?", [&](std::error_code ec) { results.push_back(ec); });
    run_for(c.io, 50ms); // written, unanswered
    server.kill();
    REQUIRE(run_until(c.io, [&] { return results.size() == 5; }));
    CHECK(std::count(results.begin(), results.end(), error::connection_lost) == 5);

    // Down: the queue fills up to its bound, then every publish fails at once.
    results.clear();
    for (int i = 0; i < 1000; ++i)
        c[1].send_to_room("r", "while down");
    CHECK(broker.publisher().pending() == 100);
    for (int i = 0; i < 10; ++i)
        broker.publish("chat:room:r", "x", [&](std::error_code ec) { results.push_back(ec); });
    run_for(c.io, 100ms);
    CHECK(results.size() == 10);
    CHECK(std::count(results.begin(), results.end(), error::queue_full) == 10);
    CHECK(broker.stats().publish_errors == 5 + 900 + 10);
    CHECK(c[1].stats().publish_errors == 900); // the hub counts its own refused publishes
    CHECK(broker.publisher().pending() == 100);

    server.start();
    const auto waited = time_to_delivery(c, alice);
    CHECK(waited < 1000ms);
    CHECK(broker.stats().published == 5 + 10 + c[1].stats().published); // the hub's, and ours
}

TEST_CASE("after a reconnect, numbered messages each arrive exactly once at every client")
{
    const bool restart = GENERATE(false, true);
    INFO((restart ? "kill -9 and restart" : "CLIENT KILL TYPE pubsub"));
    redis_server server;
    redis_cluster c(server, 3);
    std::vector<transport::memory::connection_handle> clients;
    for (int i = 0; i < 3; ++i)
        for (const char* user : {"u1", "u2"}) {
            auto [conn, id] = c.connect(i, user);
            REQUIRE_FALSE(c[i].join(id, "r"));
            clients.push_back(conn);
        }
    c.settle();
    if (restart) {
        server.kill();
        REQUIRE(run_until(c.io, [&] { return !c[0].broker().connected(); }));
        server.start();
    } else {
        redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
        auto [ec, killed] = call(c.io, admin, {"CLIENT", "KILL", "TYPE", "pubsub"});
        REQUIRE_FALSE(ec);
        CHECK(killed.integer == 3);
    }
    // c.settle() waits for both connections of every hub and for a PING
    // answered on each subscriber after its SUBSCRIBEs: every channel is back.
    c.settle();
    const int n = 100;
    for (int i = 0; i < n; ++i) {
        c[i % 3].send_to_room("r", "r" + std::to_string(i));
        c[(i + 1) % 3].broadcast("g" + std::to_string(i));
    }
    c.settle();
    std::vector<std::string> expected_r, expected_g;
    for (int i = 0; i < n; ++i) {
        expected_r.push_back("r" + std::to_string(i));
        expected_g.push_back("g" + std::to_string(i));
    }
    for (const auto& client : clients) {
        std::vector<std::string> got_r, got_g;
        for (const auto& t : client->texts())
            (t[0] == 'r' ? got_r : got_g).push_back(t);
        // Each hub publishes in order; across hubs order may interleave.
        std::sort(got_r.begin(), got_r.end());
        std::sort(got_g.begin(), got_g.end());
        auto sorted_r = expected_r, sorted_g = expected_g;
        std::sort(sorted_r.begin(), sorted_r.end());
        std::sort(sorted_g.begin(), sorted_g.end());
        CHECK(got_r == sorted_r);
        CHECK(got_g == sorted_g);
    }
}
