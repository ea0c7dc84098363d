// broker::redis_streams on a real Redis: the shared scenarios, ids and
// history, resume after the broker's connections are killed, clients that
// reconnect with the last id they received, trimmed, lost and expired
// history, the offline inbox, and the expiry of every key the broker writes.
#include <backplane/broker/redis_streams.hpp>
#include <backplane/envelope.hpp>
#include <backplane/locator/redis_presence.hpp>

#include "../scenarios.hpp"
#include "redis_cluster.hpp"
#include "stream_frames.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace backplane;
using namespace backplane::test;
using strings = std::vector<std::string>;

namespace {

// N hubs ("i1".."iN"), each with its own redis_streams broker on one server:
// the Cluster of scenarios.hpp, settled once started.
struct streams_cluster : basic_redis_cluster<broker::redis_streams, broker::redis_streams_options> {
    streams_cluster(const redis_server& server, int n, hub_options base = {},
                    broker::redis_streams_options broker_options = {})
        : basic_redis_cluster(server, n, std::move(base), std::move(broker_options))
    {
        settle();
    }

    /// Opens a connection that resumes after `last_id` on the global channel.
    std::pair<transport::memory::connection_handle, connection_id>
    resume(int i, std::string_view user, const std::string& last_id, std::optional<recovery_result>& out)
    {
        auto c = transport::memory::make_connection();
        std::error_code ec;
        const auto id = hubs[i]->open(c, user, ec, resume_point{last_id, {}}, [&out](const recovery_result& r) {
            if (r.kind == message_kind::broadcast)
                out = r;
        });
        REQUIRE_FALSE(ec);
        return {c, id};
    }
};

// Every key on the server (SCAN, in pages).
strings all_keys(asio::io_context& io, redis::connection& admin)
{
    strings keys;
    std::string cursor = "0";
    do {
        auto [ec, r] = call(io, admin, {"SCAN", cursor, "COUNT", "1000"});
        REQUIRE_FALSE(ec);
        REQUIRE(r.elements.size() == 2);
        cursor = r.elements[0].text;
        for (const auto& k : r.elements[1].elements)
            keys.push_back(k.text);
    } while (cursor != "0");
    return keys;
}

// Kills every connection whose name starts with `prefix` ("i2:").
int kill_clients(asio::io_context& io, redis::connection& admin, const std::string& prefix)
{
    auto [ec, r] = call(io, admin, {"CLIENT", "LIST"});
    REQUIRE_FALSE(ec);
    int killed = 0;
    std::size_t at = 0;
    const std::string& list = r.text;
    while (at < list.size()) {
        auto end = list.find('\n', at);
        if (end == std::string::npos)
            end = list.size();
        const std::string line = list.substr(at, end - at);
        at = end + 1;
        const auto name = line.find(" name=" + prefix);
        if (name == std::string::npos)
            continue;
        const auto id = line.substr(3, line.find(' ') - 3); // "id=N ..."
        auto [kec, kr] = call(io, admin, {"CLIENT", "KILL", "ID", id});
        REQUIRE_FALSE(kec);
        killed += static_cast<int>(kr.integer);
    }
    return killed;
}

} // namespace

TEST_CASE("redis streams: the shared cross-instance scenarios")
{
    redis_server server;
    SECTION("broadcast")
    {
        streams_cluster c(server, 3);
        scenarios::broadcast_reaches_everyone(c);
    }
    SECTION("exclude")
    {
        streams_cluster c(server, 2);
        scenarios::exclude_skips_the_sender_only(c);
    }
    SECTION("rooms")
    {
        streams_cluster c(server, 3);
        scenarios::room_message_reaches_members_only(c);
    }
    SECTION("direct")
    {
        streams_cluster c(server, 3);
        scenarios::direct_message_reaches_every_connection_of_the_user(c);
    }
}

