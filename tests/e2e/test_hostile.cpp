// End to end: hostile clients against the reference server's limits. Each
// case has an attacker pass one limit: it gets the limit's error or close
// code, observers on the same instance and on another one (through Redis)
// still get a broadcast sent after the attack, and the attack leaves Redis's
// keys and channels and the instance's memory about as they were.
#include "instance.hpp"

#include <backplane/detail/ws_frame.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace backplane::test;
using namespace std::chrono_literals;

namespace {

// The observers get a broadcast sent after the attack, by a client that did
// nothing wrong (a new one, unless `sender` is given), and nothing of the
// attack before it.
void observers_served(instance& at, const std::vector<ws_client*>& observers, const std::string& text,
                      ws_client* sender = nullptr)
{
    std::unique_ptr<ws_client> bystander;
    if (!sender)
        sender = (bystander = at.connect("bystander")).get();
    sender->send_text(R"({"op":"send","text":")" + text + R"("})");
    for (auto* o : observers)
        CHECK(texts_until(*o, text).empty());
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BACKPLANE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(BACKPLANE_TEST_ASAN)
constexpr bool built_with_asan = true;
#else
constexpr bool built_with_asan = false;
#endif

// The resident set of process `pid`, in KiB.
long rss_kib(pid_t pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    long value = 0;
    while (status >> key && key != "VmRSS:")
        status.ignore(1 << 16, '\n');
    status >> value;
    return value;
}

// What an attack may leave behind: a few keys and channels in Redis, a few
// MiB in the attacked instance (not measured under ASan, whose shadow memory
// and quarantine make RSS meaningless).
class footprint {
public:
    explicit footprint(cluster& c) : at_(c.a), cli_(&c.cli), keys_(keys(c.cli)), channels_(channels(c.cli)),
                                     rss_(rss_kib(c.a.proc().pid())) {}
    explicit footprint(instance& at) : at_(at), rss_(rss_kib(at.proc().pid())) {}

    void check_bounded() const
    {
        if (cli_) {
            CHECK(keys(*cli_) <= keys_ + 8);
            CHECK(channels(*cli_) <= channels_ + 8);
        }
        if (!built_with_asan)
            CHECK(rss_kib(at_.proc().pid()) <= rss_ + 32 * 1024);
    }

private:
    static long long keys(redis_cli& cli) { return cli.integer({"DBSIZE"}); }
    static long long channels(redis_cli& cli)
    {
        return cli.integer({"EVAL", "return #redis.call('PUBSUB', 'CHANNELS')", "0"});
    }

    instance& at_;
    redis_cli* cli_ = nullptr;
    long long keys_ = 0, channels_ = 0;
    long rss_;
};

} // namespace

TEST_CASE("hostile: joins past --max-rooms are refused with too_many_rooms and subscribe nothing")
{
    cluster c({"--max-rooms", "5"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    for (int i = 1; i <= 5; ++i) {
        attacker->send_text(R"({"op":"join","room":"r)" + std::to_string(i) + R"("})");
        CHECK(field(parse(attacker->read_text()), "type") == "joined");
    }
    for (int i = 6; i <= 20; ++i) {
        attacker->send_text(R"({"op":"join","room":"r)" + std::to_string(i) + R"("})");
        auto m = parse(attacker->read_text());
        CHECK(field(m, "type") == "error");
        CHECK(field(m, "code") == "too_many_rooms");
    }
    CHECK(c.a.metric("backplane_too_many_rooms_total") == 15);
    c.await_subscribers("chat:room:r5", 1);
    CHECK(c.cli.subscribers("chat:room:r6") == 0);

    // Still open: a room it holds, and leaving one makes room for another.
    attacker->send_text(R"({"op":"leave","room":"r1"})");
    CHECK(field(parse(attacker->read_text()), "type") == "left");
    attacker->send_text(R"({"op":"join","room":"r6"})");
    CHECK(field(parse(attacker->read_text()), "type") == "joined");
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the rooms");
}

namespace {

// Reads `n` answers: how many of each type, an error counted by its code.
std::map<std::string, int> answers(ws_client& c, int n)
{
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) {
        const auto text = c.read_text();
        if (text && text->rfind(R"({"type":"online",)", 0) == 0) { // nested: not for the flat reader
            ++seen["online"];
            continue;
        }
        auto m = parse(text);
        ++seen[field(m, "type") == "error" ? field(m, "code") : field(m, "type")];
    }
    return seen;
}

} // namespace

TEST_CASE("hostile: requests past --max-rate are refused with rate_limited and publish nothing")
{
    // One request a second, five at once: a flood of ten gets five through,
    // unless the machine takes a second over it.
    cluster c({"--max-rate", "1", "--max-burst", "5"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    for (int i = 0; i < 10; ++i)
        attacker->send_text(R"({"op":"send","text":"flood )" + std::to_string(i) + R"("})");
    auto seen = answers(*attacker, 10);
    CHECK(seen["message"] >= 5);
    CHECK(seen["message"] <= 6);
    CHECK(seen["rate_limited"] == 10 - seen["message"]);
    CHECK(c.a.metric("backplane_rate_limited_total") == seen["rate_limited"]);
    // The observers got what passed, and nothing else.
    CHECK(texts_until(*near, "flood 4").size() == 4);
    CHECK(texts_until(*far, "flood 4").size() == 4);
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the flood");
    // Still open: a second on, it is served again.
    std::this_thread::sleep_for(1100ms);
    attacker->send_text(R"({"op":"join","room":"calm"})");
    bool joined = false;
    for (int i = 0; i < 20 && !joined; ++i) // after the flood's own copies and the marker
        joined = field(parse(attacker->read_text()), "type") == "joined";
    CHECK(joined);
}

TEST_CASE("hostile: broadcasts past --max-broadcast-rate are refused, other requests are not")
{
    cluster c({"--max-broadcast-rate", "0.1", "--max-broadcast-burst", "2"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    for (int i = 0; i < 5; ++i)
        attacker->send_text(R"({"op":"send","text":"all )" + std::to_string(i) + R"("})");
    auto seen = answers(*attacker, 5);
    CHECK(seen["message"] == 2);
    CHECK(seen["rate_limited"] == 3);
    attacker->send_text(R"({"op":"join","room":"r"})");
    CHECK(field(parse(attacker->read_text()), "type") == "joined");
    CHECK(texts_until(*near, "all 1") == std::vector<std::string>{"all 0"});
    CHECK(texts_until(*far, "all 1") == std::vector<std::string>{"all 0"});
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the broadcasts");
}

TEST_CASE("hostile: bytes past --max-bytes-rate are refused with rate_limited")
{
    cluster c({"--max-bytes-rate", "1000", "--max-bytes-burst", "65536"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    // 30 KB each: two fit the burst (answered too_long: the bytes count,
    // read or not), the third does not.
    const std::string big = R"({"op":"send","text":")" + std::string(30000, 'x') + R"("})";
    for (int i = 0; i < 3; ++i)
        attacker->send_text(big);
    auto seen = answers(*attacker, 3);
    CHECK(seen["too_long"] == 2);
    CHECK(seen["rate_limited"] == 1);
    attacker->send_text(R"({"op":"join","room":"r"})");
    CHECK(field(parse(attacker->read_text()), "type") == "joined");
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the bytes");
}

TEST_CASE("hostile: a client that floods on past its rate is closed with 1008 rate limit")
{
    // Two at once, one a second: 20 refusals and it is closed.
    cluster c({"--max-rate", "1", "--max-burst", "2"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    try {
        for (int i = 0; i < 200; ++i)
            attacker->send_text(R"({"op":"join","room":"r)" + std::to_string(i) + R"("})");
    } catch (const std::runtime_error&) {
        // The server may have closed already.
    }
    int refused = 0;
    std::optional<ws_frame> f;
    while ((f = attacker->read()) && f->opcode == 1)
        refused += field(parse(f->payload), "code") == "rate_limited";
    REQUIRE(f);
    CHECK(f->opcode == 8);
    CHECK(f->close_code() == 1008);
    CHECK(f->close_reason() == "rate limit");
    CHECK(refused >= 19);
    CHECK(refused <= 22);
    CHECK(wait_until([&] { return c.a.metric("backplane_rate_limit_closes_total") == 1; }));
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the close");
}

TEST_CASE("hostile: where and online past --max-in-flight are answered busy, and a close before the answers is harmless")
{
    cluster c({"--max-in-flight", "4", "--online", "on"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    // Redis stops answering: four wait, the rest are refused at once.
    c.redis.suspend();
    for (int i = 0; i < 10; ++i)
        attacker->send_text(i % 2 ? R"({"op":"online"})" : R"({"op":"where","user":"bob"})");
    auto seen = answers(*attacker, 6);
    CHECK(seen["busy"] == 6);
    c.redis.resume();
    seen = answers(*attacker, 4);
    CHECK(seen["presence"] + seen["online"] + seen["unavailable"] == 4);
    CHECK(c.a.metric("backplane_busy_total") == 6);
    // Answered: the slots are free again.
    attacker->send_text(R"({"op":"where","user":"bob"})");
    CHECK(field(parse(attacker->read_text()), "type") == "presence");

    // Gone while its requests wait: the answers find nobody, and all is well.
    c.redis.suspend();
    for (int i = 0; i < 4; ++i)
        attacker->send_text(R"({"op":"where","user":"bob"})");
    REQUIRE(wait_until([&] { return c.a.metric("backplane_messages_in_total") >= 15; }));
    attacker.reset();
    c.redis.resume();
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the waits");
}

TEST_CASE("hostile: joins with last_id past --max-in-flight are answered busy and join nothing")
{
    cluster c({"--broker", "redis-streams", "--max-in-flight", "2"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    c.redis.suspend();
    for (int i = 0; i < 5; ++i)
        attacker->send_text(R"({"op":"join","room":"r)" + std::to_string(i) + R"(","last_id":"0-0"})");
    auto seen = answers(*attacker, 5);
    CHECK(seen["joined"] == 2);
    CHECK(seen["busy"] == 3);
    c.redis.resume();
    CHECK(answers(*attacker, 2)["recovery"] == 2);
    CHECK(c.a.metric("backplane_busy_total") == 3);
    // Caught up: the slots are free again.
    attacker->send_text(R"({"op":"join","room":"r4","last_id":"0-0"})");
    CHECK(answers(*attacker, 2) == std::map<std::string, int>{{"joined", 1}, {"recovery", 1}});
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the joins");
}

TEST_CASE("hostile: connections past --max-connections-per-user are refused with 429")
{
    cluster c({"--max-connections-per-user", "2"});
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    auto one = c.a.connect("mallory");
    auto two = c.a.connect("mallory");
    for (int i = 0; i < 3; ++i) {
        const auto answer = round_trip(c.a.port(), handshake_request("/ws?user=mallory"));
        CHECK(status_line(answer) == "HTTP/1.1 429 Too Many Requests");
        CHECK(body_of(answer) == "too many connections for this user (at most 2)\n");
    }
    CHECK(c.a.metric("backplane_connections_per_user_refused_total") == 3);
    // The limit is per instance, and the user's connections work.
    auto elsewhere = c.b.connect("mallory");
    // One gone: room for one more.
    one.reset();
    REQUIRE(wait_until([&] { return c.a.metric("websocket_connections_total") == 2; }));
    auto again = c.a.connect("mallory");
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get(), two.get(), elsewhere.get(), again.get()}, "after the users");
}

TEST_CASE("hostile: handshakes of one user written at once are held to the per-user limit too")
{
    instance a("a", "redis://127.0.0.1:1", {"--broker", "memory", "--max-connections-per-user", "2"});
    auto near = a.connect("alice");
    const footprint baseline(a);
    std::vector<int> fds;
    const auto status = handshakes_together(a.port(), std::vector<std::string>(5, "/ws?user=mallory"), fds);
    int upgraded = 0, refused = 0;
    for (const auto& line : status) {
        upgraded += line == "HTTP/1.1 101 Switching Protocols";
        refused += line == "HTTP/1.1 429 Too Many Requests";
    }
    CHECK(upgraded + refused == 5);
    // Refused at the handshake, or, where the instance validated several
    // before any was open, closed (1008) as they open: two stay either way.
    CHECK(wait_until([&] { return a.metric("websocket_connections_total") == 3; }));
    CHECK(a.metric("backplane_connections_per_user_refused_total") == 3);
    for (const int fd : fds)
        ::close(fd);
    baseline.check_bounded();
    observers_served(a, {near.get()}, "after the burst");
}

TEST_CASE("hostile: connections past --max-connections-per-address are refused with 429")
{
    // Every client here is 127.0.0.1: the observer first, then the attacker's.
    cluster c({"--max-connections-per-address", "3"});
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    auto one = c.a.connect("mallory");
    auto two = c.a.connect("eve");
    for (const char* user : {"mallory", "trent", "oscar"}) {
        const auto answer = round_trip(c.a.port(), handshake_request(std::string("/ws?user=") + user));
        CHECK(status_line(answer) == "HTTP/1.1 429 Too Many Requests");
        CHECK(body_of(answer) == "too many connections from this address (at most 3)\n");
    }
    CHECK(c.a.metric("backplane_connections_per_address_refused_total") == 3);
    two.reset();
    REQUIRE(wait_until([&] { return c.a.metric("websocket_connections_total") == 2; }));
    auto again = c.a.connect("trent");
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get(), again.get()}, "after the addresses", one.get());
}

TEST_CASE("hostile: a client that connects and never completes its handshake is dropped after --handshake-timeout")
{
    instance a("a", "redis://127.0.0.1:1", {"--broker", "memory", "--handshake-timeout", "300"});
    auto near = a.connect("alice");
    const footprint baseline(a);
    std::vector<int> idle;
    for (int i = 0; i < 20; ++i) {
        idle.push_back(connect_loopback(a.port()));
        REQUIRE(idle.back() >= 0);
    }
    const std::string half = "GET /ws?user=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"; // and never the rest
    REQUIRE(::send(idle.front(), half.data(), half.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(half.size()));
    const auto start = std::chrono::steady_clock::now();
    for (const int fd : idle) {
        const timeval wait{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
        char buf[256];
        while (::recv(fd, buf, sizeof buf, 0) > 0) {
        } // until the instance closes it (EOF), or 5 s pass (an error)
    }
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < 3s); // each dropped after 0.3 s, not held
    for (const int fd : idle)
        ::close(fd);
    baseline.check_bounded();
    observers_served(a, {near.get()}, "after the idle sockets");
}

TEST_CASE("hostile: sockets past --max-handshakes wait in the backlog and hold no more descriptors than the limit")
{
    cluster c({"--max-handshakes", "8", "--handshake-timeout", "1000"});
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    const std::string fds = "/proc/" + std::to_string(c.a.proc().pid()) + "/fd";
    auto descriptors = [&fds] {
        std::size_t n = 0;
        for (auto it = std::filesystem::directory_iterator(fds); it != std::filesystem::directory_iterator(); ++it)
            ++n;
        return n;
    };
    const auto before = descriptors();
    std::vector<int> silent;
    for (int i = 0; i < 200; ++i) {
        silent.push_back(connect_loopback(c.a.port())); // the kernel completes them: the backlog
        REQUIRE(silent.back() >= 0);
    }
    std::this_thread::sleep_for(500ms);
    // Meanwhile /metrics on this port waits in the backlog too (--metrics-address
    // serves it apart): what the instance holds is read from /proc.
    CHECK(descriptors() <= before + 8);
    observers_served(c.a, {near.get(), far.get()}, "while 200 sockets wait", near.get());
    for (const int fd : silent)
        ::close(fd);
    // Their places come back: the only handshake left is the metrics request's own.
    REQUIRE(wait_until([&] { return c.a.metric("backplane_handshakes_in_progress") == 1; }, 10s));
    CHECK(c.a.metric("backplane_accept_pauses_total") >= 1);
    auto late = c.a.connect("carol");
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get(), late.get()}, "after the silent sockets");
}

TEST_CASE("hostile: a client that pings and never reads is closed as a slow consumer, its pongs bounded by --max-outbound")
{
    cluster c({"--max-outbound", "65536"});
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    backplane::test::ws_client attacker(c.a.port(), "/ws?user=mallory", 4096);
    std::string burst;
    for (int i = 0; i < 64; ++i)
        burst += backplane::detail::ws::encode_frame(9, std::string(125, 'p'),
                                                     backplane::detail::ws::masking_key{1, 2, 3, 4});
    // Pongs of 125 bytes fill the socket, then the instance's queue.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (c.a.metric("backplane_slow_consumer_closes_total") == 0 && std::chrono::steady_clock::now() < deadline) {
        if (::send(attacker.fd(), burst.data(), burst.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
            break; // closed
        std::this_thread::sleep_for(1ms);
    }
    CHECK(c.a.metric("backplane_slow_consumer_closes_total") == 1);
    std::optional<ws_frame> f = attacker.read();
    while (f && f->opcode != 8)
        f = attacker.read();
    REQUIRE(f);
    CHECK(f->close_code() == 1008);
    CHECK(f->close_reason() == "slow consumer");
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the pings");
}

TEST_CASE("hostile: direct messages to 1,000 made-up names write no key in Redis (--keep-for known)")
{
    // What --auth jwt chooses by default; here with --auth none, so that the
    // test names its users itself.
    for (const char* broker : {"redis-streams", "redis-pubsub"}) {
        INFO(broker);
        std::vector<std::string> flags{"--broker", broker, "--keep-for", "known"};
        if (std::string(broker) == "redis-pubsub")
            flags.insert(flags.end(), {"--direct", "instance"});
        cluster c(flags);
        {
            auto zoe = c.b.connect("zoe"); // known from now on
        }
        REQUIRE(wait_until([&] { return c.cli.text({"HGET", "user:host", "zoe"}).empty(); }));
        c.await_subscribers("notif:user:zoe", 0);
        auto attacker = c.a.connect("mallory");
        auto far = c.b.connect("bob");
        const auto before = c.cli.integer({"DBSIZE"});
        for (int i = 0; i < 1000; ++i)
            attacker->send_text(R"({"op":"dm","to":"ghost)" + std::to_string(i) + R"(","text":"boo"})");
        attacker->send_text(R"({"op":"dm","to":"zoe","text":"later"})");
        REQUIRE(wait_until([&] { return c.cli.integer({"EXISTS", "inbox:zoe"}) == 1; }));
        CHECK(wait_until([&] { return c.a.metric("backplane_dm_unknown_user_total") == 1000; }));
        // zoe's inbox, and with streams her channel's stream: nothing for the ghosts.
        CHECK(c.cli.integer({"DBSIZE"}) <= before + 2);
        CHECK(c.cli.integer({"EXISTS", "inbox:ghost7"}) == 0);
        auto zoe = c.b.connect("zoe");
        CHECK(field(parse(zoe->read_text()), "text") == "later");
        observers_served(c.a, {attacker.get(), far.get()}, "after the ghosts");
    }
}

TEST_CASE("hostile: the review's examples, with the default limits: a name that is not UTF-8, 10,000 pipelined joins")
{
    cluster c({"--max-rate", "20", "--max-broadcast-rate", "2", "--max-bytes-rate", "65536"}); // the defaults
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");

    // ?user=%C3%28: its first broadcast would carry invalid UTF-8 to every client.
    CHECK(status_line(round_trip(c.a.port(), handshake_request("/ws?user=%C3%28"))) == "HTTP/1.1 400 Bad Request");

    // One connection pipelines 10,000 joins (it once made 66,557 Redis subscriptions in 10 s).
    const long rss_before = rss_kib(c.a.proc().pid());
    auto attacker = c.a.connect("mallory");
    std::string joins;
    for (int i = 0; i < 10000; ++i) {
        const std::string text = R"({"op":"join","room":"r)" + std::to_string(i) + R"("})";
        joins += backplane::detail::ws::encode_frame(1, text, backplane::detail::ws::masking_key{9, 8, 7, 6});
    }
    ::send(attacker->fd(), joins.data(), joins.size(), MSG_NOSIGNAL); // the instance may close it midway
    REQUIRE(wait_until([&] { return c.a.metric("backplane_messages_in_total") >= 10000 ||
                                    c.a.metric("backplane_rate_limit_closes_total") == 1; }, 20s));
    CHECK(c.a.metric("backplane_rate_limit_closes_total") == 1); // far past --max-rate: closed
    const auto channels = c.cli.integer({"EVAL", "return #redis.call('PUBSUB', 'CHANNELS', 'chat:room:*')", "0"});
    CHECK(channels <= 40); // at most a burst of joins was served
    CHECK(c.cli.integer({"DBSIZE"}) <= 5); // presence's map and keys, no more
    observers_served(c.a, {near.get(), far.get()}, "after the joins");
    // The 10,000 joins' bytes were read, not kept (under ASan, its quarantine keeps freed memory a while).
    CHECK(rss_kib(c.a.proc().pid()) - rss_before < (built_with_asan ? 64 : 16) * 1024);
}

TEST_CASE("hostile: the connections of one user share --max-user-broadcast-rate, each within its own")
{
    cluster c({"--max-broadcast-rate", "0.1", "--max-broadcast-burst", "2", "--max-user-broadcast-rate", "0.1",
               "--max-user-broadcast-burst", "3"});
    auto first = c.a.connect("mallory");
    auto second = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
    const footprint baseline(c);
    // Two each: within each connection's burst, past the user's.
    for (auto* m : {first.get(), second.get()})
        for (int i = 0; i < 2; ++i)
            m->send_text(R"({"op":"send","text":"from mallory"})");
    // Each connection gets every broadcast let through (both are mallory's,
    // in any order with the replies) and its own refusals: read until quiet.
    std::map<std::string, int> seen;
    for (auto* m : {first.get(), second.get()})
        while (auto text = m->read_text(500ms)) {
            auto frame = parse(text);
            ++seen[field(frame, "type") == "error" ? field(frame, "code") : field(frame, "type")];
        }
    CHECK(seen["rate_limited"] == 1);
    CHECK(seen["message"] == 6); // three broadcasts, to both connections
    CHECK(c.a.metric("backplane_rate_limited_total") == 1);
    for (auto* o : {near.get(), far.get()})
        for (int i = 0; i < 3; ++i) // the three let through, and (below) not the fourth
            CHECK(texts_until(*o, "from mallory").empty());
    baseline.check_bounded();
    observers_served(c.a, {near.get(), far.get()}, "after the user's broadcasts");
}
