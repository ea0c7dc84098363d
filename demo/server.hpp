// demo/server.hpp - one instance: the websocketpp transport, a hub, and the
// client protocol between them.
//
// The server is glue: the handshake's token names the user (or, with --auth
// none, its ?user=; with a broker that keeps history, the handshake says
// where to resume too); each client frame is read by
// protocol::reader and carried to the hub; the hub's answers and deliveries
// go back as the frames protocol.hpp writes; plain HTTP is http::respond's.
#ifndef BACKPLANE_DEMO_SERVER_HPP
#define BACKPLANE_DEMO_SERVER_HPP

#include "command_line.hpp"
#include "http.hpp"
#include "limits.hpp"
#include "protocol.hpp"
#include "tokens.hpp"

#include <backplane/auth/jwt.hpp>
#include <backplane/backplane.hpp>
#include <backplane/transport/websocketpp.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace demo {

template <class Broker, class Locator>
class server {
    using ws_transport = backplane::transport::websocketpp;
    using handle = ws_transport::connection_handle;
    using hub_type = backplane::basic_hub<ws_transport, Broker, Locator>;

    // The memory bus can keep history too, but the reference server runs it
    // without: catching up is the streams broker's.
    static constexpr bool keeps_history =
        backplane::has_history_v<Broker> && !std::is_same_v<Broker, backplane::broker::memory>;
    static constexpr bool knows_users = !std::is_same_v<Locator, backplane::locator::none>;
    static constexpr bool cluster_with_history =
        http::on_redis_cluster<Broker>::value && backplane::has_history_v<Broker>;
    template <class B, class = void>
    struct can_mark : std::false_type {};
    template <class B>
    struct can_mark<B, std::void_t<decltype(std::declval<B&>().mark_known(std::string_view{}))>> : std::true_type {};
    static constexpr bool marks_known = can_mark<Broker>::value;

public:
    server(asio::io_context& io, const settings& s, Broker broker, Locator locator)
        : settings_(s), ws_(io, s.transport), hub_(ws_, std::move(broker), std::move(locator), hub_options(s)),
          reader_({keeps_history, knows_users, s.max_text, hub_.options().max_name_length, s.jwt.has_value()}),
          counts_(s.max_per_user, s.max_per_address)
    {
        if (s.jwt)
            tokens_.emplace(io, *s.jwt, [this](const handle& c) {
                ws_.close(c, backplane::transport::close_code::policy_violation, "token expired");
            });
        if (!s.metrics_host.empty())
            serve_metrics_apart(io);
        ws_.on_validate([this](const backplane::http_request& req, backplane::http_response& res) {
            return validate(req, res);
        });
        ws_.on_open([this](const handle& c, const backplane::http_request& req) { open(c, req); });
        ws_.on_message([this](const handle& c, std::string_view m, bool text) { message(c, m, text); });
        ws_.on_close([this](const handle& c, const backplane::http_request&) { close(c); });
        ws_.on_http([this](const backplane::http_request& req, backplane::http_response& res) { http(req, res); });
    }

    std::error_code listen()
    {
        if (auto ec = ws_.listen(settings_.address, settings_.port))
            return ec;
        return metrics_ws_ ? metrics_ws_->listen(settings_.metrics_host, settings_.metrics_port) : std::error_code{};
    }
    std::uint16_t port() const { return ws_.port(); }
    /// The port of --metrics-address; 0 if /metrics is on port().
    std::uint16_t metrics_port() const { return metrics_ws_ ? metrics_ws_->port() : 0; }
    const std::string& instance_id() const { return hub_.instance_id(); }
    void drain(std::function<void()> done)
    {
        if (metrics_ws_)
            metrics_ws_->drain([] {});
        ws_.drain(std::move(done));
    }

