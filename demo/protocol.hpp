// demo/protocol.hpp - the reference server's client protocol, without sockets.
//
// A client's frame is read into a `request`, or refused with an `error` whose
// code is one of the README's table; the checks run in a fixed order, so a
// frame wrong in two ways always gets the same answer. Everything the server
// sends is written by the functions below. Nothing here touches a connection,
// a hub or a broker: the tests step it directly, and the server (server.hpp)
// only carries requests to the hub and replies back.
#ifndef BACKPLANE_DEMO_PROTOCOL_HPP
#define BACKPLANE_DEMO_PROTOCOL_HPP

#include "json.hpp"

#include <backplane/http.hpp>
#include <backplane/hub.hpp>
#include <backplane/names.hpp>
#include <backplane/stream_id.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace demo::protocol {

// ---- Handshake ------------------------------------------------------------

/// The user of "/ws?user=ID" (empty if absent or badly escaped: not a valid
/// name), or nullopt if the request is not for the WebSocket endpoint.
inline std::optional<std::string> ws_user(const backplane::http_request& req)
{
    if (req.path() != "/ws")
        return std::nullopt;
    return req.query_parameter("user").value_or("");
}

// ---- Client to server -----------------------------------------------------

enum class op { send, dm, join, leave, where, online, refresh };

/// A request, checked: every name in it is valid, every text within bounds.
struct request {
    op kind = op::send;
    std::string room;                   ///< send (to_room), join, leave
    bool to_room = false;               ///< send: to `room`, else a broadcast
    std::string user;                   ///< dm: the recipient; where: the user asked about
    std::string text;                   ///< send, dm
    std::string cursor = "0";           ///< online
    std::optional<std::string> last_id; ///< join: catch up on the room after this id
    std::string token;                  ///< refresh: a newer token
};

/// A refusal: `code` as in the README's error table, and why.
struct error {
    std::string_view code;
    std::string message;
};

/// What the server can do and allows: some requests depend on the broker.
struct capabilities {
    bool history = false;  ///< the broker keeps history (join with last_id)
    bool presence = false; ///< there is a locator (where, online)
    std::size_t max_text = 16 * 1024;
    std::size_t max_name_length = backplane::default_max_name_length;
    bool tokens = false;   ///< clients present tokens (refresh)
};

/// Reads client frames; reuses its buffers from one frame to the next.
class reader {
public:
    explicit reader(capabilities c) : caps_(c) {}

    /// Reads one frame into `out`. @returns false, with `err` set, if the
    /// frame is refused; nothing else has happened then.
    bool read(std::string_view payload, bool text, request& out, error& err)
    {
        err_ = &err;
        if (!text)
            return fail("not_text", "requests are JSON text frames");
        if (auto why = json::parse(payload, object_); !why.empty())
            return fail("invalid_json", why);
        const std::string* op = field("op");
        if (!op)
            return false;
        out = request{};
        if (*op == "send")
            return read_send(out);
        if (*op == "dm")
            return read_dm(out);
        if (*op == "join" || *op == "leave")
            return read_membership(*op == "join", out);
        if (*op == "where" || *op == "online")
            return read_presence(*op == "where", out);
        if (*op == "refresh")
            return read_refresh(out);
        return fail("unknown_op", "unknown op \"" + *op + "\"");
    }

private:
    bool read_send(request& out)
    {
        out.kind = op::send;
        if (!only({"op", "room", "text"}) || !text(out.text))
            return false;
        out.to_room = object_.find("room") != nullptr;
        return !out.to_room || name("room", "room", out.room);
    }

    bool read_dm(request& out)
    {
        out.kind = op::dm;
        return only({"op", "to", "text"}) && name("to", "user", out.user) && text(out.text);
    }

    bool read_membership(bool join, request& out)
    {
        out.kind = join ? op::join : op::leave;
        const bool resume = join && object_.find("last_id");
        if (!only({"op", "room", resume ? "last_id" : "room"}) || !name("room", "room", out.room))
            return false;
        if (!resume)
            return true;
        const std::string* last_id = field("last_id");
        if (!last_id)
            return false;
        if (!caps_.history)
            return fail("unsupported", "last_id needs --broker redis-streams");
        backplane::stream_id parsed;
        if (!backplane::parse_stream_id(*last_id, parsed))
            return fail("invalid_last_id", "last_id must be a message id");
        out.last_id = *last_id;
        return true;
    }

    // {"op":"where","user":U} and {"op":"online"[,"cursor":C]}.
    bool read_presence(bool where, request& out)
    {
        out.kind = where ? op::where : op::online;
        if (!only({"op", where ? "user" : "cursor"}))
            return false;
        if (!caps_.presence)
            return fail("unsupported", "presence needs a Redis broker and --presence on");
        if (where)
            return name("user", "user", out.user);
        if (!object_.find("cursor"))
            return true;
        const std::string* cursor = field("cursor");
        if (!cursor)
            return false;
        if (cursor->empty() || cursor->find_first_not_of("0123456789") != std::string::npos)
            return fail("invalid_cursor", "cursor must be one an online answer gave");
        out.cursor = *cursor;
        return true;
    }

    // {"op":"refresh","token":T}: a newer token before the current one expires.
    bool read_refresh(request& out)
    {
        out.kind = op::refresh;
        if (!only({"op", "token"}))
            return false;
        const std::string* token = field("token");
        if (!token)
            return false;
        if (!caps_.tokens)
            return fail("unsupported", "refresh needs --auth jwt");
        out.token = *token;
        return true;
    }

