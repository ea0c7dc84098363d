// backplane/broker/redis_streams.hpp - hubs on one Redis, with history.
//
//   basic_hub<transport::memory, broker::redis_streams> hub(
//       {}, broker::redis_streams(io.get_executor(), "redis://127.0.0.1:6379"));
//
// Every channel has a stream (`stream:{channel}`, trimmed to about
// max_length entries). A publish runs one Lua script that XADDs the message
// and PUBLISHes "id data" on the channel, atomically: the live order is the
// stream's id order on every subscriber, and the stream id is the message id
// the hub hands to its clients. Each broker holds two connections, whatever
// the number of clients: a command connection (publishes, reads) and a
// subscriber connection that holds every channel its hub needs.
//
// Broker requirements, as the hub uses them (both sides of the contract):
// - the hub calls `set_message_handler(h)` once, before anything else;
// - the hub calls `subscribe(channel)` once per channel until it calls
//   `unsubscribe(channel)`, and never unsubscribes what it did not subscribe;
// - the broker calls `h(channel, id, data)` once per message published on a
//   subscribed channel, in id order, on the hub's executor, never from
//   inside `publish`, `subscribe` or `unsubscribe`; `id` is the stream id;
// - `publish(channel, data, done)` copies what it needs before it returns and
//   calls `done(ec)` once, later, on the hub's executor, if `done` is set;
// - `history(channel, after, count, done)` reads at most `count` entries
//   after the id `after` and calls `done(ec, page)` once, later; read after
//   `subscribe(channel)` it misses nothing, because it is only sent once the
//   server has confirmed the subscription: what it does not return arrives
//   live. `page.cursor_found` tells whether `after` is still in the stream
//   (false once trimmed, or lost with a server restarted without persistence).
// All calls are made on the hub's executor.
//
// What this broker adds to Pub/Sub:
// - resume: it remembers, per channel, the last id it delivered. When its
//   subscriber connection is back (after a network fault, CLIENT KILL, a
//   server restart), it resubscribes, waits for the confirmation, then
//   reads each stream after that id in pages (never an unbounded XRANGE)
//   while it holds back the live messages of that channel; the held ones not
//   already read go last. The hub sees every message once, in order. If the
//   id was trimmed meanwhile, what is left is delivered and the gap counted
//   (stats().gaps). A channel that had delivered nothing yet when the
//   connection dropped has nothing to resume from.
// - offline inbox: a message on a user's channel (user_channel) that no
//   subscriber anywhere received is also appended to `inbox:{user}`
//   (redis/inbox.hpp); take_inbox() reads and deletes it in one script, so
//   two connections of the user never both get an entry.
// - a publish that fails with error::connection_lost may or may not have
//   been stored; it is not retried (no duplicates).
//
// Thread safety: none; use it on the executor given to the constructor.
#ifndef BACKPLANE_BROKER_REDIS_STREAMS_HPP
#define BACKPLANE_BROKER_REDIS_STREAMS_HPP

#include <backplane/detail/traits.hpp>
#include <backplane/error.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/inbox.hpp>
#include <backplane/redis/options.hpp>
#include <backplane/redis/reply.hpp>
#include <backplane/redis/subscriber.hpp>
#include <backplane/stream_id.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backplane::broker {

/// Settings of a redis_streams broker. The defaults suit the hub's defaults.
struct redis_streams_options {
    /// Settings of both connections; their client_name is replaced below.
    redis::connection_options connection;
    /// Prefix of the connections' names in CLIENT LIST: "{client_name}:pub"
    /// and "{client_name}:sub"; empty: no names.
    std::string client_name;
    /// A channel's stream key; "{channel}" is replaced by the channel.
    std::string stream_key = "stream:{channel}";
    /// Entries kept per stream (XADD MAXLEN).
    std::size_t max_length = 1000;
    /// Trim with "MAXLEN ~" (whole nodes, cheap; a stream may keep up to a
    /// node more); false: exact trimming.
    bool approximate_trim = true;
    /// The hub's user channel pattern: messages on it that nobody receives
    /// go to the user's inbox. Empty: no inbox.
    std::string user_channel = "notif:user:{user}";
    /// A user's inbox key; "{user}" is replaced by the user.
    std::string inbox_key = "inbox:{user}";
    /// Entries kept per inbox (trimmed as the streams are).
    std::size_t inbox_length = 1000;
    /// Entries read per page when a channel resumes after a reconnect.
    std::size_t resume_page = 500;
    /// Wait before a failed resume read is sent again.
    std::chrono::milliseconds retry_delay{50};
};

