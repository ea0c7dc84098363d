// backplane/redis/detail/link.hpp - the thin Asio layer: it owns the socket
// and moves bytes between it and a protocol state machine (command_fsm or
// subscriber_fsm), which makes every decision about what the bytes mean.
//
// What the link adds is time and faults: connecting (TCP or Unix socket)
// with a deadline, reconnecting with capped exponential backoff and jitter,
// the liveness probe, and one write per turn of the event loop.
//
// Lifetime: the link lives in a shared_ptr; every pending operation holds a
// reference, so that its owner may go away at any time after stop(). Every
// handler runs on the link's executor; none throws (errors are codes).
#ifndef BACKPLANE_REDIS_DETAIL_LINK_HPP
#define BACKPLANE_REDIS_DETAIL_LINK_HPP

#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/detail/command_fsm.hpp>
#include <backplane/redis/detail/resp.hpp>
#include <backplane/redis/options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace backplane::redis::detail {

/// Drives `Fsm` over one socket, reconnecting for ever until stop().
/// Fsm needs: connected(config, name), has_output(), take_output(string&),
/// on_reply(const redisReply&) -> error_code, connection_lost(), state(),
/// probe() -> number, probes_answered().
template <class Fsm>
class link : public std::enable_shared_from_this<link<Fsm>> {
public:
    /// Called with the handlers the fsm returns when a connection is lost.
    using lost_fn = std::function<void(typename Fsm::failed_list&&)>;

    link(asio::any_io_executor ex, config cfg, connection_options options, Fsm machine)
        : fsm(std::move(machine)),
          executor_(ex),
          config_(std::move(cfg)),
          options_(std::move(options)),
          socket_(ex),
          connect_timer_(ex),
          retry_timer_(ex),
          probe_timer_(ex),
          read_buffer_(std::max<std::size_t>(options_.read_buffer_size, 512)),
          rng_(std::random_device{}())
    {
    }

    /// The protocol state; the owner queues into it, then calls flush_soon().
    Fsm fsm;

    /// Where failed handlers go on a lost connection (set before start()).
    lost_fn on_lost;

    /// Called each time a connection becomes ready (after its handshake), on
    /// the executor; may be empty. What it queues goes out after what the
    /// fsm queued on becoming ready (a subscriber's resubscription).
    std::function<void()> on_ready_fn;

    /// Starts the first connection attempt.
    void start()
    {
        if (state_ == connection_state::stopped)
            return;
        attempt();
    }

    /// Closes the socket and cancels the timers; the link then does nothing.
    void stop()
    {
        if (state_ == connection_state::stopped)
            return;
        state_ = connection_state::stopped;
        ++generation_;
        close_socket();
        connect_timer_.cancel();
        retry_timer_.cancel();
        probe_timer_.cancel();
    }

    /// Writes what the fsm has queued, once, at the end of this turn of the
    /// event loop: many commands queued in one turn share one write.
    void flush_soon()
    {
        if (flush_posted_ || writing_ || !socket_open())
            return;
        flush_posted_ = true;
        asio::post(executor_, [self = this->shared_from_this()] {
            self->flush_posted_ = false;
            self->flush();
        });
    }

    connection_state state() const noexcept { return state_; }
    const connection_stats& stats() const noexcept { return stats_; }
    const asio::any_io_executor& get_executor() const noexcept { return executor_; }
    const config& server() const noexcept { return config_; }
    const connection_options& options() const noexcept { return options_; }
    /// Why the last connection attempt failed or was closed.
    std::error_code last_error() const noexcept { return last_error_; }

private:
    bool socket_open() const noexcept
    {
        return state_ == connection_state::connecting || state_ == connection_state::ready;
    }

    void close_socket()
    {
        std::error_code ignored;
        socket_.close(ignored);
        writing_ = false;
        out_.clear();
    }

