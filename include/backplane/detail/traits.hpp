// backplane/detail/traits.hpp - detection of the policy requirements, so that
// a policy that does not fit fails with one readable static_assert.
#ifndef BACKPLANE_DETAIL_TRAITS_HPP
#define BACKPLANE_DETAIL_TRAITS_HPP

#include <backplane/send_status.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace backplane::detail {

template <class T, class = void>
struct is_transport : std::false_type {};

template <class T>
struct is_transport<T, std::void_t<
    typename T::connection_handle,
    typename T::frame,
    std::enable_if_t<std::is_same_v<
        decltype(std::declval<T&>().make_frame(std::string_view{})), typename T::frame>>,
    std::enable_if_t<std::is_same_v<
        decltype(std::declval<T&>().send(
            std::declval<const typename T::connection_handle&>(),
            std::declval<const typename T::frame&>())),
        send_status>>>> : std::true_type {};

/// Called by a broker for each message on a subscribed channel: the channel,
/// the broker's id for the message (empty where it has none), the data.
using message_handler = std::function<void(std::string_view, std::string_view, std::string_view)>;

/// Called once when a publish completes; may be empty.
using publish_handler = std::function<void(std::error_code)>;

/// One entry of a broker's history.
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

template <class T, class = void>
struct is_broker : std::false_type {};

template <class T>
struct is_broker<T, std::void_t<
    decltype(std::declval<T&>().set_message_handler(std::declval<message_handler>())),
    decltype(std::declval<T&>().subscribe(std::string_view{})),
    decltype(std::declval<T&>().unsubscribe(std::string_view{})),
    decltype(std::declval<T&>().publish(
        std::string_view{}, std::string_view{}, std::declval<publish_handler>()))>>
    : std::true_type {};

/// A broker that keeps history: `history(channel, after_id, count, done)`
/// reads up to `count` entries after `after_id`.
template <class T, class = void>
struct has_history : std::false_type {};

template <class T>
struct has_history<T, std::void_t<decltype(std::declval<T&>().history(
    std::string_view{}, std::string_view{}, std::size_t{}, std::declval<history_handler>()))>>
    : std::true_type {};

} // namespace backplane::detail

#endif
