// backplane/redis/options.hpp - settings, state and counters shared by the
// command connection and the subscriber connection.
#ifndef BACKPLANE_REDIS_OPTIONS_HPP
#define BACKPLANE_REDIS_OPTIONS_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace backplane::redis {

/// Runtime settings of one connection. The defaults suit a local Redis.
struct connection_options {
    /// Sent as CLIENT SETNAME after connecting, so that CLIENT LIST shows who
    /// is who; empty: none. Spaces are not allowed by Redis.
    std::string client_name;
    /// Longest time from the start of a connection attempt to the end of
    /// the handshake (AUTH, SELECT, CLIENT SETNAME, PING).
    std::chrono::milliseconds connect_timeout{2000};
    /// First wait before reconnecting; doubled after each failed attempt.
    std::chrono::milliseconds reconnect_initial{25};
    /// Longest wait before reconnecting. Each wait is drawn at random from
    /// [delay/2, delay] (jitter), so that many instances do not reconnect
    /// in step after a restart of the server.
    std::chrono::milliseconds reconnect_max{500};
    /// A PING is sent after this long, whether or not the connection is
    /// busy: the liveness probe. Zero: no probe.
    std::chrono::milliseconds ping_interval{1000};
    /// A probe unanswered after this long means the connection is dead (the
    /// server is stopped, or a network path is gone): it is closed and
    /// opened again. A dead server is detected within ping_interval +
    /// ping_timeout.
    std::chrono::milliseconds ping_timeout{2000};
    /// Most commands queued or awaiting their reply; past it a command fails
    /// at once with error::queue_full. This bounds the memory a stalled or
    /// absent server can make the client hold.
    std::size_t max_pending = 65536;
    /// Most bytes of commands queued and not yet written; past it a command
    /// fails at once with error::queue_full. Commands may be large (a
    /// publish carries up to hub_options::max_payload): the count alone
    /// would let a stalled server make the client hold gigabytes.
    std::size_t max_pending_bytes = 32 * 1024 * 1024;
    /// Bytes read from the socket at a time.
    std::size_t read_buffer_size = 64 * 1024;
};

/// Where a connection is in its life.
enum class connection_state {
    connecting,  ///< resolving, connecting, or in the handshake
    ready,       ///< the handshake is done: commands flow
    backing_off, ///< waiting before the next attempt
    stopped,     ///< stop() was called; nothing more happens
};

/// Counters of one connection. They only grow.
struct connection_stats {
    std::uint64_t connects = 0;    ///< handshakes completed
    std::uint64_t reconnects = 0;  ///< of those, after the first
    std::uint64_t disconnects = 0; ///< ready connections lost
    std::uint64_t failed_attempts = 0; ///< attempts that never became ready
    std::uint64_t probe_timeouts = 0;  ///< connections closed by the liveness probe
};

} // namespace backplane::redis

#endif
