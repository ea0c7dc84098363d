// locator::redis_cluster_presence: the user -> instance map on a real local
// Redis Cluster (3 masters, 3 replicas), beside broker::redis_sharded_streams:
// where, online and Option B across hubs, and the map followed to the replica
// when its master is killed.
#include <backplane/broker/redis_sharded_streams.hpp>
#include <backplane/locator/redis_cluster_presence.hpp>

#include "../support/redis_cluster_server.hpp"
#include "redis_cluster.hpp"
#include "sharded_cluster.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using presence_cluster = basic_sharded_cluster<broker::redis_sharded_streams, broker::redis_sharded_streams_options,
                                               locator::redis_cluster_presence>;

namespace {

// Names with the room, user or instance as hash tag: a channel and its keys in one slot.
hub_options tagged(direct_routing direct)
{
    hub_options o;
    o.global_channel = "chat:{global}";
    o.room_channel = "chat:room:{{room}}";
    o.user_channel = "notif:user:{{user}}";
    o.instance_channel = "instance:{{instance}}";
    o.shared_direct_channel = "dm:{all}";
    o.direct = direct;
    return o;
}

presence_cluster make(redis_cluster_server& cluster, int n, direct_routing direct = direct_routing::per_user_channel)
{
    return presence_cluster(cluster, n, {}, tagged(direct), [&cluster](asio::io_context& io) {
        locator::redis_cluster_presence_options o;
        o.presence.heartbeat_interval = std::chrono::milliseconds(100);
        o.presence.ttl = std::chrono::milliseconds(400);
        return locator::redis_cluster_presence(io.get_executor(), "redis://" + cluster.seeds(), o);
    });
}

// Where the hub's locator says `user` is; "?" on an error.
std::string where(asio::io_context& io, locator::redis_cluster_presence& l, const std::string& user)
{
    std::optional<std::string> out;
    l.where(user, [&](std::error_code ec, std::string_view instance) { out = ec ? "?" : std::string(instance); });
    REQUIRE(run_until(io, [&] { return out.has_value(); }));
    return *out;
}

// Whether the locator says `user` is at `expected` within 5 s: another
// hub's write goes on another connection, and may land a little later.
bool finds(asio::io_context& io, locator::redis_cluster_presence& l, const std::string& user, const std::string& expected)
{
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (where(io, l, user) != expected)
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        else
            run_for(io, 20ms);
    return true;
}

} // namespace

TEST_CASE("cluster presence: where, online and Option B across hubs, the map on one master")
{
    redis_cluster_server cluster(3, 1);
    auto c = make(cluster, 3, direct_routing::instance_channel);
    REQUIRE(run_until(c.io, [&] { return c[0].locator().connected(); }, 10000ms));
    std::vector<transport::memory::connection_handle> conns;
    for (int u = 0; u < 12; ++u)
        conns.push_back(c.connect(u % 3, "u" + std::to_string(u)).first);
    for (int u = 0; u < 12; ++u) // every hub sees every user where it is
        REQUIRE(finds(c.io, c[(u + 1) % 3].locator(), "u" + std::to_string(u), "i" + std::to_string(u % 3 + 1)));
    CHECK(where(c.io, c[0].locator(), "nobody").empty());

    // The map is on the master of the tag's slot, and only there.
    const auto node = *c[0].locator().node();
    CHECK(node == *c[0].broker().node_of("{presence}"));
    CHECK(cluster.cli_output(index_of(cluster, node), {"HLEN", "{presence}:user:host"}) == "12\n");

    std::set<std::string> listed;
    std::string cursor = "0";
    do {
        std::optional<online_page> page;
        c[2].locator().online(cursor, 5, [&](std::error_code ec, online_page p) {
            CHECK_FALSE(ec);
            page = std::move(p);
        });
        REQUIRE(run_until(c.io, [&] { return page.has_value(); }));
        for (const auto& u : page->users)
            listed.insert(u.user);
        cursor = page->cursor;
    } while (cursor != "0");
    CHECK(listed.size() == 12);

    // Option B: a DM goes to the instance the map names, once.
    c.settle();
    for (int u = 0; u < 12; ++u)
        REQUIRE_FALSE(c[u % 3].send_to_user("u" + std::to_string((u + 1) % 12), "from u" + std::to_string(u)));
    REQUIRE(run_until(c.io, [&] {
        return c[0].stats().sent_to_host + c[1].stats().sent_to_host + c[2].stats().sent_to_host == 12;
    }));
    c.run();
    for (int u = 0; u < 12; ++u)
        CHECK(conns[u]->texts() == std::vector<std::string>{"from u" + std::to_string((u + 11) % 12)});

    // The last connection closed: gone from the map at once.
    const auto brief = c.connect(0, "brief").second;
    REQUIRE(finds(c.io, c[1].locator(), "brief", "i1"));
    c[0].close(brief);
    CHECK(finds(c.io, c[1].locator(), "brief", ""));
}

TEST_CASE("cluster presence: the map's master killed, the presence follows to the promoted replica", "[timing]")
{
    redis_cluster_server cluster(3, 1, 1000ms); // a master unreachable for 1 s is replaced
    auto c = make(cluster, 2);
    REQUIRE(run_until(c.io, [&] { return c[0].locator().connected() && c[1].locator().connected(); }, 10000ms));
    auto alice = c.connect(0, "alice");
    auto bob = c.connect(1, "bob");
    REQUIRE(finds(c.io, c[1].locator(), "alice", "i1"));
    const auto victim = *c[0].locator().node();
    cluster.node(index_of(cluster, victim)).kill();
    const auto killed = std::chrono::steady_clock::now();
    REQUIRE(run_until(c.io, [&] {
        return c[0].locator().node() != victim && c[1].locator().node() != victim && c[0].locator().connected()
               && c[1].locator().connected();
    }, 30000ms));
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed).count();
    // Both instances' users are on the new master's map (told again, or replicated).
    CHECK(finds(c.io, c[1].locator(), "alice", "i1"));
    CHECK(finds(c.io, c[0].locator(), "bob", "i2"));
    CHECK(c[0].locator().moves() == 1);
    // And it goes on working: a user who leaves is gone, one who comes is there.
    c[1].close(bob.second);
    CHECK(finds(c.io, c[0].locator(), "bob", ""));
    c.connect(1, "carol");
    CHECK(finds(c.io, c[0].locator(), "carol", "i2"));
    std::printf("cluster presence: on the promoted replica %lld ms after its master was killed (node timeout 1000 ms)\n",
                static_cast<long long>(ms));
}
