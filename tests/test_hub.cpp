#include <backplane/hub.hpp>

#include "scenarios.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace backplane;
using backplane::test::cluster;
using backplane::test::recording_hub;
using strings = std::vector<std::string>;

// The cross-instance scenarios are shared with the Redis broker's tests.
TEST_CASE("a broadcast reaches every connection on every hub, the sender's too")
{
    cluster<> c(3);
    test::scenarios::broadcast_reaches_everyone(c);
}

TEST_CASE("exclude skips the sending connection only, not the same id on another hub")
{
    cluster<> c(2);
    test::scenarios::exclude_skips_the_sender_only(c);
}

TEST_CASE("a room message reaches the room's members on every hub and nobody else")
{
    cluster<> c(3);
    test::scenarios::room_message_reaches_members_only(c);
}

TEST_CASE("a direct message reaches every connection of the user on every hub")
{
    cluster<> c(3);
    test::scenarios::direct_message_reaches_every_connection_of_the_user(c);
}

TEST_CASE("one frame is built per message and shared by every recipient")
{
    cluster<> c(1);
    std::vector<test::connection_ptr> conns;
    for (int i = 0; i < 50; ++i)
        conns.push_back(c.connect(0, "u" + std::to_string(i)).first);
    c[0].broadcast("shared");
    c.run();
    for (const auto& conn : conns) {
        REQUIRE(conn->frames().size() == 1);
        CHECK(conn->frames()[0].get() == conns[0]->frames()[0].get());
    }
    CHECK(conns[0]->frames()[0].use_count() == 50); // held by the 50 recipients only
}

TEST_CASE("the broker sees a room subscribed on first join and unsubscribed on last leave, once each")
{
    cluster<recording_hub> c(1);
    auto& log = *c[0].broker().log;
    CHECK(log == strings{"+chat:global"});
    log.clear();
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(0, "bob");
    auto [a2, a2_id] = c.connect(0, "alice");
    CHECK(log == strings{"+notif:user:alice", "+notif:user:bob"});
    log.clear();

    c[0].join(a_id, "r");
    c[0].join(b_id, "r");
    c[0].join(b_id, "r"); // twice
    c[0].join(a2_id, "r");
    CHECK(log == strings{"+chat:room:r"});
    c[0].leave(a_id, "r");
    c[0].leave(b_id, "r");
    c[0].leave(b_id, "r"); // not a member any more
    CHECK(log == strings{"+chat:room:r"});
    c[0].close(a2_id); // the last member disconnects
    CHECK(log == strings{"+chat:room:r", "-chat:room:r"});
    CHECK(c[0].room_count() == 0);

    log.clear();
    c[0].join(b_id, "r"); // the room comes back
    c[0].close(a_id);     // alice's last connection
    CHECK(log == strings{"+chat:room:r", "-notif:user:alice"});
    c[0].close(b_id);
    c[0].close(b_id);
    CHECK(log == strings{"+chat:room:r", "-notif:user:alice", "-chat:room:r", "-notif:user:bob"});
    CHECK(c[0].connection_count() == 0);
}

TEST_CASE("a join past the room limit is refused, subscribes nothing, and the connection serves on")
{
    hub_options o;
    o.max_rooms_per_connection = 3;
    cluster<recording_hub> c(1, true, o);
    auto& log = *c[0].broker().log;
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(0, "bob");
    for (const char* room : {"r1", "r2", "r3"})
        REQUIRE_FALSE(c[0].join(a_id, room));
    log.clear();

    CHECK(c[0].join(a_id, "r4") == error::too_many_rooms);
    CHECK(log.empty());
    CHECK(c[0].room_size("r4") == 0);
    CHECK(c[0].room_count() == 3);
    CHECK_FALSE(c[0].join(a_id, "r2")); // one it holds: not a new room
    CHECK_FALSE(c[0].join(b_id, "r4")); // the limit is per connection

    // Out of one room, into another; and the room it was refused still works.
    CHECK_FALSE(c[0].leave(a_id, "r1"));
    CHECK_FALSE(c[0].join(a_id, "r4"));
    c[0].send_to_room("r4", "in r4");
    c.run();
    CHECK(a->texts() == strings{"in r4"});
    CHECK(b->texts() == strings{"in r4"});
}

TEST_CASE("a join with a last id past the room limit is refused too, and replays nothing")
{
    hub_options o;
    o.max_rooms_per_connection = 1;
    cluster<> c(1, true, o);
    auto [a, a_id] = c.connect(0, "alice");
    REQUIRE_FALSE(c[0].join(a_id, "r1"));
    c[0].send_to_room("r2", "kept");
    c.run();
    bool done = false;
    CHECK(c[0].join(a_id, "r2", "0-0", [&](const recovery_result&) { done = true; }) == error::too_many_rooms);
    c.run();
    CHECK_FALSE(done);
    CHECK(a->texts().empty());
    CHECK(c[0].room_size("r2") == 0);
}