/// Counters of a redis_streams broker, for metrics. They only grow.
struct redis_streams_stats {
    std::uint64_t published = 0;       ///< publishes handed to the broker
    std::uint64_t publish_errors = 0;  ///< of those, failed (queue full, lost, error reply)
    std::uint64_t inboxed = 0;         ///< of those, stored in an offline inbox
    std::uint64_t received = 0;        ///< live messages handed to the hub
    std::uint64_t duplicates = 0;      ///< live messages dropped, already delivered
    std::uint64_t resumes = 0;         ///< channels read again after a reconnect
    std::uint64_t resumed = 0;         ///< entries handed to the hub by those reads
    std::uint64_t gaps = 0;            ///< resumes whose last id was trimmed or lost
    std::uint64_t history_reads = 0;   ///< history pages read for the hub
    std::uint64_t inbox_taken = 0;     ///< inbox entries handed out by take_inbox
    std::uint64_t reconnects = 0;      ///< of both connections, after their first connect
    std::uint64_t resubscribed = 0;    ///< channels subscribed again after reconnects
    std::uint64_t probe_timeouts = 0;  ///< connections closed by the liveness probe
};

/// Called once by take_inbox (see redis/inbox.hpp).
using inbox_handler = redis::inbox::handler;

namespace detail {

// "prefix{placeholder}suffix", split once.
class key_pattern {
public:
    key_pattern() = default;
    key_pattern(const std::string& pattern, std::string_view placeholder)
    {
        if (pattern.empty())
            return;
        const auto at = pattern.find(placeholder);
        if (at == std::string::npos)
            throw std::invalid_argument("backplane: key pattern '" + pattern + "' lacks "
                                        + std::string(placeholder));
        prefix_ = pattern.substr(0, at);
        suffix_ = pattern.substr(at + placeholder.size());
        set_ = true;
    }

    bool empty() const noexcept { return !set_; }

    void name(std::string_view value, std::string& out) const
    {
        out.assign(prefix_).append(value).append(suffix_);
    }

    // The value of a name made by this pattern; false if `name` is not one.
    bool match(std::string_view name, std::string_view& value) const noexcept
    {
        if (!set_ || name.size() <= prefix_.size() + suffix_.size()
            || name.substr(0, prefix_.size()) != prefix_
            || name.substr(name.size() - suffix_.size()) != suffix_)
            return false;
        value = name.substr(prefix_.size(), name.size() - prefix_.size() - suffix_.size());
        return true;
    }

private:
    std::string prefix_, suffix_;
    bool set_ = false;
};

// KEYS[1] the stream, KEYS[2] (optional) the inbox; ARGV: channel, max
// length, "~" or "=", data, inbox max length. One script, so that the live
// order on every subscriber is the stream's id order, and so that "nobody
// received it" and "it went to the inbox" are one fact.
inline constexpr std::string_view publish_script = R"lua(
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[2], '*', 'd', ARGV[4])
local n = redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[4])
if n == 0 and #KEYS > 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], ARGV[5], '*', 'i', id, 'd', ARGV[4])
  return {id, 1}
end
return {id, 0}
)lua";

// The entries of an XRANGE reply.
inline std::vector<backplane::detail::history_entry> entries_of(const redis::reply& r)
{
    std::vector<backplane::detail::history_entry> out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) {
        if (e.elements.size() != 2)
            continue;
        const auto* data = redis::inbox::field_of(e.elements[1], "d");
        out.push_back({e.elements[0].text, data ? *data : std::string()});
    }
    return out;
}

