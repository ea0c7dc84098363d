// The reference server's client protocol and HTTP answers, stepped without
// sockets (demo/protocol.hpp, demo/http.hpp).
#include "http.hpp"
#include "protocol.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

// http::respond serves the chat page; the server's is generated at build time.
namespace demo {
const char* const chat_page = "<!doctype html><title>chat</title>";
}

namespace {

using demo::protocol::capabilities;
using demo::protocol::op;
using demo::protocol::request;

struct outcome {
    bool ok;
    request r;
    std::string code;
    std::string message;
};

outcome read(std::string_view frame, capabilities caps = {true, true}, bool text = true)
{
    demo::protocol::reader reader(caps);
    outcome o{};
    demo::protocol::error e;
    o.ok = reader.read(frame, text, o.r, e);
    o.code = std::string(e.code);
    o.message = e.message;
    return o;
}

// A handshake as a transport would show it.
class request_at final : public backplane::http_request {
public:
    explicit request_at(std::string_view target) : http_request("GET", target) {}
    std::string_view header(std::string_view) const override { return {}; }
    std::string peer_address() const override { return "127.0.0.1"; }
};

std::optional<std::string> ws_user(std::string_view target)
{
    return demo::protocol::ws_user(request_at(target));
}

nlohmann::json parsed(const std::string& frame)
{
    return nlohmann::json::parse(frame);
}

} // namespace

TEST_CASE("protocol: each request is read into what it asks")
{
    auto o = read(R"({"op":"send","text":"hi all"})");
    REQUIRE(o.ok);
    CHECK(o.r.kind == op::send);
    CHECK_FALSE(o.r.to_room);
    CHECK(o.r.text == "hi all");

    o = read(R"({"op":"send","room":"r1","text":"hi room"})");
    REQUIRE(o.ok);
    CHECK(o.r.to_room);
    CHECK(o.r.room == "r1");

    o = read(R"({"text":"psst","op":"dm","to":"bob"})"); // members in any order
    REQUIRE(o.ok);
    CHECK(o.r.kind == op::dm);
    CHECK(o.r.user == "bob");
    CHECK(o.r.text == "psst");

    o = read(R"({"op":"join","room":"r1"})");
    REQUIRE(o.ok);
    CHECK(o.r.kind == op::join);
    CHECK_FALSE(o.r.last_id);

    o = read(R"({"op":"join","room":"r1","last_id":"1733011200000-3"})");
    REQUIRE(o.ok);
    CHECK(o.r.last_id == std::optional<std::string>("1733011200000-3"));

    o = read(R"({"op":"leave","room":"r1"})");
    REQUIRE(o.ok);
    CHECK(o.r.kind == op::leave);

    o = read(R"({"op":"where","user":"alice"})");
    REQUIRE(o.ok);
    CHECK(o.r.kind == op::where);
    CHECK(o.r.user == "alice");

    o = read(R"({"op":"online"})");
    REQUIRE(o.ok);
    CHECK(o.r.kind == op::online);
    CHECK(o.r.cursor == "0");
    o = read(R"({"op":"online","cursor":"42"})");
    REQUIRE(o.ok);
    CHECK(o.r.cursor == "42");
}

