// backplane/broker/redis_sharded.hpp - hubs in several processes, one Redis
// Cluster, sharded Pub/Sub.
//
//   basic_hub<transport::memory, broker::redis_sharded> hub(
//       {}, broker::redis_sharded(io.get_executor(), "redis://10.0.0.1:6379,10.0.0.2:6379"));
//
// Redis 7's sharded Pub/Sub (SSUBSCRIBE, SPUBLISH) keeps a channel on the
// shard that owns its slot (CRC16 of the name, hash tags respected): its
// messages reach that shard's master and replicas only, so room and user
// channels spread their traffic over the shards, where classic PUBLISH sends
// every message to every node. The global channel is one slot, hence one shard carries
// every broadcast (README: "Past one Redis").
//
// The broker reads the slot map (CLUSTER SLOTS) from the seed nodes, and
// keeps one publisher and one subscriber connection per master, whatever
// the number of channels or WebSocket clients. Each SPUBLISH and each
// SSUBSCRIBE goes to the master of its channel's slot. The map is read again
// - at once on a MOVED (which also corrects the map for its slot, and a
//   publish follows it to the new owner, up to max_redirects times; an ASK
//   is followed once, after ASKING, without changing the map),
// - when a node ends subscriptions itself (it lost their slot: a migration
//   or a failover), or refuses one,
// - while a connection is not ready (its node may be gone: a failover
//   promotes its replica, and the new map names it), every retry_interval,
// - and every refresh_interval in any case;
// and every channel whose slot has a new owner is subscribed there.
//
// Delivery is Redis Pub/Sub's: at most once. Messages published while a
// channel is between two nodes (after its old node let go, before the new
// one took it) are lost, as are those published while a subscriber is
// disconnected; the stats count the channels moved.
//
// A Broker (backplane/policies.hpp) without history or offline messages.
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_BROKER_REDIS_SHARDED_HPP
#define BACKPLANE_BROKER_REDIS_SHARDED_HPP

#include <backplane/error.hpp>
#include <backplane/policies.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/cluster_watch.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/detail/placement.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/slot.hpp>
#include <backplane/redis/subscriber.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backplane::broker {

/// Settings of a redis_sharded broker.
struct redis_sharded_options {
    /// Settings of every connection (timeouts, backoff, probe, queue bound).
    /// Their client_name is replaced by the one below.
    redis::connection_options connection;
    /// Prefix of the names the connections give themselves in CLIENT LIST:
    /// "{client_name}:pub", "{client_name}:sub", "{client_name}:map".
    std::string client_name;
    /// The slot map is read again this often, whatever happens.
    std::chrono::milliseconds refresh_interval{5000};
    /// While a connection is not ready, or a channel waits for a node, the
    /// map is read again this often (a failover shows in it once the
    /// cluster has promoted a replica).
    std::chrono::milliseconds retry_interval{100};
    /// A node that does not answer CLUSTER SLOTS within this is skipped.
    std::chrono::milliseconds map_timeout{1000};
    /// A publish follows at most this many MOVED before it fails.
    unsigned max_redirects = 5;
};

/// Counters of a redis_sharded broker. They only grow, but for `shards`.
struct redis_sharded_stats {
    std::uint64_t published = 0;      ///< publishes handed to the broker
    std::uint64_t publish_errors = 0; ///< of those, failed
    std::uint64_t received = 0;       ///< messages handed to the hub
    std::uint64_t redirects = 0;      ///< MOVED and ASK followed by publishes
    std::uint64_t map_reads = 0;      ///< slot maps read and applied
    std::uint64_t moved = 0;          ///< channels subscribed again on another node
    std::uint64_t dropped = 0;        ///< channels a node ended or refused
    std::uint64_t reconnects = 0;     ///< of every connection, after their first connect
    std::size_t shards = 0;           ///< masters connected to now
};

