// backplane/redis/detail/command_fsm.hpp - the command connection's protocol
// state, free of I/O: what to write next, which reply belongs to whom.
//
// States: down -> handshake -> ready -> down ...
// - Commands are queued in every state (up to max_pending, counting those
//   awaiting a reply, and max_pending_bytes not yet written: a hundred
//   large publishes weigh more than thousands of small ones) and written
//   once the connection is ready, after the
//   handshake. Everything queued since the last write goes out in the next
//   one: the pipelining is automatic.
// - Replies match the written commands in order (RESP2 has no ids).
// - When the connection is lost, the commands awaiting a reply fail with
//   error::connection_lost (they may or may not have run); the queued ones
//   stay for the next connection.
// A test drives it with bytes and hiredis replies, no socket.
#ifndef BACKPLANE_REDIS_DETAIL_COMMAND_FSM_HPP
#define BACKPLANE_REDIS_DETAIL_COMMAND_FSM_HPP

#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/detail/resp.hpp>
#include <backplane/redis/reply.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace backplane::redis::detail {

enum class phase { down, handshake, ready };

/// Queues AUTH, SELECT, CLIENT SETNAME and PING into `out`; returns how many.
inline std::size_t append_handshake(std::string& out, const config& cfg, std::string_view client_name)
{
    std::size_t n = 0;
    if (!cfg.password.empty()) {
        if (cfg.user.empty())
            append_command(out, {"AUTH", cfg.password});
        else
            append_command(out, {"AUTH", cfg.user, cfg.password});
        ++n;
    }
    if (cfg.database != 0) {
        const auto db = std::to_string(cfg.database);
        append_command(out, {"SELECT", db});
        ++n;
    }
    if (!client_name.empty()) {
        append_command(out, {"CLIENT", "SETNAME", client_name});
        ++n;
    }
    append_command(out, {"PING"});
    return n + 1;
}

/// The protocol state of a command connection.
class command_fsm {
public:
    /// One command awaiting its turn or its reply. At most one handler is set;
    /// none for the handshake, the probes and fire-and-forget publishes.
    struct entry {
        reply_handler on_reply;
        done_handler on_done;
        bool probe = false;
    };

    /// A handler to call with an error, once the state is consistent again.
    using failed_list = std::vector<entry>;

    explicit command_fsm(std::size_t max_pending, std::size_t max_pending_bytes = static_cast<std::size_t>(-1))
        : max_pending_(max_pending), max_pending_bytes_(max_pending_bytes)
    {
    }

    /// Queues a command.
    /// @returns error::queue_full past max_pending commands, or past
    /// max_pending_bytes not yet written; nothing is queued then, and the
    /// handlers are left untouched for the caller to fail.
    template <class Range>
    std::error_code push(const Range& args, reply_handler& on_reply, done_handler& on_done)
    {
        if (entries_.size() - handshake_left_ >= max_pending_) {
            ++failed_;
            return error::queue_full;
        }
        const std::size_t before = queued_bytes_.size();
        if (!append_command(queued_bytes_, args)) {
            queued_bytes_.resize(before);
            ++failed_;
            return error::protocol_error;
        }
        if (queued_bytes_.size() > max_pending_bytes_) {
            queued_bytes_.resize(before);
            ++failed_;
            return error::queue_full;
        }
        entries_.push_back(entry{std::move(on_reply), std::move(on_done), false});
        return {};
    }

    /// Queues a PING that only the liveness probe waits for; returns its
    /// number (see probes_answered()). Never refused.
    std::uint64_t probe()
    {
        append_command(queued_bytes_, {"PING"});
        entries_.push_back(entry{{}, {}, true});
        return ++probes_sent_;
    }

    /// A new connection is open: the handshake goes first.
    void connected(const config& cfg, std::string_view client_name)
    {
        handshake_bytes_.clear();
        handshake_left_ = append_handshake(handshake_bytes_, cfg, client_name);
        for (std::size_t i = 0; i < handshake_left_; ++i)
            entries_.push_front(entry{});
        sent_ = 0;
        phase_ = phase::handshake;
    }

    /// Whether take_output() has anything.
    bool has_output() const noexcept
    {
        return !handshake_bytes_.empty() || (phase_ == phase::ready && !queued_bytes_.empty());
    }

