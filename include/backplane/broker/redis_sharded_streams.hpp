// backplane/broker/redis_sharded_streams.hpp - hubs in several processes,
// one Redis Cluster, with history: broker::redis_streams on every master.
//
//   hub_options o;                         // every name with its hash tag
//   o.global_channel = "chat:{global}";
//   o.room_channel = "chat:room:{{room}}"; // "chat:room:{lobby}"
//   o.user_channel = "notif:user:{{user}}";
//   basic_hub<transport::memory, broker::redis_sharded_streams> hub(
//       {}, broker::redis_sharded_streams(io.get_executor(), "redis://10.0.0.1:6379,10.0.0.2:6379"), o);
//
// A redis_streams broker keeps, per channel, a stream and a publish script
// that appends to it and publishes in one step. On a cluster one script runs
// on one node and touches one slot: the channel's stream, its messages and,
// for a user's channel, the user's inbox and known key must share the
// channel's slot. Redis hashes only the part of a name between the first
// '{' and the next '}' when there is one, so names whose tag is the room or
// the user do it: "chat:room:{lobby}" and its stream
// "stream:chat:room:{lobby}", "notif:user:{ann}" with "inbox:{ann}" and
// "known:{ann}". A publish whose keys would be elsewhere fails with
// error::cross_slot and writes nothing.
//
// The broker reads the slot map (redis/cluster_watch.hpp) and runs a
// redis_streams broker per master, in sharded Pub/Sub (SSUBSCRIBE, and
// SPUBLISH in the script: a message reaches its shard only): two
// connections per master, whatever the number of channels or clients. Each
// channel is subscribed on the master of its slot, and every command goes
// there; one the node no longer serves answers MOVED (the map is corrected
// and read again, the command sent to the new owner, up to max_redirects
// times) or ASK during a migration (sent once to the node importing the
// slot, after ASKING). When a channel's slot has a new master (a migration,
// whose last step makes the old node end the channel's subscription; a
// failover), the channel is subscribed there and its stream read after the
// last id the hub has, as redis_streams does after a reconnect: what was
// published meanwhile is in the stream, so nothing is lost and nothing
// delivered twice, but for what Redis itself lost (a write the old master
// acknowledged and its replica had not received when it failed: Redis
// replicates after it answers).
//
// A Broker (backplane/policies.hpp) with history and offline messages.
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_BROKER_REDIS_SHARDED_STREAMS_HPP
#define BACKPLANE_BROKER_REDIS_SHARDED_STREAMS_HPP

#include <backplane/broker/redis_streams.hpp>
#include <backplane/error.hpp>
#include <backplane/policies.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/cluster_watch.hpp>
#include <backplane/redis/detail/placement.hpp>
#include <backplane/redis/slot.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backplane::broker {

/// Settings of a redis_sharded_streams broker.
struct redis_sharded_streams_options {
    /// Settings of the broker on each master. Its keys must take their
    /// slot from the channel or user: the inbox and known keys by default
    /// here put the user in a hash tag.
    redis_streams_options streams = tagged();
    /// The slot map is read again this often, whatever happens.
    std::chrono::milliseconds refresh_interval{5000};
    /// While a connection is not ready, or a channel waits for a node, the
    /// map is read again this often.
    std::chrono::milliseconds retry_interval{100};
    /// A node that does not answer CLUSTER SLOTS within this is skipped.
    std::chrono::milliseconds map_timeout{1000};
    /// A command follows at most this many MOVED and ASK before it fails.
    unsigned max_redirects = 5;

    static redis_streams_options tagged()
    {
        redis_streams_options o;
        o.inbox.key = "inbox:{{user}}";
        return o;
    }
};

/// Counters of a redis_sharded_streams broker: those of the brokers on the
/// masters, added up (those it let go of included), and the cluster's.
struct redis_sharded_streams_stats : redis_streams_stats {
    std::uint64_t redirects = 0; ///< MOVED and ASK followed
    std::uint64_t map_reads = 0; ///< slot maps read and applied
    std::uint64_t moved = 0;     ///< channels taken over by another master
    std::uint64_t dropped = 0;   ///< channels a node ended or refused
    std::size_t shards = 0;      ///< masters connected to now
};

/// The Redis Streams broker policy for Redis Cluster. Movable; the
/// destructor closes every connection.
class redis_sharded_streams {
public:
    /// Starts reading the slot map from the seeds at once.
    /// @throws std::invalid_argument on no seed, a seed that is a Unix
    /// socket, or settings redis_streams refuses.
    redis_sharded_streams(asio::any_io_executor ex, std::vector<redis::config> seeds,
                          redis_sharded_streams_options options = {})
        : state_(std::make_shared<state>(ex, std::move(seeds), std::move(options)))
    {
        state_->self = state_;
        state_->start();
    }

