// demo/json.hpp - a small strict JSON reader and writer for flat objects.
//
// The client protocol of backplane-instance only ever exchanges one JSON
// object whose values are scalars ({"op":"send","room":"r","text":"hi"}), so
// this reads exactly that, per RFC 8259, and refuses everything else with a
// message that says why: nested objects or arrays, duplicate keys, trailing
// bytes, invalid escapes, lone surrogates, invalid UTF-8, control characters
// in strings, more than `max_members` members.
#ifndef BACKPLANE_DEMO_JSON_HPP
#define BACKPLANE_DEMO_JSON_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace demo::json {

/// A scalar value. Numbers keep their text.
struct value {
    enum class kind { string, number, boolean, null };
    kind type = kind::null;
    std::string text; ///< the decoded string, the number's text, "true"/"false"
};

/// A JSON object with scalar values only, in document order.
struct flat_object {
    std::vector<std::pair<std::string, value>> members;

    /// The member named `key`, or nullptr.
    const value* find(std::string_view key) const
    {
        for (const auto& m : members)
            if (m.first == key)
                return &m.second;
        return nullptr;
    }
};

/// Limits of the reader.
struct limits {
    std::size_t max_members = 16;
};

namespace detail {

class reader {
public:
    reader(std::string_view in, limits l) : p_(in.data()), end_(in.data() + in.size()), limits_(l) {}

