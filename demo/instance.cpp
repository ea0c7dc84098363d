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
// direct messages to a user with no connection wait in an inbox.
//
// One port serves the WebSocket endpoint (GET /ws?user=ID), the chat page
// (GET /), GET /healthz and GET /metrics; the client protocol is described in
// the README. With --port 0 the port is chosen by the system; the first
// line on stdout always says which ("listening on PORT"). SIGINT or SIGTERM
// drains: every client is told {"type":"draining"} and has --drain-grace ms to
// close by itself (so that nothing it sent is cut off by our close); the rest
// are closed with 1001, and the process exits 0.
#include <backplane/transport/websocketpp.hpp>

#include <backplane/backplane.hpp>
#if BACKPLANE_DEMO_WITH_REDIS // the build has backplane::redis (hiredis)
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/broker/redis_streams.hpp>
#include <backplane/locator/redis_presence.hpp>
#endif

#include "json.hpp"

#include <CLI/CLI.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace demo {
extern const char* const chat_page; // generated from web/index.html
}

namespace {

using namespace backplane;
namespace json = demo::json;
using ws_transport = transport::websocketpp;

struct settings {
    std::string address = "0.0.0.0";
    std::uint16_t port = 8080;
    std::string instance_id;
    std::string broker = "memory";
    std::string redis = "redis://127.0.0.1:6379";
    std::size_t stream_length = 1000; // entries kept per stream (redis-streams)
    transport::websocketpp_options transport;
    std::size_t max_text = 16 * 1024;
    bool presence = true;       // the user -> instance map (Redis brokers only)
    std::string direct = "user"; // direct-message routing: user, shared, instance
};

// The command line, checked: a value out of its range or a flag unknown is
// an error with the reason and exit status 2, never a silent wrap.
settings parse_args(int argc, char** argv)
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
    s.transport.drain_notice = R"({"type":"draining"})";
    s.transport.batch_writes = batch_writes == "on";
    s.presence = presence == "on" && s.broker != "memory"; // one instance: nothing to map
    const auto fail = [](const char* why) {
        std::fprintf(stderr, "backplane-instance: %s\nRun with --help for more information.\n", why);
        std::exit(2);
    };
    if (s.direct == "instance" && !s.presence)
        fail("--direct instance needs --presence on and a Redis broker");
    if (!s.instance_id.empty() && validate_name(s.instance_id))
        fail("--instance-id must be a valid name");
    return s;
}

// "%41" -> "A"; false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out)
{
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out.push_back(' ');
        } else if (in[i] != '%') {
            out.push_back(in[i]);
        } else {
            if (i + 2 >= in.size())
                return false;
            auto hex = [](char c) {
                return c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            };
            const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        }
    }
    return true;
}

// The user of "/ws?user=ID", or nullopt if the resource is not the endpoint.
std::optional<std::string> ws_user(std::string_view resource)
{
    if (resource.substr(0, 3) != "/ws" || (resource.size() > 3 && resource[3] != '?'))
        return std::nullopt;
    std::string_view query = resource.size() > 3 ? resource.substr(4) : std::string_view{};
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.substr(0, 5) == "user=") {
            std::string user;
            if (!percent_decode(pair.substr(5), user))
                return std::string{};
            return user;
        }
    }
    return std::string{};
}

// The value of `key` in the query of `resource`, percent-decoded; nullopt if
// absent or malformed.
std::optional<std::string> query_value(std::string_view resource, std::string_view key)
{
    const auto q = resource.find('?');
    std::string_view query = q == std::string_view::npos ? std::string_view{} : resource.substr(q + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=') {
            std::string value;
            if (!percent_decode(pair.substr(key.size() + 1), value))
                return std::nullopt;
            return value;
        }
    }
    return std::nullopt;
}

std::string_view scope_of(message_kind k)
{
    switch (k) {
    case message_kind::broadcast: return "global";
    case message_kind::room: return "room";
    case message_kind::user: return "dm";
    }
    return "global";
}