    /// As above, with the seeds read by redis::parse_seeds.
    redis_sharded_streams(asio::any_io_executor ex, std::string_view urls, redis_sharded_streams_options options = {})
        : redis_sharded_streams(std::move(ex), redis::parse_seeds(urls), std::move(options))
    {
    }

    redis_sharded_streams(redis_sharded_streams&&) noexcept = default;
    redis_sharded_streams& operator=(redis_sharded_streams&&) = delete;
    ~redis_sharded_streams()
    {
        if (state_)
            state_->stop();
    }

    const asio::any_io_executor& get_executor() const noexcept { return state_->executor; }
    void set_message_handler(message_handler h) { state_->on_message = std::move(h); }

    void subscribe(std::string_view channel)
    {
        if (auto* added = state_->channels.add(channel))
            state_->place(*added);
    }

    void unsubscribe(std::string_view channel)
    {
        state_->channels.remove(channel, [channel](redis_streams& b) { b.unsubscribe(channel); });
        state_->parked.erase(std::string(channel));
    }

    void publish(std::string_view channel, std::string_view data, publish_handler done = {})
    {
        publish_direct(channel, {}, data, std::move(done));
    }

    /// As redis_streams::publish_direct, on the master of the channel's slot.
    void publish_direct(std::string_view channel, std::string_view user, std::string_view data,
                        publish_handler done = {})
    {
        const auto slot = redis::hash_slot(channel);
        if (!state_->in_slot(state_->stream_key, channel, slot)
            || (!user.empty() && !state_->in_slot(state_->inbox_key, user, slot)))
            return state_->fail(std::move(done), error::cross_slot);
        if (state_->map) // the usual case: straight to the slot's master
            return publish_on(state_->shard_for(state_->map->master(slot)), channel, user, data, std::move(done));
        if (!state_->can_wait())
            return state_->fail(std::move(done), error::queue_full);
        state_->at(slot, [channel = std::string(channel), user = std::string(user), data = std::string(data),
                          done = std::move(done)](redis_streams& b) mutable {
            publish_on(b, channel, user, data, std::move(done));
        });
    }

    void store_offline(std::string_view user, std::string_view data, publish_handler done = {})
    {
        if (!state_->can_wait())
            return state_->fail(std::move(done), error::queue_full);
        state_->at_user(user, [user = std::string(user), data = std::string(data),
                               done = std::move(done)](redis_streams& b) mutable {
            b.store_offline(user, data, std::move(done));
        });
    }

    void read_offline(std::string_view user, std::string_view channel, std::string_view after, std::size_t count,
                      offline_handler done)
    {
        if (!state_->can_wait())
            return state_->later([done = std::move(done)] { done(error::queue_full, {}); });
        state_->at_user(user, [user = std::string(user), channel = std::string(channel), after = std::string(after),
                               count, done = std::move(done)](redis_streams& b) mutable {
            b.read_offline(user, channel, after, count, std::move(done));
        });
    }

    void mark_known(std::string_view user)
    {
        state_->at_user(user, [user = std::string(user)](redis_streams& b) { b.mark_known(user); });
    }

    void remove_offline(std::string_view user, std::vector<std::string> entries, publish_handler done = {})
    {
        if (!state_->can_wait())
            return state_->fail(std::move(done), error::queue_full);
        state_->at_user(user, [user = std::string(user), entries = std::move(entries),
                               done = std::move(done)](redis_streams& b) mutable {
            b.remove_offline(user, std::move(entries), std::move(done));
        });
    }

    void history(std::string_view channel, std::string_view after, std::size_t count, history_handler done)
    {
        if (!state_->can_wait())
            return state_->later([done = std::move(done)] { done(error::queue_full, {}); });
        state_->at(redis::hash_slot(channel), [channel = std::string(channel), after = std::string(after), count,
                                               done = std::move(done)](redis_streams& b) mutable {
            b.history(channel, after, count, std::move(done));
        });
    }

    /// Whether the slot map is known, every channel is placed, and every
    /// connection to a master is ready.
    bool connected() const noexcept { return state_->map && state_->settled(); }

    /// Whether every master's broker is up to date on its channels.
    bool resumed() const noexcept
    {
        for (const auto& [node, b] : state_->shards)
            if (!b->resumed())
                return false;
        return true;
    }

    /// The last id handed to the hub on `channel`; empty if none.
    std::string last_id(std::string_view channel) const
    {
        auto* b = state_->channels.shard_of(channel);
        return b ? b->last_id(channel) : std::string();
    }

