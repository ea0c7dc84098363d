// backplane/locator/redis_cluster_presence.hpp - which instance hosts each
// user, on a Redis Cluster: locator::redis_presence on the master that holds
// the map.
//
//   basic_hub<transport::websocketpp, broker::redis_sharded_streams, locator::redis_cluster_presence> hub(
//       ws, broker::redis_sharded_streams(ex, seeds), locator::redis_cluster_presence(ex, seeds), options);
//
// redis_presence's scripts read and write the map's hash and its users'
// alive keys together, and a script on a cluster touches one slot: the keys
// share one hash tag ("{presence}:user:host", "{presence}:user:alive:{user}"),
// so the whole map lives on the master of that slot. One master carries it
// well: the map costs a write when a user's first connection opens and when
// its last closes, and one heartbeat per instance every heartbeat_interval,
// not a write per message.
//
// The locator watches the slot map (redis/cluster_watch.hpp) and runs a
// redis_presence on that master. When the slot gets another master (a
// failover promotes the replica, which has the map; a migration moves its
// keys), it starts a redis_presence there and tells it this instance's users
// again; the one on the old master is stopped, its entries left where they
// are. The expiry notifications are a node's own, so the new one listens to
// its new master (and sets notify-keyspace-events there, a replica's config
// being its own). A query made while no master is known fails with
// error::not_connected.
//
// A Locator (backplane/policies.hpp) with shutdown.
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_LOCATOR_REDIS_CLUSTER_PRESENCE_HPP
#define BACKPLANE_LOCATOR_REDIS_CLUSTER_PRESENCE_HPP

#include <backplane/detail/name_pattern.hpp>
#include <backplane/error.hpp>
#include <backplane/locator/redis_presence.hpp>
#include <backplane/policies.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/cluster_watch.hpp>
#include <backplane/redis/slot.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::locator {

/// Settings of a redis_cluster_presence.
struct redis_cluster_presence_options {
    /// Settings of the presence on the map's master; its keys share one
    /// hash tag by default here.
    redis_presence_options presence = tagged();
    /// The slot map is read again this often, whatever happens.
    std::chrono::milliseconds refresh_interval{5000};
    /// While the presence's connection is not ready, the map is read again
    /// this often (a failover shows in it once a replica is promoted).
    std::chrono::milliseconds retry_interval{100};
    /// A node that does not answer CLUSTER SLOTS within this is skipped.
    std::chrono::milliseconds map_timeout{1000};

    static redis_presence_options tagged()
    {
        redis_presence_options o;
        o.host_key = "{presence}:user:host";
        o.alive_key = "{presence}:user:alive:{user}";
        return o;
    }
};

class redis_cluster_presence {
public:
    /// Starts reading the slot map from the seeds at once.
    /// @throws std::invalid_argument on no seed, a seed that is a Unix
    /// socket, keys in different slots, or settings redis_presence refuses.
    redis_cluster_presence(asio::any_io_executor ex, std::vector<redis::config> seeds,
                           redis_cluster_presence_options options = {})
        : state_(std::make_shared<state>(ex, std::move(seeds), std::move(options)))
    {
        state_->self = state_;
        state_->start();
    }

    /// As above, with the seeds read by redis::parse_seeds.
    redis_cluster_presence(asio::any_io_executor ex, std::string_view urls, redis_cluster_presence_options options = {})
        : redis_cluster_presence(std::move(ex), redis::parse_seeds(urls), std::move(options))
    {
    }

    redis_cluster_presence(redis_cluster_presence&&) noexcept = default;
    redis_cluster_presence& operator=(redis_cluster_presence&&) = delete;
    ~redis_cluster_presence()
    {
        if (state_)
            state_->stop();
    }

    const asio::any_io_executor& get_executor() const noexcept { return state_->executor; }

    void set_instance(std::string_view id)
    {
        state_->instance = std::string(id);
        if (state_->current)
            state_->current->set_instance(id);
    }

    void user_online(std::string_view user)
    {
        state_->users.emplace(user);
        if (state_->current)
            state_->current->user_online(user);
    }

    void user_offline(std::string_view user)
    {
        if (auto it = state_->users.find(user); it != state_->users.end())
            state_->users.erase(it);
        if (state_->current)
            state_->current->user_offline(user);
    }

