// Cross-instance scenarios, written once and run against every broker: the
// in-memory one (test_hub.cpp) and Redis Pub/Sub (redis/test_broker_redis_pubsub.cpp).
//
// A Cluster holds N hubs ("instances") and offers:
//   Cluster::hub_type& operator[](int i);
//   std::pair<test::connection_ptr, connection_id> connect(int i, std::string_view user);
//   void settle(); // every subscription asked for so far is in effect
//   void run();    // every message published so far has been delivered
// For the in-memory broker both just run the io_context; a network broker
// must wait for its server, which is why the scenarios call settle() between
// setting up their rooms and users and publishing.
#ifndef BACKPLANE_TESTS_SCENARIOS_HPP
#define BACKPLANE_TESTS_SCENARIOS_HPP

#include <backplane/hub.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace backplane::test::scenarios {

using strings = std::vector<std::string>;

/// Needs 3 hubs.
template <class Cluster>
void broadcast_reaches_everyone(Cluster& c)
{
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(1, "bob");
    auto [d, d_id] = c.connect(2, "dave");
    c.settle();
    REQUIRE_FALSE(c[0].broadcast("hi"));
    c.run();
    for (const auto& conn : {a, b, d})
        CHECK(conn->texts() == strings{"hi"});
    CHECK(c[0].stats().published == 1);
    for (int i = 0; i < 3; ++i)
        CHECK(c[i].stats().received == 1);
}

/// Needs 2 hubs.
template <class Cluster>
void exclude_skips_the_sender_only(Cluster& c)
{
    auto [a, a_id] = c.connect(0, "alice");
    auto [a2, a2_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(1, "bob");
    REQUIRE(a_id == b_id); // the first connection of each hub: the same number
    c.settle();
    c[0].broadcast("hi", a_id);
    c[0].join(a_id, "r");
    c[0].join(a2_id, "r");
    c[1].join(b_id, "r");
    c.settle();
    c[0].send_to_room("r", "room", a_id);
    c[0].send_to_user("alice", "dm", a2_id);
    c.run();
    CHECK(a->texts() == strings{"dm"});
    CHECK(a2->texts() == strings{"hi", "room"});
    CHECK(b->texts() == strings{"hi", "room"});
}

/// Needs 3 hubs.
template <class Cluster>
void room_message_reaches_members_only(Cluster& c)
{
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(1, "bob");
    auto [d, d_id] = c.connect(2, "dave");
    REQUIRE_FALSE(c[0].join(a_id, "lobby"));
    REQUIRE_FALSE(c[2].join(d_id, "lobby"));
    c.settle();
    REQUIRE_FALSE(c[1].send_to_room("lobby", "x")); // a non-member may send
    c.run();
    CHECK(a->texts() == strings{"x"});
    CHECK(b->texts().empty());
    CHECK(d->texts() == strings{"x"});
    CHECK(c[1].stats().received == 0); // hub 1 has no member: not subscribed
}

/// Needs 3 hubs.
template <class Cluster>
void direct_message_reaches_every_connection_of_the_user(Cluster& c)
{
    auto [p, p_id] = c.connect(0, "carol"); // phone
    auto [l, l_id] = c.connect(2, "carol"); // laptop
    auto [t, t_id] = c.connect(2, "carol"); // tablet
    auto [o, o_id] = c.connect(1, "other");
    c.settle();
    REQUIRE_FALSE(c[1].send_to_user("carol", "psst"));
    c.run();
    for (const auto& conn : {p, l, t})
        CHECK(conn->texts() == strings{"psst"});
    CHECK(o->texts().empty());
    CHECK(c[1].stats().received == 0);
}

} // namespace backplane::test::scenarios

#endif
