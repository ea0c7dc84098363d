#include <backplane/envelope.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

using namespace backplane;

namespace {

std::string encoded(const envelope& e)
{
    std::string out;
    encode(e, out);
    return out;
}

} // namespace

TEST_CASE("an envelope survives encode and decode")
{
    const std::string long_payload(300, 'p');
    const envelope kinds[] = {
        {message_kind::broadcast, "i1", "", 0, 1, "hello"},
        {message_kind::room, "instance-7", "lobby", (std::uint64_t(3) << 32) | 9, 1234567, ""},
        {message_kind::user, "x", "alice", UINT64_MAX, UINT64_MAX, long_payload},
    };
    for (const auto& in : kinds) {
        const auto bytes = encoded(in);
        envelope out;
        REQUIRE_FALSE(decode(bytes, out));
        CHECK(out.kind == in.kind);
        CHECK(out.origin == in.origin);
        CHECK(out.target == in.target);
        CHECK(out.exclude == in.exclude);
        CHECK(out.sequence == in.sequence);
        CHECK(out.payload == in.payload);
    }
}

TEST_CASE("the encoding is compact")
{
    // magic, version, kind, 2+2 (origin), 1+5 (target), 1, 1, payload
    CHECK(encoded({message_kind::room, "i1", "lobby", 0, 1, "hi"}).size() == 3 + 3 + 6 + 1 + 1 + 2);
}

TEST_CASE("every truncation of a valid envelope is rejected, or decodes a shorter payload")
{
    const auto bytes = encoded({message_kind::room, "origin", "lobby", 300, 70000, "payload"});
    const auto header = bytes.size() - 7;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        envelope e;
        const auto ec = decode(std::string_view(bytes.data(), n), e);
        INFO("length " << n);
        if (n < header)
            CHECK(ec == error::malformed_envelope);
        else // the payload is the rest: a cut payload is still well-formed
            CHECK((!ec && e.payload.size() == n - header));
    }
}

TEST_CASE("malformed envelopes are rejected with an error")
{
    auto valid = encoded({message_kind::user, "i1", "bob", 0, 1, "x"});
    envelope e;
    REQUIRE_FALSE(decode(valid, e));

    SECTION("bad magic")
    {
        valid[0] = 'x';
        CHECK(decode(valid, e) == error::malformed_envelope);
    }
    SECTION("another version")
    {
        valid[1] = 2;
        CHECK(decode(valid, e) == error::unsupported_envelope_version);
    }
    SECTION("unknown kinds")
    {
        for (int kind : {0, 4, 255}) {
            valid[2] = static_cast<char>(kind);
            CHECK(decode(valid, e) == error::malformed_envelope);
        }
    }
    SECTION("a broadcast with a target, a room without one, no origin")
    {
        CHECK(decode(encoded({message_kind::broadcast, "i1", "lobby", 0, 1, ""}), e)
              == error::malformed_envelope);
        CHECK(decode(encoded({message_kind::room, "i1", "", 0, 1, ""}), e) == error::malformed_envelope);
        CHECK(decode(encoded({message_kind::broadcast, "", "", 0, 1, ""}), e) == error::malformed_envelope);
    }
    SECTION("a length past the end")
    {
        std::string s = {'b', 1, 1, char(0xff), char(0xff), char(0xff), char(0xff), 0x0f, 'a'};
        CHECK(decode(s, e) == error::malformed_envelope);
    }
    SECTION("a varint longer than 64 bits")
    {
        std::string s = {'b', 1, 1, 2, 'i', '1', 0};
        s.append(10, char(0xff));
        s.push_back(1);
        CHECK(decode(s, e) == error::malformed_envelope);
        std::string t = {'b', 1, 1, 2, 'i', '1', 0};
        t.append(9, char(0xff));
        t.push_back(2); // a 65th bit
        t.push_back(0);
        CHECK(decode(t, e) == error::malformed_envelope);
    }
}

TEST_CASE("random bytes never decode to views outside the input")
{
    std::mt19937_64 rng(42);
    const auto seed = encoded({message_kind::room, "i1", "lobby", 5, 6, "payload"});
    int accepted = 0;
    for (int i = 0; i < 200000; ++i) {
        std::string s = seed;
        // Mutate a few bytes of a valid envelope, or make pure noise.
        if (i % 2) {
            for (int k = 0; k < 3; ++k)
                s[rng() % s.size()] = static_cast<char>(rng());
            s.resize(rng() % (s.size() + 1));
        } else {
            s.resize(rng() % 32);
            for (auto& c : s)
                c = static_cast<char>(rng());
        }
        envelope e;
        if (decode(s, e))
            continue;
        ++accepted;
        const char* lo = s.data();
        const char* hi = s.data() + s.size();
        for (auto v : {e.origin, e.target, e.payload})
            REQUIRE((v.empty() || (v.data() >= lo && v.data() + v.size() <= hi)));
    }
    CHECK(accepted > 0);
}
