// backplane/auth/jwt.hpp - who a client is, from a signed token (JWT, RFC 7519)
// that it presents in its WebSocket handshake.
//
// A client that could name itself (`?user=alice`) could read alice's direct
// messages. Instead the application's login service signs a token saying who
// the client is, and every instance verifies it with the key alone, no round
// trip: `sub` is the user, `exp` when the token stops being valid, and an
// optional `rooms` claim lists the rooms (or patterns, "team-*") the user may
// join and send to.
//
// The algorithm is the operator's choice, never the token's: a token whose
// header names another is refused. Otherwise a token signed with HS256 and
// the RS256 public key as its secret would pass (algorithm confusion), as
// would one with "alg":"none".
//
// Signatures are checked by libjwt (Debian's libjwt-dev, 1.10, on OpenSSL);
// the claims are checked here, since that version does not check `exp`.
// Link backplane::jwt.
#ifndef BACKPLANE_AUTH_JWT_HPP
#define BACKPLANE_AUTH_JWT_HPP

#include <backplane/error.hpp>
#include <backplane/http.hpp>
#include <backplane/names.hpp>

#include <jwt.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace backplane::auth {

/// The signature algorithms a verifier accepts, one at a time.
enum class algorithm {
    hs256, ///< HMAC-SHA256 with a shared secret (at least 32 bytes)
    rs256, ///< RSA PKCS#1 v1.5 with SHA-256; the key is a PEM public key
    es256, ///< ECDSA P-256 with SHA-256; the key is a PEM public key
};

/// Settings of a verifier.
struct jwt_options {
    algorithm alg = algorithm::hs256;
    /// HS256: the secret; RS256, ES256: the public key, PEM.
    std::string key;
    /// Non-empty: the token's `iss` must be this.
    std::string issuer;
    /// Non-empty: the token's `aud` must be, or list, this.
    std::string audience;
    /// Clock difference tolerated between the signer and this host, for
    /// `exp` and `nbf`.
    std::chrono::seconds leeway{30};
    /// Longest token accepted, in bytes; a longer one is refused unread.
    std::size_t max_length = 8 * 1024;
    /// Longest user name accepted in `sub` (see validate_name).
    std::size_t max_name_length = default_max_name_length;
};

/// What a verified token says.
struct identity {
    /// `sub`: a valid name.
    std::string user;
    /// `exp`: past it, the connection should be closed unless the client
    /// has presented a newer token.
    std::chrono::system_clock::time_point expires;
    /// Without a `rooms` claim the user may enter every room.
    bool every_room = true;
    /// The `rooms` claim: names, or patterns where '*' stands for any run
    /// of characters (a name cannot hold '*', so a pattern is never a room).
    std::vector<std::string> rooms;

    /// Whether the user may join `room` and send to it.
    bool may_enter(std::string_view room) const
    {
        if (every_room)
            return true;
        for (const auto& pattern : rooms)
            if (matches(pattern, room))
                return true;
        return false;
    }

    /// Whether `name` matches `pattern` ('*': any run of characters).
    static bool matches(std::string_view pattern, std::string_view name) noexcept
    {
        // Greedy with one backtrack point: linear in practice, quadratic at worst.
        std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
        while (n < name.size()) {
            if (p < pattern.size() && pattern[p] == '*') {
                star = p++;
                mark = n;
            } else if (p < pattern.size() && pattern[p] == name[n]) {
                ++p;
                ++n;
            } else if (star != std::string_view::npos) {
                p = star + 1;
                n = ++mark;
            } else {
                return false;
            }
        }
        while (p < pattern.size() && pattern[p] == '*')
            ++p;
        return p == pattern.size();
    }
};

/// The WebSocket subprotocol a server answers with when a browser carries
/// its token as one ("bearer.TOKEN", offered beside this one): a browser
/// that offers subprotocols drops a handshake answered without one.
inline constexpr std::string_view subprotocol = "backplane";

