// backplane/redis/inbox.hpp - the offline inbox of direct messages, in Redis.
//
// Messages kept for a user who has no connection anywhere go to the stream
// `inbox:{user}` (inbox_options::key), bounded with MAXLEN ~, and in time:
// each write sets the key's expiry to the broker's idle_expiry, so the inbox
// of a user who never comes (a made-up name) goes away on its own. Both
// Redis brokers keep it the same way, one entry a message:
//   d   the envelope, as it would have crossed the broker (kind user)
//   i   the message's id in the user channel's stream, where it has one
//       (broker::redis_streams, whose replay of that stream has it too);
//       absent, the entry's own id is the message's id
// A user's first connection reads it a page at a time (read_command) and
// removes each page with remove_script once the page was written to the
// connection: a connection lost meanwhile leaves the page for the next. An
// inbox emptied is deleted, not left empty (XDEL leaves an empty stream key
// behind).
#ifndef BACKPLANE_REDIS_INBOX_HPP
#define BACKPLANE_REDIS_INBOX_HPP

#include <backplane/policies.hpp>
#include <backplane/redis/reply.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace backplane::redis::inbox {

/// Where a broker keeps a user's messages while the user is offline.
struct options {
    /// A user's inbox stream; "{user}" is replaced by the user's name.
    std::string key = "inbox:{user}";
    /// Entries kept per inbox (XADD MAXLEN ~).
    std::size_t max_length = 1000;
    /// A key that says a user has connected, "{user}" replaced: written by
    /// the broker's mark_known() (expiring as the inbox does), and with it
    /// messages are kept only for a user so marked. Behind signed tokens
    /// only real users connect, so a DM to a name nobody has connected as
    /// writes nothing. Empty: messages are kept for any name.
    std::string known_key;
};

inline constexpr std::string_view data_field = "d";
inline constexpr std::string_view id_field = "i";

/// The command that reads at most `count` entries of the inbox `key` after
/// the entry `after` (empty: from the first).
inline std::vector<std::string> read_command(std::string key, std::string_view after, std::size_t count)
{
    return {"XRANGE", std::move(key), after.empty() ? std::string("-") : "(" + std::string(after), "+", "COUNT",
            std::to_string(count)};
}

/// KEYS[1] the inbox; ARGV the entries to remove. The inbox goes with its
/// last entry. Returns how many were there.
inline constexpr std::string_view remove_script = R"lua(
local n = 0
for _, id in ipairs(ARGV) do n = n + redis.call('XDEL', KEYS[1], id) end
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return n
)lua";

/// KEYS[1] the inbox, KEYS[2] (optional) the user's known key; ARGV[1] the
/// most entries kept (MAXLEN ~), ARGV[2] the expiry in seconds (0: none),
/// ARGV[3] the data. One script, so that no inbox is ever left without its
/// expiry (a connection lost between an XADD and its EXPIRE would). Returns
/// nil, writing nothing, for a user not known.
inline constexpr std::string_view store_script = R"lua(
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[3])
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return id
)lua";

/// The command that marks `user` known: `key` is its known key, `expiry`
/// the inbox's, in seconds ("0": none).
inline std::vector<std::string> mark_command(std::string key, const std::string& expiry)
{
    if (expiry == "0")
        return {"SET", std::move(key), "1"};
    return {"SET", std::move(key), "1", "EX", expiry};
}

/// The value of `field` in a stream entry's field list, or nullptr.
inline const std::string* field_of(const reply& fields, std::string_view field)
{
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        if (fields.elements[i].text == field)
            return &fields.elements[i + 1].text;
    return nullptr;
}

/// The messages in an XRANGE of an inbox. An entry without data, written by
/// something else, is skipped.
inline std::vector<offline_message> entries(const reply& r)
{
    std::vector<offline_message> out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) {
        if (e.elements.size() != 2)
            continue;
        const auto* data = field_of(e.elements[1], data_field);
        if (!data)
            continue;
        const auto* id = field_of(e.elements[1], id_field);
        out.push_back({e.elements[0].text, id ? *id : e.elements[0].text, *data, id != nullptr});
    }
    return out;
}

} // namespace backplane::redis::inbox

#endif
