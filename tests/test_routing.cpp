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

TEST_CASE("instance-channel routing: only the named host receives the DM")
{
    cluster<recording_hub> c(3, true, routed(direct_routing::instance_channel));
    CHECK(*c[1].broker().log == strings{"+chat:global", "+instance:i2"});
    auto [b, b_id] = c.connect(1, "bob");
    auto [a, a_id] = c.connect(0, "alice");
    CHECK(c[0].send_to_user("bob", "x") == std::errc::operation_not_supported);
    REQUIRE_FALSE(c[0].send_to_user_at("i2", "bob", "hi"));
    REQUIRE_FALSE(c[0].send_to_user_at("i1", "bob", "wrong host")); // bob is not there
    CHECK(c[0].send_to_user_at("i:2", "bob", "x") == error::invalid_name);
    c.run();
    CHECK(b->texts() == strings{"hi"});
    CHECK(a->texts().empty());
    CHECK(c[1].broker().inner.received() == 1);
    CHECK(c[2].broker().inner.received() == 0);
    CHECK(c[0].stats().unrouted == 1);
}

TEST_CASE("the three routings deliver a DM exactly once, at different costs")
{
    // 3 hubs, 30 users spread over them; every user sends one DM to the next.
    std::vector<std::uint64_t> received_total;
    for (auto r : {direct_routing::per_user_channel, direct_routing::shared_channel,
                   direct_routing::instance_channel}) {
        cluster<> c(3, true, routed(r));
        std::vector<test::connection_ptr> conns;
        for (int u = 0; u < 30; ++u)
            conns.push_back(c.connect(u % 3, "u" + std::to_string(u)).first);
        for (int u = 0; u < 30; ++u) {
            const auto to = "u" + std::to_string((u + 1) % 30);
            if (r == direct_routing::instance_channel)
                c[u % 3].send_to_user_at("i" + std::to_string((u + 1) % 3 + 1), to, "dm");
            else
                c[u % 3].send_to_user(to, "dm");
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
