// The strict JSON reader and writer of the reference server (demo/json.hpp).
#include "json.hpp"

#include <catch2/catch.hpp>

using demo::json::flat_object;

namespace {
std::string error_of(std::string_view in)
{
    flat_object o;
    return demo::json::parse(in, o);
}
} // namespace

TEST_CASE("json: flat objects are read with their escapes decoded")
{
    flat_object o;
    REQUIRE(demo::json::parse(R"( {"op" : "send", "text":"a\"b\\c\/\n\t\u00e9\ud83d\ude00", "n":-1.5e3,
                                  "t":true, "f":false, "z":null} )", o).empty());
    REQUIRE(o.members.size() == 6);
    CHECK(o.find("op")->text == "send");
    CHECK(o.find("text")->text == "a\"b\\c/\n\t\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(o.find("n")->type == demo::json::value::kind::number);
    CHECK(o.find("n")->text == "-1.5e3");
    CHECK(o.find("t")->text == "true");
    CHECK(o.find("f")->text == "false");
    CHECK(o.find("z")->type == demo::json::value::kind::null);
    CHECK(o.find("missing") == nullptr);
    CHECK(error_of("{}").empty());
}

TEST_CASE("json: everything but one flat object is refused")
{
    for (const char* bad : {"", "null", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x",
                            "{a:1}", "{\"a\":'x'}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{\"a\":1e}",
                            "{\"a\":tru}", "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":1,\"a\":2}",
                            "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\udc00\"}",
                            "{\"a\":\"\\ud800x\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\xc3\"}",
                            "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}"}) {
        INFO(bad);
        CHECK_FALSE(error_of(bad).empty());
    }
    std::string many = "{";
    for (int i = 0; i < 17; ++i)
        many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
    CHECK(error_of(many + "}") == "too many members");
}

TEST_CASE("json: a refusal does not echo the client's bytes, which may not be UTF-8")
{
    CHECK(error_of("{\"a\":\"\xff\"}")
          == "parse error at line 1, column 7: syntax error while parsing value - invalid string: ill-formed UTF-8 byte");
    CHECK(error_of("{\"a\":\"\xc3\"}").find('\xc3') == std::string::npos);
}

TEST_CASE("json: strings are written escaped and read back unchanged")
{
    const std::string text = std::string("q\"b\\ \n\r\t\b\f \x01\x1f\x7f \xc3\xa9 \xe2\x80\xa8\xe2\x80\xa9 end");
    std::string out;
    demo::json::object_writer(out).add("text", text).add_number("n", 42);
    CHECK(out.find('\n') == std::string::npos);
    CHECK(out.find("\\u2028\\u2029") != std::string::npos);
    flat_object o;
    REQUIRE(demo::json::parse(out, o).empty());
    CHECK(o.find("text")->text == text);
    CHECK(o.find("n")->text == "42");
}
