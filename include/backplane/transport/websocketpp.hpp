// backplane/transport/websocketpp.hpp - real WebSocket connections, served by
// websocketpp (0.8.2, standalone Asio, no TLS) on the hub's io_context.
//
// One `transport::websocketpp` is one listening endpoint. The application
// copies it into its hub (copies share one endpoint) and wires the endpoint's
// handlers (open, message, close, HTTP) to the hub.
//
// C++17 only: websocketpp 0.8.2 does not compile as C++20 with g++ 12. The
// core headers do not include this one and stay C++20-clean.
//
// Transport requirements, as the hub uses them (both sides of the contract):
// - The hub stores one `connection_handle` (a websocketpp connection pointer)
//   per open connection and passes it back to `send`.
// - The hub builds one `frame` per message with `make_frame(payload)`: a
//   websocketpp message marked prepared, holding the frame header and the
//   payload. websocketpp queues a prepared message as it is (the pointer, not
//   the bytes), so every recipient shares that one buffer.
// - `send(handle, frame)` queues the frame and never writes inline: the
//   frames queued for a connection during one turn of the io_context leave
//   together at its end, in one gathered write. It neither copies nor calls
//   back into the hub. It returns `backpressure` above `backpressure_bytes`
//   queued and `dropped` once the connection is closed or closing; a
//   connection with more than `max_outbound_bytes` queued is closed (1008,
//   "slow consumer") by that send. On `dropped` the hub forgets the
//   connection; this transport closes it.
// How frames are written: websocketpp's write path costs several
// allocations and posted handlers per write (a few microseconds, a third
// of what the kernel spends on a small frame). So while a connection keeps
// up, this transport writes its frames itself, with one non-blocking
// sendmsg at the end of the turn (and sends pings and pongs the same way);
// the turn ends once the input that was ready has been read, so that one
// write carries every message of it. Built with liburing
// (BACKPLANE_HAS_IO_URING), the writes of all connections leave in one
// io_uring submission per 256 connections instead of a system call each
// (see detail/send_ring.hpp). The first time a socket does not take
// everything, the rest goes to websocketpp's queue, and so does everything
// after it for that connection: websocketpp may then have a write in
// flight, which a direct write must never overtake.
// What this transport promises the application:
// - the handshake's headers (`get_request_header` and the like) are there
//   in the validate and open hooks, and empty after the open hook returns:
//   read what you need from them there;
// - every handler runs on the io_context, one at a time (single-threaded
//   configuration: no locks, no strands);
// - `on_close` runs once for every connection `on_open` saw, whoever closed
//   it (peer, slow consumer, idle timeout, 1009 for an oversized message,
//   drain), after which sends to it return `dropped`.
// Thread safety: none. Use it on the io_context's thread only.
#ifndef BACKPLANE_TRANSPORT_WEBSOCKETPP_HPP
#define BACKPLANE_TRANSPORT_WEBSOCKETPP_HPP

#if __cplusplus > 201703L && defined(__GNUC__) && !defined(__clang__)
#error "backplane/transport/websocketpp.hpp: websocketpp 0.8.2 does not build as C++20 with g++; build this file as C++17"
#endif

#include <backplane/detail/send_ring.hpp>
#include <backplane/detail/ws_frame.hpp>
#include <backplane/send_status.hpp>

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

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
};

namespace detail {

// What the transport keeps in each connection, through websocketpp's
// connection_base hook (so no map from connection to state is needed).
struct websocketpp_connection_data {
    std::uint64_t tag = 0;                          // the application's id for it
    std::size_t open_index = static_cast<std::size_t>(-1); // position in the open list
    std::chrono::steady_clock::time_point heard{};  // last message, ping or pong
    std::vector<::websocketpp::config::asio::message_type::ptr> pending; // to write at the end of the turn
    std::size_t pending_bytes = 0;                  // their bytes
    bool direct = true;                             // written by us, not yet by websocketpp
    bool closing = false;                           // close started by us
    bool admitted = false;                          // handshake accepted, not open yet
};

// websocketpp's whole-library configuration: Asio without TLS, single-threaded.
struct websocketpp_config : ::websocketpp::config::asio {
    using type = websocketpp_config;
    using base = ::websocketpp::config::asio;

