// backplane/redis/detail/subscriber_fsm.hpp - the subscriber connection's
// protocol state, free of I/O.
//
// It keeps the set of channels its owner wants (`desired`), whatever the
// connection does, and turns changes into batched commands:
// - while ready, the subscribes and unsubscribes of one turn become one
//   SUBSCRIBE and one UNSUBSCRIBE with every channel as an argument; a
//   channel subscribed and unsubscribed in the same turn costs nothing;
// - after the handshake of every connection, one SUBSCRIBE of every desired
//   channel (counted as resubscribed after the first connection);
// - PINGs (the liveness probe, or a caller waiting for everything written
//   before to be processed) go after the subscription changes of their turn,
//   and their "pong" replies come back in order.
// In subscribe mode (RESP2) every reply is an array: "message", "subscribe",
// "unsubscribe", "pong"; an error reply is counted and otherwise ignored.
#ifndef BACKPLANE_REDIS_DETAIL_SUBSCRIBER_FSM_HPP
#define BACKPLANE_REDIS_DETAIL_SUBSCRIBER_FSM_HPP

#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/detail/command_fsm.hpp>
#include <backplane/redis/detail/resp.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

namespace backplane::redis::detail {

/// The protocol state of a subscriber connection.
class subscriber_fsm {
public:
    /// Called once per message: the channel, the data.
    using message_fn = std::function<void(std::string_view, std::string_view)>;
    using failed_list = std::vector<done_handler>;

    void set_message_handler(message_fn fn) { on_message_ = std::move(fn); }

    /// Adds a channel to the desired set (subscribing twice is harmless).
    void subscribe(std::string_view channel)
    {
        auto [it, inserted] = desired_.emplace(channel);
        if (!inserted || phase_ != phase::ready)
            return;
        if (to_unsubscribe_.erase(*it) == 0) // still subscribed on the server if it was pending
            to_subscribe_.insert(*it);
    }

    /// Removes a channel from the desired set (unknown channels are ignored).
    void unsubscribe(std::string_view channel)
    {
        auto it = desired_.find(std::string(channel));
        if (it == desired_.end())
            return;
        if (phase_ == phase::ready && to_subscribe_.erase(*it) == 0)
            to_unsubscribe_.insert(*it);
        desired_.erase(it);
    }

    /// Queues a PING; `done` (may be empty) is called with no error when its
    /// pong arrives, or with the error that ended the wait.
    /// @returns its number (see probes_answered()), or 0 if not ready, when
    /// `done` is left untouched.
    std::uint64_t ping(done_handler& done)
    {
        if (phase_ != phase::ready)
            return 0;
        pings_.push_back(std::move(done));
        ++pings_unsent_;
        return ++probes_sent_;
    }

    /// The liveness probe: a PING nobody else waits for.
    std::uint64_t probe()
    {
        done_handler none;
        return ping(none);
    }

    /// A new connection is open: the handshake goes first.
    void connected(const config& cfg, std::string_view client_name)
    {
        handshake_bytes_.clear();
        handshake_left_ = append_handshake(handshake_bytes_, cfg, client_name);
        phase_ = phase::handshake;
    }

    bool has_output() const noexcept
    {
        return !handshake_bytes_.empty()
               || (phase_ == phase::ready
                   && (!to_subscribe_.empty() || !to_unsubscribe_.empty() || pings_unsent_ > 0));
    }

    /// Moves the bytes to write into `out` (empty on entry).
    void take_output(std::string& out)
    {
        if (!handshake_bytes_.empty()) {
            out.swap(handshake_bytes_);
            handshake_bytes_.clear();
        }
        if (phase_ != phase::ready)
            return;
        append_batch(out, "SUBSCRIBE", to_subscribe_);
        append_batch(out, "UNSUBSCRIBE", to_unsubscribe_);
        for (; pings_unsent_ > 0; --pings_unsent_)
            append_command(out, {"PING"});
    }