TEST_CASE("redis streams: the message id is the stream id, and history pages honour the cursor")
{
    redis_server server;
    broker::redis_streams_options bo;
    bo.max_length = 5;
    bo.approximate_trim = false;
    streams_cluster c(server, 1, with_ids(), bo);
    auto [a, a_id] = c.connect(0, "alice");
    for (int i = 1; i <= 3; ++i)
        c[0].broadcast("m" + std::to_string(i));
    c.run();
    REQUIRE(a->texts().size() == 3);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    auto [ec, r] = call(c.io, admin, {"XRANGE", "stream:chat:global", "-", "+"});
    REQUIRE_FALSE(ec);
    REQUIRE(r.elements.size() == 3);
    for (int i = 0; i < 3; ++i)
        CHECK(id_of(a->texts()[i]) == r.elements[i].elements[0].text);

    std::optional<history_page> page;
    c[0].broker().history("chat:global", id_of(a->texts()[0]), 1, [&](std::error_code e, history_page p) {
        CHECK_FALSE(e);
        page = std::move(p);
    });
    REQUIRE(run_until(c.io, [&] { return page.has_value(); }));
    CHECK(page->cursor_found);
    REQUIRE(page->entries.size() == 1); // bounded by count
    CHECK(page->entries[0].id == id_of(a->texts()[1]));

    for (int i = 4; i <= 10; ++i) // trims m1..m5 (MAXLEN = 5)
        c[0].broadcast("m" + std::to_string(i));
    c.run();
    page.reset();
    c[0].broker().history("chat:global", id_of(a->texts()[0]), 100, [&](std::error_code e, history_page p) {
        CHECK_FALSE(e);
        page = std::move(p);
    });
    REQUIRE(run_until(c.io, [&] { return page.has_value(); }));
    CHECK_FALSE(page->cursor_found);
    CHECK(page->entries.size() == 5);

    bool failed = false;
    c[0].broker().history("chat:global", "nope", 1, [&](std::error_code e, history_page) {
        CHECK(e == error::invalid_stream_id);
        failed = true;
    });
    REQUIRE(run_until(c.io, [&] { return failed; }));
}

TEST_CASE("redis streams: CLIENT KILL of the receivers' connections in the middle of 1,000 messages loses nothing")
{
    redis_server server;
    streams_cluster c(server, 3, with_ids());
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    std::vector<transport::memory::connection_handle> clients;
    for (int i = 1; i <= 2; ++i)
        for (int k = 0; k < 2; ++k)
            clients.push_back(c.connect(i, "u" + std::to_string(i * 10 + k)).first);
    c.settle();

    int sent = 0;
    for (int batch = 0; batch < 20; ++batch) {
        for (int k = 0; k < 50; ++k)
            REQUIRE_FALSE(c[0].broadcast("m" + std::to_string(++sent)));
        if (batch == 4 || batch == 11) {
            // Back from the first kill before the second (on a loaded
            // machine the reconnect may take longer than the batches between).
            REQUIRE(run_until(c.io, [&] { return c.connected(); }));
            CHECK(kill_clients(c.io, admin, "i2:") == 2);
            CHECK(kill_clients(c.io, admin, "i3:") == 2);
        }
        run_for(c.io, 3ms); // publishing goes on while the receivers reconnect
    }
    const auto expected = numbered(1, 1000);
    REQUIRE(run_until(c.io, [&] {
        return std::all_of(clients.begin(), clients.end(), [](const auto& cl) { return cl->texts().size() >= 1000; });
    }, 10000ms));
    c.run();
    for (const auto& cl : clients)
        CHECK(payloads(cl) == expected); // all, in order, none twice
    CHECK(c[0].broker().stats().publish_errors == 0);
    for (int i = 1; i <= 2; ++i) {
        const auto s = c[i].broker().stats();
        CHECK(s.reconnects >= 4);
        CHECK(s.resumes >= 2);
        CHECK(s.gaps == 0);
        CHECK(s.received + s.resumed == 1000);
    }
}

