// broker::redis_pubsub: hubs on one real Redis behave as hubs on one memory bus;
// the offline inbox expires when idle.
#include <backplane/broker/redis_pubsub.hpp>

#include "../scenarios.hpp"
#include "redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using strings = std::vector<std::string>;

namespace {

strings channels(asio::io_context& io, redis::connection& admin, const std::string& pattern = "*")
{
    auto [ec, r] = call(io, admin, {"PUBSUB", "CHANNELS", pattern});
    REQUIRE_FALSE(ec);
    strings out;
    for (const auto& e : r.elements)
        out.push_back(e.text);
    std::sort(out.begin(), out.end());
    return out;
}

bool has(const strings& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

} // namespace

TEST_CASE("redis: a broadcast reaches every connection on every hub, the sender's too")
{
    redis_server server;
    redis_cluster c(server, 3);
    scenarios::broadcast_reaches_everyone(c);
}

TEST_CASE("redis: exclude skips the sending connection only, not the same id on another hub")
{
    redis_server server;
    redis_cluster c(server, 2);
    scenarios::exclude_skips_the_sender_only(c);
}

TEST_CASE("redis: a room message reaches the room's members on every hub and nobody else")
{
    redis_server server;
    redis_cluster c(server, 3);
    scenarios::room_message_reaches_members_only(c);
}

TEST_CASE("redis: a direct message reaches every connection of the user on every hub")
{
    redis_server server;
    redis_cluster c(server, 3);
    scenarios::direct_message_reaches_every_connection_of_the_user(c);
}

TEST_CASE("a room's channel is on the server from its first local member to its last")
{
    redis_server server;
    redis_cluster c(server, 1);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(0, "bob");
    c.settle();
    CHECK(channels(c.io, admin) == strings{"chat:global", "notif:user:alice", "notif:user:bob"});

    c[0].join(a_id, "r");
    c.settle();
    CHECK(has(channels(c.io, admin), "chat:room:r"));
    c[0].join(b_id, "r");
    c[0].leave(a_id, "r");
    c.settle();
    CHECK(has(channels(c.io, admin), "chat:room:r"));
    c[0].close(b_id); // the last member goes
    c.settle();
    CHECK(channels(c.io, admin) == strings{"chat:global", "notif:user:alice"});
}

TEST_CASE("1,000 local connections: one publisher and one subscriber connection")
{
    redis_server server;
    redis_cluster c(server, 1);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    std::vector<transport::memory::connection_handle> conns;
    for (int i = 0; i < 1000; ++i) {
        auto [conn, id] = c.connect(0, "u" + std::to_string(i));
        REQUIRE_FALSE(c[0].join(id, "room" + std::to_string(i % 10)));
        conns.push_back(conn);
    }
    c.settle();
    CHECK(channels(c.io, admin, "notif:user:*").size() == 1000);
    CHECK(channels(c.io, admin, "chat:room:*").size() == 10);

    auto [ec, list] = call(c.io, admin, {"CLIENT", "LIST"});
    REQUIRE_FALSE(ec);
    std::istringstream lines(list.text);
    int pub = 0, sub = 0, total = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty())
            continue;
        ++total;
        pub += line.find(" name=i1:pub ") != std::string::npos;
        sub += line.find(" name=i1:sub ") != std::string::npos;
    }
    CHECK(pub == 1);
    CHECK(sub == 1);
    CHECK(total == 3); // and the admin connection

    c[0].broadcast("all");
    c[0].send_to_room("room3", "r3");
    c.run();
    std::size_t got = 0, in_room = 0;
    for (const auto& conn : conns) {
        got += conn->frames_received();
        in_room += conn->texts().size() == 2;
    }
    CHECK(got == 1100);
    CHECK(in_room == 100);
}