/// The sharded Pub/Sub broker policy for Redis Cluster. Movable; the
/// destructor closes every connection.
class redis_sharded {
public:
    /// Starts reading the slot map from the seeds at once.
    /// @param seeds nodes of the cluster (any of them; one is enough). Their
    /// user and password are used for every node.
    /// @throws std::invalid_argument on no seed, or a seed that is a Unix socket.
    redis_sharded(asio::any_io_executor ex, std::vector<redis::config> seeds, redis_sharded_options options = {})
        : state_(std::make_shared<state>(ex, std::move(seeds), std::move(options)))
    {
        state_->self = state_;
        state_->watch.start(redis::cluster_watch::of(state_->self));
    }

    /// As above, with the seeds read from "redis://host:port,host:port,...":
    /// a URL, then URLs or host:port pairs, which take the first one's user
    /// and password.
    /// @throws std::invalid_argument on a malformed list.
    redis_sharded(asio::any_io_executor ex, std::string_view urls, redis_sharded_options options = {})
        : redis_sharded(std::move(ex), redis::parse_seeds(urls), std::move(options))
    {
    }

    redis_sharded(redis_sharded&&) noexcept = default;
    redis_sharded& operator=(redis_sharded&&) = delete;
    ~redis_sharded()
    {
        if (state_)
            state_->stop();
    }

    const asio::any_io_executor& get_executor() const noexcept { return state_->executor; }

    void set_message_handler(backplane::message_handler h) { state_->on_message = std::move(h); }

    void subscribe(std::string_view channel)
    {
        if (auto* added = state_->channels.add(channel))
            state_->place(*added);
    }

    void unsubscribe(std::string_view channel)
    {
        state_->channels.remove(channel, [channel](shard& sh) { sh.sub.unsubscribe(channel); });
    }

    void publish(std::string_view channel, std::string_view data, backplane::publish_handler done = {})
    {
        ++state_->counts.published;
        state_->publish(std::make_shared<outgoing>(outgoing{std::string(channel), std::string(data), std::move(done), 0}));
    }

    /// Whether the slot map is known, every channel is placed, and every
    /// connection to a master is ready.
    bool connected() const noexcept { return state_->map && state_->settled(); }

    /// The master serving `channel` now, per the map (empty before the map).
    std::optional<redis::node_address> node_of(std::string_view channel) const
    {
        if (!state_->map)
            return std::nullopt;
        return state_->map->master(redis::hash_slot(channel));
    }

    /// Calls `done({})` once every publisher, then every subscriber
    /// connection answered a PING: every publish before it was answered and
    /// its messages handed to the hub, every change of subscription is in
    /// effect. Or `done(ec)` with the first failure. Later, on the executor.
    void ping(redis::done_handler done) { state_->ping_all(std::move(done)); }

    redis_sharded_stats stats() const noexcept
    {
        auto s = state_->counts;
        s.map_reads = state_->watch.reads();
        s.shards = state_->shards.size();
        for (const auto& [node, sh] : state_->shards) {
            s.received += sh->sub.stats().received;
            s.reconnects += sh->pub.stats().connection.reconnects + sh->sub.stats().connection.reconnects;
        }
        return s;
    }

private:
    // A publish, until its reply.
    struct outgoing {
        std::string channel, data;
        backplane::publish_handler done;
        unsigned redirects = 0;
    };

    // One master: its two connections.
    struct shard {
        shard(const asio::any_io_executor& ex, const redis::config& cfg, const redis_sharded_options& o)
            : node{cfg.host, cfg.port}, pub(ex, cfg, named(o, ":pub")),
              sub(ex, cfg, named(o, ":sub"), redis::pubsub_mode::sharded)
        {
        }
        bool ready() const noexcept
        {
            return pub.state() == redis::connection_state::ready && sub.state() == redis::connection_state::ready;
        }
        redis::node_address node;
        redis::connection pub;
        redis::subscriber sub;
    };

