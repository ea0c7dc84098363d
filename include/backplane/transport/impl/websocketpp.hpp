// backplane/transport/impl/websocketpp.hpp - the websocketpp transport's
// implementation; the API and its contract are in ../websocketpp.hpp.
//
// How frames are written: websocketpp's write path costs several
// allocations and posted handlers per write (a few microseconds, a third
// of what the kernel spends on a small frame). So while a connection keeps
// up, this transport writes its frames itself, with one non-blocking
// sendmsg at the end of the turn (and sends pings and pongs the same way);
// the turn ends once the input that was ready has been read, so that one
// write carries every message of it (detail/turn_flush.hpp). Built with
// liburing (BACKPLANE_HAS_IO_URING), the writes of all connections leave in
// one io_uring submission per 256 connections instead of a system call
// each (see backplane/detail/send_ring.hpp). The first time a socket does
// not take everything, the rest goes to websocketpp's queue, and so does
// everything after it for that connection: websocketpp may then have a
// write in flight, which a direct write must never overtake
// (detail/write_queue.hpp keeps that account).
#ifndef BACKPLANE_TRANSPORT_IMPL_WEBSOCKETPP_HPP
#define BACKPLANE_TRANSPORT_IMPL_WEBSOCKETPP_HPP

#include <backplane/detail/send_ring.hpp>
#include <backplane/detail/ws_frame.hpp>
#include <backplane/transport/detail/turn_flush.hpp>
#include <backplane/transport/detail/websocketpp_request.hpp>
#include <backplane/transport/detail/write_queue.hpp>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>
#include <vector>

namespace backplane::transport {

namespace detail {

namespace ws = backplane::detail::ws;

// A message websocketpp writes as it is: the header is written here, so
// that no connection prepares (copies) it again. Servers do not mask, so
// one header fits every connection.
inline websocketpp::frame prepared_message(std::uint8_t op, std::string_view payload)
{
    using message_type = websocketpp_config::message_type;
    auto f = std::make_shared<message_type>(message_type::con_msg_man_ptr{},
                                            static_cast<::websocketpp::frame::opcode::value>(op), 0);
    f->set_header(std::string(ws::encode_header(op, payload.size()).view()));
    f->set_payload(payload.data(), payload.size());
    f->set_prepared(true);
    return f;
}

// Bytes that websocketpp writes as they are: the unwritten end of a frame
// whose start is on the wire already.
inline websocketpp::frame raw_message(const std::string& bytes)
{
    auto f = prepared_message(ws::binary, {});
    f->set_header("");
    f->set_payload(bytes);
    return f;
}

// Writes the response an application's hook filled in, `fallback` its status if
// it set none.
inline void answer(websocketpp::connection_type& c, const http_response& res, int fallback)
{
    c.set_status(static_cast<::websocketpp::http::status_code::value>(res.status ? res.status : fallback));
    for (const auto& [name, value] : res.headers)
        c.append_header(name, value);
    if (!res.body.empty())
        c.set_body(res.body);
}

} // namespace detail

struct websocketpp::state : std::enable_shared_from_this<state> {
    using clock = std::chrono::steady_clock;
    using writer = detail::queue_writer<frame>;

