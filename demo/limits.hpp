// demo/limits.hpp - what the reference server refuses to one connection, so
// that a hostile client cannot hurt the others or grow the instance's memory
// without bound.
//
// Each limit has a flag (command_line.hpp), a counter in /metrics and a
// refusal the README lists. The decisions here take no socket and no clock
// of their own: the server passes the time in, and the tests step them.
#ifndef BACKPLANE_DEMO_LIMITS_HPP
#define BACKPLANE_DEMO_LIMITS_HPP

#include "protocol.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

namespace demo::limits {

using clock = std::chrono::steady_clock;

/// What the limits refused, for /metrics. They only grow.
struct counters {
    std::uint64_t too_many_rooms = 0; ///< joins past the rooms per connection
    std::uint64_t rate_limited = 0;   ///< requests refused over a rate
    std::uint64_t rate_closes = 0;    ///< connections closed far past a rate
    std::uint64_t busy = 0;           ///< requests refused past the requests in flight
    std::uint64_t per_user = 0;       ///< handshakes refused past the connections per user
    std::uint64_t per_address = 0;    ///< handshakes refused past the connections per address
};

// ---- Rate ---------------------------------------------------------------------

/// `rate` tokens a second, at most `burst` saved; starts full. A rate of 0
/// is no limit.
class token_bucket {
public:
    token_bucket() = default;
    token_bucket(double rate, double burst, clock::time_point now)
        : rate_(rate), burst_(burst), tokens_(burst), last_(now)
    {
    }

    /// Whether the bucket holds `n` tokens at `now`.
    bool holds(double n, clock::time_point now)
    {
        if (rate_ <= 0)
            return true;
        if (now > last_) {
            tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
            last_ = now;
        }
        return tokens_ >= n;
    }

    /// Takes `n` tokens if the bucket holds that many at `now`; takes none
    /// otherwise (a refusal costs no tokens, so it does not push the next
    /// allowed request further away).
    bool take(double n, clock::time_point now)
    {
        if (!holds(n, now))
            return false;
        if (rate_ > 0)
            tokens_ -= n;
        return true;
    }

private:
    double rate_ = 0;
    double burst_ = 0;
    double tokens_ = 0;
    clock::time_point last_{};
};

/// The rates of one connection; a rate of 0 is no limit.
struct rate_settings {
    double messages = 20;              ///< requests a second, of any kind
    double message_burst = 40;
    double broadcasts = 2;             ///< broadcasts a second: each one is a frame to every client
    double broadcast_burst = 10;
    double bytes = 64 * 1024;          ///< request bytes a second
    double byte_burst = 256 * 1024;    ///< at least the largest message, or that one never passes

    /// How far refusals may outrun the allowed rate before the connection
    /// is closed: ten bursts (of the larger burst in force).
    double strikes() const
    {
        return 10 * std::max({messages > 0 ? message_burst : 0, broadcasts > 0 ? broadcast_burst : 0, 1.0});
    }
};

/// The rates all connections of one user share: twice a connection's, so
/// that a second tab changes nothing for a person, while sixteen
/// connections (--max-connections-per-user) do not multiply a client's
/// rate by sixteen. Bytes are bounded per connection only.
inline rate_settings user_rate_defaults()
{
    rate_settings r;
    r.messages = 40;
    r.message_burst = 80;
    r.broadcasts = 4;
    r.broadcast_burst = 20;
    r.bytes = 0;
    return r;
}

/// What becomes of a request.
enum class verdict {
    pass,   ///< serve it
    refuse, ///< answer rate_limited, publish nothing
    close,  ///< refused far past the limit: close the connection (1008)
};

/// The rate limits of one connection. A request is admitted in two steps,
/// since whether it is a broadcast is known only once it is read: every
/// frame, read or not, passes admit() first, and a broadcast then
/// admit_broadcast().
///
/// Each refusal spends a strike; strikes come back at the request rate (or
/// the broadcast rate, or one a second), ten bursts of them at most. A
/// client that waits when told is never closed; one that keeps sending at
/// more than twice the rate runs out of strikes, and is closed. (Counting
/// refusals "in a row" would not do: the one request let through each time
/// a token comes back would start the count again.)
class rate_limiter {
public:
    rate_limiter(const rate_settings& s, clock::time_point now)
        : messages_(s.messages, s.message_burst, now),
          broadcasts_(s.broadcasts, s.broadcast_burst, now),
          bytes_(s.bytes, s.byte_burst, now),
          strikes_(s.messages > 0 ? s.messages : s.broadcasts > 0 ? s.broadcasts : 1, s.strikes(), now)
    {
    }

