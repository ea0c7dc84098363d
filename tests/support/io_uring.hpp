// tests/support/io_uring.hpp - whether this kernel sets up an io_uring ring
// with the flags the WebSocket transport asks for (detail/send_ring.hpp):
// it may be too old, or io_uring may be disabled by sysctl or a seccomp
// filter. Asked with the bare system call, so that the answer does not come
// from the code under test.
#ifndef BACKPLANE_TESTS_SUPPORT_IO_URING_HPP
#define BACKPLANE_TESTS_SUPPORT_IO_URING_HPP

#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace backplane::test {

inline bool kernel_gives_send_ring()
{
    io_uring_params p{};
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    const long fd = ::syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0)
        return false;
    ::close(static_cast<int>(fd));
    return true;
}

} // namespace backplane::test

#endif
