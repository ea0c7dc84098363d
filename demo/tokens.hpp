// demo/tokens.hpp - the reference server's tokens (--auth jwt): each open
// connection's identity, what it allows, and the end of it.
//
// A token is checked at the handshake (server.hpp) and kept with its
// connection: its `rooms` answer the hub's authorize hook, and its `exp` (plus
// the leeway) closes the connection unless the client has presented a newer
// token of the same user since. One timer for all connections, firing once a
// second while any token is held: expiries are whole seconds anyway.
#ifndef BACKPLANE_DEMO_TOKENS_HPP
#define BACKPLANE_DEMO_TOKENS_HPP

#include <backplane/auth/jwt.hpp>
#include <backplane/hub.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <queue>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace demo {

/// The tokens of the open connections of one instance.
/// @tparam Handle the transport's connection handle, given back to `expire`.
template <class Handle>
class token_sessions {
public:
    /// `expire` is called for a connection whose token has run out.
    token_sessions(asio::io_context& io, backplane::auth::jwt_options options, std::function<void(const Handle&)> expire)
        : verifier_(std::move(options)), expire_(std::move(expire)), timer_(io)
    {
    }

    const backplane::auth::jwt_verifier& verifier() const noexcept { return verifier_; }

    /// Keeps `identity` for connection `id` (`c`), in place of the one it had.
    void grant(const Handle& c, backplane::connection_id id, backplane::auth::identity identity)
    {
        expiries_.push({identity.expires + verifier_.options().leeway, id});
        held_[id] = {std::move(identity), c};
        if (expiries_.size() == 1)
            sweep();
    }

    /// Forgets a closed connection.
    void forget(backplane::connection_id id) { held_.erase(id); }

    /// Whether connection `id` may join `room` and send to it; true for a
    /// connection without a token.
    bool may_enter(backplane::connection_id id, std::string_view room) const
    {
        const auto it = held_.find(id);
        return it == held_.end() || it->second.identity.may_enter(room);
    }

private:
    // Expires the connections whose latest token has run out; again in a
    // second while any token is held.
    void sweep()
    {
        const auto now = std::chrono::system_clock::now();
        while (!expiries_.empty() && expiries_.top().first <= now) {
            const auto id = expiries_.top().second;
            expiries_.pop();
            const auto it = held_.find(id);
            if (it == held_.end() || it->second.identity.expires + verifier_.options().leeway > now)
                continue; // closed, or refreshed since
            const Handle c = it->second.connection;
            held_.erase(it);
            expire_(c);
        }
        if (expiries_.empty())
            return;
        timer_.expires_after(std::chrono::seconds(1));
        timer_.async_wait([this](std::error_code ec) {
            if (!ec)
                sweep();
        });
    }

    struct held {
        backplane::auth::identity identity;
        Handle connection;
    };
    // Each grant's end, soonest on top; stale entries (closed, refreshed) are skipped.
    using expiry = std::pair<std::chrono::system_clock::time_point, backplane::connection_id>;

    backplane::auth::jwt_verifier verifier_;
    std::function<void(const Handle&)> expire_;
    std::unordered_map<backplane::connection_id, held> held_;
    std::priority_queue<expiry, std::vector<expiry>, std::greater<expiry>> expiries_;
    asio::steady_timer timer_;
};

} // namespace demo

#endif