TEST_CASE("protocol: every refusal has its code, and the first failed check answers")
{
    const std::string long_text(16 * 1024 + 1, 'x');
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "invalid_json"},
        {R"({"op":"send","text":{"nested":1}})", "invalid_json"},
        {R"({"op":"send","op":"send","text":"x"})", "invalid_json"},
        {R"({"text":"x"})", "missing_field"},
        {R"({"op":1})", "wrong_type"},
        {R"({"op":"shout"})", "unknown_op"},
        {R"({"op":"send","text":"x","color":"red"})", "unknown_field"},
        {R"({"op":"send"})", "missing_field"},
        {R"({"op":"send","text":true})", "wrong_type"},
        {R"({"op":"send","text":")" + long_text + R"("})", "too_long"},
        {R"({"op":"send","room":"a:b","text":"x"})", "invalid_name"},
        {R"({"op":"send","room":"a:b","text":")" + long_text + R"("})", "too_long"}, // text is checked first
        {R"({"op":"dm","text":"x"})", "missing_field"},
        {R"({"op":"dm","to":"b*b","text":"x"})", "invalid_name"},
        {R"({"op":"dm","to":"b*b"})", "invalid_name"}, // the recipient is checked first
        {R"({"op":"join"})", "missing_field"},
        {R"({"op":"join","room":""})", "invalid_name"},
        {R"({"op":"leave","room":"r","last_id":"1-0"})", "unknown_field"},
        {R"({"op":"join","room":"r","last_id":"yesterday"})", "invalid_last_id"},
        {R"({"op":"join","room":"r","last_id":5})", "wrong_type"},
        {R"({"op":"where"})", "missing_field"},
        {R"({"op":"where","user":"a b"})", "invalid_name"},
        {R"({"op":"where","user":"a","cursor":"0"})", "unknown_field"},
        {R"({"op":"online","cursor":"-1"})", "invalid_cursor"},
        {R"({"op":"online","cursor":""})", "invalid_cursor"},
        {R"({"op":"online","user":"a"})", "unknown_field"},
    };
    for (const auto& [frame, code] : cases) {
        INFO(frame.substr(0, 80));
        const auto o = read(frame);
        CHECK_FALSE(o.ok);
        CHECK(o.code == code);
        CHECK_FALSE(o.message.empty());
    }
    const auto binary = read(R"({"op":"send","text":"x"})", {true, true}, false);
    CHECK(binary.code == "not_text");
    CHECK(read(R"({"op":"send","text":"x","color":"red"})").message == R"(unexpected field "color")");
    CHECK(read(R"({"op":"send","text":")" + long_text + R"("})").message == "text longer than 16384 bytes");
}

TEST_CASE("protocol: what the broker or the locator cannot do is unsupported, before the fields are checked")
{
    const capabilities none{false, false};
    auto o = read(R"({"op":"join","room":"r","last_id":"1-0"})", none);
    CHECK(o.code == "unsupported");
    o = read(R"({"op":"join","room":"r","last_id":"not an id"})", none);
    CHECK(o.code == "unsupported"); // nothing to resume from: the id does not matter
    o = read(R"({"op":"where"})", none);
    CHECK(o.code == "unsupported");
    o = read(R"({"op":"online","cursor":"x"})", none);
    CHECK(o.code == "unsupported");
    o = read(R"({"op":"where","user":"a","extra":1})", none);
    CHECK(o.code == "unknown_field");
    CHECK(read(R"({"op":"join","room":"r"})", none).ok);
    CHECK(read(R"({"op":"send","text":"hello"})", capabilities{false, false, 4}).code == "too_long");
    CHECK(read(R"({"op":"send","text":"hell"})", capabilities{false, false, 4}).ok);
}

TEST_CASE("protocol: the message frame carries the sender, the text and an id, built once per message")
{
    const std::string payload = demo::protocol::make_payload("alice", "hi \"all\"\n\xc3\xa9");
    std::string out, scratch;

    backplane::message_view room{backplane::message_kind::room, "r1", "a", 7, "", payload};
    demo::protocol::write_message(out, room, "a", scratch);
    auto j = parsed(out);
    CHECK(j == nlohmann::json{{"type", "message"}, {"scope", "room"}, {"room", "r1"}, {"from", "alice"},
                              {"id", "a-7"}, {"text", "hi \"all\"\n\xc3\xa9"}, {"instance", "a"}});

    out.clear();
    backplane::message_view dm{backplane::message_kind::user, "bob", "b", 9, "1733011200000-0", payload, true};
    demo::protocol::write_message(out, dm, "a", scratch);
    j = parsed(out);
    CHECK(j["scope"] == "dm");
    CHECK(j["id"] == "1733011200000-0");
    CHECK(j["offline"] == true);
    CHECK_FALSE(j.contains("room"));

    out.clear();
    backplane::message_view global{backplane::message_kind::broadcast, "", "c", 1, "", "no separator"};
    demo::protocol::write_message(out, global, "a", scratch);
    j = parsed(out);
    CHECK(j["scope"] == "global");
    CHECK(j["from"] == "");
    CHECK(j["text"] == "no separator");
}