TEST_CASE("redis streams: a client that reconnects with its last id while messages flow gets the exact sequence")
{
    redis_server server;
    streams_cluster c(server, 2, with_ids());
    auto [first, first_id] = c.connect(1, "alice");
    c.settle();
    int sent = 0;
    auto publish = [&](int n) {
        for (int k = 0; k < n; ++k)
            REQUIRE_FALSE(c[0].broadcast("m" + std::to_string(++sent)));
        run_for(c.io, 2ms);
    };
    for (int b = 0; b < 5; ++b)
        publish(40);
    c[1].close(first_id);
    const auto got = first->texts();
    REQUIRE_FALSE(got.empty());
    for (int b = 0; b < 5; ++b) // missed while away
        publish(40);
    std::optional<recovery_result> result;
    auto [second, second_id] = c.resume(1, "alice", id_of(got.back()), result);
    for (int b = 0; b < 5; ++b) // keeps flowing during the catch-up
        publish(40);
    // Structured bindings are captured by name: C++17 lambdas cannot capture them.
    REQUIRE(run_until(c.io, [&first = first, &second = second] {
        return first->texts().size() + second->texts().size() >= 600;
    }, 10000ms));
    c.run();
    REQUIRE(result.has_value());
    CHECK(result->recovered);
    CHECK_FALSE(result->error);
    CHECK(result->replayed > 0);
    auto all = payloads(first);
    const auto more = payloads(second);
    all.insert(all.end(), more.begin(), more.end());
    CHECK(all == numbered(1, 600));
}

TEST_CASE("redis streams: history trimmed past a client's id is reported, not skipped")
{
    redis_server server;
    broker::redis_streams_options bo;
    bo.max_length = 10;
    bo.approximate_trim = false;
    streams_cluster c(server, 1, with_ids(), bo);
    auto [a, a_id] = c.connect(0, "alice");
    c[0].broadcast("m1");
    c.run();
    REQUIRE(a->texts().size() == 1);
    c[0].close(a_id);
    for (int i = 2; i <= 30; ++i)
        c[0].broadcast("m" + std::to_string(i));
    c.run();
    std::optional<recovery_result> result;
    auto [b, b_id] = c.resume(0, "alice", id_of(a->texts()[0]), result);
    REQUIRE(run_until(c.io, [&] { return result.has_value(); }));
    CHECK_FALSE(result->recovered);
    CHECK(result->replayed == 10);
    CHECK(payloads(b) == numbered(21, 30));
}

TEST_CASE("redis streams: a restarted Redis keeps history with AOF, and loses it, reported, without")
{
    const bool aof = GENERATE(true, false);
    CAPTURE(aof);
    redis_server_options so;
    if (aof)
        so.extra_args = {"--appendonly", "yes", "--appendfsync", "always"};
    redis_server server(so);
    streams_cluster c(server, 2, with_ids());
    auto [a, a_id] = c.connect(1, "alice");
    c.settle();
    for (int i = 1; i <= 10; ++i)
        c[0].broadcast("m" + std::to_string(i));
    c.run();
    REQUIRE(a->texts().size() == 10);
    const auto last_seen = id_of(a->texts()[4]); // the client missed m6..m10
    c[1].close(a_id);

    server.kill();
    REQUIRE(run_until(c.io, [&] { return !c.connected(); }));
    server.start();
    REQUIRE(run_until(c.io, [&] { return c.connected(); }, 10000ms));
    c.settle();

    std::optional<recovery_result> result;
    auto [b, b_id] = c.resume(1, "alice", last_seen, result);
    REQUIRE(run_until(c.io, [&] { return result.has_value(); }));
    c[0].broadcast("m11"); // after the restart: a new id, never mistaken for an old one
    c.run();
    REQUIRE(run_until(c.io, [&b = b] { return !b->texts().empty() && payloads(b).back() == "m11"; }));
    if (aof) {
        CHECK(result->recovered);
        CHECK(result->replayed == 5);
        CHECK(payloads(b) == numbered(6, 11));
    } else {
        CHECK_FALSE(result->recovered); // never a silent gap
        CHECK(result->replayed == 0);
        CHECK(payloads(b) == strings{"m11"});
        CHECK(c[0].broker().stats().publish_errors == 0); // NOSCRIPT: the script loaded again
    }
}