    // Shared with the handlers of the connections and timers, which may
    // outlive a move of the broker; `self` lets them find it while it lives.
    struct state {
        state(asio::any_io_executor ex, std::vector<redis::config> s, redis_sharded_options o)
            : executor(ex), options(std::move(o)), watch(ex, std::move(s), watch_options(options))
        {
        }

        // ---- the map ----

        // The new map: every channel to its owner, masters no longer named
        // let go, waiting publishes sent.
        void apply(redis::slot_map m)
        {
            map = std::move(m);
            for (auto& entry : channels)
                place(entry);
            const auto& masters = map->masters(); // read afresh: each serves a slot
            for (auto it = shards.begin(); it != shards.end();) {
                if (std::find(masters.begin(), masters.end(), it->first) != masters.end()) {
                    ++it;
                    continue;
                }
                // Its channels are elsewhere now; its counts stay in the stats.
                counts.received += it->second->sub.stats().received;
                counts.reconnects += it->second->pub.stats().connection.reconnects
                                     + it->second->sub.stats().connection.reconnects;
                it = shards.erase(it);
            }
            auto waiting_publishes = std::move(waiting);
            waiting.clear();
            for (auto& p : waiting_publishes)
                publish(std::move(p));
        }

        // ---- channels ----

        // Subscribes a channel at the master of its slot, moving it there
        // from the node that held it.
        void place(redis::detail::placement<shard>::entry& entry)
        {
            if (!map)
                return;
            channels.place(entry, shard_for(map->master(redis::hash_slot(entry.first))), [&](shard* from, shard& to) {
                if (from) {
                    from->sub.unsubscribe(entry.first);
                    ++counts.moved;
                }
                to.sub.subscribe(entry.first);
            });
        }

        // A node ended or refused these channels: wherever the map says now,
        // after the MOVED's correction, else after the next read.
        void dropped(shard* from, std::vector<std::string> lost, const std::string& why)
        {
            counts.dropped += lost.size();
            const auto redirect = redis::parse_redirect(why);
            if (redirect && map && !redirect->ask)
                map->move(redirect->slot, redirect->to);
            for (const auto& name : lost) {
                auto* entry = channels.drop(name, from); // waits for a map that names another node
                if (!entry)
                    continue;
                ++counts.moved;
                if (map && map->master(redis::hash_slot(name)) != from->node)
                    place(*entry);
            }
            watch.read();
        }

        // ---- publishing ----

        void publish(std::shared_ptr<outgoing> p)
        {
            if (!map) {
                if (waiting.size() >= options.connection.max_pending)
                    return fail(std::move(p->done), error::queue_full);
                waiting.push_back(std::move(p));
                return;
            }
            shard& owner = shard_for(map->master(redis::hash_slot(p->channel)));
            send(owner.pub, std::move(p));
        }

        // The command's arguments are views into *p, which the handler keeps
        // alive (a MOVED sends it again).
        void send(redis::connection& conn, std::shared_ptr<outgoing> p)
        {
            const std::initializer_list<std::string_view> command{"SPUBLISH", p->channel, p->data};
            conn.execute(command, [w = self, p](std::error_code ec, const redis::reply& r) mutable {
                auto s = w.lock();
                if (!s)
                    return;
                const auto redirect = ec == error::server_error ? redis::parse_redirect(r.text) : std::nullopt;
                if (!redirect || p->redirects >= s->options.max_redirects) {
                    if (ec)
                        ++s->counts.publish_errors;
                    if (p->done)
                        p->done(ec);
                    return;
                }
                ++s->counts.redirects;
                ++p->redirects;
                if (redirect->ask) { // once, there, without changing the map
                    shard& there = s->shard_for(redirect->to);
                    there.pub.execute({"ASKING"}, [](std::error_code, const redis::reply&) {});
                    return s->send(there.pub, std::move(p));
                }
                if (s->map)
                    s->map->move(redirect->slot, redirect->to);
                s->watch.read();
                s->publish(std::move(p));
            });
        }

