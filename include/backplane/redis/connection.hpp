// backplane/redis/connection.hpp - a Redis command connection.
//
//   asio::io_context io;
//   redis::connection conn(io.get_executor(), redis::parse_url("redis://127.0.0.1:6379"));
//   conn.execute({"SET", "k", "v"}, [](std::error_code ec, const redis::reply& r) { ... });
//
// Asio owns the socket (TCP or Unix socket); hiredis formats the commands and
// parses the replies. Commands may be issued at any time, even before the
// connection is up: they wait in a bounded queue (connection_options::
// max_pending) and everything queued in one turn of the event loop goes out
// in one write. Replies reach their handlers in the order of the commands.
// A lost connection is opened again with backoff; the commands that were
// awaiting a reply then fail with error::connection_lost.
//
// Thread safety: none. Use an object and its handlers on its executor (a
// strand, or a single-threaded io_context).
#ifndef BACKPLANE_REDIS_CONNECTION_HPP
#define BACKPLANE_REDIS_CONNECTION_HPP

#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/detail/command_fsm.hpp>
#include <backplane/redis/detail/link.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/reply.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

namespace backplane::redis {

/// Counters of a command connection. They only grow.
struct command_stats {
    connection_stats connection; ///< connects, reconnects, probe timeouts...
    std::uint64_t succeeded = 0; ///< commands answered with a normal reply
    std::uint64_t failed = 0;    ///< error reply, queue full, connection lost, stopped
};

namespace detail {

// Fails a batch of commands with one error, in a later turn: a handler is
// never called from inside the call that queued its command.
inline void fail_later(const asio::any_io_executor& ex, command_fsm::failed_list failed, std::error_code ec)
{
    if (failed.empty())
        return;
    asio::post(ex, [failed = std::move(failed), ec]() mutable {
        static const reply none;
        for (auto& e : failed) {
            if (e.on_done)
                e.on_done(ec);
            else if (e.on_reply)
                e.on_reply(ec, none);
        }
    });
}

} // namespace detail

/// A pipelined command connection. Moving it keeps the connection; the
/// destructor stops it (pending handlers are then called with
/// error::operation_aborted).
class connection {
public:
    /// Starts connecting at once.
    connection(asio::any_io_executor ex, config cfg, connection_options options = {})
    {
        detail::command_fsm fsm(options.max_pending, options.max_pending_bytes);
        link_ = std::make_shared<link_type>(ex, std::move(cfg), std::move(options), std::move(fsm));
        link_->on_lost = [ex](detail::command_fsm::failed_list&& failed) {
            detail::fail_later(ex, std::move(failed), error::connection_lost);
        };
        link_->start();
    }

    connection(connection&&) noexcept = default;
    connection& operator=(connection&& other) noexcept
    {
        if (this != &other) {
            stop();
            link_ = std::move(other.link_);
        }
        return *this;
    }
    ~connection() { stop(); }

    /// Sends a command; `handler(ec, reply)` is called once, later, on the
    /// executor. An error reply gives error::server_error (the text is in
    /// the reply); a full queue error::queue_full at once (in a later turn).
    /// @param args the command and its arguments; copied before the return.
    template <class Range>
    void execute(const Range& args, reply_handler handler)
    {
        push(args, std::move(handler), {});
    }

    void execute(std::initializer_list<std::string_view> args, reply_handler handler)
    {
        push(args, std::move(handler), {});
    }

    /// PUBLISH, with a handler that only learns success or failure; `done`
    /// may be empty (the outcome is then only counted).
    void publish(std::string_view channel, std::string_view data, done_handler done = {})
    {
        push(std::initializer_list<std::string_view>{"PUBLISH", channel, data}, {}, std::move(done));
    }

    /// Closes the connection; every pending handler gets error::operation_aborted.
    void stop()
    {
        if (!link_)
            return;
        link_->stop();
        detail::fail_later(link_->get_executor(), link_->fsm.abort(), error::operation_aborted);
    }

    connection_state state() const noexcept { return link_->state(); }
    /// Commands queued or awaiting their reply.
    std::size_t pending() const noexcept { return link_->fsm.pending(); }
    command_stats stats() const noexcept
    {
        return {link_->stats(), link_->fsm.succeeded(), link_->fsm.failed()};
    }
    /// Why the last attempt failed or the connection closed; the server's
    /// text for a failed handshake ("WRONGPASS ...") is in handshake_error().
    std::error_code last_error() const noexcept { return link_->last_error(); }
    const std::string& handshake_error() const noexcept { return link_->fsm.last_error(); }
    const asio::any_io_executor& get_executor() const noexcept { return link_->get_executor(); }

private:
    using link_type = detail::link<detail::command_fsm>;

    template <class Range>
    void push(const Range& args, reply_handler on_reply, done_handler on_done)
    {
        if (link_->state() == connection_state::stopped) {
            fail_one(std::move(on_reply), std::move(on_done), error::operation_aborted);
            return;
        }
        if (auto ec = link_->fsm.push(args, on_reply, on_done))
            return fail_one(std::move(on_reply), std::move(on_done), ec);
        link_->flush_soon();
    }

    void fail_one(reply_handler on_reply, done_handler on_done, std::error_code ec)
    {
        detail::command_fsm::failed_list one;
        one.push_back({std::move(on_reply), std::move(on_done), false});
        detail::fail_later(link_->get_executor(), std::move(one), ec);
    }

    std::shared_ptr<link_type> link_;
};

} // namespace backplane::redis

#endif
