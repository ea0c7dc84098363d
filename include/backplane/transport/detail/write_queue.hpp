// backplane/transport/detail/write_queue.hpp - one connection's frames of the
// turn, and what became of their writes at the flush; free of I/O.
//
// The websocketpp transport writes a connection's frames itself while the
// connection keeps up (impl/websocketpp.hpp says why). During a turn its
// `write_queue` collects them; the first one puts the connection in the
// turn's flush. At the flush a `queue_writer` walks them:
//   gather, apply   the iovecs of what is left, then the result of writing
//                   them (bytes, or -errno); again until done
//   hand_over       the socket took less, or failed: what is left goes to
//                   websocketpp's queue, and so does every later frame
// A test steps both with made-up write results, no socket.
//
// Frame: a pointer to a message with `get_header()` and `get_payload()`
// (std::string), as websocketpp's prepared messages have.
#ifndef BACKPLANE_TRANSPORT_DETAIL_WRITE_QUEUE_HPP
#define BACKPLANE_TRANSPORT_DETAIL_WRITE_QUEUE_HPP

#include <sys/types.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace backplane::transport::detail {

template <class Frame>
class queue_writer;

/// A connection's frames of the turn. It lives in every connection: the
/// state of a flush in progress lives in the queue_writer instead.
template <class Frame>
class write_queue {
public:
    /// Queues `f`; true if it is the first since the last flush, so that
    /// the connection must join the turn's flush.
    bool push(const Frame& f)
    {
        frames_.push_back(f);
        bytes_ += wire_size(f);
        return frames_.size() == 1;
    }

    bool empty() const noexcept { return frames_.empty(); }
    /// Bytes queued (headers and payloads) until the flush.
    std::size_t bytes() const noexcept { return bytes_; }
    /// Whether frames still go through this queue: false once handed over.
    bool direct() const noexcept { return direct_; }

    /// Forgets what is queued (a connection that closes: nothing more goes out).
    void clear() noexcept
    {
        frames_.clear(); // keeps its capacity for the next turn
        bytes_ = 0;
    }

private:
    friend class queue_writer<Frame>;

    static std::size_t wire_size(const Frame& f) { return f->get_header().size() + f->get_payload().size(); }

    std::vector<Frame> frames_;
    std::size_t bytes_ = 0; // wire bytes of frames_
    bool direct_ = true;    // written by us, not yet by websocketpp
};

/// What to do after a write.
enum class write_step {
    again,     ///< all of it was written and more waits: gather and write again
    done,      ///< everything queued is written; the queue is empty
    hand_over, ///< the socket took less, or failed: hand_over() the rest
};

/// One flush of a write_queue: which of its frames the writes have taken.
template <class Frame>
class queue_writer {
public:
    /// The most iovecs one gather fills: two per frame (header, payload).
    static constexpr std::size_t max_iov = 64;

    explicit queue_writer(write_queue<Frame>& q) noexcept : q_(q) {}

    /// Fills `iov` (room for max_iov) with the frames not written yet, as
    /// many as fit; returns how many iovecs.
    std::size_t gather(iovec* iov)
    {
        const auto& frames = q_.frames_;
        std::size_t n = 0;
        gathered_ = 0;
        for (std::size_t i = next_; i < frames.size() && n + 2 <= max_iov; ++i)
            for (const std::string* b : {&frames[i]->get_header(), &frames[i]->get_payload()}) {
                if (b->empty())
                    continue;
                iov[n++] = {const_cast<char*>(b->data()), b->size()};
                gathered_ += b->size();
            }
        return n;
    }

    /// Takes the result of writing what the last gather returned: the bytes
    /// written, or -errno. A failed write hands over too: websocketpp's own
    /// write then meets the error and closes the connection, as for any.
    write_step apply(ssize_t result)
    {
        if (result <= 0)
            return write_step::hand_over;
        const auto& frames = q_.frames_;
        for (auto left = static_cast<std::size_t>(result); left > 0;) {
            const std::size_t size = write_queue<Frame>::wire_size(frames[next_]);
            const std::size_t take = std::min(left, size - part_);
            part_ += take;
            left -= take;
            if (part_ == size) {
                ++next_;
                part_ = 0;
            }
        }
        if (static_cast<std::size_t>(result) < gathered_)
            return write_step::hand_over; // the socket is full
        if (next_ < frames.size())
            return write_step::again;
        q_.clear();
        return write_step::done;
    }

    /// After write_step::hand_over: calls `rest(std::string)` with the
    /// unwritten end of the frame a write stopped in, if it stopped in one
    /// (a raw message of its own: the frame's start is on the wire), then
    /// `each(frame)` for every frame not begun, in order. The queue is then
    /// empty, and its direct() false for good.
    template <class Rest, class Each>
    void hand_over(Rest&& rest, Each&& each)
    {
        const auto& frames = q_.frames_;
        std::size_t i = next_;
        if (part_ > 0) {
            const std::string whole = frames[i]->get_header() + frames[i]->get_payload();
            rest(whole.substr(part_));
            ++i;
        }
        for (; i < frames.size(); ++i)
            each(frames[i]);
        q_.direct_ = false;
        q_.clear();
    }

private:
    write_queue<Frame>& q_;
    std::size_t next_ = 0;     // first frame not wholly written
    std::size_t part_ = 0;     // bytes of it written
    std::size_t gathered_ = 0; // bytes the last gather returned
};

} // namespace backplane::transport::detail

#endif
