// backplane/locator/redis_presence.hpp - which instance hosts each user, in
// Redis, kept alive by heartbeats: the Locator of hubs in several processes.
//
//   basic_hub<transport::websocketpp, broker::redis_pubsub, locator::redis_presence> hub(
//       ws, broker::redis_pubsub(ex, url), locator::redis_presence(ex, url), options);
//
// The hub tells it when a user's first local connection opens and when the
// last one closes, and asks it where a user is (the seed design's Option B,
// and the `where` and `online` of an application); the contract is in
// backplane/policies.hpp.
//
// The map lives in one Redis (key names in redis_presence_options):
//   HSET user:host {user} {instance}   which instance hosts the user
//   SET user:alive:{user} 1 PX ttl     the entry is alive while this key is
// One presence per instance keeps its own users' entries: a single timer
// refreshes all of them every heartbeat_interval, in one pipelined write of
// a few script calls (refresh_batch users each), not one timer or one
// command per user.
//
// An entry disappears
// - at once when the user's last local connection closes (user_offline): a
//   script deletes it only if it still names this instance, so a user who
//   already reconnected elsewhere keeps the new entry;
// - after an instance crash, within ttl of its last heartbeat: the alive
//   keys expire, and every live presence hears it from the keyevent channel
//   `__keyevent@{db}__:expired` and deletes the entry if its alive key is
//   still absent (a user who came back meanwhile is kept). This needs
//   `notify-keyspace-events` to hold `E` and `x` (or `A`): the presence adds
//   them with CONFIG SET (configure_notifications) where the server allows
//   it; otherwise the operator must set `notify-keyspace-events Ex`;
// - in any case, by the periodic sweep (sweep_interval): HSCAN of the hash
//   in batches of sweep_batch, each batch one script that deletes the
//   entries whose alive key is gone. It covers servers without
//   notifications, and the expiries no presence was subscribed to hear.
// A user entry is claimed by user_online (the newest connection wins); a
// heartbeat refreshes only the entries that name this instance, and claims
// those that are absent. A user with connections on two instances is mapped
// to one of them; when that one's last connection closes, the other claims
// the entry again at its next heartbeat.
//
// Every decision that reads and writes the map is one Lua script, so it is
// atomic on the server; the scripts are sent as EVALSHA once SCRIPT LOAD has
// answered, and again as EVAL if the server forgot them (a restart). The
// keys a script touches are all named by the options, in one database of
// one server: the map is not meant for Redis Cluster.
//
// Thread safety: none. Use the object and its handlers on its executor (the
// hub's). Handlers given to queries are called once, later, on the executor;
// with error::operation_aborted if the presence is stopped or destroyed first.
#ifndef BACKPLANE_LOCATOR_REDIS_PRESENCE_HPP
#define BACKPLANE_LOCATOR_REDIS_PRESENCE_HPP

#include <backplane/policies.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/subscriber.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace backplane::locator {

/// Settings of a redis_presence. The defaults are the seed design's.
struct redis_presence_options {
    /// The hash of user -> instance.
    std::string host_key = "user:host";
    /// A user's liveness key; "{user}" is replaced by the user's name.
    std::string alive_key = "user:alive:{user}";
    /// How often this instance refreshes its users' entries.
    std::chrono::milliseconds heartbeat_interval{30000};
    /// How long an entry lives without a refresh: a crashed instance's users
    /// are gone this long after its last heartbeat. Must exceed
    /// heartbeat_interval (by a round trip to Redis at least).
    std::chrono::milliseconds ttl{60000};
    /// Listen to the expiry of alive keys (keyspace notifications) and delete
    /// the entries of crashed instances at once.
    bool listen_expirations = true;
    /// Add `Ex` to the server's notify-keyspace-events with CONFIG SET if it
    /// lacks them (with listen_expirations). A server that refuses (a managed
    /// Redis, an ACL) leaves it to the operator; see notifications_error().
    bool configure_notifications = true;
    /// How often the whole map is swept for entries whose alive key is gone;
    /// zero: never. Without notifications, ghosts last up to ttl + this.
    std::chrono::milliseconds sweep_interval{60000};
    /// Hash fields looked at per sweep script (HSCAN COUNT): bounds the time
    /// one script holds the server.
    std::size_t sweep_batch = 200;
    /// Users refreshed per script call of a heartbeat.
    std::size_t refresh_batch = 500;
    /// Settings of the command and notification connections; their client
    /// names are "{client_name}:presence" and "{client_name}:expired".
    redis::connection_options connection;
    /// Prefix of the connections' names in CLIENT LIST; empty: no names.
    std::string client_name;
};

