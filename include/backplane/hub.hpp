// backplane/hub.hpp - the fan-out core.
//
// One `basic_hub` per instance. It keeps the local registry (connection ->
// user, rooms), subscribes the broker to exactly the channels its local
// connections need, publishes what they send, and delivers what the broker
// brings to the local connections it targets.
//
// Channel tiers (names configurable in hub_options):
//   chat:global          every hub, from construction
//   chat:room:{room}     a hub with at least one local member of {room}
//   notif:user:{user}    a hub with at least one local connection of {user}
// Subscriptions follow reference counts: a room's channel is subscribed when
// its first local member joins and unsubscribed when the last one leaves or
// disconnects, so the broker never sees a subscribe twice. Room and direct
// messages may instead travel on shared channels (room_routing,
// direct_routing), as the seed design's alternatives do.
//
// Every message goes through the broker, the publisher's own hub included:
// all hubs see one order per channel, and a broker that assigns ids (streams)
// has assigned one before any client sees the message.
//
// With a broker that keeps history (ids "ms-seq"), a connection that says
// what it last received is caught up before it joins the live flow: its
// membership stays pending (counted, not delivered to) while pages of history
// are sent to it alone, and it goes live at the id where history and the
// live flow meet, so it sees every message once and in order.
//
// Delivery is the hot path: a message becomes one transport frame, and that
// same frame is handed to every target; there is no copy and no allocation
// per recipient.
//
// Thread safety: none. Call every member on the hub's executor, the one the
// broker delivers on.
#ifndef BACKPLANE_HUB_HPP
#define BACKPLANE_HUB_HPP

#include <backplane/detail/registry.hpp>
#include <backplane/detail/traits.hpp>
#include <backplane/envelope.hpp>
#include <backplane/error.hpp>
#include <backplane/names.hpp>
#include <backplane/send_status.hpp>
#include <backplane/stream_id.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backplane {

/// Identifies a connection on the hub that opened it; never 0.
using connection_id = std::uint64_t;

/// "No connection": the default for the `exclude` arguments.
inline constexpr connection_id no_connection = 0;

/// How room messages travel between hubs.
enum class room_routing {
    /// One channel per room, subscribed only by hubs with a local member.
    per_room_channel,
    /// Every room message on the global channel, filtered by each hub: every
    /// hub receives every message. Simple, and costly with many rooms.
    global_channel,
};

/// How direct messages travel between hubs: the three routings of the seed design.
enum class direct_routing {
    /// One channel per user, subscribed by the hubs where the user has a
    /// connection: only those hubs receive the message.
    per_user_channel,
    /// Every direct message on one shared channel (`dm:all`), filtered by
    /// each hub: simple, and every hub receives every message.
    shared_channel,
    /// One channel per instance (`instance:{id}`); the sender names the
    /// user's host, which it looks up (see send_to_user_at).
    instance_channel,
};

/// A message as the hub delivers it; the views are valid during the call only.
struct message_view {
    message_kind kind;
    std::string_view target;    ///< room or user; empty for a broadcast
    std::string_view origin;    ///< instance id of the publishing hub
    std::uint64_t sequence;     ///< assigned by the origin
    std::string_view broker_id; ///< the broker's id (a stream id), or empty
    std::string_view payload;   ///< what the sender passed
};

/// Writes the bytes of the frame for `message` into `out` (which arrives
/// empty). Called once per delivered message, never per recipient.
using frame_builder = std::function<void(const message_view& message, std::string& out)>;

/// Where a reconnecting connection resumes: the last id it received on the
/// global channel and on its user's channel; empty: no replay for that one.
struct resume_point {
    std::string_view global;
    std::string_view user;
};

/// The outcome of one catch-up, reported once per channel caught up on.
struct recovery_result {
    message_kind kind;        ///< broadcast (global), room or user
    std::string_view target;  ///< room or user; empty for the global channel
    bool recovered = false;   ///< everything after the id was still there: no gap
    std::size_t replayed = 0; ///< messages sent from history
    std::error_code error;    ///< history could not be read; live delivery goes on
};

