// detail::turn_flush: whose frames leave at the end of a turn, and when the
// flush stops waiting, stepped with made-up counts, no event loop.
#include <backplane/transport/detail/turn_flush.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

using flush = backplane::transport::detail::turn_flush<int>;

TEST_CASE("turn_flush: the turn's first connection schedules the flush, the others join it, in order")
{
    flush t;
    CHECK(t.add(3));
    CHECK_FALSE(t.add(1));
    CHECK_FALSE(t.add(2));
    CHECK(t.take() == std::vector<int>{3, 1, 2});
    t.done();
    CHECK(t.add(4)); // a new turn
}

TEST_CASE("turn_flush: connections added while a flush writes go to the next turn")
{
    flush t;
    t.add(1);
    const auto& now = t.take();
    CHECK(t.add(2)); // schedules the next flush
    CHECK(now == std::vector<int>{1});
    t.done();
    CHECK(t.take() == std::vector<int>{2});
}

TEST_CASE("turn_flush: the flush waits while the turn queues frames or reads messages")
{
    flush t;
    std::uint64_t messages = 0;
    t.frame_queued();
    CHECK(t.wait(messages)); // the first check always sees the frame that scheduled it
    CHECK_FALSE(t.wait(messages)); // nothing since: flush

    t.frame_queued();
    CHECK(t.wait(messages));
    ++messages; // a read that completed at once
    CHECK(t.wait(messages));
    t.frame_queued(); // a delivery it posted
    CHECK(t.wait(messages));
    CHECK_FALSE(t.wait(messages));
}

TEST_CASE("turn_flush: a turn that keeps bringing work is flushed after max_waits waits, and the next starts afresh")
{
    flush t;
    std::uint64_t messages = 0;
    for (int i = 0; i < flush::max_waits; ++i)
        CHECK(t.wait(++messages));
    CHECK_FALSE(t.wait(++messages)); // still busy, but flushed now
    CHECK(t.wait(++messages));       // the next turn may wait again
}
