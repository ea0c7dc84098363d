// History and kept messages are sent a page at a time as the connection
// drains (transport::memory's hold_writes plays a client that does not
// read), and kept messages leave the broker only once written.
#include <backplane/hub.hpp>

#include "support.hpp"

#include <catch2/catch.hpp>

#include <optional>

using namespace backplane;
using backplane::test::cluster;
using backplane::test::located_hub;
using strings = std::vector<std::string>;

namespace {

hub_options paged(std::size_t page)
{
    hub_options o;
    o.direct = direct_routing::instance_channel;
    o.offline_page = page;
    o.replay_page = page;
    return o;
}

// What the bus still keeps for `user`.
std::size_t kept(cluster<located_hub>& c, std::string_view user)
{
    std::size_t n = 0;
    c[0].broker().read_offline(user, "", "", 100000, [&](std::error_code ec, std::vector<offline_message> m) {
        CHECK_FALSE(ec);
        n = m.size();
    });
    c.run();
    return n;
}

strings numbered(int from, int to)
{
    strings out;
    for (int i = from; i <= to; ++i)
        out.push_back("dm" + std::to_string(i));
    return out;
}

// Opens `user` on hub `i` with its writes held before anything is sent.
std::pair<test::connection_ptr, connection_id> connect_held(cluster<located_hub>& c, int i, std::string_view user)
{
    auto conn = transport::memory::make_connection();
    conn->hold_writes(true);
    std::error_code ec;
    const auto id = c[i].open(conn, user, ec);
    REQUIRE_FALSE(ec);
    return {conn, id};
}

} // namespace

TEST_CASE("kept messages: one page at a time as the connection drains, removed once written")
{
    cluster<located_hub> c(2, true, paged(10));
    for (int i = 1; i <= 25; ++i)
        REQUIRE_FALSE(c[0].send_to_user("zoe", "dm" + std::to_string(i)));
    c.run();
    REQUIRE(kept(c, "zoe") == 25);

    auto [z, z_id] = connect_held(c, 1, "zoe");
    c.run();
    CHECK(z->texts() == numbered(1, 10)); // one page, and it waits to be written
    CHECK(z->waiting() == 1);
    CHECK(kept(c, "zoe") == 25);          // nothing removed before it is written
    z->hold_writes(false);                // written: removed, the next page follows
    c.run();
    CHECK(z->texts() == numbered(1, 25));
    CHECK(kept(c, "zoe") == 0);
    CHECK(c[1].stats().offline_delivered == 25);
}

TEST_CASE("kept messages: a send that reports backpressure pauses the page until written")
{
    cluster<located_hub> c(2, true, paged(10));
    for (int i = 1; i <= 4; ++i)
        REQUIRE_FALSE(c[0].send_to_user("zoe", "dm" + std::to_string(i)));
    c.run();
    auto [z, z_id] = connect_held(c, 1, "zoe");
    z->report_backpressure(true);
    c.run();
    CHECK(z->texts() == numbered(1, 1)); // the rest of the page waits
    CHECK(kept(c, "zoe") == 4);
    z->hold_writes(false);
    c.run();
    CHECK(z->texts() == numbered(1, 4));
    CHECK(kept(c, "zoe") == 0);
}

TEST_CASE("kept messages: a connection that closes before its page is written loses nothing")
{
    cluster<located_hub> c(2, true, paged(10));
    for (int i = 1; i <= 15; ++i)
        REQUIRE_FALSE(c[0].send_to_user("zoe", "dm" + std::to_string(i)));
    c.run();

    SECTION("another connection of the user here takes them on, from the page not written")
    {
        auto [z, z_id] = connect_held(c, 1, "zoe");
        auto [z2, z2_id] = c.connect(1, "zoe");
        c.run();
        CHECK(z->texts() == numbered(1, 10));
        CHECK(z2->texts().empty());
        c[1].close(z_id);
        c.run();
        CHECK(z2->texts() == numbered(1, 15));
        CHECK(kept(c, "zoe") == 0);
    }
    SECTION("alone, it leaves them for the user's next first connection")
    {
        auto [z, z_id] = connect_held(c, 1, "zoe");
        c.run();
        CHECK(z->texts() == numbered(1, 10));
        c[1].close(z_id);
        c.run();
        CHECK(kept(c, "zoe") == 15);
        auto [again, again_id] = c.connect(0, "zoe");
        c.run();
        CHECK(again->texts() == numbered(1, 15));
        CHECK(kept(c, "zoe") == 0);
    }
}

TEST_CASE("history: the next page of a catch-up is read once the page before is written")
{
    hub_options o = paged(10);
    o.direct = direct_routing::per_user_channel;
    o.instance_id = "i1";
    struct {
        asio::io_context io;
        broker::memory_bus bus{100}; // with history
        void run()
        {
            io.restart();
            io.run();
        }
    } c;
    memory_hub hub(transport::memory{}, broker::memory(c.bus, c.io.get_executor()), o);
    auto a = transport::memory::make_connection();
    std::error_code ec;
    hub.open(a, "alice", ec);
    REQUIRE_FALSE(ec);
    c.run();
    for (int i = 1; i <= 25; ++i)
        REQUIRE_FALSE(hub.broadcast("m" + std::to_string(i)));
    c.run();
    REQUIRE(a->texts().size() == 25);

    auto back = transport::memory::make_connection();
    back->hold_writes(true);
    std::optional<recovery_result> done;
    hub.open(back, "alice", ec, resume_point{"0-0", ""}, [&](const recovery_result& r) { done = r; });
    REQUIRE_FALSE(ec);
    c.run();
    CHECK(back->texts().size() == 10); // one page until it is written
    CHECK_FALSE(done);
    back->hold_writes(false);
    c.run();
    CHECK(back->texts() == a->texts());
    REQUIRE(done);
    CHECK(done->replayed == 25);
}
