// The WebSocket transport from the package: a client over loopback gets a
// frame sent from the open hook; exits 0 if it arrives whole.
#include <backplane/transport/websocketpp.hpp>

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <cstdio>
#include <string>
#include <thread>

int main()
{
    asio::io_context io;
    backplane::transport::websocketpp ws(io);
    ws.on_open([&](const auto& c, const auto&) { ws.send(c, ws.make_frame("hello")); });
    if (ws.listen("127.0.0.1", 0))
        return 1;
    std::string got;
    std::thread client([&, port = ws.port()] {
        asio::io_context cio;
        asio::ip::tcp::socket s(cio);
        asio::connect(s, asio::ip::tcp::resolver(cio).resolve("127.0.0.1", std::to_string(port)));
        asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")));
        std::string in;
        const std::size_t head = asio::read_until(s, asio::dynamic_buffer(in), "\r\n\r\n");
        if (in.size() < head + 7)
            asio::read(s, asio::dynamic_buffer(in), asio::transfer_exactly(head + 7 - in.size()));
        got = in.substr(head, 7); // 0x81 0x05 "hello"
        asio::post(io, [&] { io.stop(); });
    });
    io.run();
    client.join();
    const bool ok = got == std::string("\x81\x05hello");
    std::puts(ok ? "consumer websocket: ok" : "consumer websocket: frame not received");
    return ok ? 0 : 1;
}
