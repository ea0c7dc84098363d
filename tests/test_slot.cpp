// Redis Cluster's key slots, as its specification defines them.
#include <backplane/redis/slot.hpp>

#include <catch2/catch.hpp>

using backplane::redis::hash_slot;
using backplane::redis::hash_tag;

// The specification's own check value, at compile time.
static_assert(backplane::redis::detail::crc16("123456789") == 0x31C3);
static_assert(hash_slot("123456789") == 12739);

TEST_CASE("hash_slot is CRC16-XMODEM modulo 16384, as CLUSTER KEYSLOT answers")
{
    CHECK(hash_slot("123456789") == 12739);
    // What a real Redis 7 cluster answered to CLUSTER KEYSLOT.
    CHECK(hash_slot("chat:global") == 14597);
    CHECK(hash_slot("{user1000}.following") == 3443);
    CHECK(hash_slot("") == 0);
}

TEST_CASE("a hash tag puts keys in one slot")
{
    CHECK(hash_slot("{user1000}.following") == hash_slot("{user1000}.followers"));
    CHECK(hash_slot("{user1000}.following") == hash_slot("user1000"));
    CHECK(hash_tag("stream:{chat:room:lobby}") == "chat:room:lobby");
    CHECK(hash_tag("foo{bar}{zap}") == "bar");      // the first tag only
    CHECK(hash_tag("foo{{bar}}zap") == "{bar");     // from the first '{' to the first '}' after it
    CHECK(hash_tag("foo{}{bar}") == "foo{}{bar}");  // an empty tag: the whole key
    CHECK(hash_tag("foo{bar") == "foo{bar");        // no '}': the whole key
    CHECK(hash_tag("foo}bar{") == "foo}bar{");      // no '}' after the '{'
}