// The payload that crosses the broker: the sender's user, a NUL (which no
// valid name holds), the text. The receiving hub turns it into JSON once.
std::string make_payload(std::string_view from, std::string_view text)
{
    std::string p;
    p.reserve(from.size() + 1 + text.size());
    p.append(from).push_back('\0');
    p.append(text);
    return p;
}

template <class Broker, class Locator>
class server {
public:
    server(asio::io_context& io, const settings& s, Broker broker, Locator locator)
        : io_(io), settings_(s), ws_(io, s.transport),
          hub_(ws_, std::move(broker), std::move(locator), hub_opts(s))
    {
        ws_.on_validate([this](const auto& c) { return validate(c); });
        ws_.on_open([this](const auto& c) { open(c); });
        ws_.on_message([this](const auto& c, std::string_view m, bool text) { message(c, m, text); });
        ws_.on_close([this](const auto& c) { close(c); });
        ws_.on_http([this](const auto& c) { http(c); });
    }

    std::error_code listen() { return ws_.listen(settings_.address, settings_.port); }
    std::uint16_t port() const { return ws_.port(); }
    const std::string& instance_id() const { return hub_.instance_id(); }
    void drain(std::function<void()> done) { ws_.drain(std::move(done)); }

    /// After the drain: waits until the locator has forgotten this instance's users.
    void stop_presence(std::function<void()> done) { hub_.async_shutdown(std::move(done)); }

private:
    hub_options hub_opts(const settings& s)
    {
        hub_options o;
        o.instance_id = s.instance_id;
        o.direct = s.direct == "shared"     ? direct_routing::shared_channel
                   : s.direct == "instance" ? direct_routing::instance_channel
                                            : direct_routing::per_user_channel;
        /* Called once per message and instance, never per recipient: the
           JSON every local recipient shares is built here. */
        o.build_frame = [this](const message_view& m, std::string& out) {
            const auto nul = m.payload.find('\0');
            const auto from = nul == std::string_view::npos ? std::string_view{} : m.payload.substr(0, nul);
            const auto text = nul == std::string_view::npos ? m.payload : m.payload.substr(nul + 1);
            id_.clear();
            if (m.broker_id.empty())
                id_.append(m.origin).append("-").append(std::to_string(m.sequence));
            else
                id_.append(m.broker_id);
            json::object_writer w(out);
            w.add("type", "message").add("scope", scope_of(m.kind));
            if (m.kind == message_kind::room)
                w.add("room", m.target);
            w.add("from", from).add("id", id_).add("text", text).add("instance", hub_.instance_id());
            if (m.offline)
                w.add_literal("offline", "true");
        };
        return o;
    }

    void close(const ws_transport::connection_handle& c) { hub_.close(ws_transport::tag(c)); }

    bool validate(const ws_transport::connection_handle& c)
    {
        const auto user = ws_user(c->get_resource());
        if (!user) {
            c->set_status(::websocketpp::http::status_code::not_found);
            return false;
        }
        if (validate_name(*user)) {
            c->set_status(::websocketpp::http::status_code::bad_request);
            c->set_body("the query parameter user must be a valid user name\n");
            return false;
        }
        return true;
    }

    void open(const ws_transport::connection_handle& c)
    {
        std::error_code ec;
        connection_id id = no_connection;
        const std::string user = *ws_user(c->get_resource());
        std::optional<std::string> last_id, last_dm_id;
        if constexpr (keeps_history) {
            last_id = query_value(c->get_resource(), "last_id");
            last_dm_id = query_value(c->get_resource(), "last_dm_id");
            const std::string global = last_id.value_or(""), mine = last_dm_id.value_or("");
            if (last_id || last_dm_id)
                id = hub_.open(c, user, ec, resume_point{global, mine}, recovery_reply(c));
            else
                id = hub_.open(c, user, ec);
        } else {
            id = hub_.open(c, user, ec);
        }
        if (ec == error::invalid_stream_id)
            return ws_.close(c, ::websocketpp::close::status::policy_violation, "invalid last_id");
        if (ec)
            return ws_.close(c, ::websocketpp::close::status::policy_violation, "invalid user");
        ws_transport::set_tag(c, id);
        std::string out;
        json::object_writer(out).add("type", "welcome").add("user", hub_.user_of(id)).add("instance",
                                                                                          hub_.instance_id());
        ws_.send_text(c, out);
    }

