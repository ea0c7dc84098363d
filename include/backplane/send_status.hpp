// backplane/send_status.hpp - what a transport says of one send.
#ifndef BACKPLANE_SEND_STATUS_HPP
#define BACKPLANE_SEND_STATUS_HPP

namespace backplane {

/// The outcome of handing one frame to one connection.
enum class send_status {
    ok,           ///< queued or written
    backpressure, ///< queued, but the connection's outbound buffer is above its mark
    dropped,      ///< not delivered: the connection is gone or was closed for it
};

} // namespace backplane

#endif