    state(asio::io_context& io, websocketpp_options o)
        : options(std::move(o)), sweep_timer(io), drain_timer(io), accept_timer(io), written_timer(io),
          ping_frame(detail::prepared_message(detail::ws::ping, {})),
          marker_frame(detail::prepared_message(detail::ws::pong, "w"))
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
        server.set_open_handshake_timeout(static_cast<long>(options.handshake_timeout.count()));
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
            if (on_validate) {
                http_response res;
                if (!on_validate(detail::websocketpp_request::handshake(*c), res)) {
                    detail::answer(*c, res, ::websocketpp::http::status_code::bad_request);
                    ++stats.rejected;
                    return false;
                }
                for (const auto& [name, value] : res.headers)
                    c->append_header(name, value);
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
            handshake_ended(*c);
            c->open_index = open.size();
            c->heard = clock::now();
            open.push_back(c);
            ++stats.opened;
            if (on_open)
                on_open(c, detail::websocketpp_request::handshake(*c));
            release_handshake(*c);
            if (draining) // admitted before the drain began, open after it
                close(c, close_code::going_away, "going away");
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
           write the connection's frames, the pong must come from us. A pong
           is output like any frame: a client that pings without reading is
           a slow consumer too. Pings in a row, before our pong to the first
           has left, are answered by that one pong (RFC 6455 5.5.3 lets one
           pong answer several): pings cannot make the queue grow. */
        server.set_ping_handler([this](::websocketpp::connection_hdl h, std::string payload) {
            auto c = server.get_con_from_hdl(h);
            c->heard = clock::now();
            if (c->closing)
                return false;
            if (c->out.bytes() + c->get_buffered_amount() > options.max_outbound_bytes) {
                ++stats.slow_consumer_closes;
                close(c, close_code::policy_violation, "slow consumer");
                return false;
            }
            if (!c->out.direct())
                return true;
            if (c->pong_flush == flushes + 1) {
                ++stats.pongs_saved;
                return false;
            }
            c->pong_flush = flushes + 1;
            queue(c, detail::prepared_message(detail::ws::pong, payload));
            return false;
        });
        server.set_http_handler([this](::websocketpp::connection_hdl h) {
            ++stats.http_requests;
            auto c = server.get_con_from_hdl(h);
            if (on_http) {
                http_response res;
                on_http(detail::websocketpp_request(*c), res);
                detail::answer(*c, res, ::websocketpp::http::status_code::internal_server_error);
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
                c->handshaking = true;
                ++handshaking;
                // Runs once the connection ends, opened or not.
                c->set_termination_handler([this](connection_handle ended) { handshake_ended(*ended); });
                c->start();
                if (options.max_handshakes == 0 || handshaking < options.max_handshakes)
                    return accept();
                accept_paused = true; // handshake_ended() accepts again
                ++stats.accept_pauses;
                return;
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

    // A handshake has ended: the connection opened, failed or closed.
    void handshake_ended(connection_type& c)
    {
        if (!c.handshaking)
            return;
        c.handshaking = false;
        --handshaking;
        if (accept_paused) {
            accept_paused = false;
            accept();
        }
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

    // Queues a frame for the end of the turn (connections we write).
    void queue(const connection_handle& c, const frame& f)
    {
        turn.frame_queued();
        if (c->out.push(f) && turn.add(c))
            post_flush();
    }

    // A turn's frames leave once the input that was ready has been read:
    // the handlers queued before the flush (a read that completed at once
    // because more data waited, the deliveries it posted) run first, as
    // long as they bring messages or queue frames, up to
    // turn_flush::max_waits times. A flush costs a system call per
    // connection, the fewer the better; and while it runs nothing is read
    // (a websocketpp read takes at most 1 KiB, about ten messages: one read
    // per flush would leave a busy sender's messages waiting in its socket).
    void post_flush()
    {
        asio::post(sweep_timer.get_executor(), [w = this->weak_from_this()] {
            auto s = w.lock();
            if (!s)
                return;
            if (s->turn.wait(s->stats.messages_in))
                return s->post_flush();
            s->flush_all();
        });
    }

    void flush_all()
    {
        ++flushes;
        const auto& flushing = turn.take();
        if (options.batch_writes && ring.ready())
            flush_batched(flushing);
        for (const auto& c : flushing)
            flush(c); // what no batch took (nothing for a connection that was)
        turn.done();
        check_written();
    }

    // ---- when_written ------------------------------------------------------
    //
    // While we write a connection's frames, they are written once our queue
    // is empty. After a hand-over websocketpp writes them, and reports
    // neither the end of a write nor whether one is under way: its queue
    // (get_buffered_amount) empties into the write it starts, which may take
    // a long time to drain. So once its queue is empty, a marker goes after
    // them (an unsolicited pong of one byte, which RFC 6455 5.5.3 lets a peer
    // send and tells the other to ignore): websocketpp takes it from its
    // queue only when no write is under way, that is when the write that
    // held our frames has ended. Handlers that wait are looked at after each
    // flush and every written_poll.

    struct waiter {
        connection_handle c;
        std::function<void()> h;
        bool marked = false; // the marker went after the frames
    };

    // Whether everything queued for `w.c` before the marker has left.
    bool written(waiter& w)
    {
        auto& c = *w.c;
        if (c.out.direct())
            return c.out.empty();
        if (c.get_buffered_amount() > 0)
            return false;
        if (w.marked)
            return true;
        w.marked = true;
        c.send(marker_frame);
        return c.get_buffered_amount() == 0; // taken at once: no write was under way
    }

    static bool gone(const connection_type& c)
    {
        return c.closing || c.get_state() != ::websocketpp::session::state::open;
    }

    void when_written(const connection_handle& c, std::function<void()> h)
    {
        if (gone(*c))
            return;
        if (c->out.direct() && c->out.empty())
            return h();
        waiters.push_back({c, std::move(h)});
        check_written();
    }

    void check_written()
    {
        if (waiters.empty())
            return;
        std::vector<std::function<void()>> ready;
        std::vector<waiter> still;
        for (auto& w : waiters) {
            if (gone(*w.c))
                continue; // never called: the close hook says what became of it
            if (written(w))
                ready.push_back(std::move(w.h));
            else
                still.push_back(std::move(w));
        }
        waiters = std::move(still);
        for (auto& h : ready)
            h();
        arm_written_poll();
    }

    void arm_written_poll()
    {
        if (waiters.empty() || polling_written)
            return;
        polling_written = true;
        written_timer.expires_after(written_poll);
        written_timer.async_wait([w = weak_from_this()](std::error_code ec) {
            if (auto s = w.lock()) {
                s->polling_written = false;
                if (!ec)
                    s->check_written();
            }
        });
    }

    // The first write of every connection, send_ring::batch connections
    // to a system call; flush() carries on from each result.
    void flush_batched(const std::vector<connection_handle>& flushing)
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
                if (c->out.empty() || c->get_state() != ::websocketpp::session::state::open)
                    continue;
                if (batch_iov.size() < iovs + writer::max_iov) // grows, never shrinks: no refilling
                    batch_iov.resize(iovs + writer::max_iov);
                const std::size_t count = writer(c->out).gather(batch_iov.data() + iovs);
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

    // Writes what waits for `c`, without blocking: one sendmsg (more if
    // the frames outnumber the iovecs). `first`, when given, is the
    // result of a first write already made (a batch's): bytes or -errno.
    // What the socket does not take, and everything after it, is
    // websocketpp's to write from now on.
    void flush(const connection_handle& c, std::optional<ssize_t> first = std::nullopt)
    {
        if (c->out.empty())
            return;
        if (c->get_state() != ::websocketpp::session::state::open)
            return c->out.clear(); // websocketpp is closing it: nothing more goes out
        const int fd = c->get_raw_socket().native_handle();
        writer w(c->out);
        detail::write_step step;
        do {
            iovec iov[writer::max_iov];
            msghdr m{};
            m.msg_iov = iov;
            m.msg_iovlen = w.gather(iov);
            ssize_t written;
            if (first) {
                written = *first;
                first.reset();
            } else {
                do
                    written = ::sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
                while (written < 0 && errno == EINTR);
                if (written < 0)
                    written = -errno;
            }
            step = w.apply(written);
        } while (step == detail::write_step::again);
        if (step == detail::write_step::hand_over) {
            ++stats.handovers;
            w.hand_over([&c](const std::string& rest) { c->send(detail::raw_message(rest)); },
                        [&c](const frame& f) { c->send(f); });
        }
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
        if (c->get_local_close_code() == close_code::message_too_big)
            ++stats.too_big_closes;
        if (on_close)
            on_close(c, detail::websocketpp_request::handshake(*c));
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
                if (c->out.direct())
                    queue(c, ping_frame);
                else
                    c->ping({}, ec);
            }
        }
        // Closed after the walk: a close may edit the open list.
        for (const auto& c : silent) {
            ++stats.idle_closes;
            close(c, close_code::going_away, "idle timeout");
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
        const auto notice = detail::prepared_message(detail::ws::text, options.drain_notice);
        for (const auto& c : open) {
            if (c->closing)
                continue;
            if (c->out.direct())
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
            close(c, close_code::going_away, "going away");
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

    websocketpp_options options;
    server_type server;
    std::vector<connection_handle> open;
    std::size_t admitted = 0;                   // handshakes accepted and not open yet
    std::size_t handshaking = 0;                // connections accepted, handshake not ended
    bool accept_paused = false;                 // at max_handshakes
    detail::turn_flush<connection_handle> turn; // whose frames leave at the end of the turn, and when
    std::uint64_t flushes = 0;                  // flush_all() calls: a pong queued since has not left
    backplane::detail::send_ring ring;          // batches the first writes of a turn
    std::vector<iovec> batch_iov;               // their iovecs
    asio::steady_timer sweep_timer;
    asio::steady_timer drain_timer;
    asio::steady_timer accept_timer;
    asio::steady_timer written_timer;
    static constexpr std::chrono::milliseconds written_poll{5};
    std::vector<waiter> waiters; // when_written's
    bool polling_written = false;
    const frame ping_frame;
    const frame marker_frame; // when_written's, after a hand-over
    websocketpp_stats stats;
    bool draining = false;
    bool stopped = false; // the drain is over: no more accepts
    std::function<void()> drain_done;
    validate_handler on_validate;
    open_handler on_open;
    message_handler on_message;
    close_handler on_close;
    http_handler on_http;
};

inline websocketpp::websocketpp(asio::io_context& io, websocketpp_options options)
    : state_(std::make_shared<state>(io, std::move(options)))
{
    state_->init();
}

inline std::error_code websocketpp::listen(const std::string& address, std::uint16_t port)
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

inline std::uint16_t websocketpp::port() const
{
    std::error_code ec;
    const auto ep = state_->server.get_local_endpoint(ec);
    return ec ? 0 : ep.port();
}

inline void websocketpp::on_validate(validate_handler h) { state_->on_validate = std::move(h); }
inline void websocketpp::on_open(open_handler h) { state_->on_open = std::move(h); }
inline void websocketpp::on_message(message_handler h) { state_->on_message = std::move(h); }
inline void websocketpp::on_close(close_handler h) { state_->on_close = std::move(h); }
inline void websocketpp::on_http(http_handler h) { state_->on_http = std::move(h); }

inline websocketpp::frame websocketpp::make_frame(std::string_view payload) const
{
    return detail::prepared_message(detail::ws::text, payload);
}

inline send_status websocketpp::send(const connection_handle& c, const frame& f) const
{
    if (c->closing || c->get_state() != ::websocketpp::session::state::open)
        return send_status::dropped;
    const std::size_t queued = c->out.bytes() + c->get_buffered_amount();
    if (queued > state_->options.max_outbound_bytes) {
        ++state_->stats.slow_consumer_closes;
        state_->close(c, close_code::policy_violation, "slow consumer");
        return send_status::dropped;
    }
    if (c->out.direct())
        state_->queue(c, f);
    else if (c->send(f))
        return send_status::dropped;
    ++state_->stats.frames_out;
    state_->stats.bytes_out += f->get_payload().size();
    return queued + f->get_payload().size() > state_->options.backpressure_bytes
        ? send_status::backpressure : send_status::ok;
}

inline send_status websocketpp::send_text(const connection_handle& c, std::string_view text) const
{
    return send(c, make_frame(text));
}

inline void websocketpp::when_written(const connection_handle& c, std::function<void()> h) const
{
    state_->when_written(c, std::move(h));
}

inline void websocketpp::close(const connection_handle& c, std::uint16_t code, const std::string& reason) const
{
    state_->close(c, code, reason);
}

inline void websocketpp::drain(std::function<void()> done) { state_->drain(std::move(done)); }
inline bool websocketpp::draining() const noexcept { return state_->draining; }
inline std::size_t websocketpp::connection_count() const noexcept { return state_->open.size(); }
inline std::size_t websocketpp::handshakes_in_progress() const noexcept { return state_->handshaking; }
inline const websocketpp_stats& websocketpp::stats() const noexcept { return state_->stats; }
inline const websocketpp_options& websocketpp::options() const noexcept { return state_->options; }
inline websocketpp::server_type& websocketpp::server() noexcept { return state_->server; }

} // namespace backplane::transport

#endif