// The state behind a broker, shared (weakly) with the handlers of its
// connections, so that a broker that is moved or destroyed is never reached
// through a dangling pointer.
struct streams_state : std::enable_shared_from_this<streams_state> {
    struct channel_state {
        std::string key;           // the stream
        std::uint64_t generation;  // this subscription; a new subscribe makes a new one
        std::uint64_t epoch = 0;   // confirmed once the barrier reaches it
        stream_id last;            // the last id handed to the hub
        bool has_last = false;
        bool resuming = false;     // live held back until the stream is read up to date
        std::uint64_t resume_token = 0;
        std::vector<std::pair<stream_id, std::string>> held; // live, while resuming
        std::vector<std::function<void()>> waiting;         // reads sent once confirmed
    };

    streams_state(asio::any_io_executor ex, const redis::config& server, redis_streams_options o)
        : executor(ex),
          options(std::move(o)),
          stream_key(options.stream_key, "{channel}"),
          user_channel(options.user_channel, "{user}"),
          inbox_key(options.inbox_key, "{user}"),
          publisher(ex, server, named(":pub")),
          subscriber(ex, server, named(":sub")),
          max_length(std::to_string(options.max_length)),
          inbox_length(std::to_string(options.inbox_length)),
          trim(options.approximate_trim ? "~" : "=")
    {
        if (stream_key.empty() || (!user_channel.empty() && inbox_key.empty()))
            throw std::invalid_argument("backplane: redis_streams needs stream_key and inbox_key");
        if (options.max_length == 0 || options.resume_page == 0)
            throw std::invalid_argument("backplane: redis_streams needs max_length and resume_page > 0");
    }

    redis::connection_options named(const char* suffix) const
    {
        auto c = options.connection;
        c.client_name = options.client_name.empty() ? std::string() : options.client_name + suffix;
        return c;
    }

    // Wires the connections; after construction, once shared_from_this works.
    void start()
    {
        std::weak_ptr<streams_state> w = shared_from_this();
        subscriber.set_message_handler([w](std::string_view channel, std::string_view payload) {
            if (auto s = w.lock())
                s->on_live(channel, payload);
        });
        subscriber.set_ready_handler([w] {
            if (auto s = w.lock())
                s->on_subscriber_ready();
        });
        load_script(0);
        load_script(1);
    }

    // ---- scripts ---------------------------------------------------------

    void load_script(int which)
    {
        std::weak_ptr<streams_state> w = shared_from_this();
        publisher.execute({"SCRIPT", "LOAD", which == 0 ? publish_script : redis::inbox::take_script},
                          [w, which](std::error_code ec, const redis::reply& r) {
                              auto s = w.lock();
                              if (s && !ec && r.type == redis::reply::kind::string)
                                  s->sha[which] = r.text;
                          });
    }

    // EVALSHA once the script is known, EVAL before; an EVALSHA answered
    // NOSCRIPT (a server restarted without persistence) is sent again as
    // EVAL, which loads it again.
    void run_script(int which, std::vector<std::string> args, redis::reply_handler on_reply)
    {
        const bool by_sha = !sha[which].empty();
        std::vector<std::string_view> cmd;
        cmd.reserve(args.size() + 2);
        cmd.push_back(by_sha ? std::string_view("EVALSHA") : std::string_view("EVAL"));
        cmd.push_back(by_sha ? std::string_view(sha[which]) : (which == 0 ? publish_script : redis::inbox::take_script));
        for (const auto& a : args)
            cmd.push_back(a);
        if (!by_sha)
            return publisher.execute(cmd, std::move(on_reply));
        std::weak_ptr<streams_state> w = shared_from_this();
        publisher.execute(cmd, [w, which, args = std::move(args), on_reply = std::move(on_reply)](
                                   std::error_code ec, const redis::reply& r) mutable {
            auto s = w.lock();
            if (!s)
                return;
            if (ec == error::server_error && r.text.rfind("NOSCRIPT", 0) == 0) {
                s->sha[which].clear();
                s->load_script(which);
                return s->run_script(which, std::move(args), std::move(on_reply));
            }
            on_reply(ec, r);
        });
    }