    /// A frame of `size` bytes.
    verdict admit(std::size_t size, clock::time_point now)
    {
        // Both asked first, so that a refusal takes from neither.
        if (!messages_.holds(1, now) || !bytes_.holds(double(size), now))
            return refused(now);
        messages_.take(1, now);
        bytes_.take(double(size), now);
        return verdict::pass;
    }

    /// A broadcast, after admit() let it pass.
    verdict admit_broadcast(clock::time_point now)
    {
        return broadcasts_.take(1, now) ? verdict::pass : refused(now);
    }

private:
    verdict refused(clock::time_point now) { return strikes_.take(1, now) ? verdict::refuse : verdict::close; }

    token_bucket messages_;
    token_bucket broadcasts_;
    token_bucket bytes_;
    token_bucket strikes_;
};

/// The answer to a request over a rate.
inline protocol::error rate_limited()
{
    return {"rate_limited", "too many requests: slow down (this one was not served)"};
}

// ---- Requests in flight -----------------------------------------------------------

/// One request that waits on Redis (where, online, a join that catches up),
/// counted for as long as it lives: the server keeps it in the request's
/// callback, so that it is let go however the request ends (answered, timed
/// out, or dropped unanswered by the hub). It holds the count weakly: a
/// connection that closes first takes its count with it.
class request_slot {
public:
    /// A slot of `count`, or null if `max` are taken already (0: no limit).
    static std::shared_ptr<request_slot> take(const std::shared_ptr<std::size_t>& count, std::size_t max)
    {
        if (max && *count >= max)
            return nullptr;
        ++*count;
        return std::shared_ptr<request_slot>(new request_slot(count));
    }

    request_slot(const request_slot&) = delete;
    request_slot& operator=(const request_slot&) = delete;

    ~request_slot()
    {
        if (auto count = count_.lock())
            --*count;
    }

private:
    explicit request_slot(const std::shared_ptr<std::size_t>& count) : count_(count) {}

    std::weak_ptr<std::size_t> count_;
};

/// The answer to a request past the requests in flight.
inline protocol::error busy(std::size_t max)
{
    return {"busy", "at most " + std::to_string(max) + " requests that wait on Redis at once: wait for an answer"};
}

// ---- Connections per user and per address ----------------------------------------

/// Why a connection may not open.
enum class too_many { none, per_user, per_address };

/// The open connections of each source address, and the limits on
/// connections per user and per address (0: no limit). An address is
/// forgotten with its last connection, so that the table holds what is
/// open, not every address ever seen.
class connection_counts {
public:
    connection_counts(std::size_t per_user, std::size_t per_address) : per_user_(per_user), per_address_(per_address)
    {
    }

    /// Whether one more connection may open for a user that has
    /// `user_connections` open, from `address`.
    too_many check(std::size_t user_connections, const std::string& address) const
    {
        if (per_user_ && user_connections >= per_user_)
            return too_many::per_user;
        if (per_address_ && !address.empty()) {
            const auto it = open_.find(address);
            if (it != open_.end() && it->second >= per_address_)
                return too_many::per_address;
        }
        return too_many::none;
    }

    void opened(const std::string& address) { ++open_[address]; }

    void closed(const std::string& address)
    {
        const auto it = open_.find(address);
        if (it != open_.end() && --it->second == 0)
            open_.erase(it);
    }

    /// The HTTP body of a refused handshake.
    std::string why(too_many t) const
    {
        return t == too_many::per_user
                   ? "too many connections for this user (at most " + std::to_string(per_user_) + ")\n"
                   : "too many connections from this address (at most " + std::to_string(per_address_) + ")\n";
    }

private:
    std::size_t per_user_;
    std::size_t per_address_;
    std::unordered_map<std::string, std::size_t> open_;
};

// ---- One connection -----------------------------------------------------------
/// What the connections of one user share: their rates together (a user
/// may open several connections, each within its own rates), for as long as
/// one of them is open.
struct user_state {
    user_state(const rate_settings& rates, clock::time_point now) : rate(rates, now) {}

    rate_limiter rate;
    std::size_t connections = 0;
};

/// What the limits keep of one connection.
struct connection_state {
    connection_state(const rate_settings& rates, clock::time_point now, std::string peer)
        : rate(rates, now), address(std::move(peer))
    {
    }

    rate_limiter rate;
    std::shared_ptr<std::size_t> in_flight = std::make_shared<std::size_t>(0);
    std::string address; ///< the peer's, counted in connection_counts
    user_state* user = nullptr; ///< the rates its user's connections share
};


// ---- Rooms ----------------------------------------------------------------------

/// The answer to a join past the hub's rooms per connection.
inline protocol::error too_many_rooms(std::size_t max)
{
    return {"too_many_rooms", "a connection may be in at most " + std::to_string(max) + " rooms"};
}

} // namespace demo::limits

#endif
