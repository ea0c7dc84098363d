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

#include <backplane/auth/jwt.hpp>
#include <backplane/hub.hpp>
#include <backplane/names.hpp>
#include <backplane/transport/websocketpp.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace demo {

struct settings {
    std::string address = "0.0.0.0";
    std::uint16_t port = 8080;
    std::string instance_id;
    std::string broker = "memory";
    std::string redis = "redis://127.0.0.1:6379";
    std::size_t stream_length = 1000; // entries kept per stream (redis-streams, redis-sharded-streams)
    std::size_t global_channels = 1;  // broadcasts spread over this many channels (redis-sharded)
    // A stream or inbox nothing is written to for this long is deleted (the
    // Redis brokers' idle_expiry, and its default); 0: never.
    std::chrono::seconds history_expiry = std::chrono::hours(24 * 7);
    backplane::transport::websocketpp_options transport;
    std::size_t max_text = 16 * 1024;
    bool presence = true;       // the user -> instance map (Redis brokers only)
    std::string direct = "user"; // direct-message routing: user, shared, instance
    /// Whether direct messages are kept (and, with the streams broker,
    /// written at all) only for users who have connected within
    /// history_expiry: behind tokens, a made-up name then costs no key.
    bool keep_for_known = true;
    /// Verifies clients' tokens; nullopt: --auth none, a client names itself.
    std::optional<backplane::auth::jwt_options> jwt;
    /// Origins whose pages may open a WebSocket here; empty: the page's own
    /// host only; "*": any.
    std::vector<std::string> allowed_origins;
    bool online = false; // whether a client may list who is online
    bool where = true;   // whether a client may ask where a user is (and so whether online)
    /// Where /metrics is served alone; empty host: on --port, with the rest.
    std::string metrics_host;
    std::uint16_t metrics_port = 0;
    /// The Redis password, from a file or the environment: a password in
    /// --redis shows in `ps` to every user of the machine.
    std::optional<std::string> redis_password;
    std::size_t max_rooms = backplane::hub_options{}.max_rooms_per_connection; // 0: no limit
    limits::rate_settings rates; // per connection; 0: no limit
    limits::rate_settings user_rates = limits::user_rate_defaults(); // all connections of a user together
    std::size_t max_in_flight = 4; // requests of one connection waiting on Redis; 0: no limit
    std::size_t max_per_user = 16;   // connections of one user on this instance; 0: no limit
    std::size_t max_per_address = 0; // connections from one peer address; 0: no limit
};

