// backplane/redis/cluster_watch.hpp - the slot map of a Redis Cluster, read
// from its nodes and kept fresh, for the brokers that place channels and keys
// on its masters (broker::redis_sharded, broker::redis_sharded_streams).
//
//   redis::cluster_watch watch(ex, seeds, options);
//   watch.start({masters_ready, settled, apply});
//   watch.read();   // now: a MOVED or a dropped channel says the map is stale
//
// A read asks the nodes in turn, the masters its owner has ready first, then
// the seeds, each for at most map_timeout, until one answers CLUSTER SLOTS
// with every slot served; that map goes to apply(). A read asked for while
// one is under way is made once it ends. Besides reads asked for, the map is
// read every retry_interval while the owner is not settled (a failover shows
// in the map once the cluster has promoted a replica), and every
// refresh_interval in any case.
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_REDIS_CLUSTER_WATCH_HPP
#define BACKPLANE_REDIS_CLUSTER_WATCH_HPP

#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::redis {

/// Reads "redis://[user:password@]host:port,host:port,redis://host:port".
/// @throws std::invalid_argument on a malformed entry.
inline std::vector<config> parse_seeds(std::string_view urls)
{
    std::vector<config> seeds;
    while (!urls.empty()) {
        const auto comma = urls.find(',');
        const auto item = urls.substr(0, comma);
        urls = comma == std::string_view::npos ? std::string_view() : urls.substr(comma + 1);
        if (item.find("://") != std::string_view::npos || seeds.empty()) {
            seeds.push_back(parse_url(item));
            continue;
        }
        auto c = parse_url("redis://" + std::string(item)); // host:port, the first seed's user and password
        c.user = seeds.front().user;
        c.password = seeds.front().password;
        seeds.push_back(std::move(c));
    }
    return seeds;
}

/// Calls each(node, one) for every element of `nodes` (a map of node to
/// connections), then done(ec) once: with the first error, or none once every
/// one() was called. Later, on `ex`.
template <class Nodes, class Each>
void for_each_node(const asio::any_io_executor& ex, Nodes& nodes, Each each, done_handler done)
{
    auto left = std::make_shared<std::size_t>(nodes.size() + 1);
    auto shared_done = std::make_shared<done_handler>(std::move(done));
    auto one = [left, shared_done](std::error_code ec) {
        if (!*shared_done)
            return;
        if (ec || --*left == 0) {
            auto d = std::move(*shared_done);
            *shared_done = nullptr;
            d(ec);
        }
    };
    for (auto& [node, n] : nodes)
        each(n, one);
    asio::post(ex, [one]() mutable { one({}); });
}

/// Settings of a cluster_watch.
struct cluster_watch_options {
    /// Settings of the connection that reads the map.
    connection_options connection;
    /// The map is read again this often, whatever happens.
    std::chrono::milliseconds refresh_interval{5000};
    /// While the owner is not settled the map is read again this often.
    std::chrono::milliseconds retry_interval{100};
    /// A node that does not answer CLUSTER SLOTS within this is skipped.
    std::chrono::milliseconds map_timeout{1000};
};

class cluster_watch {
public:
    /// What the watch asks of its owner.
    struct owner {
        std::function<std::vector<node_address>()> masters_ready; ///< asked first
        std::function<bool()> settled;                            ///< false: read every retry_interval
        std::function<void(slot_map)> apply;                      ///< a map read
    };

    /// The owner `w` points to, while it lives: its members masters_ready(),
    /// settled() and apply(slot_map).
    template <class Owner>
    static owner of(const std::weak_ptr<Owner>& w)
    {
        return {[w] {
                    auto o = w.lock();
                    return o ? o->masters_ready() : std::vector<node_address>{};
                },
                [w] {
                    auto o = w.lock();
                    return o && o->settled();
                },
                [w](slot_map m) {
                    if (auto o = w.lock())
                        o->apply(std::move(m));
                }};
    }

    /// @throws std::invalid_argument on no seed, or a seed that is a Unix socket.
    cluster_watch(asio::any_io_executor ex, std::vector<config> seeds, cluster_watch_options options)
        : state_(std::make_shared<state>(std::move(ex), std::move(seeds), std::move(options)))
    {
        state_->self = state_;
    }

