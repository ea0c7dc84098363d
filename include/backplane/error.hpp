// backplane/error.hpp - the library's error codes.
//
// Expected failures (a bad name, a malformed envelope, Redis being down) are
// reported as std::error_code values of the backplane category; exceptions are
// kept for programmer errors at setup, such as invalid options.
#ifndef BACKPLANE_ERROR_HPP
#define BACKPLANE_ERROR_HPP

#include <string>
#include <system_error>

namespace backplane {

/// Error conditions raised by the hub, the envelope codec and the brokers.
enum class error {
    /// A room or user name is empty, too long, or has a forbidden character.
    invalid_name = 1,
    /// The connection id is not (or no longer) registered with this hub.
    unknown_connection,
    /// The payload is larger than hub_options::max_payload.
    payload_too_large,
    /// An envelope was truncated or its fields are inconsistent.
    malformed_envelope,
    /// An envelope was written by an incompatible version of the format.
    unsupported_envelope_version,
    /// The broker is not connected and cannot accept the operation now.
    not_connected,
    /// The broker's bounded queue of pending commands is full.
    queue_full,
    /// The server answered with an error reply.
    server_error,
    /// The server's reply could not be parsed.
    protocol_error,
    /// The operation was abandoned because its owner shut down.
    operation_aborted,
    /// The operation did not complete within its deadline.
    timeout,
    /// A Redis URL is malformed or names an unsupported scheme.
    invalid_url,
    /// The connection to the server was lost before the reply arrived; the
    /// command may or may not have been executed.
    connection_lost,
    /// A message id is not of the form "ms-seq".
    invalid_stream_id,
    /// A token's signature, algorithm or claims are not as required.
    invalid_token,
    /// A token's `exp` has passed.
    token_expired,
    /// The application's authorization refused the request.
    forbidden,
    /// The connection is in hub_options::max_rooms_per_connection rooms already.
    too_many_rooms,
    /// On a Redis Cluster, a channel's stream or a user's inbox would not be
    /// in the channel's slot (channel names need a hash tag there).
    cross_slot,
};

namespace detail {

class error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "backplane"; }

    std::string message(int ev) const override
    {
        switch (static_cast<error>(ev)) {
        case error::invalid_name: return "invalid room or user name";
        case error::unknown_connection: return "unknown connection";
        case error::payload_too_large: return "payload too large";
        case error::malformed_envelope: return "malformed envelope";
        case error::unsupported_envelope_version: return "unsupported envelope version";
        case error::not_connected: return "broker not connected";
        case error::queue_full: return "broker queue full";
        case error::server_error: return "server replied with an error";
        case error::protocol_error: return "protocol error";
        case error::operation_aborted: return "operation aborted";
        case error::timeout: return "operation timed out";
        case error::invalid_url: return "invalid Redis URL";
        case error::connection_lost: return "connection lost before the reply";
        case error::invalid_stream_id: return "invalid message id";
        case error::invalid_token: return "invalid token";
        case error::token_expired: return "token expired";
        case error::forbidden: return "forbidden";
        case error::too_many_rooms: return "too many rooms for one connection";
        case error::cross_slot: return "a key would not be in its channel's cluster slot";
        }
        return "unknown backplane error";
    }
};

} // namespace detail

/// The category of backplane::error values.
inline const std::error_category& error_category() noexcept
{
    static const detail::error_category category;
    return category;
}

inline std::error_code make_error_code(error e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

} // namespace backplane

template <>
struct std::is_error_code_enum<backplane::error> : std::true_type {};

#endif
