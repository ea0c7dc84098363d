// End to end: hostile clients against the reference server's limits. Each
// case has an attacker pass one limit: it gets the limit's error or close
// code, and observers on the same instance and on another one (through
// Redis) still get a broadcast sent after the attack.
#include "instance.hpp"

#include <catch2/catch.hpp>

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
// nothing wrong, and nothing of the attack before it.
void observers_served(instance& at, const std::vector<ws_client*>& observers, const std::string& text)
{
    auto sender = at.connect("bystander");
    sender->send_text(R"({"op":"send","text":")" + text + R"("})");
    for (auto* o : observers)
        CHECK(texts_until(*o, text).empty());
}

} // namespace

TEST_CASE("hostile: joins past --max-rooms are refused with too_many_rooms and subscribe nothing")
{
    cluster c({"--max-rooms", "5"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
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
    for (int i = 0; i < 5; ++i)
        attacker->send_text(R"({"op":"send","text":"all )" + std::to_string(i) + R"("})");
    auto seen = answers(*attacker, 5);
    CHECK(seen["message"] == 2);
    CHECK(seen["rate_limited"] == 3);
    attacker->send_text(R"({"op":"join","room":"r"})");
    CHECK(field(parse(attacker->read_text()), "type") == "joined");
    CHECK(texts_until(*near, "all 1") == std::vector<std::string>{"all 0"});
    CHECK(texts_until(*far, "all 1") == std::vector<std::string>{"all 0"});
    observers_served(c.a, {near.get(), far.get()}, "after the broadcasts");
}

TEST_CASE("hostile: bytes past --max-bytes-rate are refused with rate_limited")
{
    cluster c({"--max-bytes-rate", "1000", "--max-bytes-burst", "65536"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
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
    observers_served(c.a, {near.get(), far.get()}, "after the bytes");
}

TEST_CASE("hostile: a client that floods on past its rate is closed with 1008 rate limit")
{
    // Two at once, one a second: 20 refusals and it is closed.
    cluster c({"--max-rate", "1", "--max-burst", "2"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
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
    observers_served(c.a, {near.get(), far.get()}, "after the close");
}

TEST_CASE("hostile: where and online past --max-in-flight are answered busy, and a close before the answers is harmless")
{
    cluster c({"--max-in-flight", "4"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
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
    observers_served(c.a, {near.get(), far.get()}, "after the waits");
}

TEST_CASE("hostile: joins with last_id past --max-in-flight are answered busy and join nothing")
{
    cluster c({"--broker", "redis-streams", "--max-in-flight", "2"});
    auto attacker = c.a.connect("mallory");
    auto near = c.a.connect("alice");
    auto far = c.b.connect("bob");
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
    observers_served(c.a, {near.get(), far.get()}, "after the joins");
}