    cluster_watch(cluster_watch&&) noexcept = default;
    cluster_watch& operator=(cluster_watch&&) = delete;
    ~cluster_watch() { stop(); }

    /// Reads the map now, and keeps it fresh from then on.
    void start(owner o)
    {
        state_->of = std::move(o);
        state_->read();
        state_->watch();
    }

    /// Reads the map now (once the read under way ends, if one is).
    void read() { state_->read(); }

    /// No read, no call to the owner after this.
    void stop()
    {
        if (!state_)
            return; // moved from
        state_->timer.cancel();
        state_->watch_timer.cancel();
        state_->asker.reset();
        state_->of = {};
    }

    /// How to reach `node`: the first seed's user and password, database 0
    /// (a cluster has one).
    config config_for(const node_address& node) const { return at(state_->seeds.front(), node); }

    /// Maps applied so far.
    std::uint64_t reads() const noexcept { return state_->reads; }

private:
    static config at(config c, const node_address& node)
    {
        c.host = node.host;
        c.port = node.port;
        c.database = 0;
        return c;
    }

    // Shared with the handlers of the asker and the timers.
    struct state {
        state(asio::any_io_executor ex, std::vector<config> s, cluster_watch_options o)
            : executor(std::move(ex)), seeds(std::move(s)), options(std::move(o)), timer(executor),
              watch_timer(executor)
        {
            if (seeds.empty())
                throw std::invalid_argument("backplane: a cluster needs a seed node");
            for (const auto& seed : seeds)
                if (!seed.unix_path.empty())
                    throw std::invalid_argument("backplane: a cluster node is reached by host and port");
        }

        void read()
        {
            if (reading) {
                read_again = true;
                return;
            }
            reading = true;
            read_again = false;
            candidates = of.masters_ready ? of.masters_ready() : std::vector<node_address>{};
            for (const auto& seed : seeds)
                candidates.push_back({seed.host, seed.port});
            ask_next();
        }

        void ask_next()
        {
            if (candidates.empty()) {
                asker.reset();
                return read_done();
            }
            const node_address node = candidates.front();
            candidates.erase(candidates.begin());
            asker.emplace(executor, at(seeds.front(), node), options.connection);
            const auto attempt = ++attempts;
            timer.expires_after(options.map_timeout);
            timer.async_wait([w = self, attempt](std::error_code ec) {
                auto s = w.lock();
                if (!ec && s && s->attempts == attempt)
                    s->ask_next();
            });
            asker->execute({"CLUSTER", "SLOTS"}, [w = self, attempt, node](std::error_code ec, const reply& r) {
                auto s = w.lock();
                if (!s || s->attempts != attempt)
                    return;
                auto map = ec ? std::nullopt : slot_map::from_cluster_slots(r, node);
                ++s->attempts; // the timer's wait, or this answer, is stale now
                s->timer.cancel();
                if (map) {
                    ++s->reads;
                    if (s->of.apply)
                        s->of.apply(std::move(*map));
                }
                // Not from inside the asker's own handler, which the next ask replaces.
                asio::post(s->executor, [w, done = map.has_value()] {
                    auto after = w.lock();
                    if (!after)
                        return;
                    if (!done)
                        return after->ask_next();
                    after->asker.reset();
                    after->read_done();
                });
            });
        }

        void read_done()
        {
            reading = false;
            last_read = std::chrono::steady_clock::now();
            if (read_again)
                read();
        }

        void watch()
        {
            watch_timer.expires_after(options.retry_interval);
            watch_timer.async_wait([w = self](std::error_code ec) {
                auto s = w.lock();
                if (ec || !s || !s->of.apply)
                    return;
                const bool settled = s->reads > 0 && (!s->of.settled || s->of.settled());
                if (!settled || std::chrono::steady_clock::now() - s->last_read >= s->options.refresh_interval)
                    s->read();
                s->watch();
            });
        }

        asio::any_io_executor executor;
        std::vector<config> seeds;
        cluster_watch_options options;
        std::weak_ptr<state> self;
        owner of;
        bool reading = false, read_again = false;
        std::vector<node_address> candidates;
        std::optional<connection> asker;
        std::uint64_t attempts = 0, reads = 0;
        asio::steady_timer timer, watch_timer;
        std::chrono::steady_clock::time_point last_read{};
    };

    std::shared_ptr<state> state_;
};

} // namespace backplane::redis

#endif