    // The memory bus can keep history too, but the reference server runs it
    // without: catching up is the streams broker's.
    static constexpr bool keeps_history = has_history_v<Broker> && !std::is_same_v<Broker, broker::memory>;
    static constexpr bool knows_users = !std::is_same_v<Locator, locator::none>;

    // Tells the client how a catch-up went, before the live messages that follow it.
    recovery_handler recovery_reply(const ws_transport::connection_handle& c)
    {
        return [this, c](const recovery_result& r) {
            /* written by hand: the writer has no booleans */
            std::string out = R"({"type":"recovery","scope":)";
            json::write_string(out, scope_of(r.kind));
            if (r.kind == message_kind::room) {
                out += R"(,"room":)";
                json::write_string(out, r.target);
            }
            out.append(R"(,"recovered":)").append(r.recovered ? "true" : "false");
            out.append(R"(,"replayed":)").append(std::to_string(r.replayed));
            if (r.error) {
                out += R"(,"error":)";
                json::write_string(out, r.error.message());
            }
            out.push_back('}');
            ws_.send_text(c, out);
        };
    }

    void reply_error(const ws_transport::connection_handle& c, std::string_view code, std::string_view text)
    {
        ++errors_;
        std::string out;
        json::object_writer(out).add("type", "error").add("code", code).add("message", text);
        ws_.send_text(c, out);
    }

    // Returns the string member `key`, or nullptr after replying with an error.
    const std::string* field(const ws_transport::connection_handle& c, const json::flat_object& o,
                             std::string_view key)
    {
        const auto* v = o.find(key);
        if (!v) {
            reply_error(c, "missing_field", "missing field \"" + std::string(key) + "\"");
            return nullptr;
        }
        if (v->type != json::value::kind::string) {
            reply_error(c, "wrong_type", "field \"" + std::string(key) + "\" must be a string");
            return nullptr;
        }
        return &v->text;
    }

    bool only(const ws_transport::connection_handle& c, const json::flat_object& o,
              std::initializer_list<std::string_view> allowed)
    {
        for (const auto& m : o.members) {
            bool ok = false;
            for (auto a : allowed)
                ok = ok || m.first == a;
            if (!ok) {
                reply_error(c, "unknown_field", "unexpected field \"" + m.first + "\"");
                return false;
            }
        }
        return true;
    }

    bool name_ok(const ws_transport::connection_handle& c, std::string_view what, const std::string& name)
    {
        if (!validate_name(name, hub_.options().max_name_length))
            return true;
        reply_error(c, "invalid_name", "invalid " + std::string(what) + " name");
        return false;
    }

    bool text_ok(const ws_transport::connection_handle& c, const std::string& text)
    {
        if (text.size() <= settings_.max_text)
            return true;
        reply_error(c, "too_long", "text longer than " + std::to_string(settings_.max_text) + " bytes");
        return false;
    }

