// The seed design's three direct-message routings, on the in-memory broker.
#include <backplane/hub.hpp>

#include "support.hpp"

#include <catch2/catch.hpp>

using namespace backplane;
using backplane::test::cluster;
using backplane::test::recording_hub;
using strings = std::vector<std::string>;

namespace {

hub_options routed(direct_routing r)
{
    hub_options o;
    o.direct = r;
    return o;
}

} // namespace

TEST_CASE("shared-channel routing: every hub receives each DM, only the user's connections get it")
{
    cluster<recording_hub> c(3, true, routed(direct_routing::shared_channel));
    CHECK(*c[0].broker().log == strings{"+chat:global", "+dm:all"});
    auto [b, b_id] = c.connect(1, "bob");
    auto [b2, b2_id] = c.connect(2, "bob");
    auto [o, o_id] = c.connect(2, "other");
    CHECK(*c[1].broker().log == strings{"+chat:global", "+dm:all"}); // no user channel
    REQUIRE_FALSE(c[0].send_to_user("bob", "hi"));
    c.run();
    CHECK(b->texts() == strings{"hi"});
    CHECK(b2->texts() == strings{"hi"});
    CHECK(o->texts().empty());
    for (int i = 0; i < 3; ++i)
        CHECK(c[i].broker().inner.received() == 1);
    c[1].close(b_id);
    CHECK(c[1].broker().log->back() == "+dm:all"); // nothing to unsubscribe
}

TEST_CASE("instance-channel routing: only the host the locator names receives the DM")
{
    cluster<test::located_hub> c(3, true, routed(direct_routing::instance_channel));
    CHECK(c[1].broker().subscribed("instance:i2"));
    CHECK(c[1].broker().channel_count() == 2); // the global channel and its own
    auto [b, b_id] = c.connect(1, "bob");
    auto [a, a_id] = c.connect(0, "alice");
    CHECK(c.users.host("bob") == "i2");
    REQUIRE_FALSE(c[0].send_to_user("bob", "hi"));
    CHECK(c[0].send_to_user("i:2", "x") == error::invalid_name);
    c.run();
    CHECK(b->texts() == strings{"hi"});
    CHECK(a->texts().empty());
    CHECK(c[1].broker().received() == 1);
    CHECK(c[0].broker().received() == 0);
    CHECK(c[2].broker().received() == 0);
    CHECK(c[0].stats().sent_to_host == 1);
}

TEST_CASE("instance-channel routing: a DM to an offline user is kept and reaches its next first connection")
{
    cluster<test::located_hub> c(2, true, routed(direct_routing::instance_channel));
    auto [a, a_id] = c.connect(0, "alice");
    REQUIRE_FALSE(c[0].send_to_user("zoe", "later"));
    c.run();
    CHECK(c[0].stats().kept_offline == 1);
    auto [z, z_id] = c.connect(1, "zoe");
    auto [z2, z2_id] = c.connect(1, "zoe"); // not her first connection: nothing more
    c.run();
    CHECK(z->texts() == strings{"later"});
    CHECK(z2->texts().empty());
    CHECK(c[1].stats().offline_delivered == 1);
    c[1].close(z_id);
    c[1].close(z2_id);
    CHECK(c.users.host("zoe").empty());
}

TEST_CASE("a hub without a locator refuses instance-channel routing at construction")
{
    CHECK_THROWS_AS(cluster<>(1, true, routed(direct_routing::instance_channel)), std::invalid_argument);
}

TEST_CASE("the three routings deliver a DM exactly once, at different costs")
{
    // 3 hubs, 30 users spread over them; every user sends one DM to the next.
    std::vector<std::uint64_t> received_total;
    for (auto r : {direct_routing::per_user_channel, direct_routing::shared_channel,
                   direct_routing::instance_channel}) {
        cluster<test::located_hub> c(3, true, routed(r));
        std::vector<test::connection_ptr> conns;
        for (int u = 0; u < 30; ++u)
            conns.push_back(c.connect(u % 3, "u" + std::to_string(u)).first);
        for (int u = 0; u < 30; ++u) {
            c[u % 3].send_to_user("u" + std::to_string((u + 1) % 30), "dm");
        }
        c.run();
        for (const auto& conn : conns)
            CHECK(conn->texts() == strings{"dm"});
        std::uint64_t total = 0;
        for (int i = 0; i < 3; ++i)
            total += c[i].broker().received();
        received_total.push_back(total);
    }
    CHECK(received_total == std::vector<std::uint64_t>{30, 90, 30});
}
