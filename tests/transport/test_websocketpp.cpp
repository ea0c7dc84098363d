// transport::websocketpp's hooks over loopback sockets: what they see of a
// request (http_request) and how their answers (http_response) go out.
#include <backplane/transport/websocketpp.hpp>

#include "../e2e/ws_client.hpp"

#include <catch2/catch.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>

using backplane::http_request;
using backplane::http_response;
using ws_transport = backplane::transport::websocketpp;
using backplane::test::connect_loopback;
using backplane::test::handshake_request;
using backplane::test::http_get;
using backplane::test::round_trip;

namespace {

// What a hook saw of its request.
struct seen {
    std::string method, target, path, origin, protocol, peer;
    std::optional<std::string> user;
};

seen look(const http_request& req)
{
    return {std::string(req.method()), std::string(req.target()), std::string(req.path()),
            std::string(req.header("origin")), std::string(req.header("SEC-WEBSOCKET-PROTOCOL")),
            req.peer_address(), req.query_parameter("user")};
}

// An endpoint on loopback, its io_context on a thread of its own; the hooks
// are set before it starts.
struct endpoint {
    explicit endpoint(backplane::transport::websocketpp_options o = {}) : ws(io, std::move(o)) {}

    asio::io_context io;
    ws_transport ws;
    std::thread thread;

    std::uint16_t start()
    {
        REQUIRE_FALSE(ws.listen("127.0.0.1", 0));
        thread = std::thread([this] { io.run(); });
        return ws.port();
    }
    ~endpoint()
    {
        asio::post(io, [this] { io.stop(); });
        if (thread.joinable())
            thread.join();
    }
};

template <class T>
T within(std::future<T>& f)
{
    REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    return f.get();
}

// The endpoint's counters, read on its own thread.
backplane::transport::websocketpp_stats stats_of(endpoint& e)
{
    std::promise<backplane::transport::websocketpp_stats> p;
    asio::post(e.io, [&] { p.set_value(e.ws.stats()); });
    auto f = p.get_future();
    return within(f);
}

// A masked ping frame with `payload`.
std::string ping(std::string_view payload)
{
    return backplane::detail::ws::encode_frame(9, payload, backplane::detail::ws::masking_key{1, 2, 3, 4});
}

} // namespace

TEST_CASE("websocketpp: the validate, open and close hooks see the handshake as an http_request")
{
    endpoint e;
    std::promise<seen> validated, opened, closed;
    e.ws.on_validate([&](const http_request& req, http_response&) {
        validated.set_value(look(req));
        return true;
    });
    e.ws.on_open([&](const ws_transport::connection_handle&, const http_request& req) { opened.set_value(look(req)); });
    e.ws.on_close([&](const ws_transport::connection_handle&, const http_request& req) { closed.set_value(look(req)); });
    const auto port = e.start();

    const int fd = connect_loopback(port);
    REQUIRE(fd >= 0);
    const auto request = handshake_request("/ws?user=al%20ice+b&x=1",
                                           "Origin: https://example.com\r\nSec-WebSocket-Protocol: chat\r\n");
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    auto v = validated.get_future(), o = opened.get_future(), c = closed.get_future();
    for (auto* f : {&v, &o}) {
        const seen s = within(*f);
        CHECK(s.method == "GET");
        CHECK(s.target == "/ws?user=al%20ice+b&x=1");
        CHECK(s.path == "/ws");
        CHECK(s.user == "al ice b");
        CHECK(s.origin == "https://example.com");
        CHECK(s.protocol == "chat");
        CHECK(s.peer == "127.0.0.1");
    }
    ::close(fd);
    const seen s = within(c);
    CHECK(s.method == "GET");
    CHECK(s.target == "/ws?user=al%20ice+b&x=1");
    CHECK(s.user == "al ice b");
    CHECK(s.origin.empty()); // the headers are gone once the connection is open
}