    void message(const ws_transport::connection_handle& c, std::string_view payload, bool text)
    {
        const connection_id id = ws_transport::tag(c);
        if (!hub_.contains(id))
            return;
        if (!text)
            return reply_error(c, "not_text", "requests are JSON text frames");
        if (auto why = json::parse(payload, request_); !why.empty())
            return reply_error(c, "invalid_json", why);
        const auto* op = field(c, request_, "op");
        if (!op)
            return;
        const std::string from(hub_.user_of(id));
        if (*op == "send") {
            if (!only(c, request_, {"op", "room", "text"}))
                return;
            const auto* t = field(c, request_, "text");
            if (!t || !text_ok(c, *t))
                return;
            if (request_.find("room")) {
                const auto* room = field(c, request_, "room");
                if (room && name_ok(c, "room", *room))
                    hub_.send_to_room(*room, make_payload(from, *t));
            } else {
                hub_.broadcast(make_payload(from, *t));
            }
        } else if (*op == "dm") {
            if (!only(c, request_, {"op", "to", "text"}))
                return;
            const auto* to = field(c, request_, "to");
            if (!to || !name_ok(c, "user", *to))
                return;
            const auto* t = field(c, request_, "text");
            if (!t || !text_ok(c, *t))
                return;
            hub_.send_to_user(*to, make_payload(from, *t));
        } else if (*op == "where" || *op == "online") {
            presence_request(c, *op);
        } else if (*op == "join" || *op == "leave") {
            const bool resume = *op == "join" && request_.find("last_id");
            if (!only(c, request_, {"op", "room", resume ? "last_id" : "room"}))
                return;
            const auto* room = field(c, request_, "room");
            if (!room || !name_ok(c, "room", *room))
                return;
            if (resume) {
                const auto* last_id = field(c, request_, "last_id");
                if (!last_id)
                    return;
                if constexpr (keeps_history) {
                    /* "joined" goes first: the catch-up answers later, with "recovery" */
                    stream_id parsed;
                    if (!parse_stream_id(*last_id, parsed))
                        return reply_error(c, "invalid_last_id", "last_id must be a message id");
                    std::string out;
                    json::object_writer(out).add("type", "joined").add("room", *room);
                    ws_.send_text(c, out);
                    hub_.join(id, *room, *last_id, recovery_reply(c));
                    return;
                }
                return reply_error(c, "unsupported", "last_id needs --broker redis-streams");
            }
            if (*op == "join")
                hub_.join(id, *room);
            else
                hub_.leave(id, *room);
            std::string out;
            json::object_writer(out).add("type", *op == "join" ? "joined" : "left").add("room", *room);
            ws_.send_text(c, out);
        } else {
            reply_error(c, "unknown_op", "unknown op \"" + *op + "\"");
        }
    }

    // {"op":"where","user":U} and {"op":"online"[,"cursor":C]}, answered
    // from the hub's locator.
    void presence_request(const ws_transport::connection_handle& c, const std::string& op)
    {
        const bool where = op == "where";
        if (!only(c, request_, {"op", where ? "user" : "cursor"}))
            return;
        if (!knows_users)
            return reply_error(c, "unsupported", "presence needs a Redis broker and --presence on");
        const auto failed = [this, c](std::error_code ec) {
            reply_error(c, "unavailable", "presence: " + ec.message());
        };
        if (where) {
            const auto* user = field(c, request_, "user");
            if (!user || !name_ok(c, "user", *user))
                return;
            return hub_.async_where(*user, [this, c, failed, user = *user](std::error_code ec, std::string host) {
                if (ec)
                    return failed(ec);
                std::string out;
                {
                    json::object_writer w(out); // the object closes with the writer
                    w.add("type", "presence").add("user", user).add_literal("online", host.empty() ? "false" : "true");
                    if (host.empty())
                        w.add_literal("instance", "null");
                    else
                        w.add("instance", host);
                }
                ws_.send_text(c, out);
            });
        }
        std::string cursor = "0";
        if (request_.find("cursor")) {
            const auto* given = field(c, request_, "cursor");
            if (!given)
                return;
            cursor = *given;
            if (cursor.empty() || cursor.find_first_not_of("0123456789") != std::string::npos)
                return reply_error(c, "invalid_cursor", "cursor must be one an online answer gave");
        }
        hub_.async_online(cursor, 100, [this, c, failed](std::error_code ec, online_page page) {
            if (ec)
                return failed(ec);
            std::string out = R"({"type":"online","users":[)";
            for (std::size_t i = 0; i < page.users.size(); ++i) {
                out += i ? R"(,{"user":)" : R"({"user":)";
                json::write_string(out, page.users[i].user);
                out += R"(,"instance":)";
                json::write_string(out, page.users[i].instance);
                out += '}';
            }
            out += R"(],"cursor":)";
            json::write_string(out, page.cursor);
            out += '}';
            ws_.send_text(c, out);
        });
    }