/// Called when the history is sent and before any live message that follows it.
using recovery_handler = std::function<void(const recovery_result&)>;

/// Settings of a hub. The defaults are the seed design's.
struct hub_options {
    /// This instance's id, carried in every envelope it publishes. It must be
    /// unique among the hubs sharing a broker and a valid name; empty: a
    /// random one is chosen.
    std::string instance_id;
    /// The channel every hub subscribes to.
    std::string global_channel = "chat:global";
    /// A room's channel; "{room}" is replaced by the room's name.
    std::string room_channel = "chat:room:{room}";
    /// A user's channel; "{user}" is replaced by the user's name.
    std::string user_channel = "notif:user:{user}";
    /// How room messages travel.
    room_routing rooms = room_routing::per_room_channel;
    /// How direct messages travel.
    direct_routing direct = direct_routing::per_user_channel;
    /// The channel of direct_routing::shared_channel.
    std::string shared_direct_channel = "dm:all";
    /// An instance's channel, for direct_routing::instance_channel;
    /// "{instance}" is replaced by the instance id.
    std::string instance_channel = "instance:{instance}";
    /// Longest room or user name accepted, in bytes.
    std::size_t max_name_length = default_max_name_length;
    /// Largest payload accepted by the send functions, in bytes.
    std::size_t max_payload = 1024 * 1024;
    /// Builds each frame from the message, for a server that adds what only
    /// the receiving side knows (the broker's id); empty: the frame is the
    /// payload as it was sent.
    frame_builder build_frame;
    /// Messages read per page of history while a connection catches up.
    std::size_t replay_page = 100;
};

/// Counters of one hub, for metrics. They only grow.
struct hub_stats {
    std::uint64_t published = 0;          ///< messages handed to the broker
    std::uint64_t publish_errors = 0;     ///< of those, refused by the broker later
    std::uint64_t received = 0;           ///< well-formed messages from the broker
    std::uint64_t deliveries = 0;         ///< frames accepted by the transport
    std::uint64_t backpressure = 0;       ///< of those, accepted above the mark
    std::uint64_t dropped_connections = 0; ///< connections removed after a failed send
    std::uint64_t malformed = 0;          ///< messages whose envelope was rejected
    std::uint64_t unrouted = 0;           ///< messages with no local target
    std::uint64_t replayed = 0;           ///< frames sent from history
};

/// The fan-out core.
/// @tparam Transport sends frames to connections; see transport/memory.hpp.
/// @tparam Broker carries messages between hubs; see broker/memory.hpp.
template <class Transport, class Broker>
class basic_hub {
    static_assert(detail::is_transport<Transport>::value,
                  "Transport needs connection_handle, frame, make_frame(string_view) -> frame "
                  "and send(const connection_handle&, const frame&) -> send_status");
    static_assert(detail::is_broker<Broker>::value,
                  "Broker needs set_message_handler(message_handler), subscribe(string_view), "
                  "unsubscribe(string_view) and publish(string_view, string_view, publish_handler)");

public:
    using transport_type = Transport;
    using broker_type = Broker;
    using connection_handle = typename Transport::connection_handle;
    using frame = typename Transport::frame;

    /// Takes the policies, and subscribes the global channel.
    /// @throws std::invalid_argument if a channel pattern lacks its
    /// placeholder or the instance id is not a valid name.
    basic_hub(Transport transport, Broker broker, hub_options options = {})
        : transport_(std::move(transport)),
          broker_(std::move(broker)),
          options_(std::move(options)),
          room_channel_(options_.room_channel, "{room}"),
          user_channel_(options_.user_channel, "{user}"),
          instance_channel_(options_.instance_channel, "{instance}")
    {
        if (options_.instance_id.empty())
            options_.instance_id = random_instance_id();
        if (validate_name(options_.instance_id, options_.max_name_length))
            throw std::invalid_argument("backplane: invalid instance id: " + options_.instance_id);
        broker_.set_message_handler(
            [this](std::string_view channel, std::string_view id, std::string_view data) {
                on_message(channel, id, data);
            });
        broker_.subscribe(options_.global_channel);
        if (options_.direct == direct_routing::shared_channel)
            broker_.subscribe(options_.shared_direct_channel);
        else if (options_.direct == direct_routing::instance_channel)
            broker_.subscribe(instance_channel_.name(options_.instance_id));
    }

