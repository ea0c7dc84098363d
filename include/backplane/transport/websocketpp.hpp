// backplane/transport/websocketpp.hpp - real WebSocket connections, served by
// websocketpp (0.8.2, standalone Asio, no TLS) on the hub's io_context.
//
// One `transport::websocketpp` is one listening endpoint. The application
// copies it into its hub (copies share one endpoint) and wires the endpoint's
// hooks (validate, open, message, close, HTTP) to the hub.
//
// C++17 only: websocketpp 0.8.2 does not compile as C++20 with g++ 12. The
// core headers do not include this one and stay C++20-clean.
//
// Transport requirements, as the hub uses them (both sides of the contract):
// - The hub stores one `connection_handle` (a websocketpp connection pointer,
//   opaque to it) per open connection and passes it back to `send`.
// - The hub builds one `frame` per message with `make_frame(payload)`: a
//   websocketpp message marked prepared, holding the frame header and the
//   payload. websocketpp queues a prepared message as it is (the pointer, not
//   the bytes), so every recipient shares that one buffer.
// - `send(handle, frame)` queues the frame and never writes inline: the
//   frames queued for a connection during one turn of the io_context leave
//   together at its end, in one gathered write (impl/websocketpp.hpp says
//   how). It neither copies nor calls back into the hub. It returns
//   `backpressure` above `backpressure_bytes` queued and `dropped` once the
//   connection is closed or closing; a connection with more than
//   `max_outbound_bytes` queued is closed (1008, "slow consumer") by that
//   send. On `dropped` the hub forgets the connection; this transport
//   closes it.
// What this transport promises the application:
// - the hooks see requests as `http_request` and answer with `http_response`
//   (backplane/http.hpp), never websocketpp's types;
// - a handshake's headers are there in the validate and open hooks, and
//   gone after the open hook returns: read what you need there. The close
//   hook still has the method and target;
// - every hook runs on the io_context, one at a time (single-threaded
//   configuration: no locks, no strands);
// - a client's pings are answered, and the pongs count against
//   `max_outbound_bytes` like any frame; pings that arrive before the pong
//   to an earlier one has left are answered by that pong;
// - `on_close` runs once for every connection `on_open` saw, whoever closed
//   it (peer, slow consumer, idle timeout, 1009 for an oversized message,
//   drain), after which sends to it return `dropped`;
// - `when_written(c, h)` tells when what was queued for `c` has left: the hub
//   sends history and kept messages a page at a time with it.
// Thread safety: none. Use it on the io_context's thread only.
#ifndef BACKPLANE_TRANSPORT_WEBSOCKETPP_HPP
#define BACKPLANE_TRANSPORT_WEBSOCKETPP_HPP

#if __cplusplus > 201703L && defined(__GNUC__) && !defined(__clang__)
#error "backplane/transport/websocketpp.hpp: websocketpp 0.8.2 does not build as C++20 with g++; build this file as C++17"
#endif

#include <backplane/http.hpp>
#include <backplane/send_status.hpp>
#include <backplane/transport/detail/websocketpp_config.hpp>

#include <websocketpp/server.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace backplane::transport {