namespace detail {

// The first entry of the handshake's Sec-WebSocket-Protocol list (spaces
// trimmed) for which `pred` is true; empty if none.
template <class Pred>
std::string_view find_subprotocol(const http_request& req, Pred pred)
{
    std::string_view offered = req.header("Sec-WebSocket-Protocol");
    while (!offered.empty()) {
        const auto comma = offered.find(',');
        auto item = offered.substr(0, comma);
        offered = comma == std::string_view::npos ? std::string_view{} : offered.substr(comma + 1);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        if (pred(item))
            return item;
    }
    return {};
}

} // namespace detail

/// Whether the handshake offers the subprotocol `name`: then the answer
/// must name it (Sec-WebSocket-Protocol), or a browser drops the connection.
inline bool offers_subprotocol(const http_request& req, std::string_view name = subprotocol)
{
    return !detail::find_subprotocol(req, [&](std::string_view item) { return item == name; }).empty();
}

/// The token a handshake carries, from the first of: `Authorization: Bearer
/// TOKEN` (any client but a browser), a `Sec-WebSocket-Protocol` entry
/// "bearer.TOKEN" (browsers, which cannot set headers), the query parameter
/// `token` (browsers too; it may end up in access logs). nullopt if none.
inline std::optional<std::string> handshake_token(const http_request& req)
{
    constexpr std::string_view bearer = "Bearer ";
    const auto authorization = req.header("Authorization");
    if (authorization.size() > bearer.size() && authorization.substr(0, bearer.size()) == bearer)
        return std::string(authorization.substr(bearer.size()));
    constexpr std::string_view prefix = "bearer.";
    const auto offered = detail::find_subprotocol(req, [&](std::string_view item) {
        return item.size() > prefix.size() && item.substr(0, prefix.size()) == prefix;
    });
    if (!offered.empty())
        return std::string(offered.substr(prefix.size()));
    return req.query_parameter("token");
}

/// Verifies tokens with one algorithm and one key. Cheap to copy; no state
/// changes after construction, so one verifier serves every connection.
class jwt_verifier {
public:
    /// @throws std::invalid_argument if the key is empty, or shorter than
    /// 32 bytes for HS256 (a short secret can be found by brute force).
    explicit jwt_verifier(jwt_options options) : options_(std::move(options))
    {
        if (options_.key.empty())
            throw std::invalid_argument("backplane::auth::jwt_verifier: empty key");
        if (options_.alg == algorithm::hs256 && options_.key.size() < 32)
            throw std::invalid_argument("backplane::auth::jwt_verifier: an HS256 secret needs at least 32 bytes");
    }

    /// Checks `token`'s signature and claims at `now`, and fills `out`.
    /// @returns error::token_expired if `exp` has passed, error::invalid_token
    /// for anything else wrong (signature, algorithm, a missing or malformed
    /// claim, `nbf` in the future, `iss` or `aud` not as configured).
    std::error_code verify(std::string_view token, identity& out,
                           std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const
    {
        if (token.empty() || token.size() > options_.max_length || token.find('\0') != std::string_view::npos)
            return error::invalid_token;
        const std::string text(token); // libjwt reads a C string
        jwt_t* raw = nullptr;
        if (::jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(options_.key.data()),
                         static_cast<int>(options_.key.size())) != 0)
            return error::invalid_token;
        const std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, ::jwt_free);
        if (::jwt_get_alg(jwt.get()) != libjwt_algorithm())
            return error::invalid_token;

        const char* sub = ::jwt_get_grant(jwt.get(), "sub");
        if (!sub || validate_name(sub, options_.max_name_length))
            return error::invalid_token;
        long exp = 0, nbf = 0;
        if (!integer_claim(jwt.get(), "exp", exp) || !fits_clock(exp))
            return error::invalid_token;
        const bool has_nbf = integer_claim(jwt.get(), "nbf", nbf);
        if (has_nbf && !fits_clock(nbf))
            return error::invalid_token;
        const auto seconds = [](long s) { return std::chrono::system_clock::time_point(std::chrono::seconds(s)); };
        if (has_nbf && seconds(nbf) > now + options_.leeway)
            return error::invalid_token;
        if (!options_.issuer.empty() && !equals(::jwt_get_grant(jwt.get(), "iss"), options_.issuer))
            return error::invalid_token;
        if (!options_.audience.empty() && !has_audience(jwt.get()))
            return error::invalid_token;

