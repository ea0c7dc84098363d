// backplane/policies.hpp - what basic_hub asks of its policies, and what it
// promises them: the one statement of the contracts, for whoever writes a
// transport, a broker or a locator of their own.
//
//   template <class Transport, class Broker, class Locator = locator::none>
//   class basic_hub;
//
// All three are members of the hub (moved in at construction). Every call
// the hub makes on a policy, and every handler a policy calls, runs on the
// hub's executor, one at a time: no policy needs a lock for the hub's sake.
//
// Transport: sends frames to connections.
//   connection_handle   copyable; the hub keeps one per open connection and
//                       passes it back to send
//   frame               copyable (shared); what a message becomes, once
//   make_frame(payload) -> frame
//                       called once per message; the hub hands that same
//                       frame to every recipient
//   send(handle, frame) -> send_status
//                       queues or writes, never calls back into the hub, and
//                       neither copies the payload nor allocates per call
//                       (the hot path); on `dropped` the hub forgets the
//                       connection: closing it is the transport's business
//   Optional, found by detection:
//   when_written(handle, h)
//                       calls h() once everything queued for the connection
//                       so far has been written to its socket (at once, or
//                       later; h may run inside the call), and never if the
//                       connection closes first. The hub sends history and
//                       kept messages as the connection drains, a page at a
//                       time, and removes kept messages only once written.
//                       Without it, the hub sends each page right after the
//                       one before, and removes it once queued
//
// Broker: carries messages between hubs.
//   get_executor()      the executor the broker calls back on: the hub's
//   set_message_handler(h)  once, before anything else; again with an empty
//                       handler when the hub goes, after which the broker
//                       calls nothing
//   subscribe(channel), unsubscribe(channel)
//                       the hub subscribes a channel once until it
//                       unsubscribes it, and unsubscribes only what it
//                       subscribed
//   publish(channel, data, done)
//                       copies what it needs before it returns; calls
//                       done(ec) once, later, if done is set
//   The broker calls h(channel, id, data) once per message published on a
//   subscribed channel (the publisher's own hub included), never from inside
//   publish, subscribe or unsubscribe; `id` is the broker's id for the
//   message ("ms-seq" where it keeps history), or empty.
//   Optional, found by detection:
//   history(channel, after, count, done)
//                       reads at most `count` messages published on `channel`
//                       after the id `after` and calls done(ec, page) once,
//                       later. Read after subscribe(channel), it misses
//                       nothing: what it does not return is delivered live
//                       afterwards, in id order. page.cursor_found says that
//                       `after` is still there: nothing between it and the
//                       page was trimmed or lost. The hub catches up a
//                       returning connection with it.
//   store_offline(user, data, done)
//                       keeps `data` for `user` without publishing it (the
//                       hub's fallback when the locator says the user is
//                       offline), for as long as the broker says (the Redis
//                       brokers: until the inbox is idle for idle_expiry)
//   read_offline(user, channel, after, count, done)
//                       reads at most `count` messages kept for `user`,
//                       oldest first, after the entry `after` (empty: from
//                       the first), and calls done(ec, messages) once,
//                       later; it removes nothing. `channel` is the one the
//                       user's messages arrive on live here: if it is
//                       subscribed, a read from the first entry waits until
//                       the subscription is in effect, so that a message is
//                       either kept or received live. The first connections
//                       of one user on two hubs at once may both read an
//                       entry, as both would have received it live
//   remove_offline(user, entries, done)
//                       removes those entries (offline_message::entry) once
//                       they were written to a connection of the user, and
//                       the user's store with the last of them
//   publish_direct(channel, user, data, done)
//                       with the two above: publish() of a direct message to
//                       `user`, kept for the user if nobody receives it
//
// Locator: which instance hosts each user.
//   set_instance(id)    once, before anything else: the hub's instance id
//   user_online(user)   the user's first local connection opened
//   user_offline(user)  and the last one closed
//   where(user, done)   calls done(ec, instance) once, later: the instance
//                       hosting `user`, or an empty view if it is offline
//   online(cursor, limit, done)
//                       calls done(ec, page) once, later: a page of about
//                       `limit` online users from `cursor` ("0" to begin;
//                       the page's cursor is "0" when the listing is over)
//   Optional: shutdown(done), to forget the instance's users before it goes.
//
// A policy that does not fit fails to compile with one static_assert that
// says what it lacks (and, where the compiler has concepts, with the
// concept it does not satisfy).
#ifndef BACKPLANE_POLICIES_HPP
#define BACKPLANE_POLICIES_HPP

#include <backplane/send_status.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace backplane {

/// What a broker calls for each message on a subscribed channel: the
/// channel, the broker's id for the message (empty where it has none), the
/// data. The views are valid during the call only.
using message_handler = std::function<void(std::string_view channel, std::string_view id, std::string_view data)>;

/// Called once when a publish (or a store) completes; may be empty.
using publish_handler = std::function<void(std::error_code)>;

/// One message of a broker's history.
struct history_entry {
    std::string id;   ///< "ms-seq"
    std::string data; ///< what was published
};

/// A page of history, oldest first.
struct history_page {
    std::vector<history_entry> entries;
    /// The id read after is still in the history: nothing between it and
    /// these entries was trimmed or lost.
    bool cursor_found = false;
};

/// Called once with a page of history, or an error.
using history_handler = std::function<void(std::error_code, history_page)>;

/// One message kept for a user who had no connection.
struct offline_message {
    std::string entry;       ///< its place in the store: read after it, remove it
    std::string id;          ///< the message's id
    std::string data;        ///< what was published (an envelope)
    bool replayable = false; ///< also in the history of the user's channel: a resume replays it
};