    // Returns an empty string on success, else what is wrong.
    std::string parse(flat_object& out)
    {
        out.members.clear();
        skip_ws();
        if (!eat('{'))
            return "expected a JSON object";
        skip_ws();
        if (!eat('}')) {
            for (;;) {
                std::string key;
                skip_ws();
                if (peek() != '"')
                    return "expected a string key";
                if (auto e = string(key); !e.empty())
                    return e;
                for (const auto& m : out.members)
                    if (m.first == key)
                        return "duplicate key \"" + key + "\"";
                skip_ws();
                if (!eat(':'))
                    return "expected ':'";
                skip_ws();
                value v;
                if (auto e = scalar(v); !e.empty())
                    return e;
                if (out.members.size() == limits_.max_members)
                    return "too many members";
                out.members.emplace_back(std::move(key), std::move(v));
                skip_ws();
                if (eat('}'))
                    break;
                if (!eat(','))
                    return "expected ',' or '}'";
            }
        }
        skip_ws();
        if (p_ != end_)
            return "unexpected bytes after the object";
        return {};
    }

private:
    int peek() const { return p_ == end_ ? -1 : static_cast<unsigned char>(*p_); }
    bool eat(char c)
    {
        if (p_ != end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }
    void skip_ws()
    {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r'))
            ++p_;
    }
    bool literal(std::string_view word)
    {
        if (std::size_t(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
            return false;
        p_ += word.size();
        return true;
    }

    std::string scalar(value& v)
    {
        const int c = peek();
        if (c == '"') {
            v.type = value::kind::string;
            return string(v.text);
        }
        if (c == '{' || c == '[')
            return "nested objects and arrays are not accepted";
        for (const char* word : {"true", "false"})
            if (literal(word)) {
                v.type = value::kind::boolean;
                v.text = word;
                return {};
            }
        if (literal("null")) {
            v.type = value::kind::null;
            return {};
        }
        if (c == '-' || (c >= '0' && c <= '9'))
            return number(v);
        return "expected a value";
    }

    std::string number(value& v)
    {
        const char* start = p_;
        auto digits = [this] {
            const char* s = p_;
            while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
                ++p_;
            return p_ != s;
        };
        eat('-');
        if (eat('0')) {
            if (peek() >= '0' && peek() <= '9')
                return "leading zeros are not allowed";
        } else if (!digits()) {
            return "invalid number";
        }
        if (eat('.') && !digits())
            return "invalid number";
        if (peek() == 'e' || peek() == 'E') {
            ++p_;
            if (!eat('+'))
                eat('-');
            if (!digits())
                return "invalid number";
        }
        v.type = value::kind::number;
        v.text.assign(start, p_);
        return {};
    }

    static void put_utf8(std::string& out, std::uint32_t cp)
    {
        if (cp < 0x80) {
            out.push_back(char(cp));
        } else if (cp < 0x800) {
            out.push_back(char(0xc0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            out.push_back(char(0xe0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(char(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(char(0xf0 | (cp >> 18)));
            out.push_back(char(0x80 | ((cp >> 12) & 0x3f)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(char(0x80 | (cp & 0x3f)));
        }
    }

    bool hex4(std::uint32_t& v)
    {
        if (end_ - p_ < 4)
            return false;
        v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = *p_++;
            v <<= 4;
            if (c >= '0' && c <= '9') v |= std::uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f') v |= std::uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= std::uint32_t(c - 'A' + 10);
            else return false;
        }
        return true;
    }

    // One UTF-8 sequence starting at p_, copied to `out`; false if invalid
    // (overlong, surrogate, above U+10FFFF, truncated).
    bool utf8(std::string& out)
    {
        const auto b0 = static_cast<unsigned char>(*p_);
        int n;
        std::uint32_t cp, min;
        if (b0 >= 0xc2 && b0 <= 0xdf) { n = 1; cp = b0 & 0x1f; min = 0x80; }
        else if ((b0 & 0xf0) == 0xe0) { n = 2; cp = b0 & 0x0f; min = 0x800; }
        else if (b0 >= 0xf0 && b0 <= 0xf4) { n = 3; cp = b0 & 0x07; min = 0x10000; }
        else return false;
        if (end_ - p_ < n + 1)
            return false;
        for (int i = 1; i <= n; ++i) {
            const auto b = static_cast<unsigned char>(p_[i]);
            if ((b & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        out.append(p_, std::size_t(n + 1));
        p_ += n + 1;
        return true;
    }

    std::string string(std::string& out)
    {
        out.clear();
        ++p_; // the opening quote
        for (;;) {
            if (p_ == end_)
                return "unterminated string";
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                ++p_;
                return {};
            }
            if (c < 0x20)
                return "control character in a string";
            if (c >= 0x80) {
                if (!utf8(out))
                    return "invalid UTF-8 in a string";
                continue;
            }
            ++p_;
            if (c != '\\') {
                out.push_back(char(c));
                continue;
            }
            if (p_ == end_)
                return "unterminated string";
            switch (*p_++) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                std::uint32_t cp;
                if (!hex4(cp))
                    return "invalid \\u escape";
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return "lone low surrogate in \\u escape";
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    std::uint32_t lo;
                    if (!literal("\\u") || !hex4(lo) || lo < 0xdc00 || lo > 0xdfff)
                        return "lone high surrogate in \\u escape";
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(out, cp);
                break;
            }
            default: return "invalid escape in a string";
            }
        }
    }

    const char* p_;
    const char* end_;
    limits limits_;
};

} // namespace detail

/// Reads `in` as one flat object into `out`.
/// @returns an empty string on success, otherwise what is wrong with the input.
inline std::string parse(std::string_view in, flat_object& out, limits l = {})
{
    return detail::reader(in, l).parse(out);
}

/// Appends `s` to `out` as a JSON string, quotes included. `s` must be valid
/// UTF-8 (it is passed through); quotes, backslashes and control characters
/// are escaped, and so are U+2028/U+2029 for the sake of JavaScript.
inline void write_string(std::string& out, std::string_view s)
{
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += "\\u00";
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 0xf]);
            } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80
                       && (static_cast<unsigned char>(s[i + 2]) & 0xfe) == 0xa8) {
                out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
                i += 2;
            } else {
                out.push_back(char(c));
            }
        }
    }
    out.push_back('"');
}

/// Builds a flat object member by member: `object o(out); o.add("k", "v");`.
class object_writer {
public:
    explicit object_writer(std::string& out) : out_(out) { out_.push_back('{'); }
    object_writer(const object_writer&) = delete;
    object_writer& operator=(const object_writer&) = delete;
    ~object_writer() { out_.push_back('}'); }

    object_writer& add(std::string_view key, std::string_view text)
    {
        begin(key);
        write_string(out_, text);
        return *this;
    }
    object_writer& add_number(std::string_view key, std::uint64_t n)
    {
        begin(key);
        out_ += std::to_string(n);
        return *this;
    }
    /// A literal value: true, false or null.
    object_writer& add_literal(std::string_view key, std::string_view literal)
    {
        begin(key);
        out_ += literal;
        return *this;
    }

private:
    void begin(std::string_view key)
    {
        if (!first_)
            out_.push_back(',');
        first_ = false;
        write_string(out_, key);
        out_.push_back(':');
    }

    std::string& out_;
    bool first_ = true;
};

} // namespace demo::json

#endif
