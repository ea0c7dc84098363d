// backplane/broker/impl/redis_streams.hpp - redis_streams' state and members;
// included by backplane/broker/redis_streams.hpp.
#ifndef BACKPLANE_BROKER_IMPL_REDIS_STREAMS_HPP
#define BACKPLANE_BROKER_IMPL_REDIS_STREAMS_HPP

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <stdexcept>

namespace backplane::broker {

namespace detail {

// KEYS[1] the stream, KEYS[2] (optional) the inbox, KEYS[3] (optional, with
// the inbox) the user's known key; ARGV: channel, max length, "~" or "=",
// data, inbox max length, expiry in seconds (0: none), PUBLISH or SPUBLISH
// (on a cluster: the stream's slot is the channel's). A direct message to a
// user not known writes and publishes nothing: nobody can be subscribed to
// it, and its stream would be a key for a made-up name.
// One script, so that the live order on every subscriber is the stream's id
// order, so that "nobody received it" and "it went to the inbox" are one
// fact, and so that no key is ever left without its expiry.
// This is the fast path: an id "ms-N" with N > 0 shares its millisecond
// with an earlier write to that key, whose EXPIRE set a deadline no earlier
// than this one would (a new key's first id ends in -0), so a busy channel
// pays for one EXPIRE a millisecond, not one a message.
inline constexpr std::string_view publish_script = R"lua(
if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 0 then return {'', 2} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[2], '*', 'd', ARGV[4])
if ARGV[6] ~= '0' and id:sub(-2) == '-0' then redis.call('EXPIRE', KEYS[1], ARGV[6]) end
local n = redis.call(ARGV[7], ARGV[1], id .. ' ' .. ARGV[4])
if n == 0 and #KEYS > 1 then
  local kept = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], ARGV[5], '*', 'i', id, 'd', ARGV[4])
  if ARGV[6] ~= '0' and kept:sub(-2) == '-0' then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
  return {id, 1}
end
return {id, 0}
)lua";