/// Called once with a page of the messages kept for a user, oldest first.
using offline_handler = std::function<void(std::error_code, std::vector<offline_message>)>;

/// Called once with the instance hosting a user, or an empty view if the
/// user is offline; the view is valid during the call only.
using where_handler = std::function<void(std::error_code, std::string_view instance)>;

/// One online user.
struct online_user {
    std::string user;
    std::string instance;
};

/// A page of online users.
struct online_page {
    std::vector<online_user> users;
    /// Pass it back for the next page; "0" when the listing is complete.
    std::string cursor = "0";
};

/// Called once with a page of online users.
using online_handler = std::function<void(std::error_code, online_page)>;

// ---- Detection -----------------------------------------------------------

namespace detail {

template <class T, class = void>
struct transport_fits : std::false_type {};
template <class T>
struct transport_fits<T, std::void_t<
    typename T::connection_handle,
    typename T::frame,
    std::enable_if_t<std::is_same_v<decltype(std::declval<T&>().make_frame(std::string_view{})), typename T::frame>>,
    std::enable_if_t<std::is_same_v<decltype(std::declval<T&>().send(std::declval<const typename T::connection_handle&>(),
                                                                    std::declval<const typename T::frame&>())),
                                    send_status>>>> : std::true_type {};

template <class T, class = void>
struct when_written_fits : std::false_type {};
template <class T>
struct when_written_fits<T, std::void_t<decltype(std::declval<T&>().when_written(
    std::declval<const typename T::connection_handle&>(), std::declval<std::function<void()>>()))>>
    : std::true_type {};

template <class T, class = void>
struct broker_fits : std::false_type {};
template <class T>
struct broker_fits<T, std::void_t<
    decltype(std::declval<const T&>().get_executor()),
    decltype(std::declval<T&>().set_message_handler(std::declval<message_handler>())),
    decltype(std::declval<T&>().subscribe(std::string_view{})),
    decltype(std::declval<T&>().unsubscribe(std::string_view{})),
    decltype(std::declval<T&>().publish(std::string_view{}, std::string_view{}, std::declval<publish_handler>()))>>
    : std::true_type {};

template <class T, class = void>
struct history_fits : std::false_type {};
template <class T>
struct history_fits<T, std::void_t<decltype(std::declval<T&>().history(
    std::string_view{}, std::string_view{}, std::size_t{}, std::declval<history_handler>()))>> : std::true_type {};

template <class T, class = void>
struct offline_fits : std::false_type {};
template <class T>
struct offline_fits<T, std::void_t<
    decltype(std::declval<T&>().store_offline(std::string_view{}, std::string_view{}, std::declval<publish_handler>())),
    decltype(std::declval<T&>().read_offline(std::string_view{}, std::string_view{}, std::string_view{},
                                             std::size_t{}, std::declval<offline_handler>())),
    decltype(std::declval<T&>().remove_offline(std::string_view{}, std::declval<std::vector<std::string>>(),
                                               std::declval<publish_handler>()))>>
    : std::true_type {};

template <class T, class = void>
struct direct_fits : std::false_type {};
template <class T>
struct direct_fits<T, std::void_t<decltype(std::declval<T&>().publish_direct(
    std::string_view{}, std::string_view{}, std::string_view{}, std::declval<publish_handler>()))>> : std::true_type {};

template <class T, class = void>
struct locator_fits : std::false_type {};
template <class T>
struct locator_fits<T, std::void_t<
    decltype(std::declval<T&>().set_instance(std::string_view{})),
    decltype(std::declval<T&>().user_online(std::string_view{})),
    decltype(std::declval<T&>().user_offline(std::string_view{})),
    decltype(std::declval<T&>().where(std::string_view{}, std::declval<where_handler>())),
    decltype(std::declval<T&>().online(std::string_view{}, std::size_t{}, std::declval<online_handler>()))>>
    : std::true_type {};

template <class T, class = void>
struct shutdown_fits : std::false_type {};
template <class T>
struct shutdown_fits<T, std::void_t<decltype(std::declval<T&>().shutdown(std::declval<std::function<void()>>()))>>
    : std::true_type {};

} // namespace detail

/// Whether T meets the Transport requirements.
template <class T>
inline constexpr bool is_transport_v = detail::transport_fits<T>::value;
/// Whether the transport T tells when a connection's queue is written
/// (the optional `when_written`).
template <class T>
inline constexpr bool has_when_written_v = detail::when_written_fits<T>::value;
/// Whether T meets the Broker requirements.
template <class T>
inline constexpr bool is_broker_v = detail::broker_fits<T>::value;
/// Whether the broker T keeps history (the optional `history`).
template <class T>
inline constexpr bool has_history_v = detail::history_fits<T>::value;
/// Whether the broker T keeps messages for offline users (store_offline,
/// read_offline, remove_offline).
template <class T>
inline constexpr bool has_offline_messages_v = detail::offline_fits<T>::value;
/// Whether the broker T keeps the direct messages nobody received
/// (publish_direct); it keeps messages for offline users too.
template <class T>
inline constexpr bool has_publish_direct_v = detail::direct_fits<T>::value && detail::offline_fits<T>::value;
/// Whether T meets the Locator requirements.
template <class T>
inline constexpr bool is_locator_v = detail::locator_fits<T>::value;
/// Whether the locator T has the optional shutdown.
template <class T>
inline constexpr bool has_shutdown_v = detail::shutdown_fits<T>::value;

#if defined(__cpp_concepts)
template <class T>
concept Transport = is_transport_v<T>;
template <class T>
concept Broker = is_broker_v<T>;
template <class T>
concept Locator = is_locator_v<T>;
#endif

} // namespace backplane

#endif