TEST_CASE("redis streams: an offline user's direct messages wait in an inbox and are taken once, in order")
{
    redis_server server;
    streams_cluster c(server, 2, with_ids());
    auto [a, a_id] = c.connect(0, "alice");
    c.settle();
    for (int i = 1; i <= 5; ++i)
        REQUIRE_FALSE(c[0].send_to_user("zoe", "dm" + std::to_string(i)));
    REQUIRE_FALSE(c[0].send_to_user("alice", "online")); // received: not inboxed
    c.run();
    CHECK(c[0].broker().stats().inboxed == 5);

    // Zoe connects on both hubs at once, and twice on hub 1: the first
    // connection of each hub reads the inbox, and removes what it has
    // written. Both may read an entry before either removes it (as both
    // would have received it live); every entry reaches one of them at
    // least, and none reaches one connection twice.
    auto [z1, z1_id] = c.connect(1, "zoe");
    auto [z2, z2_id] = c.connect(1, "zoe");
    auto [z0, z0_id] = c.connect(0, "zoe");
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    REQUIRE(run_until(c.io, [&] { return call(c.io, admin, {"EXISTS", "inbox:zoe"}).second.integer == 0; }));
    c.run();
    CHECK(z2->texts().empty()); // not the first connection of its hub
    auto all = z0->texts();
    const auto on_1 = z1->texts();
    for (const strings* got : std::initializer_list<const strings*>{&all, &on_1}) {
        auto sorted = *got;
        std::sort(sorted.begin(), sorted.end()); // "id|payload": in id order
        CHECK(sorted == *got); // oldest first
        CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()); // once each
    }
    all.insert(all.end(), on_1.begin(), on_1.end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    strings texts;
    for (const auto& f : all)
        texts.push_back(payload_of(f));
    CHECK(texts == strings{"dm1", "dm2", "dm3", "dm4", "dm5"});
    const auto removed = c[0].broker().stats().inbox_delivered + c[1].broker().stats().inbox_delivered;
    CHECK(removed == 5); // removed once, whoever removed it
    CHECK(c[0].stats().offline_delivered + c[1].stats().offline_delivered == z0->texts().size() + on_1.size());
    // Their ids are the user channel's stream ids: a resume would have them.
    for (const auto& f : all) {
        stream_id id;
        CHECK(parse_stream_id(id_of(f), id));
    }

    // Only once: a DM sent while zoe is connected is received live, not
    // kept, and the inbox is empty.
    c[0].send_to_user("zoe", "live");
    c.run();
    CHECK(c[0].broker().stats().inboxed == 5);
    std::optional<std::vector<offline_message>> taken;
    c[1].broker().read_offline("zoe", "notif:user:zoe", "", 100,
                               [&](std::error_code ec, std::vector<offline_message> e) {
                                   CHECK_FALSE(ec);
                                   taken = std::move(e);
                               });
    REQUIRE(run_until(c.io, [&] { return taken.has_value(); }));
    CHECK(taken->empty());
    CHECK(payloads(z1).back() == "live");
    CHECK(payloads(z2) == strings{"live"});
}

