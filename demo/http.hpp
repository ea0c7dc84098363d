// demo/http.hpp - the reference server's plain HTTP endpoints.
//
//   GET /            the chat page (web/index.html, embedded at build time)
//   GET /healthz     200 "ok", or 503 "draining" once a drain has begun
//   GET /metrics     Prometheus text: the transport's, the hub's and the broker's counters
//
// `respond` decides from the request alone and is tested without sockets;
// the server copies its answer into websocketpp's response.
#ifndef BACKPLANE_DEMO_HTTP_HPP
#define BACKPLANE_DEMO_HTTP_HPP

#include "limits.hpp"

#include <backplane/broker/memory.hpp>
#include <backplane/policies.hpp>
#include <backplane/transport/websocketpp.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace demo {

extern const char* const chat_page; // generated from web/index.html

namespace http {

struct response {
    int status = 404;
    std::string_view content_type = "text/plain";
    std::string body;
    bool no_store = false; ///< Cache-Control: no-store
};

/// The answer to `method` `target`; `metrics` is called for /metrics only.
template <class Metrics>
response respond(std::string_view method, std::string_view target, bool draining, Metrics&& metrics)
{
    if (method != "GET")
        return {405, "text/plain", "", false};
    const auto path = target.substr(0, target.find('?'));
    if (path == "/" || path == "/index.html")
        return {200, "text/html; charset=utf-8", chat_page, true};
    if (path == "/healthz")
        return {draining ? 503 : 200, "text/plain", draining ? "draining\n" : "ok\n", false};
    if (path == "/metrics")
        return {200, "text/plain; version=0.0.4", metrics(), false};
    return {404, "text/plain", "not found\n", false};
}

/// `value` as a Prometheus label value: a backslash, a double quote and a
/// line feed escaped (an instance id may hold the first two).
inline std::string label_value(std::string_view value)
{
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"')
            out.push_back('\\');
        if (c == '\n') {
            out.append("\\n");
            continue;
        }
        out.push_back(c);
    }
    return out;
}

// Whether a broker is on a Redis Cluster (broker::redis_sharded,
// redis_sharded_streams): its stats are of slots and masters.
template <class Broker, class = void>
struct on_redis_cluster : std::false_type {};
template <class Broker>
struct on_redis_cluster<Broker, std::void_t<decltype(std::declval<Broker&>().stats().map_reads)>> : std::true_type {};