    // ---- publish -----------------------------------------------------------

    void publish(std::string_view channel, std::string_view data, backplane::detail::publish_handler done)
    {
        ++stats.published;
        std::vector<std::string> args;
        args.reserve(8);
        std::string key;
        std::string_view user;
        const bool inbox = user_channel.match(channel, user);
        args.emplace_back(inbox ? "2" : "1");
        stream_key.name(channel, key);
        args.push_back(std::move(key));
        if (inbox) {
            inbox_key.name(user, key);
            args.push_back(std::move(key));
        }
        args.emplace_back(channel);
        args.push_back(max_length);
        args.emplace_back(trim);
        args.emplace_back(data);
        args.push_back(inbox_length);
        std::weak_ptr<streams_state> w = shared_from_this();
        run_script(0, std::move(args), [w, done = std::move(done)](std::error_code ec, const redis::reply& r) {
            auto s = w.lock();
            if (!s)
                return;
            if (ec)
                ++s->stats.publish_errors;
            else if (r.elements.size() == 2 && r.elements[1].integer == 1)
                ++s->stats.inboxed;
            if (done)
                done(ec);
        });
    }

    // ---- subscriptions and the confirmation barrier --------------------------

    void subscribe(std::string_view channel)
    {
        std::string name(channel);
        auto [it, inserted] = channels.try_emplace(name);
        if (!inserted)
            return;
        auto& ch = it->second;
        stream_key.name(channel, ch.key);
        ch.generation = ++generations;
        ch.epoch = ++epoch;
        unconfirmed.push_back(std::move(name));
        subscriber.subscribe(channel);
        request_barrier();
    }

    void unsubscribe(std::string_view channel)
    {
        lookup.assign(channel);
        auto it = channels.find(lookup);
        if (it == channels.end())
            return;
        auto waiting = std::move(it->second.waiting);
        channels.erase(it);
        subscriber.unsubscribe(channel);
        for (auto& read : waiting) /* their done is still owed; the read is harmless */
            read();
    }

    channel_state* find(std::string_view channel)
    {
        lookup.assign(channel); /* a reused buffer: no allocation per message */
        auto it = channels.find(lookup);
        return it == channels.end() ? nullptr : &it->second;
    }

    bool confirmed(const channel_state& ch) const noexcept { return ch.epoch <= confirmed_epoch; }

    // A PING on the subscriber connection after the SUBSCRIBEs asked so far:
    // its answer confirms every subscription up to `epoch`.
    void request_barrier()
    {
        if (barrier_pending)
            return;
        barrier_pending = true;
        const auto token = ++barrier_token;
        const auto target = epoch;
        std::weak_ptr<streams_state> w = shared_from_this();
        subscriber.ping([w, token, target](std::error_code ec) {
            auto s = w.lock();
            if (!s || token != s->barrier_token)
                return;
            s->barrier_pending = false;
            if (ec)
                return; // not connected: the ready handler asks again
            s->confirm(target);
        });
    }

    void on_subscriber_ready()
    {
        confirmed_epoch = 0;
        ++epoch;
        unconfirmed.clear();
        for (auto& [name, ch] : channels) {
            ch.epoch = epoch;
            unconfirmed.push_back(name);
            if (ch.has_last) {
                ch.resuming = true;
                ++ch.resume_token; // a read of the previous connection's resume is void
            }
        }
        barrier_pending = false; // the previous connection's ping failed or will
        request_barrier();
    }

