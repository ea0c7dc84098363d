// The load generator's io_uring ring: multishot receives into a pool of
// provided buffers, and sends (liburing; Linux 6.0 or later).
//
// Whenever its thread waits, the kernel reads every socket of the ring's
// clients that has data, with no system call per socket and no read buffer
// per client. Each operation carries a token of the owner's choosing (below
// 2^63); its completions go to the owner with that token: on_receive (bytes
// read), on_receive_end (the connection ended or failed), rearm (a receive
// stopped for want of buffers, or by the kernel's choice: start another) and
// on_sent.
#ifndef BACKPLANE_BENCHMARKS_LOADGEN_RING_HPP
#define BACKPLANE_BENCHMARKS_LOADGEN_RING_HPP

#include <liburing.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

template <class Owner>
class ring {
public:
    ring(Owner& owner, unsigned buffers, unsigned buffer_size)
        : owner_(owner), count_(buffers), size_(buffer_size), memory_(std::size_t(buffers) * buffer_size)
    {
        io_uring_params p{};
        // Completions are reaped by this one thread when it waits; the
        // receives run then, all together (DEFER_TASKRUN).
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
        p.cq_entries = 32768;
        if (const int e = ::io_uring_queue_init_params(1024, &ring_, &p); e < 0)
            fail("io_uring_queue_init", e);
        void* table = nullptr;
        if (::posix_memalign(&table, 4096, std::size_t(count_) * sizeof(io_uring_buf)) != 0)
            fail("posix_memalign", -ENOMEM);
        pool_ = static_cast<io_uring_buf_ring*>(table);
        ::io_uring_buf_ring_init(pool_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(pool_);
        reg.ring_entries = count_;
        reg.bgid = 0;
        if (const int e = ::io_uring_register_buf_ring(&ring_, &reg, 0); e < 0)
            fail("io_uring_register_buf_ring", e);
        for (unsigned i = 0; i < count_; ++i)
            give_back(i, i);
        ::io_uring_buf_ring_advance(pool_, count_);
    }
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring()
    {
        ::io_uring_queue_exit(&ring_);
        std::free(pool_);
    }

    // Receives on `fd` until it fails or ends: on_receive(token, bytes) per read.
    void receive(int fd, std::uint64_t token)
    {
        io_uring_sqe* e = entry();
        ::io_uring_prep_recv_multishot(e, fd, nullptr, 0, 0);
        e->flags |= IOSQE_BUFFER_SELECT;
        e->buf_group = 0;
        ::io_uring_sqe_set_data64(e, token << 1);
    }

    // Sends bytes that must stay put until on_sent(token, result).
    void send(int fd, std::string_view bytes, std::uint64_t token)
    {
        io_uring_sqe* e = entry();
        ::io_uring_prep_send(e, fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        ::io_uring_sqe_set_data64(e, (token << 1) | 1);
    }

    // Submits what was queued, waits up to `timeout_ns` for a completion,
    // and hands over every completion there is.
    void run_once(std::int64_t timeout_ns)
    {
        __kernel_timespec ts{timeout_ns / 1000000000, timeout_ns % 1000000000};
        io_uring_cqe* cqe = nullptr;
        ::io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        unsigned head, seen = 0, returned = 0;
        io_uring_for_each_cqe(&ring_, head, cqe)
        {
            ++seen;
            const std::uint64_t data = ::io_uring_cqe_get_data64(cqe);
            const std::uint64_t token = data >> 1;
            if (data & 1) {
                owner_.on_sent(token, cqe->res);
                continue;
            }
            if (cqe->flags & IORING_CQE_F_BUFFER) {
                const unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                char* b = memory_.data() + std::size_t(id) * size_;
                if (cqe->res > 0)
                    owner_.on_receive(token, std::string_view(b, static_cast<std::size_t>(cqe->res)));
                give_back(id, returned++);
            }
            if (!(cqe->flags & IORING_CQE_F_MORE)) {
                // The receive is over: out of buffers for a moment (armed
                // again), or the connection ended or failed.
                if (cqe->res == -ENOBUFS || cqe->res > 0)
                    rearm_.push_back(token);
                else
                    owner_.on_receive_end(token, cqe->res);
            }
        }
        ::io_uring_cq_advance(&ring_, seen);
        ::io_uring_buf_ring_advance(pool_, returned);
        for (const std::uint64_t token : rearm_)
            owner_.rearm(token);
        rearm_.clear();
    }

private:
    [[noreturn]] static void fail(const char* what, int e)
    {
        std::fprintf(stderr, "backplane-loadgen: %s: %s (io_uring as this program uses it needs Linux 6.0 or later)\n",
                     what, std::strerror(-e));
        std::exit(2);
    }

    io_uring_sqe* entry()
    {
        io_uring_sqe* e = ::io_uring_get_sqe(&ring_);
        if (!e) { // the submission queue is full: make room
            ::io_uring_submit(&ring_);
            e = ::io_uring_get_sqe(&ring_);
        }
        return e;
    }

    void give_back(unsigned id, unsigned offset)
    {
        ::io_uring_buf_ring_add(pool_, memory_.data() + std::size_t(id) * size_, size_, static_cast<unsigned short>(id),
                                ::io_uring_buf_ring_mask(count_), static_cast<int>(offset));
    }

    Owner& owner_;
    io_uring ring_{};
    io_uring_buf_ring* pool_ = nullptr;
    const unsigned count_, size_;
    std::vector<char> memory_;
    std::vector<std::uint64_t> rearm_;
};

#endif
