// backplane/presence.hpp - which instance hosts each user, kept alive by
// heartbeats, and direct messages routed by it.
//
//   backplane::presence p(io.get_executor(), redis::parse_url(url), hub.instance_id());
//   p.user_online("alice");   // alice's first connection on this instance opened
//   p.user_offline("alice");  // and her last one closed
//   p.where("bob", [](std::error_code ec, std::string_view instance) { ... });
//   p.send_to_user(hub, "bob", payload); // routed as hub_options::direct says
//
// The map lives in one Redis (key names in presence_options):
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
#ifndef BACKPLANE_PRESENCE_HPP
#define BACKPLANE_PRESENCE_HPP

#include <backplane/envelope.hpp>
#include <backplane/error.hpp>
#include <backplane/hub.hpp>
#include <backplane/names.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/inbox.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/reply.hpp>
#include <backplane/redis/subscriber.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

namespace backplane {

/// Settings of a presence. The defaults are the seed design's.
struct presence_options {
    /// The hash of user -> instance.
    std::string host_key = "user:host";
    /// A user's liveness key; "{user}" is replaced by the user's name.
    std::string alive_key = "user:alive:{user}";
    /// A user's inbox stream, where send_to_user stores a direct message for
    /// an offline user (direct_routing::instance_channel); "{user}" as above.
    std::string inbox_key = "inbox:{user}";
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
    /// Approximate bound on the length of an inbox stream (XADD MAXLEN ~).
    std::size_t inbox_max_length = 1000;
    /// Settings of the command and notification connections; their client
    /// names are "{client_name}:presence" and "{client_name}:expired".
    redis::connection_options connection;
    /// Prefix of the connections' names in CLIENT LIST; empty: no names.
    std::string client_name;
};

/// Counters of a presence. They only grow.
struct presence_stats {
    std::uint64_t heartbeats = 0;        ///< refresh rounds sent (one write each)
    std::uint64_t refreshed = 0;         ///< entries refreshed or claimed by them
    std::uint64_t expirations = 0;       ///< expiries of alive keys heard
    std::uint64_t cleaned_by_notification = 0; ///< entries deleted after an expiry
    std::uint64_t sweeps = 0;            ///< full sweep passes done
    std::uint64_t cleaned_by_sweep = 0;  ///< entries deleted by sweeps
    std::uint64_t errors = 0;            ///< commands that failed
};

/// One online user, as online_users lists it.
struct online_user {
    std::string user;
    std::string instance;
};

/// A page of online users.
struct online_page {
    std::vector<online_user> users;
    /// Pass it back for the next page; "0" when the listing is complete.
    std::string cursor = "0";
};

/// Where a direct message sent with presence::send_to_user went.
enum class direct_outcome {
    published,       ///< to the user's channel or the shared channel
    sent_to_host,    ///< to the channel of the instance hosting the user
    stored_in_inbox, ///< the user is offline: appended to the user's inbox
    failed,          ///< not sent: see the error
};

/// Called with the host of a user, or an empty view if the user is offline;
/// the view is valid during the call only.
using where_handler = std::function<void(std::error_code, std::string_view instance)>;
/// Called with a page of online users.
using online_handler = std::function<void(std::error_code, online_page)>;
/// Called with the number of entries a sweep deleted.
using sweep_handler = std::function<void(std::error_code, std::size_t removed)>;
/// Called once with what became of a direct message.
using direct_handler = std::function<void(std::error_code, direct_outcome)>;

namespace detail {

// The scripts. KEYS are the keys each one touches; the sweep and the listing
// build alive keys from a prefix and a suffix, as the users they visit are
// known only on the server.
struct presence_scripts {
    // KEYS host, alive; ARGV user, instance, ttl(ms). Claims the entry.
    static constexpr std::string_view online =
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
        "redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])\n"
        "return 1\n";

    // KEYS host, alive; ARGV user, instance. Compare-and-delete.
    static constexpr std::string_view offline =
        "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
        "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
        "  redis.call('DEL', KEYS[2])\n"
        "  return 1\n"
        "end\n"
        "return 0\n";

