// demo/json.hpp - a strict JSON reader and a writer for flat objects.
//
// The client protocol of backplane-instance only ever exchanges one JSON
// object whose values are scalars ({"op":"send","room":"r","text":"hi"}), so
// the reader takes exactly that, per RFC 8259 (nlohmann-json's parser), and
// refuses everything else with a message that says why: nested objects or
// arrays, duplicate keys, trailing bytes, invalid escapes, lone surrogates,
// invalid UTF-8, control characters in strings, more than `max_members`
// members. The writer is written by hand: it runs once per message for all
// its recipients, and it is about four times faster than building and
// dumping a nlohmann::json (benchmarks/bench_json.cpp).
#ifndef BACKPLANE_DEMO_JSON_HPP
#define BACKPLANE_DEMO_JSON_HPP

#include <nlohmann/json.hpp>

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

// nlohmann-json's SAX events, kept only while they describe one flat object:
// its parser enforces RFC 8259 (syntax, escapes, surrogates, UTF-8, trailing
// bytes); this refuses the rest before anything is built.
class flat_reader {
public:
    using json = nlohmann::json;

    flat_reader(flat_object& out, limits l) : out_(out), limits_(l) {}

    const std::string& error() const { return why_; }

    bool start_object(std::size_t)
    {
        if (started_)
            return refuse("nested objects are not accepted");
        started_ = true;
        return true;
    }
    bool key(json::string_t& k)
    {
        for (const auto& m : out_.members)
            if (m.first == k)
                return refuse("duplicate key \"" + k + "\"");
        if (out_.members.size() == limits_.max_members)
            return refuse("too many members");
        out_.members.emplace_back(std::move(k), value{});
        return true;
    }
    bool end_object() { return true; }
    bool start_array(std::size_t) { return refuse("arrays are not accepted"); }
    bool end_array() { return true; }

    bool null() { return scalar(value::kind::null, "null"); }
    bool boolean(bool b) { return scalar(value::kind::boolean, b ? "true" : "false"); }
    bool number_integer(json::number_integer_t n) { return scalar(value::kind::number, std::to_string(n)); }
    bool number_unsigned(json::number_unsigned_t n) { return scalar(value::kind::number, std::to_string(n)); }
    bool number_float(json::number_float_t, const json::string_t& text) { return scalar(value::kind::number, text); }
    bool string(json::string_t& s) { return scalar(value::kind::string, std::move(s)); }
    bool binary(json::binary_t&) { return refuse("binary values are not JSON"); } // never from JSON text

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e)
    {
        // "[json.exception.parse_error.101] parse error at ...; last read: '...'":
        // the reason alone. What was last read is the client's bytes, not
        // always UTF-8, and the reason goes back to the client as JSON.
        std::string_view what = e.what();
        if (const auto bracket = what.find("] "); bracket != std::string_view::npos)
            what.remove_prefix(bracket + 2);
        return refuse(std::string(what.substr(0, what.find("; last read: "))));
    }

private:
    bool scalar(value::kind k, std::string text)
    {
        if (!started_)
            return refuse("expected a JSON object");
        out_.members.back().second = value{k, std::move(text)};
        return true;
    }
    bool refuse(std::string why)
    {
        if (why_.empty())
            why_ = std::move(why);
        return false;
    }

    flat_object& out_;
    limits limits_;
    bool started_ = false;
    std::string why_;
};

} // namespace detail

/// Reads `in` as one flat object into `out`.
/// @returns an empty string on success, otherwise what is wrong with the input.
inline std::string parse(std::string_view in, flat_object& out, limits l = {})
{
    out.members.clear();
    detail::flat_reader r(out, l);
    if (nlohmann::json::sax_parse(in, &r, nlohmann::json::input_format_t::json, /*strict=*/true))
        return {};
    return r.error().empty() ? std::string("not a JSON object") : r.error();
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