    /// After the drain: waits until the locator has forgotten this instance's users.
    void stop_presence(std::function<void()> done) { hub_.async_shutdown(std::move(done)); }

private:
    backplane::hub_options hub_options(const settings& s)
    {
        backplane::hub_options o;
        o.instance_id = s.instance_id;
        o.max_rooms_per_connection = s.max_rooms;
        o.global_channels = s.global_channels;
        if constexpr (cluster_with_history) {
            // A stream, an inbox and their channel in one slot: the room or user is the hash tag.
            o.global_channel = "chat:{global}";
            o.room_channel = "chat:room:{{room}}";
            o.user_channel = "notif:user:{{user}}";
            o.instance_channel = "instance:{{instance}}";
            o.shared_direct_channel = "dm:{all}";
        }
        o.direct = s.direct == "shared"     ? backplane::direct_routing::shared_channel
                   : s.direct == "instance" ? backplane::direct_routing::instance_channel
                                            : backplane::direct_routing::per_user_channel;
        // Called once per message and instance, never per recipient.
        o.build_frame = [this](const backplane::message_view& m, std::string& out) {
            protocol::write_message(out, m, hub_.instance_id(), id_);
        };
        o.authorize = [this](backplane::connection_id id, std::string_view, backplane::action what,
                             std::string_view target) { return authorize(id, what, target); };
        return o;
    }

    // What a connection may do: the rooms its token lists; the list of who
    // is online only with --online on (it names everybody); where a user is
    // unless --where off.
    bool authorize(backplane::connection_id id, backplane::action what, std::string_view target) const
    {
        switch (what) {
        case backplane::action::join:
        case backplane::action::send_to_room:
            return !tokens_ || tokens_->may_enter(id, target);
        case backplane::action::online:
            return settings_.online;
        case backplane::action::where:
            return settings_.where;
        default:
            return true;
        }
    }

    static bool refuse(backplane::http_response& res, int status, std::string body)
    {
        res.status = status;
        res.body = std::move(body) + "\n";
        return false;
    }

    // A browser says which page opens the socket; a page of another site
    // must not act with the cookies or the network position of this one's
    // users (cross-site WebSocket hijacking). Clients other than browsers
    // send no Origin.
    bool origin_allowed(const backplane::http_request& req) const
    {
        const auto origin = req.header("Origin");
        if (origin.empty())
            return true;
        if (settings_.allowed_origins.empty()) {
            const auto scheme_end = origin.find("://");
            return scheme_end != std::string_view::npos && origin.substr(scheme_end + 3) == req.header("Host");
        }
        for (const auto& allowed : settings_.allowed_origins)
            if (allowed == "*" || allowed == origin)
                return true;
        return false;
    }

    // The token's identity, or an error; the handshake's ?user=, if any,
    // must be the token's (a load balancer may route by it).
    std::error_code identify(const backplane::http_request& req, const std::string& user,
                             backplane::auth::identity& id) const
    {
        const auto token = backplane::auth::handshake_token(req);
        if (!token)
            return backplane::error::invalid_token;
        if (auto ec = tokens_->verifier().verify(*token, id))
            return ec;
        if (!user.empty() && user != id.user)
            return backplane::error::forbidden;
        return {};
    }

    bool validate(const backplane::http_request& req, backplane::http_response& res)
    {
        const auto user = protocol::ws_user(req);
        if (!user) {
            res.status = 404;
            return false;
        }
        if (!origin_allowed(req))
            return refuse(res, 403, "origin not allowed: " + std::string(req.header("Origin")));
        if (backplane::auth::offers_subprotocol(req))
            res.add_header("Sec-WebSocket-Protocol", std::string(backplane::auth::subprotocol));
        if (tokens_) {
            backplane::auth::identity id;
            const auto ec = identify(req, *user, id);
            if (ec == backplane::error::forbidden)
                return refuse(res, 403, "the query parameter user is not the token's");
            if (ec) {
                res.add_header("WWW-Authenticate", "Bearer");
                return refuse(res, 401, ec.message() + ": present a token as Authorization: Bearer TOKEN, "
                                                       "a subprotocol bearer.TOKEN or ?token=TOKEN");
            }
            return admit_connection(req, res, id.user);
        }
        if (backplane::validate_name(*user))
            return refuse(res, 400, "the query parameter user must be a valid user name");
        return admit_connection(req, res, *user);
    }

