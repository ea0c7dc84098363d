#include <backplane/transport/memory.hpp>

#include <catch2/catch.hpp>

using backplane::send_status;
using backplane::transport::memory;

TEST_CASE("memory transport records the shared frame, not a copy")
{
    memory t;
    auto a = memory::make_connection();
    auto b = memory::make_connection();
    const auto f = t.make_frame("hello");
    CHECK(t.send(a, f) == send_status::ok);
    CHECK(t.send(b, f) == send_status::ok);
    REQUIRE(a->frames().size() == 1);
    CHECK(a->frames()[0].get() == b->frames()[0].get());
    CHECK(a->texts() == std::vector<std::string>{"hello"});
    CHECK(a->bytes_received() == 5);
}

TEST_CASE("memory transport can fail sends and report backpressure")
{
    memory t;
    auto c = memory::make_connection();
    const auto f = t.make_frame("x");
    c->report_backpressure(true);
    CHECK(t.send(c, f) == send_status::backpressure);
    c->fail_sends(true);
    CHECK(t.send(c, f) == send_status::dropped);
    CHECK(c->frames_received() == 1);
}

TEST_CASE("a counting connection keeps no frames")
{
    memory t;
    auto c = memory::make_connection(memory::connection::record_mode::count);
    t.send(c, t.make_frame("abc"));
    CHECK(c->frames().empty());
    CHECK(c->frames_received() == 1);
    CHECK(c->bytes_received() == 3);
}