    // The broker's handler refers to this object.
    basic_hub(const basic_hub&) = delete;
    basic_hub& operator=(const basic_hub&) = delete;

    ~basic_hub() { broker_.set_message_handler(nullptr); }

    /// Registers a connection of `user`; subscribes the user's channel if it
    /// is the user's first local connection.
    /// @returns the new connection's id, or no_connection with `ec` set to
    /// error::invalid_name.
    connection_id open(connection_handle handle, std::string_view user, std::error_code& ec)
    {
        if ((ec = validate_name(user, options_.max_name_length)))
            return no_connection;
        auto [id, created] = registry_.open(std::move(handle), user);
        if (created && routes_users_by_channel())
            broker_.subscribe(user_channel_.name(user));
        return id;
    }

    /// Registers a connection that resumes: it receives what the global and
    /// user channels kept after the ids in `from`, then the live flow. Calls
    /// `done` once per channel caught up on. Needs a broker with history.
    /// @returns the new connection's id, or no_connection with `ec` set
    /// (error::invalid_name, error::invalid_stream_id).
    connection_id open(connection_handle handle, std::string_view user, std::error_code& ec,
                       resume_point from, recovery_handler done)
    {
        static_assert(detail::has_history<Broker>::value, "this Broker keeps no history");
        stream_id global, mine;
        if ((ec = validate_name(user, options_.max_name_length)))
            return no_connection;
        if ((!from.global.empty() && !parse_stream_id(from.global, global))
            || (!from.user.empty() && !parse_stream_id(from.user, mine))) {
            ec = error::invalid_stream_id;
            return no_connection;
        }
        if (!from.user.empty() && !routes_users_by_channel()) {
            ec = std::make_error_code(std::errc::operation_not_supported);
            return no_connection;
        }
        // Both memberships pending at once, so that neither list sees the
        // connection before its own catch-up is done.
        auto [id, created] = registry_.open(std::move(handle), user, true);
        if (created && routes_users_by_channel())
            broker_.subscribe(user_channel_.name(user));
        const auto* s = registry_.get(id);
        start_or_activate(id, s->all.list, message_kind::broadcast, options_.global_channel,
                          from.global.empty() ? nullptr : &global, done);
        start_or_activate(id, s->user.list, message_kind::user, user_channel_.name(user),
                          from.user.empty() ? nullptr : &mine, std::move(done));
        return id;
    }

    /// Forgets a connection: leaves its rooms and drops its user's channel if
    /// it was the last. Closing an unknown or already closed id does nothing.
    void close(connection_id id)
    {
        cancel_recoveries(id, nullptr);
        registry_.close(id, [this](detail::list_kind kind, std::string_view name) {
            unsubscribe(kind, name);
        });
    }

    /// Adds a connection to a room; subscribes the room's channel if it is
    /// the room's first local member. Joining twice is not an error.
    std::error_code join(connection_id id, std::string_view room)
    {
        if (auto ec = validate_name(room, options_.max_name_length))
            return ec;
        auto result = registry_.join(id, room);
        if (result == detail::join_result::unknown)
            return error::unknown_connection;
        if (result == detail::join_result::created && routes_rooms_by_channel())
            broker_.subscribe(room_channel_.name(room));
        return {};
    }