TEST_CASE("redis streams: read_offline reads an entry without its own message id, as store_offline writes it")
{
    redis_server server;
    streams_cluster c(server, 1, with_ids());
    std::string data;
    encode(envelope{message_kind::user, "elsewhere", "yan", 0, 1, "kept"}, data);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    auto [ec, added] = call(c.io, admin, {"XADD", "inbox:yan", "*", "d", data});
    REQUIRE_FALSE(ec);
    REQUIRE(call(c.io, admin, {"XADD", "inbox:yan", "*", "other", "x"}).first == std::error_code());

    std::optional<std::vector<offline_message>> taken;
    c[0].broker().read_offline("yan", "notif:user:yan", "", 10,
                               [&](std::error_code e, std::vector<offline_message> entries) {
                                   CHECK_FALSE(e);
                                   taken = std::move(entries);
                               });
    REQUIRE(run_until(c.io, [&] { return taken.has_value(); }));
    REQUIRE(taken->size() == 1); // the entry that holds no message is skipped
    CHECK((*taken)[0].id == added.text);
    CHECK((*taken)[0].entry == added.text);
    CHECK((*taken)[0].data == data);
    CHECK_FALSE((*taken)[0].replayable);
}

TEST_CASE("redis streams: an inbox is read a page at a time, and removed with its last entry")
{
    redis_server server;
    streams_cluster c(server, 1, with_ids());
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    auto exists = [&] { return call(c.io, admin, {"EXISTS", "inbox:yan"}).second.integer; };
    int stored = 0;
    for (int i = 1; i <= 3; ++i)
        c[0].broker().store_offline("yan", "dm" + std::to_string(i), [&](std::error_code ec) {
            CHECK_FALSE(ec);
            ++stored;
        });
    REQUIRE(run_until(c.io, [&] { return stored == 3; }));
    auto read = [&](const std::string& after) {
        std::optional<std::vector<offline_message>> page;
        c[0].broker().read_offline("yan", "notif:user:yan", after, 2,
                                   [&](std::error_code ec, std::vector<offline_message> e) {
                                       CHECK_FALSE(ec);
                                       page = std::move(e);
                                   });
        REQUIRE(run_until(c.io, [&] { return page.has_value(); }));
        return *page;
    };
    auto remove = [&](const std::vector<offline_message>& page) {
        std::vector<std::string> entries;
        for (const auto& m : page)
            entries.push_back(m.entry);
        bool done = false;
        c[0].broker().remove_offline("yan", entries, [&](std::error_code ec) {
            CHECK_FALSE(ec);
            done = true;
        });
        REQUIRE(run_until(c.io, [&] { return done; }));
    };
    const auto first = read("");
    REQUIRE(first.size() == 2);
    CHECK(read("").size() == 2); // reading removes nothing
    const auto second = read(first.back().entry);
    REQUIRE(second.size() == 1);
    CHECK(first[0].data != second[0].data);
    CHECK(first[1].data != second[0].data);
    remove(first);
    CHECK(exists() == 1); // one entry left
    CHECK(read("").size() == 1);
    remove(second);
    CHECK(exists() == 0); // not an empty stream
    CHECK(read("").empty());
    remove(second); // again: nothing to remove, no key made
    CHECK(exists() == 0);
    CHECK(c[0].broker().stats().inbox_delivered == 3); // what was there to remove
}

TEST_CASE("redis streams: every stream and inbox the broker writes expires idle_expiry after its last write")
{
    const bool never = GENERATE(false, true);
    CAPTURE(never);
    redis_server server;
    broker::redis_streams_options bo;
    if (never)
        bo.idle_expiry = std::chrono::seconds(0);
    streams_cluster c(server, 1, with_ids(), bo);
    auto [a, a_id] = c.connect(0, "alice");
    REQUIRE_FALSE(c[0].join(a_id, "lobby"));
    c.settle();
    REQUIRE_FALSE(c[0].broadcast("all"));
    REQUIRE_FALSE(c[0].send_to_room("lobby", "room"));
    REQUIRE_FALSE(c[0].send_to_user("ghost", "dm")); // nobody receives it: inboxed
    bool stored = false;
    c[0].broker().store_offline("yan", "kept", [&](std::error_code ec) {
        CHECK_FALSE(ec);
        stored = true;
    });
    c.run();
    REQUIRE(stored);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    const strings keys{"stream:chat:global", "stream:chat:room:lobby", "stream:notif:user:ghost", "inbox:ghost",
                       "inbox:yan"};
    CHECK(all_keys(c.io, admin).size() == keys.size());
    for (const auto& key : keys) {
        CAPTURE(key);
        const auto ttl = integer(c.io, admin, {"TTL", key});
        if (never) {
            CHECK(ttl == -1);
        } else {
            CHECK(ttl > 7 * 24 * 3600 - 60); // the default: a week
            CHECK(ttl <= 7 * 24 * 3600);
        }
    }

    for (auto bad : {std::chrono::seconds(-1), std::chrono::seconds(std::chrono::hours(24 * 3651))}) {
        broker::redis_streams_options o;
        o.idle_expiry = bad;
        CHECK_THROWS_AS(broker::redis_streams(c.io.get_executor(), server.url(), o), std::invalid_argument);
    }
}

