// detail::catch_up, stepped one event at a time with no broker and no hub:
// every message once, in id order, across the seam between history and the
// live flow.
#include <backplane/detail/catch_up.hpp>

#include <catch2/catch.hpp>

#include <vector>

using backplane::stream_id;
using backplane::detail::catch_up;
using next = catch_up::next;
using action = catch_up::action;

namespace {
stream_id id(std::uint64_t ms) { return {ms, 0}; }

// A reader fed a page of history: the ids it takes.
std::vector<std::uint64_t> page(catch_up& c, std::initializer_list<std::uint64_t> ids)
{
    std::vector<std::uint64_t> taken;
    for (auto ms : ids)
        if (c.take(id(ms)))
            taken.push_back(ms);
    return taken;
}
} // namespace

TEST_CASE("catch_up: history past the live flow waits for live to pass the cursor")
{
    catch_up c(id(10));
    CHECK(page(c, {10, 11, 12}) == std::vector<std::uint64_t>{11, 12}); // 10 is the cursor: not again
    CHECK(c.page_done(true, true, false) == next::read_again);
    CHECK(c.cursor() == id(12));
    CHECK(page(c, {13}) == std::vector<std::uint64_t>{13});
    // Short page, no live seen: 11..13 are on their way live.
    CHECK(c.page_done(false, true, false) == next::wait);
    CHECK(c.current() == catch_up::state::waiting);
    CHECK(c.on_live(id(11)) == action::skip);
    CHECK(c.on_live(id(13)) == action::skip);
    CHECK(c.on_live(id(14)) == action::deliver_go_live);
    CHECK(c.current() == catch_up::state::live);
    CHECK(c.on_live(id(15)) == action::deliver);
    CHECK(c.on_live(id(15)) == action::skip); // a duplicate
    CHECK(c.replayed() == 3);
    CHECK(c.recovered());
}

TEST_CASE("catch_up: live messages noted while reading make it read again until it is level")
{
    catch_up c(id(1));
    CHECK(c.on_live(id(5)) == action::ignore); // stored before published: history has it
    CHECK(c.on_live(id(6)) == action::ignore);
    CHECK(page(c, {2, 3}) == std::vector<std::uint64_t>{2, 3});
    CHECK(c.page_done(false, true, false) == next::read_again); // the page was read before 5 and 6 were stored
    CHECK(page(c, {4, 5, 6}) == std::vector<std::uint64_t>{4, 5, 6});
    CHECK(c.page_done(false, true, false) == next::go_live); // level
    CHECK(c.on_live(id(6)) == action::skip);
    CHECK(c.on_live(id(7)) == action::deliver);
}

TEST_CASE("catch_up: nothing missed and nothing new goes live at once")
{
    catch_up c(id(9));
    CHECK(page(c, {}).empty());
    CHECK(c.page_done(false, true, false) == next::go_live);
    CHECK(c.replayed() == 0);
    CHECK(c.recovered());
    CHECK(c.on_live(id(10)) == action::deliver);
}

TEST_CASE("catch_up: a cursor no longer in history is reported, and the rest still delivered")
{
    catch_up c(id(3));
    CHECK(page(c, {7, 8}) == std::vector<std::uint64_t>{7, 8}); // 4..6 were trimmed
    CHECK(c.page_done(false, false, false) == next::wait);
    CHECK_FALSE(c.recovered());
    CHECK(c.on_live(id(9)) == action::deliver_go_live);
}

TEST_CASE("catch_up: a failed read joins the live flow where it is, not recovered")
{
    catch_up c(id(3));
    CHECK(c.on_live(id(8)) == action::ignore);
    CHECK(c.page_done(false, false, true) == next::go_live);
    CHECK_FALSE(c.recovered());
    CHECK(c.on_live(id(8)) == action::skip); // what the failure lost is not delivered out of order
    CHECK(c.on_live(id(9)) == action::deliver);
}

TEST_CASE("catch_up: restarted, it reads again from where it is and notes live messages again")
{
    auto c = catch_up::live_at(id(20));
    CHECK(c.current() == catch_up::state::live);
    CHECK(c.on_live(id(21)) == action::deliver);
    c.restart(); // the broker's subscriber connection came back
    CHECK(c.on_live(id(25)) == action::ignore);
    CHECK(page(c, {21, 22, 23, 24, 25}) == std::vector<std::uint64_t>{22, 23, 24, 25});
    CHECK(c.page_done(false, true, false) == next::go_live);
    CHECK(c.on_live(id(26)) == action::deliver);
}