    /// Joins a room and first sends the connection what the room's channel
    /// kept after `last_id`; calls `done` when that is sent, before any live
    /// message that follows it. Needs a broker with history and
    /// room_routing::per_room_channel. Joining a room already joined is not
    /// an error and replays nothing.
    std::error_code join(connection_id id, std::string_view room, std::string_view last_id,
                         recovery_handler done)
    {
        static_assert(detail::has_history<Broker>::value, "this Broker keeps no history");
        if (auto ec = validate_name(room, options_.max_name_length))
            return ec;
        stream_id after;
        if (!parse_stream_id(last_id, after))
            return error::invalid_stream_id;
        if (!routes_rooms_by_channel())
            return std::make_error_code(std::errc::operation_not_supported);
        auto result = registry_.join(id, room, true);
        if (result == detail::join_result::unknown)
            return error::unknown_connection;
        if (result == detail::join_result::already)
            return {};
        const std::string_view channel = room_channel_.name(room);
        if (result == detail::join_result::created)
            broker_.subscribe(channel);
        start_or_activate(id, registry_.room(room), message_kind::room, channel, &after, std::move(done));
        return {};
    }

    /// Removes a connection from a room; unsubscribes the room's channel if
    /// it was the last local member. Leaving a room not joined is not an error.
    std::error_code leave(connection_id id, std::string_view room)
    {
        if (auto ec = validate_name(room, options_.max_name_length))
            return ec;
        if (!registry_.contains(id))
            return error::unknown_connection;
        if (auto* list = registry_.room(room))
            cancel_recoveries(id, list);
        if (registry_.leave(id, room))
            unsubscribe(detail::list_kind::room, room);
        return {};
    }

    /// Sends `payload` to every connection on every hub, but `exclude`.
    std::error_code broadcast(std::string_view payload, connection_id exclude = no_connection)
    {
        return publish(options_.global_channel, message_kind::broadcast, {}, payload, exclude);
    }

    /// Sends `payload` to every member of `room` on every hub, but `exclude`.
    std::error_code send_to_room(std::string_view room, std::string_view payload,
                                 connection_id exclude = no_connection)
    {
        if (auto ec = validate_name(room, options_.max_name_length))
            return ec;
        const std::string_view channel =
            routes_rooms_by_channel() ? room_channel_.name(room) : options_.global_channel;
        return publish(channel, message_kind::room, room, payload, exclude);
    }

    /// Sends `payload` to every connection of `user` on every hub, but `exclude`.
    /// With direct_routing::instance_channel the hub cannot know where the
    /// user is: this returns std::errc::operation_not_supported, and the
    /// caller looks the host up and calls send_to_user_at.
    std::error_code send_to_user(std::string_view user, std::string_view payload,
                                 connection_id exclude = no_connection)
    {
        if (auto ec = validate_name(user, options_.max_name_length))
            return ec;
        switch (options_.direct) {
        case direct_routing::per_user_channel:
            return publish(user_channel_.name(user), message_kind::user, user, payload, exclude);
        case direct_routing::shared_channel:
            return publish(options_.shared_direct_channel, message_kind::user, user, payload, exclude);
        case direct_routing::instance_channel: break;
        }
        return std::make_error_code(std::errc::operation_not_supported);
    }

    /// Sends `payload` to the connections of `user` on the hub `instance`
    /// only, through that instance's channel (direct_routing::instance_channel).
    std::error_code send_to_user_at(std::string_view instance, std::string_view user,
                                    std::string_view payload, connection_id exclude = no_connection)
    {
        if (auto ec = validate_name(user, options_.max_name_length))
            return ec;
        if (auto ec = validate_name(instance, options_.max_name_length))
            return ec;
        return publish(instance_channel_.name(instance), message_kind::user, user, payload, exclude);
    }

    /// Local connections.
    std::size_t connection_count() const noexcept { return registry_.connection_count(); }
    /// Whether `id` is an open connection of this hub.
    bool contains(connection_id id) const noexcept { return registry_.contains(id); }
    /// The user of a connection; empty for an unknown id.
    std::string_view user_of(connection_id id) const noexcept { return registry_.user_of(id); }
    /// Local members of `room`.
    std::size_t room_size(std::string_view room) const { return registry_.room_size(room); }
    /// Local connections of `user`.
    std::size_t user_connections(std::string_view user) const { return registry_.user_size(user); }
    /// Rooms with at least one local member.
    std::size_t room_count() const noexcept { return registry_.room_count(); }