    /// As redis_presence::where, on the map's master.
    void where(std::string_view user, where_handler done)
    {
        if (state_->current)
            return state_->current->where(user, std::move(done));
        state_->not_connected([done = std::move(done)](std::error_code ec) { done(ec, {}); });
    }

    /// As redis_presence::online, on the map's master.
    void online(std::string_view cursor, std::size_t limit, online_handler done)
    {
        if (state_->current)
            return state_->current->online(cursor, limit, std::move(done));
        state_->not_connected([done = std::move(done)](std::error_code ec) { done(ec, {}); });
    }

    /// As redis_presence::shutdown; at once if no master is known.
    void shutdown(std::function<void()> done, std::chrono::milliseconds timeout = std::chrono::seconds(2))
    {
        state_->watch.stop();
        if (state_->current)
            return state_->current->shutdown(std::move(done), timeout);
        asio::post(state_->executor, std::move(done));
    }

    /// The master that holds the map now (empty before the slot map is read).
    std::optional<redis::node_address> node() const { return state_->node; }

    /// Whether the presence on the map's master has its connection ready.
    bool connected() const noexcept { return state_->settled(); }

    /// The presence on the map's master, for its stats; nullptr before one.
    const redis_presence* presence() const noexcept { return state_->current ? &*state_->current : nullptr; }

    /// How many times the map's master changed after the first.
    std::uint64_t moves() const noexcept { return state_->moves; }

private:
    // Shared with the watch's handlers, which may outlive a move.
    struct state {
        state(asio::any_io_executor ex, std::vector<redis::config> seeds, redis_cluster_presence_options o)
            : executor(ex), options(std::move(o)),
              watch(ex, std::move(seeds), {named(options.presence, ":map"), options.refresh_interval,
                                           options.retry_interval, options.map_timeout})
        {
            const auto slot = redis::hash_slot(options.presence.host_key);
            if (redis::hash_slot(backplane::detail::name_pattern(options.presence.alive_key, "{user}").name("u"))
                != slot)
                throw std::invalid_argument("backplane: on a cluster the presence's keys must share a slot (a hash "
                                            "tag: \"{presence}:user:host\", \"{presence}:user:alive:{user}\")");
            map_slot = slot;
        }

        void start()
        {
            watch.start(redis::cluster_watch::of(self));
        }

        // The map is asked of the seeds (its master may be the one gone).
        std::vector<redis::node_address> masters_ready() const { return {}; }

        bool settled() const noexcept
        {
            return current && current->commands().state() == redis::connection_state::ready;
        }

        // A presence on the map's master, if that is another one now.
        void apply(const redis::slot_map& m)
        {
            const auto master = m.master(map_slot);
            if (node && *node == master)
                return;
            if (current) {
                current->stop(); // its entries stay where they are
                ++moves;
            }
            node = master;
            current.emplace(executor, watch.config_for(master), options.presence);
            if (!instance.empty())
                current->set_instance(instance);
            for (const auto& user : users)
                current->user_online(user);
        }

        template <class F>
        void not_connected(F f)
        {
            asio::post(executor, [f = std::move(f)]() mutable { f(make_error_code(error::not_connected)); });
        }

        void stop()
        {
            watch.stop();
            if (current)
                current->stop();
        }

        static redis::connection_options named(const redis_presence_options& o, const char* suffix)
        {
            auto c = o.connection;
            c.client_name = o.client_name.empty() ? std::string() : o.client_name + suffix;
            return c;
        }

        asio::any_io_executor executor;
        redis_cluster_presence_options options;
        std::weak_ptr<state> self;
        std::uint16_t map_slot = 0;
        std::string instance;
        std::set<std::string, std::less<>> users; // this instance's, told again to a new master
        std::optional<redis::node_address> node;
        std::optional<redis_presence> current;
        std::uint64_t moves = 0;
        redis::cluster_watch watch;
    };

    std::shared_ptr<state> state_;
};

static_assert(is_locator_v<redis_cluster_presence> && has_shutdown_v<redis_cluster_presence>,
              "redis_cluster_presence must satisfy the Locator requirements, with shutdown");

} // namespace backplane::locator

#endif