    // Everything runs on one io_context thread: no mutex per send.
    typedef ::websocketpp::concurrency::none concurrency_type;
    typedef ::websocketpp::log::basic<concurrency_type, ::websocketpp::log::elevel> elog_type;
    typedef ::websocketpp::log::basic<concurrency_type, ::websocketpp::log::alevel> alog_type;
    typedef websocketpp_connection_data connection_base;

    struct transport_config : base::transport_config {
        typedef type::concurrency_type concurrency_type;
        typedef type::elog_type elog_type;
        typedef type::alog_type alog_type;
        static bool const enable_multithreading = false; // no strand per connection
    };
    typedef ::websocketpp::transport::asio::endpoint<transport_config> transport_type;

    static bool const enable_multithreading = false;
    // The read buffer lives inside every connection object: clients send
    // little, and an idle connection should cost little memory (default 16 KiB).
    static const std::size_t connection_read_buffer_size = 1024;
    static const std::size_t max_message_size = 64 * 1024;
    static const std::size_t max_http_body_size = 64 * 1024;
    static const ::websocketpp::log::level elog_level = ::websocketpp::log::elevel::none;
    static const ::websocketpp::log::level alog_level = ::websocketpp::log::alevel::none;
};

} // namespace detail

/// A WebSocket server endpoint. Copies share one endpoint.
class websocketpp {
public:
    using server_type = ::websocketpp::server<detail::websocketpp_config>;
    using connection_type = server_type::connection_type;
    /// An open connection; also what the hooks receive.
    using connection_handle = server_type::connection_ptr;
    /// One prepared message, shared by every recipient.
    using frame = server_type::message_ptr;

    /// Decides whether a WebSocket handshake is accepted; it may set the
    /// refusal's HTTP status with `c->set_status`.
    using validate_handler = std::function<bool(const connection_handle& c)>;
    /// A connection or an event on it.
    using connection_handler = std::function<void(const connection_handle& c)>;
    /// A message from a client: its payload and whether it came as text.
    using message_handler = std::function<void(const connection_handle& c, std::string_view payload, bool text)>;
    /// A plain HTTP request; answer it with `c->set_status` and `c->set_body`.
    using http_handler = std::function<void(const connection_handle& c)>;

    /// Creates an endpoint on `io`, not yet listening.
    explicit websocketpp(asio::io_context& io, websocketpp_options options = {})
        : state_(std::make_shared<state>(io, std::move(options)))
    {
        state_->init();
    }

    /// Starts listening on `address`:`port` (port 0: any free port).
    std::error_code listen(const std::string& address, std::uint16_t port)
    {
        std::error_code ec;
        const auto ep = asio::ip::tcp::endpoint(asio::ip::make_address(address, ec), port);
        if (ec)
            return ec;
        state_->server.listen(ep, ec);
        if (!ec)
            state_->fit_descriptor_limit();
        if (!ec)
            state_->accept();
        if (!ec)
            state_->arm_sweep();
        return ec;
    }

    /// The port listened on; 0 if not listening.
    std::uint16_t port() const
    {
        std::error_code ec;
        const auto ep = state_->server.get_local_endpoint(ec);
        return ec ? 0 : ep.port();
    }

    void on_validate(validate_handler h) { state_->on_validate = std::move(h); }
    void on_open(connection_handler h) { state_->on_open = std::move(h); }
    void on_message(message_handler h) { state_->on_message = std::move(h); }
    void on_close(connection_handler h) { state_->on_close = std::move(h); }
    void on_http(http_handler h) { state_->on_http = std::move(h); }

    /// The application's id for a connection (0 until set).
    static std::uint64_t tag(const connection_handle& c) noexcept { return c->tag; }
    static void set_tag(const connection_handle& c, std::uint64_t tag) noexcept { c->tag = tag; }