    // KEYS host, alive_1..alive_n; ARGV instance, ttl(ms), user_1..user_n.
    // Refreshes the entries that name this instance, claims absent ones.
    static constexpr std::string_view refresh =
        "local n = 0\n"
        "for i = 3, #ARGV do\n"
        "  local h = redis.call('HGET', KEYS[1], ARGV[i])\n"
        "  if not h then redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end\n"
        "  if not h or h == ARGV[1] then\n"
        "    redis.call('SET', KEYS[i - 1], '1', 'PX', ARGV[2])\n"
        "    n = n + 1\n"
        "  end\n"
        "end\n"
        "return n\n";

    // KEYS host, alive; ARGV user. Deletes a ghost: only if not alive.
    static constexpr std::string_view expired =
        "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
        "  return redis.call('HDEL', KEYS[1], ARGV[1])\n"
        "end\n"
        "return 0\n";

    // KEYS host, alive; ARGV user. The host if the entry is alive, else nil.
    static constexpr std::string_view where =
        "if redis.call('EXISTS', KEYS[2]) == 1 then\n"
        "  return redis.call('HGET', KEYS[1], ARGV[1])\n"
        "end\n"
        "return false\n";

    // KEYS host; ARGV cursor, count, alive prefix, alive suffix.
    // One sweep batch: {next cursor, entries deleted}.
    static constexpr std::string_view sweep =
        "local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])\n"
        "local f, removed = r[2], 0\n"
        "for i = 1, #f, 2 do\n"
        "  if redis.call('EXISTS', ARGV[3] .. f[i] .. ARGV[4]) == 0 then\n"
        "    removed = removed + redis.call('HDEL', KEYS[1], f[i])\n"
        "  end\n"
        "end\n"
        "return {r[1], removed}\n";

    // KEYS host; ARGV cursor, count, alive prefix, alive suffix.
    // One page of live entries: {next cursor, user, instance, ...}.
    static constexpr std::string_view list =
        "local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])\n"
        "local f, out = r[2], {r[1]}\n"
        "for i = 1, #f, 2 do\n"
        "  if redis.call('EXISTS', ARGV[3] .. f[i] .. ARGV[4]) == 1 then\n"
        "    out[#out + 1] = f[i]\n"
        "    out[#out + 1] = f[i + 1]\n"
        "  end\n"
        "end\n"
        "return out\n";
};

// "prefix{user}suffix", split once.
struct key_pattern {
    std::string prefix, suffix;

    key_pattern(const std::string& pattern, std::string_view placeholder)
    {
        const auto at = pattern.find(placeholder);
        if (at == std::string::npos)
            throw std::invalid_argument("backplane: key pattern '" + pattern + "' lacks "
                                        + std::string(placeholder));
        prefix = pattern.substr(0, at);
        suffix = pattern.substr(at + placeholder.size());
    }

    std::string name(std::string_view value) const
    {
        std::string out;
        out.reserve(prefix.size() + value.size() + suffix.size());
        return out.append(prefix).append(value).append(suffix);
    }

    // The value in a key of this pattern; false if `key` is not one.
    bool match(std::string_view key, std::string_view& value) const
    {
        if (key.size() < prefix.size() + suffix.size() || key.substr(0, prefix.size()) != prefix
            || key.substr(key.size() - suffix.size()) != suffix)
            return false;
        value = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
        return true;
    }
};

// The flags notify-keyspace-events needs for expiry events on the keyevent
// channel, added to what `current` holds; empty if it has them already.
inline std::string notify_flags_with_expired(std::string_view current)
{
    const auto has = [&](char c) { return current.find(c) != std::string_view::npos; };
    const bool expired = has('x') || has('A');
    if (has('E') && expired)
        return {};
    std::string flags(current);
    if (!has('E'))
        flags += 'E';
    if (!expired)
        flags += 'x';
    return flags;
}

} // namespace detail

/// The user -> instance map of one instance. Not movable: its timers and
/// connections call back into it.
class presence {
public:
    /// Connects at once and starts the heartbeat, the sweep and the
    /// expiry listener.
    /// @param instance this instance's id (the hub's instance_id()).
    /// @throws std::invalid_argument if the instance id is not a valid name,
    /// a key pattern lacks "{user}", ttl does not exceed heartbeat_interval,
    /// or a batch size is zero.
    presence(asio::any_io_executor ex, redis::config server, std::string instance, presence_options options = {})
        : executor_(ex),
          options_(std::move(options)),
          instance_(std::move(instance)),
          alive_(options_.alive_key, "{user}"),
          inbox_(options_.inbox_key, "{user}"),
          commands_(ex, server, named(options_, ":presence")),
          heartbeat_timer_(ex),
          sweep_timer_(ex)
    {
        if (validate_name(instance_))
            throw std::invalid_argument("backplane: invalid instance id: " + instance_);
        if (options_.heartbeat_interval.count() <= 0 || options_.ttl <= options_.heartbeat_interval)
            throw std::invalid_argument("backplane: presence ttl must exceed heartbeat_interval > 0");
        if (options_.sweep_batch == 0 || options_.refresh_batch == 0)
            throw std::invalid_argument("backplane: presence batch sizes must be positive");
        load_scripts();
        if (options_.listen_expirations) {
            expired_channel_ = "__keyevent@" + std::to_string(server.database) + "__:expired";
            expirations_.emplace(ex, server, named(options_, ":expired"));
            expirations_->set_message_handler(
                [this](std::string_view, std::string_view key) { on_expired(key); });
            expirations_->subscribe(expired_channel_);
            if (options_.configure_notifications)
                configure_notifications();
        }
        arm_heartbeat();
        if (options_.sweep_interval.count() > 0)
            arm_sweep();
    }

