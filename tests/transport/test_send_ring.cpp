// detail::send_ring: many non-blocking sendmsg calls in one io_uring
// submission, over socket pairs.
#include <backplane/detail/send_ring.hpp>

#include "../support/io_uring.hpp"
#include "../support/skip.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <string>
#include <vector>

namespace {

struct socket_pair {
    int out = -1, in = -1;
    socket_pair()
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
        out = fds[0];
        in = fds[1];
    }
    ~socket_pair()
    {
        ::close(out);
        ::close(in);
    }
    std::string drain() const
    {
        std::string got;
        char buf[65536];
        for (ssize_t n; (n = ::recv(in, buf, sizeof buf, 0)) > 0;)
            got.append(buf, static_cast<std::size_t>(n));
        return got;
    }
};

// One message of two pieces, as the transport sends a frame's header and
// payload. It points into itself: it stays where it is made.
struct message {
    std::string head, body;
    iovec iov[2];
    msghdr m{};
    message(const message&) = delete;
    message(std::string h, std::string b) : head(std::move(h)), body(std::move(b))
    {
        iov[0] = {head.data(), head.size()};
        iov[1] = {body.data(), body.size()};
        m.msg_iov = iov;
        m.msg_iovlen = 2;
    }
};

#if defined(BACKPLANE_HAS_IO_URING)
// A ring that is ready where the kernel gives one; where it does not, the
// ring must say so (the transport then writes socket by socket) and the
// test is skipped.
bool ready_or_refused(backplane::detail::send_ring& ring)
{
    if (backplane::test::kernel_gives_send_ring()) {
        REQUIRE(ring.ready());
        return true;
    }
    CHECK_FALSE(ring.ready());
    backplane::test::skip("this kernel refuses io_uring: only the fallback was checked");
    return false;
}
#endif

} // namespace

#if defined(BACKPLANE_HAS_IO_URING)

TEST_CASE("send_ring writes every message of a batch and reports each result")
{
    backplane::detail::send_ring ring;
    if (!ready_or_refused(ring))
        return;
    std::vector<socket_pair> pairs(3);
    std::deque<message> msgs;
    for (int i = 0; i < 3; ++i)
        msgs.emplace_back("h" + std::to_string(i), std::string(100 + i, 'a' + i));
    int fds[3];
    msghdr hdrs[3];
    ssize_t results[3];
    for (int i = 0; i < 3; ++i) {
        fds[i] = pairs[i].out;
        hdrs[i] = msgs[i].m;
    }
    REQUIRE(ring.send(3, fds, hdrs, results) == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(results[i] == static_cast<ssize_t>(msgs[i].head.size() + msgs[i].body.size()));
        CHECK(pairs[i].drain() == msgs[i].head + msgs[i].body);
    }
}

TEST_CASE("send_ring reports a full socket, a partial write and a bad descriptor without holding up the others")
{
    backplane::detail::send_ring ring;
    if (!ready_or_refused(ring))
        return;
    socket_pair full, partial, fine;
    const std::string chunk(4096, 'x'); // fill one socket to the brim
    while (::send(full.out, chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
    }
    int bad = ::open("/dev/null", O_RDONLY);
    ::close(bad); // a descriptor number that is not open

    message big("", std::string(4 << 20, 'b')); // more than a socket buffer takes
    message small("s", "mall");
    int fds[4] = {full.out, partial.out, bad, fine.out};
    msghdr hdrs[4] = {small.m, big.m, small.m, small.m};
    ssize_t results[4];
    REQUIRE(ring.send(4, fds, hdrs, results) == 4);
    CHECK(results[0] == -EAGAIN);
    CHECK(results[1] > 0);
    CHECK(results[1] < static_cast<ssize_t>(big.body.size()));
    CHECK(results[2] == -EBADF);
    CHECK(results[3] == 5);
    CHECK(fine.drain() == "small");
}

TEST_CASE("send_ring takes batch after batch")
{
    backplane::detail::send_ring ring;
    if (!ready_or_refused(ring))
        return;
    constexpr std::size_t n = backplane::detail::send_ring::batch;
    std::vector<socket_pair> pairs(n);
    message one("x", "y");
    std::vector<int> fds(n);
    std::vector<msghdr> hdrs(n, one.m);
    std::vector<ssize_t> results(n);
    for (std::size_t i = 0; i < n; ++i)
        fds[i] = pairs[i].out;
    for (int round = 0; round < 3; ++round) {
        REQUIRE(ring.send(n, fds.data(), hdrs.data(), results.data()) == n);
        for (std::size_t i = 0; i < n; ++i)
            CHECK(results[i] == 2);
    }
    for (auto& p : pairs)
        CHECK(p.drain() == "xyxyxy");
}

#else

TEST_CASE("send_ring without io_uring is never ready")
{
    backplane::detail::send_ring ring;
    CHECK_FALSE(ring.ready());
}

#endif
