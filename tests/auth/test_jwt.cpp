// backplane/auth/jwt.hpp: tokens minted with libjwt and verified, every way
// a token can be wrong refused, and the three places a handshake carries one.
#include <backplane/auth/jwt.hpp>

#include "../support/fake_request.hpp"
#include "../support/tokens.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;
using backplane::error;
using backplane::auth::algorithm;
using backplane::auth::identity;
using backplane::auth::jwt_options;
using backplane::auth::jwt_verifier;
using backplane::test::epoch_seconds;
using backplane::test::fake_request;
using backplane::test::hs256_secret;
using backplane::test::mint;
using backplane::test::test_key;

namespace {

jwt_verifier verifier(algorithm alg = algorithm::hs256, std::string key = hs256_secret)
{
    jwt_options o;
    o.alg = alg;
    o.key = std::move(key);
    return jwt_verifier(o);
}

std::string claims(const std::string& sub = "alice", std::chrono::seconds life = 1h, const std::string& more = "")
{
    return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(epoch_seconds(life)) + more + "}";
}

std::error_code check(const jwt_verifier& v, const std::string& token)
{
    identity id;
    return v.verify(token, id);
}

std::string base64url(const std::string& in)
{
    static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    unsigned bits = 0, n = 0;
    for (unsigned char c : in) {
        bits = (bits << 8) | c;
        n += 8;
        while (n >= 6)
            out.push_back(digits[(bits >> (n -= 6)) & 63]);
    }
    if (n > 0)
        out.push_back(digits[(bits << (6 - n)) & 63]);
    return out;
}

} // namespace

TEST_CASE("jwt: a token signed with the operator's algorithm and key names its user, expiry and rooms")
{
    const auto v = verifier();
    identity id;
    REQUIRE_FALSE(v.verify(mint(claims("alice", 1h, R"(,"rooms":["lobby","team-*"])")), id));
    CHECK(id.user == "alice");
    CHECK(id.expires > std::chrono::system_clock::now() + 59min);
    CHECK_FALSE(id.every_room);
    CHECK(id.may_enter("lobby"));
    CHECK(id.may_enter("team-red"));
    CHECK(id.may_enter("team-"));
    CHECK_FALSE(id.may_enter("lobby2"));
    CHECK_FALSE(id.may_enter("red-team"));

    REQUIRE_FALSE(v.verify(mint(claims("bob")), id));
    CHECK(id.user == "bob");
    CHECK(id.every_room);
    CHECK(id.may_enter("anything"));

    SECTION("RS256 and ES256, with the public key")
    {
        CHECK_FALSE(check(verifier(algorithm::rs256, test_key("rs256.pub.pem")),
                          mint(claims(), JWT_ALG_RS256, test_key("rs256.pem"))));
        CHECK_FALSE(check(verifier(algorithm::es256, test_key("es256.pub.pem")),
                          mint(claims(), JWT_ALG_ES256, test_key("es256.pem"))));
    }
}

TEST_CASE("jwt: a token signed otherwise, or with another algorithm than the operator's, is refused")
{
    const auto v = verifier();
    const std::string good = mint(claims());
    REQUIRE_FALSE(check(v, good));

    SECTION("another secret")
    {
        CHECK(check(v, mint(claims(), JWT_ALG_HS256, hs256_secret + "!")) == error::invalid_token);
    }
    SECTION("a payload changed after signing")
    {
        const auto dot = good.find('.');
        const auto dot2 = good.find('.', dot + 1);
        const std::string forged = good.substr(0, dot + 1) + base64url(claims("mallory")) + good.substr(dot2);
        CHECK(check(v, forged) == error::invalid_token);
    }
    SECTION("a signature changed")
    {
        std::string forged = good;
        forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
        CHECK(check(v, forged) == error::invalid_token);
    }
    SECTION("alg none, with or without a signature")
    {
        const std::string unsigned_token =
            base64url(R"({"alg":"none","typ":"JWT"})") + "." + base64url(claims()) + ".";
        CHECK(check(v, unsigned_token) == error::invalid_token);
        CHECK(check(v, unsigned_token + good.substr(good.rfind('.') + 1)) == error::invalid_token);
    }
    SECTION("HS256 signed with the RS256 public key as its secret (algorithm confusion)")
    {
        const auto rs = verifier(algorithm::rs256, test_key("rs256.pub.pem"));
        CHECK(check(rs, mint(claims(), JWT_ALG_HS256, test_key("rs256.pub.pem"))) == error::invalid_token);
    }
    SECTION("RS256 where the operator chose ES256, and the reverse")
    {
        CHECK(check(verifier(algorithm::es256, test_key("es256.pub.pem")),
                    mint(claims(), JWT_ALG_RS256, test_key("rs256.pem"))) == error::invalid_token);
        CHECK(check(verifier(algorithm::rs256, test_key("rs256.pub.pem")),
                    mint(claims(), JWT_ALG_ES256, test_key("es256.pem"))) == error::invalid_token);
    }
    SECTION("not a token")
    {
        for (const std::string& bad : std::initializer_list<std::string>{"", "abc", "a.b.c", "..", good + ".", std::string(9000, 'a')})
            CHECK(check(v, bad) == error::invalid_token);
        CHECK(check(v, std::string(good).insert(5, 1, '\0')) == error::invalid_token);
    }
}