    /// Builds a text frame once: the header is written here, so that no
    /// connection prepares (copies) it again.
    frame make_frame(std::string_view payload) const { return prepared(::websocketpp::frame::opcode::text, payload); }

    /// Queues `f` for `c`; see the contract at the top of this file.
    send_status send(const connection_handle& c, const frame& f) const
    {
        if (c->closing || c->get_state() != ::websocketpp::session::state::open)
            return send_status::dropped;
        const std::size_t queued = c->pending_bytes + c->get_buffered_amount();
        if (queued > state_->options.max_outbound_bytes) {
            ++state_->stats.slow_consumer_closes;
            state_->close(c, ::websocketpp::close::status::policy_violation, "slow consumer");
            return send_status::dropped;
        }
        if (c->direct)
            state_->queue(c, f);
        else if (c->send(f))
            return send_status::dropped;
        ++state_->stats.frames_out;
        state_->stats.bytes_out += f->get_payload().size();
        return queued + f->get_payload().size() > state_->options.backpressure_bytes
            ? send_status::backpressure : send_status::ok;
    }

    /// Sends `text` to one connection (a reply): one frame for one recipient.
    send_status send_text(const connection_handle& c, std::string_view text) const
    {
        return send(c, make_frame(text));
    }

    /// Closes one connection with `code` and `reason`; its on_close follows.
    void close(const connection_handle& c, std::uint16_t code, const std::string& reason) const
    {
        state_->close(c, code, reason);
    }

    /// Graceful drain: sends `drain_notice` and waits up to `drain_grace` for
    /// the clients to close, then closes the rest with 1001 (going away), and
    /// calls `done` on the io_context once every close handshake has finished
    /// or `drain_timeout` has passed (the sockets left are then dropped) and
    /// the endpoint has stopped listening. Until then it still accepts, so
    /// that a health check hears that it is draining (`draining()`) and a
    /// WebSocket handshake is refused with 503, which a load balancer can
    /// pass on to another instance, rather than a refused connection.
    /// Calling it again does nothing.
    void drain(std::function<void()> done) { state_->drain(std::move(done)); }

    /// Whether drain() was called.
    bool draining() const noexcept { return state_->draining; }
    /// Open WebSocket connections.
    std::size_t connection_count() const noexcept { return state_->open.size(); }
    const websocketpp_stats& stats() const noexcept { return state_->stats; }
    const websocketpp_options& options() const noexcept { return state_->options; }
    /// The websocketpp endpoint, for settings this class does not cover.
    server_type& server() noexcept { return state_->server; }

private:
    using clock = std::chrono::steady_clock;

    // A message websocketpp writes as it is: the header is written here, so
    // that no connection prepares (copies) it again. Servers do not mask, so
    // one header fits every connection.
    static frame prepared(::websocketpp::frame::opcode::value op, std::string_view payload)
    {
        using message_type = detail::websocketpp_config::message_type;
        auto f = std::make_shared<message_type>(message_type::con_msg_man_ptr{}, op, 0);
        const auto header = backplane::detail::ws::encode_header(static_cast<std::uint8_t>(op), payload.size());
        f->set_header(std::string(header.view()));
        f->set_payload(payload.data(), payload.size());
        f->set_prepared(true);
        return f;
    }

    struct state : std::enable_shared_from_this<state> {
        state(asio::io_context& io, websocketpp_options o)
            : options(std::move(o)), sweep_timer(io), drain_timer(io), accept_timer(io),
              ping_frame(prepared(::websocketpp::frame::opcode::ping, {}))
        {
            server.init_asio(&io);
        }