    // Connections per user and per address, refused at the handshake with 429.
    bool admit_connection(const backplane::http_request& req, backplane::http_response& res, const std::string& user)
    {
        const auto why = counts_.check(hub_.user_connections(user), req.peer_address());
        if (why == limits::too_many::none)
            return true;
        count(why);
        res.status = 429;
        res.body = counts_.why(why);
        return false;
    }

    // Checked again at the open: handshakes validated in the same turn are
    // not open yet, and were not counted.
    bool admit_open(const handle& c, const backplane::http_request& req, const std::string& user)
    {
        const auto why = counts_.check(hub_.user_connections(user), req.peer_address());
        if (why == limits::too_many::none)
            return true;
        count(why);
        ws_.close(c, backplane::transport::close_code::policy_violation, "too many connections");
        return false;
    }

    void count(limits::too_many why)
    {
        ++(why == limits::too_many::per_user ? refused_.per_user : refused_.per_address);
    }

    // What the limits keep of an open connection, and of its user.
    void track(backplane::connection_id id, const backplane::http_request& req)
    {
        const auto now = limits::clock::now();
        auto& state = connections_.try_emplace(id, settings_.rates, now, req.peer_address()).first->second;
        counts_.opened(state.address);
        state.user = &users_.try_emplace(std::string(hub_.user_of(id)), settings_.user_rates, now).first->second;
        ++state.user->connections;
    }

    void open(const handle& c, const backplane::http_request& req)
    {
        std::error_code ec;
        backplane::connection_id id = backplane::no_connection;
        std::string user = *protocol::ws_user(req);
        backplane::auth::identity identity;
        if (tokens_) {
            // Checked again: the token may have expired since the handshake was read.
            if (auto why = identify(req, user, identity))
                return ws_.close(c, backplane::transport::close_code::policy_violation, why.message());
            user = identity.user;
        }
        if (!admit_open(c, req, user))
            return;
        if (hub_.user_connections(user) == 0)
            mark_known(user);
        if constexpr (keeps_history) {
            const auto last_id = req.query_parameter("last_id");
            const auto last_dm_id = req.query_parameter("last_dm_id");
            const std::string global = last_id.value_or(""), mine = last_dm_id.value_or("");
            if (last_id || last_dm_id)
                id = hub_.open(c, user, ec, backplane::resume_point{global, mine}, recovery_reply(c));
            else
                id = hub_.open(c, user, ec);
        } else {
            id = hub_.open(c, user, ec);
        }
        if (ec == backplane::error::invalid_stream_id)
            return ws_.close(c, backplane::transport::close_code::policy_violation, "invalid last_id");
        if (ec)
            return ws_.close(c, backplane::transport::close_code::policy_violation, "invalid user");
        ws_transport::set_tag(c, id);
        if (tokens_)
            tokens_->grant(c, id, std::move(identity));
        track(id, req);
        ws_.send_text(c, protocol::welcome(hub_.user_of(id), hub_.instance_id()));
    }

    void close(const handle& c)
    {
        const backplane::connection_id id = ws_transport::tag(c);
        if (const auto it = connections_.find(id); it != connections_.end()) {
            counts_.closed(it->second.address);
            if (--it->second.user->connections == 0)
                users_.erase(std::string(hub_.user_of(id)));
            connections_.erase(it);
        }
        if (tokens_)
            tokens_->forget(id);
        hub_.close(id);
    }

    backplane::recovery_handler recovery_reply(const handle& c)
    {
        return [this, c](const backplane::recovery_result& r) { ws_.send_text(c, protocol::recovery(r)); };
    }

    // The user has connected: direct messages are kept for it (a Redis
    // broker with a known key; see --keep-for).
    void mark_known(const std::string& user)
    {
        if constexpr (marks_known)
            hub_.broker().mark_known(user);
    }

    void reply_error(const handle& c, const protocol::error& e)
    {
        ++errors_;
        ws_.send_text(c, protocol::error_reply(e));
    }

