// tests/e2e/instance.hpp - backplane-instance processes for the end-to-end
// tests: one on a port of its choosing, or two ("a" and "b") on a private
// redis-server; JSON frames read into flat objects; waits on what Redis holds.
#ifndef BACKPLANE_TESTS_E2E_INSTANCE_HPP
#define BACKPLANE_TESTS_E2E_INSTANCE_HPP

#include "ws_client.hpp"

#include "../support/process.hpp"
#include "../support/redis_cli.hpp"
#include "../support/redis_server.hpp"
#include "../support/skip.hpp"
#include "json.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace backplane::test {

using namespace std::chrono_literals;

/// One backplane-instance process on a port of its choosing.
class instance {
public:
    /// Starts `id` on the Redis at `redis_url` (redis-pubsub, unless `extra`
    /// says otherwise) and waits until it listens and, with a Redis broker,
    /// until both its Redis connections are ready. `launcher` runs before
    /// the program (e.g. prlimit and its options).
    instance(const std::string& id, const std::string& redis_url, std::vector<std::string> extra = {},
             std::vector<std::string> launcher = {})
        : id_(id)
    {
        const auto dir = std::filesystem::temp_directory_path();
        log_ = (dir / ("backplane-e2e-" + id + "-" + std::to_string(::getpid()) + ".log")).string();
        std::filesystem::remove(log_); // left by an instance of this name that did not start
        std::vector<std::string> argv = launcher;
        for (const char* arg : {BACKPLANE_INSTANCE_PATH, "--port", "0", "--address", "127.0.0.1", "--instance-id"})
            argv.emplace_back(arg);
        for (const auto& arg : {id, std::string("--broker"), std::string("redis-pubsub"), std::string("--redis"), redis_url})
            argv.push_back(arg);
        // Users named by ?user=; the tests of tokens say --auth jwt (the last flag holds).
        argv.emplace_back("--auth");
        argv.emplace_back("none");
        // The tests send as fast as they can: no rate limit, unless `extra`
        // sets one (the last of a flag given twice holds).
        for (const char* arg : {"--max-rate", "0", "--max-broadcast-rate", "0", "--max-bytes-rate", "0",
                                "--max-user-rate", "0", "--max-user-broadcast-rate", "0"})
            argv.emplace_back(arg);
        argv.insert(argv.end(), extra.begin(), extra.end());
        bool memory = false;
        for (std::size_t i = 0; i + 1 < extra.size(); ++i)
            memory = memory || (extra[i] == "--broker" && extra[i + 1] == "memory");
        process_options o;
        o.output_file = log_;
        process_ = std::make_unique<process>(argv, o);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (port_ == 0) {
            std::ifstream in(log_);
            std::string word;
            if (in >> word && word == "listening" && in >> word >> port_)
                break;
            port_ = 0;
            if (std::chrono::steady_clock::now() > deadline || !process_->running())
                throw std::runtime_error("backplane-instance " + id + " did not start: " + log());
            std::this_thread::sleep_for(5ms); // polls the log for the line that says it listens
        }
        if (!memory && !wait_until([&] { return metric("backplane_redis_connected") == 1; }, 10s))
            throw std::runtime_error("backplane-instance " + id + " did not reach Redis");
    }

    ~instance() { std::filesystem::remove(log_); }

    const std::string& id() const { return id_; }
    std::uint16_t port() const { return port_; }
    process& proc() { return *process_; }
    long long metric(std::string_view name) const { return metric_value(http_get(port_, "/metrics"), name); }

    /// What the instance wrote to stdout and stderr so far.
    std::string log() const
    {
        std::ifstream in(log_);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    /// A client of `user` (the rest of the query may follow: "alice&last_id=1-0"), welcomed.
    std::unique_ptr<ws_client> connect(const std::string& user, int rcvbuf = 0)
    {
        auto c = std::make_unique<ws_client>(port_, "/ws?user=" + user, rcvbuf);
        auto welcome = c->read_text();
        REQUIRE(welcome);
        REQUIRE(welcome->find("\"type\":\"welcome\"") != std::string::npos);
        return c;
    }

private:
    std::string id_;
    std::string log_;
    std::unique_ptr<process> process_;
    std::uint16_t port_ = 0;
};

/// Redis and two instances, "a" and "b", started with `flags`.
struct cluster {
    explicit cluster(const std::vector<std::string>& flags = {})
        : a("a", redis.url(), flags), b("b", redis.url(), flags), cli(redis.port())
    {
    }

    /// Waits until `n` connections (instances) subscribe `channel` in Redis:
    /// a join is acknowledged once the hub has it, and its SUBSCRIBE is on
    /// its way.
    void await_subscribers(const std::string& channel, long long n)
    {
        INFO("PUBSUB NUMSUB " << channel << " == " << n);
        REQUIRE(wait_until([&] { return cli.subscribers(channel) == n; }));
    }

    redis_server redis;
    instance a;
    instance b;
    redis_cli cli;
};

inline demo::json::flat_object parse(const std::optional<std::string>& text)
{
    REQUIRE(text);
    demo::json::flat_object o;
    INFO(*text);
    REQUIRE(demo::json::parse(*text, o).empty());
    return o;
}

inline std::string field(const demo::json::flat_object& o, std::string_view key)
{
    const auto* v = o.find(key);
    return v ? v->text : std::string("<absent>");
}

/// Reads frames until the one whose "text" is `marker`; returns the texts
/// (of message frames) read before it. A test that must show that nothing
/// arrived sends a marker after the thing that must not arrive: what the
/// client receives before the marker is what it received, however busy the
/// machine (one channel delivers in order).
inline std::vector<std::string> texts_until(ws_client& c, const std::string& marker)
{
    std::vector<std::string> before;
    for (;;) {
        auto m = parse(c.read_text());
        if (field(m, "text") == marker)
            return before;
        before.push_back(field(m, "type") == "message" ? field(m, "text") : "<" + field(m, "type") + ">");
    }
}

/// The HTTP status line of a response ("HTTP/1.1 503 Service Unavailable").
inline std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

/// The body of a response.
inline std::string body_of(const std::string& response)
{
    const auto at = response.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : response.substr(at + 4);
}

// Writes the handshakes of `paths` at once, before reading any answer: the
// instance validates them all before any is open. @returns the status line
// of each answer.
inline std::vector<std::string> handshakes_together(std::uint16_t port, const std::vector<std::string>& paths,
                                                    std::vector<int>& fds)
{
    for (std::size_t i = 0; i < paths.size(); ++i) {
        fds.push_back(connect_loopback(port));
        REQUIRE(fds.back() >= 0);
    }
    for (std::size_t i = 0; i < fds.size(); ++i) {
        const std::string req = handshake_request(paths[i]);
        REQUIRE(::send(fds[i], req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    }
    std::vector<std::string> status;
    for (const int fd : fds) {
        const timeval wait{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
        std::string in;
        char buf[4096];
        ssize_t n = 0;
        while (in.find("\r\n\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0)
            in.append(buf, static_cast<std::size_t>(n));
        status.push_back(status_line(in));
    }
    return status;
}

} // namespace backplane::test

#endif
