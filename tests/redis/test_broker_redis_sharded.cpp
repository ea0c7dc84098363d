// broker::redis_sharded: hubs on a real local Redis Cluster (3 masters, 3
// replicas) behave as hubs on one Redis, with their rooms and users spread
// over the shards; they follow a failover and a slot migration.
#include <backplane/broker/memory.hpp>
#include <backplane/broker/redis_sharded.hpp>

#include "../scenarios.hpp"
#include "../support/redis_cluster_server.hpp"
#include "redis_cluster.hpp"
#include "sharded_cluster.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using strings = std::vector<std::string>;
using sharded_cluster = basic_sharded_cluster<broker::redis_sharded, broker::redis_sharded_options>;


TEST_CASE("sharded: a broadcast reaches every connection on every hub, the sender's too")
{
    redis_cluster_server cluster;
    sharded_cluster c(cluster, 3);
    scenarios::broadcast_reaches_everyone(c);
}

TEST_CASE("sharded: exclude skips the sending connection only, not the same id on another hub")
{
    redis_cluster_server cluster;
    sharded_cluster c(cluster, 2);
    scenarios::exclude_skips_the_sender_only(c);
}

TEST_CASE("sharded: a room message reaches the room's members on every hub and nobody else")
{
    redis_cluster_server cluster;
    sharded_cluster c(cluster, 3);
    scenarios::room_message_reaches_members_only(c);
}

TEST_CASE("sharded: a direct message reaches every connection of the user on every hub")
{
    redis_cluster_server cluster;
    sharded_cluster c(cluster, 3);
    scenarios::direct_message_reaches_every_connection_of_the_user(c);
}

TEST_CASE("sharded: rooms and users spread over every master, each message delivered once to each member")
{
    redis_cluster_server cluster;
    sharded_cluster c(cluster, 3);
    constexpr int rooms = 60;
    std::vector<std::vector<transport::memory::connection_handle>> members(rooms);
    for (int r = 0; r < rooms; ++r)
        for (int h = 0; h < 3; ++h)
            if ((r + h) % 3 != 0) { // two of the three hubs hold members of each room
                auto [conn, id] = c.connect(h, "u" + std::to_string(r) + "-" + std::to_string(h));
                REQUIRE_FALSE(c[h].join(id, "r" + std::to_string(r)));
                members[r].push_back(conn);
            }
    c.settle();

    // Each master holds some of the room channels, and only those of its slots.
    std::set<std::uint16_t> masters;
    for (int r = 0; r < rooms; ++r)
        masters.insert(c[0].broker().node_of("chat:room:r" + std::to_string(r))->port);
    CHECK(masters.size() == 3);
    for (const auto port : masters) {
        const auto i = index_of(cluster, {"127.0.0.1", port});
        const auto held = cluster.cli_output(i, {"PUBSUB", "SHARDCHANNELS", "chat:room:*"});
        int here = 0;
        for (int r = 0; r < rooms; ++r) {
            const auto name = "chat:room:r" + std::to_string(r);
            const bool mine = c[0].broker().node_of(name)->port == port;
            here += mine;
            INFO(name << " on " << port << ": " << held);
            CHECK((held.find(name + "\n") != std::string::npos) == mine);
        }
        CHECK(here > 0);
    }

    for (int round = 0; round < 5; ++round)
        for (int r = 0; r < rooms; ++r)
            REQUIRE_FALSE(c[r % 3].send_to_room("r" + std::to_string(r), "m" + std::to_string(round)));
    REQUIRE_FALSE(c[1].send_to_user("u7-1", "dm"));
    c.run();
    // Each room's messages in order; the DM on its own channel, so on its own
    // shard, in no order with them.
    for (int r = 0; r < rooms; ++r)
        for (const auto& conn : members[r]) {
            auto got = conn->texts();
            const auto dms = std::count(got.begin(), got.end(), "dm");
            got.erase(std::remove(got.begin(), got.end(), "dm"), got.end());
            INFO("room " << r);
            CHECK(got == strings{"m0", "m1", "m2", "m3", "m4"});
            CHECK(dms == (r == 7 && conn == members[7][1] ? 1 : 0)); // u7-1, on hub 1, is room 7's second member
        }
    for (int h = 0; h < 3; ++h)
        CHECK(c[h].broker().stats().shards == 3);
}

