// backplane/backplane.hpp - the core and the in-memory policies in one include.
#ifndef BACKPLANE_BACKPLANE_HPP
#define BACKPLANE_BACKPLANE_HPP

#include <backplane/broker/memory.hpp>
#include <backplane/envelope.hpp>
#include <backplane/error.hpp>
#include <backplane/hub.hpp>
#include <backplane/locator/memory.hpp>
#include <backplane/names.hpp>
#include <backplane/policies.hpp>
#include <backplane/transport/memory.hpp>

namespace backplane {

/// A hub of in-memory connections on an in-process bus: tests, benchmarks,
/// and several "instances" in one process.
using memory_hub = basic_hub<transport::memory, broker::memory>;

} // namespace backplane

#endif
