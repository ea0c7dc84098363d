// broker::redis_sharded_streams: hubs on a real local Redis Cluster (3
// masters, 3 replicas) behave as hubs on one Redis with redis_streams: the
// shared scenarios, ids, history and inboxes with rooms and users spread over
// the masters, and nothing lost or delivered twice when a master fails over or
// a busy room's slot, stream and all, migrates to another master.
#include <backplane/broker/redis_sharded_streams.hpp>

#include "../scenarios.hpp"
#include "../support/redis_cluster_server.hpp"
#include "redis_cluster.hpp"
#include "sharded_cluster.hpp"
#include "stream_frames.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using strings = std::vector<std::string>;
using streams_cluster = basic_sharded_cluster<broker::redis_sharded_streams, broker::redis_sharded_streams_options>;

namespace {

// Channel names whose hash tag is the room or user: a stream, an inbox and
// their channel in one slot.
hub_options tagged(hub_options o = {})
{
    o.global_channel = "chat:{global}";
    o.room_channel = "chat:room:{{room}}";
    o.user_channel = "notif:user:{{user}}";
    return o;
}

std::string room_channel(const std::string& room) { return "chat:room:{" + room + "}"; }

// The node's answer to `args`, the trailing newline dropped.
std::string ask(redis_cluster_server& cluster, const redis::node_address& node, std::vector<std::string> args)
{
    auto out = cluster.cli_output(index_of(cluster, node), std::move(args));
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    return out;
}

// A message every `period` from hub 0 to `room`, "m0", "m1"... while it runs.
struct ticker {
    ticker(streams_cluster& on, std::string to, std::chrono::milliseconds every)
        : c(on), room(std::move(to)), period(every), timer(on.io)
    {
        next();
    }
    ~ticker() { timer.cancel(); }
    void next()
    {
        (void)c[0].send_to_room(room, "m" + std::to_string(sent++));
        timer.expires_after(period);
        timer.async_wait([this](std::error_code ec) {
            if (!ec)
                next();
        });
    }
    streams_cluster& c;
    std::string room;
    std::chrono::milliseconds period;
    asio::steady_timer timer;
    int sent = 0;
};

// The ids in `channel`'s stream, oldest first, read by hub 0's broker on the
// channel's master.
strings stream_ids(streams_cluster& c, const std::string& channel)
{
    std::optional<history_page> page;
    c[0].broker().history(channel, "0-0", 10000, [&](std::error_code ec, history_page p) {
        CHECK_FALSE(ec);
        page = std::move(p);
    });
    REQUIRE(run_until(c.io, [&] { return page.has_value(); }));
    strings ids;
    for (const auto& e : page->entries)
        ids.push_back(e.id);
    return ids;
}

strings ids_of(const transport::memory::connection_handle& conn)
{
    strings ids;
    for (const auto& frame : conn->texts())
        ids.push_back(id_of(frame));
    return ids;
}

} // namespace

TEST_CASE("sharded streams: a broadcast reaches every connection on every hub, the sender's too")
{
    redis_cluster_server cluster(3, 1);
    streams_cluster c(cluster, 3, {}, tagged());
    scenarios::broadcast_reaches_everyone(c);
}

TEST_CASE("sharded streams: exclude skips the sending connection only, not the same id on another hub")
{
    redis_cluster_server cluster(3, 1);
    streams_cluster c(cluster, 2, {}, tagged());
    scenarios::exclude_skips_the_sender_only(c);
}

TEST_CASE("sharded streams: a room message reaches the room's members on every hub and nobody else")
{
    redis_cluster_server cluster(3, 1);
    streams_cluster c(cluster, 3, {}, tagged());
    scenarios::room_message_reaches_members_only(c);
}

TEST_CASE("sharded streams: a direct message reaches every connection of the user on every hub")
{
    redis_cluster_server cluster(3, 1);
    streams_cluster c(cluster, 3, {}, tagged());
    scenarios::direct_message_reaches_every_connection_of_the_user(c);
}

