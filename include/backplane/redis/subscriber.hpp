// backplane/redis/subscriber.hpp - a Redis connection in subscribe mode.
//
//   redis::subscriber sub(io.get_executor(), redis::parse_url("redis://127.0.0.1:6379"));
//   sub.set_message_handler([](std::string_view channel, std::string_view data) { ... });
//   sub.subscribe("chat:global");
//
// One connection carries every channel. The subscriber remembers the set of
// channels it was asked for, so a channel is never subscribed twice, the
// changes of one turn of the event loop go out as one SUBSCRIBE and one
// UNSUBSCRIBE, and after a reconnect every channel is subscribed again. The
// liveness probe (PING, connection_options::ping_interval/ping_timeout)
// closes a connection whose server stopped answering.
//
// pubsub_mode::sharded speaks Redis Cluster's sharded Pub/Sub (SSUBSCRIBE)
// to one node: channels the node refuses or gives up (a slot that moved)
// leave the set and go to the dropped handler, for the owner to subscribe
// them on the node that serves them now (broker/redis_sharded.hpp).
//
// Thread safety: none. Use an object and its handlers on its executor.
#ifndef BACKPLANE_REDIS_SUBSCRIBER_HPP
#define BACKPLANE_REDIS_SUBSCRIBER_HPP

#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/detail/link.hpp>
#include <backplane/redis/detail/subscriber_fsm.hpp>
#include <backplane/redis/options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

namespace backplane::redis {

/// Counters of a subscriber connection. They only grow.
struct subscriber_stats {
    connection_stats connection;    ///< connects, reconnects, probe timeouts...
    std::uint64_t received = 0;     ///< messages handed to the handler
    std::uint64_t resubscribed = 0; ///< channels subscribed again after reconnects
    std::uint64_t errors = 0;       ///< error replies in subscribe mode
};

/// SUBSCRIBE, or Redis Cluster's SSUBSCRIBE.
enum class pubsub_mode { classic, sharded };

/// A subscriber connection. Moving it keeps the connection; the destructor
/// stops it.
class subscriber {
public:
    /// Called once per message with the channel and the data; the views are
    /// valid during the call only.
    using message_handler = detail::subscriber_fsm::message_fn;
    /// Sharded: called with channels the node no longer holds (already out
    /// of the set) and why: its error reply ("MOVED 3300 10.0.0.2:6379"), or
    /// empty when it ended them itself (it lost their slot).
    using dropped_handler = detail::subscriber_fsm::dropped_fn;

    /// Starts connecting at once.
    subscriber(asio::any_io_executor ex, config cfg, connection_options options = {},
               pubsub_mode mode = pubsub_mode::classic)
    {
        link_ = std::make_shared<link_type>(ex, std::move(cfg), std::move(options),
                                            detail::subscriber_fsm(mode == pubsub_mode::sharded));
        link_->on_lost = [ex](detail::subscriber_fsm::failed_list&& failed) { fail_later(ex, std::move(failed), error::connection_lost); };
        link_->start();
    }

    subscriber(subscriber&&) noexcept = default;
    subscriber& operator=(subscriber&& other) noexcept
    {
        if (this != &other) {
            stop();
            link_ = std::move(other.link_);
        }
        return *this;
    }
    ~subscriber() { stop(); }

    /// Sets the handler for every message; empty: messages are dropped.
    void set_message_handler(message_handler h) { link_->fsm.set_message_handler(std::move(h)); }

    /// Sets the handler for dropped channels (sharded); empty: none.
    void set_dropped_handler(dropped_handler h) { link_->fsm.set_dropped_handler(std::move(h)); }

    /// Sets a handler called each time a connection becomes ready, the first
    /// included, on the executor; empty: none. Its SUBSCRIBE of every channel
    /// is queued by then, so a ping() issued from the handler is answered
    /// once every channel is subscribed again (a broker that keeps history
    /// resumes from there what it missed while disconnected).
    void set_ready_handler(std::function<void()> h) { link_->on_ready_fn = std::move(h); }

    /// Adds `channel` to the subscribed set; subscribing twice does nothing.
    void subscribe(std::string_view channel)
    {
        link_->fsm.subscribe(channel);
        link_->flush_soon();
    }

    /// Removes `channel` from the subscribed set; unknown channels are ignored.
    void unsubscribe(std::string_view channel)
    {
        link_->fsm.unsubscribe(channel);
        link_->flush_soon();
    }

    /// Calls `done({})` once every change and PING written before has been
    /// answered, hence every message published before those answers has
    /// been handed to the handler; or `done(ec)` if the connection is not
    /// ready (error::not_connected) or is lost first. Always later, on the
    /// executor.
    void ping(done_handler done)
    {
        if (link_->fsm.ping(done) == 0) {
            detail::subscriber_fsm::failed_list one;
            one.push_back(std::move(done));
            return fail_later(link_->get_executor(), std::move(one), error::not_connected);
        }
        link_->flush_soon();
    }

    /// Closes the connection; the channel set is kept but nothing happens any more.
    void stop()
    {
        if (!link_)
            return;
        link_->stop();
        fail_later(link_->get_executor(), link_->fsm.connection_lost(), error::operation_aborted);
    }

    connection_state state() const noexcept { return link_->state(); }
    /// Whether `channel` is in the subscribed set (whatever the connection's state).
    bool subscribed(std::string_view channel) const { return link_->fsm.wants(channel); }
    /// Channels in the subscribed set.
    std::size_t channel_count() const noexcept { return link_->fsm.channel_count(); }
    subscriber_stats stats() const noexcept
    {
        return {link_->stats(), link_->fsm.received(), link_->fsm.resubscribed(), link_->fsm.errors()};
    }
    std::error_code last_error() const noexcept { return link_->last_error(); }
    const std::string& server_error() const noexcept { return link_->fsm.last_error(); }
    const asio::any_io_executor& get_executor() const noexcept { return link_->get_executor(); }

private:
    using link_type = detail::link<detail::subscriber_fsm>;

    static void fail_later(const asio::any_io_executor& ex, detail::subscriber_fsm::failed_list failed,
                           std::error_code ec)
    {
        if (failed.empty())
            return;
        asio::post(ex, [failed = std::move(failed), ec] {
            for (const auto& done : failed)
                if (done)
                    done(ec);
        });
    }

    std::shared_ptr<link_type> link_;
};

} // namespace backplane::redis

#endif
