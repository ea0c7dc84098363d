// End to end: Redis killed (kill -9) and restarted on the same port under two
// running instances. Once both are back, every message arrives exactly once
// at every client; with streams, nothing sent before the kill is delivered
// twice, and the clients connected throughout lose nothing.
#include "instance.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace backplane::test;
using namespace std::chrono_literals;

namespace {

// Reads `n` messages from `c`: their texts, in order.
std::vector<std::string> read_texts(ws_client& c, int n)
{
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        auto m = parse(c.read_text());
        REQUIRE(field(m, "type") == "message");
        out.push_back(field(m, "text"));
    }
    return out;
}

std::vector<std::string> numbered(const std::string& prefix, int from, int to)
{
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i)
        out.push_back(prefix + std::to_string(i));
    return out;
}

} // namespace

TEST_CASE("Redis killed and restarted under running instances: every message after it once, everywhere")
{
    const std::string broker = GENERATE(as<std::string>{}, "redis-pubsub", "redis-streams");
    INFO("--broker " << broker);
    cluster c({"--broker", broker});
    auto alice = c.a.connect("alice");
    auto bob = c.b.connect("bob");
    auto carol = c.a.connect("carol");
    for (auto* client : {alice.get(), bob.get(), carol.get()}) {
        client->send_text(R"({"op":"join","room":"r"})");
        REQUIRE(field(parse(client->read_text()), "type") == "joined");
    }
    c.await_subscribers("chat:room:r", 2);
    const int n = 50;
    for (int i = 1; i <= n; ++i)
        alice->send_text(R"({"op":"send","room":"r","text":"before )" + std::to_string(i) + "\"}");
    for (auto* client : {alice.get(), bob.get(), carol.get()})
        CHECK(read_texts(*client, n) == numbered("before ", 1, n));

    c.redis.kill();
    REQUIRE(wait_until([&] { return c.a.metric("backplane_redis_connected") == 0; }));
    REQUIRE(wait_until([&] { return c.b.metric("backplane_redis_connected") == 0; }));
    c.redis.start();
    // Back: both connections of each instance, and every channel subscribed
    // again (global, the room, each user's: 2 + 2 on a, 2 + 1 on b... as
    // PUBSUB NUMSUB shows them).
    REQUIRE(wait_until([&] { return c.a.metric("backplane_redis_connected") == 1; }, 10s));
    REQUIRE(wait_until([&] { return c.b.metric("backplane_redis_connected") == 1; }, 10s));
    c.await_subscribers("chat:global", 2);
    c.await_subscribers("chat:room:r", 2);
    c.await_subscribers("notif:user:alice", 1);
    c.await_subscribers("notif:user:bob", 1);
    CHECK(c.a.metric("backplane_redis_resubscribed_total") == 4); // global, r, alice, carol
    CHECK(c.b.metric("backplane_redis_resubscribed_total") == 3); // global, r, bob

    // From each instance, numbered messages: each arrives once, in order, at
    // every member.
    for (int i = 1; i <= n; ++i) {
        alice->send_text(R"({"op":"send","room":"r","text":"a )" + std::to_string(i) + "\"}");
        bob->send_text(R"({"op":"send","room":"r","text":"b )" + std::to_string(i) + "\"}");
    }
    for (auto* client : {alice.get(), bob.get(), carol.get()}) {
        const auto got = read_texts(*client, 2 * n);
        std::vector<std::string> from_a, from_b;
        for (const auto& t : got)
            (t[0] == 'a' ? from_a : from_b).push_back(t);
        CHECK(from_a == numbered("a ", 1, n));
        CHECK(from_b == numbered("b ", 1, n));
    }
    // And nothing more: a marker comes next.
    bob->send_text(R"({"op":"send","text":"end"})");
    for (auto* client : {alice.get(), bob.get(), carol.get()})
        CHECK(texts_until(*client, "end").empty());
    CHECK(c.a.metric("backplane_broker_malformed_total") == 0);
}