TEST_CASE("sharded streams: rooms on every master keep their streams there, history and inboxes are read there")
{
    redis_cluster_server cluster(3, 1);
    streams_cluster c(cluster, 2, {}, tagged(with_ids()));
    auto [sender, sender_id] = c.connect(0, "sender");
    const auto member_conn = c.connect(1, "member");
    const auto& member = member_conn.first;
    std::vector<std::string> rooms;
    std::set<std::uint16_t> masters;
    for (int r = 0; r < 30; ++r) {
        rooms.push_back("r" + std::to_string(r));
        REQUIRE_FALSE(c[1].join(member_conn.second, rooms.back()));
        masters.insert(c[0].broker().node_of(room_channel(rooms.back()))->port);
    }
    REQUIRE(masters.size() == 3);
    c.settle();
    for (int k = 0; k < 5; ++k)
        for (const auto& room : rooms)
            REQUIRE_FALSE(c[0].send_to_room(room, room + "." + std::to_string(k)));
    c.run();

    // Each room's messages once each, in order, with stream ids.
    std::map<std::string, strings> by_room, ids_by_room;
    for (const auto& frame : member->texts()) {
        const auto text = payload_of(frame);
        const auto room = text.substr(0, text.find('.'));
        by_room[room].push_back(text);
        ids_by_room[room].push_back(id_of(frame));
    }
    REQUIRE(by_room.size() == rooms.size());
    for (const auto& room : rooms) {
        CHECK(by_room[room] == strings{room + ".0", room + ".1", room + ".2", room + ".3", room + ".4"});
        // The stream is on the room's master (another node would answer
        // MOVED), its ids those the member received.
        const auto key = c[0].broker().stream_key(room_channel(room));
        CHECK(ask(cluster, *c[0].broker().node_of(room_channel(room)), {"XLEN", key}) == "5");
        CHECK(stream_ids(c, room_channel(room)) == ids_by_room[room]);
    }
    CHECK(c[0].broker().stats().publish_errors == 0);

    // A newcomer joining with an id gets what the room kept after it.
    const auto first_frame = member->texts().front();
    const auto first_room = payload_of(first_frame).substr(0, payload_of(first_frame).find('.'));
    auto [late, late_id] = c.connect(0, "late");
    std::optional<recovery_result> result;
    REQUIRE_FALSE(c[0].join(late_id, first_room, id_of(first_frame),
                            [&](const recovery_result& r) { result = r; }));
    REQUIRE(run_until(c.io, [&] { return result.has_value(); }));
    c.run();
    CHECK(result->recovered);
    CHECK(result->replayed == 4);
    CHECK(payloads(late) == strings(by_room[first_room].begin() + 1, by_room[first_room].end()));

    // Direct messages to a user nobody is connected as wait in the inbox on
    // the user's master, and reach the user's first connection, in order.
    for (int i = 1; i <= 3; ++i)
        REQUIRE_FALSE(c[0].send_to_user("zoe", "dm" + std::to_string(i)));
    c.run();
    CHECK(c[0].broker().stats().inboxed == 3);
    const auto zoe_master = *c[0].broker().node_of("notif:user:{zoe}");
    CHECK(ask(cluster, zoe_master, {"XLEN", "inbox:{zoe}"}) == "3");
    auto [zoe, zoe_id] = c.connect(1, "zoe");
    REQUIRE(run_until(c.io, [&zoe = zoe] { return zoe->texts().size() >= 3; }));
    c.run();
    CHECK(payloads(zoe) == strings{"dm1", "dm2", "dm3"});
    REQUIRE(run_until(c.io, [&] { return ask(cluster, zoe_master, {"EXISTS", "inbox:{zoe}"}) == "0"; }));
}

TEST_CASE("sharded streams: a stream or an inbox outside its channel's slot is refused, nothing written")
{
    redis_cluster_server cluster(3, 0);
    asio::io_context io;
    broker::redis_sharded_streams b(io.get_executor(), "redis://" + cluster.seeds());
    REQUIRE(run_until(io, [&] { return b.connected(); }, 10000ms));
    std::vector<std::error_code> results;
    auto note = [&](std::error_code ec) { results.push_back(ec); };
    b.publish("chat:room:lobby", "x", note);             // stream:chat:room:lobby: another slot
    b.publish_direct("notif:user:{ann}", "bob", "x", note); // inbox:{bob}: bob's slot, not ann's
    b.publish("chat:room:{lobby}", "x", note);           // in its slot
    REQUIRE(run_until(io, [&] { return results.size() == 3; }));
    CHECK(results[0] == error::cross_slot);
    CHECK(results[1] == error::cross_slot);
    CHECK_FALSE(results[2]);
    CHECK(ask(cluster, *b.node_of("stream:chat:room:lobby"), {"EXISTS", "stream:chat:room:lobby"}) == "0");
    CHECK(ask(cluster, *b.node_of("inbox:{bob}"), {"EXISTS", "inbox:{bob}"}) == "0");
    CHECK(ask(cluster, *b.node_of("chat:room:{lobby}"), {"XLEN", "stream:chat:room:{lobby}"}) == "1");
    CHECK(b.stats().publish_errors == 2);

    broker::redis_sharded_streams_options o;
    o.streams.inbox.known_key = "known:{user}"; // not in the inbox's slot: refused at once
    CHECK_THROWS_AS(broker::redis_sharded_streams(io.get_executor(), "redis://" + cluster.seeds(), o),
                    std::invalid_argument);
    o.streams.inbox.known_key = "known:{{user}}";
    CHECK_NOTHROW(broker::redis_sharded_streams(io.get_executor(), "redis://" + cluster.seeds(), o));
}

