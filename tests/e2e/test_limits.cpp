// The reference server's limits, stepped without sockets or sleeping: the
// time is passed in (demo/limits.hpp).
#include "limits.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

using namespace std::chrono_literals;
using time_point = demo::limits::clock::time_point;
using demo::limits::rate_limiter;
using demo::limits::rate_settings;
using demo::limits::token_bucket;
using demo::limits::verdict;

TEST_CASE("limits: a token bucket gives its burst at once, then its rate, and never saves more than its burst")
{
    const auto t0 = time_point{} + 1h;
    token_bucket b(10, 3, t0); // 10 a second, 3 saved
    CHECK(b.take(1, t0));
    CHECK(b.take(1, t0));
    CHECK(b.take(1, t0));
    CHECK_FALSE(b.take(1, t0));
    CHECK_FALSE(b.take(1, t0 + 99ms));
    CHECK(b.take(1, t0 + 100ms));
    CHECK_FALSE(b.take(1, t0 + 100ms));
    // A long quiet saves the burst, not more.
    CHECK(b.take(3, t0 + 1h));
    CHECK_FALSE(b.take(1, t0 + 1h));
    // A refusal takes nothing: 2 are there after 200 ms, whatever was asked.
    CHECK_FALSE(b.take(3, t0 + 1h + 200ms));
    CHECK(b.take(2, t0 + 1h + 200ms));
    // A clock that steps back gives nothing.
    CHECK_FALSE(b.take(1, t0));
}

TEST_CASE("limits: a rate of 0 is no limit")
{
    const auto t0 = time_point{};
    token_bucket off(0, 0, t0);
    for (int i = 0; i < 1000; ++i)
        REQUIRE(off.take(1e9, t0));
    rate_settings s;
    s.messages = s.broadcasts = s.bytes = 0;
    rate_limiter r(s, t0);
    for (int i = 0; i < 10000; ++i) {
        REQUIRE(r.admit(64 * 1024, t0) == verdict::pass);
        REQUIRE(r.admit_broadcast(t0) == verdict::pass);
    }
}

TEST_CASE("limits: requests, broadcasts and bytes each have their rate")
{
    const auto t0 = time_point{};
    rate_settings s;
    s.messages = 10, s.message_burst = 5;
    s.broadcasts = 1, s.broadcast_burst = 2;
    s.bytes = 1000, s.byte_burst = 2000;

    SECTION("requests")
    {
        rate_limiter r(s, t0);
        for (int i = 0; i < 5; ++i)
            CHECK(r.admit(10, t0) == verdict::pass);
        CHECK(r.admit(10, t0) == verdict::refuse);
        CHECK(r.admit(10, t0 + 100ms) == verdict::pass);
    }
    SECTION("broadcasts are stricter")
    {
        rate_limiter r(s, t0);
        CHECK(r.admit(10, t0) == verdict::pass);
        CHECK(r.admit_broadcast(t0) == verdict::pass);
        CHECK(r.admit(10, t0) == verdict::pass);
        CHECK(r.admit_broadcast(t0) == verdict::pass);
        CHECK(r.admit(10, t0) == verdict::pass);
        CHECK(r.admit_broadcast(t0) == verdict::refuse);
        CHECK(r.admit(10, t0) == verdict::pass); // other requests still pass
        CHECK(r.admit_broadcast(t0 + 1s) == verdict::pass);
    }
    SECTION("bytes, and a refusal for bytes takes no request either")
    {
        rate_limiter r(s, t0);
        CHECK(r.admit(1500, t0) == verdict::pass);
        CHECK(r.admit(1000, t0) == verdict::refuse);
        CHECK(r.admit(500, t0) == verdict::pass);
        for (int i = 0; i < 3; ++i) // 5 requests in the burst: 2 taken, 3 left
            CHECK(r.admit(0, t0) == verdict::pass);
        CHECK(r.admit(0, t0) == verdict::refuse);
        CHECK(r.admit(1000, t0 + 1s) == verdict::pass);
    }
}

TEST_CASE("limits: a client that waits when refused stays, one that keeps on far past the rate is closed")
{
    const auto t0 = time_point{};
    rate_settings s;
    s.messages = 10, s.message_burst = 5; // strikes: 50, back at 10 a second
    s.broadcasts = 0, s.bytes = 0;
    REQUIRE(s.strikes() == 50);

    SECTION("refused in a row: fifty refusals, then closed")
    {
        rate_limiter r(s, t0);
        for (int i = 0; i < 5; ++i)
            REQUIRE(r.admit(1, t0) == verdict::pass);
        for (int i = 0; i < 50; ++i)
            REQUIRE(r.admit(1, t0) == verdict::refuse);
        CHECK(r.admit(1, t0) == verdict::close);
    }
    SECTION("a flood at 100 a second, ten times the rate, is closed within a second or so")
    {
        rate_limiter r(s, t0);
        int refused = 0;
        auto t = t0;
        verdict v = verdict::pass;
        for (; v != verdict::close && t < t0 + 10s; t += 10ms)
            if ((v = r.admit(1, t)) == verdict::refuse)
                ++refused;
        CHECK(v == verdict::close);
        CHECK(refused >= 50);
        CHECK(t < t0 + 1s);
    }
    SECTION("a client at one and a half times the rate is refused, and never closed")
    {
        rate_limiter r(s, t0);
        int refused = 0;
        for (auto t = t0; t < t0 + 60s; t += 66ms) {
            const auto v = r.admit(1, t);
            REQUIRE(v != verdict::close);
            refused += v == verdict::refuse;
        }
        CHECK(refused > 0);
    }
}

TEST_CASE("limits: request slots count while they live, and outlive their connection harmlessly")
{
    using demo::limits::request_slot;
    auto count = std::make_shared<std::size_t>(0);
    auto a = request_slot::take(count, 2);
    auto b = request_slot::take(count, 2);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*count == 2);
    CHECK_FALSE(request_slot::take(count, 2));
    a.reset(); // answered
    CHECK(*count == 1);
    auto c = request_slot::take(count, 2);
    CHECK(c);
    CHECK(request_slot::take(count, 0)); // no limit: counted, never refused
    CHECK(*count == 2);
    count.reset(); // the connection closed before the answers came
    b.reset();
    c.reset();
}

TEST_CASE("limits: connections per user and per address, an address forgotten with its last connection")
{
    using demo::limits::connection_counts;
    using demo::limits::too_many;
    connection_counts counts(2, 3);
    CHECK(counts.check(1, "10.0.0.1") == too_many::none);
    CHECK(counts.check(2, "10.0.0.1") == too_many::per_user);
    for (int i = 0; i < 3; ++i)
        counts.opened("10.0.0.1");
    CHECK(counts.check(0, "10.0.0.1") == too_many::per_address);
    CHECK(counts.check(0, "10.0.0.2") == too_many::none);
    CHECK(counts.check(0, "") == too_many::none); // unknown: not counted
    counts.closed("10.0.0.1");
    CHECK(counts.check(0, "10.0.0.1") == too_many::none);
    CHECK(counts.why(too_many::per_user) == "too many connections for this user (at most 2)\n");
    CHECK(counts.why(too_many::per_address) == "too many connections from this address (at most 3)\n");

    connection_counts off(0, 0);
    for (int i = 0; i < 100; ++i)
        off.opened("10.0.0.1");
    CHECK(off.check(1000, "10.0.0.1") == too_many::none);
}
