// demo/server.hpp - one instance: the websocketpp transport, a hub, and the
// client protocol between them.
//
// The server is glue: the handshake names the user (and, with a broker that
// keeps history, where to resume); each client frame is read by
// protocol::reader and carried to the hub; the hub's answers and deliveries
// go back as the frames protocol.hpp writes; plain HTTP is http::respond's.
#ifndef BACKPLANE_DEMO_SERVER_HPP
#define BACKPLANE_DEMO_SERVER_HPP

#include "command_line.hpp"
#include "http.hpp"
#include "limits.hpp"
#include "protocol.hpp"

#include <backplane/backplane.hpp>
#include <backplane/transport/websocketpp.hpp>

#include <asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

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

public:
    server(asio::io_context& io, const settings& s, Broker broker, Locator locator)
        : settings_(s), ws_(io, s.transport), hub_(ws_, std::move(broker), std::move(locator), hub_options(s)),
          reader_({keeps_history, knows_users, s.max_text, hub_.options().max_name_length}),
          counts_(s.max_per_user, s.max_per_address)
    {
        ws_.on_validate([this](const backplane::http_request& req, backplane::http_response& res) {
            return validate(req, res);
        });
        ws_.on_open([this](const handle& c, const backplane::http_request& req) { open(c, req); });
        ws_.on_message([this](const handle& c, std::string_view m, bool text) { message(c, m, text); });
        ws_.on_close([this](const handle& c, const backplane::http_request&) { close(c); });
        ws_.on_http([this](const backplane::http_request& req, backplane::http_response& res) { http(req, res); });
    }

    std::error_code listen() { return ws_.listen(settings_.address, settings_.port); }
    std::uint16_t port() const { return ws_.port(); }
    const std::string& instance_id() const { return hub_.instance_id(); }
    void drain(std::function<void()> done) { ws_.drain(std::move(done)); }

    /// After the drain: waits until the locator has forgotten this instance's users.
    void stop_presence(std::function<void()> done) { hub_.async_shutdown(std::move(done)); }

private:
    backplane::hub_options hub_options(const settings& s)
    {
        backplane::hub_options o;
        o.instance_id = s.instance_id;
        o.max_rooms_per_connection = s.max_rooms;
        o.direct = s.direct == "shared"     ? backplane::direct_routing::shared_channel
                   : s.direct == "instance" ? backplane::direct_routing::instance_channel
                                            : backplane::direct_routing::per_user_channel;
        // Called once per message and instance, never per recipient.
        o.build_frame = [this](const backplane::message_view& m, std::string& out) {
            protocol::write_message(out, m, hub_.instance_id(), id_);
        };
        return o;
    }

    bool validate(const backplane::http_request& req, backplane::http_response& res)
    {
        const auto user = protocol::ws_user(req);
        if (!user) {
            res.status = 404;
            return false;
        }
        if (backplane::validate_name(*user)) {
            res.status = 400;
            res.body = "the query parameter user must be a valid user name\n";
            return false;
        }
        return admit_connection(req, res);
    }

    // Connections per user and per address, refused at the handshake with 429.
    bool admit_connection(const backplane::http_request& req, backplane::http_response& res)
    {
        const auto why = counts_.check(hub_.user_connections(*protocol::ws_user(req)), req.peer_address());
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

    // What the limits keep of an open connection.
    void track(backplane::connection_id id, const backplane::http_request& req)
    {
        const auto& state =
            connections_.try_emplace(id, settings_.rates, limits::clock::now(), req.peer_address()).first->second;
        counts_.opened(state.address);
    }

    void open(const handle& c, const backplane::http_request& req)
    {
        std::error_code ec;
        backplane::connection_id id = backplane::no_connection;
        const std::string user = *protocol::ws_user(req);
        if (!admit_open(c, req, user))
            return;
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
        track(id, req);
        ws_.send_text(c, protocol::welcome(hub_.user_of(id), hub_.instance_id()));
    }

    void close(const handle& c)
    {
        const backplane::connection_id id = ws_transport::tag(c);
        if (const auto it = connections_.find(id); it != connections_.end()) {
            counts_.closed(it->second.address);
            connections_.erase(it);
        }
        hub_.close(id);
    }

    backplane::recovery_handler recovery_reply(const handle& c)
    {
        return [this, c](const backplane::recovery_result& r) { ws_.send_text(c, protocol::recovery(r)); };
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
        if (!admitted(c, mine->second.rate.admit(payload.size(), now)))
            return;
        protocol::error e;
        if (!reader_.read(payload, text, request_, e))
            return reply_error(c, e);
        const auto& r = request_;
        if (r.kind == protocol::op::send && !r.to_room && !admitted(c, mine->second.rate.admit_broadcast(now)))
            return;
        switch (r.kind) {
        case protocol::op::send:
            if (r.to_room)
                hub_.send_to_room(r.room, protocol::make_payload(hub_.user_of(id), r.text));
            else
                hub_.broadcast(protocol::make_payload(hub_.user_of(id), r.text));
            return;
        case protocol::op::dm:
            hub_.send_to_user(r.user, protocol::make_payload(hub_.user_of(id), r.text));
            return;
        case protocol::op::join:
            return join(c, id, mine->second, r);
        case protocol::op::leave:
            hub_.leave(id, r.room);
            ws_.send_text(c, protocol::membership(false, r.room));
            return;
        case protocol::op::where:
            return where(c, mine->second, r.user);
        case protocol::op::online:
            return online(c, mine->second, r.cursor);
        }
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

    void http(const backplane::http_request& req, backplane::http_response& res)
    {
        auto r = http::respond(req.method(), req.target(), ws_.draining(),
                               [this] { return http::metrics(hub_, ws_, errors_, refused_); });
        res.status = r.status;
        if (r.status == 405)
            return;
        res.add_header("Content-Type", std::string(r.content_type));
        if (r.no_store)
            res.add_header("Cache-Control", "no-store");
        res.body = std::move(r.body);
    }

    const settings& settings_;
    ws_transport ws_;
    hub_type hub_;
    protocol::reader reader_;
    protocol::request request_; // reused for every request
    std::string id_;            // reused for every frame
    std::uint64_t errors_ = 0;
    limits::counters refused_;
    limits::connection_counts counts_;
    std::unordered_map<backplane::connection_id, limits::connection_state> connections_;
};

} // namespace demo

#endif
