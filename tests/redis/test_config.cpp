#include <backplane/redis/config.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace backplane;

TEST_CASE("redis URLs: host, port, database, credentials")
{
    std::error_code ec;
    auto c = redis::parse_url("redis://localhost", ec);
    CHECK_FALSE(ec);
    CHECK(c.host == "localhost");
    CHECK(c.port == 6379);
    CHECK(c.database == 0);
    CHECK(c.password.empty());
    CHECK(c.unix_path.empty());

    c = redis::parse_url("redis://10.0.0.7:7000/3", ec);
    CHECK_FALSE(ec);
    CHECK(c.host == "10.0.0.7");
    CHECK(c.port == 7000);
    CHECK(c.database == 3);

    c = redis::parse_url("redis://:s3cret@h:1/", ec);
    CHECK_FALSE(ec);
    CHECK(c.user.empty());
    CHECK(c.password == "s3cret");

    c = redis::parse_url("redis://app:p%40ss%3Aw@h:6380/15", ec);
    CHECK_FALSE(ec);
    CHECK(c.user == "app");
    CHECK(c.password == "p@ss:w");
    CHECK(c.port == 6380);
    CHECK(c.database == 15);

    c = redis::parse_url("redis://[::1]:6390", ec);
    CHECK_FALSE(ec);
    CHECK(c.host == "::1");
    CHECK(c.port == 6390);
}

TEST_CASE("unix URLs: a path, credentials, a database")
{
    std::error_code ec;
    auto c = redis::parse_url("unix:///run/redis/redis.sock", ec);
    CHECK_FALSE(ec);
    CHECK(c.unix_path == "/run/redis/redis.sock");
    c = redis::parse_url("unix://u:pw@/tmp/r.sock?db=2", ec);
    CHECK_FALSE(ec);
    CHECK(c.unix_path == "/tmp/r.sock");
    CHECK(c.user == "u");
    CHECK(c.password == "pw");
    CHECK(c.database == 2);

    // A path may hold '@': the credentials end before the path starts.
    c = redis::parse_url("unix://:pw@/run/user@1000/r.sock", ec);
    CHECK_FALSE(ec);
    CHECK(c.unix_path == "/run/user@1000/r.sock");
    CHECK(c.password == "pw");
    c = redis::parse_url("unix:///run/user@1000/r.sock", ec);
    CHECK_FALSE(ec);
    CHECK(c.unix_path == "/run/user@1000/r.sock");
    CHECK(c.password.empty());
}

TEST_CASE("bad URLs are a clear error, and throw only where asked to")
{
    for (const std::string bad : {"", "localhost:6379", "http://h:1", "redis://", "redis://h:", "redis://h:0",
                                  "redis://h:65536", "redis://h:12x", "redis://h:1/x", "redis://h:1/-1",
                                  "redis://@h", "redis://u:@h", "redis://h:1/%", "redis://p%zz@h",
                                  "redis://[::1", "redis://[::1]x", "unix://", "unix://relative/path",
                                  "unix:///tmp/s?db=x", "unix:///tmp/s?foo=1", "redis://h h:1"}) {
        INFO("url '" << bad << "'");
        std::error_code ec;
        redis::parse_url(bad, ec);
        CHECK(ec == error::invalid_url);
        CHECK_THROWS_AS(redis::parse_url(bad), std::invalid_argument);
    }
    std::error_code ec = error::invalid_url;
    redis::parse_url("redis://h:1", ec);
    CHECK_FALSE(ec); // cleared on success
    CHECK(make_error_code(error::invalid_url).message() == "invalid Redis URL");
}

TEST_CASE("a config describes itself without its password")
{
    auto c = redis::parse_url("redis://u:secret@h:7/1");
    CHECK(c.describe() == "redis://h:7/1");
    CHECK(c.describe().find("secret") == std::string::npos);
}