TEST_CASE("sharded: broadcasts spread over global channels on several masters, each hub's in order")
{
    redis_cluster_server cluster(3, 0);
    hub_options o;
    o.global_channels = 12;
    sharded_cluster c(cluster, 6, {}, o);
    std::vector<transport::memory::connection_handle> conns;
    for (int h = 0; h < 6; ++h)
        conns.push_back(c.connect(h, "u" + std::to_string(h)).first);
    c.settle();
    std::set<std::uint16_t> masters;
    for (int i = 0; i < 12; ++i) {
        const auto channel = "chat:global:" + std::to_string(i);
        masters.insert(c[0].broker().node_of(channel)->port);
        // Every hub holds every one of them.
        const auto held = cluster.cli_output(index_of(cluster, *c[0].broker().node_of(channel)),
                                             {"PUBSUB", "SHARDNUMSUB", channel});
        CHECK(held == channel + "\n6\n");
    }
    CHECK(masters.size() >= 2);
    for (int k = 0; k < 20; ++k)
        for (int h = 0; h < 6; ++h)
            REQUIRE_FALSE(c[h].broadcast("h" + std::to_string(h) + "-" + std::to_string(k)));
    c.run();
    for (const auto& conn : conns) {
        std::map<std::string, int> next; // each hub's broadcasts, in the order sent
        int total = 0;
        for (const auto& text : conn->texts()) {
            const auto hub = text.substr(0, text.find('-'));
            CHECK(std::stoi(text.substr(text.find('-') + 1)) == next[hub]++);
            ++total;
        }
        CHECK(total == 120);
    }
}

TEST_CASE("sharded: global_channels above 1 is refused with a broker that keeps history")
{
    broker::memory_bus bus;
    asio::io_context io;
    hub_options o;
    o.global_channels = 4;
    using memory_hub = basic_hub<transport::memory, broker::memory>;
    CHECK_THROWS_AS(memory_hub(transport::memory{}, broker::memory(bus, io.get_executor()), o), std::invalid_argument);
    o.global_channels = 0;
    CHECK_THROWS_AS(memory_hub(transport::memory{}, broker::memory(bus, io.get_executor()), o), std::invalid_argument);
}

TEST_CASE("sharded: a master killed, its replica promoted, the broker resubscribes there and delivery resumes",
          "[timing]")
{
    redis_cluster_server cluster(3, 1, 1000ms); // a master unreachable for 1 s is replaced
    sharded_cluster c(cluster, 2);
    const auto victim = *c[0].broker().node_of("chat:global"); // any master: the global channel's
    const auto room = channel_on(c[0].broker(), victim, "busy");
    auto [sender, sender_id] = c.connect(0, "sender");
    const auto member_conn = c.connect(1, "member"); // not a structured binding: a C++17 lambda below reads it
    const auto& member = member_conn.first;
    const auto member_id = member_conn.second;
    REQUIRE_FALSE(c[1].join(member_id, room));
    c.settle();
    REQUIRE_FALSE(c[0].send_to_room(room, "m0"));
    c.run();
    REQUIRE(member->texts() == strings{"m0"});

    cluster.node(index_of(cluster, victim)).kill();
    const auto killed = std::chrono::steady_clock::now();
    // A message every 20 ms until one arrives after the kill.
    int sent = 1;
    asio::steady_timer tick(c.io);
    std::function<void()> next = [&] {
        (void)c[0].send_to_room(room, "m" + std::to_string(sent++));
        tick.expires_after(20ms);
        tick.async_wait([&](std::error_code ec) {
            if (!ec)
                next();
        });
    };
    next();
    const bool resumed_in_time = run_until(c.io, [&] { return member->texts().size() >= 2; }, 30000ms);
    for (int h = 0; h < 2; ++h) {
        const auto st = c[h].broker().stats();
        INFO("hub " << h << ": map reads " << st.map_reads << ", moved " << st.moved << ", dropped " << st.dropped
                    << ", shards " << st.shards << ", published " << st.published << ", errors " << st.publish_errors
                    << ", owner now " << c[h].broker().node_of("chat:room:" + room)->port << " (killed "
                    << victim.port << ")");
        CHECK(resumed_in_time);
    }
    REQUIRE(resumed_in_time);
    const auto resumed = std::chrono::steady_clock::now() - killed;
    tick.cancel();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(resumed).count();
    std::cout << "sharded failover: delivery resumed " << ms << " ms after the master was killed (node timeout 1000 ms; "
              << c[1].broker().stats().moved << " channels moved on the member's hub)\n";
    CHECK(ms < 10000);
    CHECK(*c[0].broker().node_of(room) != victim);
    // Nothing twice, nothing out of order: what arrives is increasing.
    c.run();
    const auto got = member->texts();
    for (std::size_t i = 1; i < got.size(); ++i)
        CHECK(number(got[i - 1]) < number(got[i]));
    CHECK(c[1].broker().stats().moved >= 1);
}