/// Settings of a WebSocket endpoint.
struct websocketpp_options {
    /// Open connections allowed; a handshake past it gets HTTP 503. listen()
    /// lowers it to leave `reserved_descriptors` of the process's open-file
    /// limit free, so that refusing is possible: a refusal needs a socket too.
    std::size_t max_connections = 20000;
    /// File descriptors kept free for everything but WebSocket connections
    /// (the broker's sockets, handshakes in progress, files).
    std::size_t reserved_descriptors = 64;
    /// After a failed accept (out of file descriptors), how long to wait
    /// before the next: the pending connection stays in the backlog, and
    /// accepting again at once would spin.
    std::chrono::milliseconds accept_retry{50};
    /// Bytes queued for one connection past which it is closed as a slow
    /// consumer (1008, "slow consumer").
    std::size_t max_outbound_bytes = 1024 * 1024;
    /// Bytes queued for one connection above which `send` reports backpressure.
    std::size_t backpressure_bytes = 256 * 1024;
    /// Largest message accepted from a client; a larger one closes the
    /// connection with 1009 (message too big).
    std::size_t max_inbound_message = 64 * 1024;
    /// A connection not heard from for this long is pinged.
    std::chrono::milliseconds ping_interval{15000};
    /// A connection not heard from for this long (no message, no pong) is
    /// closed (1001, "idle timeout") and forgotten.
    std::chrono::milliseconds idle_timeout{45000};
    /// How long a client has, from its TCP connection, to complete its
    /// opening handshake (or a plain HTTP request) before the socket is
    /// dropped: a client that connects and sends nothing holds a descriptor
    /// this long at most.
    std::chrono::milliseconds handshake_timeout{5000};
    /// Connections accepted whose handshake (or plain HTTP request) has not
    /// ended yet. At the limit, accepting pauses until one ends: newcomers
    /// wait in the listen backlog, and a client that opens sockets and
    /// sends nothing holds at most this many descriptors, each for at most
    /// handshake_timeout. 0: no limit.
    std::size_t max_handshakes = 1024;
    /// How long a close handshake may take before the socket is dropped.
    std::chrono::milliseconds close_timeout{2000};
    /// A text frame a drain first sends to every connection (empty: none),
    /// telling clients to close by themselves and reconnect elsewhere.
    std::string drain_notice;
    /// How long a drain with a notice waits for clients to close before it
    /// closes the rest with 1001. A client that closes first loses nothing it
    /// sent: websocketpp drops the messages that arrive after our close
    /// frame, but reads every message before the client's.
    std::chrono::milliseconds drain_grace{0};
    /// How long a drain waits for the close handshakes before it drops the
    /// remaining sockets.
    std::chrono::milliseconds drain_timeout{5000};
    /// The listen(2) backlog.
    int listen_backlog = 4096;
    /// Writes the frames of a turn for all connections with one io_uring
    /// submission per 256 connections instead of one sendmsg each, where the
    /// build has it (BACKPLANE_HAS_IO_URING) and the kernel allows it
    /// (Linux 6.1 or later, io_uring not disabled); else, or when false,
    /// one sendmsg per connection.
    bool batch_writes = true;
    /// TCP_NODELAY on every connection: a frame leaves at once instead of
    /// waiting for the peer's delayed ACK (tens of milliseconds).
    bool no_delay = true;
};

/// Counters of one endpoint, for metrics. They only grow.
struct websocketpp_stats {
    std::uint64_t opened = 0;               ///< WebSocket connections opened
    std::uint64_t closed = 0;               ///< of those, closed since
    std::uint64_t rejected = 0;             ///< handshakes refused (limit, validate hook, drain)
    std::uint64_t accept_errors = 0;        ///< accepts that failed (out of file descriptors)
    std::uint64_t accept_pauses = 0;        ///< times accepting paused at max_handshakes
    std::uint64_t messages_in = 0;          ///< messages received from clients
    std::uint64_t bytes_in = 0;             ///< their payload bytes
    std::uint64_t frames_out = 0;           ///< frames queued to clients
    std::uint64_t bytes_out = 0;            ///< their payload bytes
    std::uint64_t slow_consumer_closes = 0; ///< closed past max_outbound_bytes
    std::uint64_t idle_closes = 0;          ///< closed past idle_timeout
    std::uint64_t too_big_closes = 0;       ///< closed with 1009
    std::uint64_t handovers = 0;            ///< connections written by websocketpp since their socket filled up
    std::uint64_t write_batches = 0;        ///< io_uring submissions of writes (see batch_writes)
    std::uint64_t http_requests = 0;        ///< plain HTTP requests served
    std::uint64_t pongs_saved = 0;          ///< pings answered by the pong queued for an earlier one
};

/// WebSocket close codes (RFC 6455, 7.4.1), for `close`.
namespace close_code {
inline constexpr std::uint16_t going_away = 1001;       ///< drain, idle timeout
inline constexpr std::uint16_t policy_violation = 1008; ///< slow consumer, a request refused after the handshake
inline constexpr std::uint16_t message_too_big = 1009;  ///< past max_inbound_message
} // namespace close_code

