// backplane/hub.hpp - the fan-out core.
//
// One `basic_hub` per instance. It keeps the local registry (connection ->
// user, rooms), subscribes the broker to exactly the channels its local
// connections need, publishes what they send, and delivers what the broker
// brings to the local connections it targets.
//
// Channel tiers (names configurable in hub_options, which owns them):
//   chat:global          every hub, from construction
//   chat:room:{room}     a hub with at least one local member of {room}
//   notif:user:{user}    a hub with at least one local connection of {user}
// Subscriptions follow reference counts: a room's channel is subscribed when
// its first local member joins and unsubscribed when the last one leaves or
// disconnects, so the broker never sees a subscribe twice. Room and direct
// messages may instead travel on shared channels (room_routing,
// direct_routing), as the seed design's alternatives do; the third, direct
// messages to the instance that hosts the user (the seed's Option B), asks
// the hub's Locator where the user is.
//
// Every message goes through the broker, the publisher's own hub included:
// all hubs see one order per channel, and a broker that assigns ids (streams)
// has assigned one before any client sees the message. The hub alone wraps
// what it publishes in an envelope (envelope.hpp) and unwraps what arrives.
//
// With a broker that keeps history (ids "ms-seq"), a connection that says
// what it last received is caught up before it joins the live flow: its
// membership stays pending (counted, not delivered to) while pages of history
// are sent to it alone, and it goes live where history and the live flow
// meet (detail/catch_up.hpp), so it sees every message once and in order.
// With a broker that keeps messages for offline users, a user's first
// connection gets what was kept for the user.
//
// Delivery is the hot path: a message becomes one transport frame, and that
// same frame is handed to every target; there is no copy and no allocation
// per recipient.
//
// The policies' contracts are in backplane/policies.hpp.
//
// Thread safety: none. Call every member on the hub's executor (the
// broker's), the one the policies call back on.
#ifndef BACKPLANE_HUB_HPP
#define BACKPLANE_HUB_HPP

#include <backplane/detail/catch_up.hpp>
#include <backplane/detail/name_pattern.hpp>
#include <backplane/detail/registry.hpp>
#include <backplane/envelope.hpp>
#include <backplane/error.hpp>
#include <backplane/locator/none.hpp>
#include <backplane/names.hpp>
#include <backplane/policies.hpp>
#include <backplane/send_status.hpp>
#include <backplane/stream_id.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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
    /// One channel per instance (`instance:{id}`): the hub asks its Locator
    /// which instance hosts the user and publishes to that one only. Needs
    /// a locator other than locator::none.
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
    bool offline = false;       ///< kept while the user had no connection, delivered now
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

/// What a connection asks for, as hub_options::authorize sees it.
enum class action {
    join,         ///< target: the room
    send_to_room, ///< target: the room
    broadcast,    ///< target: empty
    send_to_user, ///< target: the recipient
    where,        ///< target: the user asked about
    online,       ///< target: empty
};

/// Whether connection `id` (of `user`) may do `what` to `target`.
using authorizer = std::function<bool(connection_id id, std::string_view user, action what, std::string_view target)>;