TEST_CASE("sharded streams: a master killed, its replica promoted: the room resumes there, nothing lost or twice",
          "[timing]")
{
    redis_cluster_server cluster(3, 1, 1000ms); // a master unreachable for 1 s is replaced
    streams_cluster c(cluster, 2, {}, tagged(with_ids()));
    const auto victim = *c[0].broker().node_of("chat:{global}");
    const auto room = channel_on(c[0].broker(), victim, "busy", "chat:room:{", "}");
    const auto member_conn = c.connect(1, "member");
    const auto& member = member_conn.first;
    REQUIRE_FALSE(c[1].join(member_conn.second, room));
    c.settle();
    ticker tick(c, room, 10ms);
    REQUIRE(run_until(c.io, [&] { return member->texts().size() >= 20; }));

    cluster.node(index_of(cluster, victim)).kill();
    const auto killed = std::chrono::steady_clock::now();
    const auto before = member->texts().size();
    const bool resumed = run_until(c.io, [&] {
        return *c[1].broker().node_of(room_channel(room)) != victim && c[1].broker().connected()
               && member->texts().size() >= before + 50;
    }, 30000ms);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed)
                        .count();
    tick.timer.cancel();
    INFO("member's hub: moved " << c[1].broker().stats().moved << ", resumes " << c[1].broker().stats().resumes
                                << ", gaps " << c[1].broker().stats().gaps << ", map reads "
                                << c[1].broker().stats().map_reads);
    REQUIRE(resumed);
    c.run();

    // The member has exactly what the room's stream holds on the new master
    // from its first message on: whatever the stream kept, once, in order.
    auto kept = stream_ids(c, room_channel(room));
    const auto stored = int(kept.size()); // from m0: fewer than max_length were sent
    const auto got = ids_of(member);
    REQUIRE_FALSE(got.empty());
    kept.erase(kept.begin(), std::find(kept.begin(), kept.end(), got.front()));
    CHECK(got == kept);
    const auto s = c[1].broker().stats();
    CHECK(s.moved >= 1);
    CHECK(s.resumes >= 1);
    CHECK(s.gaps == 0);
    // Every publish was stored but those the hub was told failed (sent, and
    // the connection lost before the answer: they may have run).
    const auto failed = int(c[0].stats().publish_errors);
    CHECK(stored >= tick.sent - failed);
    CHECK(stored <= tick.sent);
    std::cout << "sharded streams failover: " << ms << " ms until 50 more delivered after the kill (node timeout 1000 "
              << "ms); " << stored << " of " << tick.sent << " sent stored and delivered, " << failed
              << " failed (lost with the connection)\n";
}

TEST_CASE("sharded streams: a busy room's slot migrated with its stream: nothing lost, nothing twice")
{
    redis_cluster_server cluster(3, 0);
    streams_cluster c(cluster, 2, {}, tagged(with_ids()));
    const auto from = *c[0].broker().node_of("chat:{global}");
    const auto room = channel_on(c[0].broker(), from, "busy", "chat:room:{", "}");
    const auto channel = room_channel(room);
    const auto key = c[0].broker().stream_key(channel);
    const auto slot = std::to_string(redis::hash_slot(channel));
    redis::node_address to;
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (cluster.node(i).port() != from.port)
            to = {"127.0.0.1", cluster.node(i).port()};
    const auto member_conn = c.connect(1, "member");
    const auto& member = member_conn.first;
    REQUIRE_FALSE(c[1].join(member_conn.second, room));
    c.settle();

    ticker tick(c, room, 2ms);
    run_for(c.io, 200ms);
    const auto from_id = ask(cluster, from, {"CLUSTER", "MYID"}), to_id = ask(cluster, to, {"CLUSTER", "MYID"});
    // What redis-cli --cluster reshard does for one slot: IMPORTING,
    // MIGRATING, the keys moved, then the slot given to its new node.
    REQUIRE(ask(cluster, to, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}) == "OK");
    REQUIRE(ask(cluster, from, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}) == "OK");
    run_for(c.io, 50ms);
    REQUIRE(ask(cluster, from, {"MIGRATE", "127.0.0.1", std::to_string(to.port), "", "0", "5000", "KEYS", key}) == "OK");
    run_for(c.io, 100ms); // publishes are asked to the new node meanwhile
    const auto asked = c[0].broker().stats().redirects;
    for (std::size_t i = 0; i < cluster.size(); ++i)
        REQUIRE(ask(cluster, {"127.0.0.1", cluster.node(i).port()}, {"CLUSTER", "SETSLOT", slot, "NODE", to_id}) == "OK");
    const auto moved = std::chrono::steady_clock::now();
    const auto before = member->texts().size();
    REQUIRE(run_until(c.io, [&] {
        return *c[1].broker().node_of(channel) == to && member->texts().size() > before + 50;
    }, 10000ms));
    const auto continued = std::chrono::steady_clock::now() - moved;
    tick.timer.cancel();
    c.run();
    REQUIRE(run_until(c.io, [&] { return int(member->texts().size()) >= tick.sent; }, 5000ms));
    c.run();
    CHECK(payloads(member) == numbered(0, tick.sent - 1)); // every one, once, in order
    CHECK(ask(cluster, to, {"XLEN", key}) == std::to_string(tick.sent)); // moved whole, and written on
    CHECK(asked >= 1);                          // ASK followed while the key was on the new node
    CHECK(c[1].broker().stats().moved >= 1);
    CHECK(c[1].broker().stats().resumes >= 1);
    CHECK(c[0].broker().stats().publish_errors == 0);
    std::cout << "sharded streams migration: " << tick.sent << " of " << tick.sent << " delivered, "
              << asked << " publishes asked to the importing node; 50 more delivered within "
              << std::chrono::duration_cast<std::chrono::milliseconds>(continued).count() << " ms\n";
}

