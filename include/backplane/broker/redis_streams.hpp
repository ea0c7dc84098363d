// backplane/broker/redis_streams.hpp - hubs on one Redis, with history.
//
//   basic_hub<transport::memory, broker::redis_streams> hub(
//       {}, broker::redis_streams(io.get_executor(), "redis://127.0.0.1:6379"));
//
// Every channel has a stream (`stream:{channel}`, trimmed to about
// max_length entries, and deleted by Redis once no message was added for
// idle_expiry). A publish runs one Lua script that XADDs the message, sets
// the expiry and PUBLISHes "id data" on the channel, atomically: the live
// order is the stream's id order on every subscriber, and the stream id is
// the message id the hub hands to its clients. Each broker holds two
// connections, whatever the number of clients: a command connection
// (publishes, reads) and a subscriber connection that holds every channel
// its hub needs.
//
// A Broker (backplane/policies.hpp) with the optional history and offline
// messages. What it adds to Pub/Sub:
// - resume: it remembers, per channel, the last id it delivered. When its
//   subscriber connection is back (after a network fault, CLIENT KILL, a
//   server restart), it resubscribes, waits for the confirmation, then
//   reads each stream after that id in pages (never an unbounded XRANGE);
//   the live messages of that channel meanwhile are in the stream too, and
//   the seam between the two is detail/catch_up.hpp's. The hub sees every
//   message once, in order. If the id was trimmed meanwhile, or the stream
//   expired, what is left is delivered and the gap counted (stats().gaps).
//   A channel that had delivered nothing yet when the connection dropped
//   has nothing to resume from.
// - history() is read only once the channel's subscription is confirmed by
//   the server: what it does not return arrives live.
// - offline inbox (redis/inbox.hpp): a direct message (publish_direct) that
//   no subscriber anywhere received is also appended to the user's inbox in
//   the same script, so "nobody received it" and "it went to the inbox" are
//   one fact; read_offline() reads it a page at a time, remove_offline()
//   removes a page once the hub has written it to a connection.
// - every key it writes (the streams, the inboxes) expires idle_expiry after
//   its last write, so nothing it keeps in Redis grows without a bound: not
//   the streams of rooms nobody uses any more, nor those and the inboxes of
//   users who never connect (any name can be sent a direct message; nothing
//   here can tell a made-up user from one who is offline).
// - a publish that fails with error::connection_lost may or may not have
//   been stored; it is not retried (no duplicates).
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_BROKER_REDIS_STREAMS_HPP
#define BACKPLANE_BROKER_REDIS_STREAMS_HPP

#include <backplane/detail/catch_up.hpp>
#include <backplane/detail/name_pattern.hpp>
#include <backplane/error.hpp>
#include <backplane/policies.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/inbox.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/reply.hpp>
#include <backplane/redis/script.hpp>
#include <backplane/redis/subscriber.hpp>
#include <backplane/stream_id.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backplane::broker {

/// Settings of a redis_streams broker.
struct redis_streams_options {
    /// Settings of both connections; their client_name is replaced below.
    redis::connection_options connection;
    /// Prefix of the connections' names in CLIENT LIST: "{client_name}:pub"
    /// and "{client_name}:sub"; empty: no names.
    std::string client_name;
    /// A channel's stream key; "{channel}" is replaced by the channel.
    std::string stream_key = "stream:{channel}";
    /// Entries kept per stream (XADD MAXLEN).
    std::size_t max_length = 1000;
    /// Trim with "MAXLEN ~" (whole nodes, cheap; a stream may keep up to a
    /// node more); false: exact trimming.
    bool approximate_trim = true;
    /// Where direct messages nobody received are kept for their user.
    redis::inbox::options inbox;
    /// A stream or inbox that nothing was written to for this long is
    /// deleted by Redis (EXPIRE, set again by each write, in the same
    /// script); zero: never. It bounds what the keys of made-up users and
    /// abandoned rooms cost. A week, so that a user away over a weekend or a
    /// short holiday still finds the direct messages kept for them, and a
    /// client back after such a stay still resumes; a client that resumes a
    /// channel idle for longer is told it was not recovered (a gap). One
    /// expiry for both kinds of key: an inbox expires no later than the user
    /// stream its entries' ids point into (each write to it writes there too).
    std::chrono::seconds idle_expiry = std::chrono::hours(24 * 7);
    /// Entries read per page when a channel resumes after a reconnect.
    std::size_t resume_page = 500;
    /// Wait before a failed resume read is sent again.
    std::chrono::milliseconds retry_delay{50};
};