TEST_CASE("jwt: claims are checked: sub a valid name, exp present and to come, nbf past, rooms names")
{
    const auto v = verifier();
    CHECK(check(v, mint(claims("alice", -1h))) == error::token_expired);
    CHECK_FALSE(check(v, mint(claims("alice", -10s)))); // within the leeway
    CHECK(check(v, mint(R"({"sub":"alice"})")) == error::invalid_token);
    CHECK(check(v, mint(R"({"sub":"alice","exp":"tomorrow"})")) == error::invalid_token);
    // Past what the clock holds (found by the fuzz target: the conversion overflowed).
    CHECK(check(v, mint(R"({"sub":"alice","exp":200000000000})")) == error::invalid_token);
    CHECK(check(v, mint(claims("alice", 1h, R"(,"nbf":-200000000000)"))) == error::invalid_token);
    CHECK(check(v, mint(R"({"exp":)" + std::to_string(epoch_seconds(1h)) + "}")) == error::invalid_token);
    for (const std::string sub : {"a:b", "", "has space", "x*"})
        CHECK(check(v, mint(claims(sub))) == error::invalid_token);
    CHECK(check(v, mint(claims("alice", 1h, R"(,"sub2":1,"nbf":)" + std::to_string(epoch_seconds(1h))))) ==
          error::invalid_token);
    CHECK_FALSE(check(v, mint(claims("alice", 1h, R"(,"nbf":)" + std::to_string(epoch_seconds(-1h))))));
    for (const std::string rooms : {R"("lobby")", R"(["a:b"])", R"([1])", R"(["ok",""])", R"({"a":1})"})
        CHECK(check(v, mint(claims("alice", 1h, R"(,"rooms":)" + rooms))) == error::invalid_token);
    identity id;
    REQUIRE_FALSE(v.verify(mint(claims("alice", 1h, R"(,"rooms":[])")), id));
    CHECK_FALSE(id.may_enter("lobby")); // an empty list: no room
}

TEST_CASE("jwt: issuer and audience, when the operator sets them")
{
    jwt_options o;
    o.key = hs256_secret;
    o.issuer = "https://login.example";
    o.audience = "chat";
    const jwt_verifier v(o);
    CHECK_FALSE(check(v, mint(claims("alice", 1h, R"(,"iss":"https://login.example","aud":"chat")"))));
    CHECK_FALSE(check(v, mint(claims("alice", 1h, R"(,"iss":"https://login.example","aud":["mail","chat"])"))));
    CHECK(check(v, mint(claims("alice", 1h, R"(,"iss":"https://evil.example","aud":"chat")"))) ==
          error::invalid_token);
    CHECK(check(v, mint(claims("alice", 1h, R"(,"iss":"https://login.example","aud":"mail")"))) ==
          error::invalid_token);
    CHECK(check(v, mint(claims("alice", 1h, R"(,"aud":"chat")"))) == error::invalid_token);
}

TEST_CASE("jwt: an HS256 secret shorter than 32 bytes, or no key, is refused at setup")
{
    CHECK_THROWS_AS(verifier(algorithm::hs256, "short"), std::invalid_argument);
    CHECK_THROWS_AS(verifier(algorithm::rs256, ""), std::invalid_argument);
}

TEST_CASE("jwt: room patterns")
{
    CHECK(identity::matches("*", "x"));
    CHECK(identity::matches("a*b*c", "aXbYc"));
    CHECK(identity::matches("a*b*c", "abbbc"));
    CHECK_FALSE(identity::matches("a*b*c", "abX"));
    CHECK(identity::matches("**", "anything"));
    CHECK_FALSE(identity::matches("lobby", "lobb"));
}

TEST_CASE("jwt: the handshake's token, from Authorization, a subprotocol or the query")
{
    using backplane::auth::handshake_token;
    CHECK(handshake_token(fake_request("GET", "/ws", {{"Authorization", "Bearer abc.def.ghi"}})) == "abc.def.ghi");
    CHECK(handshake_token(fake_request("GET", "/ws", {{"Sec-WebSocket-Protocol", "backplane, bearer.abc.def.ghi"}})) ==
          "abc.def.ghi");
    CHECK(handshake_token(fake_request("GET", "/ws?token=abc.def.ghi&user=a")) == "abc.def.ghi");
    CHECK(handshake_token(fake_request("GET", "/ws?token=q", {{"Authorization", "Bearer h"}})) == "h");
    CHECK_FALSE(handshake_token(fake_request("GET", "/ws?user=a", {{"Authorization", "Basic abc"},
                                                             {"Sec-WebSocket-Protocol", "backplane"}})));
    using backplane::auth::offers_subprotocol;
    CHECK(offers_subprotocol(fake_request("GET", "/ws", {{"Sec-WebSocket-Protocol", "bearer.x , backplane"}})));
    CHECK_FALSE(offers_subprotocol(fake_request("GET", "/ws", {{"Sec-WebSocket-Protocol", "backplane2, bearer.x"}})));
    CHECK_FALSE(offers_subprotocol(fake_request("GET", "/ws")));
}
