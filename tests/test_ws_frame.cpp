// detail::ws: frame headers written and read back, at every length class,
// masked and not, and read from bytes that arrive a few at a time.
#include <backplane/detail/ws_frame.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

namespace ws = backplane::detail::ws;
using namespace std::string_literals;

TEST_CASE("ws_frame: a server's frame header is 2, 4 or 10 bytes, big-endian, unmasked")
{
    CHECK(ws::encode_header(ws::text, 5).view() == "\x81\x05"s);
    CHECK(ws::encode_header(ws::ping, 0).view() == "\x89\x00"s);
    CHECK(ws::encode_header(ws::text, 125).view() == "\x81\x7d"s);
    CHECK(ws::encode_header(ws::binary, 126).view() == "\x82\x7e\x00\x7e"s);
    CHECK(ws::encode_header(ws::text, 65535).view() == "\x81\x7e\xff\xff"s);
    CHECK(ws::encode_header(ws::text, 65536).view() == "\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"s);
    CHECK(ws::encode_header(ws::continuation, 1, std::nullopt, false).view() == "\x00\x01"s);
}

TEST_CASE("ws_frame: a client's frame carries the mask bit and key, and a masked payload")
{
    const ws::masking_key key{0x01, 0x02, 0x03, 0x04};
    CHECK(ws::encode_header(ws::text, 3, key).view() == "\x81\x83\x01\x02\x03\x04"s);
    const std::string f = ws::encode_frame(ws::text, "abcde", key);
    CHECK(f == "\x81\x85\x01\x02\x03\x04"s + "\x60\x60\x60\x60\x64"s);
    std::string payload = f.substr(6);
    ws::apply_mask(payload.data(), payload.size(), key);
    CHECK(payload == "abcde");
    // The zero key leaves the payload as it is.
    CHECK(ws::encode_frame(ws::text, "abc", ws::masking_key{}) == "\x81\x83\x00\x00\x00\x00" "abc"s);
}

TEST_CASE("ws_frame: every header written is read back the same")
{
    for (const std::uint64_t length : {0ull, 1ull, 125ull, 126ull, 65535ull, 65536ull, 1ull << 40})
        for (const bool masked : {false, true}) {
            const auto key = masked ? std::optional<ws::masking_key>({9, 8, 7, 6}) : std::nullopt;
            const auto e = ws::encode_header(ws::binary, length, key, length != 1);
            const auto h = ws::decode_header(e.bytes.data(), e.size);
            REQUIRE(h);
            CHECK(h->op == ws::binary);
            CHECK(h->fin == (length != 1));
            CHECK(h->length == length);
            CHECK(h->size == e.size);
            CHECK(h->mask == key);
        }
}

TEST_CASE("ws_frame: a header is read only once all of it has arrived")
{
    const ws::masking_key key{1, 2, 3, 4};
    for (const std::uint64_t length : {5ull, 300ull, 70000ull}) {
        const auto e = ws::encode_header(ws::text, length, key);
        for (std::size_t got = 0; got < e.size; ++got)
            CHECK_FALSE(ws::decode_header(e.bytes.data(), got));
        CHECK(ws::decode_header(e.bytes.data(), e.size));
    }
}
