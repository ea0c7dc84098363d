// End to end: hostile clients against the reference server's limits. Each
// case has an attacker pass one limit: it gets the limit's error or close
// code, and observers on the same instance and on another one (through
// Redis) still get a broadcast sent after the attack.
#include "instance.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
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