/// Counters of a redis_streams broker, for metrics. They only grow.
struct redis_streams_stats {
    std::uint64_t published = 0;       ///< publishes handed to the broker
    std::uint64_t publish_errors = 0;  ///< of those, failed (queue full, lost, error reply)
    std::uint64_t inboxed = 0;         ///< of those, kept in an offline inbox
    std::uint64_t received = 0;        ///< live messages handed to the hub
    std::uint64_t duplicates = 0;      ///< live messages dropped, already delivered
    std::uint64_t resumes = 0;         ///< channels read again after a reconnect
    std::uint64_t resumed = 0;         ///< entries handed to the hub by those reads
    std::uint64_t gaps = 0;            ///< resumes whose last id was trimmed or lost
    std::uint64_t history_reads = 0;   ///< history pages read for the hub
    std::uint64_t inbox_delivered = 0; ///< inbox entries removed once written to a connection
    std::uint64_t unknown = 0;         ///< direct messages dropped: for a user not known (inbox.known_key)
    std::uint64_t reconnects = 0;      ///< of both connections, after their first connect
    std::uint64_t resubscribed = 0;    ///< channels subscribed again after reconnects
    std::uint64_t probe_timeouts = 0;  ///< connections closed by the liveness probe
};

namespace detail {
struct streams_state;
} // namespace detail

class redis_sharded_streams;

/// The Redis Streams broker policy. Movable; the destructor closes both
/// connections, and no handler is called after it.
class redis_streams {
public:
    /// Starts connecting both connections at once.
    /// @param ex the executor of the hub that owns this broker.
    /// @throws std::invalid_argument on a key pattern that lacks its
    /// placeholder, a zero max_length or resume_page, or an idle_expiry
    /// below zero or above ten years (0 is never).
    redis_streams(asio::any_io_executor ex, redis::config server, redis_streams_options options = {})
        : redis_streams(std::move(ex), std::move(server), std::move(options), redis::pubsub_mode::classic)
    {
    }

    /// As above, with the server read from a URL.
    /// @throws std::invalid_argument on a malformed URL.
    redis_streams(asio::any_io_executor ex, std::string_view url, redis_streams_options options = {})
        : redis_streams(std::move(ex), redis::parse_url(url), std::move(options))
    {
    }

    redis_streams(redis_streams&&) noexcept = default;
    redis_streams& operator=(redis_streams&&) = delete;
    ~redis_streams();

    const asio::any_io_executor& get_executor() const noexcept;
    void set_message_handler(message_handler h);
    void subscribe(std::string_view channel);
    void unsubscribe(std::string_view channel);

    /// Appends `data` to the channel's stream and publishes it, in one script.
    void publish(std::string_view channel, std::string_view data, publish_handler done = {});

    /// As publish(), and if no subscriber received it, appends it to
    /// `user`'s inbox in the same script.
    void publish_direct(std::string_view channel, std::string_view user, std::string_view data,
                        publish_handler done = {});

    /// Appends `data` to `user`'s inbox.
    void store_offline(std::string_view user, std::string_view data, publish_handler done = {});

    /// Reads at most `count` entries of `user`'s inbox after the entry
    /// `after` (empty: from the first, once `channel`'s subscription is
    /// confirmed if it is subscribed). A message that publish_direct kept is
    /// `replayable`: its id is its id in the user channel's stream.
    void read_offline(std::string_view user, std::string_view channel, std::string_view after, std::size_t count,
                      offline_handler done);

    /// Marks `user` known (with inbox.known_key; otherwise does nothing):
    /// direct messages are kept for it until idle_expiry after the last
    /// mark, and those to a user not known are neither written nor published.
    void mark_known(std::string_view user);

    /// Removes `entries` from `user`'s inbox, and the inbox once empty.
    void remove_offline(std::string_view user, std::vector<std::string> entries, publish_handler done = {});

    /// Reads at most `count` entries of `channel` after the id `after`; see
    /// backplane/policies.hpp.
    void history(std::string_view channel, std::string_view after, std::size_t count, history_handler done);

    /// Whether both connections are ready.
    bool connected() const noexcept;
    /// Whether the broker is up to date on every channel: no resume under way.
    bool resumed() const noexcept;
    /// The last id handed to the hub on `channel`; empty if none.
    std::string last_id(std::string_view channel) const;
    /// The stream key of `channel`.
    std::string stream_key(std::string_view channel) const;

    redis_streams_stats stats() const noexcept;

    /// The two connections, for what the broker does not wrap (PING barriers,
    /// diagnostics). Do not subscribe through the subscriber behind the hub's back.
    redis::connection& publisher() noexcept;
    redis::subscriber& subscriber() noexcept;

private:
    friend class redis_sharded_streams; // a broker per master of a cluster

    redis_streams(asio::any_io_executor ex, const redis::config& server, redis_streams_options options,
                  redis::pubsub_mode mode);

    std::shared_ptr<detail::streams_state> state_;
};

} // namespace backplane::broker

#include <backplane/broker/impl/redis_streams.hpp>

#endif