TEST_CASE("sharded streams: redis-cli --cluster reshard moves a busy room's slot: nothing lost, nothing twice")
{
    redis_cluster_server cluster(3, 0);
    streams_cluster c(cluster, 2, {}, tagged(with_ids()));
    const auto from = *c[0].broker().node_of("chat:{global}");
    // reshard moves the source's lowest slots first: a room in that slot.
    // CLUSTER NODES: "id address flags master ping pong epoch link slots...".
    const auto nodes = ask(cluster, from, {"CLUSTER", "NODES"});
    const auto mine = nodes.substr(nodes.rfind('\n', nodes.find("myself")) + 1);
    std::istringstream fields(mine.substr(0, mine.find('\n')));
    std::string field;
    for (int i = 0; i < 9; ++i)
        fields >> field;
    const auto lowest = field.substr(0, field.find('-'));
    INFO("CLUSTER NODES: " << nodes);
    std::string room;
    for (int i = 0; room.empty(); ++i)
        if (std::to_string(redis::hash_slot("busy" + std::to_string(i))) == lowest)
            room = "busy" + std::to_string(i);
    const auto channel = room_channel(room);
    REQUIRE(*c[0].broker().node_of(channel) == from);
    redis::node_address to;
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (cluster.node(i).port() != from.port)
            to = {"127.0.0.1", cluster.node(i).port()};
    const auto member_conn = c.connect(1, "member");
    const auto& member = member_conn.first;
    REQUIRE_FALSE(c[1].join(member_conn.second, room));
    c.settle();

    ticker tick(c, room, 2ms);
    run_for(c.io, 200ms);
    auto reshard = cluster.start_cli({"--cluster", "reshard", "127.0.0.1:" + std::to_string(from.port), "--cluster-from",
                                      ask(cluster, from, {"CLUSTER", "MYID"}), "--cluster-to",
                                      ask(cluster, to, {"CLUSTER", "MYID"}), "--cluster-slots", "1", "--cluster-yes"});
    REQUIRE(run_until(c.io, [&] { return !reshard.running(); }, 30000ms));
    INFO("redis-cli: " << cluster.started_output());
    REQUIRE(cluster.started_output().find("Moving slot " + lowest + " from") != std::string::npos);
    const auto before = member->texts().size();
    REQUIRE(run_until(c.io, [&] {
        return *c[1].broker().node_of(channel) == to && member->texts().size() > before + 50;
    }, 10000ms));
    tick.timer.cancel();
    c.run();
    REQUIRE(run_until(c.io, [&] { return int(member->texts().size()) >= tick.sent; }, 5000ms));
    c.run();
    CHECK(payloads(member) == numbered(0, tick.sent - 1)); // every one, once, in order
    CHECK(ask(cluster, to, {"XLEN", c[0].broker().stream_key(channel)}) == std::to_string(tick.sent));
    CHECK(c[1].broker().stats().moved >= 1);
    CHECK(c[0].broker().stats().publish_errors == 0);
    std::cout << "sharded streams reshard (redis-cli): " << tick.sent << " of " << tick.sent << " delivered, "
              << c[0].broker().stats().redirects << " commands redirected\n";
}