        void init()
        {
            server.clear_access_channels(::websocketpp::log::alevel::all);
            server.clear_error_channels(::websocketpp::log::elevel::all);
            server.set_reuse_addr(true);
            server.set_listen_backlog(options.listen_backlog);
            server.set_max_message_size(options.max_inbound_message);
            server.set_max_http_body_size(options.max_inbound_message);
            server.set_close_handshake_timeout(static_cast<long>(options.close_timeout.count()));
            /* Pongs are awaited by the sweep, not by a timer per ping. */
            server.set_pong_timeout(0);

            // After the accept: websocketpp's socket init handler runs
            // before it, on a socket not yet open, where the option is lost.
            server.set_tcp_pre_init_handler([this](::websocketpp::connection_hdl h) {
                std::error_code ec;
                server.get_con_from_hdl(h)->get_raw_socket().set_option(asio::ip::tcp::no_delay(options.no_delay), ec);
            });
            server.set_validate_handler([this](::websocketpp::connection_hdl h) {
                auto c = server.get_con_from_hdl(h);
                // Handshakes accepted in the same turn are not open yet:
                // they count too, or a burst of them would pass the limit.
                if (draining || open.size() + admitted >= options.max_connections) {
                    c->set_status(::websocketpp::http::status_code::service_unavailable);
                    ++stats.rejected;
                    return false;
                }
                if (on_validate && !on_validate(c)) {
                    ++stats.rejected;
                    return false;
                }
                c->admitted = true;
                ++admitted;
                return true;
            });
            server.set_fail_handler([this](::websocketpp::connection_hdl h) {
                settle_admission(*server.get_con_from_hdl(h));
            });
            server.set_open_handler([this](::websocketpp::connection_hdl h) {
                auto c = server.get_con_from_hdl(h);
                settle_admission(*c);
                c->open_index = open.size();
                c->heard = clock::now();
                open.push_back(c);
                ++stats.opened;
                if (on_open)
                    on_open(c);
                release_handshake(*c);
                if (draining) // admitted before the drain began, open after it
                    close(c, ::websocketpp::close::status::going_away, "going away");
            });
            server.set_close_handler([this](::websocketpp::connection_hdl h) { closed(h); });
            server.set_message_handler([this](::websocketpp::connection_hdl h, server_type::message_ptr m) {
                auto c = server.get_con_from_hdl(h);
                c->heard = clock::now();
                ++stats.messages_in;
                stats.bytes_in += m->get_payload().size();
                if (on_message && !c->closing)
                    on_message(c, m->get_payload(), m->get_opcode() == ::websocketpp::frame::opcode::text);
            });
            server.set_pong_handler([this](::websocketpp::connection_hdl h, std::string) {
                server.get_con_from_hdl(h)->heard = clock::now();
                return;
            });
            /* websocketpp answers a ping itself unless told not to; while we
               write the connection's frames, the pong must come from us. */
            server.set_ping_handler([this](::websocketpp::connection_hdl h, std::string payload) {
                auto c = server.get_con_from_hdl(h);
                c->heard = clock::now();
                if (!c->direct)
                    return true;
                if (!c->closing)
                    queue(c, prepared(::websocketpp::frame::opcode::pong, payload));
                return false;
            });
            server.set_http_handler([this](::websocketpp::connection_hdl h) {
                ++stats.http_requests;
                auto c = server.get_con_from_hdl(h);
                if (on_http) {
                    on_http(c);
                } else {
                    c->set_status(::websocketpp::http::status_code::upgrade_required);
                }
            });
        }

        void fit_descriptor_limit()
        {
            rlimit limit{};
            if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
                return;
            const auto usable = limit.rlim_cur > options.reserved_descriptors
                ? std::size_t(limit.rlim_cur - options.reserved_descriptors) : std::size_t(1);
            options.max_connections = std::min(options.max_connections, usable);
        }

        // websocketpp's own accept loop retries a failed accept at once, which
        // spins while the process is out of file descriptors; this one waits.
        void accept()
        {
            if (stopped)
                return;
            auto c = server.get_connection();
            std::error_code ec;
            server.async_accept(c, [this, c](std::error_code const& e) {
                if (!e) {
                    c->start();
                    return accept();
                }
                c->terminate(e);
                if (e == ::websocketpp::error::operation_canceled || stopped)
                    return;
                ++stats.accept_errors;
                accept_timer.expires_after(options.accept_retry);
                accept_timer.async_wait([this](std::error_code t) {
                    if (!t)
                        accept();
                });
            }, ec);
            if (ec)
                c->terminate(ec);
        }