/// Settings of a hub. The defaults are the seed design's. The hub owns the
/// channel names: its policies get them from the hub, never configure them.
struct hub_options {
    /// This instance's id, carried in every envelope it publishes. It must be
    /// unique among the hubs sharing a broker and a valid name; empty: a
    /// random one is chosen.
    std::string instance_id;
    /// The channel every hub subscribes to.
    std::string global_channel = "chat:global";
    /// Broadcasts spread over this many channels, "{global_channel}:0" to
    /// ":N-1", for a broker that places each channel on one of several
    /// servers (broker::redis_sharded: one channel is one slot, so one
    /// master would carry every broadcast). Every hub subscribes all of
    /// them and publishes on one, chosen by its instance id, so that its own
    /// broadcasts stay in order. 1: global_channel alone. Not with a broker
    /// that keeps history (a resume reads one global channel).
    std::size_t global_channels = 1;
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
    /// The next page is read once the page before is written (a
    /// transport with when_written), so that a large catch-up never
    /// outgrows what a connection may have queued.
    std::size_t replay_page = 100;
    /// Kept messages read per page when a user's first connection takes
    /// them; each page is removed from the broker once written.
    std::size_t offline_page = 100;
    /// Decides what each connection may do; empty: everything. join()
    /// asks it; sending and presence are not tied to a connection (a
    /// server sends on its own behalf too), so an application asks
    /// allowed() before it sends or asks for a client.
    authorizer authorize;
    /// Most rooms one connection may be in; 0: no limit. Each room a
    /// connection brings may cost every hub a subscription and the broker a
    /// channel, so one hostile connection could otherwise make that cost
    /// unbounded; a chat client is in a handful of rooms, and 100 leaves a
    /// room list in a sidebar well inside.
    std::size_t max_rooms_per_connection = 100;
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
    std::uint64_t sent_to_host = 0;       ///< direct messages published to the host's instance channel
    std::uint64_t kept_offline = 0;       ///< direct messages kept for a user the locator said was offline
    std::uint64_t undeliverable = 0;      ///< direct messages with no host and nowhere to keep them
    std::uint64_t offline_delivered = 0;  ///< kept messages delivered to a user's first connection
};

/// The fan-out core.
/// @tparam Transport sends frames to connections.
/// @tparam Broker carries messages between hubs.
/// @tparam Locator knows which instance hosts each user (locator::none: it does not).
/// The requirements of each are in backplane/policies.hpp.
template <class Transport, class Broker, class Locator = locator::none>
class basic_hub {
    static_assert(is_transport_v<Transport>,
                  "Transport needs connection_handle, frame, make_frame(string_view) -> frame "
                  "and send(const connection_handle&, const frame&) -> send_status (backplane/policies.hpp)");
    static_assert(is_broker_v<Broker>,
                  "Broker needs set_message_handler(message_handler), subscribe(string_view), "
                  "unsubscribe(string_view) and publish(string_view, string_view, publish_handler) "
                  "(backplane/policies.hpp)");
    static_assert(is_locator_v<Locator>,
                  "Locator needs set_instance, user_online, user_offline, where and online "
                  "(backplane/policies.hpp)");

public:
    using transport_type = Transport;
    using broker_type = Broker;
    using locator_type = Locator;
    using connection_handle = typename Transport::connection_handle;
    using frame = typename Transport::frame;
    using executor_type = asio::any_io_executor;

    /// Takes the policies, and subscribes the global channel (and the
    /// shared or instance channel its direct routing uses).
    /// @throws std::invalid_argument if a channel pattern lacks its
    /// placeholder, the instance id is not a valid name, the direct
    /// routing needs a locator and Locator is locator::none, or
    /// global_channels is 0, above 1024, or above 1 with history.
    basic_hub(Transport transport, Broker broker, Locator locator, hub_options options = {});

    /// As above, with a Locator made from the broker's executor
    /// (locator::none, by default).
    basic_hub(Transport transport, Broker broker, hub_options options = {})
        : basic_hub(Locator(broker.get_executor()), std::move(transport), std::move(broker), std::move(options))
    {
    }

    // The policies' handlers refer to this object.
    basic_hub(const basic_hub&) = delete;
    basic_hub& operator=(const basic_hub&) = delete;

    ~basic_hub();

    /// The executor everything runs on: the broker's.
    executor_type get_executor() const { return broker_.get_executor(); }

    /// Registers a connection of `user`; subscribes the user's channel (and
    /// tells the locator) if it is the user's first local connection, and
    /// then gives it what was kept for the user while offline (later, after
    /// whatever the caller sends right away).
    /// @returns the new connection's id, or no_connection with `ec` set to
    /// error::invalid_name.
    connection_id open(connection_handle handle, std::string_view user, std::error_code& ec);