    /// The master serving `channel` now, per the map (empty before the map).
    std::optional<redis::node_address> node_of(std::string_view channel) const
    {
        if (!state_->map)
            return std::nullopt;
        return state_->map->master(redis::hash_slot(channel));
    }

    /// The stream key of `channel`.
    std::string stream_key(std::string_view channel) const { return state_->stream_key.name(channel); }

    /// Calls `done({})` once every master's command connection, then its
    /// subscriber connection, answered a PING (see redis_sharded::ping), or
    /// `done(ec)` with the first failure. Later, on the executor.
    void ping(redis::done_handler done) { state_->ping_all(std::move(done)); }

    redis_sharded_streams_stats stats() const noexcept
    {
        auto s = state_->counts;
        s.map_reads = state_->watch.reads();
        s.shards = state_->shards.size();
        for (const auto& [node, b] : state_->shards)
            add(s, b->stats());
        return s;
    }

private:
    using streams = std::unique_ptr<redis_streams>;

    static void publish_on(redis_streams& b, std::string_view channel, std::string_view user, std::string_view data,
                           publish_handler done)
    {
        if (user.empty())
            b.publish(channel, data, std::move(done));
        else
            b.publish_direct(channel, user, data, std::move(done));
    }

    static void add(redis_streams_stats& to, const redis_streams_stats& s)
    {
        to.published += s.published;
        to.publish_errors += s.publish_errors;
        to.inboxed += s.inboxed;
        to.received += s.received;
        to.duplicates += s.duplicates;
        to.resumes += s.resumes;
        to.resumed += s.resumed;
        to.gaps += s.gaps;
        to.history_reads += s.history_reads;
        to.inbox_delivered += s.inbox_delivered;
        to.unknown += s.unknown;
        to.reconnects += s.reconnects;
        to.resubscribed += s.resubscribed;
        to.probe_timeouts += s.probe_timeouts;
    }

    // Shared with the handlers of the brokers and the watch, which may
    // outlive a move of the broker; `self` lets them find it while it lives.
    struct state {
        state(asio::any_io_executor ex, std::vector<redis::config> seeds, redis_sharded_streams_options o)
            : executor(ex), options(std::move(o)), stream_key(options.streams.stream_key, "{channel}"),
              inbox_key(options.streams.inbox.key, "{user}"),
              watch(ex, std::move(seeds), {named(":map"), options.refresh_interval, options.retry_interval,
                                           options.map_timeout})
        {
            detail::streams_state::validate(options.streams); // now, not once the map is read
            const auto& known = options.streams.inbox.known_key;
            if (!known.empty()
                && redis::hash_slot(backplane::detail::name_pattern(known, "{user}").name("u"))
                       != redis::hash_slot(inbox_key.name("u")))
                throw std::invalid_argument("backplane: on a cluster the known key must be in the inbox's slot (\""
                                            + known + "\": \"known:{{user}}\")");
        }

        void start()
        {
            start_hooks();
            watch.start(redis::cluster_watch::of(self));
        }

        // ---- the map ----

        // Every channel to its owner, masters no longer named let go (their
        // channels are elsewhere now), waiting commands sent.
        void apply(redis::slot_map m)
        {
            map = std::move(m);
            for (auto& entry : channels)
                place(entry);
            const auto& masters = map->masters();
            for (auto it = shards.begin(); it != shards.end();) {
                if (std::find(masters.begin(), masters.end(), it->first) != masters.end()) {
                    ++it;
                    continue;
                }
                // Let go of once its commands are answered: a live node
                // answers MOVED, and those sent may have run. Not ready, its
                // commands never left, and go to the new owners.
                add(counts, it->second->stats());
                if (it->second->publisher().state() == redis::connection_state::ready
                    && it->second->publisher().pending() > 0)
                    retiring.push_back(std::move(it->second));
                it = shards.erase(it);
            }
            retiring.erase(std::remove_if(retiring.begin(), retiring.end(),
                                          [](const streams& b) { return b->publisher().pending() == 0; }),
                           retiring.end());
            auto ops = std::move(waiting);
            waiting.clear();
            for (auto& [slot, op] : ops)
                at(slot, std::move(op));
        }

        // Runs `op` on the broker of the master of `slot`, once the map is
        // known: until then it waits, if can_wait().
        void at(std::uint16_t slot, std::function<void(redis_streams&)> op)
        {
            if (!map) {
                if (can_wait())
                    waiting.emplace_back(slot, std::move(op));
                return;
            }
            op(shard_for(map->master(slot)));
        }

        bool can_wait() const noexcept { return map || waiting.size() < options.streams.connection.max_pending; }