        void fail(backplane::publish_handler done, std::error_code ec)
        {
            ++counts.publish_errors;
            if (done)
                asio::post(executor, [done = std::move(done), ec] { done(ec); });
        }

        // ---- shards ----

        shard& shard_for(const redis::node_address& node)
        {
            auto it = shards.find(node);
            if (it != shards.end())
                return *it->second;
            auto sh = std::make_unique<shard>(executor, config_for(node), options);
            shard* raw = sh.get();
            sh->sub.set_message_handler([w = self](std::string_view channel, std::string_view data) {
                if (auto s = w.lock(); s && s->on_message)
                    s->on_message(channel, {}, data);
            });
            sh->sub.set_dropped_handler([w = self, ex = executor, raw](std::vector<std::string>&& lost,
                                                                       std::string_view why) {
                // Not from inside the subscriber's read: the answer may retire it.
                asio::post(ex, [w, raw, lost = std::move(lost), why = std::string(why)]() mutable {
                    if (auto s = w.lock(); s && s->owns(raw))
                        s->dropped(raw, std::move(lost), why);
                });
            });
            return *shards.emplace(node, std::move(sh)).first->second;
        }

        bool owns(const shard* sh) const
        {
            for (const auto& [node, mine] : shards)
                if (mine.get() == sh)
                    return true;
            return false;
        }

        redis::config config_for(const redis::node_address& node) const { return watch.config_for(node); }

        // ---- watching ----

        // The masters to ask for the map first: those whose connection is up.
        std::vector<redis::node_address> masters_ready() const
        {
            std::vector<redis::node_address> ready;
            for (const auto& [node, sh] : shards)
                if (sh->pub.state() == redis::connection_state::ready)
                    ready.push_back(node);
            return ready;
        }

        bool settled() const
        {
            if (channels.waiting() > 0)
                return false;
            for (const auto& [node, sh] : shards)
                if (!sh->ready())
                    return false;
            return true;
        }

        // Every publisher answers a PING (so every publish before it is
        // answered, and its messages are on their way to the subscribers),
        // then every subscriber (so they have arrived).
        void ping_all(redis::done_handler done)
        {
            redis::for_each_node(executor, shards, [](std::unique_ptr<shard>& sh, redis::done_handler one) {
                sh->pub.execute({"PING"}, [one](std::error_code ec, const redis::reply&) { one(ec); });
            },
            [w = self, done = std::move(done)](std::error_code ec) mutable {
                auto s = w.lock();
                if (ec || !s)
                    return done(ec ? ec : make_error_code(error::operation_aborted));
                redis::for_each_node(s->executor, s->shards, [](std::unique_ptr<shard>& sh, redis::done_handler one) {
                    sh->sub.ping(std::move(one));
                }, std::move(done));
            });
        }

        void stop()
        {
            watch.stop();
            shards.clear();
            on_message = nullptr;
        }

        asio::any_io_executor executor;
        redis_sharded_options options;
        std::weak_ptr<state> self;
        backplane::message_handler on_message;
        std::optional<redis::slot_map> map;
        std::unordered_map<redis::node_address, std::unique_ptr<shard>, redis::node_hash> shards;
        redis::detail::placement<shard> channels; // wanted, and where
        std::vector<std::shared_ptr<outgoing>> waiting;   // published before the first map
        redis::cluster_watch watch;
        redis_sharded_stats counts;
    };

    static redis::cluster_watch_options watch_options(const redis_sharded_options& o)
    {
        return {named(o, ":map"), o.refresh_interval, o.retry_interval, o.map_timeout};
    }

    static redis::connection_options named(const redis_sharded_options& o, const char* suffix)
    {
        auto c = o.connection;
        c.client_name = o.client_name.empty() ? std::string() : o.client_name + suffix;
        return c;
    }

    std::shared_ptr<state> state_;
};

static_assert(is_broker_v<redis_sharded>, "redis_sharded must satisfy the Broker requirements");

} // namespace backplane::broker

#endif