    /// As above, with the server read from a URL.
    /// @throws std::invalid_argument on a malformed URL, and as above.
    presence(asio::any_io_executor ex, std::string_view url, std::string instance, presence_options options = {})
        : presence(std::move(ex), redis::parse_url(url), std::move(instance), std::move(options))
    {
    }

    presence(const presence&) = delete;
    presence& operator=(const presence&) = delete;

    ~presence() { stop(); }

    /// The user's first local connection opened: the entry names this
    /// instance from now on (it takes over from any other), and this
    /// instance's heartbeats keep it alive. Invalid names are ignored.
    void user_online(std::string_view user)
    {
        if (stopped_ || validate_name(user))
            return;
        users_.emplace(user);
        run(detail::presence_scripts::online, script_online,
            {options_.host_key, alive_.name(user), std::string(user), instance_, ttl_ms()}, 2, tally());
    }

    /// The user's last local connection closed: the entry is deleted now if
    /// it still names this instance, and kept if it names another.
    void user_offline(std::string_view user)
    {
        if (stopped_)
            return;
        const auto it = users_.find(std::string(user));
        if (it == users_.end())
            return;
        users_.erase(it);
        run(detail::presence_scripts::offline, script_offline,
            {options_.host_key, alive_.name(user), std::string(user), instance_}, 2, tally());
    }

    /// Calls `done(ec, instance)` with the instance hosting `user`, or an
    /// empty instance if the user is offline (no entry, or a ghost whose
    /// alive key is gone). While Redis is down (the connection failed and is
    /// not back) it fails at once with error::not_connected: an answer for a
    /// client is not held back until Redis returns. Before the first
    /// connection is up, it waits for it.
    void where(std::string_view user, where_handler done)
    {
        if (auto ec = validate_name(user))
            return post_where(std::move(done), ec);
        if (redis_down())
            return post_where(std::move(done), error::not_connected);
        run(detail::presence_scripts::where, script_where, {options_.host_key, alive_.name(user), std::string(user)},
            2, [done = std::move(done)](std::error_code ec, const redis::reply& r) {
                done(ec, !ec && r.type == redis::reply::kind::string ? std::string_view(r.text) : std::string_view());
            });
    }

    /// Calls `done(ec, online)`: whether `user` has a live entry.
    void is_online(std::string_view user, std::function<void(std::error_code, bool)> done)
    {
        where(user, [done = std::move(done)](std::error_code ec, std::string_view instance) {
            done(ec, !instance.empty());
        });
    }

