// backplane/transport/detail/turn_flush.hpp - when the frames of a turn
// leave, and whose; free of I/O.
//
// The websocketpp transport queues a turn's frames per connection and writes
// them all at once (impl/websocketpp.hpp says why). A connection's first
// frame of the turn adds it here; the turn's first connection makes the
// transport post a check behind the handlers already queued. At that check
// `wait` says whether to post it once more, because the turn still brings
// messages or queues frames, or to flush now: `take` then gives the
// connections to write. A test steps it with made-up counts, no event loop.
#ifndef BACKPLANE_TRANSPORT_DETAIL_TURN_FLUSH_HPP
#define BACKPLANE_TRANSPORT_DETAIL_TURN_FLUSH_HPP

#include <cstdint>
#include <vector>

namespace backplane::transport::detail {

/// Handle: what names a connection (copyable).
template <class Handle>
class turn_flush {
public:
    /// How many times a flush waits at most, however busy the turn.
    static constexpr int max_waits = 16;

    /// Counts a frame queued, for `wait`.
    void frame_queued() noexcept { ++queued_; }

    /// Adds `c`, which has just queued its first frame of the turn; true if
    /// it is the turn's first connection: the caller then posts the check.
    bool add(const Handle& c)
    {
        dirty_.push_back(c);
        return dirty_.size() == 1;
    }

    /// At the check: true to post it again, since frames were queued or
    /// messages read (`messages_in` counts all ever read) after the last
    /// check, up to max_waits times; false to flush now.
    bool wait(std::uint64_t messages_in) noexcept
    {
        const std::uint64_t progress = queued_ + messages_in;
        if (progress != progress_at_wait_ && waits_ < max_waits) {
            progress_at_wait_ = progress;
            ++waits_;
            return true;
        }
        waits_ = 0;
        return false;
    }

    /// The connections to write now, in the order they were added. Those
    /// added from now on go to the next turn. Call done() once written.
    const std::vector<Handle>& take()
    {
        flushing_.swap(dirty_);
        return flushing_;
    }

    /// The flush is over.
    void done() noexcept { flushing_.clear(); }

private:
    std::vector<Handle> dirty_;        // frames queued this turn
    std::vector<Handle> flushing_;     // being written (dirty_'s other buffer)
    std::uint64_t queued_ = 0;         // frames ever queued
    std::uint64_t progress_at_wait_ = 0; // frames queued and messages read at the last wait
    int waits_ = 0;                    // waits of this turn's flush
};

} // namespace backplane::transport::detail

#endif
