// The protocol state machines, stepped one call at a time, without a socket.
#include <backplane/redis/detail/command_fsm.hpp>
#include <backplane/redis/detail/subscriber_fsm.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace backplane;
using namespace std::string_literals;
using backplane::redis::config;
using backplane::redis::reply;
using backplane::redis::reply_handler;
namespace rd = backplane::redis::detail;
using strings = std::vector<std::string>;

namespace {

// Feeds RESP bytes, as the server would send them, to `fsm`.
template <class Fsm>
std::error_code feed(Fsm& fsm, const std::string& bytes)
{
    rd::reader reader;
    REQUIRE_FALSE(reader.feed(bytes.data(), bytes.size()));
    for (;;) {
        rd::reply_holder r;
        REQUIRE_FALSE(reader.next(r.p));
        if (!r.p)
            return {};
        if (auto ec = fsm.on_reply(*r.p))
            return ec;
    }
}

template <class Fsm>
std::string output(Fsm& fsm)
{
    std::string out;
    fsm.take_output(out);
    return out;
}

} // namespace

TEST_CASE("command fsm: queued commands wait for the handshake, then go out in one write, in order")
{
    rd::command_fsm fsm(100);
    strings log;
    reply_handler h = [&](std::error_code ec, const reply& r) { log.push_back(ec ? "err:" + r.text : r.text); };
    backplane::redis::done_handler none;
    for (const char* key : {"a", "b"}) {
        auto copy = h;
        REQUIRE_FALSE(fsm.push(std::initializer_list<std::string_view>{"GET", key}, copy, none));
    }
    CHECK_FALSE(fsm.has_output()); // not connected
    config cfg;
    cfg.password = "pw";
    cfg.database = 2;
    fsm.connected(cfg, "me");
    CHECK(output(fsm)
          == "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
             "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$2\r\nme\r\n*1\r\n$4\r\nPING\r\n");
    CHECK_FALSE(fsm.has_output()); // the queued commands wait for the handshake's end
    CHECK_FALSE(feed(fsm, "+OK\r\n+OK\r\n+OK\r\n+PONG\r\n"));
    CHECK(fsm.state() == rd::phase::ready);
    CHECK(output(fsm) == "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
    CHECK(fsm.in_flight() == 2);
    CHECK_FALSE(feed(fsm, "$1\r\n1\r\n-ERR nope\r\n"));
    CHECK(log == strings{"1", "err:ERR nope"});
    CHECK(fsm.succeeded() == 1);
    CHECK(fsm.failed() == 1);
    CHECK(feed(fsm, "+OK\r\n") == error::protocol_error); // nobody waits for it
}

TEST_CASE("command fsm: a failed handshake is an error, and the queue is bounded")
{
    rd::command_fsm fsm(2);
    reply_handler h;
    backplane::redis::done_handler none;
    CHECK_FALSE(fsm.push(std::initializer_list<std::string_view>{"PING"}, h, none));
    CHECK_FALSE(fsm.push(std::initializer_list<std::string_view>{"PING"}, h, none));
    int called = 0;
    backplane::redis::done_handler third = [&](std::error_code) { ++called; };
    CHECK(fsm.push(std::initializer_list<std::string_view>{"PING"}, h, third) == error::queue_full);
    CHECK(third); // left to the caller
    CHECK(fsm.pending() == 2);

    config cfg;
    cfg.password = "bad";
    fsm.connected(cfg, "");
    output(fsm);
    CHECK(feed(fsm, "-WRONGPASS invalid username-password pair\r\n") == error::server_error);
    CHECK(fsm.last_error().rfind("WRONGPASS", 0) == 0);
    CHECK(fsm.connection_lost().empty()); // only the handshake was in flight
    CHECK(fsm.pending() == 2);            // the queue survives
}

TEST_CASE("command fsm: the bytes not yet written are bounded too")
{
    rd::command_fsm fsm(1000, 1024);
    reply_handler h;
    backplane::redis::done_handler none;
    const std::string big(400, 'x');
    CHECK_FALSE(fsm.push(std::initializer_list<std::string_view>{"PUBLISH", "c", big}, h, none));
    CHECK_FALSE(fsm.push(std::initializer_list<std::string_view>{"PUBLISH", "c", big}, h, none));
    CHECK(fsm.push(std::initializer_list<std::string_view>{"PUBLISH", "c", big}, h, none) == error::queue_full);
    CHECK(fsm.pending() == 2);
    CHECK_FALSE(fsm.push(std::initializer_list<std::string_view>{"PING"}, h, none)); // a small one still fits
    // Once written, the bytes are no longer held: room again.
    fsm.connected({}, "");
    output(fsm);
    CHECK(feed(fsm, "+PONG\r\n") == std::error_code{});
    const std::string written = output(fsm);
    CHECK(written.size() > 800);
    CHECK_FALSE(fsm.push(std::initializer_list<std::string_view>{"PUBLISH", "c", big}, h, none));
}

TEST_CASE("command fsm: a lost connection fails what was in flight and keeps what was queued")
{
    rd::command_fsm fsm(100);
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    int failed = 0;
    backplane::redis::done_handler done = [&](std::error_code) { ++failed; };
    reply_handler none;
    auto d1 = done;
    REQUIRE_FALSE(fsm.push(std::initializer_list<std::string_view>{"PUBLISH", "c", "1"}, none, d1));
    output(fsm);
    auto d2 = done;
    REQUIRE_FALSE(fsm.push(std::initializer_list<std::string_view>{"PUBLISH", "c", "2"}, none, d2));
    auto lost = fsm.connection_lost();
    REQUIRE(lost.size() == 1);
    CHECK(fsm.pending() == 1);
    fsm.connected({}, "");
    CHECK(output(fsm) == "*1\r\n$4\r\nPING\r\n");
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    CHECK(output(fsm) == "*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\n2\r\n");
}

TEST_CASE("subscriber fsm: one batch per turn, changes that cancel out cost nothing")
{
    rd::subscriber_fsm fsm;
    fsm.subscribe("early"); // before the connection: remembered
    fsm.connected({}, "");
    CHECK(output(fsm) == "*1\r\n$4\r\nPING\r\n");
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    CHECK(output(fsm) == "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nearly\r\n");
    fsm.subscribe("x");
    fsm.unsubscribe("x"); // in the same turn: nothing
    fsm.unsubscribe("early");
    fsm.subscribe("early"); // still subscribed on the server: nothing
    CHECK_FALSE(fsm.has_output());
    fsm.subscribe("a");
    fsm.subscribe("a");
    CHECK(output(fsm) == "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n");
    CHECK(fsm.channel_count() == 2);

    strings got;
    fsm.set_message_handler([&](std::string_view ch, std::string_view data) {
        got.push_back(std::string(ch) + "=" + std::string(data));
    });
    CHECK_FALSE(feed(fsm, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"
                          "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"));
    CHECK(got == strings{"a=hi"});
    CHECK(fsm.server_channels() == 2);

    // A reconnect subscribes every channel again, and counts them.
    CHECK(fsm.connection_lost().empty());
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    const auto again = output(fsm);
    CHECK(again.rfind("*3\r\n$9\r\nSUBSCRIBE\r\n", 0) == 0);
    CHECK(fsm.resubscribed() == 2);
}

TEST_CASE("subscriber fsm: pings are answered in order, after the changes of their turn")
{
    rd::subscriber_fsm fsm;
    backplane::redis::done_handler early = [](std::error_code) {};
    CHECK(fsm.ping(early) == 0); // not ready
    CHECK(early);                // left to the caller
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    strings log;
    backplane::redis::done_handler p1 = [&](std::error_code ec) { log.push_back(ec ? "lost" : "1"); };
    backplane::redis::done_handler p2 = [&](std::error_code ec) { log.push_back(ec ? "lost" : "2"); };
    fsm.ping(p1);
    fsm.subscribe("c");
    CHECK(output(fsm) == "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n*1\r\n$4\r\nPING\r\n");
    fsm.ping(p2);
    output(fsm);
    CHECK_FALSE(feed(fsm, "*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
    CHECK(log == strings{"1"});
    auto lost = fsm.connection_lost();
    REQUIRE(lost.size() == 1);
    lost[0](error::connection_lost);
    CHECK(log == strings{"1", "lost"});
    CHECK(fsm.probes_answered() == fsm.probes_sent());
}

TEST_CASE("subscriber fsm, sharded: one SSUBSCRIBE per slot, and a connection without channels answers +PONG")
{
    rd::subscriber_fsm fsm(true);
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    // "a" and "{a}x" share slot 15495; "b" is slot 3300.
    fsm.subscribe("a");
    fsm.subscribe("{a}x");
    fsm.subscribe("b");
    const auto out = output(fsm);
    CHECK(out.find("*2\r\n$10\r\nSSUBSCRIBE\r\n$1\r\nb\r\n") != std::string::npos);
    CHECK(((out.find("*3\r\n$10\r\nSSUBSCRIBE\r\n$1\r\na\r\n$4\r\n{a}x\r\n") != std::string::npos)
           || (out.find("*3\r\n$10\r\nSSUBSCRIBE\r\n$4\r\n{a}x\r\n$1\r\na\r\n") != std::string::npos)));
    std::size_t commands = 0;
    for (auto at = out.find("SSUBSCRIBE"); at != std::string::npos; at = out.find("SSUBSCRIBE", at + 1))
        ++commands;
    CHECK(commands == 2);

    backplane::redis::done_handler pinged = [](std::error_code) {};
    REQUIRE(fsm.ping(pinged) != 0);
    CHECK(output(fsm) == "*1\r\n$4\r\nPING\r\n");
    CHECK_FALSE(feed(fsm, "+PONG\r\n")); // a status reply, when the server holds no channel yet
    CHECK(fsm.probes_answered() == fsm.probes_sent());

    strings got;
    fsm.set_message_handler([&](std::string_view ch, std::string_view data) {
        got.push_back(std::string(ch) + "=" + std::string(data));
    });
    CHECK_FALSE(feed(fsm, "*3\r\n$8\r\nsmessage\r\n$1\r\nb\r\n$2\r\nhi\r\n"));
    CHECK(got == strings{"b=hi"});
}

TEST_CASE("subscriber fsm, sharded: a refused SSUBSCRIBE and a sunsubscribe nobody asked for drop their channels")
{
    rd::subscriber_fsm fsm(true);
    std::vector<std::pair<strings, std::string>> dropped;
    fsm.set_dropped_handler([&](strings&& channels, std::string_view why) {
        std::sort(channels.begin(), channels.end());
        dropped.emplace_back(std::move(channels), std::string(why));
    });
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    fsm.subscribe("b"); // slot 3300
    output(fsm);
    fsm.subscribe("a"); // slot 15495, in a later command
    output(fsm);
    // "b" confirmed; "a" refused: this node does not serve its slot.
    CHECK_FALSE(feed(fsm, "*3\r\n$10\r\nssubscribe\r\n$1\r\nb\r\n:1\r\n-MOVED 15495 127.0.0.1:7001\r\n"));
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].first == strings{"a"});
    CHECK(dropped[0].second == "MOVED 15495 127.0.0.1:7001");
    CHECK_FALSE(fsm.wants("a"));
    CHECK(fsm.wants("b"));

    // An unsubscribe asked for is answered, not dropped.
    fsm.subscribe("c");
    output(fsm);
    CHECK_FALSE(feed(fsm, "*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n:2\r\n"));
    fsm.unsubscribe("c");
    CHECK(output(fsm) == "*2\r\n$12\r\nSUNSUBSCRIBE\r\n$1\r\nc\r\n");
    CHECK_FALSE(feed(fsm, "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nc\r\n:1\r\n"));
    CHECK(dropped.size() == 1);

    // The node lost slot 3300 (a migration): it ends "b" by itself.
    CHECK_FALSE(feed(fsm, "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nb\r\n:0\r\n"));
    REQUIRE(dropped.size() == 2);
    CHECK(dropped[1].first == strings{"b"});
    CHECK(dropped[1].second.empty());
    CHECK(fsm.channel_count() == 0);

    // A reconnect subscribes nothing that was dropped.
    fsm.connection_lost();
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    CHECK_FALSE(fsm.has_output());
}

TEST_CASE("subscriber fsm, classic: an error reply is counted, and drops nothing")
{
    rd::subscriber_fsm fsm;
    int dropped = 0;
    fsm.set_dropped_handler([&](strings&&, std::string_view) { ++dropped; });
    fsm.connected({}, "");
    output(fsm);
    REQUIRE_FALSE(feed(fsm, "+PONG\r\n"));
    fsm.subscribe("a");
    output(fsm);
    CHECK_FALSE(feed(fsm, "-NOPERM this user has no permissions to access the 'a' channel\r\n"));
    CHECK(fsm.errors() == 1);
    CHECK(fsm.wants("a"));
    CHECK(dropped == 0);
}