        // websocketpp keeps the parsed handshake, request and response
        // headers (about 1 KiB), for the connection's whole life, and reads
        // them again only to log a failed handshake; it offers no way to
        // drop them. Once the connection is open they are emptied (the
        // members are not const), so that an idle connection costs less.
        static void release_handshake(connection_type& c)
        {
            const_cast<connection_type::request_type&>(c.get_request()) = connection_type::request_type();
            const_cast<connection_type::response_type&>(c.get_response()) = connection_type::response_type();
        }

        // An accepted handshake has ended: opened, or failed before that.
        void settle_admission(connection_type& c)
        {
            if (c.admitted) {
                c.admitted = false;
                --admitted;
            }
        }

        static std::size_t wire_size(const frame& f) { return f->get_header().size() + f->get_payload().size(); }

        // Queues a frame for the end of the turn (connections we write).
        void queue(const connection_handle& c, const frame& f)
        {
            c->pending.push_back(f);
            c->pending_bytes += wire_size(f);
            ++queued;
            if (c->pending.size() > 1)
                return;
            dirty.push_back(c);
            if (dirty.size() == 1)
                post_flush();
        }

        // A turn's frames leave once the input that was ready has been read:
        // the handlers queued before the flush (a read that completed at once
        // because more data waited, the deliveries it posted) run first, as
        // long as they bring messages or queue frames, up to max_flush_waits
        // times. A flush costs a system call per connection, the fewer the
        // better; and while it runs nothing is read (a websocketpp read takes
        // at most 1 KiB, about ten messages: one read per flush would leave a
        // busy sender's messages waiting in its socket).
        void post_flush()
        {
            asio::post(sweep_timer.get_executor(), [w = this->weak_from_this()] {
                auto s = w.lock();
                if (!s)
                    return;
                const std::uint64_t progress = s->queued + s->stats.messages_in;
                if (progress != s->progress_at_wait && s->flush_waits < max_flush_waits) {
                    s->progress_at_wait = progress;
                    ++s->flush_waits;
                    return s->post_flush();
                }
                s->flush_waits = 0;
                s->flush_all();
            });
        }

        void flush_all()
        {
            flushing.swap(dirty);
            if (options.batch_writes && ring.ready())
                flush_batched();
            for (const auto& c : flushing)
                flush(c); // what no batch took (nothing for a connection that was)
            flushing.clear();
        }

        // The first write of every connection, send_ring::batch connections
        // to a system call; flush() carries on from each result.
        void flush_batched()
        {
            constexpr std::size_t batch = backplane::detail::send_ring::batch;
            std::size_t which[batch]; // index in flushing
            std::size_t at[batch];    // first iovec in batch_iov
            int fds[batch];
            msghdr msgs[batch];
            ssize_t results[batch];
            for (std::size_t from = 0; from < flushing.size(); from += batch) {
                std::size_t n = 0, iovs = 0;
                for (std::size_t i = from; i < std::min(from + batch, flushing.size()); ++i) {
                    const auto& c = flushing[i];
                    if (c->pending.empty() || c->get_state() != ::websocketpp::session::state::open)
                        continue;
                    if (batch_iov.size() < iovs + max_iov) // grows, never shrinks: no refilling
                        batch_iov.resize(iovs + max_iov);
                    const std::size_t count = gather(c->pending, 0, 0, batch_iov.data() + iovs).first;
                    which[n] = i;
                    fds[n] = c->get_raw_socket().native_handle();
                    msgs[n] = msghdr{};
                    msgs[n].msg_iovlen = count;
                    at[n] = iovs;
                    iovs += count;
                    ++n;
                }
                for (std::size_t k = 0; k < n; ++k) // batch_iov has stopped moving
                    msgs[k].msg_iov = batch_iov.data() + at[k];
                const std::size_t sent = ring.send(n, fds, msgs, results);
                stats.write_batches += sent > 0;
                for (std::size_t k = 0; k < sent; ++k)
                    flush(flushing[which[k]], results[k]);
                if (sent < n)
                    return; // the ring failed: flush_all writes the rest one by one
            }
        }

