// backplane/redis/cluster_map.hpp - which node of a Redis Cluster serves
// each slot, and where a redirection points.
//
//   auto map = redis::slot_map::from_cluster_slots(reply);   // CLUSTER SLOTS
//   if (map) { const redis::node_address& to = map->master(redis::hash_slot(channel)); ... }
//   if (auto r = redis::parse_redirect(reply.text)) { ...r->ask, r->slot, r->to... }
//
// A slot_map is read from the reply of CLUSTER SLOTS (RESP2: one entry per
// range of slots, [first, last, [host, port, id, ...], replicas...]); a
// range's first node is its master. A map that leaves a slot unserved is
// refused (std::nullopt): the cluster is not ready, ask again. A node that
// answers with an empty host is named by the address the map was read from
// (Redis does so for the node that answers, when it does not know its own).
//
// parse_redirect reads the error replies a node gives for a slot it does
// not serve: "MOVED <slot> <host>:<port>" (the slot lives there now: update
// the map) and "ASK <slot> <host>:<port>" (during a migration: ask there
// once, after ASKING, and keep the map).
//
// No I/O; valid C++17 and C++20.
#ifndef BACKPLANE_REDIS_CLUSTER_MAP_HPP
#define BACKPLANE_REDIS_CLUSTER_MAP_HPP

#include <backplane/redis/reply.hpp>
#include <backplane/redis/slot.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backplane::redis {

/// A node's address.
struct node_address {
    std::string host;
    std::uint16_t port = 0;

    friend bool operator==(const node_address& a, const node_address& b)
    {
        return a.port == b.port && a.host == b.host;
    }
    friend bool operator!=(const node_address& a, const node_address& b) { return !(a == b); }
};

/// Hashes a node_address, for maps keyed by node.
struct node_hash {
    std::size_t operator()(const node_address& n) const
    {
        return std::hash<std::string>()(n.host) ^ (std::size_t(n.port) << 1);
    }
};

/// A redirection: MOVED or ASK.
struct redirect {
    bool ask = false;     ///< ASK (once, during a migration); else MOVED
    std::uint16_t slot = 0;
    node_address to;
};

/// Reads "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381"; nullopt
/// for any other text.
inline std::optional<redirect> parse_redirect(std::string_view text)
{
    redirect r;
    if (text.rfind("MOVED ", 0) == 0)
        text.remove_prefix(6);
    else if (text.rfind("ASK ", 0) == 0) {
        r.ask = true;
        text.remove_prefix(4);
    } else
        return std::nullopt;
    const auto space = text.find(' ');
    const auto colon = text.rfind(':');
    if (space == std::string_view::npos || colon == std::string_view::npos || colon < space)
        return std::nullopt;
    unsigned slot = 0, port = 0;
    const auto number = [](std::string_view s, unsigned& out, unsigned max) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc() && end == s.data() + s.size() && !s.empty() && out <= max;
    };
    if (!number(text.substr(0, space), slot, slot_count - 1) || !number(text.substr(colon + 1), port, 65535))
        return std::nullopt;
    r.slot = static_cast<std::uint16_t>(slot);
    r.to.host = std::string(text.substr(space + 1, colon - space - 1));
    r.to.port = static_cast<std::uint16_t>(port);
    return r;
}

/// The master serving each slot.
class slot_map {
public:
    /// From a CLUSTER SLOTS reply read from `asked`; nullopt if it is
    /// malformed or leaves a slot unserved.
    static std::optional<slot_map> from_cluster_slots(const reply& r, const node_address& asked = {})
    {
        if (r.type != reply::kind::array)
            return std::nullopt;
        slot_map map;
        std::vector<bool> served(slot_count, false);
        for (const auto& range : r.elements) {
            if (range.type != reply::kind::array || range.elements.size() < 3)
                return std::nullopt;
            const auto& first = range.elements[0];
            const auto& last = range.elements[1];
            const auto& master = range.elements[2];
            if (first.type != reply::kind::integer || last.type != reply::kind::integer || first.integer < 0
                || last.integer < first.integer || last.integer >= slot_count || master.type != reply::kind::array
                || master.elements.size() < 2 || master.elements[0].type != reply::kind::string
                || master.elements[1].type != reply::kind::integer || master.elements[1].integer <= 0
                || master.elements[1].integer > 65535)
                return std::nullopt;
            node_address node{master.elements[0].text, static_cast<std::uint16_t>(master.elements[1].integer)};
            if (node.host.empty())
                node.host = asked.host;
            const auto index = map.index_of(node);
            for (auto s = first.integer; s <= last.integer; ++s) {
                map.owner_[static_cast<std::size_t>(s)] = index;
                served[static_cast<std::size_t>(s)] = true;
            }
        }
        for (const bool s : served)
            if (!s)
                return std::nullopt;
        return map;
    }

    /// The master that serves `slot`.
    const node_address& master(std::uint16_t slot) const { return masters_.at(owner_.at(slot)); }
    /// Every node named as a master, once each (after a move, one may serve
    /// no slot any more).
    const std::vector<node_address>& masters() const noexcept { return masters_; }

    /// After a MOVED: `slot` lives at `to` now.
    void move(std::uint16_t slot, const node_address& to) { owner_.at(slot) = index_of(to); }

private:
    std::uint16_t index_of(const node_address& node)
    {
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (masters_[i] == node)
                return static_cast<std::uint16_t>(i);
        masters_.push_back(node);
        return static_cast<std::uint16_t>(masters_.size() - 1);
    }

    std::vector<node_address> masters_;
    std::array<std::uint16_t, slot_count> owner_{};
};

} // namespace backplane::redis

#endif