TEST_CASE("sharded: the slot of a busy room migrated to another master: delivery continues, nothing twice")
{
    redis_cluster_server cluster(3, 0);
    sharded_cluster c(cluster, 2);
    const auto from = *c[0].broker().node_of("chat:global");
    const auto room = channel_on(c[0].broker(), from, "busy");
    const auto channel = "chat:room:" + room;
    const auto slot = redis::hash_slot(channel);
    redis::node_address to;
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (cluster.node(i).port() != from.port)
            to = {"127.0.0.1", cluster.node(i).port()};
    auto [sender, sender_id] = c.connect(0, "sender");
    const auto member_conn = c.connect(1, "member"); // not a structured binding: a C++17 lambda below reads it
    const auto& member = member_conn.first;
    const auto member_id = member_conn.second;
    REQUIRE_FALSE(c[1].join(member_id, room));
    c.settle();

    // A message every 2 ms, during and after the migration.
    int sent = 0;
    asio::steady_timer tick(c.io);
    std::function<void()> next = [&] {
        (void)c[0].send_to_room(room, "m" + std::to_string(sent++));
        tick.expires_after(2ms);
        tick.async_wait([&](std::error_code ec) {
            if (!ec)
                next();
        });
    };
    next();
    run_for(c.io, 200ms);
    const auto id = [&](const redis::node_address& n) {
        auto out = cluster.cli_output(index_of(cluster, n), {"CLUSTER", "MYID"});
        return out.substr(0, out.find('\n'));
    };
    const auto from_id = id(from), to_id = id(to);
    const auto s = std::to_string(slot);
    // What redis-cli --cluster reshard does for one slot (no keys to move).
    REQUIRE(cluster.cli_output(index_of(cluster, to), {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id}) == "OK\n");
    REQUIRE(cluster.cli_output(index_of(cluster, from), {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id}) == "OK\n");
    run_for(c.io, 100ms);
    const auto before = member->texts().size();
    const auto migrated = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < cluster.size(); ++i)
        REQUIRE(cluster.cli_output(i, {"CLUSTER", "SETSLOT", s, "NODE", to_id}) == "OK\n");
    // Delivery continues from the new owner.
    REQUIRE(run_until(c.io, [&] { return *c[1].broker().node_of(channel) == to && member->texts().size() > before + 50; },
                      10000ms));
    const auto continued = std::chrono::steady_clock::now() - migrated;
    tick.cancel();
    c.run();
    const auto got = member->texts();
    for (std::size_t i = 1; i < got.size(); ++i)
        CHECK(number(got[i - 1]) < number(got[i])); // nothing twice, in order
    std::cout << "sharded migration: " << got.size() << " of " << sent << " delivered, " << (sent - int(got.size()))
              << " lost while the channel moved; 50 more delivered within "
              << std::chrono::duration_cast<std::chrono::milliseconds>(continued).count() << " ms\n";
    CHECK(c[1].broker().stats().moved >= 1);
    CHECK(c[0].broker().stats().redirects + c[0].broker().stats().map_reads >= 2);
}

TEST_CASE("sharded: a list of seeds is read, and a seed that is down is skipped")
{
    auto seeds = redis::parse_seeds("redis://u:p@10.0.0.1:7000,10.0.0.2:7001,redis://10.0.0.3:7002");
    REQUIRE(seeds.size() == 3);
    CHECK(seeds[1].host == "10.0.0.2");
    CHECK(seeds[1].port == 7001);
    CHECK(seeds[1].password == "p");
    CHECK(seeds[2].password.empty());
    CHECK_THROWS_AS(redis::parse_seeds("redis://a:1,b:notaport"), std::invalid_argument);

    redis_cluster_server cluster(3, 0);
    asio::io_context io;
    broker::redis_sharded b(io.get_executor(),
                            "redis://127.0.0.1:1," + cluster.seeds()); // nothing listens on port 1
    b.subscribe("chat:room:x");
    CHECK(run_until(io, [&] { return b.connected(); }, 10000ms));
}