    void http(const ws_transport::connection_handle& c)
    {
        const auto& resource = c->get_resource();
        const auto path = std::string_view(resource).substr(0, resource.find('?'));
        if (c->get_request().get_method() != "GET") {
            c->set_status(::websocketpp::http::status_code::method_not_allowed);
            return;
        }
        if (path == "/" || path == "/index.html") {
            c->set_status(::websocketpp::http::status_code::ok);
            c->append_header("Content-Type", "text/html; charset=utf-8");
            c->append_header("Cache-Control", "no-store");
            c->set_body(demo::chat_page);
        } else if (path == "/healthz") {
            c->set_status(ws_.draining() ? ::websocketpp::http::status_code::service_unavailable
                                         : ::websocketpp::http::status_code::ok);
            c->append_header("Content-Type", "text/plain");
            c->set_body(ws_.draining() ? "draining\n" : "ok\n");
        } else if (path == "/metrics") {
            c->set_status(::websocketpp::http::status_code::ok);
            c->append_header("Content-Type", "text/plain; version=0.0.4");
            c->set_body(metrics());
        } else {
            c->set_status(::websocketpp::http::status_code::not_found);
            c->set_body("not found\n");
        }
    }

    std::string metrics()
    {
        std::string out;
        const std::string label = "{instance=\"" + hub_.instance_id() + "\"} ";
        auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
            out.append("# HELP ").append(name).append(" ").append(help).append("\n");
            out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
            out.append(name).append(label).append(std::to_string(v)).append("\n");
        };
        const auto& t = ws_.stats();
        const auto& h = hub_.stats();
        metric("websocket_connections_total", "gauge", "WebSocket connections open on this instance now.",
               ws_.connection_count());
        metric("backplane_connections_opened_total", "counter", "WebSocket connections opened.", t.opened);
        metric("backplane_connections_rejected_total", "counter",
               "WebSocket handshakes refused (connection limit, bad user, draining).", t.rejected);
        metric("backplane_messages_in_total", "counter", "Messages received from clients.", t.messages_in);
        metric("backplane_bytes_in_total", "counter", "Payload bytes received from clients.", t.bytes_in);
        metric("backplane_messages_out_total", "counter", "Frames queued to clients (deliveries and replies).",
               t.frames_out);
        metric("backplane_bytes_out_total", "counter", "Payload bytes queued to clients.", t.bytes_out);
        metric("backplane_request_errors_total", "counter", "Client requests answered with an error.", errors_);
        metric("backplane_slow_consumer_closes_total", "counter",
               "Connections closed because their outbound queue passed its limit.", t.slow_consumer_closes);
        metric("backplane_idle_closes_total", "counter", "Connections closed after the idle timeout.",
               t.idle_closes);
        metric("backplane_write_handovers_total", "counter",
               "Connections whose socket once filled up: websocketpp's queue writes them since.", t.handovers);
        metric("backplane_write_batches_total", "counter",
               "io_uring submissions that wrote many connections' frames at once.", t.write_batches);
        metric("backplane_too_big_closes_total", "counter", "Connections closed with 1009 (message too big).",
               t.too_big_closes);
        metric("backplane_broker_published_total", "counter", "Messages handed to the broker.", h.published);
        metric("backplane_broker_received_total", "counter", "Messages received from the broker.", h.received);
        metric("backplane_broker_malformed_total", "counter", "Broker messages with a malformed envelope.",
               h.malformed);
        metric("backplane_broker_unrouted_total", "counter", "Broker messages with no local recipient.",
               h.unrouted);
        metric("backplane_deliveries_total", "counter", "Frames the hub handed to local connections.",
               h.deliveries);
        metric("backplane_backpressure_total", "counter", "Deliveries accepted above the backpressure mark.",
               h.backpressure);
        if constexpr (!std::is_same_v<Broker, broker::memory>) {
            const auto b = hub_.broker().stats();
            metric("backplane_redis_connected", "gauge", "Whether both Redis connections are ready.",
                   hub_.broker().connected() ? 1 : 0);
            metric("backplane_redis_publish_errors_total", "counter", "Publishes that failed.", b.publish_errors);
            metric("backplane_redis_reconnects_total", "counter", "Reconnects of the Redis connections.",
                   b.reconnects);
            metric("backplane_redis_resubscribed_total", "counter", "Channels subscribed again after reconnects.",
                   b.resubscribed);
            metric("backplane_inbox_stored_total", "counter", "Direct messages stored for offline users.",
                   b.inboxed);
            metric("backplane_inbox_delivered_total", "counter", "Inbox entries taken on connect.", b.inbox_taken);
        }
        if constexpr (keeps_history) {
            const auto b = hub_.broker().stats();
            metric("backplane_streams_resumes_total", "counter",
                   "Streams read again after the subscriber reconnected.", b.resumes);
            metric("backplane_streams_resumed_total", "counter", "Entries delivered by those reads.", b.resumed);
            metric("backplane_streams_gaps_total", "counter",
                   "Resumes whose last delivered id was trimmed or lost.", b.gaps);
            metric("backplane_streams_duplicates_total", "counter", "Live messages dropped as already delivered.",
                   b.duplicates);
            metric("backplane_streams_history_reads_total", "counter", "History pages read for clients.",
                   b.history_reads);
            metric("backplane_streams_replayed_total", "counter", "Frames sent to clients from history.",
                   h.replayed);
        }
        return out;
    }

    asio::io_context& io_;
    const settings& settings_;
    ws_transport ws_;
    basic_hub<ws_transport, Broker, Locator> hub_;
    json::flat_object request_; // reused for every request
    std::string id_;            // reused for every frame
    std::uint64_t errors_ = 0;
};