/// Counters of a redis_presence. They only grow.
struct redis_presence_stats {
    std::uint64_t heartbeats = 0;        ///< refresh rounds sent (one write each)
    std::uint64_t refreshed = 0;         ///< entries refreshed or claimed by them
    std::uint64_t expirations = 0;       ///< expiries of alive keys heard
    std::uint64_t cleaned_by_notification = 0; ///< entries deleted after an expiry
    std::uint64_t sweeps = 0;            ///< full sweep passes done
    std::uint64_t cleaned_by_sweep = 0;  ///< entries deleted by sweeps
    std::uint64_t errors = 0;            ///< commands that failed
};

/// Called with the number of entries a sweep deleted.
using sweep_handler = std::function<void(std::error_code, std::size_t removed)>;

namespace detail {
class presence_state;
} // namespace detail

/// The user -> instance map of one instance, in Redis. Movable (its state
/// stays where it is); the destructor stops it, leaving the entries to expire.
class redis_presence {
public:
    /// Connects at once and starts the heartbeat, the sweep and the expiry
    /// listener; the hub gives it the instance id (set_instance) before any user.
    /// @throws std::invalid_argument if a key pattern lacks "{user}", ttl
    /// does not exceed heartbeat_interval, or a batch size is zero.
    redis_presence(asio::any_io_executor ex, redis::config server, redis_presence_options options = {});

    /// As above, with the server read from a URL.
    /// @throws std::invalid_argument on a malformed URL, and as above.
    redis_presence(asio::any_io_executor ex, std::string_view url, redis_presence_options options = {});

    redis_presence(redis_presence&&) noexcept;
    redis_presence& operator=(redis_presence&&) noexcept;
    ~redis_presence();

    /// This instance's id: the hub's.
    void set_instance(std::string_view id);
    /// The user's first local connection opened: the entry names this
    /// instance from now on (it takes over from any other), and this
    /// instance's heartbeats keep it alive. Invalid names are ignored.
    void user_online(std::string_view user);
    /// The user's last local connection closed: the entry is deleted now if
    /// it still names this instance, and kept if it names another.
    void user_offline(std::string_view user);
    /// Calls `done(ec, instance)` with the instance hosting `user`, or an
    /// empty instance if the user is offline (no entry, or a ghost whose
    /// alive key is gone). While Redis is down (the connection failed and is
    /// not back) it fails at once with error::not_connected: an answer for a
    /// client is not held back until Redis returns. Before the first
    /// connection is up, it waits for it.
    void where(std::string_view user, where_handler done);
    /// A page of online users, HSCAN's listing of the map without ghosts.
    void online(std::string_view cursor, std::size_t limit, online_handler done);
    /// Deletes the entries of every local user and stops; `done` once Redis
    /// has answered, or at `timeout` (a server that is down must not hold a
    /// shutdown: the entries then expire).
    void shutdown(std::function<void()> done, std::chrono::milliseconds timeout = std::chrono::seconds(2));
    /// Sweeps the whole map once now; `done` (may be empty) gets how many
    /// entries went.
    void sweep(sweep_handler done = {});
    /// Stops at once; entries are left to expire.
    void stop();

    std::size_t local_users() const noexcept;
    bool is_local(std::string_view user) const;
    const std::string& instance_id() const noexcept;
    const redis_presence_options& options() const noexcept;
    const redis_presence_stats& stats() const noexcept;
    /// Why notify-keyspace-events could not be set (error::server_error when
    /// CONFIG is refused); empty when it was set, found set, or not asked for.
    std::error_code notifications_error() const noexcept;
    const std::string& expired_channel() const noexcept;
    const redis::connection& commands() const noexcept;
    const redis::subscriber* expirations() const noexcept;
    const asio::any_io_executor& get_executor() const noexcept;

private:
    std::unique_ptr<detail::presence_state> state_;
};

static_assert(is_locator_v<redis_presence> && has_shutdown_v<redis_presence>,
              "redis_presence must satisfy the Locator requirements, with shutdown");

} // namespace backplane::locator

#include <backplane/locator/impl/redis_presence.hpp>

#endif