        // The iovecs for `frames` from frame `next`, `part` bytes into it,
        // at most max_iov of them, into `iov`: their number and bytes.
        static std::pair<std::size_t, std::size_t> gather(const std::vector<frame>& frames, std::size_t next,
                                                          std::size_t part, iovec* iov)
        {
            std::size_t n = 0, bytes = 0, skip = part;
            for (std::size_t i = next; i < frames.size() && n + 2 <= max_iov; ++i)
                for (const std::string* b : {&frames[i]->get_header(), &frames[i]->get_payload()}) {
                    const std::size_t from = std::min(skip, b->size());
                    skip -= from;
                    if (from == b->size())
                        continue;
                    iov[n++] = {const_cast<char*>(b->data() + from), b->size() - from};
                    bytes += b->size() - from;
                }
            return {n, bytes};
        }

        // Writes what waits for `c`, without blocking: one sendmsg (more if
        // the frames outnumber the iovecs). `first`, when given, is the
        // result of a first write already made (a batch's): bytes or -errno.
        // What the socket does not take, and everything after it, is
        // websocketpp's to write from now on.
        void flush(const connection_handle& c, std::optional<ssize_t> first = std::nullopt)
        {
            if (c->pending.empty())
                return;
            auto& frames = c->pending;
            std::size_t next = 0; // first frame not wholly written
            std::size_t part = 0; // bytes of it already written
            if (c->get_state() != ::websocketpp::session::state::open)
                next = frames.size(); // websocketpp is closing it: nothing more goes out
            const int fd = c->get_raw_socket().native_handle();
            while (next < frames.size()) {
                iovec iov[max_iov];
                const auto [n, bytes] = gather(frames, next, part, iov);
                ssize_t written;
                if (first) {
                    written = *first;
                    first.reset();
                } else {
                    msghdr m{};
                    m.msg_iov = iov;
                    m.msg_iovlen = n;
                    do
                        written = ::sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
                    while (written < 0 && errno == EINTR);
                }
                if (written <= 0)
                    break;
                for (std::size_t left = static_cast<std::size_t>(written); left > 0;) {
                    const std::size_t size = wire_size(frames[next]);
                    const std::size_t take = std::min(left, size - part);
                    part += take;
                    left -= take;
                    if (part == size) {
                        ++next;
                        part = 0;
                    }
                }
                if (static_cast<std::size_t>(written) < bytes)
                    break; // the socket is full
            }
            if (next < frames.size() && c->get_state() == ::websocketpp::session::state::open) {
                c->direct = false;
                ++stats.handovers;
                if (part > 0) { // the unwritten end of a frame, as a raw message of its own
                    const std::string whole = frames[next]->get_header() + frames[next]->get_payload();
                    auto rest = prepared(::websocketpp::frame::opcode::binary, {});
                    rest->set_header("");
                    rest->set_payload(whole.substr(part));
                    c->send(rest);
                    ++next;
                }
                for (; next < frames.size(); ++next)
                    c->send(frames[next]);
            }
            frames.clear();
            c->pending_bytes = 0;
        }

        void close(const connection_handle& c, std::uint16_t code, const std::string& reason)
        {
            if (c->closing)
                return;
            c->closing = true;
            flush(c); // what was queued goes before the close frame
            std::error_code ec;
            c->close(code, reason, ec);
            if (ec) // not open any more: drop the socket
                c->terminate(ec);
        }

        void closed(::websocketpp::connection_hdl h)
        {
            auto c = server.get_con_from_hdl(h);
            if (c->open_index >= open.size() || open[c->open_index] != c)
                return;
            /* Swap and pop: removal is O(1) at any number of connections. */
            open.back()->open_index = c->open_index;
            open[c->open_index] = std::move(open.back());
            open.pop_back();
            c->open_index = static_cast<std::size_t>(-1);
            c->closing = true;
            ++stats.closed;
            if (c->get_local_close_code() == ::websocketpp::close::status::message_too_big)
                ++stats.too_big_closes;
            if (on_close)
                on_close(c);
            if (draining && open.empty())
                finish_drain();
        }