TEST_CASE("a room limit of 0 is no limit")
{
    hub_options o;
    o.max_rooms_per_connection = 0;
    cluster<> c(1, true, o);
    auto [a, a_id] = c.connect(0, "alice");
    for (int i = 0; i < 500; ++i)
        REQUIRE_FALSE(c[0].join(a_id, "r" + std::to_string(i)));
    CHECK(c[0].room_count() == 500);
}

TEST_CASE("a failed send removes the connection, its memberships and their counts")
{
    cluster<recording_hub> c(2);
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(0, "bob");
    auto [d, d_id] = c.connect(1, "dave");
    c[0].join(a_id, "solo");
    c[0].join(a_id, "shared");
    c[0].join(b_id, "shared");
    c[1].join(d_id, "shared");
    auto& log = *c[0].broker().log;
    log.clear();

    a->fail_sends(true); // alice's peer is gone
    c[1].send_to_room("shared", "1");
    c.run();
    CHECK_FALSE(c[0].contains(a_id));
    CHECK(c[0].stats().dropped_connections == 1);
    CHECK(c[0].room_size("shared") == 1);
    CHECK(c[0].room_size("solo") == 0);
    CHECK(log == strings{"-chat:room:solo", "-notif:user:alice"});
    CHECK(b->texts() == strings{"1"});
    CHECK(d->texts() == strings{"1"});

    c[1].send_to_room("shared", "2"); // delivery goes on for the others
    c.run();
    CHECK(b->texts() == strings{"1", "2"});
    CHECK(c[0].stats().deliveries == 2);
    CHECK(c[0].leave(a_id, "shared") == error::unknown_connection);
}

TEST_CASE("backpressure is counted and the frame still delivered")
{
    cluster<> c(1);
    auto [a, a_id] = c.connect(0, "alice");
    a->report_backpressure(true);
    c[0].broadcast("x");
    c.run();
    CHECK(a->texts() == strings{"x"});
    CHECK(c[0].stats().backpressure == 1);
    CHECK(c[0].contains(a_id));
}

TEST_CASE("invalid names are rejected and never reach the broker")
{
    cluster<recording_hub> c(1);
    auto& log = *c[0].broker().log;
    auto [a, a_id] = c.connect(0, "alice");
    log.clear();
    for (const std::string& bad : strings{"", "a:b", "*", "r?", "[x]", "a b", "a\nb", "\x7f", std::string(129, 'x')}) {
        INFO("name '" << bad << "'");
        std::error_code ec;
        CHECK(c[0].open(transport::memory::make_connection(), bad, ec) == no_connection);
        CHECK(ec == error::invalid_name);
        CHECK(c[0].join(a_id, bad) == error::invalid_name);
        CHECK(c[0].leave(a_id, bad) == error::invalid_name);
        CHECK(c[0].send_to_room(bad, "x") == error::invalid_name);
        CHECK(c[0].send_to_user(bad, "x") == error::invalid_name);
    }
    CHECK(log.empty());
    CHECK(c[0].connection_count() == 1);
    CHECK(c[0].stats().published == 0);
}

TEST_CASE("hub_options::authorize: a refused join subscribes nothing, and allowed() answers for the rest")
{
    std::vector<std::string> asked;
    hub_options o;
    o.authorize = [&](connection_id, std::string_view user, action what, std::string_view target) {
        asked.push_back(std::string(user) + " " + std::to_string(int(what)) + " " + std::string(target));
        return user == "alice" ? target != "secret" : what == action::join && target == "lobby";
    };
    cluster<recording_hub> c(1, true, o);
    auto& log = *c[0].broker().log;
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(0, "bob");
    log.clear();
    CHECK(c[0].join(a_id, "secret") == error::forbidden);
    CHECK(c[0].join(b_id, "team") == error::forbidden);
    CHECK(log.empty());
    CHECK(c[0].room_count() == 0);
    CHECK_FALSE(c[0].join(b_id, "lobby"));
    CHECK(c[0].room_size("lobby") == 1);
    CHECK(asked == strings{"alice 0 secret", "bob 0 team", "bob 0 lobby"});

    CHECK(c[0].allowed(a_id, action::send_to_room, "secret") == error::forbidden);
    CHECK_FALSE(c[0].allowed(a_id, action::send_to_user, "bob"));
    CHECK(c[0].allowed(b_id, action::broadcast) == error::forbidden);
    CHECK(c[0].allowed(b_id, action::online) == error::forbidden);
    CHECK(c[0].allowed(b_id + a_id + 1, action::online) == error::unknown_connection);

    SECTION("without a hook, everything is allowed")
    {
        cluster<> open_hub(1);
        auto [x, x_id] = open_hub.connect(0, "x");
        CHECK_FALSE(open_hub[0].allowed(x_id, action::online));
        CHECK_FALSE(open_hub[0].join(x_id, "secret"));
    }
}

