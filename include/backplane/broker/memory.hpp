// backplane/broker/memory.hpp - an in-process bus shared by several hubs.
//
// Several hubs in one process, each with its own `broker::memory` on one
// `memory_bus`, behave as several instances on one Redis: a publish reaches
// every endpoint subscribed to the channel (the publisher's own included),
// asynchronously, on each endpoint's own executor. Tests and single-process
// users run several "instances" this way. A bus made with a history size
// also keeps the last messages of each channel, with ids, as Redis streams
// do; every bus keeps the direct messages nobody received for their user,
// as the Redis brokers' offline inbox does.
//
// A Broker with the optional history and offline messages; the contract is
// in backplane/policies.hpp. A destroyed endpoint calls nothing.
#ifndef BACKPLANE_BROKER_MEMORY_HPP
#define BACKPLANE_BROKER_MEMORY_HPP

#include <backplane/policies.hpp>
#include <backplane/error.hpp>
#include <backplane/stream_id.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace backplane::broker {

namespace detail {

// One endpoint's state, shared with the deliveries posted to it so that an
// endpoint destroyed while deliveries are queued is never touched by them.
struct memory_endpoint {
    explicit memory_endpoint(asio::any_io_executor ex) : executor(std::move(ex)) {}

    asio::any_io_executor executor;
    backplane::message_handler handler; // empty once the endpoint is gone
    std::uint64_t received = 0;
};

// One published message: one allocation, shared by every endpoint it reaches.
struct memory_message {
    std::string channel;
    std::string data;
    std::string id; // empty unless the bus keeps history
};

} // namespace detail

/// The bus: a channel registry shared by the endpoints. Thread-safe, so that
/// hubs running on different threads can share it.
class memory_bus {
public:
    /// @param history how many messages to keep per channel; 0: none.
    /// @param offline how many messages to keep per offline user.
    explicit memory_bus(std::size_t history = 0, std::size_t offline = 1000)
        : history_size_(history), offline_size_(offline)
    {
    }
    memory_bus(const memory_bus&) = delete;
    memory_bus& operator=(const memory_bus&) = delete;

    /// How many endpoints are subscribed to `channel` now.
    std::size_t subscribers(std::string_view channel) const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = channels_.find(std::string(channel));
        return it == channels_.end() ? 0 : it->second.size();
    }

    /// How many channels have at least one subscriber now.
    std::size_t channels() const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return channels_.size();
    }

    /// Forgets every channel's history, as a Redis restarted without
    /// persistence does. Ids go on growing.
    void clear_history()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        history_.clear();
    }

private:
    friend class memory;
    using endpoint_ptr = std::shared_ptr<detail::memory_endpoint>;

    void subscribe(std::string_view channel, const endpoint_ptr& ep)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        channels_[std::string(channel)].push_back(ep);
    }

    void unsubscribe(std::string_view channel, const endpoint_ptr& ep)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = channels_.find(std::string(channel));
        if (it == channels_.end())
            return;
        auto& eps = it->second;
        eps.erase(std::remove(eps.begin(), eps.end(), ep), eps.end());
        if (eps.empty())
            channels_.erase(it);
    }

    // With `user`: a direct message, kept for the user if nobody received it.
    void publish(std::string_view channel, std::string_view data, std::string_view user = {})
    {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string id;
        if (history_size_)
            id = stream_id{++last_id_, 0}.to_string();
        auto msg = std::make_shared<const detail::memory_message>(
            detail::memory_message{std::string(channel), std::string(data), std::move(id)});
        if (history_size_) {
            auto& kept = history_[msg->channel];
            kept.push_back(msg);
            if (kept.size() > history_size_)
                kept.pop_front();
        }
        auto it = channels_.find(msg->channel);
        if (it == channels_.end()) {
            if (!user.empty())
                keep(user, {{}, msg->id, msg->data, !msg->id.empty()});
            return;
        }
        for (const auto& ep : it->second)
            asio::post(ep->executor, [ep, msg] {
                if (!ep->handler)
                    return;
                ++ep->received;
                ep->handler(msg->channel, msg->id, msg->data);
            });
    }

    // Read now, delivered later: what is published after this read reaches
    // the subscribers live.
    void history(const endpoint_ptr& ep, std::string_view channel, std::string_view after,
                 std::size_t count, backplane::history_handler done)
    {
        stream_id from;
        if (!parse_stream_id(after, from))
            return asio::post(ep->executor, [ep, done = std::move(done)] {
                if (ep->handler)
                    done(error::invalid_stream_id, {});
            });
        backplane::history_page page;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = history_.find(std::string(channel));
            if (it != history_.end())
                for (const auto& msg : it->second) {
                    stream_id id;
                    parse_stream_id(msg->id, id);
                    if (id == from)
                        page.cursor_found = true;
                    else if (from < id && page.entries.size() < count)
                        page.entries.push_back({msg->id, msg->data});
                }
        }
        asio::post(ep->executor, [ep, done = std::move(done), page = std::move(page)]() mutable {
            if (ep->handler)
                done({}, std::move(page));
        });
    }

    void store_offline(std::string_view user, std::string_view data)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        // Its id: the next of the bus's ids, as the Redis inbox gives one of its own.
        keep(user, {{}, stream_id{++last_id_, 0}.to_string(), std::string(data), false});
    }

    std::vector<offline_message> read_offline(std::string_view user, std::string_view after, std::size_t count)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<offline_message> out;
        auto it = offline_.find(std::string(user));
        stream_id from;
        if (it == offline_.end() || (!after.empty() && !parse_stream_id(after, from)))
            return out;
        for (const auto& m : it->second) {
            stream_id entry;
            parse_stream_id(m.entry, entry);
            if (from < entry && out.size() < count)
                out.push_back(m);
        }
        return out;
    }

    void remove_offline(std::string_view user, const std::vector<std::string>& entries)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = offline_.find(std::string(user));
        if (it == offline_.end())
            return;
        auto& kept = it->second;
        kept.erase(std::remove_if(kept.begin(), kept.end(),
                                  [&](const offline_message& m) {
                                      return std::find(entries.begin(), entries.end(), m.entry) != entries.end();
                                  }),
                   kept.end());
        if (kept.empty())
            offline_.erase(it);
    }

    // Under the lock.
    void keep(std::string_view user, offline_message m)
    {
        m.entry = stream_id{++kept_, 0}.to_string(); // its place in the store, apart from its id
        auto& kept = offline_[std::string(user)];
        kept.push_back(std::move(m));
        if (kept.size() > offline_size_)
            kept.pop_front();
    }

    const std::size_t history_size_;
    const std::size_t offline_size_;
    std::unordered_map<std::string, std::deque<offline_message>> offline_;
    std::uint64_t last_id_ = 0;
    std::uint64_t kept_ = 0;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::vector<endpoint_ptr>> channels_;
    std::unordered_map<std::string, std::deque<std::shared_ptr<const detail::memory_message>>> history_;
};

