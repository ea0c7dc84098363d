// backplane/broker/redis_pubsub.hpp - hubs in several processes, one Redis.
//
//   basic_hub<transport::memory, broker::redis_pubsub> hub(
//       {}, broker::redis_pubsub(io.get_executor(), "redis://127.0.0.1:6379"));
//
// Each broker holds two connections, whatever the number of WebSocket
// clients of its hub: a command connection that PUBLISHes (pipelined), and
// a subscriber connection that holds every channel the hub needs. Hubs in
// several processes on one Redis behave as hubs on one broker::memory_bus in
// one process, with Redis Pub/Sub's delivery: at most once, and nothing is
// kept for a hub that is disconnected at the time of a publish.
//
// A Broker (backplane/policies.hpp) that keeps messages for offline users
// (store_offline, read_offline, remove_offline: the inbox of redis/inbox.hpp), for the hub's
// direct messages routed through the user's host when the user is offline; an
// inbox expires idle_expiry after its last write, so those of users who never
// connect (made-up names) do not stay in Redis. It adds: a subscribed channel
// stays subscribed across reconnects (every channel is subscribed again on
// each new connection); `done` gets error::queue_full when the publisher's
// queue is full (Redis down or too slow), error::connection_lost when the
// connection died before the reply, error::server_error on an error reply;
// messages published while the subscriber is disconnected are lost, as Pub/Sub
// loses them.
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_BROKER_REDIS_PUBSUB_HPP
#define BACKPLANE_BROKER_REDIS_PUBSUB_HPP

#include <backplane/detail/name_pattern.hpp>
#include <backplane/policies.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/inbox.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/script.hpp>
#include <backplane/redis/subscriber.hpp>

#include <asio/post.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace backplane::broker {

/// Settings of a redis_pubsub broker.
struct redis_pubsub_options {
    /// Settings of both connections (timeouts, backoff, probe, queue bound).
    /// Their client_name is replaced by the one below.
    redis::connection_options connection;
    /// Prefix of the names the connections give themselves in CLIENT LIST:
    /// "{client_name}:pub" and "{client_name}:sub"; empty: no names.
    std::string client_name;
    /// Where messages for offline users are kept.
    redis::inbox::options inbox;
    /// An inbox nothing was written to for this long is deleted by Redis
    /// (EXPIRE, set again by each write, in the same script); zero: never.
    /// A week, as redis_streams_options::idle_expiry, and for the same
    /// reasons: a user away over a weekend still finds their messages, and
    /// the inboxes of made-up users do not stay.
    std::chrono::seconds idle_expiry = std::chrono::hours(24 * 7);
};

/// Counters of a redis_pubsub broker. They only grow.
struct redis_pubsub_stats {
    std::uint64_t published = 0;       ///< publishes handed to the broker
    std::uint64_t publish_errors = 0;  ///< of those, failed (queue full, lost, error reply)
    std::uint64_t received = 0;        ///< messages handed to the hub
    std::uint64_t reconnects = 0;      ///< of both connections, after their first connect
    std::uint64_t resubscribed = 0;    ///< channels subscribed again after reconnects
    std::uint64_t probe_timeouts = 0;  ///< connections closed by the liveness probe
    std::uint64_t inboxed = 0;         ///< messages kept for offline users
    std::uint64_t inbox_delivered = 0; ///< of those, removed once written to a connection
    std::uint64_t unknown = 0;         ///< messages not kept: for a user not known (inbox.known_key)
};

/// The Redis Pub/Sub broker policy. Movable; the destructor closes both
/// connections.
class redis_pubsub {
public:
    /// Starts connecting both connections at once.
    /// @param ex the executor of the hub that owns this broker.
    /// @throws std::invalid_argument on an inbox or known key that lacks "{user}", or
    /// an idle_expiry below zero or above ten years (0 is never).
    redis_pubsub(asio::any_io_executor ex, redis::config server, redis_pubsub_options options = {})
        : executor_(ex),
          publisher_(ex, server, named(options, ":pub")),
          subscriber_(ex, server, named(options, ":sub")),
          inbox_(options.inbox.key, "{user}"),
          inbox_options_(std::move(options.inbox)),
          known_(inbox_options_.known_key.empty()
                     ? std::nullopt
                     : std::optional<backplane::detail::name_pattern>(std::in_place, inbox_options_.known_key,
                                                                      "{user}")),
          expiry_(redis::expiry_argument(options.idle_expiry)),
          counts_(std::make_shared<offline_counts>())
    {
        store_.load(publisher_);
        remove_.load(publisher_);
    }

    /// As above, with the server read from a URL.
    /// @throws std::invalid_argument on a malformed URL.
    redis_pubsub(asio::any_io_executor ex, std::string_view url, redis_pubsub_options options = {})
        : redis_pubsub(std::move(ex), redis::parse_url(url), std::move(options))
    {
    }

    redis_pubsub(redis_pubsub&&) noexcept = default;
    redis_pubsub& operator=(redis_pubsub&&) = delete;

    const asio::any_io_executor& get_executor() const noexcept { return executor_; }

    void set_message_handler(backplane::message_handler h)
    {
        if (!h)
            return subscriber_.set_message_handler(nullptr);
        subscriber_.set_message_handler(
            [h = std::move(h)](std::string_view channel, std::string_view data) { h(channel, {}, data); });
    }