        template <class F>
        void later(F f)
        {
            asio::post(executor, [w = self, f = std::move(f)]() mutable {
                if (w.lock())
                    f();
            });
        }

        // Whether `pattern`'s key for `value` is in `slot`.
        bool in_slot(const backplane::detail::name_pattern& pattern, std::string_view value, std::uint16_t slot)
        {
            pattern.name(value, scratch); // a reused buffer: no allocation per publish
            return redis::hash_slot(scratch) == slot;
        }

        void at_user(std::string_view user, std::function<void(redis_streams&)> op)
        {
            at(redis::hash_slot(inbox_key.name(user)), std::move(op));
        }

        void fail(publish_handler done, std::error_code ec)
        {
            ++counts.published;
            ++counts.publish_errors;
            if (done)
                asio::post(executor, [done = std::move(done), ec] { done(ec); });
        }

        // ---- channels ----

        // Subscribes a channel at the master of its slot, taken over from
        // the master that held it with where the hub is in its stream.
        void place(redis::detail::placement<redis_streams>::entry& entry)
        {
            if (!map)
                return;
            auto& owner = shard_for(map->master(redis::hash_slot(entry.first)));
            channels.place(entry, owner, [&](redis_streams* from, redis_streams& to) {
                detail::streams_state::handover h;
                if (from) {
                    h = from->state_->release(entry.first);
                    ++counts.moved;
                } else if (auto kept = parked.find(entry.first); kept != parked.end()) { // dropped before
                    h = std::move(kept->second);
                    parked.erase(kept);
                }
                to.state_->adopt(entry.first, std::move(h));
            });
        }

        // A node ended or refused these channels: wherever the map says now,
        // after the MOVED's correction, else after the next read.
        void dropped(redis_streams* from, std::vector<std::string> lost, const std::string& why)
        {
            counts.dropped += lost.size();
            const auto redirect = redis::parse_redirect(why);
            if (redirect && map && !redirect->ask)
                map->move(redirect->slot, redirect->to);
            for (const auto& name : lost) {
                auto* entry = channels.drop(name, from); // waits for a map that names another node
                if (!entry)
                    continue;
                parked[name] = from->state_->release(name);
                ++counts.moved;
                if (map && &shard_for(map->master(redis::hash_slot(name))) != from)
                    place(*entry);
            }
            watch.read();
        }

        // ---- masters ----

        redis_streams& shard_for(const redis::node_address& node)
        {
            auto it = shards.find(node);
            if (it != shards.end())
                return *it->second;
            streams b(new redis_streams(executor, watch.config_for(node), options.streams, redis::pubsub_mode::sharded));
            redis_streams* raw = b.get();
            b->set_message_handler([w = self](std::string_view channel, std::string_view id, std::string_view data) {
                if (auto s = w.lock(); s && s->on_message)
                    s->on_message(channel, id, data);
            });
            b->subscriber().set_dropped_handler([w = self, ex = executor, raw](std::vector<std::string>&& lost,
                                                                               std::string_view why) {
                // Not from inside the subscriber's read: the answer may retire it.
                asio::post(ex, [w, raw, lost = std::move(lost), why = std::string(why)]() mutable {
                    if (auto s = w.lock(); s && s->owns(raw))
                        s->dropped(raw, std::move(lost), why);
                });
            });
            b->state_->cluster = hooks;
            return *shards.emplace(node, std::move(b)).first->second;
        }

        // What the brokers on the masters ask of this one.
        void start_hooks()
        {
            auto h = std::make_shared<detail::streams_state::cluster_hooks>();
            h->follow = [w = self](const redis::redirect& to, std::string_view lua, std::vector<std::string> args,
                                   redis::reply_handler done) {
                auto s = w.lock();
                if (!s)
                    return done(make_error_code(error::operation_aborted), {});
                s->follow(to, lua, std::move(args), std::move(done), 1);
            };
            h->reroute = [w = self](std::string_view lua, std::vector<std::string> args, redis::reply_handler done) {
                auto s = w.lock();
                if (!s || args.size() < 2)
                    return done(make_error_code(error::operation_aborted), {});
                // The key: a script's first (after the number of keys), a command's only.
                const auto slot = redis::hash_slot(args[1]);
                s->at(slot, [w, slot, lua, args = std::move(args), done = std::move(done)](redis_streams&) mutable {
                    if (auto again = w.lock())
                        again->send_to(again->map->master(slot), false, lua, std::move(args), std::move(done), 1);
                });
            };
            hooks = std::move(h);
        }