template <class Broker, class Locator>
int serve(asio::io_context& io, const settings& s, Broker broker, Locator locator)
{
    server<Broker, Locator> srv(io, s, std::move(broker), std::move(locator));
    if (auto ec = srv.listen()) {
        std::fprintf(stderr, "backplane-instance: cannot listen on %s:%u: %s\n", s.address.c_str(),
                     unsigned(s.port), ec.message().c_str());
        return 1;
    }
    std::printf("listening on %u instance %s\n", unsigned(srv.port()), srv.instance_id().c_str());
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
    const settings s = parse_args(argc, argv);
    try {
        asio::io_context io(1);
        if (s.broker == "memory") {
            broker::memory_bus bus;
            return serve(io, s, broker::memory(bus, io.get_executor()), locator::none(io.get_executor()));
        }
#if BACKPLANE_DEMO_WITH_REDIS
        // With a Redis broker, presence is the user -> instance map in Redis.
        const auto run = [&](auto broker) {
            if (!s.presence)
                return serve(io, s, std::move(broker), locator::none(io.get_executor()));
            locator::redis_presence_options po;
            po.client_name = s.instance_id;
            return serve(io, s, std::move(broker), locator::redis_presence(io.get_executor(), s.redis, po));
        };
        if (s.broker == "redis-streams") {
            broker::redis_streams_options o;
            o.max_length = s.stream_length;
            return run(broker::redis_streams(io.get_executor(), s.redis, o));
        }
        return run(broker::redis_pubsub(io.get_executor(), s.redis));
#else
        std::fprintf(stderr, "backplane-instance: built without Redis (hiredis): only --broker memory\n");
        return 2;
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "backplane-instance: %s\n", e.what());
        return 1;
    }
}
