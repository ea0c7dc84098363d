// Identity end to end: a real instance with --auth jwt, real clients over
// loopback presenting tokens minted with libjwt. Nobody is somebody else,
// a token's rooms bound what it may enter, an expired token closes its
// connection unless refreshed, and a page of another site cannot connect.
// And what an instance exposes: /metrics on an address of its own, the
// Redis password never on the command line.
#include "instance.hpp"

#include "../support/tokens.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

using namespace backplane::test;
using namespace std::chrono_literals;

namespace {

// A key file that lives as long as the test.
class key_file {
public:
    explicit key_file(const std::string& contents)
        : path_((std::filesystem::temp_directory_path() / ("backplane-key-" + std::to_string(::getpid()))).string())
    {
        std::ofstream(path_) << contents;
    }
    ~key_file() { std::filesystem::remove(path_); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

std::string reply_code(ws_client& c, const std::string& request)
{
    c.send_text(request);
    auto m = parse(c.read_text());
    CHECK(field(m, "type") == "error");
    return field(m, "code");
}

// The status line with which the handshake is refused; empty if it is not.
std::string refused(std::uint16_t port, const std::string& path, const std::string& headers = "")
{
    try {
        ws_client c(port, path, 0, headers);
        return "";
    } catch (const std::runtime_error& e) {
        return e.what();
    }
}

std::string claims(const std::string& user, std::chrono::seconds life, const std::string& more = "")
{
    return R"({"sub":")" + user + R"(","exp":)" + std::to_string(epoch_seconds(life)) + more + "}";
}

} // namespace

TEST_CASE("auth: the user is the token's, presented three ways, and no token, a bad one or another's name is refused")
{
    key_file key(hs256_secret + "\n"); // a trailing newline is not part of the secret
    instance a("a", "redis://127.0.0.1:1", {"--broker", "memory", "--auth", "jwt", "--auth-key", key.path()});

    ws_client by_header(a.port(), "/ws", 0, bearer(token_for("alice")));
    CHECK(field(parse(by_header.read_text()), "user") == "alice");
    ws_client by_query(a.port(), "/ws?token=" + token_for("bob"));
    CHECK(field(parse(by_query.read_text()), "user") == "bob");
    ws_client by_protocol(a.port(), "/ws", 0, "Sec-WebSocket-Protocol: backplane, bearer." + token_for("carol") + "\r\n");
    CHECK(field(parse(by_protocol.read_text()), "user") == "carol");
    CHECK(by_protocol.response().find("\r\nSec-WebSocket-Protocol: backplane") != std::string::npos);
    ws_client routed(a.port(), "/ws?user=dave", 0, bearer(token_for("dave"))); // ?user= may stay, for routing
    CHECK(field(parse(routed.read_text()), "user") == "dave");

    CHECK(refused(a.port(), "/ws?user=alice").find("401") != std::string::npos);
    CHECK(refused(a.port(), "/ws?user=alice", bearer(token_for("mallory"))).find("403") != std::string::npos);
    CHECK(refused(a.port(), "/ws", bearer(token_for("alice", -1h))).find("401") != std::string::npos);
    CHECK(refused(a.port(), "/ws", bearer(mint(claims("alice", 1h), JWT_ALG_HS256, hs256_secret + "x")))
              .find("401") != std::string::npos);
    CHECK(refused(a.port(), "/ws", bearer("not-a-token")).find("401") != std::string::npos);
    CHECK(refused(a.port(), "/ws", bearer(token_for("a:b"))).find("401") != std::string::npos);
    CHECK(a.metric("backplane_connections_rejected_total") == 6);

    // Those refused took nothing from those connected.
    by_header.send_text(R"({"op":"send","text":"still here"})");
    CHECK(field(parse(by_query.read_text()), "text") == "still here");
}

TEST_CASE("auth: a wrong handshake gets 401 with WWW-Authenticate, and the reason")
{
    key_file key(hs256_secret);
    instance a("a", "redis://127.0.0.1:1", {"--broker", "memory", "--auth", "jwt", "--auth-key", key.path()});
    const auto answer = round_trip(a.port(), handshake_request("/ws", bearer(token_for("alice", -1h))));
    CHECK(status_line(answer) == "HTTP/1.1 401 Unauthorized");
    CHECK(answer.find("\r\nWWW-Authenticate: Bearer\r\n") != std::string::npos);
    CHECK(body_of(answer).rfind("token expired: present a token", 0) == 0);
}

TEST_CASE("auth: RS256 and ES256 with the public key, and a token of the other algorithm is refused")
{
    instance rs("rs", "redis://127.0.0.1:1", {"--broker", "memory", "--auth-algorithm", "RS256", "--auth-key",
                                              BACKPLANE_TEST_KEYS_DIR "/rs256.pub.pem", "--auth", "jwt"});
    instance es("es", "redis://127.0.0.1:1", {"--broker", "memory", "--auth-algorithm", "ES256", "--auth-key",
                                              BACKPLANE_TEST_KEYS_DIR "/es256.pub.pem", "--auth", "jwt"});
    const auto rs_token = mint(claims("alice", 1h), JWT_ALG_RS256, test_key("rs256.pem"));
    const auto es_token = mint(claims("alice", 1h), JWT_ALG_ES256, test_key("es256.pem"));
    CHECK(refused(rs.port(), "/ws", bearer(rs_token)).empty());
    CHECK(refused(es.port(), "/ws", bearer(es_token)).empty());
    CHECK(refused(rs.port(), "/ws", bearer(es_token)).find("401") != std::string::npos);
    CHECK(refused(es.port(), "/ws", bearer(rs_token)).find("401") != std::string::npos);
    // Signed with the public key as an HMAC secret: refused (algorithm confusion).
    CHECK(refused(rs.port(), "/ws", bearer(mint(claims("alice", 1h), JWT_ALG_HS256, test_key("rs256.pub.pem"))))
              .find("401") != std::string::npos);
}

TEST_CASE("auth: the rooms claim bounds joins and room messages, and the others see nothing of a refused one")
{
    key_file key(hs256_secret);
    cluster c({"--auth", "jwt", "--auth-key", key.path()});
    ws_client alice(c.a.port(), "/ws", 0, bearer(mint(claims("alice", 1h, R"(,"rooms":["lobby","team-*"])"))));
    ws_client bob(c.b.port(), "/ws", 0, bearer(token_for("bob")));
    alice.read_text();
    bob.read_text();
    bob.send_text(R"({"op":"join","room":"secret"})");
    CHECK(field(parse(bob.read_text()), "type") == "joined");
    c.await_subscribers("chat:room:secret", 1);

    CHECK(reply_code(alice, R"({"op":"join","room":"secret"})") == "forbidden");
    CHECK(reply_code(alice, R"({"op":"send","room":"secret","text":"let me in"})") == "forbidden");
    alice.send_text(R"({"op":"join","room":"team-red"})");
    CHECK(field(parse(alice.read_text()), "type") == "joined");
    alice.send_text(R"({"op":"send","text":"mark"})");
    CHECK(texts_until(bob, "mark").empty()); // nothing of "let me in"
    CHECK(c.cli.subscribers("chat:room:secret") == 1); // b's only: a subscribed nothing for alice
}

TEST_CASE("auth: a connection is closed when its token expires, unless it presents a newer one")
{
    key_file key(hs256_secret);
    instance a("a", "redis://127.0.0.1:1",
               {"--broker", "memory", "--auth", "jwt", "--auth-key", key.path(), "--auth-leeway", "0"});
    ws_client lapsing(a.port(), "/ws", 0, bearer(token_for("alice", 2s)));
    ws_client renewing(a.port(), "/ws", 0, bearer(token_for("bob", 2s)));
    lapsing.read_text();
    renewing.read_text();

    CHECK(reply_code(renewing, R"({"op":"refresh","token":")" + token_for("alice", 1h) + "\"}") == "forbidden");
    CHECK(reply_code(renewing, R"({"op":"refresh","token":"junk"})") == "invalid_token");
    renewing.send_text(R"({"op":"refresh","token":")" + token_for("bob", 1h) + "\"}");
    const auto answer = parse(renewing.read_text());
    CHECK(field(answer, "type") == "refreshed");
    CHECK(std::stoll(field(answer, "expires")) >= epoch_seconds(59min));