    void message(const handle& c, std::string_view payload, bool text)
    {
        const backplane::connection_id id = ws_transport::tag(c);
        const auto mine = connections_.find(id);
        if (mine == connections_.end() || !hub_.contains(id))
            return;
        // Every frame counts against the rates, a bad one too; a broadcast
        // against the broadcasts' as well, once it is read.
        const auto now = limits::clock::now();
        if (!admitted(c, mine->second.rate.admit(payload.size(), now)) ||
            !admitted(c, mine->second.user->rate.admit(payload.size(), now)))
            return;
        protocol::error e;
        if (!reader_.read(payload, text, request_, e))
            return reply_error(c, e);
        const auto& r = request_;
        if (r.kind == protocol::op::send && !r.to_room &&
            (!admitted(c, mine->second.rate.admit_broadcast(now)) ||
             !admitted(c, mine->second.user->rate.admit_broadcast(now))))
            return;
        switch (r.kind) {
        case protocol::op::send:
            if (r.to_room) {
                if (hub_.allowed(id, backplane::action::send_to_room, r.room))
                    return forbidden(c, "not allowed to send to room " + r.room);
                hub_.send_to_room(r.room, protocol::make_payload(hub_.user_of(id), r.text));
            } else {
                if (hub_.allowed(id, backplane::action::broadcast))
                    return forbidden(c, "not allowed to broadcast");
                hub_.broadcast(protocol::make_payload(hub_.user_of(id), r.text));
            }
            return;
        case protocol::op::dm:
            if (hub_.allowed(id, backplane::action::send_to_user, r.user))
                return forbidden(c, "not allowed to write to " + r.user);
            hub_.send_to_user(r.user, protocol::make_payload(hub_.user_of(id), r.text));
            return;
        case protocol::op::join:
            return join(c, id, mine->second, r);
        case protocol::op::leave:
            hub_.leave(id, r.room);
            ws_.send_text(c, protocol::membership(false, r.room));
            return;
        case protocol::op::where:
            if (hub_.allowed(id, backplane::action::where, r.user))
                return forbidden(c, "this server does not say where users are (--where off)");
            return where(c, mine->second, r.user);
        case protocol::op::online:
            if (hub_.allowed(id, backplane::action::online))
                return forbidden(c, "this server does not list who is online (--online off)");
            return online(c, mine->second, r.cursor);
        case protocol::op::refresh:
            return refresh(c, id, r.token);
        }
    }

    void forbidden(const handle& c, std::string why) { reply_error(c, {"forbidden", std::move(why)}); }

    // A newer token of the same user: the connection lives on past the
    // current one's expiry.
    void refresh(const handle& c, backplane::connection_id id, const std::string& token)
    {
        backplane::auth::identity identity;
        if (auto ec = tokens_->verifier().verify(token, identity))
            return reply_error(c, {ec == backplane::error::token_expired ? "token_expired" : "invalid_token",
                                   ec.message()});
        if (identity.user != hub_.user_of(id))
            return forbidden(c, "the token is for another user");
        const auto expires = std::chrono::duration_cast<std::chrono::seconds>(identity.expires.time_since_epoch());
        mark_known(identity.user); // a connection may outlive the mark's expiry: tokens do not
        tokens_->grant(c, id, std::move(identity));
        ws_.send_text(c, protocol::refreshed(static_cast<std::uint64_t>(expires.count())));
    }

    bool admitted(const handle& c, limits::verdict v)
    {
        switch (v) {
        case limits::verdict::pass: return true;
        case limits::verdict::refuse:
            ++refused_.rate_limited;
            reply_error(c, limits::rate_limited());
            return false;
        case limits::verdict::close:
            ++refused_.rate_closes;
            ws_.close(c, backplane::transport::close_code::policy_violation, "rate limit");
            return false;
        }
        return false;
    }

    // A slot for a request that waits on Redis, or null after answering busy.
    std::shared_ptr<limits::request_slot> request_slot(const handle& c, limits::connection_state& mine)
    {
        auto slot = limits::request_slot::take(mine.in_flight, settings_.max_in_flight);
        if (!slot) {
            ++refused_.busy;
            reply_error(c, limits::busy(settings_.max_in_flight));
        }
        return slot;
    }

