// The protocol state machines, stepped one call at a time, without a socket.
#include <backplane/redis/detail/command_fsm.hpp>
#include <backplane/redis/detail/subscriber_fsm.hpp>

#include <catch2/catch.hpp>

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