    /// Handles one reply.
    /// @returns an error if the connection must be dropped.
    std::error_code on_reply(const redisReply& r)
    {
        if (phase_ == phase::handshake) {
            if (handshake_left_ == 0)
                return error::protocol_error;
            --handshake_left_;
            if (r.type == REDIS_REPLY_ERROR) {
                last_error_.assign(r.str, r.len);
                return error::server_error;
            }
            if (handshake_left_ == 0)
                become_ready();
            return {};
        }
        if (phase_ != phase::ready)
            return error::protocol_error;
        if (r.type == REDIS_REPLY_ERROR) {
            ++errors_;
            last_error_.assign(r.str, r.len);
            return {};
        }
        if (r.type != REDIS_REPLY_ARRAY || r.elements < 2 || r.element[0]->type != REDIS_REPLY_STRING)
            return error::protocol_error;
        const std::string_view kind = view_of(*r.element[0]);
        if (kind == "message" && r.elements == 3) {
            ++received_;
            if (on_message_)
                on_message_(view_of(*r.element[1]), view_of(*r.element[2]));
        } else if (kind == "pong") {
            if (pings_.empty())
                return error::protocol_error;
            auto done = std::move(pings_.front());
            pings_.pop_front();
            ++probes_answered_;
            if (done)
                done({});
        } else if ((kind == "subscribe" || kind == "unsubscribe") && r.elements == 3) {
            server_channels_ = static_cast<std::size_t>(r.element[2]->integer);
        }
        return {};
    }

    /// The connection is gone: the PINGs waiting for a pong are returned, to
    /// be failed with error::connection_lost. The desired set stays.
    failed_list connection_lost()
    {
        failed_list failed;
        for (auto& p : pings_)
            if (p)
                failed.push_back(std::move(p));
        pings_.clear();
        pings_unsent_ = 0;
        probes_answered_ = probes_sent_;
        to_subscribe_.clear();
        to_unsubscribe_.clear();
        handshake_bytes_.clear();
        handshake_left_ = 0;
        server_channels_ = 0;
        phase_ = phase::down;
        return failed;
    }

    phase state() const noexcept { return phase_; }
    /// Whether `channel` is in the desired set.
    bool wants(std::string_view channel) const { return desired_.count(std::string(channel)) != 0; }
    std::size_t channel_count() const noexcept { return desired_.size(); }
    /// Channels the server said this connection is subscribed to, per its
    /// last subscribe or unsubscribe confirmation.
    std::size_t server_channels() const noexcept { return server_channels_; }
    std::uint64_t received() const noexcept { return received_; }
    std::uint64_t resubscribed() const noexcept { return resubscribed_; }
    std::uint64_t errors() const noexcept { return errors_; }
    std::uint64_t probes_sent() const noexcept { return probes_sent_; }
    std::uint64_t probes_answered() const noexcept { return probes_answered_; }
    const std::string& last_error() const noexcept { return last_error_; }

private:
    void become_ready()
    {
        phase_ = phase::ready;
        to_unsubscribe_.clear();
        to_subscribe_ = desired_;
        if (was_ready_)
            resubscribed_ += desired_.size();
        was_ready_ = true;
    }

    static void append_batch(std::string& out, std::string_view command, std::unordered_set<std::string>& channels)
    {
        if (channels.empty())
            return;
        std::vector<std::string_view> args;
        args.reserve(channels.size() + 1);
        args.push_back(command);
        for (const auto& c : channels)
            args.push_back(c);
        append_command(out, args);
        channels.clear();
    }

    phase phase_ = phase::down;
    bool was_ready_ = false;
    std::unordered_set<std::string> desired_;
    std::unordered_set<std::string> to_subscribe_, to_unsubscribe_; // this turn's changes
    std::deque<done_handler> pings_;          // awaiting a pong, in order
    std::size_t pings_unsent_ = 0;
    std::string handshake_bytes_;
    std::size_t handshake_left_ = 0;
    std::size_t server_channels_ = 0;
    message_fn on_message_;
    std::uint64_t received_ = 0, resubscribed_ = 0, errors_ = 0;
    std::uint64_t probes_sent_ = 0, probes_answered_ = 0;
    std::string last_error_;
};

} // namespace backplane::redis::detail

#endif