    /// Calls `done(ec, page)` with one page of online users, from `cursor`
    /// ("0" to begin; anything but digits: std::errc::invalid_argument;
    /// Redis not connected: error::not_connected). The listing is HSCAN's: users online during the whole
    /// listing appear at least once, and each page costs about `limit`
    /// entries of work (a small hash, up to hash-max-listpack-entries, 512
    /// by default, is returned whole at once).
    void online_users(std::string_view cursor, std::size_t limit, online_handler done)
    {
        std::error_code refused;
        if (cursor.empty() || cursor.find_first_not_of("0123456789") != std::string_view::npos)
            refused = std::make_error_code(std::errc::invalid_argument);
        else if (redis_down())
            refused = error::not_connected; // as where(): not held back until Redis returns
        if (refused) {
            asio::post(executor_, [done = std::move(done), refused] { done(refused, {}); });
            return;
        }
        run(detail::presence_scripts::list, script_list,
            {options_.host_key, std::string(cursor), std::to_string(std::max<std::size_t>(limit, 1)), alive_.prefix,
             alive_.suffix},
            1, [done = std::move(done)](std::error_code ec, const redis::reply& r) {
                online_page page;
                if (!ec && (r.type != redis::reply::kind::array || r.elements.empty()))
                    ec = error::protocol_error;
                if (ec)
                    return done(ec, std::move(page));
                page.cursor = r.elements[0].text;
                for (std::size_t i = 1; i + 1 < r.elements.size(); i += 2)
                    page.users.push_back({r.elements[i].text, r.elements[i + 1].text});
                done(ec, std::move(page));
            });
    }

    /// Sweeps the whole map once now, batch after batch, deleting the
    /// entries whose alive key is gone; `done` (may be empty) gets how many.
    void sweep(sweep_handler done = {})
    {
        sweep_from("0", 0, std::move(done));
    }

    /// Sends a direct message to `user` as `hub`'s direct routing says:
    /// with per_user_channel and shared_channel through hub.send_to_user;
    /// with instance_channel (the seed design's Option B) by looking up the
    /// user's host and publishing to that instance's channel, or, if the
    /// user is offline, by appending its envelope to the user's inbox
    /// stream (redis/inbox.hpp; take_inbox reads it). `done` (may be empty)
    /// is called once, later.
    /// The hub must outlive this object: destroy the presence first.
    /// A user who moves between the lookup and the publish misses the
    /// message (Option B's race; the per-user channel has none).
    template <class Hub>
    void send_to_user(Hub& hub, std::string_view user, std::string_view payload,
                      connection_id exclude = no_connection, direct_handler done = {})
    {
        if (hub.options().direct != direct_routing::instance_channel) {
            const auto ec = hub.send_to_user(user, payload, exclude);
            return post_direct(std::move(done), ec, ec ? direct_outcome::failed : direct_outcome::published);
        }
        if (auto ec = validate_name(user, hub.options().max_name_length))
            return post_direct(std::move(done), ec, direct_outcome::failed);
        if (payload.size() > hub.options().max_payload)
            return post_direct(std::move(done), error::payload_too_large, direct_outcome::failed);
        where(user, [this, life = std::weak_ptr<char>(life_), &hub, user = std::string(user),
                     payload = std::string(payload), exclude, done = std::move(done)](std::error_code ec,
                                                                                       std::string_view host) {
            if (ec || life.expired()) {
                if (done)
                    done(ec ? ec : error::operation_aborted, direct_outcome::failed);
                return;
            }
            if (!host.empty()) {
                ec = hub.send_to_user_at(host, user, payload, exclude);
                if (done)
                    done(ec, ec ? direct_outcome::failed : direct_outcome::sent_to_host);
                return;
            }
            store_in_inbox(user, payload, exclude, std::move(done));
        });
    }

    /// Takes (reads and deletes, atomically) up to `count` direct messages
    /// from `user`'s inbox, oldest first, and calls `done(ec, entries)`
    /// once, later: each entry's data is an envelope (decode it), its id
    /// the message's id. For a user's first connection on an instance
    /// (Option B); broker::redis_streams::take_inbox reads the same inbox.
    void take_inbox(std::string_view user, redis::inbox::handler done, std::size_t count = 1000)
    {
        if (auto ec = validate_name(user))
            return asio::post(executor_, [done = std::move(done), ec] { done(ec, {}); });
        run(redis::inbox::take_script, script_take, {inbox_.name(user), std::to_string(std::max<std::size_t>(count, 1))},
            1, [done = std::move(done)](std::error_code ec, const redis::reply& r) {
                done(ec, ec ? std::vector<backplane::detail::history_entry>{} : redis::inbox::entries(r));
            });
    }

