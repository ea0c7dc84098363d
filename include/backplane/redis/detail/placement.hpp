// backplane/redis/detail/placement.hpp - which master holds each channel a
// broker on a Redis Cluster wants: the bookkeeping broker::redis_sharded and
// broker::redis_sharded_streams share. What moving a channel means (a
// subscription, a stream's cursor) is the broker's.
#ifndef BACKPLANE_REDIS_DETAIL_PLACEMENT_HPP
#define BACKPLANE_REDIS_DETAIL_PLACEMENT_HPP

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace backplane::redis::detail {

// `Shard` is a broker's object for one master. A channel is on a shard, or
// waits for a node (no shard): before the first map, and once its node ended
// it until a map names another.
template <class Shard>
class placement {
public:
    using entry = std::pair<const std::string, Shard*>;

    // Adds `channel`, waiting for a node; nullptr if it is there already.
    entry* add(std::string_view channel)
    {
        auto [it, inserted] = channels_.emplace(std::string(channel), nullptr);
        if (!inserted)
            return nullptr;
        ++waiting_;
        return &*it;
    }

    // Removes `channel`; leave(shard) first if a shard holds it.
    template <class Leave>
    void remove(std::string_view channel, Leave leave)
    {
        auto it = channels_.find(std::string(channel));
        if (it == channels_.end())
            return;
        if (it->second)
            leave(*it->second);
        else
            --waiting_;
        channels_.erase(it);
    }

    // Puts `e` on `owner` unless it is there: move(from, owner), `from`
    // nullptr if it waited for a node.
    template <class Move>
    void place(entry& e, Shard& owner, Move move)
    {
        if (e.second == &owner)
            return;
        if (!e.second)
            --waiting_;
        Shard* from = std::exchange(e.second, &owner);
        move(from, owner);
    }

    // `from` ended `channel`: it waits for a node. nullptr if it is not on
    // `from` (unsubscribed, or elsewhere already).
    entry* drop(const std::string& channel, const Shard* from)
    {
        auto it = channels_.find(channel);
        if (it == channels_.end() || it->second != from)
            return nullptr;
        it->second = nullptr;
        ++waiting_;
        return &*it;
    }

    Shard* shard_of(std::string_view channel) const
    {
        auto it = channels_.find(std::string(channel));
        return it == channels_.end() ? nullptr : it->second;
    }

    // Channels waiting for a node.
    std::size_t waiting() const noexcept { return waiting_; }

    auto begin() noexcept { return channels_.begin(); }
    auto end() noexcept { return channels_.end(); }

private:
    std::unordered_map<std::string, Shard*> channels_;
    std::size_t waiting_ = 0;
};

} // namespace backplane::redis::detail

#endif