// The contents of `path`, or nullopt if it cannot be read.
inline std::optional<std::string> read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// The verifier's settings from the --auth-* flags; `fail` exits.
template <class Fail>
backplane::auth::jwt_options jwt_settings(const std::string& key_file, const std::string& algorithm,
                                          const std::string& issuer, const std::string& audience, Fail fail)
{
    if (key_file.empty())
        fail("--auth jwt (the default) needs --auth-key FILE, the key that verifies clients' tokens; "
             "--auth none lets every client name itself (development only)");
    auto key = read_file(key_file);
    if (!key)
        fail(("cannot read --auth-key " + key_file).c_str());
    backplane::auth::jwt_options o;
    o.alg = algorithm == "RS256"   ? backplane::auth::algorithm::rs256
            : algorithm == "ES256" ? backplane::auth::algorithm::es256
                                   : backplane::auth::algorithm::hs256;
    const bool pem = key->find("-----BEGIN PUBLIC KEY-----") != std::string::npos;
    if (o.alg == backplane::auth::algorithm::hs256) {
        if (pem)
            fail("--auth-key holds a public key: say --auth-algorithm RS256 or ES256");
        if (key->size() >= 1 && key->back() == '\n')
            key->pop_back();
        if (key->size() >= 1 && key->back() == '\r')
            key->pop_back();
        if (key->size() < 32)
            fail("an HS256 --auth-key needs at least 32 bytes (a short secret can be found by brute force)");
    } else if (!pem) {
        fail("an RS256 or ES256 --auth-key must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
    }
    o.key = std::move(*key);
    o.issuer = issuer;
    o.audience = audience;
    return o;
}

// Exits (2, or 0 after --help) when the command line is not one to run with.
inline settings parse_args(int argc, char** argv)
{
    settings s;
    CLI::App app("backplane-instance: the reference server, one instance of many behind a load balancer",
                 "backplane-instance");
    // A flag given twice: the last one holds (a script can add to a default).
    app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    std::string presence = "on", batch_writes = "on", online = "off", where = "on";
    std::string auth = "jwt", auth_key, auth_algorithm = "HS256", auth_issuer, auth_audience, keep_for;
    std::uint64_t max_outbound = s.transport.max_outbound_bytes, max_connections = s.transport.max_connections;
    std::uint64_t ping_ms = std::uint64_t(s.transport.ping_interval.count());
    std::uint64_t idle_ms = std::uint64_t(s.transport.idle_timeout.count());
    std::uint64_t handshake_ms = std::uint64_t(s.transport.handshake_timeout.count());
    std::uint64_t max_handshakes = s.transport.max_handshakes;
    std::uint64_t grace_ms = 1000, leeway_s = 30;
    std::uint64_t expiry_s = std::uint64_t(s.history_expiry.count());
    const auto on_off = CLI::IsMember({"on", "off"});
    const auto ms = CLI::Range(std::uint64_t(0), std::uint64_t(24) * 3600 * 1000);
    app.add_option("--port", s.port, "TCP port; 0: the system chooses (the first line on stdout says which)")
        ->check(CLI::Range(0, 65535));
    app.add_option("--address", s.address, "address to listen on");
    app.add_option("--instance-id", s.instance_id, "this instance's name (default: a random one)");
    app.add_option("--broker", s.broker, "the backplane")
        ->check(CLI::IsMember({"memory", "redis-pubsub", "redis-streams", "redis-sharded", "redis-sharded-streams"}));
    app.add_option("--redis", s.redis, "redis://[user:password@]host:port[/db]");
    app.add_option("--global-channels", s.global_channels,
                   "broadcasts spread over this many channels, each instance publishing on one: on a Redis "
                   "Cluster (redis-sharded) one channel is one master's; not with a broker that keeps history")
        ->check(CLI::Range(std::size_t(1), std::size_t(1024)));
    app.add_option("--stream-length", s.stream_length, "entries kept per stream (redis-streams, redis-sharded-streams)")
        ->check(CLI::Range(std::size_t(1), std::size_t(1) << 40));
    app.add_option("--history-expiry", expiry_s,
                   "seconds a stream or inbox nothing is written to is kept in Redis (0: never); a client that "
                   "resumes a channel idle for longer gets recovered:false")
        ->check(CLI::Range(std::uint64_t(0), std::uint64_t(3650) * 24 * 3600));
    app.add_option("--max-connections", max_connections, "WebSocket connections accepted at once")
        ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 32));
    app.add_option("--max-outbound", max_outbound, "bytes queued for one client before it is closed (1008)")
        ->check(CLI::Range(std::uint64_t(1024), std::uint64_t(1) << 40));
    app.add_option("--ping-interval", ping_ms, "ms of silence before a client is pinged (0: never)")->check(ms);
    app.add_option("--idle-timeout", idle_ms, "ms of silence before a client is closed (1001)")->check(ms);
    app.add_option("--max-handshakes", max_handshakes,
                   "connections whose handshake is not done yet; at the limit accepting pauses (0: no limit)");
    app.add_option("--handshake-timeout", handshake_ms,
                   "ms a client has, once connected, to complete its handshake before the socket is dropped")
        ->check(CLI::Range(std::uint64_t(1), std::uint64_t(3600) * 1000));
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
    app.add_option("--max-user-rate", s.user_rates.messages,
                   "requests a second all connections of one user may send together (0: no limit)")
        ->check(rate);
    app.add_option("--max-user-burst", s.user_rates.message_burst, "requests one user may send at once")
        ->check(CLI::Range(1.0, 1e9));
    app.add_option("--max-user-broadcast-rate", s.user_rates.broadcasts,
                   "broadcasts a second all connections of one user may send together (0: no limit)")
        ->check(rate);
    app.add_option("--max-user-broadcast-burst", s.user_rates.broadcast_burst, "broadcasts one user may send at once")
        ->check(CLI::Range(1.0, 1e9));
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
    app.add_option("--keep-for", keep_for,
                   "whom direct messages are kept for while offline: known (users who connected within "
                   "--history-expiry; a DM to a name nobody connected as writes nothing) or any name; "
                   "default: known with --auth jwt, any with --auth none")
        ->check(CLI::IsMember({"known", "any"}));
    app.add_option("--auth", auth,
                   "jwt: a client presents a signed token naming its user; none: a client names itself "
                   "with ?user= (development only: anyone can be anyone)")
        ->check(CLI::IsMember({"jwt", "none"}));
    app.add_option("--auth-key", auth_key,
                   "file with the key that verifies tokens: the HS256 secret (32 bytes at least; one trailing "
                   "newline is not part of it) or the RS256/ES256 public key (PEM)");
    app.add_option("--auth-algorithm", auth_algorithm, "the one algorithm tokens may be signed with")
        ->check(CLI::IsMember({"HS256", "RS256", "ES256"}));
    app.add_option("--auth-issuer", auth_issuer, "if set, a token's iss must be this");
    app.add_option("--auth-audience", auth_audience, "if set, a token's aud must be or list this");
    app.add_option("--auth-leeway", leeway_s, "seconds a token's exp and nbf may be off (clocks differ)")
        ->check(CLI::Range(std::uint64_t(0), std::uint64_t(3600)));
    app.add_option("--allowed-origin", s.allowed_origins,
                   "an origin (https://chat.example) whose pages may connect; repeat for more; \"*\": any. "
                   "Default: only pages served from the host the client connects to")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--online", online, "whether a client may list who is online (the others' names)")
        ->check(on_off);
    app.add_option("--where", where, "whether a client may ask where a named user is (and so whether it is online)")
        ->check(on_off);
    std::string metrics_address, redis_password_file;
    app.add_option("--metrics-address", metrics_address,
                   "HOST:PORT: serve /metrics there, and not on --port (where clients connect)");
    app.add_option("--redis-password-file", redis_password_file,
                   "file with the Redis password (one trailing newline not part of it); else the environment's "
                   "BACKPLANE_REDIS_PASSWORD, if set; either replaces a password in --redis");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e) == 0 ? 0 : 2);
    }
    s.transport.max_connections = static_cast<std::size_t>(max_connections);
    s.transport.max_outbound_bytes = static_cast<std::size_t>(max_outbound);
    // Replays and inboxes pause at the backpressure mark and go on once
    // written: the mark must sit well under the limit, or they would reach it.
    s.transport.backpressure_bytes = std::min(s.transport.backpressure_bytes, s.transport.max_outbound_bytes / 4);
    s.transport.ping_interval = std::chrono::milliseconds(ping_ms);
    s.transport.idle_timeout = std::chrono::milliseconds(idle_ms);
    s.transport.handshake_timeout = std::chrono::milliseconds(handshake_ms);
    s.transport.max_handshakes = static_cast<std::size_t>(max_handshakes);
    s.transport.drain_grace = std::chrono::milliseconds(grace_ms);
    s.transport.drain_notice = std::string(protocol::draining);
    s.transport.batch_writes = batch_writes == "on";
    s.history_expiry = std::chrono::seconds(expiry_s);
    // One instance: nothing to map.
    s.presence = presence == "on" && s.broker != "memory";
    const auto fail = [](const char* why) {
        std::fprintf(stderr, "backplane-instance: %s\nRun with --help for more information.\n", why);
        std::exit(2);
    };
    if (s.global_channels > 1 && s.broker != "redis-pubsub" && s.broker != "redis-sharded")
        fail("--global-channels above 1 needs a broker without history (redis-pubsub, redis-sharded)");
    if (s.direct == "instance" && !s.presence)
        fail("--direct instance needs --presence on and a Redis broker");
    if (!s.instance_id.empty() && backplane::validate_name(s.instance_id))
        fail("--instance-id must be a valid name");
    s.online = online == "on";
    s.where = where == "on";
    if (!metrics_address.empty()) {
        const auto colon = metrics_address.rfind(':');
        const std::string port = colon == std::string::npos ? "" : metrics_address.substr(colon + 1);
        if (colon == 0 || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos
            || std::stoul(port) > 65535)
            fail("--metrics-address must be HOST:PORT");
        s.metrics_host = metrics_address.substr(0, colon);
        s.metrics_port = static_cast<std::uint16_t>(std::stoul(port));
    }
    if (!redis_password_file.empty()) {
        auto password = read_file(redis_password_file);
        if (!password)
            fail(("cannot read --redis-password-file " + redis_password_file).c_str());
        if (!password->empty() && password->back() == '\n')
            password->pop_back();
        s.redis_password = std::move(*password);
    } else if (const char* env = std::getenv("BACKPLANE_REDIS_PASSWORD")) {
        s.redis_password = env;
    }
    // Without tokens anyone may connect as any name, so being known proves nothing.
    s.keep_for_known = keep_for.empty() ? auth == "jwt" : keep_for == "known";
    if (auth == "jwt") {
        s.jwt = jwt_settings(auth_key, auth_algorithm, auth_issuer, auth_audience, fail);
        s.jwt->leeway = std::chrono::seconds(leeway_s);
    }
    return s;
}

} // namespace demo

#endif
