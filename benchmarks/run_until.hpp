// benchmarks/run_until.hpp - what the Redis benchmarks wait with: an
// io_context run until a condition holds, or a deadline passes.
#ifndef BACKPLANE_BENCHMARKS_RUN_UNTIL_HPP
#define BACKPLANE_BENCHMARKS_RUN_UNTIL_HPP

#include <asio/io_context.hpp>

#include <chrono>

namespace backplane::bench {

/// Runs `io` until `ready()`; false if `timeout` passed first.
template <class Ready>
bool run_until(asio::io_context& io, Ready ready, std::chrono::milliseconds timeout = std::chrono::seconds(30))
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    io.restart();
    while (!ready()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        io.run_one_for(std::chrono::milliseconds(5));
    }
    return true;
}

} // namespace backplane::bench

#endif