    // The string member `key`, or nullptr after failing.
    const std::string* field(std::string_view key)
    {
        const auto* v = object_.find(key);
        if (!v) {
            fail("missing_field", "missing field \"" + std::string(key) + "\"");
            return nullptr;
        }
        if (v->type != json::value::kind::string) {
            fail("wrong_type", "field \"" + std::string(key) + "\" must be a string");
            return nullptr;
        }
        return &v->text;
    }

    bool only(std::initializer_list<std::string_view> allowed)
    {
        for (const auto& m : object_.members) {
            bool ok = false;
            for (auto a : allowed)
                ok = ok || m.first == a;
            if (!ok)
                return fail("unknown_field", "unexpected field \"" + m.first + "\"");
        }
        return true;
    }

    // The member `key`, a valid name of a `what` (room, user), into `out`.
    bool name(std::string_view key, std::string_view what, std::string& out)
    {
        const std::string* v = field(key);
        if (!v)
            return false;
        if (backplane::validate_name(*v, caps_.max_name_length))
            return fail("invalid_name", "invalid " + std::string(what) + " name");
        out = *v;
        return true;
    }

    bool text(std::string& out)
    {
        const std::string* v = field("text");
        if (!v)
            return false;
        if (v->size() > caps_.max_text)
            return fail("too_long", "text longer than " + std::to_string(caps_.max_text) + " bytes");
        out = *v;
        return true;
    }

    bool fail(std::string_view code, std::string message)
    {
        *err_ = error{code, std::move(message)};
        return false;
    }

    capabilities caps_;
    json::flat_object object_;
    error* err_ = nullptr;
};

// ---- What crosses the broker ----------------------------------------------

/// The payload of a chat message: the sender's user, a NUL (which no valid
/// name holds), the text. The receiving hub turns it into JSON once.
inline std::string make_payload(std::string_view from, std::string_view text)
{
    std::string p;
    p.reserve(from.size() + 1 + text.size());
    p.append(from).push_back('\0');
    p.append(text);
    return p;
}

// ---- Server to client -----------------------------------------------------

inline std::string_view scope_of(backplane::message_kind k)
{
    switch (k) {
    case backplane::message_kind::broadcast: return "global";
    case backplane::message_kind::room: return "room";
    case backplane::message_kind::user: return "dm";
    }
    return "global";
}

/// {"type":"message",...}: the frame every local recipient of `m` shares.
/// `id` is scratch space, kept by the caller between messages.
inline void write_message(std::string& out, const backplane::message_view& m, std::string_view instance,
                          std::string& id)
{
    const auto nul = m.payload.find('\0');
    const auto from = nul == std::string_view::npos ? std::string_view{} : m.payload.substr(0, nul);
    const auto text = nul == std::string_view::npos ? m.payload : m.payload.substr(nul + 1);
    id.clear();
    if (m.broker_id.empty())
        id.append(m.origin).append("-").append(std::to_string(m.sequence));
    else
        id.append(m.broker_id);
    json::object_writer w(out);
    w.add("type", "message").add("scope", scope_of(m.kind));
    if (m.kind == backplane::message_kind::room)
        w.add("room", m.target);
    w.add("from", from).add("id", id).add("text", text).add("instance", instance);
    if (m.offline)
        w.add_literal("offline", "true");
}

inline std::string welcome(std::string_view user, std::string_view instance)
{
    std::string out;
    json::object_writer(out).add("type", "welcome").add("user", user).add("instance", instance);
    return out;
}

inline std::string error_reply(const error& e)
{
    std::string out;
    json::object_writer(out).add("type", "error").add("code", e.code).add("message", e.message);
    return out;
}

/// {"type":"joined"} or {"type":"left"}.
inline std::string membership(bool joined, std::string_view room)
{
    std::string out;
    json::object_writer(out).add("type", joined ? "joined" : "left").add("room", room);
    return out;
}

/// How a catch-up went; sent before the live messages that follow it.
inline std::string recovery(const backplane::recovery_result& r)
{
    std::string out;
    {
        json::object_writer w(out); // the object closes with the writer
        w.add("type", "recovery").add("scope", scope_of(r.kind));
        if (r.kind == backplane::message_kind::room)
            w.add("room", r.target);
        w.add_literal("recovered", r.recovered ? "true" : "false").add_number("replayed", r.replayed);
        if (r.error)
            w.add("error", r.error.message());
    }
    return out;
}

/// The answer to "where": the user's instance, or null when offline.
inline std::string presence(std::string_view user, std::string_view instance)
{
    std::string out;
    {
        json::object_writer w(out);
        w.add("type", "presence").add("user", user).add_literal("online", instance.empty() ? "false" : "true");
        if (instance.empty())
            w.add_literal("instance", "null");
        else
            w.add("instance", instance);
    }
    return out;
}

/// A page of the answer to "online".
inline std::string online(const backplane::online_page& page)
{
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
    return out;
}

/// The answer to "refresh": the new token's expiry, in seconds since the epoch.
inline std::string refreshed(std::uint64_t expires)
{
    std::string out;
    json::object_writer(out).add("type", "refreshed").add_number("expires", expires);
    return out;
}

/// Sent to every client when the instance starts draining.
inline constexpr std::string_view draining = R"({"type":"draining"})";

} // namespace demo::protocol

#endif
