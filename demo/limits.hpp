// demo/limits.hpp - what the reference server refuses to one connection, so
// that a hostile client cannot hurt the others or grow the instance's memory
// without bound.
//
// Each limit has a flag (command_line.hpp), a counter in /metrics and a
// refusal the README lists. The decisions here take no socket and no clock
// of their own: the server passes the time in, and the tests step them.
#ifndef BACKPLANE_DEMO_LIMITS_HPP
#define BACKPLANE_DEMO_LIMITS_HPP

#include "protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace demo::limits {

/// What the limits refused, for /metrics. They only grow.
struct counters {
    std::uint64_t too_many_rooms = 0; ///< joins past the rooms per connection
};

// ---- Rooms ----------------------------------------------------------------------

/// The answer to a join past the hub's rooms per connection.
inline protocol::error too_many_rooms(std::size_t max)
{
    return {"too_many_rooms", "a connection may be in at most " + std::to_string(max) + " rooms"};
}

} // namespace demo::limits

#endif
