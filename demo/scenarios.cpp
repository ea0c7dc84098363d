// backplane-scenarios: the seed design's quiz, run in one process with
// several hubs ("instances") on an in-memory bus, printed as tables.
//
//   build/demo/backplane-scenarios
#include <backplane/backplane.hpp>

#include <asio/io_context.hpp>

#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace backplane;

namespace {

struct instances {
    instances(int n, bool backplane, hub_options base = {})
    {
        for (int i = 0; i < n; ++i) {
            if (i == 0 || !backplane)
                buses.push_back(std::make_unique<broker::memory_bus>());
            auto o = base;
            o.instance_id = "instance-" + std::to_string(i + 1);
            hubs.push_back(std::make_unique<memory_hub>(
                transport::memory{}, broker::memory(*buses.back(), io.get_executor()), o));
        }
    }

    connection_id connect(int i, const std::string& user, transport::memory::connection_handle& c)
    {
        c = transport::memory::make_connection();
        std::error_code ec;
        return hubs[i]->open(c, user, ec);
    }

    asio::io_context io;
    std::vector<std::unique_ptr<broker::memory_bus>> buses;
    std::vector<std::unique_ptr<memory_hub>> hubs;
};

void quiz1()
{
    std::puts("Quiz 1: three instances; user A on instance 1 broadcasts \"hello\".\n");
    std::puts("| backplane                    | A (instance 1) | B (instance 2) | C (instance 3) |");
    std::puts("|------------------------------|----------------|----------------|----------------|");
    for (bool shared : {false, true}) {
        instances x(3, shared);
        transport::memory::connection_handle a, b, c;
        x.connect(0, "A", a);
        x.connect(1, "B", b);
        x.connect(2, "C", c);
        x.hubs[0]->broadcast("hello");
        x.io.run();
        auto got = [](const auto& conn) { return conn->frames_received() ? "received" : "nothing"; };
        std::printf("| %-28s | %-14s | %-14s | %-14s |\n",
                    shared ? "one shared broker" : "none (a broker per instance)", got(a), got(b), got(c));
    }
    std::puts("");
}

void quiz3()
{
    constexpr int n = 5, rooms = 1000, per_room = 10;
    std::puts("Quiz 3: 1000 rooms of 10 users, spread at random over 5 instances; every room sends");
    std::puts("one message. Messages each instance receives from the broker:\n");
    std::puts("| channel design     | inst. 1 | inst. 2 | inst. 3 | inst. 4 | inst. 5 | total | deliveries |");
    std::puts("|--------------------|---------|---------|---------|---------|---------|-------|------------|");
    std::vector<std::set<int>> local(n);
    for (auto routing : {room_routing::global_channel, room_routing::per_room_channel}) {
        hub_options o;
        o.rooms = routing;
        instances x(n, true, o);
        std::mt19937 rng(3);
        std::vector<transport::memory::connection_handle> conns(rooms * per_room);
        std::vector<int> sender_at(rooms);
        for (int r = 0; r < rooms; ++r)
            for (int u = 0; u < per_room; ++u) {
                const int at = int(rng() % n);
                const auto id = x.connect(at, "u" + std::to_string(r * per_room + u), conns[r * per_room + u]);
                x.hubs[at]->join(id, "room" + std::to_string(r));
                local[at].insert(r);
                if (u == 0)
                    sender_at[r] = at;
            }
        for (int r = 0; r < rooms; ++r)
            x.hubs[sender_at[r]]->send_to_room("room" + std::to_string(r), "m");
        x.io.run();
        std::uint64_t total = 0, deliveries = 0;
        std::printf("| %-18s |", routing == room_routing::global_channel ? "one global channel" : "per-room channels");
        for (auto& h : x.hubs) {
            std::printf(" %7llu |", (unsigned long long)h->broker().received());
            total += h->broker().received();
            deliveries += h->stats().deliveries;
        }
        std::printf(" %5llu | %10llu |\n", (unsigned long long)total, (unsigned long long)deliveries);
    }
    std::printf("\nRooms with a local member, per instance:");
    for (auto& s : local)
        std::printf(" %zu", s.size());
    std::puts("\nPer-room channels: each instance receives only the messages of its rooms;");
    std::puts("one global channel: every instance receives every message and drops most.");
}

} // namespace

int main()
{
    quiz1();
    quiz3();
}