/// A WebSocket server endpoint. Copies share one endpoint.
class websocketpp {
public:
    using server_type = ::websocketpp::server<detail::websocketpp_config>;
    using connection_type = server_type::connection_type;
    /// An open connection: a handle to store and pass back, opaque to the
    /// application.
    using connection_handle = server_type::connection_ptr;
    /// One prepared message, shared by every recipient.
    using frame = server_type::message_ptr;

    /// Decides whether a WebSocket handshake is accepted. To refuse, return
    /// false, with `res` holding the answer: its status (400 Bad Request if
    /// left at 0), headers and body. To accept, return true: the headers of
    /// `res` join the 101 answer (a chosen Sec-WebSocket-Protocol, say).
    using validate_handler = std::function<bool(const http_request& req, http_response& res)>;
    /// A connection that has opened, with its handshake.
    using open_handler = std::function<void(const connection_handle& c, const http_request& req)>;
    /// A message from a client: its payload and whether it came as text.
    using message_handler = std::function<void(const connection_handle& c, std::string_view payload, bool text)>;
    /// A connection that has closed, with what remains of its handshake
    /// (method and target; no headers, maybe no peer address).
    using close_handler = std::function<void(const connection_handle& c, const http_request& req)>;
    /// A plain HTTP request, answered with `res` (500 if its status is left at 0).
    using http_handler = std::function<void(const http_request& req, http_response& res)>;

    /// Creates an endpoint on `io`, not yet listening.
    explicit websocketpp(asio::io_context& io, websocketpp_options options = {});

    /// Starts listening on `address`:`port` (port 0: any free port).
    std::error_code listen(const std::string& address, std::uint16_t port);

    /// The port listened on; 0 if not listening.
    std::uint16_t port() const;

    void on_validate(validate_handler h);
    void on_open(open_handler h);
    void on_message(message_handler h);
    void on_close(close_handler h);
    /// Without it, a plain HTTP request is answered 426 (Upgrade Required).
    void on_http(http_handler h);

    /// The application's id for a connection (0 until set).
    static std::uint64_t tag(const connection_handle& c) noexcept { return c->tag; }
    static void set_tag(const connection_handle& c, std::uint64_t tag) noexcept { c->tag = tag; }

    /// Builds a text frame once: the header is written here, so that no
    /// connection prepares (copies) it again.
    frame make_frame(std::string_view payload) const;

    /// Queues `f` for `c`; see the contract at the top of this file.
    send_status send(const connection_handle& c, const frame& f) const;

    /// Calls `h` once every frame queued for `c` so far has been written to
    /// its socket (at once if nothing waits); never if `c` closes first.
    /// After a hand-over to websocketpp, "written" is websocketpp's queue
    /// emptied into its write in progress, whose end it does not report.
    void when_written(const connection_handle& c, std::function<void()> h) const;

    /// Sends `text` to one connection (a reply): one frame for one recipient.
    send_status send_text(const connection_handle& c, std::string_view text) const;

    /// Closes one connection with `code` (see close_code) and `reason`; its
    /// on_close follows.
    void close(const connection_handle& c, std::uint16_t code, const std::string& reason) const;

    /// Graceful drain: sends `drain_notice` and waits up to `drain_grace` for
    /// the clients to close, then closes the rest with 1001 (going away), and
    /// calls `done` on the io_context once every close handshake has finished
    /// or `drain_timeout` has passed (the sockets left are then dropped) and
    /// the endpoint has stopped listening. Until then it still accepts, so
    /// that a health check hears that it is draining (`draining()`) and a
    /// WebSocket handshake is refused with 503, which a load balancer can
    /// pass on to another instance, rather than a refused connection.
    /// Calling it again does nothing.
    void drain(std::function<void()> done);

    /// Whether drain() was called.
    bool draining() const noexcept;
    /// Open WebSocket connections.
    std::size_t connection_count() const noexcept;
    /// Connections accepted whose handshake has not ended.
    std::size_t handshakes_in_progress() const noexcept;
    const websocketpp_stats& stats() const noexcept;
    const websocketpp_options& options() const noexcept;
    /// The websocketpp endpoint, for settings this class does not cover.
    server_type& server() noexcept;

private:
    struct state;

    std::shared_ptr<state> state_;
};

} // namespace backplane::transport

#include <backplane/transport/impl/websocketpp.hpp>

#endif
