// Test support for the brokers on a Redis Cluster: several hubs, each with
// its own broker on one real local cluster (the Cluster of scenarios.hpp),
// and how to find a channel that lives on a given master.
#ifndef BACKPLANE_TESTS_SHARDED_CLUSTER_HPP
#define BACKPLANE_TESTS_SHARDED_CLUSTER_HPP

#include <backplane/hub.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/transport/memory.hpp>

#include "../support/redis_cluster_server.hpp"
#include "redis_cluster.hpp"

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace backplane::test {

/// N hubs, "i1".."iN", each with its own Broker on one cluster, reached
/// through all its nodes as seeds; `make_locator(io)` makes each hub's
/// locator (without it, Locator(executor)).
template <class Broker, class Options, class Locator = locator::none>
struct basic_sharded_cluster {
    using hub_type = basic_hub<transport::memory, Broker, Locator>;

    basic_sharded_cluster(const redis_cluster_server& cluster, int n, Options base = {}, hub_options hub_base = {},
                          std::function<Locator(asio::io_context&)> make_locator = {})
    {
        for (int i = 0; i < n; ++i) {
            hub_options options = hub_base;
            options.instance_id = "i" + std::to_string(i + 1);
            hubs.push_back(std::make_unique<hub_type>(
                transport::memory{}, Broker(io.get_executor(), "redis://" + cluster.seeds(), named(base, options.instance_id)),
                locator_for(make_locator), options));
        }
        REQUIRE(run_until(io, [&] { return connected(); }, 10000ms));
    }

    hub_type& operator[](int i) { return *hubs[i]; }

    bool connected()
    {
        for (auto& h : hubs)
            if (!h->broker().connected())
                return false;
        return true;
    }

    std::pair<transport::memory::connection_handle, connection_id> connect(int i, std::string_view user)
    {
        auto c = transport::memory::make_connection();
        std::error_code ec;
        const auto id = hubs[i]->open(c, user, ec);
        REQUIRE_FALSE(ec);
        return {c, id};
    }

    /// Every publish answered and delivered, every subscription in effect.
    void run()
    {
        REQUIRE(run_until(io, [&] { return connected(); }, 10000ms));
        std::size_t left = hubs.size();
        for (auto& h : hubs)
            h->broker().ping([&](std::error_code ec) {
                CHECK_FALSE(ec);
                --left;
            });
        REQUIRE(run_until(io, [&] { return left == 0; }));
    }
    void settle() { run(); }

    asio::io_context io;
    std::vector<std::unique_ptr<hub_type>> hubs;

private:
    Locator locator_for(const std::function<Locator(asio::io_context&)>& make)
    {
        if constexpr (std::is_constructible_v<Locator, asio::any_io_executor>)
            if (!make)
                return Locator(io.get_executor());
        return make(io);
    }

    // The connections' names in CLIENT LIST start with the instance's id.
    static Options named(Options o, const std::string& id)
    {
        name(o, id, 0);
        return o;
    }
    template <class O>
    static auto name(O& o, const std::string& id, int) -> decltype(void(o.client_name = id))
    {
        o.client_name = id;
    }
    template <class O>
    static void name(O& o, const std::string& id, long) // redis_sharded_streams_options
    {
        o.streams.client_name = id;
    }
};

/// The index of the cluster node at `node`.
inline std::size_t index_of(redis_cluster_server& cluster, const redis::node_address& node)
{
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (cluster.node(i).port() == node.port)
            return i;
    FAIL("no node at port " << node.port);
    return 0;
}

/// Names "<prefix>N" until the channel "<tier>N<end>" lives on `node`.
template <class Broker>
std::string channel_on(const Broker& b, const redis::node_address& node, const std::string& prefix,
                       const std::string& tier = "chat:room:", const std::string& end = "")
{
    for (int i = 0;; ++i) {
        const auto name = prefix + std::to_string(i);
        if (*b.node_of(tier + name + end) == node)
            return name;
    }
}

/// The number in "m<number>".
inline int number(const std::string& text) { return std::stoi(text.substr(1)); }

} // namespace backplane::test

#endif
