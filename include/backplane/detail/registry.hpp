// backplane/detail/registry.hpp - the hub's local registry, free of I/O.
//
// Connections live in slots; a connection id is the slot's index with a
// generation in the high half, so a stale id never names a reused slot.
// Each room and each user has a dense list of slot indices that delivery
// walks front to back; every slot remembers its position in each list, so
// joining, leaving and closing are O(1) per list (swap with the last, pop).
// A room or user list exists while it has a member: its creation and its
// removal are the reference-count edges on which the hub subscribes and
// unsubscribes.
#ifndef BACKPLANE_DETAIL_REGISTRY_HPP
#define BACKPLANE_DETAIL_REGISTRY_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backplane::detail {

using slot_index = std::uint32_t;

/// Which kind of list became empty.
enum class list_kind { room, user };

/// What join did.
enum class join_result {
    unknown, ///< no such connection
    created, ///< joined, and the room is new on this hub
    joined,  ///< joined a room that had local members
    already, ///< was a member already
};

template <class Handle>
class registry {
    using list_map = std::unordered_map<std::string, std::vector<slot_index>>;
    // A node of list_map; its address is stable while it exists.
    using list_node = typename list_map::value_type;

    struct membership {
        list_node* room;
        std::uint32_t pos; // in room->second
    };

public:
    struct slot {
        Handle handle{};
        std::uint64_t id = 0; // 0 while the slot is free
        std::uint32_t generation = 0;
        std::uint32_t all_pos = 0;
        list_node* user = nullptr;
        std::uint32_t user_pos = 0;
        std::vector<membership> rooms;
    };

    /// Adds a connection. @returns its id, and whether its user is new here.
    std::pair<std::uint64_t, bool> open(Handle handle, std::string_view user)
    {
        slot_index index;
        if (free_.empty()) {
            index = static_cast<slot_index>(slots_.size());
            slots_.emplace_back();
        } else {
            index = free_.back();
            free_.pop_back();
        }
        slot& s = slots_[index];
        s.handle = std::move(handle);
        s.id = (std::uint64_t(++s.generation) << 32) | index;
        s.all_pos = push(all_, index);
        auto [it, created] = users_.try_emplace(std::string(user));
        s.user = &*it;
        s.user_pos = push(it->second, index);
        return {s.id, created};
    }

    /// Removes a connection from every list, calling `on_empty(kind, name)`
    /// for each room or user list it leaves empty, before that list is gone.
    template <class OnEmpty>
    void close(std::uint64_t id, OnEmpty&& on_empty)
    {
        slot* s = find(id);
        if (!s)
            return;
        const slot_index index = index_of(id);
        for (const auto& m : s->rooms)
            if (remove_member(*m.room, m.pos, list_kind::room)) {
                on_empty(list_kind::room, m.room->first);
                rooms_.erase(m.room->first);
            }
        s->rooms.clear();
        if (remove_member(*s->user, s->user_pos, list_kind::user)) {
            on_empty(list_kind::user, s->user->first);
            users_.erase(s->user->first);
        }
        remove_all(s->all_pos);
        s->handle = Handle{};
        s->id = 0;
        s->user = nullptr;
        free_.push_back(index);
    }

    join_result join(std::uint64_t id, std::string_view room)
    {
        slot* s = find(id);
        if (!s)
            return join_result::unknown;
        if (membership_of(*s, room) != s->rooms.end())
            return join_result::already;
        auto [it, created] = rooms_.try_emplace(std::string(room));
        s->rooms.push_back({&*it, push(it->second, index_of(id))});
        return created ? join_result::created : join_result::joined;
    }

    /// @returns true if the room had no local member left and is gone.
    bool leave(std::uint64_t id, std::string_view room)
    {
        slot* s = find(id);
        if (!s)
            return false;
        auto m = membership_of(*s, room);
        if (m == s->rooms.end())
            return false;
        list_node* node = m->room;
        const bool emptied = remove_member(*node, m->pos, list_kind::room);
        *m = s->rooms.back();
        s->rooms.pop_back();
        if (emptied)
            rooms_.erase(node->first);
        return emptied;
    }

    bool contains(std::uint64_t id) const noexcept { return find(id) != nullptr; }

    std::string_view user_of(std::uint64_t id) const noexcept
    {
        const slot* s = find(id);
        return s ? std::string_view(s->user->first) : std::string_view();
    }

    const slot& slot_at(slot_index index) const noexcept { return slots_[index]; }

    /// Every open connection.
    const std::vector<slot_index>& all() const noexcept { return all_; }
    /// A room's local members, or null if it has none.
    const std::vector<slot_index>* room(std::string_view name) const { return lookup(rooms_, name); }
    /// A user's local connections, or null if it has none.
    const std::vector<slot_index>* user(std::string_view name) const { return lookup(users_, name); }

    std::size_t connection_count() const noexcept { return all_.size(); }
    std::size_t room_count() const noexcept { return rooms_.size(); }
    std::size_t room_size(std::string_view name) const { return size_of(room(name)); }
    std::size_t user_size(std::string_view name) const { return size_of(user(name)); }

private:
    static std::uint32_t index_of(std::uint64_t id) noexcept { return std::uint32_t(id); }

    slot* find(std::uint64_t id) noexcept
    {
        const auto index = index_of(id);
        return id != 0 && index < slots_.size() && slots_[index].id == id ? &slots_[index] : nullptr;
    }
    const slot* find(std::uint64_t id) const noexcept { return const_cast<registry*>(this)->find(id); }

    static std::uint32_t push(std::vector<slot_index>& list, slot_index index)
    {
        list.push_back(index);
        return static_cast<std::uint32_t>(list.size() - 1);
    }

    auto membership_of(slot& s, std::string_view room)
    {
        auto it = s.rooms.begin();
        while (it != s.rooms.end() && it->room->first != room)
            ++it;
        return it;
    }

    // Swap-remove position `pos` of a room or user list, and tell the slot
    // that moved into `pos` where it now is. @returns true if the list is empty.
    bool remove_member(list_node& node, std::uint32_t pos, list_kind kind)
    {
        auto& list = node.second;
        const slot_index moved = list.back();
        list[pos] = moved;
        list.pop_back();
        if (pos < list.size()) {
            slot& m = slots_[moved];
            if (kind == list_kind::user)
                m.user_pos = pos;
            else
                for (auto& r : m.rooms)
                    if (r.room == &node)
                        r.pos = pos;
        }
        return list.empty();
    }

    void remove_all(std::uint32_t pos)
    {
        const slot_index moved = all_.back();
        all_[pos] = moved;
        all_.pop_back();
        if (pos < all_.size())
            slots_[moved].all_pos = pos;
    }

    // Lookup by view without allocating: the key buffer keeps its capacity.
    const std::vector<slot_index>* lookup(const list_map& map, std::string_view name) const
    {
        key_.assign(name.data(), name.size());
        auto it = map.find(key_);
        return it == map.end() ? nullptr : &it->second;
    }

    static std::size_t size_of(const std::vector<slot_index>* list) noexcept
    {
        return list ? list->size() : 0;
    }

    std::vector<slot> slots_;
    std::vector<slot_index> free_;
    std::vector<slot_index> all_;
    list_map rooms_;
    list_map users_;
    mutable std::string key_;
};

} // namespace backplane::detail

#endif
