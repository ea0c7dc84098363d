// backplane/redis/inbox.hpp - the offline inbox of direct messages.
//
// A direct message to a user who has no connection anywhere is appended to
// the stream `inbox:{user}`, bounded with MAXLEN ~. Two writers share the
// format: broker::redis_streams (a message on a user channel that no
// subscriber received) and presence::send_to_user (the seed design's
// Option B, for a user the map says is offline). One entry:
//   d   the envelope, as it would have crossed the broker (kind user)
//   i   the message's id where it has one elsewhere (its id in the user's
//       stream); absent, the entry's own id is the message's id
// Whoever reads the inbox takes it with take_script, which reads and
// deletes in one step, so two connections of one user never both get an
// entry.
#ifndef BACKPLANE_REDIS_INBOX_HPP
#define BACKPLANE_REDIS_INBOX_HPP

#include <backplane/detail/traits.hpp>
#include <backplane/redis/reply.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace backplane::redis::inbox {

inline constexpr std::string_view data_field = "d";
inline constexpr std::string_view id_field = "i";

/// Called once with the messages taken from an inbox (each entry's data an
/// envelope, its id the message's id), or an error.
using handler = std::function<void(std::error_code, std::vector<backplane::detail::history_entry>)>;

/// KEYS[1] the inbox; ARGV[1] the most entries to take, oldest first.
inline constexpr std::string_view take_script = R"lua(
local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[1])
for _, x in ipairs(e) do redis.call('XDEL', KEYS[1], x[1]) end
return e
)lua";

/// The value of `field` in a stream entry's field list, or nullptr.
inline const std::string* field_of(const reply& fields, std::string_view field)
{
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        if (fields.elements[i].text == field)
            return &fields.elements[i + 1].text;
    return nullptr;
}

/// The messages in take_script's reply (or an XRANGE of an inbox). An entry
/// without data, written by something else, is skipped.
inline std::vector<backplane::detail::history_entry> entries(const reply& r)
{
    std::vector<backplane::detail::history_entry> out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) {
        if (e.elements.size() != 2)
            continue;
        const auto* data = field_of(e.elements[1], data_field);
        if (!data)
            continue;
        const auto* id = field_of(e.elements[1], id_field);
        out.push_back({id ? *id : e.elements[0].text, *data});
    }
    return out;
}

} // namespace backplane::redis::inbox

#endif
