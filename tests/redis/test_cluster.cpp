// A real local Redis Cluster (3 masters, 3 replicas): what the cluster
// brokers will rely on, checked against the server.
#include <backplane/redis/connection.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/slot.hpp>

#include "../support/redis_cluster_server.hpp"
#include "redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;

TEST_CASE("cluster: hash_slot agrees with the server's CLUSTER KEYSLOT")
{
    redis_cluster_server cluster;
    asio::io_context io;
    redis::connection conn(io.get_executor(), redis::parse_url(cluster.node(0).url()));
    for (int i = 0; i < 500; ++i) {
        for (const std::string& key : {"chat:room:r" + std::to_string(i), "notif:user:u" + std::to_string(i),
                                      "stream:{chat:room:r" + std::to_string(i) + "}", "inbox:{u" + std::to_string(i) + "}x",
                                      std::string(std::size_t(i % 7), '{') + std::to_string(i) + "}"}) {
            INFO(key);
            CHECK(integer(io, conn, {"CLUSTER", "KEYSLOT", key}) == redis::hash_slot(key));
        }
    }
}

TEST_CASE("cluster: SPUBLISH to a node outside the shard of the channel's slot answers MOVED with that slot and its owner")
{
    redis_cluster_server cluster;
    asio::io_context io;
    const std::string channel = "chat:room:lobby";
    const auto slot = redis::hash_slot(channel);
    int moved = 0, delivered = 0;
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        redis::connection conn(io.get_executor(), redis::parse_url(cluster.node(i).url()));
        auto [ec, r] = call(io, conn, {"SPUBLISH", channel, "hello"});
        if (!ec) {
            ++delivered; // the shard of the slot: its master, and its replica too
            CHECK(r.integer == 0);
            continue;
        }
        ++moved;
        INFO(r.text);
        CHECK(r.text.rfind("MOVED " + std::to_string(slot) + " 127.0.0.1:", 0) == 0);
    }
    CHECK(delivered == 2);
    CHECK(moved == int(cluster.size()) - 2);
}

TEST_CASE("cluster: MOVED and ASK are read, anything else is not a redirection")
{
    auto moved = redis::parse_redirect("MOVED 3999 127.0.0.1:6381");
    REQUIRE(moved);
    CHECK_FALSE(moved->ask);
    CHECK(moved->slot == 3999);
    CHECK(moved->to == redis::node_address{"127.0.0.1", 6381});
    auto ask = redis::parse_redirect("ASK 16383 ::1:7000"); // the port after the last ':'
    REQUIRE(ask);
    CHECK(ask->ask);
    CHECK(ask->slot == 16383);
    CHECK(ask->to == redis::node_address{"::1", 7000});
    for (const char* bad : {"ERR unknown command", "MOVED", "MOVED 3999", "MOVED 16384 127.0.0.1:6381",
                            "MOVED x 127.0.0.1:6381", "MOVED 3999 127.0.0.1:", "MOVED 3999 127.0.0.1:70000",
                            "ASK 1 host", "moved 1 h:1"}) {
        INFO(bad);
        CHECK_FALSE(redis::parse_redirect(bad));
    }
}

namespace {
redis::reply integer_reply(std::int64_t v)
{
    redis::reply r;
    r.type = redis::reply::kind::integer;
    r.integer = v;
    return r;
}
redis::reply node_reply(std::string host, std::int64_t port)
{
    redis::reply r;
    r.type = redis::reply::kind::array;
    redis::reply h;
    h.type = redis::reply::kind::string;
    h.text = std::move(host);
    r.elements = {h, integer_reply(port)};
    return r;
}
redis::reply range_reply(std::int64_t first, std::int64_t last, std::string host, std::int64_t port)
{
    redis::reply r;
    r.type = redis::reply::kind::array;
    r.elements = {integer_reply(first), integer_reply(last), node_reply(std::move(host), port)};
    return r;
}
} // namespace

TEST_CASE("cluster: a slot map is read from CLUSTER SLOTS only if it serves every slot")
{
    redis::reply slots;
    slots.type = redis::reply::kind::array;
    slots.elements = {range_reply(0, 8191, "10.0.0.1", 7000), range_reply(8192, 16383, "", 7001)};
    auto map = redis::slot_map::from_cluster_slots(slots, {"10.0.0.9", 7001});
    REQUIRE(map);
    CHECK(map->master(0) == redis::node_address{"10.0.0.1", 7000});
    CHECK(map->master(8192) == redis::node_address{"10.0.0.9", 7001}); // no host: the one asked
    CHECK(map->masters().size() == 2);
    map->move(5, {"10.0.0.2", 7002});
    CHECK(map->master(5) == redis::node_address{"10.0.0.2", 7002});
    CHECK(map->master(4) == redis::node_address{"10.0.0.1", 7000});

    slots.elements.pop_back(); // half the slots unserved: not ready
    CHECK_FALSE(redis::slot_map::from_cluster_slots(slots));
    slots.elements = {range_reply(0, 16384, "h", 1)}; // past the last slot
    CHECK_FALSE(redis::slot_map::from_cluster_slots(slots));
}

TEST_CASE("cluster: the slot map of a real cluster sends each channel to a node that takes it")
{
    redis_cluster_server cluster;
    asio::io_context io;
    redis::connection seed(io.get_executor(), redis::parse_url(cluster.node(0).url()));
    auto [ec, r] = call(io, seed, {"CLUSTER", "SLOTS"});
    REQUIRE_FALSE(ec);
    auto map = redis::slot_map::from_cluster_slots(r, {"127.0.0.1", cluster.node(0).port()});
    REQUIRE(map);
    CHECK(map->masters().size() == 3);
    std::vector<std::unique_ptr<redis::connection>> to_master;
    for (const auto& m : map->masters())
        to_master.push_back(std::make_unique<redis::connection>(
            io.get_executor(), redis::parse_url("redis://" + m.host + ":" + std::to_string(m.port))));
    for (int i = 0; i < 300; ++i) {
        const std::string channel = "chat:room:r" + std::to_string(i);
        const auto& owner = map->master(redis::hash_slot(channel));
        std::size_t k = 0;
        while (map->masters()[k] != owner)
            ++k;
        auto [e, reply] = call(io, *to_master[k], {"SPUBLISH", channel, "m"});
        INFO(channel << ": " << reply.text);
        CHECK_FALSE(e);
    }
}