    void confirm(std::uint64_t target)
    {
        confirmed_epoch = target;
        std::vector<std::string> still;
        auto names = std::move(unconfirmed);
        unconfirmed.clear();
        for (auto& name : names) {
            auto it = channels.find(name);
            if (it == channels.end())
                continue;
            auto& ch = it->second;
            if (!confirmed(ch)) {
                still.push_back(std::move(name));
                continue;
            }
            if (ch.resuming)
                resume(name, ch, true);
            auto waiting = std::move(ch.waiting);
            ch.waiting.clear();
            for (auto& read : waiting)
                read();
        }
        unconfirmed.insert(unconfirmed.end(), std::make_move_iterator(still.begin()),
                           std::make_move_iterator(still.end()));
        if (!unconfirmed.empty())
            request_barrier();
    }

    // Runs `read` once `channel` is confirmed (now if it is, or if it is not
    // subscribed at all).
    void when_confirmed(std::string_view channel, std::function<void()> read)
    {
        auto* ch = find(channel);
        if (!ch || confirmed(*ch))
            return read();
        ch->waiting.push_back(std::move(read));
    }

    // ---- live delivery and resume ------------------------------------------

    // The fast path: one lookup in a reused buffer, one id parse.
    void on_live(std::string_view channel, std::string_view payload)
    {
        const auto space = payload.find(' ');
        stream_id id;
        if (space == std::string_view::npos || !parse_stream_id(payload.substr(0, space), id))
            return;
        const auto data = payload.substr(space + 1);
        auto* ch = find(channel);
        if (!ch)
            return; // unsubscribed meanwhile
        if (ch->resuming) {
            ch->held.emplace_back(id, std::string(data));
            return;
        }
        if (ch->has_last && id <= ch->last) {
            ++stats.duplicates;
            return;
        }
        ch->last = id;
        ch->has_last = true;
        ++stats.received;
        if (handler)
            handler(channel, payload.substr(0, space), data);
    }

    // Reads `ch`'s stream after its last id, one page at a time.
    void resume(const std::string& name, channel_state& ch, bool first)
    {
        if (first)
            ++stats.resumes;
        const std::string after = ch.last.to_string();
        std::weak_ptr<streams_state> w = shared_from_this();
        const auto gen = ch.generation, token = ch.resume_token;
        if (first) /* is the id we resume from still there? Only counted. */
            publisher.execute({"XRANGE", ch.key, after, after, "COUNT", "1"},
                              [w](std::error_code ec, const redis::reply& r) {
                                  auto s = w.lock();
                                  if (s && !ec && r.elements.empty())
                                      ++s->stats.gaps;
                              });
        publisher.execute({"XRANGE", ch.key, "(" + after, "+", "COUNT", std::to_string(options.resume_page)},
                          [w, name, gen, token](std::error_code ec, const redis::reply& r) {
                              if (auto s = w.lock())
                                  s->on_resume_page(name, gen, token, ec, r);
                          });
    }

    channel_state* current(const std::string& name, std::uint64_t gen, std::uint64_t token)
    {
        auto it = channels.find(name);
        if (it == channels.end() || it->second.generation != gen || it->second.resume_token != token
            || !it->second.resuming)
            return nullptr;
        return &it->second;
    }

    void on_resume_page(const std::string& name, std::uint64_t gen, std::uint64_t token, std::error_code ec,
                        const redis::reply& r)
    {
        auto* ch = current(name, gen, token);
        if (!ch)
            return;
        if (ec) { /* the command connection is down too, or busy: try again */
            auto timer = std::make_shared<asio::steady_timer>(executor, options.retry_delay);
            std::weak_ptr<streams_state> w = shared_from_this();
            timer->async_wait([w, timer, name, gen, token](std::error_code tec) {
                auto s = w.lock();
                if (tec || !s)
                    return;
                if (auto* c = s->current(name, gen, token))
                    s->resume(name, *c, false);
            });
            return;
        }
        const auto entries = entries_of(r);
        for (const auto& e : entries) {
            stream_id id;
            if (!parse_stream_id(e.id, id) || id <= ch->last)
                continue;
            ch->last = id;
            ++stats.resumed;
            if (handler)
                handler(name, e.id, e.data);
            if (!(ch = current(name, gen, token))) // the hub unsubscribed meanwhile
                return;
        }
        if (r.elements.size() >= options.resume_page)
            return resume(name, *ch, false);
        // Up to date: what was held back goes now, past what was read.
        auto held = std::move(ch->held);
        ch->held.clear();
        ch->resuming = false;
        std::string id_text;
        for (auto& [id, data] : held) {
            if (!(ch = find(name)) || ch->generation != gen || ch->resuming)
                return;
            if (id <= ch->last) {
                ++stats.duplicates;
                continue;
            }
            ch->last = id;
            ++stats.received;
            id_text = id.to_string();
            if (handler)
                handler(name, id_text, data);
        }
    }