TEST_CASE("redis streams: a stream and an inbox nothing is written to for idle_expiry are gone")
{
    redis_server server;
    broker::redis_streams_options bo;
    bo.idle_expiry = std::chrono::seconds(2);
    streams_cluster c(server, 1, with_ids(), bo);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    auto pttl = [&](const std::string& key) { return integer(c.io, admin, {"PTTL", key}); };
    REQUIRE_FALSE(c[0].send_to_user("ghost", "dm1"));
    c.run();
    const auto first = pttl("stream:notif:user:ghost");
    CHECK(first > 0);
    CHECK(pttl("inbox:ghost") > 0);

    // Each write sets the expiry again: idle means nothing written.
    run_for(c.io, 300ms);
    const auto before = pttl("stream:notif:user:ghost");
    REQUIRE_FALSE(c[0].send_to_user("ghost", "dm2"));
    c.run();
    CHECK(before < first);
    CHECK(pttl("stream:notif:user:ghost") > before);
    CHECK(pttl("inbox:ghost") > before);
    CHECK(integer(c.io, admin, {"XLEN", "inbox:ghost"}) == 2);

    REQUIRE(run_until(c.io, [&] { return integer(c.io, admin, {"DBSIZE"}) == 0; }, 6000ms));
}

TEST_CASE("redis streams: direct messages to 1,000 made-up users leave no key without an expiry")
{
    const auto routing = GENERATE(direct_routing::per_user_channel, direct_routing::instance_channel);
    CAPTURE(int(routing));
    redis_server server;
    auto ho = with_ids();
    ho.direct = routing;
    basic_redis_cluster<broker::redis_streams, broker::redis_streams_options, locator::redis_presence> c(
        server, 1, ho, {}, [&](asio::io_context& io) { return locator::redis_presence(io.get_executor(), server.url()); });
    for (int u = 0; u < 1000; ++u)
        REQUIRE_FALSE(c[0].send_to_user("nobody" + std::to_string(u), "hello?"));
    // Per-user channel: each goes to its user's stream and, received by
    // nobody, to the inbox. Instance channel: the map has no host, and the
    // message goes to the inbox.
    const auto kept = [&] {
        return routing == direct_routing::per_user_channel ? c[0].broker().stats().inboxed
                                                            : c[0].stats().kept_offline;
    };
    REQUIRE(run_until(c.io, [&] { return kept() == 1000; }, 10000ms));
    c.run();
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    const auto keys = all_keys(c.io, admin);
    CHECK(keys.size() == (routing == direct_routing::per_user_channel ? 2000u : 1000u));
    std::size_t answered = 0, without = 0;
    for (const auto& key : keys)
        admin.execute({"TTL", key}, [&](std::error_code ec, const redis::reply& r) {
            CHECK_FALSE(ec);
            ++answered;
            without += r.integer < 0; // -1: no expiry
        });
    REQUIRE(run_until(c.io, [&] { return answered == keys.size(); }));
    CHECK(without == 0);
}