TEST_CASE("protocol: replies are the JSON the README shows")
{
    using namespace demo::protocol;
    CHECK(parsed(welcome("alice", "a")) == nlohmann::json{{"type", "welcome"}, {"user", "alice"}, {"instance", "a"}});
    CHECK(parsed(error_reply({"too_long", "text longer than 4 bytes"}))
          == nlohmann::json{{"type", "error"}, {"code", "too_long"}, {"message", "text longer than 4 bytes"}});
    // The reply to a frame that is not UTF-8 is, or the client would drop the connection.
    const auto not_utf8 = read("{\"op\":\"send\",\"text\":\"\xff\"}");
    CHECK(not_utf8.code == "invalid_json");
    CHECK_NOTHROW(parsed(error_reply({"invalid_json", not_utf8.message})));
    CHECK(parsed(membership(true, "r")) == nlohmann::json{{"type", "joined"}, {"room", "r"}});
    CHECK(parsed(membership(false, "r")) == nlohmann::json{{"type", "left"}, {"room", "r"}});
    CHECK(parsed(presence("bob", "b"))
          == nlohmann::json{{"type", "presence"}, {"user", "bob"}, {"online", true}, {"instance", "b"}});
    CHECK(parsed(presence("bob", ""))
          == nlohmann::json{{"type", "presence"}, {"user", "bob"}, {"online", false}, {"instance", nullptr}});

    backplane::recovery_result r{backplane::message_kind::room, "r1", false, 3,
                                 std::make_error_code(std::errc::timed_out)};
    auto j = parsed(recovery(r));
    CHECK(j["type"] == "recovery");
    CHECK(j["scope"] == "room");
    CHECK(j["room"] == "r1");
    CHECK(j["recovered"] == false);
    CHECK(j["replayed"] == 3);
    CHECK(j["error"].is_string());
    j = parsed(recovery({backplane::message_kind::broadcast, "", true, 0, {}}));
    CHECK(j == nlohmann::json{{"type", "recovery"}, {"scope", "global"}, {"recovered", true}, {"replayed", 0}});

    backplane::online_page page;
    page.users = {{"alice", "a"}, {"b\"ob", "b"}};
    page.cursor = "17";
    j = parsed(online(page));
    CHECK(j["type"] == "online");
    CHECK(j["users"] == nlohmann::json::array({{{"user", "alice"}, {"instance", "a"}},
                                              {{"user", "b\"ob"}, {"instance", "b"}}}));
    CHECK(j["cursor"] == "17");
    CHECK(parsed(online({}))["users"].empty());
    CHECK(parsed(std::string(draining)) == nlohmann::json{{"type", "draining"}});
}

TEST_CASE("protocol: the handshake's target names the user")
{
    CHECK(ws_user("/ws?user=alice") == std::optional<std::string>("alice"));
    CHECK(ws_user("/ws?last_id=1-0&user=al%69ce") == std::optional<std::string>("alice"));
    CHECK(ws_user("/ws?user=a+b") == std::optional<std::string>("a b")); // then refused as a name
    CHECK(ws_user("/ws?user=%zz") == std::optional<std::string>(""));   // broken escape: no valid name
    CHECK(ws_user("/ws") == std::optional<std::string>(""));
    CHECK(ws_user("/ws?usr=alice") == std::optional<std::string>(""));
    CHECK_FALSE(ws_user("/wss?user=alice"));
    CHECK_FALSE(ws_user("/"));
}

TEST_CASE("http: a label value is escaped as Prometheus reads it")
{
    CHECK(demo::http::label_value("a") == "a");
    CHECK(demo::http::label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("http: the page, the health check and the metrics, and nothing else")
{
    int metrics_calls = 0;
    const auto metrics = [&] {
        ++metrics_calls;
        return std::string("websocket_connections_total{instance=\"a\"} 0\n");
    };
    auto r = demo::http::respond("GET", "/", false, metrics);
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/html; charset=utf-8");
    CHECK(r.body == demo::chat_page);
    CHECK(r.no_store);
    CHECK(demo::http::respond("GET", "/index.html?x=1", false, metrics).status == 200);

    r = demo::http::respond("GET", "/healthz", false, metrics);
    CHECK((r.status == 200 && r.body == "ok\n"));
    r = demo::http::respond("GET", "/healthz", true, metrics);
    CHECK((r.status == 503 && r.body == "draining\n"));

    CHECK(metrics_calls == 0);
    r = demo::http::respond("GET", "/metrics", false, metrics);
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/plain; version=0.0.4");
    CHECK(metrics_calls == 1);

    CHECK(demo::http::respond("GET", "/nope", false, metrics).status == 404);
    CHECK(demo::http::respond("POST", "/healthz", false, metrics).status == 405);
    CHECK(metrics_calls == 1);
}
