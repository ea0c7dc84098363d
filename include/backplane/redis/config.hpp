// backplane/redis/config.hpp - where a Redis server is and how to log in.
//
// A `config` is usually read from a URL:
//   redis://[[user]:password@]host[:port][/db]   TCP; port 6379 and db 0 by default
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
// A password alone authenticates with `AUTH password` (requirepass or the
// default user); a user and a password with `AUTH user password` (ACL).
// User and password may be percent-encoded (%40 for '@', %3A for ':').
#ifndef BACKPLANE_REDIS_CONFIG_HPP
#define BACKPLANE_REDIS_CONFIG_HPP

#include <backplane/detail/url.hpp>
#include <backplane/error.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace backplane::redis {

/// How to reach and log in to one Redis server.
struct config {
    /// Empty: TCP to host:port; otherwise the path of a Unix socket.
    std::string unix_path;
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    /// ACL user; empty: `AUTH password` alone when a password is set.
    std::string user;
    /// Empty: no AUTH.
    std::string password;
    /// The database SELECTed after connecting (0: no SELECT).
    int database = 0;

    /// A URL that names this server, without the password (for logs).
    std::string describe() const
    {
        if (!unix_path.empty())
            return "unix://" + unix_path;
        return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(database);
    }
};

namespace detail {

// A decimal number in [min, max]; false otherwise (no sign, no spaces).
inline bool parse_number(std::string_view s, long min, long max, long& out) noexcept
{
    if (s.empty() || s.size() > 9)
        return false;
    long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    if (v < min || v > max)
        return false;
    out = v;
    return true;
}

// "user:password" or ":password" or "password" (as redis-cli reads them).
inline bool parse_userinfo(std::string_view info, config& c)
{
    const auto colon = info.find(':');
    using backplane::detail::percent_decode;
    if (colon == std::string_view::npos)
        return percent_decode(info, c.password) && !c.password.empty();
    return percent_decode(info.substr(0, colon), c.user)
           && percent_decode(info.substr(colon + 1), c.password) && !c.password.empty();
}

} // namespace detail

/// Reads a redis:// or unix:// URL (see the top of this file).
/// @returns the config, or a default one with `ec` set to error::invalid_url.
inline config parse_url(std::string_view url, std::error_code& ec)
{
    ec = {};
    config c;
    const auto fail = [&ec] {
        ec = error::invalid_url;
        return config{};
    };
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos)
        return fail();
    const auto scheme = url.substr(0, scheme_end);
    auto rest = url.substr(scheme_end + 3);

    // Credentials: up to the last '@' (a password may contain '@' if encoded)
    // before a socket's path, which may hold '@' too.
    const auto login = scheme == "unix" ? rest.substr(0, rest.find('/')) : rest;
    if (const auto at = login.rfind('@'); at != std::string_view::npos) {
        if (!detail::parse_userinfo(rest.substr(0, at), c))
            return fail();
        rest.remove_prefix(at + 1);
    }

    if (scheme == "unix") {
        // unix:///path[?db=N]
        std::string_view query;
        if (const auto q = rest.find('?'); q != std::string_view::npos) {
            query = rest.substr(q + 1);
            rest = rest.substr(0, q);
        }
        if (rest.size() < 2 || rest.front() != '/')
            return fail();
        c.unix_path = std::string(rest);
        if (!query.empty()) {
            long db = 0;
            if (query.substr(0, 3) != "db=" || !detail::parse_number(query.substr(3), 0, 1 << 20, db))
                return fail();
            c.database = static_cast<int>(db);
        }
        return c;
    }
    if (scheme != "redis")
        return fail();

    // host[:port][/db]
    std::string_view authority = rest, path;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        authority = rest.substr(0, slash);
        path = rest.substr(slash + 1);
    }
    std::string_view host = authority, port;
    if (!authority.empty() && authority.front() == '[') { // [::1]:6379
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return fail();
        host = authority.substr(1, close - 1);
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return fail();
            port = after.substr(1);
            if (port.empty())
                return fail();
        }
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (port.empty())
            return fail();
    }
    if (host.empty() || host.find_first_of(" /?#@") != std::string_view::npos)
        return fail();
    c.host = std::string(host);
    if (!port.empty()) {
        long p = 0;
        if (!detail::parse_number(port, 1, 65535, p))
            return fail();
        c.port = static_cast<std::uint16_t>(p);
    }
    if (!path.empty()) {
        long db = 0;
        if (!detail::parse_number(path, 0, 1 << 20, db))
            return fail();
        c.database = static_cast<int>(db);
    }
    return c;
}

/// Reads a URL at setup.
/// @throws std::invalid_argument on a malformed URL (the message does not
/// repeat the URL, which may hold a password).
inline config parse_url(std::string_view url)
{
    std::error_code ec;
    auto c = parse_url(url, ec);
    if (ec)
        throw std::invalid_argument(
            "backplane: invalid Redis URL (expected redis://[user:password@]host:port[/db] or unix:///path)");
    return c;
}

} // namespace backplane::redis

#endif
