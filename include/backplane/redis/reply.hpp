// backplane/redis/reply.hpp - a Redis reply as a plain value.
#ifndef BACKPLANE_REDIS_REPLY_HPP
#define BACKPLANE_REDIS_REPLY_HPP

#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace backplane::redis {

/// One reply (RESP2). Integer and nil replies cost no allocation.
struct reply {
    enum class kind { nil, status, error, integer, string, array };

    kind type = kind::nil;
    std::int64_t integer = 0;     ///< kind::integer
    std::string text;             ///< kind::status, kind::error, kind::string
    std::vector<reply> elements;  ///< kind::array

    bool is_error() const noexcept { return type == kind::error; }
};

/// Called once per command, on the connection's executor: `ec` is empty on a
/// normal reply, error::server_error on an error reply (whose text is in
/// `r.text`), or the reason the reply never came (`r` is then nil).
using reply_handler = std::function<void(std::error_code ec, const reply& r)>;

/// Called once when a command whose reply is not needed (a PUBLISH, a PING
/// barrier) completes: `ec` says how.
using done_handler = std::function<void(std::error_code ec)>;

} // namespace backplane::redis

#endif
