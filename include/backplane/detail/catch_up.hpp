// backplane/detail/catch_up.hpp - the seam between history and the live
// flow, free of I/O: one reader that must get every message after its
// cursor once, in id order, while messages keep coming.
//
// Two readers use it: a connection the hub catches up (a client back with
// its last id), and a channel the streams broker resumes after its own
// subscriber connection came back. Both read history after the cursor, page
// by page, while the live flow goes on. The live messages are not given to
// the reader meanwhile, only noted: history holds them too (a message is in
// the stream before it is published). When a page does not fill its request:
// - if the cursor is behind the last live id noted, the page was read before
//   those messages were stored: read again;
// - if it is level with it, the reader goes live now;
// - if it is ahead (history gave messages whose live copies are still on
//   their way), the reader waits: live messages up to the cursor are
//   skipped, and the first one past it is delivered and makes it live.
// Live, a message at or below the cursor is a duplicate and is skipped.
//
// The owner does the reading and the delivering; this only says what to do.
#ifndef BACKPLANE_DETAIL_CATCH_UP_HPP
#define BACKPLANE_DETAIL_CATCH_UP_HPP

#include <backplane/stream_id.hpp>

#include <cstddef>

namespace backplane::detail {

class catch_up {
public:
    enum class state {
        reading, ///< pages of history are being read
        waiting, ///< history is read; waiting for the live flow to pass the cursor
        live,    ///< every message from now on is live
    };

    /// After a page.
    enum class next {
        read_again, ///< read the next page after cursor()
        wait,       ///< state() is waiting
        go_live,    ///< state() is live
    };

    /// What to do with a live message.
    enum class action {
        ignore,          ///< reading: noted, history has it
        skip,            ///< the reader has it already
        deliver_go_live, ///< deliver it; the reader is live from now on
        deliver,         ///< deliver it (live already)
    };

    /// A reader whose last message is `after`, starting to read.
    explicit catch_up(stream_id after) noexcept : cursor_(after), live_(after) {}

    /// A reader that is live already at `last` (nothing to read).
    static catch_up live_at(stream_id last) noexcept
    {
        catch_up c(last);
        c.state_ = state::live;
        return c;
    }

    state current() const noexcept { return state_; }
    /// The last id the reader has: where the next page starts.
    stream_id cursor() const noexcept { return cursor_; }
    /// Messages taken from history.
    std::size_t replayed() const noexcept { return replayed_; }
    /// Whether the first page said that nothing after the start was lost.
    bool recovered() const noexcept { return recovered_; }

    /// A message of a page: whether the reader should get it (it is past
    /// the cursor, which then moves to it).
    bool take(stream_id id) noexcept
    {
        if (!(cursor_ < id))
            return false;
        cursor_ = id;
        ++replayed_;
        return true;
    }

    /// The page is read. `full`: it filled its request (more may follow);
    /// `cursor_found`: the id it was read after is still in the history;
    /// `failed`: the read failed (the reader then joins the live flow as
    /// well as it can, and is not recovered).
    next page_done(bool full, bool cursor_found, bool failed) noexcept
    {
        if (first_page_)
            recovered_ = cursor_found && !failed;
        if (failed)
            recovered_ = false;
        first_page_ = false;
        if (!failed && (full || cursor_ < live_))
            return next::read_again;
        if (cursor_ < live_ || cursor_ == live_) {
            // Level (or, after a failure, behind: what lies between is lost).
            state_ = state::live;
            if (cursor_ < live_)
                cursor_ = live_;
            return next::go_live;
        }
        state_ = state::waiting;
        return next::wait;
    }

    /// A live message `id`.
    action on_live(stream_id id) noexcept
    {
        switch (state_) {
        case state::reading:
            if (live_ < id)
                live_ = id;
            return action::ignore;
        case state::waiting:
            if (!(cursor_ < id))
                return action::skip;
            cursor_ = id;
            state_ = state::live;
            return action::deliver_go_live;
        case state::live:
            break;
        }
        if (!(cursor_ < id))
            return action::skip;
        cursor_ = id;
        return action::deliver;
    }

    /// Starts reading again from the cursor (the broker's subscriber came
    /// back after a loss): what arrives live meanwhile is noted again.
    void restart() noexcept
    {
        state_ = state::reading;
        live_ = cursor_;
        first_page_ = true;
    }

private:
    state state_ = state::reading;
    stream_id cursor_;
    stream_id live_; // the last live id noted while reading
    std::size_t replayed_ = 0;
    bool first_page_ = true;
    bool recovered_ = false;
};

} // namespace backplane::detail

#endif