TEST_CASE("the broker reports its state, counters and executor")
{
    redis_server server;
    asio::io_context io;
    broker::redis_pubsub b(io.get_executor(), server.url());
    CHECK(b.get_executor() == io.get_executor());
    REQUIRE(run_until(io, [&] { return b.connected(); }));
    CHECK(b.publisher_state() == redis::connection_state::ready);
    CHECK(b.subscriber_state() == redis::connection_state::ready);
    int received = 0;
    b.set_message_handler([&](std::string_view ch, std::string_view id, std::string_view data) {
        CHECK(ch == "c");
        CHECK(id.empty());
        CHECK(data == "d");
        ++received;
    });
    b.subscribe("c");
    bool subscribed = false;
    b.subscriber().ping([&](std::error_code ec) { subscribed = !ec; });
    REQUIRE(run_until(io, [&] { return subscribed; }));
    std::error_code result = error::timeout;
    bool inside = true;
    b.publish("c", "d", [&](std::error_code ec) {
        CHECK_FALSE(inside); // never from inside publish
        result = ec;
    });
    inside = false;
    REQUIRE(run_until(io, [&] { return received == 1 && !result; }));
    CHECK(b.stats().published == 1);
    CHECK(b.stats().received == 1);
    CHECK(b.stats().publish_errors == 0);
    CHECK_THROWS_AS(broker::redis_pubsub(io.get_executor(), "redis:/nope"), std::invalid_argument);
}

TEST_CASE("an offline inbox expires idle_expiry after its last write, and is deleted once its entries are removed")
{
    redis_server server;
    asio::io_context io;
    broker::redis_pubsub_options o;
    o.idle_expiry = std::chrono::seconds(1);
    broker::redis_pubsub b(io.get_executor(), server.url(), o);
    broker::redis_pubsub week(io.get_executor(), server.url()); // the default expiry
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    REQUIRE(run_until(io, [&] { return b.connected() && week.connected(); }));
    int stored = 0;
    auto count = [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++stored;
    };
    b.store_offline("nobody", "dm", count);
    week.store_offline("kept", "dm", count);
    week.store_offline("taken", "dm", count);
    REQUIRE(run_until(io, [&] { return stored == 3; }));
    CHECK(b.stats().inboxed == 1);
    CHECK(integer(io, admin, {"PTTL", "inbox:nobody"}) > 0);
    CHECK(integer(io, admin, {"PTTL", "inbox:nobody"}) <= 1000);
    CHECK(integer(io, admin, {"TTL", "inbox:kept"}) > 7 * 24 * 3600 - 60);

    std::optional<std::vector<offline_message>> read;
    week.read_offline("taken", "notif:user:taken", "", 10, [&](std::error_code ec, std::vector<offline_message> m) {
        CHECK_FALSE(ec);
        read = std::move(m);
    });
    REQUIRE(run_until(io, [&] { return read.has_value(); }));
    REQUIRE(read->size() == 1);
    CHECK(integer(io, admin, {"EXISTS", "inbox:taken"}) == 1); // read, not removed
    bool removed = false;
    week.remove_offline("taken", {(*read)[0].entry}, [&](std::error_code ec) {
        CHECK_FALSE(ec);
        removed = true;
    });
    REQUIRE(run_until(io, [&] { return removed; }));
    CHECK(integer(io, admin, {"EXISTS", "inbox:taken"}) == 0); // not an empty stream
    CHECK(week.stats().inbox_delivered == 1);

    REQUIRE(run_until(io, [&] { return integer(io, admin, {"EXISTS", "inbox:nobody"}) == 0; }, 5000ms));
    CHECK(integer(io, admin, {"EXISTS", "inbox:kept"}) == 1);
    o.idle_expiry = std::chrono::seconds(-1);
    CHECK_THROWS_AS(broker::redis_pubsub(io.get_executor(), server.url(), o), std::invalid_argument);
}

TEST_CASE("an offline inbox with a known key keeps messages only for a user marked known")
{
    redis_server server;
    asio::io_context io;
    broker::redis_pubsub_options o;
    o.inbox.known_key = "known:{user}";
    broker::redis_pubsub b(io.get_executor(), server.url(), o);
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    REQUIRE(run_until(io, [&] { return b.connected(); }));
    int stored = 0;
    auto count = [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++stored;
    };
    b.store_offline("ghost", "dm", count);
    REQUIRE(run_until(io, [&] { return stored == 1; }));
    CHECK(integer(io, admin, {"DBSIZE"}) == 0);
    CHECK(b.stats().unknown == 1);
    CHECK(b.stats().inboxed == 0);
    b.mark_known("zoe");
    b.store_offline("zoe", "dm", count);
    REQUIRE(run_until(io, [&] { return stored == 2; }));
    CHECK(integer(io, admin, {"XLEN", "inbox:zoe"}) == 1);
    CHECK(integer(io, admin, {"TTL", "known:zoe"}) > 7 * 24 * 3600 - 60);
    CHECK(b.stats().inboxed == 1);
    o.inbox.known_key = "known";
    CHECK_THROWS_AS(broker::redis_pubsub(io.get_executor(), server.url(), o), std::invalid_argument);
}