    /// Registers a connection that resumes: it receives what the global and
    /// user channels kept after the ids in `from`, then the live flow. Calls
    /// `done` once per channel caught up on. Needs a broker with history.
    /// @returns the new connection's id, or no_connection with `ec` set
    /// (error::invalid_name, error::invalid_stream_id).
    connection_id open(connection_handle handle, std::string_view user, std::error_code& ec, resume_point from,
                       recovery_handler done);

    /// Forgets a connection: leaves its rooms and drops its user's channel if
    /// it was the last. Closing an unknown or already closed id does nothing.
    void close(connection_id id);

    /// Whether hub_options::authorize lets connection `id` do `what` to
    /// `target`: an empty error, error::forbidden, or
    /// error::unknown_connection.
    std::error_code allowed(connection_id id, action what, std::string_view target = {}) const;

    /// Adds a connection to a room; subscribes the room's channel if it is
    /// the room's first local member. Joining twice is not an error.
    /// Returns error::forbidden if hub_options::authorize refuses, and
    /// error::too_many_rooms past hub_options::max_rooms_per_connection;
    /// then it joins nothing.
    std::error_code join(connection_id id, std::string_view room);

    /// Joins a room and first sends the connection what the room's channel
    /// kept after `last_id`; calls `done` when that is sent, before any live
    /// message that follows it. Needs a broker with history and
    /// room_routing::per_room_channel. Joining a room already joined is not
    /// an error and replays nothing; the room limit is as above.
    std::error_code join(connection_id id, std::string_view room, std::string_view last_id, recovery_handler done);

    /// Removes a connection from a room; unsubscribes the room's channel if
    /// it was the last local member. Leaving a room not joined is not an error.
    std::error_code leave(connection_id id, std::string_view room);

    /// Sends `payload` to every connection on every hub, but `exclude`.
    std::error_code broadcast(std::string_view payload, connection_id exclude = no_connection);

    /// Sends `payload` to every member of `room` on every hub, but `exclude`.
    std::error_code send_to_room(std::string_view room, std::string_view payload, connection_id exclude = no_connection);

    /// Sends `payload` to every connection of `user`, but `exclude`, as the
    /// direct routing says. With direct_routing::instance_channel the hub
    /// asks the locator where the user is and publishes to that instance's
    /// channel; a user it finds offline gets the message kept (a broker that
    /// keeps messages for offline users), or it is counted undeliverable.
    /// The returned error is about the arguments; what became of the message
    /// is in stats().
    std::error_code send_to_user(std::string_view user, std::string_view payload, connection_id exclude = no_connection);

    /// Asks the locator which instance hosts `user`. Completes with
    /// (error_code, std::string instance): empty if the user is offline.
    /// Any Asio completion token: a callback, asio::use_awaitable,
    /// asio::use_future, asio::experimental::deferred.
    template <class CompletionToken>
    auto async_where(std::string_view user, CompletionToken&& token);

    /// Asks the locator for a page of about `limit` online users from
    /// `cursor` ("0" to begin). Completes with (error_code, online_page).
    template <class CompletionToken>
    auto async_online(std::string_view cursor, std::size_t limit, CompletionToken&& token);

    /// Lets the locator forget this instance's users before the instance
    /// goes (a locator without shutdown does nothing). Completes with ().
    template <class CompletionToken>
    auto async_shutdown(CompletionToken&& token);

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
    Locator& locator() noexcept { return locator_; }

private:
    // The locator is made from the broker before the broker is moved: the
    // order in which arguments are evaluated is unspecified, and references
    // here keep every move in the constructor it delegates to.
    basic_hub(Locator locator, Transport&& transport, Broker&& broker, hub_options options)
        : basic_hub(std::move(transport), std::move(broker), std::move(locator), std::move(options))
    {
    }

    using list_node = typename detail::registry<connection_handle>::list_node;