    /// Deletes the entries of every local user (as user_offline does), stops
    /// the heartbeat and the sweep, and calls `done` once the server has
    /// answered, the deletes failed, or `timeout` passed (a server that is
    /// down must not hold a shutdown: the entries then expire); then stops.
    /// For a clean shutdown.
    void shutdown(std::function<void()> done, std::chrono::milliseconds timeout = std::chrono::seconds(2))
    {
        if (stopped_) {
            if (done)
                asio::post(executor_, std::move(done));
            return;
        }
        heartbeat_timer_.cancel();
        sweep_timer_.cancel();
        auto users = std::move(users_);
        users_.clear();
        for (const auto& user : users)
            run(detail::presence_scripts::offline, script_offline,
                {options_.host_key, alive_.name(user), user, instance_}, 2, tally());
        // Whichever comes first, the answer or the deadline, finishes; the
        // heartbeat's timer, idle from now on, holds the deadline.
        auto finish = [this, life = std::weak_ptr<char>(life_),
                       once = std::make_shared<std::function<void()>>(std::move(done))] {
            if (!life.expired())
                stop();
            if (auto d = std::exchange(*once, {}))
                d();
        };
        heartbeat_timer_.expires_after(timeout);
        heartbeat_timer_.async_wait([finish](std::error_code ec) {
            if (ec != asio::error::operation_aborted)
                finish();
        });
        // Replies come in order: a PING after the deletes is answered last.
        commands_.execute({"PING"}, [finish](std::error_code, const redis::reply&) { finish(); });
    }

    /// Stops the timers and closes the connections at once; entries are
    /// left to expire.
    void stop()
    {
        if (stopped_)
            return;
        stopped_ = true;
        heartbeat_timer_.cancel();
        sweep_timer_.cancel();
        commands_.stop();
        if (expirations_)
            expirations_->stop();
    }

    /// Users this instance holds online.
    std::size_t local_users() const noexcept { return users_.size(); }
    /// Whether user_online was called for `user` and user_offline not since.
    bool is_local(std::string_view user) const { return users_.count(std::string(user)) != 0; }
    const std::string& instance_id() const noexcept { return instance_; }
    const presence_options& options() const noexcept { return options_; }
    const presence_stats& stats() const noexcept { return stats_; }
    /// Why notify-keyspace-events could not be set (error::server_error when
    /// CONFIG is refused); empty when it was set, found set, or not asked for.
    std::error_code notifications_error() const noexcept { return notifications_error_; }
    /// The channel expiries are heard on; empty without listen_expirations.
    const std::string& expired_channel() const noexcept { return expired_channel_; }
    /// The command connection (state, stats).
    const redis::connection& commands() const noexcept { return commands_; }
    /// The expiry listener, if listen_expirations.
    const redis::subscriber* expirations() const noexcept { return expirations_ ? &*expirations_ : nullptr; }
    const asio::any_io_executor& get_executor() const noexcept { return executor_; }

private:
    enum script_index { script_online, script_offline, script_refresh, script_expired, script_where, script_sweep,
                        script_list, script_take, script_count };

    static redis::connection_options named(const presence_options& o, std::string_view suffix)
    {
        auto c = o.connection;
        c.client_name = o.client_name.empty() ? std::string() : o.client_name + std::string(suffix);
        return c;
    }

    std::string ttl_ms() const { return std::to_string(options_.ttl.count()); }

    // A script's handler: a failure is counted in errors; with `counter`,
    // the number the script returns is added to it.
    redis::reply_handler tally(std::uint64_t presence_stats::*counter = nullptr)
    {
        return [this, life = std::weak_ptr<char>(life_), counter](std::error_code ec, const redis::reply& r) {
            if (life.expired())
                return;
            if (ec)
                ++stats_.errors;
            else if (counter)
                stats_.*counter += static_cast<std::uint64_t>(std::max<std::int64_t>(r.integer, 0));
        };
    }