TEST_CASE("redis streams: a client that resumes a channel idle for longer than idle_expiry is told of the gap")
{
    redis_server server;
    broker::redis_streams_options bo;
    bo.idle_expiry = std::chrono::seconds(1);
    streams_cluster c(server, 1, with_ids(), bo);
    auto [a, a_id] = c.connect(0, "alice");
    c.settle();
    REQUIRE_FALSE(c[0].broadcast("m1"));
    c.run();
    REQUIRE(a->texts().size() == 1);
    c[0].close(a_id);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    REQUIRE(run_until(c.io, [&] { return integer(c.io, admin, {"EXISTS", "stream:chat:global"}) == 0; }, 5000ms));
    REQUIRE_FALSE(c[0].broadcast("m2")); // a new stream
    c.run();

    std::optional<recovery_result> result;
    auto [b, b_id] = c.resume(0, "alice", id_of(a->texts()[0]), result);
    REQUIRE(run_until(c.io, [&] { return result.has_value(); }));
    CHECK_FALSE(result->recovered);
    CHECK(result->replayed == 1);
    CHECK(payloads(b) == strings{"m2"});
}

TEST_CASE("redis subscriber: the ready handler runs on every connect, and a ping from it follows the resubscription")
{
    redis_server server;
    asio::io_context io;
    redis::connection_options o;
    o.client_name = "s1";
    redis::subscriber sub(io.get_executor(), redis::parse_url(server.url()), o);
    redis::connection admin(io.get_executor(), redis::parse_url(server.url()));
    int ready = 0, confirmed = 0;
    sub.subscribe("c");
    sub.set_ready_handler([&] {
        ++ready;
        sub.ping([&](std::error_code ec) {
            CHECK_FALSE(ec);
            ++confirmed;
        });
    });
    REQUIRE(run_until(io, [&] { return confirmed == 1; }));
    auto numsub = [&] {
        auto [ec, r] = call(io, admin, {"PUBSUB", "NUMSUB", "c"});
        REQUIRE_FALSE(ec);
        return r.elements.at(1).integer;
    };
    CHECK(numsub() == 1);
    CHECK(kill_clients(io, admin, "s1") == 1);
    REQUIRE(run_until(io, [&] { return confirmed == 2; }));
    CHECK(ready == 2);
    CHECK(numsub() == 1);
}

TEST_CASE("redis streams: with a known key, a direct message to a user who never connected writes nothing")
{
    redis_server server;
    broker::redis_streams_options bo;
    bo.inbox.known_key = "known:{user}";
    streams_cluster c(server, 1, with_ids(), bo);
    redis::connection admin(c.io.get_executor(), redis::parse_url(server.url()));
    c.settle();
    const auto before = all_keys(c.io, admin);
    for (int i = 0; i < 100; ++i)
        REQUIRE_FALSE(c[0].send_to_user("ghost" + std::to_string(i), "dm"));
    bool stored = false;
    c[0].broker().store_offline("yan", "kept", [&](std::error_code ec) {
        CHECK_FALSE(ec);
        stored = true;
    });
    c.run();
    REQUIRE(stored);
    CHECK(all_keys(c.io, admin) == before); // no stream, no inbox
    CHECK(c[0].broker().stats().unknown == 101);
    CHECK(c[0].broker().stats().inboxed == 0);

    // Once known, with the inbox's expiry, a user's messages are kept as before.
    c[0].broker().mark_known("zoe");
    REQUIRE_FALSE(c[0].send_to_user("zoe", "later"));
    c.run();
    CHECK(integer(c.io, admin, {"XLEN", "inbox:zoe"}) == 1);
    CHECK(integer(c.io, admin, {"XLEN", "stream:notif:user:zoe"}) == 1);
    CHECK(integer(c.io, admin, {"TTL", "known:zoe"}) > 7 * 24 * 3600 - 60);
    CHECK(c[0].broker().stats().inboxed == 1);
    auto [z, z_id] = c.connect(0, "zoe");
    c.run();
    REQUIRE(run_until(c.io, [&, z = z] { return z->texts().size() == 1; }));
    CHECK(payload_of(z->texts()[0]) == "later");
}
