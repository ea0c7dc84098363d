// End to end on a Redis Cluster: two backplane-instance processes with
// --broker redis-sharded or redis-sharded-streams on a local cluster (3
// masters, 3 replicas), and WebSocket clients on both.
#include "instance.hpp"

#include "../support/redis_cluster_server.hpp"

#include <backplane/redis/slot.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <sstream>
#include <string>

using namespace backplane::test;
using namespace std::chrono_literals;

namespace {

// Subscribers of a sharded channel, summed over the nodes (each counts its own).
long long shard_subscribers(redis_cluster_server& cluster, const std::string& channel)
{
    long long n = 0;
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        std::istringstream out(cluster.cli_output(i, {"PUBSUB", "SHARDNUMSUB", channel}));
        std::string name;
        long long count = 0;
        if (out >> name >> count)
            n += count;
    }
    return n;
}

// The port of the node that holds `channel`'s subscribers (0: none does).
std::uint16_t holder(redis_cluster_server& cluster, const std::string& channel)
{
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        std::istringstream out(cluster.cli_output(i, {"PUBSUB", "SHARDNUMSUB", channel}));
        std::string name;
        long long count = 0;
        if (out >> name >> count && count > 0)
            return cluster.node(i).port();
    }
    return 0;
}

} // namespace

TEST_CASE("cluster: global, room and direct messages cross instances on a Redis Cluster (redis-sharded)")
{
    redis_cluster_server cluster;
    const std::string globals = GENERATE(as<std::string>{}, "1", "8");
    const std::vector<std::string> flags{"--broker", "redis-sharded", "--global-channels", globals};
    instance a("a", "redis://" + cluster.seeds(), flags);
    instance b("b", "redis://" + cluster.seeds(), flags);
    auto alice = a.connect("alice");
    auto bob = b.connect("bob");

    // Rooms on every master: each one's messages reach the member on the other instance.
    std::set<std::uint16_t> holders;
    for (int r = 0; r < 12; ++r) {
        const auto room = "room" + std::to_string(r);
        bob->send_text(R"({"op":"join","room":")" + room + R"("})");
        CHECK(field(parse(bob->read_text()), "type") == "joined");
        REQUIRE(wait_until([&] { return shard_subscribers(cluster, "chat:room:" + room) == 1; }));
        holders.insert(holder(cluster, "chat:room:" + room));
        alice->send_text(R"({"op":"send","room":")" + room + R"(","text":"hi )" + room + R"("})");
        auto m = parse(bob->read_text());
        CHECK(field(m, "scope") == "room");
        CHECK(field(m, "room") == room);
        CHECK(field(m, "text") == "hi " + room);
        CHECK(field(m, "instance") == "b");
    }
    CHECK(holders.size() == 3); // every master holds some of them

    alice->send_text(R"({"op":"send","text":"to all"})");
    for (auto* client : {alice.get(), bob.get()}) {
        auto m = parse(client->read_text());
        CHECK(field(m, "scope") == "global");
        CHECK(field(m, "text") == "to all");
    }
    bob->send_text(R"({"op":"dm","to":"alice","text":"psst"})");
    auto m = parse(alice->read_text());
    CHECK(field(m, "scope") == "dm");
    CHECK(field(m, "text") == "psst");
    CHECK(field(m, "instance") == "a");

    for (int i = 0; i < 8; ++i) // with 8, every instance holds each of them
        CHECK(shard_subscribers(cluster, "chat:global:" + std::to_string(i)) == (globals == "8" ? 2 : 0));
    CHECK(shard_subscribers(cluster, "chat:global") == (globals == "8" ? 0 : 2));
    CHECK(a.metric("backplane_redis_connected") == 1);
    CHECK(b.metric("backplane_cluster_shards") == 3);
    CHECK(b.metric("backplane_cluster_map_reads_total") >= 1);
}