TEST_CASE("calls on unknown connections and oversized payloads are errors")
{
    hub_options o;
    o.max_payload = 4;
    cluster<> c(1, true, o);
    auto [a, a_id] = c.connect(0, "alice");
    CHECK(c[0].join(a_id + 1, "r") == error::unknown_connection);
    CHECK(c[0].leave(12345, "r") == error::unknown_connection);
    CHECK(c[0].broadcast("12345") == error::payload_too_large);
    CHECK_FALSE(c[0].broadcast("1234"));
    c[0].close(987654321); // unknown: nothing happens
    CHECK(c[0].connection_count() == 1);
}

TEST_CASE("malformed messages from the broker are counted and harm nobody")
{
    cluster<> c(2);
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(1, "bob");
    broker::memory intruder(*c.buses[0], c.io.get_executor());
    for (std::string junk : {std::string(), std::string("hello"), std::string("b\x01\x09"),
                             std::string("b\x02\x01\x02i1\x00\x00\x01", 10)})
        intruder.publish("chat:global", junk, {});
    c[0].broadcast("after");
    c.run();
    CHECK(c[0].stats().malformed == 4);
    CHECK(c[1].stats().malformed == 4);
    CHECK(a->texts() == strings{"after"});
    CHECK(b->texts() == strings{"after"});
}

TEST_CASE("room messages may travel on the global channel instead")
{
    hub_options o;
    o.rooms = room_routing::global_channel;
    cluster<recording_hub> c(2, true, o);
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(1, "bob");
    c[0].join(a_id, "r");
    c[0].send_to_room("r", "x");
    c.run();
    CHECK(a->texts() == strings{"x"});
    CHECK(b->texts().empty());
    CHECK(c[1].stats().received == 1); // filtered, but received
    for (const auto& entry : *c[0].broker().log)
        CHECK(entry.find("chat:room:") == std::string::npos);
}

TEST_CASE("channel names are configurable, and bad options throw at setup")
{
    asio::io_context io;
    broker::memory_bus bus;
    hub_options o;
    o.global_channel = "g";
    o.room_channel = "rooms/{room}/feed";
    o.instance_id = "me";
    test::recording_hub hub({}, test::recording_broker{broker::memory(bus, io.get_executor())}, o);
    std::error_code ec;
    auto id = hub.open(transport::memory::make_connection(), "u", ec);
    hub.join(id, "lobby");
    CHECK(*hub.broker().log == strings{"+g", "+notif:user:u", "+rooms/lobby/feed"});
    CHECK(hub.instance_id() == "me");

    auto bad = o;
    bad.room_channel = "chat:room";
    CHECK_THROWS_AS(memory_hub({}, broker::memory(bus, io.get_executor()), bad), std::invalid_argument);
    bad = o;
    bad.instance_id = "has space";
    CHECK_THROWS_AS(memory_hub({}, broker::memory(bus, io.get_executor()), bad), std::invalid_argument);
    memory_hub anonymous({}, broker::memory(bus, io.get_executor()));
    CHECK(anonymous.instance_id().size() == 16);
}

TEST_CASE("a frame builder runs once per message and its frame reaches every target")
{
    hub_options o;
    int calls = 0;
    o.build_frame = [&](const message_view& m, std::string& out) {
        ++calls;
        out = std::string(m.origin) + "#" + std::to_string(m.sequence) + "/" + std::string(m.target) + ":"
              + std::string(m.payload);
    };
    cluster<> c(2, true, o);
    auto [a, a_id] = c.connect(0, "alice");
    auto [b, b_id] = c.connect(1, "bob");
    auto [b2, b2_id] = c.connect(1, "bob");
    c[0].send_to_user("bob", "hey");
    c[0].broadcast("all");
    c.run();
    CHECK(calls == 3); // hub 1: the DM and the broadcast; hub 0: the broadcast
    CHECK(b->texts() == strings{"i1#1/bob:hey", "i1#2/:all"});
    CHECK(b2->frames()[0].get() == b->frames()[0].get());
    CHECK(a->texts() == strings{"i1#2/:all"});
}