TEST_CASE("websocketpp: a refused handshake is answered with the hook's status, headers and body, or 400")
{
    endpoint e;
    e.ws.on_validate([](const http_request& req, http_response& res) {
        if (req.query_parameter("user") == "nobody") {
            res.status = 403;
            res.add_header("WWW-Authenticate", "Bearer");
            res.body = "go away\n";
        }
        return false;
    });
    const auto port = e.start();

    const auto refused = round_trip(port, handshake_request("/ws?user=nobody"));
    CHECK(refused.rfind("HTTP/1.1 403 ", 0) == 0);
    CHECK(refused.find("\r\nWWW-Authenticate: Bearer\r\n") != std::string::npos);
    CHECK(refused.size() > 8);
    CHECK(refused.substr(refused.size() - 8) == "go away\n");

    const auto plain = round_trip(port, handshake_request("/ws?user=somebody"));
    CHECK(plain.rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK(e.ws.stats().rejected == 2);
}

TEST_CASE("websocketpp: an accepted handshake's answer carries the hook's headers (a chosen subprotocol)")
{
    endpoint e;
    e.ws.on_validate([](const http_request&, http_response& res) {
        res.add_header("Sec-WebSocket-Protocol", "backplane");
        return true;
    });
    const auto port = e.start();
    backplane::test::ws_client c(port, "/ws", 0, "Sec-WebSocket-Protocol: backplane, bearer.x\r\n");
    CHECK((c.response() + "\r\n").find("\r\nSec-WebSocket-Protocol: backplane\r\n") != std::string::npos);
}

TEST_CASE("websocketpp: a plain request is answered by the HTTP hook, 500 if it sets no status, 426 without one")
{
    endpoint e;
    e.ws.on_http([](const http_request& req, http_response& res) {
        if (req.path() != "/hello")
            return;
        res.status = 200;
        res.add_header("Content-Type", "text/plain");
        res.body = std::string(req.method()) + " hello " + req.query_parameter("name").value_or("?") + "\n";
    });
    const auto port = e.start();

    const auto hello = http_get(port, "/hello?name=a%2Bb+c");
    CHECK(hello.rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(hello.find("\r\nContent-Type: text/plain\r\n") != std::string::npos);
    CHECK(hello.find("\r\n\r\nGET hello a+b c\n") != std::string::npos);
    CHECK(http_get(port, "/elsewhere").rfind("HTTP/1.1 500 ", 0) == 0);

    endpoint bare;
    CHECK(http_get(bare.start(), "/").rfind("HTTP/1.1 426 ", 0) == 0);
}

TEST_CASE("websocketpp: pings in a row are answered by one pong, and a client that pings and never reads is closed")
{
    SECTION("in a row")
    {
        endpoint e;
        const auto port = e.start();
        backplane::test::ws_client c(port, "/ws");
        std::string pings;
        for (int i = 0; i < 200; ++i)
            pings += ping("p" + std::to_string(i));
        REQUIRE(::send(c.fd(), pings.data(), pings.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(pings.size()));
        // A text frame after them: everything before it has been read once it is.
        std::promise<void> marked;
        e.ws.on_message([&](const ws_transport::connection_handle&, std::string_view, bool) { marked.set_value(); });
        c.send_text("mark");
        auto f = marked.get_future();
        REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
        const auto s = stats_of(e);
        CHECK(s.pongs_saved > 100); // of 200: most pings found a pong still queued
        CHECK(s.slow_consumer_closes == 0);
    }
    SECTION("never reads")
    {
        backplane::transport::websocketpp_options o;
        o.max_outbound_bytes = 64 * 1024;
        endpoint e(o);
        const auto port = e.start();
        backplane::test::ws_client c(port, "/ws", 4096);
        const std::string big_ping = ping(std::string(125, 'x'));
        std::string burst;
        for (int i = 0; i < 64; ++i)
            burst += big_ping;
        // Pongs of 125 bytes, one per turn at least, fill the socket, then the queue.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (stats_of(e).slow_consumer_closes == 0 && std::chrono::steady_clock::now() < deadline) {
            if (::send(c.fd(), burst.data(), burst.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
                break; // closed
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        CHECK(stats_of(e).slow_consumer_closes == 1);
    }
}

TEST_CASE("websocketpp: when_written waits until a client that does not read has read, and never calls for one that closed")
{
    backplane::transport::websocketpp_options o;
    o.max_outbound_bytes = 64 * 1024 * 1024;
    endpoint e(o);
    std::promise<ws_transport::connection_handle> opened;
    std::promise<void> closed;
    e.ws.on_open([&](const ws_transport::connection_handle& c, const http_request&) { opened.set_value(c); });
    e.ws.on_close([&](const ws_transport::connection_handle&, const http_request&) { closed.set_value(); });
    const auto port = e.start();
    auto c = std::make_unique<backplane::test::ws_client>(port, "/ws", 4096);
    auto open_future = opened.get_future();
    const auto handle = within(open_future);

    // Idle: at once.
    std::promise<void> idle;
    asio::post(e.io, [&] { e.ws.when_written(handle, [&] { idle.set_value(); }); });
    auto idle_future = idle.get_future();
    within(idle_future);

    // 8 MiB queued, more than the socket buffers hold (4 MiB at most here):
    // written only as the client reads.
    constexpr int frames = 64;
    const std::string payload(128 * 1024, 'w');
    std::atomic<bool> written{false};
    asio::post(e.io, [&] {
        const auto f = e.ws.make_frame(payload);
        for (int i = 0; i < frames; ++i)
            e.ws.send(handle, f);
        e.ws.when_written(handle, [&] { written = true; });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK_FALSE(written);
    for (int i = 0; i < frames; ++i) {
        const auto text = c->read_text();
        REQUIRE(text);
        CHECK(text->size() == payload.size());
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!written && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(written);

    // Closed before it is written: never.
    std::atomic<bool> called{false};
    asio::post(e.io, [&] {
        const auto f = e.ws.make_frame(payload);
        for (int i = 0; i < frames; ++i)
            e.ws.send(handle, f);
        e.ws.when_written(handle, [&] { called = true; });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c.reset(); // the client goes without reading
    auto closed_future = closed.get_future();
    within(closed_future);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(called);
}

TEST_CASE("websocketpp: at max_handshakes accepting pauses until a handshake ends, then goes on")
{
    backplane::transport::websocketpp_options o;
    o.max_handshakes = 2;
    endpoint e(o);
    const auto port = e.start();
    // Two sockets that send nothing hold both places.
    const int silent1 = connect_loopback(port), silent2 = connect_loopback(port);
    REQUIRE(silent1 >= 0);
    REQUIRE(silent2 >= 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (stats_of(e).accept_pauses == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(stats_of(e).accept_pauses == 1);

    // A third waits in the backlog: connected, not answered.
    const int third = connect_loopback(port);
    REQUIRE(third >= 0);
    const std::string req = handshake_request("/ws");
    REQUIRE(::send(third, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    pollfd p{third, POLLIN, 0};
    CHECK(::poll(&p, 1, 300) == 0);

    ::close(silent1); // its handshake ends: the third is accepted and answered
    CHECK(::poll(&p, 1, 5000) == 1);
    char buf[64] = {};
    CHECK(::recv(third, buf, sizeof buf - 1, 0) > 12);
    CHECK(std::string(buf).rfind("HTTP/1.1 101", 0) == 0);
    ::close(silent2);
    ::close(third);
}
