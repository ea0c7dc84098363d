#include <backplane/broker/memory.hpp>

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>

#include <string>
#include <thread>
#include <vector>

using backplane::broker::memory;
using backplane::broker::memory_bus;

namespace {

struct inbox {
    std::vector<std::string> got;
    void attach(memory& m)
    {
        m.set_message_handler([this](std::string_view ch, std::string_view id, std::string_view data) {
            CHECK(id.empty());
            got.push_back(std::string(ch) + "=" + std::string(data));
        });
    }
};

} // namespace

TEST_CASE("memory broker delivers only to subscribers, later, on their executor")
{
    asio::io_context io;
    memory_bus bus;
    memory a(bus, io.get_executor()), b(bus, io.get_executor()), c(bus, io.get_executor());
    inbox ia, ib, ic;
    ia.attach(a);
    ib.attach(b);
    ic.attach(c);
    a.subscribe("x");
    b.subscribe("x");
    c.subscribe("y");
    CHECK(bus.subscribers("x") == 2);

    bool done = false;
    a.publish("x", "1", [&](std::error_code ec) { done = !ec; });
    CHECK(ia.got.empty()); // never from inside publish
    CHECK_FALSE(done);
    io.run();
    CHECK(done);
    CHECK(ia.got == std::vector<std::string>{"x=1"}); // the publisher's own too
    CHECK(ib.got == std::vector<std::string>{"x=1"});
    CHECK(ic.got.empty());
    CHECK(a.published() == 1);
    CHECK(b.received() == 1);

    b.unsubscribe("x");
    CHECK(bus.subscribers("x") == 1);
    a.publish("x", "2", {});
    io.restart();
    io.run();
    CHECK(ib.got.size() == 1);
    CHECK(ia.got.size() == 2);
}

TEST_CASE("an endpoint destroyed with deliveries queued is not touched by them")
{
    asio::io_context io;
    memory_bus bus;
    memory a(bus, io.get_executor());
    {
        memory b(bus, io.get_executor());
        inbox ib;
        ib.attach(b);
        b.subscribe("x");
        a.publish("x", "1", {});
    } // b and its inbox are gone; the delivery is still queued
    CHECK(bus.subscribers("x") == 0);
    io.run(); // must not call into b
}

TEST_CASE("endpoints on different threads share one bus")
{
    memory_bus bus;
    asio::io_context io1, io2;
    memory a(bus, io1.get_executor()), b(bus, io2.get_executor());
    std::vector<std::string> got;
    b.set_message_handler([&](std::string_view, std::string_view, std::string_view data) {
        got.emplace_back(data);
    });
    b.subscribe("x");
    std::thread t([&] {
        for (int i = 0; i < 1000; ++i)
            a.publish("x", std::to_string(i), {});
    });
    t.join();
    io2.run();
    REQUIRE(got.size() == 1000);
    CHECK(got.front() == "0");
    CHECK(got.back() == "999");
}