    void subscribe(std::string_view channel) { subscriber_.subscribe(channel); }

    void unsubscribe(std::string_view channel) { subscriber_.unsubscribe(channel); }

    void publish(std::string_view channel, std::string_view data, backplane::publish_handler done = {})
    {
        ++published_;
        publisher_.publish(channel, data, std::move(done));
    }

    /// Keeps `data` for `user`: appended to the user's inbox, whose expiry
    /// starts again; with inbox.known_key, only for a user marked known.
    void store_offline(std::string_view user, std::string_view data, backplane::publish_handler done = {})
    {
        std::vector<std::string> args{known_ ? "2" : "1", inbox_.name(user)};
        if (known_)
            args.push_back(known_->name(user));
        args.insert(args.end(), {std::to_string(inbox_options_.max_length), expiry_, std::string(data)});
        store_.run(publisher_, std::move(args),
                   [counts = counts_, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                       if (!ec && r.type == redis::reply::kind::nil)
                           ++counts->unknown;
                       else
                           counts->inboxed += !ec;
                       if (done)
                           done(ec);
                   });
    }

    /// Marks `user` known (with inbox.known_key; otherwise does nothing):
    /// messages are kept for it until idle_expiry after the last mark.
    void mark_known(std::string_view user)
    {
        if (known_)
            publisher_.execute(redis::inbox::mark_command(known_->name(user), expiry_),
                               [](std::error_code, const redis::reply&) {});
    }

    /// Reads at most `count` entries of `user`'s inbox after the entry
    /// `after` (empty: from the first). A read from the first entry, if
    /// `channel` is subscribed, waits until the subscription is in effect,
    /// so that a message is either in the inbox or received live.
    void read_offline(std::string_view user, std::string_view channel, std::string_view after, std::size_t count,
                      backplane::offline_handler done)
    {
        auto read = [this, alive = std::weak_ptr<offline_counts>(counts_),
                     args = redis::inbox::read_command(inbox_.name(user), after, count),
                     done = std::move(done)](std::error_code) mutable {
            if (alive.expired())
                return;
            publisher_.execute(args, [done = std::move(done)](std::error_code ec, const redis::reply& r) {
                done(ec, ec ? std::vector<offline_message>{} : redis::inbox::entries(r));
            });
        };
        if (after.empty() && subscriber_.subscribed(channel))
            return subscriber_.ping(std::move(read)); // failed or not, the read follows
        asio::post(executor_, [read = std::move(read)]() mutable { read({}); });
    }

    /// Removes `entries` from `user`'s inbox, and the inbox once empty.
    void remove_offline(std::string_view user, std::vector<std::string> entries, backplane::publish_handler done = {})
    {
        entries.insert(entries.begin(), {"1", inbox_.name(user)});
        remove_.run(publisher_, std::move(entries),
                    [counts = counts_, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                        if (!ec && r.integer > 0)
                            counts->inbox_delivered += std::uint64_t(r.integer);
                        if (done)
                            done(ec);
                    });
    }

    /// Whether both connections are ready.
    bool connected() const noexcept
    {
        return publisher_.state() == redis::connection_state::ready
               && subscriber_.state() == redis::connection_state::ready;
    }
    redis::connection_state publisher_state() const noexcept { return publisher_.state(); }
    redis::connection_state subscriber_state() const noexcept { return subscriber_.state(); }

    redis_pubsub_stats stats() const noexcept
    {
        const auto p = publisher_.stats();
        const auto s = subscriber_.stats();
        return {published_,
                p.failed,
                s.received,
                p.connection.reconnects + s.connection.reconnects,
                s.resubscribed,
                p.connection.probe_timeouts + s.connection.probe_timeouts,
                counts_->inboxed,
                counts_->inbox_delivered,
                counts_->unknown};
    }

    /// The two connections, for what the broker does not wrap (PING barriers,
    /// diagnostics). Do not subscribe through the subscriber behind the hub's back.
    redis::connection& publisher() noexcept { return publisher_; }
    redis::subscriber& subscriber() noexcept { return subscriber_; }

private:
    static redis::connection_options named(const redis_pubsub_options& o, const char* suffix)
    {
        auto c = o.connection;
        c.client_name = o.client_name.empty() ? std::string() : o.client_name + suffix;
        return c;
    }

    // Shared with the handlers of the inbox's commands, which may outlive a move.
    struct offline_counts {
        std::uint64_t inboxed = 0;
        std::uint64_t inbox_delivered = 0;
        std::uint64_t unknown = 0;
    };

    asio::any_io_executor executor_;
    redis::connection publisher_;
    redis::subscriber subscriber_;
    backplane::detail::name_pattern inbox_;
    redis::inbox::options inbox_options_;
    std::optional<backplane::detail::name_pattern> known_; // inbox.known_key, if set
    std::string expiry_; // idle_expiry, as the script takes it
    redis::script store_{redis::inbox::store_script};
    redis::script remove_{redis::inbox::remove_script};
    std::shared_ptr<offline_counts> counts_;
    std::uint64_t published_ = 0;
};

static_assert(is_broker_v<redis_pubsub> && has_offline_messages_v<redis_pubsub>,
              "redis_pubsub must satisfy the Broker requirements, with offline messages");

} // namespace backplane::broker

#endif