    const hub_stats& stats() const noexcept { return stats_; }
    const hub_options& options() const noexcept { return options_; }
    const std::string& instance_id() const noexcept { return options_.instance_id; }
    Transport& transport() noexcept { return transport_; }
    Broker& broker() noexcept { return broker_; }

private:
    // "prefix{placeholder}suffix", split once so that naming a channel is an
    // append into a reused buffer.
    class channel_pattern {
    public:
        channel_pattern(const std::string& pattern, std::string_view placeholder)
        {
            auto at = pattern.find(placeholder);
            if (at == std::string::npos)
                throw std::invalid_argument("backplane: channel pattern '" + pattern
                                            + "' lacks " + std::string(placeholder));
            prefix_ = pattern.substr(0, at);
            suffix_ = pattern.substr(at + placeholder.size());
        }

        // The view is valid until the next call.
        std::string_view name(std::string_view value)
        {
            buffer_.assign(prefix_).append(value).append(suffix_);
            return buffer_;
        }

    private:
        std::string prefix_, suffix_, buffer_;
    };

    bool routes_rooms_by_channel() const noexcept
    {
        return options_.rooms == room_routing::per_room_channel;
    }

    bool routes_users_by_channel() const noexcept
    {
        return options_.direct == direct_routing::per_user_channel;
    }

    // Called when the last local member of a room, or connection of a user, is gone.
    void unsubscribe(detail::list_kind kind, std::string_view name)
    {
        if (kind == detail::list_kind::user) {
            if (routes_users_by_channel())
                broker_.unsubscribe(user_channel_.name(name));
        } else if (routes_rooms_by_channel())
            broker_.unsubscribe(room_channel_.name(name));
    }

    std::error_code publish(std::string_view channel, message_kind kind, std::string_view target,
                            std::string_view payload, connection_id exclude)
    {
        if (payload.size() > options_.max_payload)
            return error::payload_too_large;
        encoded_.clear();
        encode(envelope{kind, options_.instance_id, target, exclude, ++sequence_, payload}, encoded_);
        ++stats_.published;
        broker_.publish(channel, encoded_, [this](std::error_code ec) {
            if (ec)
                ++stats_.publish_errors;
        });
        return {};
    }

    void on_message(std::string_view /*channel*/, std::string_view broker_id, std::string_view data)
    {
        envelope e;
        if (decode(data, e)) {
            ++stats_.malformed;
            return;
        }
        ++stats_.received;
        list_node* list = nullptr;
        switch (e.kind) {
        case message_kind::broadcast: list = &registry_.all(); break;
        case message_kind::room: list = registry_.room(e.target); break;
        case message_kind::user: list = registry_.user(e.target); break;
        }
        auto recovering = list && !recoveries_.empty() ? recoveries_.find(list) : recoveries_.end();
        if (!list || (list->second.members.empty() && recovering == recoveries_.end())) {
            ++stats_.unrouted;
            return;
        }
        const connection_id skip = e.origin == options_.instance_id ? e.exclude : no_connection;
        const frame f = make_frame(e, broker_id);
        if (recovering != recoveries_.end())
            advance_recoveries(recovering, broker_id, f, skip);
        deliver(list->second.members, f, skip);
        // Catch-ups that reached the live flow join it after this message,
        // which they have had already; the dead go last, as closing edits lists.
        for (const auto& [id, node] : activated_)
            registry_.activate(id, node);
        activated_.clear();
        close_dead();
    }

