// backplane/transport/memory.hpp - connections as plain objects.
//
// The transport for tests, benchmarks and single-process users: a connection
// is an object that records the frames it receives, and that a test can make
// fail a send (as a peer that went away), report backpressure (as a peer
// that reads slowly) or hold what it received unwritten (as a peer that
// does not read: when_written waits until it is released).
//
// Transport requirements, as the hub uses them (both sides of the contract):
// - `connection_handle`: copyable; the hub stores one per open connection and
//   passes it back to `send`.
// - `frame`: what a message becomes once; the hub builds one per message with
//   `make_frame(payload)` and hands the same frame to every recipient.
// - `send(handle, frame)` returns a send_status. It must not copy the payload
//   nor allocate per call, and must not call back into the hub. On `dropped`
//   the hub forgets the connection; closing it is the transport's business.
// - `when_written(handle, h)` calls h at once, or when a held connection is
//   released; never for a connection that fails its sends.
#ifndef BACKPLANE_TRANSPORT_MEMORY_HPP
#define BACKPLANE_TRANSPORT_MEMORY_HPP

#include <backplane/send_status.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace backplane::transport {

/// In-memory transport. Not thread-safe: use it on the hub's executor.
class memory {
public:
    /// A frame: one immutable buffer, shared by every recipient.
    using frame = std::shared_ptr<const std::string>;

    /// One client. Its recorded frames are the hub's shared frames, not copies.
    class connection {
    public:
        /// What the connection keeps of each frame it receives.
        enum class record_mode {
            frames, ///< every frame (shared, not copied) and the counters
            count,  ///< only the counters: what a benchmark's sink needs
        };

        explicit connection(record_mode mode = record_mode::frames) : mode_(mode) {}

        /// The frames received, oldest first (record_mode::frames only).
        const std::vector<frame>& frames() const noexcept { return frames_; }

        /// The payloads received, as strings, oldest first (for assertions).
        std::vector<std::string> texts() const
        {
            std::vector<std::string> out;
            out.reserve(frames_.size());
            for (const auto& f : frames_)
                out.push_back(*f);
            return out;
        }

        std::uint64_t frames_received() const noexcept { return count_; }
        std::uint64_t bytes_received() const noexcept { return bytes_; }

        /// While set, every send to this connection is refused (`dropped`).
        void fail_sends(bool on) noexcept { fail_ = on; }
        /// While set, every send is accepted but reports `backpressure`.
        void report_backpressure(bool on) noexcept { backpressure_ = on; }

        /// While set, what this connection received counts as not yet
        /// written: when_written waits. Clearing it runs what waited.
        void hold_writes(bool on)
        {
            held_ = on;
            if (on)
                return;
            auto waiting = std::move(waiting_);
            waiting_.clear();
            for (auto& h : waiting)
                if (!fail_)
                    h();
        }
        /// Handlers waiting for this connection's writes.
        std::size_t waiting() const noexcept { return waiting_.size(); }

    private:
        friend class memory;

        send_status receive(const frame& f)
        {
            if (fail_)
                return send_status::dropped;
            ++count_;
            bytes_ += f->size();
            if (mode_ == record_mode::frames)
                frames_.push_back(f);
            return backpressure_ ? send_status::backpressure : send_status::ok;
        }

        void when_written(std::function<void()> h)
        {
            if (fail_)
                return;
            if (held_)
                return waiting_.push_back(std::move(h));
            h();
        }

        record_mode mode_;
        bool held_ = false;
        std::vector<std::function<void()>> waiting_;
        bool fail_ = false;
        bool backpressure_ = false;
        std::uint64_t count_ = 0;
        std::uint64_t bytes_ = 0;
        std::vector<frame> frames_;
    };

    using connection_handle = std::shared_ptr<connection>;

    /// Creates a connection to open on a hub.
    static connection_handle make_connection(
        connection::record_mode mode = connection::record_mode::frames)
    {
        return std::make_shared<connection>(mode);
    }

    /// One allocation per message, whatever the number of recipients.
    frame make_frame(std::string_view payload) const
    {
        return std::make_shared<const std::string>(payload);
    }

    send_status send(const connection_handle& c, const frame& f) const { return c->receive(f); }

    /// Calls `h` once what `c` received is written: at once, unless held.
    void when_written(const connection_handle& c, std::function<void()> h) const { c->when_written(std::move(h)); }
};

} // namespace backplane::transport

#endif