    const auto closed = lapsing.read(6s); // exp is 2 s away, swept once a second
    REQUIRE(closed);
    CHECK(closed->opcode == 8);
    CHECK(closed->close_code() == 1008);
    CHECK(closed->close_reason() == "token expired");

    renewing.send_text(R"({"op":"send","text":"still here"})");
    CHECK(field(parse(renewing.read_text()), "text") == "still here");
}

TEST_CASE("auth: a page of another site cannot open a socket (Origin), unless allowed")
{
    instance own("own", "redis://127.0.0.1:1", {"--broker", "memory"});
    CHECK(refused(own.port(), "/ws?user=a", "Origin: http://127.0.0.1\r\n").empty()); // Host: 127.0.0.1
    CHECK(refused(own.port(), "/ws?user=a", "Origin: https://evil.example\r\n").find("403") != std::string::npos);
    CHECK(refused(own.port(), "/ws?user=a").empty()); // not a browser: no Origin

    instance listed("listed", "redis://127.0.0.1:1",
                    {"--broker", "memory", "--allowed-origin", "https://chat.example", "--allowed-origin",
                     "https://admin.example"});
    CHECK(refused(listed.port(), "/ws?user=a", "Origin: https://chat.example\r\n").empty());
    CHECK(refused(listed.port(), "/ws?user=a", "Origin: https://admin.example\r\n").empty());
    CHECK(refused(listed.port(), "/ws?user=a", "Origin: http://127.0.0.1\r\n").find("403") != std::string::npos);
    CHECK(refused(listed.port(), "/ws?user=a", "Origin: https://chat.example.evil\r\n").find("403") !=
          std::string::npos);
}