    frame make_frame(const envelope& e, std::string_view broker_id)
    {
        if (!options_.build_frame)
            return transport_.make_frame(e.payload);
        frame_bytes_.clear();
        options_.build_frame({e.kind, e.target, e.origin, e.sequence, broker_id, e.payload}, frame_bytes_);
        return transport_.make_frame(frame_bytes_);
    }

    // The fast path: one frame, every target, nothing allocated per target.
    void deliver(const std::vector<detail::slot_index>& targets, const frame& f, connection_id skip)
    {
        std::uint64_t delivered = 0, pressured = 0;
        for (const auto index : targets) {
            const auto& t = registry_.target_at(index);
            if (t.id == skip)
                continue;
            switch (transport_.send(t.handle, f)) {
            case send_status::ok: ++delivered; break;
            case send_status::backpressure: ++delivered; ++pressured; break;
            case send_status::dropped: dead_.push_back(t.id); break;
            }
        }
        stats_.deliveries += delivered;
        stats_.backpressure += pressured;
    }

    // Sends one frame to one connection, outside the fast path.
    void send_one(connection_id id, const frame& f)
    {
        const auto* handle = registry_.handle(id);
        if (!handle)
            return;
        switch (transport_.send(*handle, f)) {
        case send_status::ok: ++stats_.deliveries; break;
        case send_status::backpressure: ++stats_.deliveries; ++stats_.backpressure; break;
        case send_status::dropped: dead_.push_back(id); break;
        }
    }

    void close_dead()
    {
        for (const auto id : dead_)
            close(id);
        stats_.dropped_connections += dead_.size();
        dead_.clear();
    }

    // ---- Catch-up from history ------------------------------------------
    //
    // A recovering connection is a pending member of one list. It reads pages
    // after its cursor (the last id it was sent) while the hub notes the last
    // live id of that channel. After a short page: if live is ahead, another
    // page; if live is level, it goes live now; if live is behind (messages
    // it has read are still on their way), it waits, skipping live messages
    // up to its cursor, and goes live with the first one past it.

    using list_node = typename detail::registry<connection_handle>::list_node;

    struct recovery {
        std::uint64_t key;   // names it in page callbacks; never reused
        connection_id conn;
        list_node* list;     // alive while this pending membership is
        std::string channel;
        stream_id cursor;
        stream_id live;      // the last live id seen meanwhile
        bool reading = true; // false: history read, waiting for live
        bool first_page = true;
        recovery_result result;
        recovery_handler done;
    };
    using recovery_list = std::vector<std::unique_ptr<recovery>>;
    using recovery_map = std::unordered_map<const list_node*, recovery_list>;

    void start_or_activate(connection_id id, list_node* list, message_kind kind, std::string_view channel,
                           const stream_id* after, recovery_handler done)
    {
        if (!after) {
            registry_.activate(id, list);
            return;
        }
        auto r = std::make_unique<recovery>();
        r->key = ++recovery_keys_;
        r->conn = id;
        r->list = list;
        r->channel = std::string(channel);
        r->cursor = *after;
        r->result.kind = kind;
        r->result.target = kind == message_kind::broadcast ? std::string_view() : std::string_view(list->first);
        r->done = std::move(done);
        auto& rec = *r;
        recoveries_[list].push_back(std::move(r));
        read_page(rec);
    }

    void read_page(recovery& r)
    {
        broker_.history(r.channel, r.cursor.to_string(), options_.replay_page,
                        [this, key = r.key, list = r.list](std::error_code ec, detail::history_page page) {
                            on_page(key, list, ec, std::move(page));
                        });
    }

    recovery* find_recovery(std::uint64_t key, list_node* list)
    {
        auto it = recoveries_.find(list);
        if (it == recoveries_.end())
            return nullptr;
        for (auto& r : it->second)
            if (r->key == key)
                return r.get();
        return nullptr;
    }

