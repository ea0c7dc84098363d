#include <backplane/names.hpp>

#include <catch2/catch.hpp>

#include <string>

using backplane::validate_name;

TEST_CASE("valid names pass")
{
    for (const char* name : {"a", "room-1", "lobby_2", "user.42", "Ünïcode", "a/b", "{x}", "x@y", "\xe4\xb8\xad\xe6\x96\x87",
                             "\xf0\x9f\x98\x80", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"}) // 中文, an emoji, Hebrew
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
        "\xc3\x28", "\xc3", "a\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", // not UTF-8
        "\xc2\x85",                                  // C1 control (NEL)
        "ad\xe2\x80\xaemin", "\xe2\x81\xa6x", "\xd8\x9c",   // bidi override, isolate, Arabic letter mark
        "a\xe2\x80\x8b" "b", "\xe2\x81\xa0", "\xef\xbb\xbfx", // zero-width space, word joiner, BOM
        "a\xe2\x80\xa8" "b", "\xe2\x80\xa9",                  // line and paragraph separators
        "\xc2\xa0", "a\xe3\x80\x80" "b",                      // no-break and ideographic spaces
        "\xef\xbf\xbe", "\xf3\xa0\x80\x81",              // a non-character, a tag
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
