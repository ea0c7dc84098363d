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

/// Returns true if the ASCII byte `c` may appear in a room or user name.
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

/// Returns true if the code point `cp` (not ASCII) may appear in a name.
/// Refused: C1 controls, and the characters that let one name pass for
/// another when shown: bidirectional controls, zero-width characters, line
/// and paragraph separators, non-characters.
constexpr bool is_name_code_point(char32_t cp) noexcept
{
    return !(cp <= 0x9f                          // C1 controls
             || cp == 0x00a0                     // no-break space
             || cp == 0x061c                     // Arabic letter mark
             || cp == 0x1680                     // Ogham space mark
             || (cp >= 0x2000 && cp <= 0x200f)   // spaces, zero-width, LRM, RLM
             || (cp >= 0x2028 && cp <= 0x202f)   // line/paragraph separators, bidi embeddings, narrow space
             || (cp >= 0x205f && cp <= 0x206f)   // math space, word joiner, invisible operators, bidi isolates
             || cp == 0x3000                     // ideographic space
             || cp == 0xfeff                     // zero-width no-break space (BOM)
             || (cp >= 0xfff9 && cp <= 0xfffb)   // interlinear annotation
             || (cp >= 0xfdd0 && cp <= 0xfdef)   // non-characters
             || (cp & 0xfffe) == 0xfffe          // non-characters at the end of each plane
             || (cp >= 0xe0000 && cp <= 0xe007f)); // tags
}

namespace detail {

// Decodes one UTF-8 sequence at `s[i]`: its code point and its length, or
// a length of 0 if it is not well-formed (overlong, a surrogate, past
// U+10FFFF, truncated).
constexpr std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp) noexcept
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > s.size())
        return 0;
    cp = c & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (b(k) & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

} // namespace detail

/// Checks a room or user name.
/// @returns error::invalid_name if `name` is empty, longer than `max_length`
/// bytes, not valid UTF-8, or holds a character for which is_name_char or
/// is_name_code_point is false; otherwise an empty error code. A name
/// travels in every JSON frame that carries it: one that is not UTF-8 would
/// make every client that receives such a frame drop its connection.
inline std::error_code validate_name(std::string_view name, std::size_t max_length = default_max_name_length) noexcept
{
    if (name.empty() || name.size() > max_length)
        return error::invalid_name;
    for (std::size_t i = 0; i < name.size();) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x80) {
            if (!is_name_char(c))
                return error::invalid_name;
            ++i;
            continue;
        }
        char32_t cp = 0;
        const std::size_t n = detail::decode_utf8(name, i, cp);
        if (n == 0 || !is_name_code_point(cp))
            return error::invalid_name;
        i += n;
    }
    return {};
}

} // namespace backplane

#endif