    void on_page(std::uint64_t key, list_node* list, std::error_code ec, detail::history_page page)
    {
        recovery* r = find_recovery(key, list);
        if (!r)
            return; // the connection left or closed meanwhile
        if (ec) {
            r->result.error = ec;
            r->result.recovered = false;
        } else if (r->first_page) {
            r->result.recovered = page.cursor_found;
        }
        r->first_page = false;
        const connection_id conn = r->conn;
        for (const auto& entry : page.entries) {
            envelope e;
            stream_id id;
            if (!parse_stream_id(entry.id, id) || !(r->cursor < id) || decode(entry.data, e))
                continue;
            r->cursor = id;
            ++r->result.replayed;
            if (e.origin == options_.instance_id && e.exclude == conn)
                continue;
            send_one(conn, make_frame(e, entry.id));
            ++stats_.replayed;
        }
        if (!dead_.empty())
            return close_dead(); // the connection is gone, and its catch-up with it
        if (!ec && (page.entries.size() >= options_.replay_page || r->cursor < r->live))
            return read_page(*r);
        r->reading = false;
        auto done = std::move(r->done);
        const auto result = r->result;
        if (r->cursor == r->live)
            finish(*r);
        if (done)
            done(result);
    }

    // Called for each live message on a list with catch-ups under way,
    // before its members receive it.
    void advance_recoveries(typename recovery_map::iterator it, std::string_view broker_id, const frame& f,
                            connection_id skip)
    {
        stream_id id;
        if (!parse_stream_id(broker_id, id))
            return;
        auto& list = it->second;
        for (auto& r : list) {
            if (r->reading) {
                r->live = id;
            } else if (r->cursor < id) {
                if (r->conn != skip)
                    send_one(r->conn, f);
                activated_.emplace_back(r->conn, r->list);
                r->conn = no_connection; // finished: removed below
            }
        }
        list.erase(std::remove_if(list.begin(), list.end(), [](const auto& r) { return r->conn == no_connection; }),
                   list.end());
        if (list.empty())
            recoveries_.erase(it);
    }

    // The connection goes live now.
    void finish(recovery& r)
    {
        registry_.activate(r.conn, r.list);
        remove_recoveries(r.list, [&](const recovery& x) { return &x == &r; });
    }

    // Drops the catch-ups of `id` (in `list` only, if given), before the
    // registry forgets the memberships they belong to.
    void cancel_recoveries(connection_id id, const list_node* list)
    {
        if (recoveries_.empty())
            return;
        std::vector<const list_node*> lists;
        for (auto& [node, recs] : recoveries_)
            if (!list || node == list)
                lists.push_back(node);
        for (auto* node : lists)
            remove_recoveries(node, [&](const recovery& r) { return r.conn == id; });
    }

    template <class Pred>
    void remove_recoveries(const list_node* list, Pred pred)
    {
        auto it = recoveries_.find(list);
        if (it == recoveries_.end())
            return;
        auto& recs = it->second;
        recs.erase(std::remove_if(recs.begin(), recs.end(), [&](const auto& r) { return pred(*r); }), recs.end());
        if (recs.empty())
            recoveries_.erase(it);
    }

    static std::string random_instance_id()
    {
        std::random_device rd;
        std::uniform_int_distribution<std::uint64_t> dist;
        const std::uint64_t v = dist(rd);
        static const char hex[] = "0123456789abcdef";
        std::string id(16, '0');
        for (int i = 0; i < 16; ++i)
            id[i] = hex[(v >> (4 * i)) & 0xf];
        return id;
    }

    Transport transport_;
    Broker broker_;
    hub_options options_;
    channel_pattern room_channel_;
    channel_pattern user_channel_;
    channel_pattern instance_channel_;
    detail::registry<connection_handle> registry_;
    hub_stats stats_;
    std::uint64_t sequence_ = 0;
    std::string encoded_;              // reused for every publish
    std::string frame_bytes_;          // reused for every built frame
    std::vector<connection_id> dead_;  // reused for every delivery
    recovery_map recoveries_;
    std::vector<std::pair<connection_id, const list_node*>> activated_;
    std::uint64_t recovery_keys_ = 0;
};

} // namespace backplane

#endif