        identity id;
        id.user = sub;
        id.expires = seconds(exp);
        if (auto rooms = grant_json(jwt.get(), "rooms")) {
            id.every_room = false;
            if (!string_array(*rooms, id.rooms))
                return error::invalid_token;
        }
        if (id.expires + options_.leeway <= now)
            return error::token_expired;
        out = std::move(id);
        return {};
    }

    const jwt_options& options() const noexcept { return options_; }

private:
    jwt_alg_t libjwt_algorithm() const noexcept
    {
        switch (options_.alg) {
        case algorithm::hs256: return JWT_ALG_HS256;
        case algorithm::rs256: return JWT_ALG_RS256;
        case algorithm::es256: return JWT_ALG_ES256;
        }
        return JWT_ALG_INVAL;
    }

    static bool equals(const char* claim, const std::string& expected)
    {
        return claim && expected == claim;
    }

    // An integer claim; false if absent or not an integer.
    static bool integer_claim(jwt_t* jwt, const char* name, long& out)
    {
        errno = 0;
        out = ::jwt_get_grant_int(jwt, name);
        return errno == 0;
    }

    // Whether a time claim (seconds since the epoch) is after the epoch and
    // before 2^33 (the year 2242): the clock counts nanoseconds in 64 bits.
    static bool fits_clock(long seconds) noexcept { return seconds > 0 && seconds < (1L << 33); }

    // The claim as JSON text, as libjwt writes it (compact); nullopt if absent.
    static std::optional<std::string> grant_json(jwt_t* jwt, const char* name)
    {
        const std::unique_ptr<char, void (*)(void*)> json(::jwt_get_grants_json(jwt, name), std::free);
        if (!json)
            return std::nullopt;
        return std::string(json.get());
    }

    // `aud`: a string, or an array of strings holding the audience.
    bool has_audience(jwt_t* jwt) const
    {
        if (equals(::jwt_get_grant(jwt, "aud"), options_.audience))
            return true;
        std::vector<std::string> list;
        const auto json = grant_json(jwt, "aud");
        if (!json || !string_array(*json, list))
            return false;
        for (const auto& a : list)
            if (a == options_.audience)
                return true;
        return false;
    }

    // Reads a compact JSON array of strings (["a","b-*"]). Escapes other
    // than \" and \\ would stand for characters no name may hold, so an
    // array that needs them is refused, as is a string that is neither a
    // valid name nor a pattern of one.
    bool string_array(std::string_view json, std::vector<std::string>& out) const
    {
        if (json.size() < 2 || json.front() != '[' || json.back() != ']')
            return false;
        json = json.substr(1, json.size() - 2);
        while (!json.empty()) {
            if (json.front() != '"')
                return false;
            std::string item;
            std::size_t i = 1;
            for (; i < json.size() && json[i] != '"'; ++i) {
                if (json[i] == '\\') {
                    if (++i == json.size() || (json[i] != '"' && json[i] != '\\'))
                        return false;
                }
                item.push_back(json[i]);
            }
            if (i == json.size() || !valid_pattern(item))
                return false;
            out.push_back(std::move(item));
            json.remove_prefix(i + 1);
            if (!json.empty()) {
                if (json.front() != ',' || json.size() == 1)
                    return false;
                json.remove_prefix(1);
            }
        }
        return true;
    }

    // A name, or a name with '*' in place of some of its runs.
    bool valid_pattern(const std::string& pattern) const
    {
        std::string probe = pattern;
        for (auto& c : probe)
            if (c == '*')
                c = 'x';
        return !validate_name(probe, options_.max_name_length);
    }

    jwt_options options_;
};

} // namespace backplane::auth

#endif