    // ---- reads for the hub ---------------------------------------------------

    void history(std::string_view channel, std::string_view after, std::size_t count,
                 backplane::detail::history_handler done)
    {
        stream_id from;
        std::weak_ptr<streams_state> w = shared_from_this();
        if (!parse_stream_id(after, from))
            return asio::post(executor, [w, done = std::move(done)] {
                if (w.lock())
                    done(error::invalid_stream_id, {});
            });
        std::string key;
        stream_key.name(channel, key);
        when_confirmed(channel, [w, key = std::move(key), after = std::string(after), count,
                                 done = std::move(done)]() mutable {
            auto s = w.lock();
            if (!s)
                return;
            ++s->stats.history_reads;
            auto page = std::make_shared<backplane::detail::history_page>();
            auto failed = std::make_shared<std::error_code>();
            // The range first, then whether `after` is still there: found
            // then, it was there during the range too (trimming only removes).
            s->publisher.execute({"XRANGE", key, "(" + after, "+", "COUNT", std::to_string(count)},
                                 [page, failed](std::error_code ec, const redis::reply& r) {
                                     if (ec)
                                         *failed = ec;
                                     else
                                         page->entries = entries_of(r);
                                 });
            s->publisher.execute({"XRANGE", key, after, after, "COUNT", "1"},
                                 [w, page, failed, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                                     if (!w.lock())
                                         return;
                                     if (!ec && !*failed)
                                         page->cursor_found = !r.elements.empty();
                                     done(*failed ? *failed : ec, std::move(*page));
                                 });
        });
    }

    void take_inbox(std::string_view user, std::size_t count, inbox_handler done)
    {
        std::weak_ptr<streams_state> w = shared_from_this();
        if (inbox_key.empty() || user_channel.empty())
            return asio::post(executor, [w, done = std::move(done)] {
                if (w.lock())
                    done(std::make_error_code(std::errc::operation_not_supported), {});
            });
        std::string key, channel;
        inbox_key.name(user, key);
        user_channel.name(user, channel);
        when_confirmed(channel, [w, key = std::move(key), count, done = std::move(done)]() mutable {
            auto s = w.lock();
            if (!s)
                return;
            s->run_script(1, {"1", key, std::to_string(count)},
                          [w, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                              auto alive = w.lock();
                              if (!alive)
                                  return;
                              auto out = ec ? std::vector<backplane::detail::history_entry>{}
                                            : redis::inbox::entries(r);
                              alive->stats.inbox_taken += out.size();
                              done(ec, std::move(out));
                          });
        });
    }

    asio::any_io_executor executor;
    redis_streams_options options;
    key_pattern stream_key, user_channel, inbox_key;
    redis::connection publisher;
    redis::subscriber subscriber;
    const std::string max_length, inbox_length, trim;
    std::string sha[2];
    backplane::detail::message_handler handler;
    std::unordered_map<std::string, channel_state> channels;
    std::vector<std::string> unconfirmed; // channels awaiting a barrier
    std::string lookup;                   // reused for every lookup by view
    std::uint64_t generations = 0, epoch = 0, confirmed_epoch = 0, barrier_token = 0;
    bool barrier_pending = false;
    redis_streams_stats stats;
};

} // namespace detail