/// The /metrics page of an instance whose hub is `hub` on transport `ws`;
/// `request_errors` counts the requests answered with an error, `refused`
/// what the limits refused.
template <class Hub>
std::string metrics(Hub& hub, const backplane::transport::websocketpp& ws, std::uint64_t request_errors,
                    const limits::counters& refused)
{
    using broker_type = typename Hub::broker_type;
    constexpr bool on_cluster = on_redis_cluster<broker_type>::value;
    constexpr bool on_redis = !std::is_same_v<broker_type, backplane::broker::memory> && !on_cluster;
    std::string out;
    const std::string label = "{instance=\"" + label_value(hub.instance_id()) + "\"} ";
    auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
        out.append(name).append(label).append(std::to_string(v)).append("\n");
    };
    const auto& t = ws.stats();
    const auto& h = hub.stats();
    metric("websocket_connections_total", "gauge", "WebSocket connections open on this instance now.",
           ws.connection_count());
    metric("backplane_connections_opened_total", "counter", "WebSocket connections opened.", t.opened);
    metric("backplane_connections_rejected_total", "counter",
           "WebSocket handshakes refused (connection limit, bad user, draining).", t.rejected);
    metric("backplane_handshakes_in_progress", "gauge", "Connections accepted whose handshake is not done yet.",
           ws.handshakes_in_progress());
    metric("backplane_accept_pauses_total", "counter", "Times accepting paused at --max-handshakes.",
           t.accept_pauses);
    metric("backplane_messages_in_total", "counter", "Messages received from clients.", t.messages_in);
    metric("backplane_bytes_in_total", "counter", "Payload bytes received from clients.", t.bytes_in);
    metric("backplane_messages_out_total", "counter", "Frames queued to clients (deliveries and replies).",
           t.frames_out);
    metric("backplane_bytes_out_total", "counter", "Payload bytes queued to clients.", t.bytes_out);
    metric("backplane_request_errors_total", "counter", "Client requests answered with an error.", request_errors);
    metric("backplane_slow_consumer_closes_total", "counter",
           "Connections closed because their outbound queue passed its limit.", t.slow_consumer_closes);
    metric("backplane_idle_closes_total", "counter", "Connections closed after the idle timeout.", t.idle_closes);
    metric("backplane_write_handovers_total", "counter",
           "Connections whose socket once filled up: websocketpp's queue writes them since.", t.handovers);
    metric("backplane_write_batches_total", "counter",
           "io_uring submissions that wrote many connections' frames at once.", t.write_batches);
    metric("backplane_too_big_closes_total", "counter", "Connections closed with 1009 (message too big).",
           t.too_big_closes);
    metric("backplane_too_many_rooms_total", "counter",
           "Joins refused because the connection was in its most rooms (--max-rooms).", refused.too_many_rooms);
    metric("backplane_rate_limited_total", "counter",
           "Requests refused over a connection's rate (--max-rate, --max-broadcast-rate, --max-bytes-rate).",
           refused.rate_limited);
    metric("backplane_rate_limit_closes_total", "counter",
           "Connections closed with 1008 for sending on far past their rate.", refused.rate_closes);
    metric("backplane_busy_total", "counter",
           "Requests refused because the connection had its most waiting on Redis (--max-in-flight).",
           refused.busy);
    metric("backplane_connections_per_user_refused_total", "counter",
           "Handshakes refused (429) or connections closed (1008) past --max-connections-per-user.",
           refused.per_user);
    metric("backplane_connections_per_address_refused_total", "counter",
           "Handshakes refused (429) or connections closed (1008) past --max-connections-per-address.",
           refused.per_address);
    metric("backplane_broker_published_total", "counter", "Messages handed to the broker.", h.published);
    metric("backplane_broker_received_total", "counter", "Messages received from the broker.", h.received);
    metric("backplane_broker_malformed_total", "counter", "Broker messages with a malformed envelope.",
           h.malformed);
    metric("backplane_broker_unrouted_total", "counter", "Broker messages with no local recipient.", h.unrouted);
    metric("backplane_deliveries_total", "counter", "Frames the hub handed to local connections.", h.deliveries);
    metric("backplane_backpressure_total", "counter", "Deliveries accepted above the backpressure mark.",
           h.backpressure);
    if constexpr (on_cluster) {
        const auto b = hub.broker().stats();
        metric("backplane_redis_connected", "gauge",
               "Whether the slot map is known and every connection to a master is ready.",
               hub.broker().connected() ? 1 : 0);
        metric("backplane_redis_publish_errors_total", "counter", "Publishes that failed.", b.publish_errors);
        metric("backplane_redis_reconnects_total", "counter", "Reconnects of the Redis connections.", b.reconnects);
        metric("backplane_cluster_shards", "gauge", "Masters of the Redis Cluster connected to now.", b.shards);
        metric("backplane_cluster_map_reads_total", "counter", "Slot maps read (CLUSTER SLOTS).", b.map_reads);
        metric("backplane_cluster_redirects_total", "counter", "MOVED and ASK followed.", b.redirects);
        metric("backplane_cluster_moved_channels_total", "counter",
               "Channels subscribed again on another master (a migration, a failover).", b.moved);
    }
    if constexpr (on_redis) {
        const auto b = hub.broker().stats();
        metric("backplane_redis_connected", "gauge", "Whether both Redis connections are ready.",
               hub.broker().connected() ? 1 : 0);
        metric("backplane_redis_publish_errors_total", "counter", "Publishes that failed.", b.publish_errors);
        metric("backplane_redis_reconnects_total", "counter", "Reconnects of the Redis connections.", b.reconnects);
        metric("backplane_redis_resubscribed_total", "counter", "Channels subscribed again after reconnects.",
               b.resubscribed);
    }
    if constexpr (on_redis || (on_cluster && backplane::has_history_v<broker_type>)) {
        const auto b = hub.broker().stats();
        metric("backplane_inbox_stored_total", "counter", "Direct messages stored for offline users.", b.inboxed);
        metric("backplane_inbox_delivered_total", "counter", "Inbox entries removed once written to a connection.",
               b.inbox_delivered);
        metric("backplane_dm_unknown_user_total", "counter",
               "Direct messages neither kept nor written: for a user who has not connected (--keep-for known).",
               b.unknown);
        if constexpr (backplane::has_history_v<broker_type>) {
            metric("backplane_streams_resumes_total", "counter",
                   "Streams read again after the subscriber reconnected.", b.resumes);
            metric("backplane_streams_resumed_total", "counter", "Entries delivered by those reads.", b.resumed);
            metric("backplane_streams_gaps_total", "counter", "Resumes whose last delivered id was trimmed or lost.",
                   b.gaps);
            metric("backplane_streams_duplicates_total", "counter", "Live messages dropped as already delivered.",
                   b.duplicates);
            metric("backplane_streams_history_reads_total", "counter", "History pages read for clients.",
                   b.history_reads);
            metric("backplane_streams_replayed_total", "counter", "Frames sent to clients from history.",
                   h.replayed);
        }
    }
    return out;
}

} // namespace http
} // namespace demo

#endif