    // A connection catching up on one list (see detail/catch_up.hpp).
    struct recovery {
        std::uint64_t key;   // names it in page callbacks; never reused
        connection_id conn;
        list_node* list;     // alive while this pending membership is
        std::string channel;
        detail::catch_up seam;
        recovery_result result;
        recovery_handler done;
        history_page page;          // the page being sent
        std::size_t next;           // its first entry not yet sent
        bool page_full;             // it filled its request
        std::error_code page_error; // its read failed
    };
    using recovery_list = std::vector<std::unique_ptr<recovery>>;

    // A user's first connection here, taking what was kept for the user
    // (see after_open).
    struct kept_take {
        std::uint64_t key; // names it in callbacks; never reused
        connection_id conn;
        bool resumed_user; // its replay has the replayable ones
        std::string after; // the last entry of the last page removed
        std::vector<offline_message> page;
        std::size_t next;  // the first of page not yet sent
    };
    using recovery_map = std::unordered_map<const list_node*, recovery_list>;

    bool routes_rooms_by_channel() const noexcept { return options_.rooms == room_routing::per_room_channel; }
    bool routes_users_by_channel() const noexcept { return options_.direct == direct_routing::per_user_channel; }
    std::size_t max_rooms() const noexcept
    {
        return options_.max_rooms_per_connection ? options_.max_rooms_per_connection : SIZE_MAX;
    }

    connection_id open_pending(connection_handle handle, std::string_view user, bool pending, std::error_code& ec);
    void after_open(connection_id id, bool first, bool resumed_user);
    void last_gone(detail::list_kind kind, std::string_view name);
    std::error_code publish(std::string_view channel, message_kind kind, std::string_view target,
                            std::string_view payload, connection_id exclude);
    void encode(message_kind kind, std::string_view target, std::string_view payload, connection_id exclude);
    void send_to_host(std::string_view user);
    void read_kept(const std::string& user);
    void send_kept(const std::string& user);
    void hand_on_kept(connection_id closed, const std::string& user);
    template <class F>
    void after_written(connection_id id, F f);
    void on_message(std::string_view channel, std::string_view broker_id, std::string_view data);
    frame make_frame(const envelope& e, std::string_view broker_id, bool offline = false);
    void deliver(const std::vector<detail::slot_index>& targets, const frame& f, connection_id skip);
    send_status send_one(connection_id id, const frame& f);
    void close_dead();

    void start_or_activate(connection_id id, list_node* list, message_kind kind, std::string_view channel,
                           const stream_id* after, recovery_handler done);
    void read_page(recovery& r);
    recovery* find_recovery(std::uint64_t key, list_node* list);
    void on_page(std::uint64_t key, list_node* list, std::error_code ec, history_page page);
    void replay(recovery& r);
    void advance_recoveries(typename recovery_map::iterator it, std::string_view broker_id, const frame& f,
                            connection_id skip);
    void finish(recovery& r);
    void cancel_recoveries(connection_id id, const list_node* list);
    template <class Pred>
    void remove_recoveries(const list_node* list, Pred pred);

    static std::string random_instance_id();

    Transport transport_;
    Broker broker_;
    Locator locator_;
    hub_options options_;
    detail::name_pattern room_channel_;
    detail::name_pattern user_channel_;
    detail::name_pattern instance_channel_;
    std::string own_global_;           // where this hub publishes its broadcasts
    std::string channel_;              // reused for every channel name
    detail::registry<connection_handle> registry_;
    hub_stats stats_;
    std::uint64_t sequence_ = 0;
    std::string encoded_;              // reused for every publish
    std::string frame_bytes_;          // reused for every built frame
    std::vector<connection_id> dead_;  // reused for every delivery
    recovery_map recoveries_;
    std::unordered_map<std::string, kept_take> kept_takes_; // by user
    std::vector<std::pair<connection_id, const list_node*>> activated_;
    std::uint64_t recovery_keys_ = 0;
    // Alive as long as the hub: handlers of the policies that may outlive
    // it (a locator's answer, a broker's kept messages) hold it weakly.
    std::shared_ptr<char> life_ = std::make_shared<char>();
};

} // namespace backplane

#include <backplane/impl/hub.hpp>

#endif