/// The Redis Streams broker policy. Movable; the destructor closes both
/// connections, and no handler is called after it.
class redis_streams {
public:
    /// Starts connecting both connections at once.
    /// @param ex the executor of the hub that owns this broker.
    /// @throws std::invalid_argument on a key pattern that lacks its placeholder.
    redis_streams(asio::any_io_executor ex, redis::config server, redis_streams_options options = {})
        : state_(std::make_shared<detail::streams_state>(ex, server, std::move(options)))
    {
        state_->start();
    }

    /// As above, with the server read from a URL.
    /// @throws std::invalid_argument on a malformed URL.
    redis_streams(asio::any_io_executor ex, std::string_view url, redis_streams_options options = {})
        : redis_streams(std::move(ex), redis::parse_url(url), std::move(options))
    {
    }

    redis_streams(redis_streams&&) noexcept = default;
    redis_streams& operator=(redis_streams&&) = delete;

    ~redis_streams()
    {
        if (!state_)
            return; // moved from
        state_->handler = nullptr;
        state_->publisher.stop();
        state_->subscriber.stop();
    }

    const asio::any_io_executor& get_executor() const noexcept { return state_->executor; }

    void set_message_handler(backplane::detail::message_handler h) { state_->handler = std::move(h); }

    void subscribe(std::string_view channel) { state_->subscribe(channel); }

    void unsubscribe(std::string_view channel) { state_->unsubscribe(channel); }

    /// Appends `data` to the channel's stream and publishes it, in one script.
    void publish(std::string_view channel, std::string_view data, backplane::detail::publish_handler done = {})
    {
        state_->publish(channel, data, std::move(done));
    }

    /// Reads at most `count` entries of `channel` after the id `after`; see
    /// the contract above.
    void history(std::string_view channel, std::string_view after, std::size_t count,
                 backplane::detail::history_handler done)
    {
        state_->history(channel, after, count, std::move(done));
    }

    /// Takes (reads and deletes) at most `count` entries of `user`'s offline
    /// inbox, oldest first. If the user's channel is subscribed, the read waits
    /// for the subscription to be confirmed, so that a message is either
    /// in the inbox read or received live. Each entry's id is the message's
    /// id in the user channel's stream.
    void take_inbox(std::string_view user, inbox_handler done, std::size_t count = 1000)
    {
        state_->take_inbox(user, count, std::move(done));
    }

    /// Whether both connections are ready.
    bool connected() const noexcept
    {
        return state_->publisher.state() == redis::connection_state::ready
               && state_->subscriber.state() == redis::connection_state::ready;
    }

    /// Whether the broker is up to date on every channel: no resume under way.
    bool resumed() const noexcept
    {
        for (const auto& [name, ch] : state_->channels)
            if (ch.resuming)
                return false;
        return true;
    }

    /// The last id handed to the hub on `channel`; empty if none.
    std::string last_id(std::string_view channel) const
    {
        auto* ch = state_->find(channel);
        return ch && ch->has_last ? ch->last.to_string() : std::string();
    }

    /// The stream key of `channel`.
    std::string stream_key(std::string_view channel) const
    {
        std::string key;
        state_->stream_key.name(channel, key);
        return key;
    }

    redis_streams_stats stats() const noexcept
    {
        auto out = state_->stats;
        const auto p = state_->publisher.stats();
        const auto sub = state_->subscriber.stats();
        out.reconnects = p.connection.reconnects + sub.connection.reconnects;
        out.resubscribed = sub.resubscribed;
        out.probe_timeouts = p.connection.probe_timeouts + sub.connection.probe_timeouts;
        return out;
    }

    /// The two connections, for what the broker does not wrap (PING barriers,
    /// diagnostics). Do not subscribe through the subscriber behind the hub's back.
    redis::connection& publisher() noexcept { return state_->publisher; }
    redis::subscriber& subscriber() noexcept { return state_->subscriber; }

private:
    std::shared_ptr<detail::streams_state> state_;
};

static_assert(backplane::detail::is_broker<redis_streams>::value, "redis_streams must satisfy the broker requirements");
static_assert(backplane::detail::has_history<redis_streams>::value, "redis_streams keeps history");

} // namespace backplane::broker

#endif
