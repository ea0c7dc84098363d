// backplane/detail/registry.hpp - the hub's local registry, free of I/O.
//
// Connections live in slots; a connection id is the slot's index with a
// generation in the high half, so a stale id never names a reused slot. What
// delivery reads of a slot (its id and handle) is kept apart from the rest,
// densely, so that walking a list touches as little memory as it can.
// Each list (every connection, a room's members, a user's connections) is a
// dense vector of slot indices that delivery walks front to back; every slot
// remembers its position in each of its lists, so joining, leaving and
// closing are O(1) per list (swap with the last, pop).
//
// A connection's room memberships are a vector; past a few, an index by
// list finds one in O(1), so that a connection in many rooms costs no more
// per join, leave or delivery change than one in few.
//
// A membership may be pending: counted, but not yet in the list's vector, so
// that delivery skips it while the connection catches up on what it missed
// (see the hub's recovery). A room or user list exists while it has a member
// or a pending one: its creation and its removal are the reference-count
// edges on which the hub subscribes and unsubscribes.
#ifndef BACKPLANE_DETAIL_REGISTRY_HPP
#define BACKPLANE_DETAIL_REGISTRY_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
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
    full,    ///< not joined: the connection holds its most rooms already
};

/// The connections of one list.
struct member_list {
    std::vector<slot_index> members; // delivered to
    std::uint32_t pending = 0;       // counted, not yet delivered to

    bool empty() const noexcept { return members.empty() && pending == 0; }
};

template <class Handle>
class registry {
    using list_map = std::unordered_map<std::string, member_list>;

public:
    /// A list with its name; its address is stable while it exists.
    using list_node = typename list_map::value_type;

    static constexpr std::uint32_t pending_pos = UINT32_MAX;

    struct membership {
        list_node* list = nullptr;
        std::uint32_t pos = pending_pos; // in list->second.members, or pending_pos
    };

    /// What delivery reads of a slot.
    struct target {
        Handle handle{};
        std::uint64_t id = 0; // 0 while the slot is free
    };

    struct slot {
        std::uint32_t generation = 0;
        membership all;
        membership user;
        std::vector<membership> rooms;
        // Position in `rooms` by list, once there are more than
        // index_threshold memberships (an idle connection pays 8 bytes).
        std::unique_ptr<std::unordered_map<const list_node*, std::uint32_t>> room_index;
    };

    static constexpr std::size_t index_threshold = 8;

    /// Adds a connection; `pending` keeps it out of the every-connection and
    /// user lists until activate(). @returns its id, and whether its user is
    /// new here.
    std::pair<std::uint64_t, bool> open(Handle handle, std::string_view user, bool pending = false)
    {
        slot_index index;
        if (free_.empty()) {
            index = static_cast<slot_index>(slots_.size());
            slots_.emplace_back();
            targets_.emplace_back();
        } else {
            index = free_.back();
            free_.pop_back();
        }
        slot& s = slots_[index];
        target& t = targets_[index];
        t.handle = std::move(handle);
        t.id = (std::uint64_t(++s.generation) << 32) | index;
        auto [it, created] = users_.try_emplace(std::string(user));
        s.all = add(all_, index, pending);
        s.user = add(*it, index, pending);
        return {t.id, created};
    }

    /// Removes a connection from every list, calling `on_empty(kind, name)`
    /// for each room or user list it leaves empty, before that list is gone.
    template <class OnEmpty>
    void close(std::uint64_t id, OnEmpty&& on_empty)
    {
        slot* s = find(id);
        if (!s)
            return;
        for (const auto& m : s->rooms)
            if (remove(m)) {
                on_empty(list_kind::room, m.list->first);
                rooms_.erase(m.list->first);
            }
        s->rooms.clear();
        s->room_index.reset();
        if (remove(s->user)) {
            on_empty(list_kind::user, s->user.list->first);
            users_.erase(s->user.list->first);
        }
        remove(s->all);
        targets_[index_of(id)] = target{};
        s->all = s->user = membership{};
        free_.push_back(index_of(id));
    }

    /// Adds a connection to a room, as a member or, with `pending`, as a
    /// pending member until activate(), unless it holds `max_rooms` already.
    join_result join(std::uint64_t id, std::string_view room, bool pending = false,
                     std::size_t max_rooms = SIZE_MAX)
    {
        slot* s = find(id);
        if (!s)
            return join_result::unknown;
        if (room_membership(*s, room))
            return join_result::already;
        if (s->rooms.size() >= max_rooms)
            return join_result::full;
        auto [it, created] = rooms_.try_emplace(std::string(room));
        s->rooms.push_back(add(*it, index_of(id), pending));
        index_room(*s, s->rooms.size() - 1);
        return created ? join_result::created : join_result::joined;
    }

    /// @returns true if the room had no local member left and is gone.
    bool leave(std::uint64_t id, std::string_view room)
    {
        slot* s = find(id);
        if (!s)
            return false;
        membership* m = room_membership(*s, room);
        if (!m)
            return false;
        list_node* node = m->list;
        const bool emptied = remove(*m);
        const auto at = static_cast<std::size_t>(m - s->rooms.data());
        if (s->room_index)
            s->room_index->erase(node);
        *m = s->rooms.back();
        s->rooms.pop_back();
        if (at < s->rooms.size())
            index_room(*s, at); // the last one moved here
        if (emptied)
            rooms_.erase(node->first);
        return emptied;
    }