    /// Moves the bytes to write into `out` (empty on entry); the commands
    /// they hold now await their replies.
    void take_output(std::string& out)
    {
        if (!handshake_bytes_.empty()) {
            out.swap(handshake_bytes_);
            handshake_bytes_.clear();
            sent_ = handshake_left_;
        }
        if (phase_ != phase::ready || queued_bytes_.empty())
            return;
        /* Swapped, not copied: the two buffers keep their capacity and trade
           places, so that a busy connection stops allocating. */
        if (out.empty())
            out.swap(queued_bytes_);
        else
            out.append(queued_bytes_);
        queued_bytes_.clear();
        sent_ = entries_.size();
    }

    /// Handles one reply.
    /// @returns an error if the connection must be dropped: a reply nobody
    /// waits for, or an error reply in the handshake (see last_error()).
    std::error_code on_reply(const redisReply& r)
    {
        if (sent_ == 0)
            return error::protocol_error;
        entry e = std::move(entries_.front());
        entries_.pop_front();
        --sent_;
        const bool is_error = r.type == REDIS_REPLY_ERROR;
        if (handshake_left_ > 0) {
            --handshake_left_;
            if (is_error) {
                last_error_.assign(r.str, r.len);
                return error::server_error;
            }
            if (handshake_left_ == 0)
                phase_ = phase::ready;
            return {};
        }
        if (e.probe) {
            ++probes_answered_;
            return {};
        }
        std::error_code ec;
        if (is_error) {
            ec = error::server_error;
            ++failed_;
        } else {
            ++succeeded_;
        }
        if (e.on_done) {
            e.on_done(ec);
        } else if (e.on_reply) {
            convert(r, scratch_);
            e.on_reply(ec, scratch_);
        }
        return {};
    }

    /// The connection is gone: the commands awaiting a reply are returned,
    /// to be failed with error::connection_lost; the queued ones stay.
    failed_list connection_lost()
    {
        failed_list failed;
        const std::size_t gone = std::max(sent_, handshake_left_);
        for (std::size_t i = 0; i < gone; ++i) {
            entry e = std::move(entries_.front());
            entries_.pop_front();
            if (i >= handshake_left_ && !e.probe)
                failed.push_back(std::move(e)); // fire-and-forget ones too: counted
        }
        failed_ += failed.size();
        sent_ = handshake_left_ = 0;
        handshake_bytes_.clear();
        probes_answered_ = probes_sent_; // the probes died with the connection
        phase_ = phase::down;
        return failed;
    }

    /// Stop: every command, queued or not, is returned to be failed.
    failed_list abort()
    {
        failed_list all = connection_lost();
        const std::size_t lost = all.size();
        for (auto& e : entries_)
            if (!e.probe)
                all.push_back(std::move(e));
        failed_ += all.size() - lost;
        entries_.clear();
        queued_bytes_.clear();
        return all;
    }

    phase state() const noexcept { return phase_; }
    /// Commands queued or awaiting a reply (the handshake's excluded).
    std::size_t pending() const noexcept { return entries_.size() - handshake_left_; }
    /// Commands written and not answered yet.
    std::size_t in_flight() const noexcept { return sent_; }
    std::uint64_t probes_sent() const noexcept { return probes_sent_; }
    std::uint64_t probes_answered() const noexcept { return probes_answered_; }
    /// Commands answered with a normal reply.
    std::uint64_t succeeded() const noexcept { return succeeded_; }
    /// Commands that failed: error reply, queue full, connection lost, stop.
    std::uint64_t failed() const noexcept { return failed_; }
    /// The text of the last error reply in a handshake ("WRONGPASS ...").
    const std::string& last_error() const noexcept { return last_error_; }

private:
    std::size_t max_pending_;
    std::size_t max_pending_bytes_;
    std::deque<entry> entries_;   // awaiting a reply (the first sent_), then queued
    std::size_t sent_ = 0;
    std::size_t handshake_left_ = 0; // handshake entries at the front
    std::string handshake_bytes_;
    std::string queued_bytes_;
    phase phase_ = phase::down;
    std::uint64_t probes_sent_ = 0, probes_answered_ = 0;
    std::uint64_t succeeded_ = 0, failed_ = 0;
    std::string last_error_;
    reply scratch_; // reused: most replies convert without allocating
};

} // namespace backplane::redis::detail

#endif
