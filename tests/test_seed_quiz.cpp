// The seed design's quiz, answered by running it.
#include <backplane/backplane.hpp>

#include "support.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <set>

using namespace backplane;
using backplane::test::cluster;

TEST_CASE("quiz 1: without a backplane only the sender's instance hears a broadcast")
{
    for (bool backplane : {false, true}) {
        cluster<> c(3, backplane);
        auto [a, a_id] = c.connect(0, "A");
        auto [b, b_id] = c.connect(1, "B");
        auto [d, d_id] = c.connect(2, "C");
        c[0].broadcast("hello");
        c.run();
        INFO((backplane ? "one shared broker" : "one broker per instance"));
        CHECK(a->frames_received() == 1);
        CHECK(b->frames_received() == (backplane ? 1u : 0u));
        CHECK(d->frames_received() == (backplane ? 1u : 0u));
    }
}

TEST_CASE("quiz 3: 1000 rooms of 10 users on 5 instances, global channel against per-room channels")
{
    constexpr int instances = 5, rooms = 1000, per_room = 10;
    for (auto routing : {room_routing::global_channel, room_routing::per_room_channel}) {
        hub_options o;
        o.rooms = routing;
        cluster<> c(instances, true, o);
        std::mt19937 rng(3);
        std::vector<std::set<int>> rooms_on(instances); // rooms with a local member
        std::vector<std::pair<int, connection_id>> first_member(rooms);
        for (int r = 0; r < rooms; ++r)
            for (int u = 0; u < per_room; ++u) {
                const int at = int(rng() % instances); // the load balancer's choice
                auto [conn, id] = c.connect(at, "u" + std::to_string(r * per_room + u));
                REQUIRE_FALSE(c[at].join(id, "room" + std::to_string(r)));
                rooms_on[at].insert(r);
                if (u == 0)
                    first_member[r] = {at, id};
            }
        for (int r = 0; r < rooms; ++r) // every room sends one message
            c[first_member[r].first].send_to_room("room" + std::to_string(r), "m");
        c.run();

        std::uint64_t deliveries = 0;
        for (int i = 0; i < instances; ++i) {
            const auto received = c[i].broker().received();
            INFO("instance " << i + 1 << ": " << rooms_on[i].size() << " rooms with a local member");
            if (routing == room_routing::global_channel)
                CHECK(received == std::uint64_t(rooms));
            else
                CHECK(received == rooms_on[i].size());
            deliveries += c[i].stats().deliveries;
        }
        CHECK(deliveries == std::uint64_t(rooms * per_room)); // every user got the message once
    }
}
