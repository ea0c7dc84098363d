// The Redis broker from the package: two hubs on the Redis at the Unix socket
// given as argv[1]; exits 0 if a broadcast from one reaches a client of the other.
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/hub.hpp>
#include <backplane/transport/memory.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv)
{
    if (argc != 2)
        return 2;
    using hub = backplane::basic_hub<backplane::transport::memory, backplane::broker::redis_pubsub>;
    asio::io_context io;
    const std::string url = std::string("unix://") + argv[1];
    hub a({}, {io.get_executor(), url}), b({}, {io.get_executor(), url});
    auto client = backplane::transport::memory::make_connection();
    std::error_code ec;
    b.open(client, "alice", ec);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool asked = false;
    while (client->frames_received() == 0 && std::chrono::steady_clock::now() < deadline) {
        io.run_for(std::chrono::milliseconds(10));
        // Once b's subscriptions are answered, a's broadcast reaches it.
        if (!asked && b.broker().connected()) {
            asked = true;
            b.broker().subscriber().ping([&](std::error_code e) {
                if (e)
                    asked = false; // lost meanwhile: ask again
                else
                    a.broadcast("hello");
            });
        }
    }
    const bool ok = client->texts() == std::vector<std::string>{"hello"};
    std::puts(ok ? "consumer redis: ok" : "consumer redis: message not received");
    return ok ? 0 : 1;
}