/// One hub's endpoint on a memory_bus. Use it on its executor only.
class memory {
public:
    /// @param bus must outlive the endpoint.
    /// @param ex the executor of the hub that owns this endpoint.
    memory(memory_bus& bus, asio::any_io_executor ex)
        : bus_(&bus), state_(std::make_shared<detail::memory_endpoint>(std::move(ex)))
    {
    }

    memory(memory&&) noexcept = default;
    memory& operator=(memory&&) = delete;

    ~memory()
    {
        if (!state_)
            return; // moved from
        state_->handler = nullptr;
        for (const auto& ch : channels_)
            bus_->unsubscribe(ch, state_);
    }

    asio::any_io_executor get_executor() const { return state_->executor; }

    void set_message_handler(backplane::message_handler h) { state_->handler = std::move(h); }

    void subscribe(std::string_view channel)
    {
        if (channels_.emplace(channel).second)
            bus_->subscribe(channel, state_);
    }

    void unsubscribe(std::string_view channel)
    {
        if (channels_.erase(std::string(channel)))
            bus_->unsubscribe(channel, state_);
    }

    void publish(std::string_view channel, std::string_view data,
                 backplane::publish_handler done = {})
    {
        ++published_;
        bus_->publish(channel, data);
        if (done)
            asio::post(state_->executor, [done = std::move(done)] { done({}); });
    }

    /// publish() of a direct message to `user`, kept for the user if no
    /// endpoint is subscribed to `channel`.
    void publish_direct(std::string_view channel, std::string_view user, std::string_view data,
                        backplane::publish_handler done = {})
    {
        ++published_;
        bus_->publish(channel, data, user);
        if (done)
            asio::post(state_->executor, [done = std::move(done)] { done({}); });
    }

    /// Keeps `data` for `user` without publishing it.
    void store_offline(std::string_view user, std::string_view data, backplane::publish_handler done = {})
    {
        bus_->store_offline(user, data);
        if (done)
            asio::post(state_->executor, [done = std::move(done)] { done({}); });
    }

    /// Reads what is kept for `user` (subscriptions take effect at once on
    /// the bus: there is nothing to wait for).
    void read_offline(std::string_view user, std::string_view /*channel*/, std::string_view after, std::size_t count,
                      backplane::offline_handler done)
    {
        asio::post(state_->executor,
                   [ep = state_, done = std::move(done), page = bus_->read_offline(user, after, count)]() mutable {
                       if (ep->handler)
                           done({}, std::move(page));
                   });
    }

    /// Removes `entries` from what is kept for `user`.
    void remove_offline(std::string_view user, std::vector<std::string> entries, backplane::publish_handler done = {})
    {
        bus_->remove_offline(user, entries);
        if (done)
            asio::post(state_->executor, [done = std::move(done)] { done({}); });
    }

    /// Reads up to `count` messages of `channel` after the id `after`.
    void history(std::string_view channel, std::string_view after, std::size_t count,
                 backplane::history_handler done)
    {
        bus_->history(state_, channel, after, count, std::move(done));
    }

    /// Whether this endpoint is subscribed to `channel`.
    bool subscribed(std::string_view channel) const { return channels_.count(std::string(channel)) != 0; }
    /// How many channels this endpoint is subscribed to.
    std::size_t channel_count() const noexcept { return channels_.size(); }
    /// Messages published through this endpoint.
    std::uint64_t published() const noexcept { return published_; }
    /// Messages delivered to this endpoint's handler.
    std::uint64_t received() const noexcept { return state_->received; }

private:
    memory_bus* bus_;
    std::shared_ptr<detail::memory_endpoint> state_;
    std::unordered_set<std::string> channels_;
    std::uint64_t published_ = 0;
};

static_assert(is_broker_v<memory> && has_history_v<memory> && has_publish_direct_v<memory>,
              "broker::memory must satisfy the Broker requirements, with history and offline messages");

} // namespace backplane::broker

#endif
