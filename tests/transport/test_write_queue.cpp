// detail::write_queue and queue_writer: a connection's frames of the turn and
// what each write result makes of them, stepped with made-up results, no
// socket.
#include <backplane/transport/detail/write_queue.hpp>

#include <catch2/catch.hpp>

#include <sys/uio.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

namespace {

// A prepared message, as websocketpp's: header and payload apart.
struct message {
    std::string header, payload;
    const std::string& get_header() const { return header; }
    const std::string& get_payload() const { return payload; }
};
using frame = std::shared_ptr<const message>;
using queue = backplane::transport::detail::write_queue<frame>;
using writer = backplane::transport::detail::queue_writer<frame>;
using backplane::transport::detail::write_step;

frame make(std::string header, std::string payload)
{
    return std::make_shared<const message>(message{std::move(header), std::move(payload)});
}

// The bytes a gather points at, in order.
std::string bytes_of(const iovec* iov, std::size_t n)
{
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    return out;
}

// What a hand-over passes on: the rest of a frame begun, then the frames.
struct handed {
    std::vector<std::string> rest;
    std::vector<frame> frames;
};

handed hand_over(writer& w)
{
    handed h;
    w.hand_over([&](const std::string& r) { h.rest.push_back(r); }, [&](const frame& f) { h.frames.push_back(f); });
    return h;
}

// A queue of `frames` at the flush, gathered for the first write.
struct flushing {
    queue q;
    writer w{q};
    iovec iov[writer::max_iov];
    std::size_t n = 0;

    explicit flushing(const std::vector<frame>& frames)
    {
        for (const auto& f : frames)
            q.push(f);
        n = w.gather(iov);
    }
};

std::vector<frame> numbered(std::size_t count)
{
    std::vector<frame> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(make("h", std::to_string(i % 10)));
    return out;
}

} // namespace

TEST_CASE("write_queue: the first frame of a turn asks for a flush, and its bytes count headers too")
{
    queue q;
    CHECK(q.empty());
    CHECK(q.direct());
    CHECK(q.push(make("h1", "payload")));
    CHECK_FALSE(q.push(make("h2", "more")));
    CHECK(q.bytes() == 2 + 7 + 2 + 4);
    q.clear();
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
    CHECK(q.push(make("h3", "")));
}

TEST_CASE("queue_writer: one gather for the turn's frames, and a whole write is done")
{
    flushing f({make("H1", "one"), make("P", ""), make("H3", "three")}); // a ping has no payload: no empty iovec
    CHECK(f.n == 5);
    CHECK(bytes_of(f.iov, f.n) == "H1onePH3three");
    CHECK(f.w.apply(13) == write_step::done);
    CHECK(f.q.empty());
    CHECK(f.q.bytes() == 0);
    CHECK(f.q.direct());
}

TEST_CASE("queue_writer: more frames than iovecs take several writes, each from where the last ended")
{
    flushing f(numbered(writer::max_iov / 2 + 3));
    CHECK(f.n == writer::max_iov);
    CHECK(f.w.apply(static_cast<ssize_t>(writer::max_iov)) == write_step::again);
    const std::size_t n = f.w.gather(f.iov);
    CHECK(n == 6);
    CHECK(bytes_of(f.iov, n) == "h2h3h4");
    CHECK(f.w.apply(6) == write_step::done);
    CHECK(f.q.empty());
}

TEST_CASE("queue_writer: a write that stops inside a frame hands over its end as a message of its own, then the rest")
{
    const auto c = make("Hc", "charlie");
    flushing f({make("Ha", "alpha"), make("Hb", "bravo"), c});
    CHECK(f.w.apply(7 + 3) == write_step::hand_over); // all of a, "Hb" and "b" of b
    const auto h = hand_over(f.w);
    CHECK(h.rest == std::vector<std::string>{"ravo"});
    CHECK(h.frames == std::vector<frame>{c});
    CHECK(f.q.empty());
    CHECK_FALSE(f.q.direct()); // websocketpp writes it from now on
}

TEST_CASE("queue_writer: a write that stops inside a header hands over the rest of the header with its payload")
{
    flushing f({make("H12345", "x")});
    CHECK(f.w.apply(2) == write_step::hand_over);
    const auto h = hand_over(f.w);
    CHECK(h.rest == std::vector<std::string>{"2345x"});
    CHECK(h.frames.empty());
}

TEST_CASE("queue_writer: a write that stops between frames hands over whole frames only")
{
    const auto b = make("Hb", "bravo");
    flushing f({make("Ha", "alpha"), b});
    CHECK(f.w.apply(7) == write_step::hand_over);
    const auto h = hand_over(f.w);
    CHECK(h.rest.empty());
    CHECK(h.frames == std::vector<frame>{b});
}

TEST_CASE("queue_writer: a full socket (-EAGAIN) or a failed write hands over every frame")
{
    for (const ssize_t result : {ssize_t(-EAGAIN), ssize_t(-EPIPE), ssize_t(0)}) {
        const auto frames = numbered(2);
        flushing f(frames);
        CHECK(f.w.apply(result) == write_step::hand_over);
        const auto h = hand_over(f.w);
        CHECK(h.rest.empty());
        CHECK(h.frames == frames);
        CHECK_FALSE(f.q.direct());
    }
}

TEST_CASE("queue_writer: a later write that falls short hands over from where the earlier ones ended")
{
    const auto frames = numbered(writer::max_iov / 2 + 2);
    flushing f(frames);
    CHECK(f.w.apply(static_cast<ssize_t>(writer::max_iov)) == write_step::again);
    CHECK(f.w.gather(f.iov) == 4);
    CHECK(f.w.apply(1) == write_step::hand_over);
    const auto h = hand_over(f.w);
    CHECK(h.rest == std::vector<std::string>{"2"}); // frame 32 is "h2"
    CHECK(h.frames == std::vector<frame>{frames.back()});
}