    void attempt()
    {
        state_ = connection_state::connecting;
        const auto gen = ++generation_;
        connect_timer_.expires_after(options_.connect_timeout);
        connect_timer_.async_wait([self = this->shared_from_this(), gen](std::error_code ec) {
            if (!ec && gen == self->generation_ && self->state_ == connection_state::connecting)
                self->drop(error::timeout);
        });
        std::vector<asio::generic::stream_protocol::endpoint> endpoints;
        if (!config_.unix_path.empty()) {
            endpoints.emplace_back(asio::local::stream_protocol::endpoint(config_.unix_path));
            return connect(std::move(endpoints), gen);
        }
        std::error_code ec;
        const auto address = asio::ip::make_address(config_.host, ec);
        if (!ec) { /* a literal address: no resolver thread, no wait */
            endpoints.emplace_back(asio::ip::tcp::endpoint(address, config_.port));
            return connect(std::move(endpoints), gen);
        }
        auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor_);
        resolver->async_resolve(
            config_.host, std::to_string(config_.port),
            [self = this->shared_from_this(), gen, resolver](std::error_code rec,
                                                             asio::ip::tcp::resolver::results_type results) {
                if (gen != self->generation_)
                    return;
                if (rec)
                    return self->drop(rec);
                std::vector<asio::generic::stream_protocol::endpoint> eps;
                for (const auto& r : results)
                    eps.emplace_back(r.endpoint());
                self->connect(std::move(eps), gen);
            });
    }

    void connect(std::vector<asio::generic::stream_protocol::endpoint> endpoints, std::uint64_t gen)
    {
        auto eps = std::make_shared<std::vector<asio::generic::stream_protocol::endpoint>>(std::move(endpoints));
        asio::async_connect(socket_, *eps,
                            [self = this->shared_from_this(), gen, eps](std::error_code ec, const auto&) {
                                if (gen != self->generation_)
                                    return;
                                if (ec)
                                    return self->drop(ec);
                                self->on_connected(gen);
                            });
    }

    void on_connected(std::uint64_t gen)
    {
        if (config_.unix_path.empty()) {
            std::error_code ignored; /* small commands must not wait for Nagle */
            socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
        }
        reader_.reset();
        fsm.connected(config_, options_.client_name);
        read(gen);
        flush();
    }

    void read(std::uint64_t gen)
    {
        socket_.async_read_some(
            asio::buffer(read_buffer_),
            [self = this->shared_from_this(), gen](std::error_code ec, std::size_t n) {
                if (gen != self->generation_)
                    return;
                if (ec)
                    return self->drop(ec);
                if (auto pec = self->consume(n, gen))
                    return self->drop(pec);
                if (gen != self->generation_) // a handler stopped the link
                    return;
                self->read(gen);
                self->flush(); // what the replies' handlers queued
            });
    }

    // Parses and dispatches the replies in the first n bytes of the buffer.
    std::error_code consume(std::size_t n, std::uint64_t gen)
    {
        if (auto ec = reader_.feed(read_buffer_.data(), n))
            return ec;
        for (;;) {
            reply_holder r;
            if (auto ec = reader_.next(r.p))
                return ec;
            if (!r.p)
                return {};
            const bool was_ready = fsm.state() == phase::ready;
            if (auto ec = fsm.on_reply(*r.p)) {
                last_error_ = ec;
                return ec;
            }
            if (gen != generation_)
                return {};
            if (!was_ready && fsm.state() == phase::ready)
                on_ready(gen);
        }
    }

    void on_ready(std::uint64_t gen)
    {
        state_ = connection_state::ready;
        connect_timer_.cancel();
        backoff_ = std::chrono::milliseconds(0);
        if (stats_.connects++ > 0)
            ++stats_.reconnects;
        arm_probe(gen, options_.ping_interval, false);
        if (on_ready_fn)
            on_ready_fn();
    }

    // The liveness probe: after ping_interval a PING; ping_timeout later, it
    // must have been answered, or the connection is dead.
    void arm_probe(std::uint64_t gen, std::chrono::milliseconds after, bool check)
    {
        if (options_.ping_interval.count() <= 0)
            return;
        probe_timer_.expires_after(after);
        probe_timer_.async_wait([self = this->shared_from_this(), gen, check](std::error_code ec) {
            if (ec || gen != self->generation_ || self->state_ != connection_state::ready)
                return;
            if (check) {
                if (self->fsm.probes_answered() < self->probe_number_) {
                    ++self->stats_.probe_timeouts;
                    return self->drop(error::timeout);
                }
                return self->arm_probe(gen, self->options_.ping_interval, false);
            }
            self->probe_number_ = self->fsm.probe();
            self->flush_soon();
            self->arm_probe(gen, self->options_.ping_timeout, true);
        });
    }

    void flush()
    {
        if (writing_ || !socket_open() || !fsm.has_output())
            return;
        fsm.take_output(out_);
        if (out_.empty())
            return;
        writing_ = true;
        asio::async_write(socket_, asio::buffer(out_),
                          [self = this->shared_from_this(), gen = generation_](std::error_code ec, std::size_t) {
                              if (gen != self->generation_)
                                  return;
                              self->writing_ = false;
                              self->out_.clear();
                              if (ec)
                                  return self->drop(ec);
                              self->flush();
                          });
    }

    // The connection failed or died: fail what awaited a reply, wait, retry.
    void drop(std::error_code why)
    {
        if (state_ == connection_state::stopped)
            return;
        last_error_ = why;
        if (state_ == connection_state::ready)
            ++stats_.disconnects;
        else
            ++stats_.failed_attempts;
        ++generation_;
        close_socket();
        connect_timer_.cancel();
        probe_timer_.cancel();
        state_ = connection_state::backing_off;
        auto failed = fsm.connection_lost();
        if (on_lost && !failed.empty())
            on_lost(std::move(failed));
        if (state_ != connection_state::backing_off) // stopped by a handler
            return;
        backoff_ = backoff_.count() == 0 ? options_.reconnect_initial
                                         : std::min(backoff_ * 2, options_.reconnect_max);
        backoff_ = std::min(backoff_, options_.reconnect_max);
        const auto half = backoff_.count() / 2;
        std::uniform_int_distribution<long long> jitter(0, std::max<long long>(half, 0));
        const auto wait = std::chrono::milliseconds(backoff_.count() - half + jitter(rng_));
        const auto gen = generation_;
        retry_timer_.expires_after(wait);
        retry_timer_.async_wait([self = this->shared_from_this(), gen](std::error_code ec) {
            if (!ec && gen == self->generation_ && self->state_ == connection_state::backing_off)
                self->attempt();
        });
    }

    asio::any_io_executor executor_;
    config config_;
    connection_options options_;
    asio::generic::stream_protocol::socket socket_;
    asio::steady_timer connect_timer_, retry_timer_, probe_timer_;
    std::vector<char> read_buffer_;
    reader reader_;
    std::string out_;              // the bytes of the write in progress
    bool writing_ = false;
    bool flush_posted_ = false;
    connection_state state_ = connection_state::connecting;
    std::uint64_t generation_ = 0; // bumped per connection: stale handlers return
    std::uint64_t probe_number_ = 0;
    std::chrono::milliseconds backoff_{0};
    std::minstd_rand rng_;
    connection_stats stats_;
    std::error_code last_error_;
};

} // namespace backplane::redis::detail

#endif
