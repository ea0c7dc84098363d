// A real local Redis Cluster (3 masters, 3 replicas): what the cluster
// brokers will rely on, checked against the server.
#include <backplane/redis/connection.hpp>
#include <backplane/redis/slot.hpp>

#include "../support/redis_cluster_server.hpp"
#include "redis_cluster.hpp"

#include <catch2/catch.hpp>

#include <string>

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