    /// Turns a pending membership of `id` in `list` into a delivered one.
    /// @returns false if the connection or that pending membership is gone.
    bool activate(std::uint64_t id, const list_node* list)
    {
        slot* s = find(id);
        if (!s)
            return false;
        membership* m = nullptr;
        if (s->all.list == list)
            m = &s->all;
        else if (s->user.list == list)
            m = &s->user;
        else
            m = room_membership(*s, list);
        if (!m || m->pos != pending_pos)
            return false;
        --m->list->second.pending;
        m->pos = push(m->list->second.members, index_of(id));
        return true;
    }

    bool contains(std::uint64_t id) const noexcept { return find(id) != nullptr; }

    std::string_view user_of(std::uint64_t id) const noexcept
    {
        const slot* s = find(id);
        return s ? std::string_view(s->user.list->first) : std::string_view();
    }

    /// The slot of an open connection, or null.
    const slot* get(std::uint64_t id) const noexcept { return find(id); }
    /// The handle of an open connection, or null.
    const Handle* handle(std::uint64_t id) const noexcept
    {
        return find(id) ? &targets_[index_of(id)].handle : nullptr;
    }
    /// What delivery reads of the slot at `index`, from a list.
    const target& target_at(slot_index index) const noexcept { return targets_[index]; }

    /// Every open connection.
    list_node& all() noexcept { return all_; }
    /// A room's list, or null if it has no local member.
    list_node* room(std::string_view name) { return lookup(rooms_, name); }
    const list_node* room(std::string_view name) const { return lookup(rooms_, name); }
    /// A user's list, or null if it has no local connection.
    list_node* user(std::string_view name) { return lookup(users_, name); }
    const list_node* user(std::string_view name) const { return lookup(users_, name); }

    std::size_t connection_count() const noexcept
    {
        return all_.second.members.size() + all_.second.pending;
    }
    std::size_t room_count() const noexcept { return rooms_.size(); }
    std::size_t room_size(std::string_view name) const { return size_of(room(name)); }
    std::size_t user_size(std::string_view name) const { return size_of(user(name)); }

private:
    static std::uint32_t index_of(std::uint64_t id) noexcept { return std::uint32_t(id); }

    slot* find(std::uint64_t id) noexcept
    {
        const auto index = index_of(id);
        return id != 0 && index < slots_.size() && targets_[index].id == id ? &slots_[index] : nullptr;
    }
    const slot* find(std::uint64_t id) const noexcept { return const_cast<registry*>(this)->find(id); }

    static std::uint32_t push(std::vector<slot_index>& v, slot_index index)
    {
        v.push_back(index);
        return static_cast<std::uint32_t>(v.size() - 1);
    }

    static membership add(list_node& node, slot_index index, bool pending)
    {
        if (pending) {
            ++node.second.pending;
            return {&node, pending_pos};
        }
        return {&node, push(node.second.members, index)};
    }

    membership* room_membership(slot& s, std::string_view room)
    {
        const list_node* list = lookup(rooms_, room);
        return list ? room_membership(s, list) : nullptr;
    }

    // The connection's membership of `list`, by index past a few.
    static membership* room_membership(slot& s, const list_node* list)
    {
        if (s.room_index) {
            auto it = s.room_index->find(list);
            return it == s.room_index->end() ? nullptr : &s.rooms[it->second];
        }
        for (auto& m : s.rooms)
            if (m.list == list)
                return &m;
        return nullptr;
    }

    // Records that rooms[at] is where it is; builds the index at the threshold.
    static void index_room(slot& s, std::size_t at)
    {
        if (!s.room_index && s.rooms.size() > index_threshold) {
            s.room_index = std::make_unique<std::unordered_map<const list_node*, std::uint32_t>>();
            for (std::size_t k = 0; k < s.rooms.size(); ++k)
                (*s.room_index)[s.rooms[k].list] = static_cast<std::uint32_t>(k);
        } else if (s.room_index) {
            (*s.room_index)[s.rooms[at].list] = static_cast<std::uint32_t>(at);
        }
    }

    // Takes a membership out of its list: a pending one is a count; a
    // delivered one is swapped with the last member, which is told its new
    // position. @returns true if the list is now empty.
    bool remove(const membership& m)
    {
        member_list& list = m.list->second;
        if (m.pos == pending_pos) {
            --list.pending;
            return list.empty();
        }
        const slot_index moved = list.members.back();
        list.members[m.pos] = moved;
        list.members.pop_back();
        if (m.pos < list.members.size()) {
            slot& other = slots_[moved];
            if (other.all.list == m.list)
                other.all.pos = m.pos;
            else if (other.user.list == m.list)
                other.user.pos = m.pos;
            else if (auto* r = room_membership(other, m.list))
                r->pos = m.pos;
        }
        return list.empty();
    }

    // Lookup by view without allocating: the key buffer keeps its capacity.
    list_node* lookup(list_map& map, std::string_view name) const
    {
        key_.assign(name.data(), name.size());
        auto it = map.find(key_);
        return it == map.end() ? nullptr : &*it;
    }
    const list_node* lookup(const list_map& map, std::string_view name) const
    {
        return lookup(const_cast<list_map&>(map), name);
    }

    static std::size_t size_of(const list_node* node) noexcept
    {
        return node ? node->second.members.size() + node->second.pending : 0;
    }

    std::vector<target> targets_; // hot: read per delivery
    std::vector<slot> slots_;     // cold: read when memberships change
    std::vector<slot_index> free_;
    list_node all_{std::string(), member_list{}};
    list_map rooms_;
    list_map users_;
    mutable std::string key_;
};

} // namespace backplane::detail

#endif
