// Two hubs on one bus; exits 0 if a broadcast from one reaches a client of the other.
#include <backplane/backplane.hpp>

#include <asio/io_context.hpp>

#include <cstdio>

int main()
{
    asio::io_context io;
    backplane::broker::memory_bus bus;
    backplane::memory_hub a({}, {bus, io.get_executor()}), b({}, {bus, io.get_executor()});
    auto client = backplane::transport::memory::make_connection();
    std::error_code ec;
    b.open(client, "alice", ec);
    if (ec || a.broadcast("hello"))
        return 1;
    io.run();
    const bool ok = client->texts() == std::vector<std::string>{"hello"};
    std::puts(ok ? "consumer: ok" : "consumer: message not received");
    return ok ? 0 : 1;
}
