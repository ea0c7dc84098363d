// backplane/detail/send_ring.hpp - many non-blocking sendmsg calls in one
// system call, through io_uring (liburing).
//
// A transport that writes to hundreds of sockets at the end of a turn pays
// one system call per socket with sendmsg(2); here they are queued as one
// batch of IORING_OP_SENDMSG entries and submitted together. Each entry
// carries MSG_DONTWAIT, so the kernel runs it at once and reports a full
// socket as -EAGAIN instead of waiting for room (the ring is only set up
// on a kernel that accepts IORING_SETUP_DEFER_TASKRUN: Linux 6.1 or later,
// which does so). Every result is known when `send` returns: the caller's
// buffers are free again.
//
// Built only where BACKPLANE_HAS_IO_URING is defined (the CMake target
// backplane::websocketpp defines it and links liburing when it finds
// liburing). Without it, or where the kernel or a seccomp filter refuses
// io_uring, `ready()` is false and the caller writes socket by socket.
//
// One thread only: the ring is set up by the first `ready()` call and
// belongs to that thread (IORING_SETUP_SINGLE_ISSUER), so call it from the
// thread that writes, not from a constructor that may run elsewhere.
#ifndef BACKPLANE_DETAIL_SEND_RING_HPP
#define BACKPLANE_DETAIL_SEND_RING_HPP

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>

#if defined(BACKPLANE_HAS_IO_URING)
#include <liburing.h>
#endif

namespace backplane::detail {

class send_ring {
public:
    /// Entries per submission: `send` takes at most this many.
    static constexpr std::size_t batch = 256;

    send_ring() = default;
    send_ring(const send_ring&) = delete;
    send_ring& operator=(const send_ring&) = delete;

#if defined(BACKPLANE_HAS_IO_URING)
    ~send_ring() { close(); }

    /// Whether batches can be sent; sets the ring up on the first call.
    bool ready()
    {
        if (state_ == untried) {
            // A failed submission of one entry must not stop the others
            // (SUBMIT_ALL); completions are reaped only here, by the one
            // thread that submits (SINGLE_ISSUER, DEFER_TASKRUN).
            const unsigned flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
            state_ = ::io_uring_queue_init(static_cast<unsigned>(batch), &ring_, flags) == 0 ? up : refused;
        }
        return state_ == up;
    }

    /// Sends `msgs[i]` on `fds[i]` for i < n (n <= batch) without blocking,
    /// after `ready()`. Returns how many of them (a prefix) were submitted:
    /// `results[i]` is the bytes written or -errno for those. Fewer than n
    /// only if the ring failed: it is then closed (entries left in it must
    /// never go out later), `ready()` is false from now on, and the caller
    /// writes the rest itself.
    std::size_t send(std::size_t n, const int* fds, const msghdr* msgs, ssize_t* results)
    {
        for (std::size_t i = 0; i < n; ++i) {
            io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
            ::io_uring_prep_sendmsg(sqe, fds[i], &msgs[i], MSG_DONTWAIT | MSG_NOSIGNAL);
            ::io_uring_sqe_set_data64(sqe, i);
            results[i] = -ECANCELED;
        }
        int submitted;
        do
            submitted = ::io_uring_submit_and_wait(&ring_, static_cast<unsigned>(n));
        while (submitted == -EINTR);
        const std::size_t taken = submitted > 0 ? static_cast<std::size_t>(submitted) : 0;
        // Non-blocking sends complete within the submission; the wait only
        // covers a kernel that would post some completions later.
        for (std::size_t got = reap(results); got < taken; got += reap(results)) {
            io_uring_cqe* cqe = nullptr;
            const int e = ::io_uring_wait_cqe(&ring_, &cqe);
            if (e < 0 && e != -EINTR) {
                close();
                return taken;
            }
        }
        if (taken < n)
            close();
        return taken;
    }

private:
    // Takes every completion there is; returns how many.
    std::size_t reap(ssize_t* results)
    {
        io_uring_cqe* cqe;
        unsigned head, count = 0;
        io_uring_for_each_cqe(&ring_, head, cqe)
        {
            results[::io_uring_cqe_get_data64(cqe)] = cqe->res;
            ++count;
        }
        ::io_uring_cq_advance(&ring_, count);
        return count;
    }

    void close()
    {
        if (state_ == up)
            ::io_uring_queue_exit(&ring_);
        state_ = refused;
    }

    io_uring ring_{};
    enum { untried, up, refused } state_ = untried;
#else
    bool ready() { return false; }
    std::size_t send(std::size_t, const int*, const msghdr*, ssize_t*) { return 0; }
#endif
};

} // namespace backplane::detail

#endif
