// backplane/names.hpp - validation of room and user names.
//
// A name is spliced into a channel name ("chat:room:{room}"), so a name that
// holds ':' could reach another tier ("x:y" in "chat:room:x:y"), and one that
// holds '*', '?' or '[' ']' would act as a pattern wherever channels are
// matched (PSUBSCRIBE, PUBSUB CHANNELS, keyspace events). Such names are
// refused before anything reaches the broker.
#ifndef BACKPLANE_NAMES_HPP
#define BACKPLANE_NAMES_HPP

#include <backplane/error.hpp>

#include <cstddef>
#include <string_view>
#include <system_error>

namespace backplane {

/// The default limit on the length of a room or user name, in bytes.
inline constexpr std::size_t default_max_name_length = 128;

/// Returns true if `c` may appear in a room or user name.
constexpr bool is_name_char(unsigned char c) noexcept
{
    if (c < 0x20 || c == 0x7f) // control characters, including \t \n \r
        return false;
    switch (c) {
    case ' ': // whitespace; the other ASCII whitespace is control characters
    case ':': // tier separator
    case '*': case '?': case '[': case ']': // glob metacharacters
        return false;
    default:
        return true;
    }
}

/// Checks a room or user name.
/// @returns error::invalid_name if `name` is empty, longer than `max_length`
/// bytes, or holds a character for which is_name_char is false; otherwise an
/// empty error code.
inline std::error_code validate_name(
    std::string_view name, std::size_t max_length = default_max_name_length) noexcept
{
    if (name.empty() || name.size() > max_length)
        return error::invalid_name;
    for (char c : name)
        if (!is_name_char(static_cast<unsigned char>(c)))
            return error::invalid_name;
    return {};
}

} // namespace backplane

#endif
