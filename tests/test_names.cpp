#include <backplane/names.hpp>

#include <catch2/catch.hpp>

#include <string>

using backplane::validate_name;

TEST_CASE("valid names pass")
{
    for (const char* name : {"a", "room-1", "lobby_2", "user.42", "Ünïcode", "a/b", "{x}", "x@y"})
        CHECK_FALSE(validate_name(name));
    CHECK_FALSE(validate_name(std::string(128, 'x')));
}

TEST_CASE("invalid names are rejected with invalid_name")
{
    const std::string bad[] = {
        "",                       // empty
        std::string(129, 'x'),    // too long
        "a:b", ":", "x:",         // tier separator
        "*", "a*", "a?", "[a]", "a]", // glob metacharacters
        "a b", " ", "a\tb", "a\nb", "a\rb", // whitespace
        std::string("a\0b", 3), "\x01", "a\x1f", "\x7f", // control characters
    };
    for (const auto& name : bad) {
        INFO("name of " << name.size() << " bytes");
        CHECK(validate_name(name) == backplane::error::invalid_name);
    }
}

TEST_CASE("the length limit is configurable")
{
    CHECK_FALSE(validate_name("abcd", 4));
    CHECK(validate_name("abcde", 4) == backplane::error::invalid_name);
}
