// demo/command_line.hpp - the reference server's command line, checked.
//
// Read with CLI11: a value out of its range, an unknown flag or a missing
// value is an error with the reason and exit status 2, never a silent wrap
// (--port 70000 is refused, not port 4464); --help prints every flag with
// its default and exits 0.
#ifndef BACKPLANE_DEMO_COMMAND_LINE_HPP
#define BACKPLANE_DEMO_COMMAND_LINE_HPP

#include "limits.hpp"
#include "protocol.hpp"

#include <backplane/hub.hpp>
#include <backplane/names.hpp>
#include <backplane/transport/websocketpp.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace demo {

struct settings {
    std::string address = "0.0.0.0";
    std::uint16_t port = 8080;
    std::string instance_id;
    std::string broker = "memory";
    std::string redis = "redis://127.0.0.1:6379";
    std::size_t stream_length = 1000; // entries kept per stream (redis-streams)
    backplane::transport::websocketpp_options transport;
    std::size_t max_text = 16 * 1024;
    bool presence = true;       // the user -> instance map (Redis brokers only)
    std::string direct = "user"; // direct-message routing: user, shared, instance
    std::size_t max_rooms = backplane::hub_options{}.max_rooms_per_connection; // 0: no limit
    limits::rate_settings rates; // per connection; 0: no limit
    std::size_t max_in_flight = 4; // requests of one connection waiting on Redis; 0: no limit
    std::size_t max_per_user = 16;   // connections of one user on this instance; 0: no limit
    std::size_t max_per_address = 0; // connections from one peer address; 0: no limit
};

// Exits (2, or 0 after --help) when the command line is not one to run with.
inline settings parse_args(int argc, char** argv)
{
    settings s;
    CLI::App app("backplane-instance: the reference server, one instance of many behind a load balancer",
                 "backplane-instance");
    // A flag given twice: the last one holds (a script can add to a default).
    app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    std::string presence = "on", batch_writes = "on";
    std::uint64_t max_outbound = s.transport.max_outbound_bytes, max_connections = s.transport.max_connections;
    std::uint64_t ping_ms = std::uint64_t(s.transport.ping_interval.count());
    std::uint64_t idle_ms = std::uint64_t(s.transport.idle_timeout.count());
    std::uint64_t grace_ms = 1000;
    const auto on_off = CLI::IsMember({"on", "off"});
    const auto ms = CLI::Range(std::uint64_t(0), std::uint64_t(24) * 3600 * 1000);
    app.add_option("--port", s.port, "TCP port; 0: the system chooses (the first line on stdout says which)")
        ->check(CLI::Range(0, 65535));
    app.add_option("--address", s.address, "address to listen on");
    app.add_option("--instance-id", s.instance_id, "this instance's name (default: a random one)");
    app.add_option("--broker", s.broker, "the backplane")
        ->check(CLI::IsMember({"memory", "redis-pubsub", "redis-streams"}));
    app.add_option("--redis", s.redis, "redis://[user:password@]host:port[/db]");
    app.add_option("--stream-length", s.stream_length, "entries kept per stream (redis-streams)")
        ->check(CLI::Range(std::size_t(1), std::size_t(1) << 40));
    app.add_option("--max-connections", max_connections, "WebSocket connections accepted at once")
        ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 32));
    app.add_option("--max-outbound", max_outbound, "bytes queued for one client before it is closed (1008)")
        ->check(CLI::Range(std::uint64_t(1024), std::uint64_t(1) << 40));
    app.add_option("--ping-interval", ping_ms, "ms of silence before a client is pinged (0: never)")->check(ms);
    app.add_option("--idle-timeout", idle_ms, "ms of silence before a client is closed (1001)")->check(ms);
    app.add_option("--drain-grace", grace_ms,
                   "ms a drain gives clients, told {\"type\":\"draining\"}, to close by themselves")
        ->check(ms);
    app.add_option("--batch-writes", batch_writes, "one io_uring submission for many clients' frames")
        ->check(on_off);
    app.add_option("--max-rooms", s.max_rooms, "rooms one connection may be in (0: no limit)")
        ->check(CLI::Range(std::size_t(0), std::size_t(1) << 32));
    const auto rate = CLI::Range(0.0, 1e9);
    app.add_option("--max-rate", s.rates.messages, "requests a second one connection may send (0: no limit)")
        ->check(rate);
    app.add_option("--max-burst", s.rates.message_burst, "requests one connection may send at once")
        ->check(CLI::Range(1.0, 1e9));
    app.add_option("--max-broadcast-rate", s.rates.broadcasts,
                   "broadcasts a second one connection may send (0: no limit)")
        ->check(rate);
    app.add_option("--max-broadcast-burst", s.rates.broadcast_burst, "broadcasts one connection may send at once")
        ->check(CLI::Range(1.0, 1e9));
    app.add_option("--max-bytes-rate", s.rates.bytes, "request bytes a second one connection may send (0: no limit)")
        ->check(rate);
    app.add_option("--max-bytes-burst", s.rates.byte_burst,
                   "request bytes one connection may send at once (at least one largest message, 65536)")
        ->check(CLI::Range(double(s.transport.max_inbound_message), 1e12));
    app.add_option("--max-in-flight", s.max_in_flight,
                   "requests of one connection that may wait on Redis at once: where, online, join with last_id "
                   "(0: no limit)")
        ->check(CLI::Range(std::size_t(0), std::size_t(1) << 20));
    app.add_option("--max-connections-per-user", s.max_per_user,
                   "connections one user may have open on this instance (0: no limit)")
        ->check(CLI::Range(std::size_t(0), std::size_t(1) << 32));
    app.add_option("--max-connections-per-address", s.max_per_address,
                   "connections one peer address may have open (0: no limit; behind a load balancer or NAT, "
                   "many clients share one)")
        ->check(CLI::Range(std::size_t(0), std::size_t(1) << 32));
    app.add_option("--presence", presence, "the user -> instance map (Redis brokers)")->check(on_off);
    app.add_option("--direct", s.direct, "direct-message routing")
        ->check(CLI::IsMember({"user", "shared", "instance"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e) == 0 ? 0 : 2);
    }
    s.transport.max_connections = static_cast<std::size_t>(max_connections);
    s.transport.max_outbound_bytes = static_cast<std::size_t>(max_outbound);
    s.transport.ping_interval = std::chrono::milliseconds(ping_ms);
    s.transport.idle_timeout = std::chrono::milliseconds(idle_ms);
    s.transport.drain_grace = std::chrono::milliseconds(grace_ms);
    s.transport.drain_notice = std::string(protocol::draining);
    s.transport.batch_writes = batch_writes == "on";
    s.presence = presence == "on" && s.broker != "memory"; // one instance: nothing to map
    const auto fail = [](const char* why) {
        std::fprintf(stderr, "backplane-instance: %s\nRun with --help for more information.\n", why);
        std::exit(2);
    };
    if (s.direct == "instance" && !s.presence)
        fail("--direct instance needs --presence on and a Redis broker");
    if (!s.instance_id.empty() && backplane::validate_name(s.instance_id))
        fail("--instance-id must be a valid name");
    return s;
}

} // namespace demo

#endif