TEST_CASE("cluster: an instance whose seed is a Redis without cluster mode never says it is connected")
{
    redis_server plain; // CLUSTER SLOTS is refused: no slot map, so no channel is placed
    std::unique_ptr<instance> i;
    try {
        i = std::make_unique<instance>("x", plain.url(), std::vector<std::string>{"--broker", "redis-sharded"});
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("did not reach Redis") != std::string::npos);
    }
    CHECK_FALSE(i);
}

TEST_CASE("cluster: with history (redis-sharded-streams), a client back on the other instance catches up and gets its inbox")
{
    redis_cluster_server cluster;
    const std::vector<std::string> flags{"--broker", "redis-sharded-streams"};
    instance a("a", "redis://" + cluster.seeds(), flags);
    instance b("b", "redis://" + cluster.seeds(), flags);
    auto bob = b.connect("bob");
    const auto channel = [](const std::string& room) { return "chat:room:{" + room + "}"; };

    // Rooms on every master: alice, on a, gets each one's first message.
    std::set<std::uint16_t> holders;
    std::vector<std::string> first_ids;
    {
        auto alice = a.connect("alice");
        for (int r = 0; r < 9; ++r) {
            const auto room = "room" + std::to_string(r);
            alice->send_text(R"({"op":"join","room":")" + room + R"("})");
            CHECK(field(parse(alice->read_text()), "type") == "joined");
            REQUIRE(wait_until([&] { return shard_subscribers(cluster, channel(room)) == 1; }));
            holders.insert(holder(cluster, channel(room)));
            bob->send_text(R"({"op":"send","room":")" + room + R"(","text":")" + room + R"(.1"})");
            auto m = parse(alice->read_text());
            CHECK(field(m, "room") == room);
            CHECK(field(m, "text") == room + ".1");
            first_ids.push_back(field(m, "id"));
        }
    }
    CHECK(holders.size() == 3);
    REQUIRE(wait_until([&] { return shard_subscribers(cluster, "notif:user:{alice}") == 0; }));

    // While she is away: a second message in every room, and a direct message.
    for (int r = 0; r < 9; ++r)
        bob->send_text(R"({"op":"send","room":"room)" + std::to_string(r) + R"(","text":"room)" + std::to_string(r)
                       + R"(.2"})");
    bob->send_text(R"({"op":"dm","to":"alice","text":"psst"})");
    REQUIRE(wait_until([&] { return b.metric("backplane_inbox_stored_total") == 1; }));

    // Back, on b: the direct message from her inbox, then each room from its id.
    auto alice = b.connect("alice");
    auto dm = parse(alice->read_text());
    CHECK(field(dm, "scope") == "dm");
    CHECK(field(dm, "text") == "psst");
    for (int r = 0; r < 9; ++r) {
        const auto room = "room" + std::to_string(r);
        alice->send_text(R"({"op":"join","room":")" + room + R"(","last_id":")" + first_ids[r] + R"("})");
        CHECK(field(parse(alice->read_text()), "type") == "joined");
        auto m = parse(alice->read_text());
        CHECK(field(m, "room") == room);
        CHECK(field(m, "text") == room + ".2");
        auto rec = parse(alice->read_text());
        CHECK(field(rec, "type") == "recovery");
        CHECK(field(rec, "recovered") == "true");
        CHECK(field(rec, "replayed") == "1");
    }
    bob->send_text(R"({"op":"send","room":"room0","text":"live"})");
    CHECK(texts_until(*alice, "live").empty()); // nothing twice

    // Presence on the cluster: where each user is, as seen from the other instance.
    auto carol = a.connect("carol");
    carol->send_text(R"({"op":"where","user":"alice"})");
    auto at = parse(carol->read_text());
    CHECK(field(at, "type") == "presence");
    CHECK(field(at, "instance") == "b");
    REQUIRE(wait_until([&] {
        bob->send_text(R"({"op":"where","user":"carol"})");
        return field(parse(bob->read_text()), "instance") == "a";
    }));
    CHECK(b.metric("backplane_cluster_shards") == 3);
    CHECK(b.metric("backplane_inbox_delivered_total") == 1);
    CHECK(a.metric("backplane_redis_publish_errors_total") == 0);
}
