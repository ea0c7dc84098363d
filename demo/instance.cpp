// backplane-instance: the reference server. One process is one instance; run
// several on one Redis and put any load balancer in front of them.
//
//   redis-server --port 6379 &
//   build/demo/backplane-instance --port 8081 --instance-id a --broker redis-pubsub --redis redis://127.0.0.1:6379 &
//   build/demo/backplane-instance --port 8082 --instance-id b --broker redis-pubsub --redis redis://127.0.0.1:6379 &
//   open http://127.0.0.1:8081/ and http://127.0.0.1:8082/ in two browser tabs
//
// With --broker redis-streams messages are kept in Redis streams: a client
// that reconnects with ?last_id=ID (and &last_dm_id=ID) is caught up, and
// direct messages to a user with no connection wait in an inbox. On a Redis
// Cluster, --broker redis-sharded (Pub/Sub) or redis-sharded-streams (with
// history), and --redis lists seed nodes: redis://host:port,host:port.
//
// One port serves the WebSocket endpoint (GET /ws, with a token), the chat page
// (GET /), GET /healthz and GET /metrics (or --metrics-address does, and
// prints "metrics on PORT" as its second line); the client protocol is described in
// the README. With --port 0 the port is chosen by the system; the first
// line on stdout always says which ("listening on PORT"). SIGINT or SIGTERM
// drains: every client is told {"type":"draining"} and has --drain-grace ms to
// close by itself (so that nothing it sent is cut off by our close); the rest
// are closed with 1001, and the process exits 0.
//
// The parts: command_line.hpp (the flags), server.hpp (the transport, the hub
// and the protocol joined), protocol.hpp (the client protocol, without
// sockets), limits.hpp (what one connection may do, without sockets),
// tokens.hpp (what a connection's token allows, and its end), http.hpp (the
// page, /healthz, /metrics), json.hpp.
#include "command_line.hpp"
#include "server.hpp"

#include <backplane/backplane.hpp>
#if BACKPLANE_DEMO_WITH_REDIS // the build has backplane::redis (hiredis)
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/broker/redis_sharded.hpp>
#include <backplane/broker/redis_sharded_streams.hpp>
#include <backplane/broker/redis_streams.hpp>
#include <backplane/locator/redis_cluster_presence.hpp>
#include <backplane/locator/redis_presence.hpp>
#endif

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <utility>

namespace {

using namespace backplane;
using demo::settings;

template <class Broker, class Locator>
int serve(asio::io_context& io, const settings& s, Broker broker, Locator locator)
{
    demo::server<Broker, Locator> srv(io, s, std::move(broker), std::move(locator));
    if (auto ec = srv.listen()) {
        std::fprintf(stderr, "backplane-instance: cannot listen on %s:%u: %s\n", s.address.c_str(),
                     unsigned(s.port), ec.message().c_str());
        return 1;
    }
    std::printf("listening on %u instance %s\n", unsigned(srv.port()), srv.instance_id().c_str());
    if (srv.metrics_port())
        std::printf("metrics on %u\n", unsigned(srv.metrics_port()));
    std::fflush(stdout);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        srv.drain([&] { srv.stop_presence([&io] { io.stop(); }); });
    });
    io.run();
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    const settings s = demo::parse_args(argc, argv);
    try {
        asio::io_context io(1);
        if (s.broker == "memory") {
            broker::memory_bus bus;
            return serve(io, s, broker::memory(bus, io.get_executor()), locator::none(io.get_executor()));
        }
#if BACKPLANE_DEMO_WITH_REDIS
        if (s.broker.rfind("redis-sharded", 0) == 0) { // --redis lists seed nodes
            auto seeds = redis::parse_seeds(s.redis);
            for (auto& seed : seeds)
                if (s.redis_password)
                    seed.password = *s.redis_password;
            // Presence: the user -> instance map on the master of one slot.
            const auto on_cluster = [&](auto broker) {
                if (!s.presence)
                    return serve(io, s, std::move(broker), locator::none(io.get_executor()));
                locator::redis_cluster_presence_options po;
                po.presence.client_name = s.instance_id;
                return serve(io, s, std::move(broker), locator::redis_cluster_presence(io.get_executor(), seeds, po));
            };
            if (s.broker == "redis-sharded-streams") {
                broker::redis_sharded_streams_options o;
                o.streams.client_name = s.instance_id;
                o.streams.max_length = s.stream_length;
                o.streams.idle_expiry = s.history_expiry;
                if (s.keep_for_known)
                    o.streams.inbox.known_key = "known:{{user}}"; // in the user's slot, as the inbox
                return on_cluster(broker::redis_sharded_streams(io.get_executor(), seeds, o));
            }
            broker::redis_sharded_options o;
            o.client_name = s.instance_id;
            return on_cluster(broker::redis_sharded(io.get_executor(), seeds, o));
        }
        // The password from a file or the environment, never only from the command line.
        redis::config server = redis::parse_url(s.redis);
        if (s.redis_password)
            server.password = *s.redis_password;
        // With a Redis broker, presence is the user -> instance map in Redis.
        const auto run = [&](auto broker) {
            if (!s.presence)
                return serve(io, s, std::move(broker), locator::none(io.get_executor()));
            locator::redis_presence_options po;
            po.client_name = s.instance_id;
            return serve(io, s, std::move(broker), locator::redis_presence(io.get_executor(), server, po));
        };
        if (s.broker == "redis-streams") {
            broker::redis_streams_options o;
            o.max_length = s.stream_length;
            o.idle_expiry = s.history_expiry;
            if (s.keep_for_known)
                o.inbox.known_key = "known:{user}";
            return run(broker::redis_streams(io.get_executor(), server, o));
        }
        broker::redis_pubsub_options o; // its inboxes, with --direct instance
        o.idle_expiry = s.history_expiry;
        if (s.keep_for_known)
            o.inbox.known_key = "known:{user}";
        return run(broker::redis_pubsub(io.get_executor(), server, o));
#else
        std::fprintf(stderr, "backplane-instance: built without Redis (hiredis): only --broker memory\n");
        return 2;
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "backplane-instance: %s\n", e.what());
        return 1;
    }
}