        // One timer for all connections: pings the quiet, closes the silent.
        void arm_sweep()
        {
            if (options.ping_interval.count() <= 0)
                return;
            sweep_timer.expires_after(std::min(options.ping_interval, options.idle_timeout) / 2);
            sweep_timer.async_wait([this](std::error_code ec) {
                if (ec || draining)
                    return;
                sweep();
                arm_sweep();
            });
        }

        void sweep()
        {
            const auto now = clock::now();
            std::vector<connection_handle> silent;
            for (const auto& c : open) {
                if (c->closing)
                    continue;
                const auto quiet = now - c->heard;
                if (quiet >= options.idle_timeout) {
                    silent.push_back(c);
                } else if (quiet >= options.ping_interval) {
                    std::error_code ec;
                    if (c->direct)
                        queue(c, ping_frame);
                    else
                        c->ping({}, ec);
                }
            }
            // Closed after the walk: a close may edit the open list.
            for (const auto& c : silent) {
                ++stats.idle_closes;
                close(c, ::websocketpp::close::status::going_away, "idle timeout");
            }
        }

        void drain(std::function<void()> done)
        {
            if (draining)
                return;
            draining = true;
            drain_done = std::move(done);
            sweep_timer.cancel();
            if (open.empty())
                return finish_drain();
            if (options.drain_notice.empty() || options.drain_grace.count() <= 0)
                return close_for_drain();
            const auto notice = prepared(::websocketpp::frame::opcode::text, options.drain_notice);
            for (const auto& c : open) {
                if (c->closing)
                    continue;
                if (c->direct)
                    queue(c, notice);
                else
                    c->send(notice);
            }
            // Cancelled by finish_drain() if every client closes in time.
            drain_timer.expires_after(options.drain_grace);
            drain_timer.async_wait([this](std::error_code e) {
                if (!e)
                    close_for_drain();
            });
        }

        void close_for_drain()
        {
            const auto all = open; // closing may edit the list
            for (const auto& c : all)
                close(c, ::websocketpp::close::status::going_away, "going away");
            if (open.empty())
                return; // finish_drain() has run
            drain_timer.expires_after(options.drain_timeout);
            drain_timer.async_wait([this](std::error_code e) {
                if (e)
                    return;
                const auto left = open;
                for (const auto& c : left)
                    c->terminate(std::error_code());
                finish_drain();
            });
        }

        void finish_drain()
        {
            drain_timer.cancel();
            accept_timer.cancel();
            stopped = true;
            std::error_code ec;
            if (server.is_listening())
                server.stop_listening(ec);
            if (auto done = std::move(drain_done)) {
                drain_done = nullptr;
                asio::post(sweep_timer.get_executor(), std::move(done));
            }
        }

        static constexpr std::size_t max_iov = 64; // two per frame
        static constexpr int max_flush_waits = 16;

        websocketpp_options options;
        server_type server;
        std::vector<connection_handle> open;
        std::size_t admitted = 0; // handshakes accepted and not open yet
        std::vector<connection_handle> dirty;    // frames queued this turn
        std::vector<connection_handle> flushing; // being written (dirty's other buffer)
        std::uint64_t queued = 0;                // frames ever queued for the end of a turn
        std::uint64_t progress_at_wait = 0;      // frames queued and messages read when the flush last waited
        int flush_waits = 0;                     // waits of this turn's flush
        backplane::detail::send_ring ring;       // batches the first writes of a turn
        std::vector<iovec> batch_iov;            // their iovecs
        asio::steady_timer sweep_timer;
        asio::steady_timer drain_timer;
        asio::steady_timer accept_timer;
        const frame ping_frame;
        websocketpp_stats stats;
        bool draining = false;
        bool stopped = false; // the drain is over: no more accepts
        std::function<void()> drain_done;
        validate_handler on_validate;
        connection_handler on_open;
        message_handler on_message;
        connection_handler on_close;
        http_handler on_http;
    };

    std::shared_ptr<state> state_;
};

} // namespace backplane::transport

#endif
