// The command connection against a real redis-server.
#include <backplane/redis/connection.hpp>
#include <backplane/redis/script.hpp>

#include "redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;

TEST_CASE("10,000 pipelined commands are answered in order")
{
    redis_server server;
    asio::io_context io;
    redis::connection conn(io.get_executor(), redis::parse_url(server.url()));
    std::vector<std::int64_t> replies;
    std::size_t errors = 0;
    constexpr int n = 10000;
    for (int i = 0; i < n; ++i) // all in one turn, before the connection is up
        conn.execute({"INCR", "counter"}, [&](std::error_code ec, const redis::reply& r) {
            errors += ec ? 1 : 0;
            replies.push_back(r.integer);
        });
    CHECK(conn.pending() == n);
    REQUIRE(run_until(io, [&] { return replies.size() == n; }, 10000ms));
    CHECK(errors == 0);
    bool in_order = true;
    for (int i = 0; i < n; ++i)
        in_order = in_order && replies[i] == i + 1;
    CHECK(in_order);
    CHECK(conn.stats().succeeded == n);
    CHECK(conn.pending() == 0);
}

TEST_CASE("an error reply reaches its caller as an error, and the next command still works")
{
    redis_server server;
    asio::io_context io;
    redis::connection conn(io.get_executor(), redis::parse_url(server.url()));
    auto [ec1, r1] = call(io, conn, {"NOSUCHCOMMAND", "x"});
    CHECK(ec1 == error::server_error);
    CHECK(r1.is_error());
    CHECK(r1.text.rfind("ERR", 0) == 0);
    call(io, conn, {"SET", "s", "text"});
    auto [ec2, r2] = call(io, conn, {"INCR", "s"});
    CHECK(ec2 == error::server_error);
    auto [ec3, r3] = call(io, conn, {"GET", "s"});
    CHECK_FALSE(ec3);
    CHECK(r3.text == "text");
    auto [ec4, r4] = call(io, conn, {"GET", "missing"});
    CHECK_FALSE(ec4);
    CHECK(r4.type == redis::reply::kind::nil);
    CHECK(conn.stats().failed == 2);
}

TEST_CASE("AUTH with a password, and a wrong password never connects and says why")
{
    redis_server_options o;
    o.requirepass = "s3cret";
    redis_server server(o);
    asio::io_context io;
    redis::connection good(io.get_executor(),
                           redis::parse_url("redis://:s3cret@127.0.0.1:" + std::to_string(server.port())));
    auto [ec, r] = call(io, good, {"SET", "k", "v"});
    CHECK_FALSE(ec);
    CHECK(r.text == "OK");

    redis::connection bad(io.get_executor(),
                          redis::parse_url("redis://:wrong@127.0.0.1:" + std::to_string(server.port())));
    run_until(io, [&] { return !bad.handshake_error().empty(); });
    CHECK(bad.state() != redis::connection_state::ready);
    CHECK(bad.handshake_error().find("WRONGPASS") != std::string::npos);
    CHECK(bad.last_error() == error::server_error);
}

TEST_CASE("AUTH with an ACL user, SELECT a database, and a Unix socket")
{
    redis_server_options o;
    o.unix_socket = true;
    o.extra_args = {"--user", "app", "on", ">apppw", "~*", "&*", "+@all"};
    redis_server server(o);
    asio::io_context io;
    redis::connection acl(io.get_executor(),
                          redis::parse_url("redis://app:apppw@127.0.0.1:" + std::to_string(server.port()) + "/3"));
    auto [ec, who] = call(io, acl, {"ACL", "WHOAMI"});
    CHECK_FALSE(ec);
    CHECK(who.text == "app");
    call(io, acl, {"SET", "in3", "yes"});

    redis::connection db0(io.get_executor(), redis::parse_url(server.url()));
    auto [ec0, r0] = call(io, db0, {"EXISTS", "in3"});
    CHECK(r0.integer == 0); // SELECT 3 took effect
    redis::connection local(io.get_executor(), redis::parse_url("unix://" + server.unix_path() + "?db=3"));
    auto [ecu, ru] = call(io, local, {"GET", "in3"});
    CHECK_FALSE(ecu);
    CHECK(ru.text == "yes");
}

TEST_CASE("while the server is down, the queue is bounded and a full queue fails at once")
{
    redis_server server;
    asio::io_context io;
    redis::connection_options o;
    o.max_pending = 10;
    redis::connection conn(io.get_executor(), redis::parse_url(server.url()), o);
    REQUIRE(run_until(io, [&] { return conn.state() == redis::connection_state::ready; }));
    server.kill();
    run_until(io, [&] { return conn.state() != redis::connection_state::ready; });
    REQUIRE(conn.state() != redis::connection_state::ready);

    int ok = 0, full = 0;
    for (int i = 0; i < 15; ++i)
        conn.publish("ch", "x", [&](std::error_code ec) {
            if (!ec)
                ++ok;
            else if (ec == error::queue_full)
                ++full;
        });
    CHECK(conn.pending() == 10);
    CHECK(full == 0); // never from inside the call
    run_for(io, 50ms);
    CHECK(full == 5); // at once, not after a timeout
    server.start();
    REQUIRE(run_until(io, [&] { return ok == 10; }));
    CHECK(conn.stats().connection.reconnects == 1);
}

TEST_CASE("a script's calls run in the order they were made, across a restart that made Redis forget it")
{
    static constexpr std::string_view push = "return redis.call('RPUSH', KEYS[1], ARGV[1])";
    redis_server server;
    asio::io_context io;
    redis::connection conn(io.get_executor(), redis::parse_url(server.url()));
    redis::script script(push);
    int answered = 0, failed = 0;
    const auto call = [&](int i) {
        script.run(conn, {"1", "order", std::to_string(i)}, [&](std::error_code ec, const redis::reply&) {
            ++answered;
            failed += ec ? 1 : 0;
        });
    };
    for (int i = 0; i < 100; ++i)
        call(i);
    REQUIRE(run_until(io, [&] { return answered == 100; }, 5000ms));

    server.kill(); // no persistence: the script and the list are gone
    REQUIRE(run_until(io, [&] { return conn.state() != redis::connection_state::ready; }));
    server.start();
    answered = failed = 0;
    // Calls keep coming, before the connection is back and while the first
    // answers arrive, as a broker's do: an EVALSHA of the old SHA1 meets
    // NOSCRIPT, and a call sent again after later ones would run after them.
    for (int i = 0; i < 1000; ++i) {
        call(i);
        io.run_for(std::chrono::microseconds(200)); // some answers arrive between calls
    }
    REQUIRE(run_until(io, [&] { return answered == 1000; }, 10000ms));
    CHECK(conn.stats().connection.reconnects == 1);
    CHECK(failed == 0);
    std::vector<std::string> order;
    bool listed = false;
    conn.execute({"LRANGE", "order", "0", "-1"}, [&](std::error_code ec, const redis::reply& r) {
        REQUIRE_FALSE(ec);
        for (const auto& e : r.elements)
            order.push_back(e.text);
        listed = true;
    });
    REQUIRE(run_until(io, [&] { return listed; }, 5000ms));
    REQUIRE(order.size() == 1000);
    bool in_order = true;
    for (int i = 0; i < 1000; ++i)
        in_order = in_order && order[static_cast<std::size_t>(i)] == std::to_string(i);
    CHECK(in_order);
}
