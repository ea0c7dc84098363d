// locator::redis_presence on a real Redis: the user -> instance map, its
// heartbeat, ghost cleanup after a SIGKILL (by expiry notifications, and by
// the sweep), the queries, and the three direct-message routings across
// three hubs.
#include <backplane/locator/redis_presence.hpp>

#include "../support/process.hpp"
#include "redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using clock_type = std::chrono::steady_clock;
using locator::redis_presence;

namespace {

// Short periods, so that a test sees several heartbeats and an expiry.
locator::redis_presence_options fast(std::chrono::milliseconds interval = 100ms, std::chrono::milliseconds ttl = 300ms)
{
    locator::redis_presence_options o;
    o.heartbeat_interval = interval;
    o.ttl = ttl;
    o.sweep_interval = 0ms;
    return o;
}

std::string text(asio::io_context& io, redis::connection& admin, std::vector<std::string> args)
{
    auto [ec, r] = call(io, admin, std::move(args));
    REQUIRE_FALSE(ec);
    return r.text;
}

// A presence for instance `instance`, as a hub sets it up.
redis_presence presence(asio::io_context& io, const std::string& url, std::string_view instance,
                        locator::redis_presence_options o)
{
    redis_presence p(io.get_executor(), url, std::move(o));
    p.set_instance(instance);
    return p;
}

// The host `p` sees for `user`, after everything `p` sent before.
std::string where(asio::io_context& io, redis_presence& p, const std::string& user)
{
    bool done = false;
    std::string host;
    p.where(user, [&](std::error_code ec, std::string_view h) {
        CHECK_FALSE(ec);
        host = std::string(h);
        done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    return host;
}

// Calls of a command since the last CONFIG RESETSTAT (INFO commandstats).
// Calls of `commands` that Redis has run, from one INFO reply.
std::int64_t calls(asio::io_context& io, redis::connection& admin, std::initializer_list<std::string> commands)
{
    const auto info = text(io, admin, {"INFO", "commandstats"});
    std::int64_t n = 0;
    for (const auto& command : commands) {
        const auto at = info.find("cmdstat_" + command + ":calls=");
        if (at != std::string::npos)
            n += std::stoll(info.substr(at + command.size() + 15));
    }
    return n;
}

// Starts presence_host with `users` users, waits for their entries, kills it
// with SIGKILL; returns how long the hash took to empty afterwards.
std::chrono::milliseconds ghosts_gone_after_sigkill(asio::io_context& io, redis_server& server,
                                                    redis::connection& admin, std::chrono::milliseconds ttl)
{
    process host({BACKPLANE_PRESENCE_HOST, server.url(), "i9", "100", "200", std::to_string(ttl.count()),
                  "--no-notifications"});
    REQUIRE(run_until(io, [&] { return integer(io, admin, {"HLEN", "user:host"}) == 100; }));
    CHECK(text(io, admin, {"HGET", "user:host", "u42"}) == "i9");
    host.kill();
    const auto killed = clock_type::now();
    CHECK(run_until(io, [&] { return integer(io, admin, {"HLEN", "user:host"}) == 0; }, ttl + 2s));
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - killed);
}

} // namespace

TEST_CASE("presence: notify-keyspace-events gets E and x added, and nothing else changed")
{
    CHECK(locator::detail::notify_flags_with_expired("") == "Ex");
    CHECK(locator::detail::notify_flags_with_expired("Kg") == "KgEx");
    CHECK(locator::detail::notify_flags_with_expired("Ex").empty());
    CHECK(locator::detail::notify_flags_with_expired("AKE").empty());
    CHECK(locator::detail::notify_flags_with_expired("xK") == "xKE");
}

TEST_CASE("presence: an entry names its instance while online, and goes at once on the last disconnect", "[timing]")
{
    redis_server server;
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto p = presence(io, server.url(), "i1", fast());
    p.user_online("alice");
    CHECK(where(io, p, "alice") == "i1");
    CHECK(text(io, admin, {"HGET", "user:host", "alice"}) == "i1");
    const auto ttl = integer(io, admin, {"PTTL", "user:alive:alice"});
    CHECK(ttl > 0);
    CHECK(ttl <= 300);

    const auto start = clock_type::now();
    p.user_offline("alice");
    CHECK(where(io, p, "alice").empty());
    CHECK(clock_type::now() - start < 100ms); // not at the next heartbeat: now
    CHECK(integer(io, admin, {"HEXISTS", "user:host", "alice"}) == 0);
    CHECK(integer(io, admin, {"EXISTS", "user:alive:alice"}) == 0);
    CHECK(p.local_users() == 0);

    p.user_online("bad:name"); // refused: it would reach another key
    CHECK(p.local_users() == 0);
    bool refused = false;
    p.where("bad:name", [&](std::error_code ec, std::string_view) { refused = ec == error::invalid_name; });
    REQUIRE(run_until(io, [&] { return refused; }));
    CHECK(p.stats().errors == 0);
}

TEST_CASE("presence: a user who reconnected elsewhere keeps the new entry when the old connection closes", "[timing]")
{
    redis_server server;
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto p1 = presence(io, server.url(), "i1", fast());
    auto p2 = presence(io, server.url(), "i2", fast());

    SECTION("the old instance learns of the disconnect after the new one of the connect")
    {
        p1.user_online("alice");
        CHECK(where(io, p1, "alice") == "i1");
        p2.user_online("alice");
        CHECK(where(io, p2, "alice") == "i2");
        p1.user_offline("alice"); // late: alice is on i2 now
        CHECK(where(io, p1, "alice") == "i2");
        CHECK(integer(io, admin, {"EXISTS", "user:alive:alice"}) == 1);
        run_for(io, 700ms); // past the ttl: i2's heartbeats keep it
        CHECK(where(io, p1, "alice") == "i2");
    }
    SECTION("connected on both: the heartbeat of the other instance does not steal the entry, and takes it over "
            "when the host's last connection closes")
    {
        p1.user_online("alice");
        CHECK(where(io, p1, "alice") == "i1");
        p2.user_online("alice");
        CHECK(where(io, p2, "alice") == "i2");
        run_for(io, 350ms); // three heartbeats each
        CHECK(where(io, p1, "alice") == "i2");
        p2.user_offline("alice");
        CHECK(where(io, p2, "alice").empty());
        REQUIRE(run_until(io, [&] { return where(io, p2, "alice") == "i1"; }, 300ms));
    }
}

TEST_CASE("presence: one heartbeat refreshes every local user with one script call per batch", "[timing]")
{
    redis_server server;
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto options = fast();
    options.refresh_batch = GENERATE(500, 50);
    auto p = presence(io, server.url(), "i1", options);
    for (int i = 0; i < 200; ++i)
        p.user_online("u" + std::to_string(i));
    CHECK(where(io, p, "u199") == "i1");
    REQUIRE(text(io, admin, {"CONFIG", "RESETSTAT"}) == "OK");
    const auto before = p.stats().heartbeats;

    run_for(io, 1000ms); // more than three ttls
    const auto heartbeats = p.stats().heartbeats - before;
    CHECK(heartbeats >= 7);
    CHECK(heartbeats <= 11);
    const auto per_round = (200 + options.refresh_batch - 1) / options.refresh_batch;
    // A heartbeat is counted when it is sent, and Redis runs its calls a
    // moment later: compare the two when no heartbeat is on its way.
    CHECK(run_until(io, [&] {
        const auto sent = std::int64_t(p.stats().heartbeats - before);
        return calls(io, admin, {"evalsha", "eval"}) == sent * std::int64_t(per_round);
    }, 1000ms));
    CHECK(integer(io, admin, {"HLEN", "user:host"}) == 200);
    CHECK(integer(io, admin, {"EXISTS", "user:alive:u0", "user:alive:u100", "user:alive:u199"}) == 3);
    CHECK(p.stats().refreshed >= 200 * heartbeats);
    CHECK(p.stats().errors == 0);
}

TEST_CASE("presence: SIGKILL an instance with 100 users: expiry notifications clear them within ttl + 1 s", "[timing]")
{
    redis_server server; // notify-keyspace-events is off by default: the presence turns it on
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto watcher = presence(io, server.url(), "i1", fast()); // no sweep
    const auto flags = [&] {
        auto [ec, r] = call(io, admin, {"CONFIG", "GET", "notify-keyspace-events"});
        REQUIRE_FALSE(ec);
        REQUIRE(r.elements.size() == 2);
        return r.elements[1].text;
    };
    REQUIRE(run_until(io, [&] { return !flags().empty(); }));
    CHECK(locator::detail::notify_flags_with_expired(flags()).empty());
    CHECK_FALSE(watcher.notifications_error());

    const auto ttl = 1000ms;
    const auto took = ghosts_gone_after_sigkill(io, server, admin, ttl);
    std::printf("presence: 100 ghosts gone %lld ms after SIGKILL (ttl %lld ms, expiry notifications)\n",
                static_cast<long long>(took.count()), static_cast<long long>(ttl.count()));
    CHECK(took <= ttl + 1s);
    // The hash is empty; the replies to the watcher's scripts may still be on their way.
    CHECK(run_until(io, [&] { return watcher.stats().cleaned_by_notification == 100; }, 500ms));
    CHECK(watcher.stats().sweeps == 0);
    CHECK(integer(io, admin, {"EXISTS", "user:alive:u0"}) == 0);
}

TEST_CASE("presence: SIGKILL an instance with 100 users: without notifications the sweep clears them within ttl + 1 s", "[timing]")
{
    // CONFIG renamed away, as on a managed Redis: notifications stay off.
    redis_server server(redis_server_options{false, {}, {"--rename-command", "CONFIG", ""}});
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto options = fast();
    options.sweep_interval = 250ms;
    options.sweep_batch = 16; // several batches per pass
    auto watcher = presence(io, server.url(), "i1", options);
    REQUIRE(run_until(io, [&] { return bool(watcher.notifications_error()); }));
    CHECK(watcher.notifications_error() == error::server_error);

    const auto ttl = 1000ms;
    const auto took = ghosts_gone_after_sigkill(io, server, admin, ttl);
    std::printf("presence: 100 ghosts gone %lld ms after SIGKILL (ttl %lld ms, sweep every %lld ms)\n",
                static_cast<long long>(took.count()), static_cast<long long>(ttl.count()),
                static_cast<long long>(options.sweep_interval.count()));
    CHECK(took <= ttl + 1s);
    CHECK(run_until(io, [&] { return watcher.stats().cleaned_by_sweep == 100; }, 500ms));
    CHECK(watcher.stats().cleaned_by_notification == 0);
    CHECK(watcher.stats().sweeps >= 2);
}

TEST_CASE("presence: a clean shutdown of an instance deletes its entries at once")
{
    redis_server server;
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    process host({BACKPLANE_PRESENCE_HOST, server.url(), "i9", "100", "200", "60000"});
    REQUIRE(run_until(io, [&] { return integer(io, admin, {"HLEN", "user:host"}) == 100; }));
    host.signal(SIGTERM);
    REQUIRE(host.wait_for(2000ms));
    CHECK(integer(io, admin, {"HLEN", "user:host"}) == 0);
    CHECK(integer(io, admin, {"EXISTS", "user:alive:u0"}) == 0);
}

TEST_CASE("presence: a shutdown while Redis is down ends at its deadline", "[timing]")
{
    redis_server server;
    asio::io_context io;
    auto p = presence(io, server.url(), "i1", fast());
    p.user_online("u1");
    REQUIRE(where(io, p, "u1") == "i1");
    server.kill();
    bool done = false;
    const auto start = clock_type::now();
    p.shutdown([&] { done = true; }, 300ms);
    REQUIRE(run_until(io, [&] { return done; }, 3000ms));
    CHECK(clock_type::now() - start < 1000ms);
    run_for(io, 100ms); // and nothing is called twice
}

TEST_CASE("presence: where and the online users in bounded pages, and ghosts are never reported")
{
    // A hash past hash-max-listpack-entries, as a big one is: HSCAN then
    // pages it (a small one comes whole).
    redis_server server(redis_server_options{false, {}, {"--hash-max-listpack-entries", "64"}});
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto p1 = presence(io, server.url(), "i1", fast());
    auto p2 = presence(io, server.url(), "i2", fast());
    for (int i = 0; i < 300; ++i)
        (i % 2 ? p2 : p1).user_online("u" + std::to_string(i));
    CHECK(where(io, p1, "u298") == "i1");
    CHECK(where(io, p2, "u299") == "i2");
    // A ghost: an entry without its alive key.
    REQUIRE(integer(io, admin, {"HSET", "user:host", "ghost", "i7"}) == 1);
    CHECK(where(io, p1, "ghost").empty());

    std::map<std::string, std::string> seen;
    std::string cursor = "0";
    std::size_t pages = 0, largest = 0;
    do {
        bool done = false;
        p1.online(cursor, 50, [&](std::error_code ec, online_page page) {
            REQUIRE_FALSE(ec);
            for (auto& u : page.users)
                seen[u.user] = u.instance;
            largest = std::max(largest, page.users.size());
            cursor = page.cursor;
            done = true;
        });
        REQUIRE(run_until(io, [&] { return done; }));
        REQUIRE(++pages < 100);
    } while (cursor != "0");
    CHECK(seen.size() == 300);
    CHECK(seen.count("ghost") == 0);
    CHECK(seen["u7"] == "i2");
    CHECK(seen["u8"] == "i1");
    CHECK(pages >= 4);
    CHECK(largest < 100);

    bool bad = false;
    p1.online("x", 10, [&](std::error_code ec, online_page) { bad = bool(ec); });
    REQUIRE(run_until(io, [&] { return bad; }));

    // The sweep deletes the ghost and nobody else.
    std::size_t removed = 99;
    bool swept = false;
    p1.sweep([&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        removed = n;
        swept = true;
    });
    REQUIRE(run_until(io, [&] { return swept; }));
    CHECK(removed == 1);
    CHECK(integer(io, admin, {"HLEN", "user:host"}) == 300);
}

TEST_CASE("presence: a server restart (scripts and data lost) is healed by the next heartbeats")
{
    redis_server server;
    asio::io_context io;
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    auto p = presence(io, server.url(), "i1", fast());
    p.user_online("alice");
    CHECK(where(io, p, "alice") == "i1");
    server.kill();
    server.start(); // empty, and without the scripts: EVALSHA meets NOSCRIPT
    const auto restored = [&] {
        auto [ec, r] = call(io, admin, {"HLEN", "user:host"});
        return !ec && r.integer == 1; // the admin connection too reconnects meanwhile
    };
    REQUIRE(run_until(io, restored, 3000ms));
    CHECK(where(io, p, "alice") == "i1");
}

TEST_CASE("presence: per-user channel, shared channel and Option B each deliver a DM exactly once across 3 hubs")
{
    redis_server server;
    std::map<std::string, std::vector<std::uint64_t>> received;
    for (auto routing : {direct_routing::per_user_channel, direct_routing::shared_channel,
                         direct_routing::instance_channel}) {
        hub_options ho;
        ho.direct = routing;
        basic_redis_cluster<broker::redis_pubsub, broker::redis_pubsub_options, redis_presence> c(
            server, 3, ho, {}, [&](asio::io_context& io) { return redis_presence(io.get_executor(), server.url(), fast()); });
        // 30 users, 10 per hub; each sends one DM to the next.
        std::vector<transport::memory::connection_handle> conns;
        for (int u = 0; u < 30; ++u)
            conns.push_back(c.connect(u % 3, "u" + std::to_string(u)).first);
        for (int i = 0; i < 3; ++i) // the hubs told their locators
            REQUIRE(where(c.io, c[i].locator(), "u" + std::to_string(27 + i)) == c[i].instance_id());
        c.settle();
        std::vector<std::uint64_t> before;
        for (int i = 0; i < 3; ++i)
            before.push_back(c[i].stats().received);

        for (int u = 0; u < 30; ++u)
            REQUIRE_FALSE(c[u % 3].send_to_user("u" + std::to_string((u + 1) % 30), "dm from u" + std::to_string(u)));
        const auto sent_to_host = [&] {
            return c[0].stats().sent_to_host + c[1].stats().sent_to_host + c[2].stats().sent_to_host;
        };
        if (routing == direct_routing::instance_channel) // the lookups come first
            REQUIRE(run_until(c.io, [&] { return sent_to_host() == 30; }));
        c.run();
        for (int u = 0; u < 30; ++u)
            CHECK(conns[u]->texts() == std::vector<std::string>{"dm from u" + std::to_string((u + 29) % 30)});
        auto& counts = received[routing == direct_routing::per_user_channel ? "per-user channel"
                                : routing == direct_routing::shared_channel ? "shared channel (A)"
                                                                            : "instance channel (B)"];
        for (int i = 0; i < 3; ++i)
            counts.push_back(c[i].stats().received - before[i]);
        if (routing == direct_routing::instance_channel) {
            // Offline: kept in the inbox stream, as the envelope the hub
            // would have published; taken by the user's next first connection.
            REQUIRE_FALSE(c[0].send_to_user("nobody", "later"));
            REQUIRE(run_until(c.io, [&] { return c[0].stats().kept_offline == 1; }));
            redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
            REQUIRE(run_until(c.io, [&] { return integer(c.io, admin, {"XLEN", "inbox:nobody"}) == 1; }));
            CHECK(integer(c.io, admin, {"TTL", "inbox:nobody"}) > 0); // gone some day if nobody comes
            auto [late, late_id] = c.connect(2, "nobody");
            REQUIRE(run_until(c.io, [&, late = late] { return !late->texts().empty(); }));
            CHECK(late->texts() == std::vector<std::string>{"later"});
            CHECK(c[2].stats().offline_delivered == 1);
            CHECK(integer(c.io, admin, {"EXISTS", "inbox:nobody"}) == 0);
        }
    }
    std::printf("presence: 30 DMs among 30 users on 3 instances; messages each instance received:\n");
    for (const auto& [name, counts] : received)
        std::printf("  %-22s i1=%llu i2=%llu i3=%llu total=%llu\n", name.c_str(),
                    static_cast<unsigned long long>(counts[0]), static_cast<unsigned long long>(counts[1]),
                    static_cast<unsigned long long>(counts[2]),
                    static_cast<unsigned long long>(counts[0] + counts[1] + counts[2]));
    CHECK(received["per-user channel"] == std::vector<std::uint64_t>{10, 10, 10});
    CHECK(received["shared channel (A)"] == std::vector<std::uint64_t>{30, 30, 30});
    CHECK(received["instance channel (B)"] == std::vector<std::uint64_t>{10, 10, 10});
}