    // Learns each script's SHA1, so that later calls send it instead of the
    // source; calls made before the answer send the source (EVAL).
    void load_scripts()
    {
        static constexpr std::string_view sources[script_count] = {
            detail::presence_scripts::online, detail::presence_scripts::offline, detail::presence_scripts::refresh,
            detail::presence_scripts::expired, detail::presence_scripts::where, detail::presence_scripts::sweep,
            detail::presence_scripts::list, redis::inbox::take_script};
        for (int i = 0; i < script_count; ++i)
            commands_.execute({"SCRIPT", "LOAD", sources[i]},
                              [this, life = std::weak_ptr<char>(life_), i](std::error_code ec, const redis::reply& r) {
                                  if (!ec && !life.expired() && r.type == redis::reply::kind::string)
                                      shas_[i] = r.text;
                              });
    }

    // Whether the command connection failed and is not back yet.
    bool redis_down() const noexcept
    {
        const auto st = commands_.stats().connection;
        return commands_.state() != redis::connection_state::ready && (st.failed_attempts > 0 || st.disconnects > 0);
    }

    // Runs a script: `args` are the keys (the first `keys` of them), then
    // the arguments. A server that lost the script (NOSCRIPT, after a
    // restart) gets its source once more.
    void run(std::string_view source, script_index index, std::vector<std::string> args, std::size_t keys,
             redis::reply_handler done)
    {
        std::vector<std::string> command;
        command.reserve(args.size() + 3);
        const bool by_sha = !shas_[index].empty();
        command.emplace_back(by_sha ? "EVALSHA" : "EVAL");
        command.emplace_back(by_sha ? shas_[index] : std::string(source));
        command.push_back(std::to_string(keys));
        for (auto& a : args)
            command.push_back(std::move(a));
        if (!by_sha)
            return commands_.execute(command, std::move(done));
        auto retry = [this, life = std::weak_ptr<char>(life_), source, command,
                      done = std::move(done)](std::error_code ec, const redis::reply& r) mutable {
            if (ec == error::server_error && r.text.compare(0, 8, "NOSCRIPT") == 0 && !life.expired()) {
                command[0] = "EVAL";
                command[1] = std::string(source);
                return commands_.execute(command, std::move(done));
            }
            done(ec, r);
        };
        commands_.execute(command, std::move(retry));
    }

    void arm_heartbeat()
    {
        heartbeat_timer_.expires_after(options_.heartbeat_interval);
        heartbeat_timer_.async_wait([this, life = std::weak_ptr<char>(life_)](std::error_code ec) {
            if (ec || life.expired() || stopped_)
                return;
            heartbeat();
            arm_heartbeat();
        });
    }

    // One round: every local user, refresh_batch per script call, all
    // queued in this turn, so they leave in one write.
    void heartbeat()
    {
        if (users_.empty())
            return;
        ++stats_.heartbeats;
        std::vector<std::string> names;
        auto it = users_.begin();
        while (it != users_.end()) {
            names.clear();
            for (; it != users_.end() && names.size() < options_.refresh_batch; ++it)
                names.push_back(*it);
            refresh(names);
        }
    }

    void refresh(const std::vector<std::string>& names)
    {
        std::vector<std::string> args;
        args.reserve(2 * names.size() + 3);
        args.push_back(options_.host_key);
        for (const auto& n : names)
            args.push_back(alive_.name(n));
        args.push_back(instance_);
        args.push_back(ttl_ms());
        args.insert(args.end(), names.begin(), names.end());
        run(detail::presence_scripts::refresh, script_refresh, std::move(args), names.size() + 1,
            tally(&presence_stats::refreshed));
    }

    // An alive key expired: its entry goes, unless the user came back. A
    // user still local here (a heartbeat came too late) is claimed again.
    void on_expired(std::string_view key)
    {
        std::string_view user;
        if (stopped_ || !alive_.match(key, user) || validate_name(user))
            return;
        ++stats_.expirations;
        run(detail::presence_scripts::expired, script_expired,
            {options_.host_key, std::string(key), std::string(user)}, 2,
            tally(&presence_stats::cleaned_by_notification));
        if (is_local(user))
            refresh({std::string(user)});
    }

    void arm_sweep()
    {
        sweep_timer_.expires_after(options_.sweep_interval);
        sweep_timer_.async_wait([this, life = std::weak_ptr<char>(life_)](std::error_code ec) {
            if (ec || life.expired() || stopped_)
                return;
            // The next pass is armed when this one is done: passes never overlap.
            sweep([this, life](std::error_code, std::size_t) {
                if (!life.expired() && !stopped_)
                    arm_sweep();
            });
            if (options_.listen_expirations && options_.configure_notifications)
                configure_notifications(); // a restarted server forgot it
        });
    }