    void join(const handle& c, backplane::connection_id id, limits::connection_state& mine,
              const protocol::request& r)
    {
        if (hub_.allowed(id, backplane::action::join, r.room))
            return forbidden(c, "not allowed to join room " + r.room);
        std::error_code ec;
        if constexpr (keeps_history) {
            // "joined" still goes first: the catch-up's history is read, and
            // "recovery" sent, later. The slot goes with the hub's handler.
            if (r.last_id) {
                auto slot = request_slot(c, mine);
                if (!slot)
                    return;
                ec = hub_.join(id, r.room, *r.last_id, [reply = recovery_reply(c), slot](const auto& result) {
                    reply(result);
                });
            } else {
                ec = hub_.join(id, r.room);
            }
        } else {
            (void)mine;
            ec = hub_.join(id, r.room);
        }
        if (ec == backplane::error::too_many_rooms) {
            ++refused_.too_many_rooms;
            return reply_error(c, limits::too_many_rooms(hub_.options().max_rooms_per_connection));
        }
        ws_.send_text(c, protocol::membership(true, r.room));
    }

    void where(const handle& c, limits::connection_state& mine, const std::string& user)
    {
        auto slot = request_slot(c, mine);
        if (!slot)
            return;
        hub_.async_where(user, [this, c, user, slot](std::error_code ec, std::string host) {
            if (ec)
                return unavailable(c, ec);
            ws_.send_text(c, protocol::presence(user, host));
        });
    }

    void online(const handle& c, limits::connection_state& mine, const std::string& cursor)
    {
        auto slot = request_slot(c, mine);
        if (!slot)
            return;
        hub_.async_online(cursor, 100, [this, c, slot](std::error_code ec, backplane::online_page page) {
            if (ec)
                return unavailable(c, ec);
            ws_.send_text(c, protocol::online(page));
        });
    }

    void unavailable(const handle& c, std::error_code ec)
    {
        reply_error(c, {"unavailable", "presence: " + ec.message()});
    }

    // /metrics on an address of its own (a scraper's network, not the
    // clients'): that endpoint answers nothing else, and --port no /metrics.
    void serve_metrics_apart(asio::io_context& io)
    {
        backplane::transport::websocketpp_options o;
        o.max_connections = 16;
        metrics_ws_.emplace(io, o);
        metrics_ws_->on_validate([](const backplane::http_request&, backplane::http_response& res) {
            res.status = 404;
            return false;
        });
        metrics_ws_->on_http([this](const backplane::http_request& req, backplane::http_response& res) {
            if (req.path() != "/metrics")
                return http_answer(res, {404, "text/plain", "not found\n", false});
            http_answer(res, http::respond(req.method(), req.target(), false,
                                           [this] { return http::metrics(hub_, ws_, errors_, refused_); }));
        });
    }

    void http_answer(backplane::http_response& res, http::response r)
    {
        res.status = r.status;
        if (r.status == 405)
            return;
        res.add_header("Content-Type", std::string(r.content_type));
        if (r.no_store)
            res.add_header("Cache-Control", "no-store");
        res.body = std::move(r.body);
    }

    void http(const backplane::http_request& req, backplane::http_response& res)
    {
        if (metrics_ws_ && req.path() == "/metrics")
            return http_answer(res, {404, "text/plain", "not found\n", false});
        http_answer(res, http::respond(req.method(), req.target(), ws_.draining(),
                                       [this] { return http::metrics(hub_, ws_, errors_, refused_); }));
    }

    const settings& settings_;
    ws_transport ws_;
    hub_type hub_;
    protocol::reader reader_;
    protocol::request request_; // reused for every request
    std::string id_;            // reused for every frame
    std::uint64_t errors_ = 0;
    std::optional<ws_transport> metrics_ws_; // --metrics-address
    std::optional<token_sessions<handle>> tokens_; // --auth jwt
    limits::counters refused_;
    limits::connection_counts counts_;
    std::unordered_map<backplane::connection_id, limits::connection_state> connections_;
    std::unordered_map<std::string, limits::user_state> users_; // of the open connections
};

} // namespace demo

#endif
