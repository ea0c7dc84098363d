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
// "unsubscribe", "pong" (a connection that holds no channel answers PING
// with +PONG); an error reply is counted and otherwise ignored.
//
// Sharded (Redis Cluster's SSUBSCRIBE, SUNSUBSCRIBE, "smessage"), it differs
// where the cluster makes it: a command may only name channels of one slot,
// so a turn's changes go out as one command per slot; a node refuses a slot
// it does not serve ("MOVED <slot> <host>:<port>"); and a node that loses a
// slot (a migration, a failover) ends its subscriptions with a "sunsubscribe"
// nobody asked for. In both cases the channels leave the desired set and go
// to the dropped handler, with the error text or an empty reason, for the
// owner to subscribe them where they now live. Which command a reply answers
// is known by their order.
#ifndef BACKPLANE_REDIS_DETAIL_SUBSCRIBER_FSM_HPP
#define BACKPLANE_REDIS_DETAIL_SUBSCRIBER_FSM_HPP

#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/detail/command_fsm.hpp>
#include <backplane/redis/detail/resp.hpp>
#include <backplane/redis/slot.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
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
    /// Called with channels the server no longer holds, already out of the
    /// desired set, and why: an error reply's text, or empty for a
    /// "sunsubscribe" nobody asked for. Sharded only.
    using dropped_fn = std::function<void(std::vector<std::string>&&, std::string_view)>;
    using failed_list = std::vector<done_handler>;

    /// @param sharded SSUBSCRIBE and SUNSUBSCRIBE (Redis Cluster), not SUBSCRIBE.
    explicit subscriber_fsm(bool sharded = false) : sharded_(sharded) {}

    void set_message_handler(message_fn fn) { on_message_ = std::move(fn); }
    void set_dropped_handler(dropped_fn fn) { on_dropped_ = std::move(fn); }

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
        append_batch(out, false, to_subscribe_);
        append_batch(out, true, to_unsubscribe_);
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
            refused();
            return {};
        }
        if (r.type == REDIS_REPLY_STATUS && view_of(r) == "PONG")
            return answered_ping();
        if (r.type != REDIS_REPLY_ARRAY || r.elements < 2 || r.element[0]->type != REDIS_REPLY_STRING)
            return error::protocol_error;
        const std::string_view kind = view_of(*r.element[0]);
        if ((kind == "message" || kind == "smessage") && r.elements == 3) {
            ++received_;
            if (on_message_)
                on_message_(view_of(*r.element[1]), view_of(*r.element[2]));
        } else if (kind == "pong") {
            return answered_ping();
        } else if ((kind == "subscribe" || kind == "ssubscribe") && r.elements == 3) {
            server_channels_ = static_cast<std::size_t>(r.element[2]->integer);
            confirmed(false, {});
        } else if ((kind == "unsubscribe" || kind == "sunsubscribe") && r.elements == 3) {
            server_channels_ = static_cast<std::size_t>(r.element[2]->integer);
            const std::string_view channel = view_of(*r.element[1]);
            if (!confirmed(true, channel))
                ended_by_server(channel);
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
        awaiting_.clear();
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

    // A command sent and not yet answered whole: its channels, the next
    // first (a reply names one channel each, in the command's order).
    struct sent {
        bool unsubscribe = false;
        std::deque<std::string> channels;
    };

    // One command for every channel (one per slot, sharded), each remembered
    // until its replies come back.
    void append_batch(std::string& out, bool unsubscribe, std::unordered_set<std::string>& channels)
    {
        if (channels.empty())
            return;
        const std::string_view command = sharded_ ? (unsubscribe ? "SUNSUBSCRIBE" : "SSUBSCRIBE")
                                                  : (unsubscribe ? "UNSUBSCRIBE" : "SUBSCRIBE");
        std::map<std::uint16_t, std::vector<std::string_view>> by_slot;
        for (const auto& c : channels)
            by_slot[sharded_ ? hash_slot(c) : 0].push_back(c);
        for (auto& [slot, names] : by_slot) {
            sent s{unsubscribe, std::deque<std::string>(names.begin(), names.end())};
            names.insert(names.begin(), command);
            append_command(out, names);
            awaiting_.push_back(std::move(s));
        }
        channels.clear();
    }

    std::error_code answered_ping()
    {
        if (pings_.empty())
            return error::protocol_error;
        auto done = std::move(pings_.front());
        pings_.pop_front();
        ++probes_answered_;
        if (done)
            done({});
        return {};
    }

    // A confirmation of the oldest command: true if it answers it (for an
    // unsubscribe, if it names the channel that command named next).
    bool confirmed(bool unsubscribe, std::string_view channel)
    {
        if (awaiting_.empty() || awaiting_.front().unsubscribe != unsubscribe)
            return false;
        auto& names = awaiting_.front().channels;
        if (unsubscribe && (names.empty() || names.front() != channel))
            return false;
        if (!names.empty())
            names.pop_front();
        if (names.empty())
            awaiting_.pop_front();
        return true;
    }

    // An error reply answers the oldest command whole: a refused subscribe
    // leaves its channels unsubscribed (sharded: MOVED, CLUSTERDOWN...).
    void refused()
    {
        if (awaiting_.empty())
            return;
        sent s = std::move(awaiting_.front());
        awaiting_.pop_front();
        if (!sharded_ || s.unsubscribe)
            return;
        std::vector<std::string> lost;
        for (auto& c : s.channels)
            if (desired_.erase(c) != 0) {
                to_subscribe_.erase(c);
                lost.push_back(std::move(c));
            }
        if (!lost.empty() && on_dropped_)
            on_dropped_(std::move(lost), last_error_);
    }

    // A "sunsubscribe" nobody asked for: the node no longer serves the slot.
    void ended_by_server(std::string_view channel)
    {
        if (!sharded_)
            return;
        auto it = desired_.find(std::string(channel));
        if (it == desired_.end())
            return;
        std::vector<std::string> lost{*it};
        to_subscribe_.erase(*it);
        desired_.erase(it);
        if (on_dropped_)
            on_dropped_(std::move(lost), {});
    }

    bool sharded_ = false;
    phase phase_ = phase::down;
    bool was_ready_ = false;
    std::unordered_set<std::string> desired_;
    std::unordered_set<std::string> to_subscribe_, to_unsubscribe_; // this turn's changes
    std::deque<sent> awaiting_;               // subscription commands not yet answered, in order
    std::deque<done_handler> pings_;          // awaiting a pong, in order
    std::size_t pings_unsent_ = 0;
    std::string handshake_bytes_;
    std::size_t handshake_left_ = 0;
    std::size_t server_channels_ = 0;
    message_fn on_message_;
    dropped_fn on_dropped_;
    std::uint64_t received_ = 0, resubscribed_ = 0, errors_ = 0;
    std::uint64_t probes_sent_ = 0, probes_answered_ = 0;
    std::string last_error_;
};

} // namespace backplane::redis::detail

#endif
