// End to end: what the README promises of backplane-instance, one promise a
// test: flags, errors, close codes and reasons, HTTP answers, catch-up.
#include "instance.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

using namespace backplane::test;
using namespace std::chrono_literals;

namespace {

// The close frame a client reads next (skipping messages), or nothing.
std::optional<ws_frame> close_frame(ws_client& c)
{
    auto f = c.read();
    while (f && f->opcode != 8)
        f = c.read();
    return f;
}

// The error code of the reply to `request`.
std::string error_code(ws_client& c, const std::string& request)
{
    c.send_text(request);
    auto m = parse(c.read_text());
    CHECK(field(m, "type") == "error");
    return field(m, "code");
}

// Runs the instance with `args`; its exit status and what it printed.
std::pair<int, std::string> run_instance(std::vector<std::string> args)
{
    const std::string log = "instance-args-" + std::to_string(::getpid()) + ".log";
    args.insert(args.begin(), BACKPLANE_INSTANCE_PATH);
    process_options o;
    o.output_file = log;
    process p(std::move(args), o);
    REQUIRE(p.wait_for(5s));
    const int status = p.wait();
    std::ifstream in(log);
    std::string out{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::remove(log.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

} // namespace

TEST_CASE("the command line is checked: a value out of range or an unknown flag exits 2 and says why")
{
    {
        const auto [code, out] = run_instance({"--port", "70000"});
        CHECK(code == 2);
        CHECK(out.find("--port") != std::string::npos);
        CHECK(out.find("70000") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--broker", "kafka"});
        CHECK(code == 2);
        CHECK(out.find("--broker") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--ping-interval", "-5"});
        CHECK(code == 2);
        CHECK(out.find("--ping-interval") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--no-such-flag", "1"});
        CHECK(code == 2);
        CHECK(out.find("--no-such-flag") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--broker", "memory", "--direct", "instance"});
        CHECK(code == 2);
        CHECK(out.find("--direct instance needs --presence on and a Redis broker") != std::string::npos);
    }
    {
        // --auth jwt is the default: without a key nobody could connect.
        const auto [code, out] = run_instance({"--broker", "memory"});
        CHECK(code == 2);
        CHECK(out.find("--auth jwt (the default) needs --auth-key FILE") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--broker", "memory", "--auth-key", "/nonexistent/key"});
        CHECK(code == 2);
        CHECK(out.find("cannot read --auth-key /nonexistent/key") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--broker", "memory", "--auth-key", BACKPLANE_TEST_KEYS_DIR "/rs256.pub.pem"});
        CHECK(code == 2);
        CHECK(out.find("--auth-key holds a public key: say --auth-algorithm RS256 or ES256") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--broker", "memory", "--auth-algorithm", "ES256", "--auth-key",
                                               BACKPLANE_TEST_KEYS_DIR "/es256.pem"});
        CHECK(code == 2);
        CHECK(out.find("must be a PEM public key") != std::string::npos);
    }
    {
        const auto [code, out] = run_instance({"--help"});
        CHECK(code == 0);
        for (const char* flag : {"--port", "--broker", "--drain-grace", "--direct", "--max-outbound", "--history-expiry"})
            CHECK(out.find(flag) != std::string::npos);
    }
}

TEST_CASE("a drain answers /healthz with 503 draining and refuses handshakes with 503, then exits 0")
{
    const int sig = GENERATE(SIGTERM, SIGINT);
    INFO("signal " << sig);
    redis_server redis;
    instance a("a", redis.url());
    CHECK(status_line(http_get(a.port(), "/healthz")) == "HTTP/1.1 200 OK");
    CHECK(body_of(http_get(a.port(), "/healthz")) == "ok\n");
    // A client that never reads: its close handshake holds the drain open
    // for the close timeout (2 s), long enough to ask the instance.
    auto stuck = a.connect("stuck");
    REQUIRE(a.proc().signal(sig));
    std::string health;
    REQUIRE(wait_until([&] {
        health = http_get(a.port(), "/healthz");
        return status_line(health) != "HTTP/1.1 200 OK";
    }));
    CHECK(status_line(health) == "HTTP/1.1 503 Service Unavailable");
    CHECK(body_of(health) == "draining\n");
    try {
        ws_client late(a.port(), "/ws?user=late");
        FAIL("a handshake was accepted during the drain");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "ws_client: handshake refused: HTTP/1.1 503 Service Unavailable");
    }
    REQUIRE(a.proc().wait_for(10s));
    const int status = a.proc().wait();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    auto f = close_frame(*stuck);
    REQUIRE(f);
    CHECK(f->close_code() == 1001);
    CHECK(f->close_reason() == "going away");
}

TEST_CASE("a bad user id is answered 400 with a body that says why, and /ws without a user too")
{
    redis_server redis;
    instance a("a", redis.url());
    for (const char* path : {"/ws?user=bad:name", "/ws?user=", "/ws", "/ws?user=has%20space", "/ws?user=%zz"}) {
        INFO(path);
        const std::string response = round_trip(a.port(), handshake_request(path));
        CHECK(status_line(response) == "HTTP/1.1 400 Bad Request");
        CHECK(body_of(response) == "the query parameter user must be a valid user name\n");
    }
    CHECK(a.metric("backplane_connections_rejected_total") == 5);
}

TEST_CASE("close codes come with their reasons: 1009 for a message too big, 1007 for invalid UTF-8")
{
    redis_server redis;
    instance a("a", redis.url());
    SECTION("a message over 64 KiB")
    {
        auto alice = a.connect("alice");
        try {
            alice->send_text(std::string(65 * 1024, 'x'));
        } catch (const std::runtime_error&) {
            // The server may close before it has read the whole frame.
        }
        auto f = close_frame(*alice);
        REQUIRE(f);
        CHECK(f->close_code() == 1009);
        CHECK(f->close_reason() == "A message was too large"); // websocketpp's words
        CHECK(wait_until([&] { return a.metric("backplane_too_big_closes_total") == 1; }));
    }
    SECTION("a text frame that is not UTF-8")
    {
        auto alice = a.connect("alice");
        auto bob = a.connect("bob");
        alice->send_text("{\"op\":\"send\",\"text\":\"\xc3\x28\"}");
        auto f = close_frame(*alice);
        REQUIRE(f);
        CHECK(f->close_code() == 1007);
        CHECK(f->close_reason() == "Invalid UTF8 encoding"); // websocketpp's words
        // Nobody else noticed.
        bob->send_text(R"({"op":"send","text":"still here"})");
        CHECK(field(parse(bob->read_text()), "text") == "still here");
    }
}

TEST_CASE("where and online: unsupported without presence, unavailable while Redis is down")
{
    SECTION("--presence off")
    {
        redis_server redis;
        redis_cli cli(redis.port());
        instance a("a", redis.url(), {"--presence", "off"});
        auto alice = a.connect("alice");
        CHECK(error_code(*alice, R"({"op":"where","user":"alice"})") == "unsupported");
        CHECK(error_code(*alice, R"({"op":"online"})") == "unsupported");
        CHECK(cli.integer({"EXISTS", "user:host"}) == 0); // no map at all
    }
    SECTION("--broker memory")
    {
        instance a("a", "redis://127.0.0.1:1", {"--broker", "memory"});
        auto alice = a.connect("alice");
        CHECK(error_code(*alice, R"({"op":"where","user":"alice"})") == "unsupported");
        CHECK(error_code(*alice, R"({"op":"online"})") == "unsupported");
    }
    SECTION("Redis killed")
    {
        cluster c({"--online", "on"});
        auto alice = c.a.connect("alice");
        c.redis.kill();
        REQUIRE(wait_until([&] { return c.a.metric("backplane_redis_connected") == 0; }));
        CHECK(error_code(*alice, R"({"op":"where","user":"bob"})") == "unavailable");
        CHECK(error_code(*alice, R"({"op":"online"})") == "unavailable");
        // Back once Redis is (presence's own connection a moment after the broker's).
        c.redis.start();
        CHECK(wait_until([&] {
            alice->send_text(R"({"op":"where","user":"nobody"})");
            return field(parse(alice->read_text()), "type") == "presence";
        }, 10s));
    }
}

TEST_CASE("online pages through every user with a cursor")
{
    cluster c({"--online", "on"});
    std::vector<std::unique_ptr<ws_client>> clients;
    std::set<std::string> everyone;
    // More users than Redis keeps in a small hash (hash-max-listpack-entries,
    // 512 by default), returned whole by HSCAN: so that it pages.
    const int users = 600;
    for (int i = 0; i < users; ++i) {
        const std::string user = "user" + std::to_string(i);
        clients.push_back((i % 2 ? c.a : c.b).connect(user));
        everyone.insert(user);
    }
    REQUIRE(wait_until([&] { return c.cli.integer({"HLEN", "user:host"}) == users; }));
    std::set<std::string> listed;
    std::string cursor = "0";
    int pages = 0;
    do {
        clients.front()->send_text(R"({"op":"online","cursor":")" + cursor + "\"}");
        const auto page = clients.front()->read_text();
        REQUIRE(page);
        REQUIRE(page->rfind(R"({"type":"online","users":[)", 0) == 0);
        // Each user once, with its instance: {"user":"user7","instance":"a"}.
        for (std::size_t at = 0; (at = page->find(R"({"user":")", at)) != std::string::npos;) {
            at += 9;
            const auto end = page->find('"', at);
            const std::string user = page->substr(at, end - at);
            const std::string expect_instance = std::stoi(user.substr(4)) % 2 ? "a" : "b";
            CHECK(page->compare(end, 15 + expect_instance.size(), "\",\"instance\":\"" + expect_instance + "\"") == 0);
            listed.insert(user);
        }
        const auto cur = page->rfind(R"("cursor":")");
        REQUIRE(cur != std::string::npos);
        cursor = page->substr(cur + 10, page->find('"', cur + 10) - cur - 10);
        ++pages;
        REQUIRE(pages < 100);
    } while (cursor != "0");
    CHECK(pages > 1);
    CHECK(listed == everyone);
    CHECK(error_code(*clients.front(), R"({"op":"online","cursor":"x1"})") == "invalid_cursor");
}

TEST_CASE("redis-streams: last_dm_id replays the direct messages after it, with its own recovery")
{
    cluster c({"--broker", "redis-streams"});
    auto bob = c.b.connect("bob");
    std::vector<std::string> ids;
    {
        auto alice = c.a.connect("alice");
        for (int i = 1; i <= 3; ++i) {
            bob->send_text(R"({"op":"dm","to":"alice","text":"d)" + std::to_string(i) + "\"}");
            auto m = parse(alice->read_text());
            CHECK(field(m, "scope") == "dm");
            ids.push_back(field(m, "id"));
        }
    }
    c.await_subscribers("notif:user:alice", 0);
    bob->send_text(R"({"op":"dm","to":"alice","text":"d4"})");
    REQUIRE(wait_until([&] { return c.cli.integer({"XLEN", "stream:notif:user:alice"}) == 4; }));
    auto alice = c.a.connect("alice&last_dm_id=" + ids[0]);
    for (int i = 2; i <= 4; ++i) {
        auto m = parse(alice->read_text());
        CHECK(field(m, "scope") == "dm");
        CHECK(field(m, "text") == "d" + std::to_string(i));
        CHECK(field(m, "offline") == "<absent>"); // from the replay, not the inbox
    }
    auto r = parse(alice->read_text());
    CHECK(field(r, "type") == "recovery");
    CHECK(field(r, "scope") == "dm");
    CHECK(field(r, "recovered") == "true");
    CHECK(field(r, "replayed") == "3");
    // The inbox held d4 too: removed (once the page was written), and not sent again.
    CHECK(wait_until([&] { return c.cli.integer({"EXISTS", "inbox:alice"}) == 0; }));
    bob->send_text(R"({"op":"dm","to":"alice","text":"d5"})");
    CHECK(texts_until(*alice, "d5").empty());
}

TEST_CASE("an inbox larger than the outbound limit reaches a client that reads slowly, whole, and only then leaves Redis")
{
    // 400 DMs of 15 KiB kept for alice: 6 MiB, a hundred times what the
    // instance lets one client have queued, and more than the socket
    // buffers hold (4 MiB at most here). Sent at once, they would close her
    // as a slow consumer and be gone with her; sent as she reads, she gets
    // them all, and what she has not read is still in Redis meanwhile.
    cluster c({"--broker", "redis-streams", "--max-outbound", "65536"});
    auto bob = c.b.connect("bob");
    const std::string text(15 * 1024, 'k');
    for (int i = 0; i < 400; ++i)
        bob->send_text(R"({"op":"dm","to":"alice","text":")" + std::to_string(i) + text + "\"}");
    REQUIRE(wait_until([&] { return c.cli.integer({"XLEN", "inbox:alice"}) == 400; }));
    auto alice = c.a.connect("alice", 4096);
    std::this_thread::sleep_for(500ms); // not reading yet
    CHECK(c.cli.integer({"XLEN", "inbox:alice"}) > 0);
    for (int i = 0; i < 400; ++i) {
        auto m = parse(alice->read_text());
        REQUIRE(field(m, "text") == std::to_string(i) + text);
        CHECK(field(m, "offline") == "true");
    }
    CHECK(c.a.metric("backplane_slow_consumer_closes_total") == 0);
    CHECK(wait_until([&] { return c.cli.integer({"EXISTS", "inbox:alice"}) == 0; }));
    CHECK(c.a.metric("backplane_inbox_delivered_total") == 400);
}

TEST_CASE("redis-pubsub: last_id in the URL is ignored, in a join it is unsupported")
{
    cluster c;
    auto bob = c.b.connect("bob");
    auto alice = c.a.connect("alice&last_id=1-0");
    bob->send_text(R"({"op":"send","text":"live"})");
    auto m = parse(alice->read_text()); // no replay, no recovery: the live flow at once
    CHECK(field(m, "text") == "live");
    CHECK(error_code(*alice, R"({"op":"join","room":"r","last_id":"1-0"})") == "unsupported");
}

TEST_CASE("the memory broker: one instance on its own, no Redis")
{
    instance a("a", "redis://127.0.0.1:1", {"--broker", "memory"});
    auto alice = a.connect("alice");
    auto bob = a.connect("bob");
    alice->send_text(R"({"op":"send","text":"hi all"})");
    CHECK(field(parse(alice->read_text()), "text") == "hi all");
    CHECK(field(parse(bob->read_text()), "text") == "hi all");
    bob->send_text(R"({"op":"join","room":"r"})");
    CHECK(field(parse(bob->read_text()), "type") == "joined");
    alice->send_text(R"({"op":"send","room":"r","text":"to r"})");
    CHECK(field(parse(bob->read_text()), "text") == "to r");
    alice->send_text(R"({"op":"dm","to":"bob","text":"psst"})");
    auto m = parse(bob->read_text());
    CHECK(field(m, "scope") == "dm");
    CHECK(field(m, "text") == "psst");
    const auto metrics = http_get(a.port(), "/metrics");
    CHECK(metric_value(metrics, "backplane_broker_published_total") == 3);
    CHECK(metrics.find("backplane_redis_connected") == std::string::npos);
}

TEST_CASE("direct messages on a shared channel: every one on dm:all, and no user channel")
{
    cluster c({"--direct", "shared"});
    auto alice = c.a.connect("alice");
    auto bob = c.b.connect("bob");
    c.await_subscribers("dm:all", 2);
    CHECK(c.cli.subscribers("notif:user:alice") == 0);
    CHECK(c.cli.subscribers("notif:user:bob") == 0);
    alice->send_text(R"({"op":"dm","to":"bob","text":"psst"})");
    auto m = parse(bob->read_text());
    CHECK(field(m, "scope") == "dm");
    CHECK(field(m, "from") == "alice");
    CHECK(field(m, "text") == "psst");
    CHECK(c.a.metric("backplane_broker_received_total") == 1); // heard by both instances
    CHECK(c.b.metric("backplane_broker_received_total") == 1);
    CHECK(c.a.metric("backplane_broker_unrouted_total") == 1); // and dropped where bob is not
}

TEST_CASE("a smaller outbound limit (--max-outbound) closes a slow consumer sooner")
{
    // The same flow to a client that never reads on two instances, one
    // with the default limit (1 MiB), one with 64 KiB; the socket buffers
    // are alike on both, so the small one closes its client first, about
    // (1 MiB - 64 KiB) of messages earlier.
    redis_server redis;
    instance big("big", redis.url());
    instance small("small", redis.url(), {"--max-outbound", "65536"});
    auto sender = big.connect("sender");
    auto reader = small.connect("reader"); // reads: every message reached small
    auto slow_big = big.connect("slowbig", 4096);
    auto slow_small = small.connect("slowsmall", 4096);
    const std::string text(8 * 1024, 'm');
    int sent = 0, closed_small_at = 0, closed_big_at = 0;
    while (closed_big_at == 0 && sent < 1000) {
        sender->send_text(R"({"op":"send","text":")" + std::to_string(sent) + text + "\"}");
        ++sent;
        REQUIRE(field(parse(reader->read_text()), "text") == std::to_string(sent - 1) + text);
        REQUIRE(field(parse(sender->read_text()), "text") == std::to_string(sent - 1) + text);
        if (closed_small_at == 0 && small.metric("backplane_slow_consumer_closes_total") == 1)
            closed_small_at = sent;
        if (big.metric("backplane_slow_consumer_closes_total") == 1)
            closed_big_at = sent;
    }
    INFO("closed after " << closed_small_at << " messages with 64 KiB, " << closed_big_at << " with 1 MiB");
    REQUIRE(closed_small_at > 0);
    REQUIRE(closed_big_at > 0);
    CHECK(closed_big_at - closed_small_at >= (1024 - 64) / 8 * 3 / 4);
    auto f = close_frame(*slow_small);
    REQUIRE(f);
    CHECK(f->close_code() == 1008);
    CHECK(f->close_reason() == "slow consumer");
}

TEST_CASE("the stream length (--stream-length) bounds every stream, and a client whose id was trimmed away is told so")
{
    cluster c({"--broker", "redis-streams", "--stream-length", "10"});
    auto bob = c.b.connect("bob");
    std::string first;
    for (int i = 0; i < 400; ++i) {
        bob->send_text(R"({"op":"send","text":"m)" + std::to_string(i) + "\"}");
        auto m = parse(bob->read_text());
        if (i == 0)
            first = field(m, "id");
    }
    // Trimmed with MAXLEN ~: whole nodes of up to 100 entries go at once.
    const auto length = c.cli.integer({"XLEN", "stream:chat:global"});
    INFO("XLEN " << length);
    CHECK(length >= 10);
    CHECK(length <= 10 + 100);
    auto alice = c.a.connect("alice&last_id=" + first);
    int replayed = 0;
    for (;;) {
        auto m = parse(alice->read_text());
        if (field(m, "type") == "recovery") {
            CHECK(field(m, "recovered") == "false");
            CHECK(field(m, "replayed") == std::to_string(replayed));
            break;
        }
        ++replayed;
    }
    CHECK(replayed == length);
}

TEST_CASE("the history expiry (--history-expiry) deletes an idle stream, and a client back after it is told so")
{
    cluster c({"--broker", "redis-streams", "--history-expiry", "1"});
    auto bob = c.b.connect("bob");
    bob->send_text(R"({"op":"send","text":"m0"})");
    const auto first = field(parse(bob->read_text()), "id");
    const auto ttl = c.cli.integer({"PTTL", "stream:chat:global"});
    CHECK(ttl > 0);
    CHECK(ttl <= 1000);
    REQUIRE(wait_until([&] { return c.cli.integer({"EXISTS", "stream:chat:global"}) == 0; }));
    auto alice = c.a.connect("alice&last_id=" + first);
    auto m = parse(alice->read_text());
    CHECK(field(m, "type") == "recovery");
    CHECK(field(m, "recovered") == "false");
    CHECK(field(m, "replayed") == "0");
}