        // Sends a command (or the script `lua`, as EVAL: the node may not
        // have it) where a MOVED or ASK said; again if it says so again.
        void follow(const redis::redirect& to, std::string_view lua, std::vector<std::string> args,
                    redis::reply_handler done, unsigned hops)
        {
            ++counts.redirects;
            if (!to.ask && map) {
                map->move(to.slot, to.to);
                watch.read();
            }
            send_to(to.to, to.ask, lua, std::move(args), std::move(done), hops);
        }

        void send_to(const redis::node_address& node, bool asking, std::string_view lua, std::vector<std::string> args,
                     redis::reply_handler done, unsigned hops)
        {
            auto& conn = shard_for(node).publisher();
            if (asking)
                conn.execute({"ASKING"}, [](std::error_code, const redis::reply&) {});
            std::vector<std::string_view> command;
            if (!lua.empty())
                command = {"EVAL", lua};
            command.insert(command.end(), args.begin(), args.end());
            conn.execute(command, [w = self, lua, args = std::move(args), done = std::move(done),
                                   hops](std::error_code ec, const redis::reply& r) mutable {
                auto s = w.lock();
                if (s && ec == error::operation_aborted && hops < s->options.max_redirects) { // never left
                    const auto slot = redis::hash_slot(args[1]);
                    return s->at(slot, [w, slot, lua, args = std::move(args), done = std::move(done),
                                        hops](redis_streams&) mutable {
                        if (auto again = w.lock())
                            again->send_to(again->map->master(slot), false, lua, std::move(args), std::move(done),
                                           hops + 1);
                    });
                }
                const auto again = s && ec == error::server_error ? redis::parse_redirect(r.text) : std::nullopt;
                if (!again || hops >= s->options.max_redirects)
                    return done(ec, r);
                s->follow(*again, lua, std::move(args), std::move(done), hops + 1);
            });
        }

        bool owns(const redis_streams* b) const
        {
            for (const auto& [node, mine] : shards)
                if (mine.get() == b)
                    return true;
            return false;
        }

        // The masters to ask for the map first: those whose connection is up.
        std::vector<redis::node_address> masters_ready() const
        {
            std::vector<redis::node_address> ready;
            for (const auto& [node, b] : shards)
                if (b->publisher().state() == redis::connection_state::ready)
                    ready.push_back(node);
            return ready;
        }

        bool settled() const
        {
            if (channels.waiting() > 0)
                return false;
            for (const auto& [node, b] : shards)
                if (!b->connected())
                    return false;
            return true;
        }

        void ping_all(redis::done_handler done)
        {
            redis::for_each_node(executor, shards, [](streams& b, redis::done_handler one) {
                b->publisher().execute({"PING"}, [one](std::error_code ec, const redis::reply&) { one(ec); });
            },
            [w = self, done = std::move(done)](std::error_code ec) mutable {
                auto s = w.lock();
                if (ec || !s)
                    return done(ec ? ec : make_error_code(error::operation_aborted));
                redis::for_each_node(s->executor, s->shards, [](streams& b, redis::done_handler one) {
                    b->subscriber().ping(std::move(one));
                }, std::move(done));
            });
        }

        void stop()
        {
            watch.stop();
            hooks.reset();
            shards.clear();
            retiring.clear();
            on_message = nullptr;
        }

        redis::connection_options named(const char* suffix) const
        {
            auto c = options.streams.connection;
            c.client_name = options.streams.client_name.empty() ? std::string()
                                                                : options.streams.client_name + suffix;
            return c;
        }

        asio::any_io_executor executor;
        redis_sharded_streams_options options;
        backplane::detail::name_pattern stream_key, inbox_key;
        std::weak_ptr<state> self;
        message_handler on_message;
        std::optional<redis::slot_map> map;
        std::unordered_map<redis::node_address, streams, redis::node_hash> shards;
        std::vector<streams> retiring; // let go of, answering what was sent to it
        std::shared_ptr<const detail::streams_state::cluster_hooks> hooks;
        redis::detail::placement<redis_streams> channels; // wanted, and where
        std::unordered_map<std::string, detail::streams_state::handover> parked; // dropped, waiting for a node
        std::vector<std::pair<std::uint16_t, std::function<void(redis_streams&)>>> waiting; // before the first map
        redis::cluster_watch watch;
        redis_sharded_streams_stats counts;
        std::string scratch;
    };

    std::shared_ptr<state> state_;
};

static_assert(is_broker_v<redis_sharded_streams> && has_history_v<redis_sharded_streams>
                  && has_publish_direct_v<redis_sharded_streams>,
              "redis_sharded_streams must satisfy the Broker requirements, with history and offline messages");

} // namespace backplane::broker

#endif
