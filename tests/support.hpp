// Test support: several hubs ("instances") in one process on one io_context.
#ifndef BACKPLANE_TESTS_SUPPORT_HPP
#define BACKPLANE_TESTS_SUPPORT_HPP

#include <backplane/backplane.hpp>
#include <backplane/locator/memory.hpp>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace backplane::test {

using connection_ptr = transport::memory::connection_handle;

/// A memory broker that also logs what the hub asks of it: "+channel" for a
/// subscribe, "-channel" for an unsubscribe, "pub channel" for a publish.
struct recording_broker {
    broker::memory inner;
    std::shared_ptr<std::vector<std::string>> log = std::make_shared<std::vector<std::string>>();

    asio::any_io_executor get_executor() const { return inner.get_executor(); }
    void set_message_handler(message_handler h) { inner.set_message_handler(std::move(h)); }
    void subscribe(std::string_view ch)
    {
        log->push_back("+" + std::string(ch));
        inner.subscribe(ch);
    }
    void unsubscribe(std::string_view ch)
    {
        log->push_back("-" + std::string(ch));
        inner.unsubscribe(ch);
    }
    void publish(std::string_view ch, std::string_view data, publish_handler done)
    {
        log->push_back("pub " + std::string(ch));
        inner.publish(ch, data, std::move(done));
    }
};

using recording_hub = basic_hub<transport::memory, recording_broker>;
/// Hubs that know where users are (direct_routing::instance_channel).
using located_hub = basic_hub<transport::memory, broker::memory, locator::memory>;

/// N hubs, named "i1".."iN", on one bus (the backplane) or on one bus each
/// (no backplane), all on one single-threaded io_context.
template <class Hub = memory_hub>
struct cluster {
    explicit cluster(int n, bool shared_bus = true, hub_options base = {})
    {
        for (int i = 0; i < n; ++i) {
            if (i == 0 || !shared_bus)
                buses.push_back(std::make_unique<broker::memory_bus>());
            auto options = base;
            options.instance_id = "i" + std::to_string(i + 1);
            broker::memory endpoint(*buses.back(), io.get_executor());
            if constexpr (std::is_same_v<Hub, recording_hub>)
                hubs.push_back(std::make_unique<Hub>(
                    transport::memory{}, recording_broker{std::move(endpoint)}, options));
            else if constexpr (std::is_same_v<Hub, located_hub>)
                hubs.push_back(std::make_unique<Hub>(transport::memory{}, std::move(endpoint),
                                                     locator::memory(users, io.get_executor()), options));
            else
                hubs.push_back(std::make_unique<Hub>(transport::memory{}, std::move(endpoint), options));
        }
    }

    Hub& operator[](int i) { return *hubs[i]; }

    /// Opens a connection of `user` on hub `i`.
    std::pair<connection_ptr, connection_id> connect(int i, std::string_view user)
    {
        auto c = transport::memory::make_connection();
        std::error_code ec;
        const auto id = hubs[i]->open(c, user, ec);
        REQUIRE_FALSE(ec);
        return {c, id};
    }

    /// Subscriptions take effect at once on the memory bus: this only runs
    /// what is queued (see scenarios.hpp).
    void settle() { run(); }

    /// Runs until every queued delivery is done.
    void run()
    {
        io.restart();
        io.run();
    }

    asio::io_context io;
    locator::memory_directory users; // for located hubs
    std::vector<std::unique_ptr<broker::memory_bus>> buses;
    std::vector<std::unique_ptr<Hub>> hubs;
};

} // namespace backplane::test

#endif
