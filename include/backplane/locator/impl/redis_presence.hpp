// backplane/locator/impl/redis_presence.hpp - the implementation of
// locator::redis_presence (see backplane/locator/redis_presence.hpp): the
// Lua scripts that read and write the map, and the state behind a presence,
// at a stable address, that its timers and connections call back into.
#ifndef BACKPLANE_LOCATOR_IMPL_REDIS_PRESENCE_HPP
#define BACKPLANE_LOCATOR_IMPL_REDIS_PRESENCE_HPP

#include <backplane/detail/name_pattern.hpp>
#include <backplane/error.hpp>
#include <backplane/names.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/reply.hpp>
#include <backplane/redis/script.hpp>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

namespace backplane::locator {

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

// The map's state behind a redis_presence, at a stable address: its timers
// and connections call back into it.
class presence_state {
public:
    presence_state(asio::any_io_executor ex, const redis::config& server, redis_presence_options options)
        : executor_(ex),
          options_(std::move(options)),
          alive_(options_.alive_key, "{user}"),
          commands_(ex, server, named(options_, ":presence")),
          heartbeat_timer_(ex),
          sweep_timer_(ex)
    {
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

    presence_state(const presence_state&) = delete;
    presence_state& operator=(const presence_state&) = delete;

    ~presence_state() { stop(); }

    void set_instance(std::string_view id) { instance_ = std::string(id); }

    /// The user's first local connection opened: the entry names this
    /// instance from now on (it takes over from any other), and this
    /// instance's heartbeats keep it alive. Invalid names are ignored.
    void user_online(std::string_view user)
    {
        if (stopped_ || validate_name(user))
            return;
        users_.emplace(user);
        run(script_online,
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
        run(script_offline,
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
        run(script_where, {options_.host_key, alive_.name(user), std::string(user)},
            2, [done = std::move(done)](std::error_code ec, const redis::reply& r) {
                done(ec, !ec && r.type == redis::reply::kind::string ? std::string_view(r.text) : std::string_view());
            });
    }

    /// Calls `done(ec, page)` with one page of online users, from `cursor`
    /// ("0" to begin; anything but digits: std::errc::invalid_argument;
    /// Redis not connected: error::not_connected). The listing is HSCAN's: users online during the whole
    /// listing appear at least once, and each page costs about `limit`
    /// entries of work (a small hash, up to hash-max-listpack-entries, 512
    /// by default, is returned whole at once).
    void online(std::string_view cursor, std::size_t limit, online_handler done)
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
        run(script_list,
            {options_.host_key, std::string(cursor), std::to_string(std::max<std::size_t>(limit, 1)), alive_.prefix(),
             alive_.suffix()},
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
            run(script_offline,
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
    const redis_presence_options& options() const noexcept { return options_; }
    const redis_presence_stats& stats() const noexcept { return stats_; }
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
                        script_list, script_count };

    static redis::connection_options named(const redis_presence_options& o, std::string_view suffix)
    {
        auto c = o.connection;
        c.client_name = o.client_name.empty() ? std::string() : o.client_name + std::string(suffix);
        return c;
    }

    std::string ttl_ms() const { return std::to_string(options_.ttl.count()); }

    // A script's handler: a failure is counted in errors; with `counter`,
    // the number the script returns is added to it.
    redis::reply_handler tally(std::uint64_t redis_presence_stats::*counter = nullptr)
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

    // Whether the command connection failed and is not back yet.
    bool redis_down() const noexcept
    {
        const auto st = commands_.stats().connection;
        return commands_.state() != redis::connection_state::ready && (st.failed_attempts > 0 || st.disconnects > 0);
    }

    // Each script by its SHA1 once the server has it (redis/script.hpp).
    void load_scripts()
    {
        for (const auto& script : scripts_)
            script.load(commands_);
    }

    // Runs a script: `args` are the keys (the first `keys` of them), then
    // the arguments.
    void run(script_index index, std::vector<std::string> args, std::size_t keys, redis::reply_handler done)
    {
        args.insert(args.begin(), std::to_string(keys));
        scripts_[index].run(commands_, std::move(args), std::move(done));
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
        run(script_refresh, std::move(args), names.size() + 1,
            tally(&redis_presence_stats::refreshed));
    }

    // An alive key expired: its entry goes, unless the user came back. A
    // user still local here (a heartbeat came too late) is claimed again.
    void on_expired(std::string_view key)
    {
        std::string_view user;
        if (stopped_ || !alive_.match(key, user) || validate_name(user))
            return;
        ++stats_.expirations;
        run(script_expired,
            {options_.host_key, std::string(key), std::string(user)}, 2,
            tally(&redis_presence_stats::cleaned_by_notification));
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
        run(script_sweep,
            {options_.host_key, std::move(cursor), std::to_string(options_.sweep_batch), alive_.prefix(), alive_.suffix()},
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

    void post_where(where_handler done, std::error_code ec)
    {
        asio::post(executor_, [done = std::move(done), ec] { done(ec, {}); });
    }

    asio::any_io_executor executor_;
    redis_presence_options options_;
    std::string instance_;
    backplane::detail::name_pattern alive_;
    redis::connection commands_;
    std::optional<redis::subscriber> expirations_;
    std::string expired_channel_;
    asio::steady_timer heartbeat_timer_;
    asio::steady_timer sweep_timer_;
    std::unordered_set<std::string> users_;
    redis::script scripts_[script_count] = {
        redis::script(detail::presence_scripts::online), redis::script(detail::presence_scripts::offline),
        redis::script(detail::presence_scripts::refresh), redis::script(detail::presence_scripts::expired),
        redis::script(detail::presence_scripts::where), redis::script(detail::presence_scripts::sweep),
        redis::script(detail::presence_scripts::list)};
    redis_presence_stats stats_;
    std::error_code notifications_error_;
    bool stopped_ = false;
    // Handlers hold a weak reference: after destruction they touch nothing.
    std::shared_ptr<char> life_ = std::make_shared<char>();
};

} // namespace detail

inline redis_presence::redis_presence(asio::any_io_executor ex, redis::config server, redis_presence_options options)
    : state_(std::make_unique<detail::presence_state>(std::move(ex), server, std::move(options)))
{
}

inline redis_presence::redis_presence(asio::any_io_executor ex, std::string_view url, redis_presence_options options)
    : redis_presence(std::move(ex), redis::parse_url(url), std::move(options))
{
}

inline redis_presence::redis_presence(redis_presence&&) noexcept = default;
inline redis_presence& redis_presence::operator=(redis_presence&&) noexcept = default;
inline redis_presence::~redis_presence() = default;

inline void redis_presence::set_instance(std::string_view id) { state_->set_instance(id); }
inline void redis_presence::user_online(std::string_view user) { state_->user_online(user); }
inline void redis_presence::user_offline(std::string_view user) { state_->user_offline(user); }
inline void redis_presence::where(std::string_view user, where_handler done) { state_->where(user, std::move(done)); }

inline void redis_presence::online(std::string_view cursor, std::size_t limit, online_handler done)
{
    state_->online(cursor, limit, std::move(done));
}

inline void redis_presence::shutdown(std::function<void()> done, std::chrono::milliseconds timeout)
{
    state_->shutdown(std::move(done), timeout);
}

inline void redis_presence::sweep(sweep_handler done) { state_->sweep(std::move(done)); }
inline void redis_presence::stop() { state_->stop(); }

inline std::size_t redis_presence::local_users() const noexcept { return state_->local_users(); }
inline bool redis_presence::is_local(std::string_view user) const { return state_->is_local(user); }
inline const std::string& redis_presence::instance_id() const noexcept { return state_->instance_id(); }
inline const redis_presence_options& redis_presence::options() const noexcept { return state_->options(); }
inline const redis_presence_stats& redis_presence::stats() const noexcept { return state_->stats(); }
inline std::error_code redis_presence::notifications_error() const noexcept { return state_->notifications_error(); }
inline const std::string& redis_presence::expired_channel() const noexcept { return state_->expired_channel(); }
inline const redis::connection& redis_presence::commands() const noexcept { return state_->commands(); }
inline const redis::subscriber* redis_presence::expirations() const noexcept { return state_->expirations(); }

inline const asio::any_io_executor& redis_presence::get_executor() const noexcept
{
    return state_->get_executor();
}

} // namespace backplane::locator

#endif
