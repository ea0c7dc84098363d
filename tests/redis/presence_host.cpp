// presence_host: an instance with many users and nothing else, for the
// presence tests to kill. A hub (memory transport, Redis Pub/Sub broker,
// redis_presence locator) with one connection per user: the locator keeps
// their entries alive.
//
//   presence_host redis://127.0.0.1:6379 i9 100 200 1000 [--no-notifications]
//       URL, instance id, users ("u0".."u99"), heartbeat interval and ttl in
//       ms; --no-notifications: no expiry listener, no sweep.
//
// Prints "ready" once every entry is written. SIGINT or SIGTERM: the entries
// are deleted (a clean shutdown) and the process exits 0.
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/hub.hpp>
#include <backplane/locator/redis_presence.hpp>
#include <backplane/transport/memory.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

int main(int argc, char** argv)
{
    using namespace backplane;
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s URL INSTANCE USERS INTERVAL_MS TTL_MS [--no-notifications]\n", argv[0]);
        return 2;
    }
    try {
        asio::io_context io;
        hub_options ho;
        ho.instance_id = argv[2];
        ho.direct = direct_routing::instance_channel;
        locator::redis_presence_options po;
        po.heartbeat_interval = std::chrono::milliseconds(std::atoi(argv[4]));
        po.ttl = std::chrono::milliseconds(std::atoi(argv[5]));
        if (argc > 6 && std::strcmp(argv[6], "--no-notifications") == 0) {
            po.listen_expirations = false;
            po.sweep_interval = std::chrono::milliseconds(0);
        }
        po.client_name = ho.instance_id;
        basic_hub<transport::memory, broker::redis_pubsub, locator::redis_presence> hub(
            {}, broker::redis_pubsub(io.get_executor(), argv[1]), locator::redis_presence(io.get_executor(), argv[1], po),
            ho);

        std::vector<transport::memory::connection_handle> conns;
        const int n = std::atoi(argv[3]);
        for (int i = 0; i < n; ++i) {
            const auto user = "u" + std::to_string(i);
            auto c = transport::memory::make_connection();
            std::error_code ec;
            hub.open(c, user, ec);
            if (ec) {
                std::fprintf(stderr, "open %s: %s\n", user.c_str(), ec.message().c_str());
                return 1;
            }
            conns.push_back(c);
        }
        // Replies come in order: once "u{n-1}" is found, every entry is written.
        const auto last = "u" + std::to_string(n - 1);
        std::function<void()> check = [&] {
            hub.locator().where(last, [&](std::error_code, std::string_view host) {
                if (host == hub.instance_id()) {
                    std::printf("ready\n");
                    std::fflush(stdout);
                } else {
                    check();
                }
            });
        };
        check();

        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](std::error_code, int) {
            hub.async_shutdown([&] { io.stop(); });
        });
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "presence_host: %s\n", e.what());
        return 1;
    }
}