// The entries of an XRANGE reply.
inline std::vector<history_entry> entries_of(const redis::reply& r)
{
    std::vector<history_entry> out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) {
        if (e.elements.size() != 2)
            continue;
        const auto* data = redis::inbox::field_of(e.elements[1], redis::inbox::data_field);
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
        // Where the hub is in this stream, from the first message delivered:
        // live, or catching up after a reconnect.
        std::optional<backplane::detail::catch_up> seam;
        std::uint64_t resume_token = 0;
        std::vector<std::function<void()>> waiting; // reads sent once confirmed
    };

    streams_state(asio::any_io_executor ex, const redis::config& server, redis_streams_options o,
                  redis::pubsub_mode mode)
        : executor(ex),
          options(std::move(o)),
          stream_key(options.stream_key, "{channel}"),
          inbox_key(options.inbox.key, "{user}"),
          known_key(options.inbox.known_key.empty()
                        ? std::nullopt
                        : std::optional<backplane::detail::name_pattern>(std::in_place, options.inbox.known_key,
                                                                         "{user}")),
          publisher(ex, server, named(":pub")),
          subscriber(ex, server, named(":sub"), mode),
          max_length(std::to_string(options.max_length)),
          inbox_length(std::to_string(options.inbox.max_length)),
          trim(options.approximate_trim ? "~" : "="),
          expiry(redis::expiry_argument(options.idle_expiry)),
          publish_command(mode == redis::pubsub_mode::sharded ? "SPUBLISH" : "PUBLISH")
    {
        validate(options);
    }

    // What the member initializers above do not check themselves.
    static void validate(const redis_streams_options& o)
    {
        if (o.max_length == 0 || o.resume_page == 0)
            throw std::invalid_argument("backplane: redis_streams needs max_length and resume_page > 0");
        (void)redis::expiry_argument(o.idle_expiry);
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
        publish_lua.load(publisher);
        store_lua.load(publisher);
        remove_lua.load(publisher);
    }

    // ---- commands ----------------------------------------------------------

    // Every command, and every script (`lua`), goes to the publisher. On a
    // cluster (broker::redis_sharded_streams) `cluster` sends elsewhere one
    // that its node answered with MOVED or ASK, and one that never left: its
    // node was let go of while the command waited for the connection (one
    // that was sent and lost fails with error::connection_lost, not
    // resent: it may have run).
    struct cluster_hooks {
        std::function<void(const redis::redirect&, std::string_view lua, std::vector<std::string> args,
                           redis::reply_handler done)>
            follow;
        std::function<void(std::string_view lua, std::vector<std::string> args, redis::reply_handler done)> reroute;
    };

    void send(const redis::script* lua, std::vector<std::string> args, redis::reply_handler done)
    {
        if (cluster) {
            done = [hooks = cluster, source = lua ? lua->source() : std::string_view(), again = args,
                    done = std::move(done)](std::error_code ec, const redis::reply& r) mutable {
                if (ec == error::operation_aborted)
                    return hooks->reroute(source, std::move(again), std::move(done));
                const auto to = ec == error::server_error ? redis::parse_redirect(r.text) : std::nullopt;
                if (!to)
                    return done(ec, r);
                hooks->follow(*to, source, std::move(again), std::move(done));
            };
        }
        if (lua)
            return lua->run(publisher, std::move(args), std::move(done));
        publisher.execute(args, std::move(done));
    }

    // ---- publish -----------------------------------------------------------

    // With `user`: a direct message, kept in the user's inbox if nobody receives it.
    void publish(std::string_view channel, std::string_view data, std::string_view user, publish_handler done)
    {
        ++stats.published;
        std::vector<std::string> args;
        args.reserve(10);
        args.emplace_back(user.empty() ? "1" : known_key ? "3" : "2");
        args.push_back(stream_key.name(channel));
        if (!user.empty()) {
            args.push_back(inbox_key.name(user));
            if (known_key)
                args.push_back(known_key->name(user));
        }
        args.emplace_back(channel);
        args.push_back(max_length);
        args.emplace_back(trim);
        args.emplace_back(data);
        args.push_back(inbox_length);
        args.push_back(expiry); /* short: no allocation of its own */
        args.emplace_back(publish_command);
        std::weak_ptr<streams_state> w = shared_from_this();
        send(&publish_lua, std::move(args), [w, done = std::move(done)](std::error_code ec, const redis::reply& r) {
            auto s = w.lock();
            if (!s)
                return;
            if (ec)
                ++s->stats.publish_errors;
            else if (r.elements.size() == 2 && r.elements[1].integer == 1)
                ++s->stats.inboxed;
            else if (r.elements.size() == 2 && r.elements[1].integer == 2)
                ++s->stats.unknown;
            if (done)
                done(ec);
        });
    }

    void store_offline(std::string_view user, std::string_view data, publish_handler done)
    {
        std::weak_ptr<streams_state> w = shared_from_this();
        std::vector<std::string> args{known_key ? "2" : "1", inbox_key.name(user)};
        if (known_key)
            args.push_back(known_key->name(user));
        args.insert(args.end(), {inbox_length, expiry, std::string(data)});
        send(&store_lua, std::move(args),
             [w, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                 auto s = w.lock();
                 if (!s)
                     return;
                 if (!ec && r.type == redis::reply::kind::nil)
                     ++s->stats.unknown;
                 else
                     s->stats.inboxed += !ec;
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

    // A channel going to another node's state (broker::redis_sharded_streams):
    // where the hub is in its stream, and the reads waiting for it.
    struct handover {
        std::optional<backplane::detail::catch_up> seam;
        std::vector<std::function<void()>> waiting;
    };

    // Lets go of `channel`: its node no longer serves its slot.
    handover release(std::string_view channel)
    {
        handover out;
        auto* ch = find(channel);
        if (!ch)
            return out;
        out.seam = ch->seam;
        out.waiting = std::move(ch->waiting);
        channels.erase(lookup);
        subscriber.unsubscribe(channel);
        return out;
    }

    // Takes `channel` over: subscribed here, and once confirmed, its stream
    // read after where the hub is (this node has the stream now).
    void adopt(std::string_view channel, handover h)
    {
        subscribe(channel);
        auto* ch = find(channel);
        ch->waiting = std::move(h.waiting);
        if ((ch->seam = h.seam))
            ch->seam->restart();
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
            if (ch.seam) {
                ch.seam->restart();
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
            if (ch.seam && ch.seam->current() == backplane::detail::catch_up::state::reading) {
                ++stats.resumes;
                resume(name, ch, true);
            }
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
        auto* ch = find(channel);
        if (!ch)
            return; // unsubscribed meanwhile
        if (!ch->seam) {
            ch->seam = backplane::detail::catch_up::live_at(id);
        } else {
            switch (ch->seam->on_live(id)) {
            case backplane::detail::catch_up::action::ignore: return; // resuming: the stream has it
            case backplane::detail::catch_up::action::skip: ++stats.duplicates; return;
            case backplane::detail::catch_up::action::deliver_go_live:
            case backplane::detail::catch_up::action::deliver: break;
            }
        }
        ++stats.received;
        if (handler)
            handler(channel, payload.substr(0, space), payload.substr(space + 1));
    }

    // Reads `ch`'s stream after its cursor, one page; the first page of a
    // resume also asks whether the cursor is still there (a gap if not).
    void resume(const std::string& name, channel_state& ch, bool first)
    {
        const std::string after = ch.seam->cursor().to_string();
        std::weak_ptr<streams_state> w = shared_from_this();
        const auto gen = ch.generation, token = ch.resume_token;
        auto found = std::make_shared<bool>(true);
        if (first)
            send(nullptr, {"XRANGE", ch.key, after, after, "COUNT", "1"},
                 [found](std::error_code ec, const redis::reply& r) { *found = ec || !r.elements.empty(); });
        send(nullptr, {"XRANGE", ch.key, "(" + after, "+", "COUNT", std::to_string(options.resume_page)},
             [w, name, gen, token, first, found](std::error_code ec, const redis::reply& r) {
                 if (auto s = w.lock())
                     s->on_resume_page(name, gen, token, ec, r, first, *found);
             });
    }

    channel_state* current(const std::string& name, std::uint64_t gen, std::uint64_t token)
    {
        auto it = channels.find(name);
        if (it == channels.end() || it->second.generation != gen || it->second.resume_token != token
            || !it->second.seam || it->second.seam->current() != backplane::detail::catch_up::state::reading)
            return nullptr;
        return &it->second;
    }

    void on_resume_page(const std::string& name, std::uint64_t gen, std::uint64_t token, std::error_code ec,
                        const redis::reply& r, bool first, bool cursor_found)
    {
        auto* ch = current(name, gen, token);
        if (!ch)
            return;
        if (ec) { /* the command connection is down too, or busy: try again */
            auto timer = std::make_shared<asio::steady_timer>(executor, options.retry_delay);
            std::weak_ptr<streams_state> w = shared_from_this();
            timer->async_wait([w, timer, name, gen, token, first](std::error_code tec) {
                auto s = w.lock();
                if (tec || !s)
                    return;
                if (auto* c = s->current(name, gen, token))
                    s->resume(name, *c, first);
            });
            return;
        }
        for (const auto& e : entries_of(r)) {
            stream_id id;
            if (!parse_stream_id(e.id, id) || !ch->seam->take(id))
                continue;
            ++stats.resumed;
            if (handler)
                handler(name, e.id, e.data);
            if (!(ch = current(name, gen, token))) // the hub unsubscribed meanwhile
                return;
        }
        const auto next = ch->seam->page_done(r.elements.size() >= options.resume_page, cursor_found, false);
        if (first && !cursor_found)
            ++stats.gaps;
        if (next == backplane::detail::catch_up::next::read_again)
            resume(name, *ch, false);
    }

    // ---- reads for the hub ---------------------------------------------------

    void history(std::string_view channel, std::string_view after, std::size_t count, history_handler done)
    {
        stream_id from;
        std::weak_ptr<streams_state> w = shared_from_this();
        if (!parse_stream_id(after, from))
            return asio::post(executor, [w, done = std::move(done)] {
                if (w.lock())
                    done(error::invalid_stream_id, {});
            });
        when_confirmed(channel, [w, key = stream_key.name(channel), after = std::string(after), count,
                                 done = std::move(done)]() mutable {
            auto s = w.lock();
            if (!s)
                return;
            ++s->stats.history_reads;
            auto page = std::make_shared<history_page>();
            auto failed = std::make_shared<std::error_code>();
            // The range first, then whether `after` is still there: found
            // then, it was there during the range too (trimming only removes).
            s->send(nullptr, {"XRANGE", key, "(" + after, "+", "COUNT", std::to_string(count)},
                    [page, failed](std::error_code ec, const redis::reply& r) {
                        if (ec)
                            *failed = ec;
                        else
                            page->entries = entries_of(r);
                    });
            s->send(nullptr, {"XRANGE", key, after, after, "COUNT", "1"},
                    [w, page, failed, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                        if (!w.lock())
                            return;
                        if (!ec && !*failed)
                            page->cursor_found = !r.elements.empty();
                        done(*failed ? *failed : ec, std::move(*page));
                    });
        });
    }

    void read_offline(std::string_view user, std::string_view channel, std::string_view after, std::size_t count,
                      offline_handler done)
    {
        std::weak_ptr<streams_state> w = shared_from_this();
        auto read = [w, args = redis::inbox::read_command(inbox_key.name(user), after, count),
                     done = std::move(done)]() mutable {
            auto s = w.lock();
            if (!s)
                return;
            s->send(nullptr, std::move(args), [w, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                if (w.lock())
                    done(ec, ec ? std::vector<offline_message>{} : redis::inbox::entries(r));
            });
        };
        if (!after.empty())
            return read();
        when_confirmed(channel, std::move(read));
    }

    void mark_known(std::string_view user)
    {
        if (known_key)
            send(nullptr, redis::inbox::mark_command(known_key->name(user), expiry),
                 [](std::error_code, const redis::reply&) {});
    }

    void remove_offline(std::string_view user, std::vector<std::string> entries, publish_handler done)
    {
        std::weak_ptr<streams_state> w = shared_from_this();
        entries.insert(entries.begin(), {"1", inbox_key.name(user)});
        send(&remove_lua, std::move(entries),
             [w, done = std::move(done)](std::error_code ec, const redis::reply& r) {
                 auto s = w.lock();
                 if (!s)
                     return;
                 if (!ec && r.integer > 0)
                     s->stats.inbox_delivered += std::uint64_t(r.integer);
                 if (done)
                     done(ec);
             });
    }

    asio::any_io_executor executor;
    redis_streams_options options;
    backplane::detail::name_pattern stream_key, inbox_key;
    std::optional<backplane::detail::name_pattern> known_key; // inbox.known_key, if set
    redis::connection publisher;
    redis::subscriber subscriber;
    const std::string max_length, inbox_length, trim, expiry;
    const std::string_view publish_command;
    std::shared_ptr<const cluster_hooks> cluster; // set on a cluster
    redis::script publish_lua{publish_script};
    redis::script store_lua{redis::inbox::store_script};
    redis::script remove_lua{redis::inbox::remove_script};
    message_handler handler;
    std::unordered_map<std::string, channel_state> channels;
    std::vector<std::string> unconfirmed; // channels awaiting a barrier
    std::string lookup;                   // reused for every lookup by view
    std::uint64_t generations = 0, epoch = 0, confirmed_epoch = 0, barrier_token = 0;
    bool barrier_pending = false;
    redis_streams_stats stats;
};

} // namespace detail

inline redis_streams::redis_streams(asio::any_io_executor ex, const redis::config& server,
                                    redis_streams_options options, redis::pubsub_mode mode)
    : state_(std::make_shared<detail::streams_state>(ex, server, std::move(options), mode))
{
    state_->start();
}

inline redis_streams::~redis_streams()
{
    if (!state_)
        return; // moved from
    state_->handler = nullptr;
    state_->publisher.stop();
    state_->subscriber.stop();
}

inline const asio::any_io_executor& redis_streams::get_executor() const noexcept { return state_->executor; }
inline void redis_streams::set_message_handler(message_handler h) { state_->handler = std::move(h); }
inline void redis_streams::subscribe(std::string_view channel) { state_->subscribe(channel); }
inline void redis_streams::unsubscribe(std::string_view channel) { state_->unsubscribe(channel); }

inline void redis_streams::publish(std::string_view channel, std::string_view data, publish_handler done)
{
    state_->publish(channel, data, {}, std::move(done));
}

inline void redis_streams::publish_direct(std::string_view channel, std::string_view user, std::string_view data,
                                          publish_handler done)
{
    state_->publish(channel, data, user, std::move(done));
}

inline void redis_streams::store_offline(std::string_view user, std::string_view data, publish_handler done)
{
    state_->store_offline(user, data, std::move(done));
}

inline void redis_streams::read_offline(std::string_view user, std::string_view channel, std::string_view after,
                                        std::size_t count, offline_handler done)
{
    state_->read_offline(user, channel, after, count, std::move(done));
}

inline void redis_streams::mark_known(std::string_view user) { state_->mark_known(user); }

inline void redis_streams::remove_offline(std::string_view user, std::vector<std::string> entries,
                                          publish_handler done)
{
    state_->remove_offline(user, std::move(entries), std::move(done));
}

inline void redis_streams::history(std::string_view channel, std::string_view after, std::size_t count,
                                   history_handler done)
{
    state_->history(channel, after, count, std::move(done));
}

inline bool redis_streams::connected() const noexcept
{
    return state_->publisher.state() == redis::connection_state::ready
           && state_->subscriber.state() == redis::connection_state::ready;
}

// Waiting for the live flow to pass the cursor is being up to date: a live
// message is then delivered if past the cursor and skipped if not, as live.
inline bool redis_streams::resumed() const noexcept
{
    for (const auto& [name, ch] : state_->channels)
        if (ch.seam && ch.seam->current() == backplane::detail::catch_up::state::reading)
            return false;
    return true;
}

inline std::string redis_streams::last_id(std::string_view channel) const
{
    auto* ch = state_->find(channel);
    return ch && ch->seam ? ch->seam->cursor().to_string() : std::string();
}

inline std::string redis_streams::stream_key(std::string_view channel) const { return state_->stream_key.name(channel); }

inline redis_streams_stats redis_streams::stats() const noexcept
{
    auto out = state_->stats;
    const auto p = state_->publisher.stats();
    const auto sub = state_->subscriber.stats();
    out.reconnects = p.connection.reconnects + sub.connection.reconnects;
    out.resubscribed = sub.resubscribed;
    out.probe_timeouts = p.connection.probe_timeouts + sub.connection.probe_timeouts;
    return out;
}

inline redis::connection& redis_streams::publisher() noexcept { return state_->publisher; }
inline redis::subscriber& redis_streams::subscriber() noexcept { return state_->subscriber; }

static_assert(is_broker_v<redis_streams> && has_history_v<redis_streams> && has_publish_direct_v<redis_streams>,
              "redis_streams must satisfy the Broker requirements, with history and offline messages");

} // namespace backplane::broker

#endif
