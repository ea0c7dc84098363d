// http_request's path and query parameters, and the percent-decoding they
// share with the Redis URL (detail/url.hpp).
#include <backplane/http.hpp>

#include "support/fake_request.hpp"

#include <catch2/catch.hpp>

#include <string>

using backplane::http_request;
using backplane::http_response;
using backplane::test::fake_request;
namespace bd = backplane::detail;

namespace {

std::string decoded(std::string_view in, bd::plus_sign plus = bd::plus_sign::literal)
{
    std::string out;
    return bd::percent_decode(in, out, plus) ? out : "<malformed>";
}

} // namespace

TEST_CASE("percent_decode: escapes in either case, '+' as the caller says, broken escapes refused")
{
    CHECK(decoded("a%41%7e%7E") == "aA~~");
    CHECK(decoded("p%40ss+word") == "p@ss+word");
    CHECK(decoded("a+b%2B", bd::plus_sign::space) == "a b+");
    CHECK(decoded("%") == "<malformed>");
    CHECK(decoded("ab%4") == "<malformed>");
    CHECK(decoded("%zz") == "<malformed>");
    CHECK(decoded("") == "");
}

TEST_CASE("http_request: the path is the target up to its query, as sent")
{
    CHECK(fake_request("GET", "/ws?user=a").path() == "/ws");
    CHECK(fake_request("GET", "/ws").path() == "/ws");
    CHECK(fake_request("GET", "/a%20b?").path() == "/a%20b");
    CHECK(fake_request("GET", "/ws?user=a").target() == "/ws?user=a");
    CHECK(fake_request("POST", "/").method() == "POST");
}

TEST_CASE("http_request: a query parameter is the first of its name, decoded as a form's")
{
    const fake_request r("GET", "/ws?user=al%20ice+b&last_id=&x=1&user=bob&last_idx=9&bad=%g1&flag");
    CHECK(r.query_parameter("user") == "al ice b");
    CHECK(r.query_parameter("last_id") == "");
    CHECK(r.query_parameter("x") == "1");
    CHECK(r.query_parameter("last") == std::nullopt);
    CHECK(r.query_parameter("bad") == std::nullopt);  // malformed
    CHECK(r.query_parameter("flag") == std::nullopt); // no value at all
    CHECK(fake_request("GET", "/ws").query_parameter("user") == std::nullopt);
}

TEST_CASE("http_request: headers and the peer come from the transport")
{
    const fake_request r("GET", "/", {{"Origin", "https://example.com"}});
    CHECK(r.header("Origin") == "https://example.com");
    CHECK(r.header("Authorization").empty());
    CHECK(r.peer_address() == "192.0.2.1");
}

TEST_CASE("http_response: headers keep their order")
{
    http_response res;
    CHECK(res.status == 0);
    res.add_header("A", "1").add_header("B", "2");
    CHECK(res.headers == std::vector<std::pair<std::string, std::string>>{{"A", "1"}, {"B", "2"}});
}