TEST_CASE("auth: who is online is not listed unless --online on, and where answers unless --where off")
{
    cluster c;
    auto alice = c.a.connect("alice");
    CHECK(reply_code(*alice, R"({"op":"online"})") == "forbidden");
    alice->send_text(R"({"op":"where","user":"alice"})");
    CHECK(field(parse(alice->read_text()), "type") == "presence");

    instance quiet("quiet", c.redis.url(), {"--where", "off"});
    auto bob = quiet.connect("bob");
    CHECK(reply_code(*bob, R"({"op":"where","user":"alice"})") == "forbidden");
    CHECK(reply_code(*bob, R"({"op":"online"})") == "forbidden");
}

TEST_CASE("auth: an HS256 key shorter than 32 bytes is refused at start")
{
    key_file key("short");
    REQUIRE_THROWS_WITH(instance("a", "redis://127.0.0.1:1", {"--broker", "memory", "--auth", "jwt", "--auth-key",
                                                              key.path()}),
                        Catch::Contains("at least 32 bytes"));
}

TEST_CASE("auth: /metrics on an address of its own, and not where clients connect, with label values escaped")
{
    instance a("m\"1", "redis://127.0.0.1:1", {"--broker", "memory", "--metrics-address", "127.0.0.1:0"});
    const auto log = a.log();
    const auto at = log.find("\nmetrics on ");
    REQUIRE(at != std::string::npos);
    const auto metrics_port = static_cast<std::uint16_t>(std::stoul(log.substr(at + 12)));

    CHECK(status_line(http_get(a.port(), "/metrics")) == "HTTP/1.1 404 Not Found");
    CHECK(status_line(http_get(a.port(), "/healthz")) == "HTTP/1.1 200 OK");
    const auto metrics = http_get(metrics_port, "/metrics");
    CHECK(status_line(metrics) == "HTTP/1.1 200 OK");
    CHECK(metrics.find("\nwebsocket_connections_total{instance=\"m\\\"1\"} 0\n") != std::string::npos);
    CHECK(status_line(http_get(metrics_port, "/")) == "HTTP/1.1 404 Not Found");
    CHECK(refused(metrics_port, "/ws?user=a").find("404") != std::string::npos);
}

TEST_CASE("auth: the Redis password from a file or the environment, not the command line")
{
    redis_server_options o;
    o.requirepass = "s3cret pass";
    redis_server redis(o);
    key_file password("s3cret pass\n");
    // The instances wait until they are on Redis, which refuses them without the password.
    instance from_file("a", redis.url(), {"--redis-password-file", password.path()});
    ::setenv("BACKPLANE_REDIS_PASSWORD", "s3cret pass", 1);
    instance from_env("b", redis.url());
    ::unsetenv("BACKPLANE_REDIS_PASSWORD");
    CHECK(from_file.metric("backplane_redis_connected") == 1);
    CHECK(from_env.metric("backplane_redis_connected") == 1);
    auto alice = from_file.connect("alice");
    auto bob = from_env.connect("bob");
    redis_cli cli(redis.port());
    REQUIRE(cli.text({"AUTH", "s3cret pass"}) == "OK");
    REQUIRE(wait_until([&] { return cli.subscribers("chat:global") == 2; }));
    alice->send_text(R"({"op":"send","text":"through Redis"})");
    CHECK(field(parse(bob->read_text()), "text") == "through Redis");
}