    void sweep_from(std::string cursor, std::size_t removed, sweep_handler done)
    {
        run(detail::presence_scripts::sweep, script_sweep,
            {options_.host_key, std::move(cursor), std::to_string(options_.sweep_batch), alive_.prefix, alive_.suffix},
            1,
            [this, life = std::weak_ptr<char>(life_), removed, done = std::move(done)](
                std::error_code ec, const redis::reply& r) mutable {
                if (!ec && (r.type != redis::reply::kind::array || r.elements.size() != 2))
                    ec = error::protocol_error;
                if (ec || life.expired()) {
                    if (!life.expired())
                        ++stats_.errors;
                    if (done)
                        done(ec ? ec : error::operation_aborted, removed);
                    return;
                }
                const auto batch = static_cast<std::size_t>(std::max<std::int64_t>(r.elements[1].integer, 0));
                stats_.cleaned_by_sweep += batch;
                removed += batch;
                if (r.elements[0].text != "0")
                    return sweep_from(r.elements[0].text, removed, std::move(done));
                ++stats_.sweeps;
                if (done)
                    done({}, removed);
            });
    }

    // Adds E and x to notify-keyspace-events if the server lacks them.
    void configure_notifications()
    {
        commands_.execute({"CONFIG", "GET", "notify-keyspace-events"},
                          [this, life = std::weak_ptr<char>(life_)](std::error_code ec, const redis::reply& r) {
                              if (life.expired() || stopped_)
                                  return;
                              if (!ec && (r.type != redis::reply::kind::array || r.elements.size() != 2))
                                  ec = error::protocol_error;
                              if (ec) {
                                  notifications_error_ = ec;
                                  return;
                              }
                              const auto flags = detail::notify_flags_with_expired(r.elements[1].text);
                              if (flags.empty()) {
                                  notifications_error_ = {};
                                  return;
                              }
                              commands_.execute({"CONFIG", "SET", "notify-keyspace-events", flags},
                                                [this, life](std::error_code set_ec, const redis::reply&) {
                                                    if (!life.expired())
                                                        notifications_error_ = set_ec;
                                                });
                          });
    }

    // The envelope, as the hub would have published it, so that any reader
    // of the inbox decodes it as it decodes the broker's messages.
    void store_in_inbox(const std::string& user, const std::string& payload, connection_id exclude,
                        direct_handler done)
    {
        std::string data;
        encode(envelope{message_kind::user, instance_, user, exclude, ++inbox_sequence_, payload}, data);
        commands_.execute({"XADD", inbox_.name(user), "MAXLEN", "~", std::to_string(options_.inbox_max_length), "*",
                           redis::inbox::data_field, data},
                          [done = std::move(done)](std::error_code ec, const redis::reply&) {
                              if (done)
                                  done(ec, ec ? direct_outcome::failed : direct_outcome::stored_in_inbox);
                          });
    }

    void post_where(where_handler done, std::error_code ec)
    {
        asio::post(executor_, [done = std::move(done), ec] { done(ec, {}); });
    }

    void post_direct(direct_handler done, std::error_code ec, direct_outcome outcome)
    {
        if (done)
            asio::post(executor_, [done = std::move(done), ec, outcome] { done(ec, outcome); });
    }

    asio::any_io_executor executor_;
    presence_options options_;
    std::string instance_;
    detail::key_pattern alive_;
    detail::key_pattern inbox_;
    redis::connection commands_;
    std::optional<redis::subscriber> expirations_;
    std::string expired_channel_;
    asio::steady_timer heartbeat_timer_;
    asio::steady_timer sweep_timer_;
    std::unordered_set<std::string> users_;
    std::string shas_[script_count];
    std::uint64_t inbox_sequence_ = 0;
    presence_stats stats_;
    std::error_code notifications_error_;
    bool stopped_ = false;
    // Handlers hold a weak reference: after destruction they touch nothing.
    std::shared_ptr<char> life_ = std::make_shared<char>();
};

} // namespace backplane

#endif
