// tests/support/redis_cli.hpp - blocking Redis commands for tests that wait
// on what Redis holds (a subscription, a stream, an entry of the map)
// instead of sleeping, through hiredis' synchronous API.
//
//   redis_cli cli(server.port());
//   REQUIRE(wait_until([&] { return cli.integer({"XLEN", "inbox:zoe"}) == 3; }));
#ifndef BACKPLANE_TESTS_SUPPORT_REDIS_CLI_HPP
#define BACKPLANE_TESTS_SUPPORT_REDIS_CLI_HPP

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace backplane::test {

/// Calls `done()` every few milliseconds until it is true or `timeout` has
/// passed; returns done(). What a test waits for is the condition, never a
/// guess at how long it takes.
template <class Predicate>
bool wait_until(Predicate done, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000))
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return done();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

/// One synchronous connection to 127.0.0.1:port.
class redis_cli {
public:
    explicit redis_cli(std::uint16_t port) : port_(port) {}

    /// The reply's integer (PUBSUB NUMSUB answers [channel, n]: its n).
    /// @throws std::runtime_error on a connection error or an error reply.
    long long integer(const std::vector<std::string>& args)
    {
        auto r = command(args);
        if (r->type == REDIS_REPLY_INTEGER)
            return r->integer;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
            return r->element[1]->integer;
        throw std::runtime_error("redis_cli: not an integer reply to " + args.front());
    }

    /// The reply's string; empty for nil.
    std::string text(const std::vector<std::string>& args)
    {
        auto r = command(args);
        if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
            return std::string(r->str, r->len);
        if (r->type == REDIS_REPLY_NIL)
            return {};
        throw std::runtime_error("redis_cli: not a string reply to " + args.front());
    }

    /// The subscribers of `channel` (PUBSUB NUMSUB).
    long long subscribers(const std::string& channel) { return integer({"PUBSUB", "NUMSUB", channel}); }

private:
    using reply_ptr = std::unique_ptr<redisReply, void (*)(void*)>;

    // The reply, on the connection there is or, if that one was lost (a
    // server restarted under the test), on a new one.
    reply_ptr command(const std::vector<std::string>& args)
    {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        redisReply* raw = nullptr;
        for (int attempt = 0; attempt < 2 && !raw; ++attempt) {
            if (!ctx_ || ctx_->err) {
                ctx_.reset(::redisConnect("127.0.0.1", port_));
                if (!ctx_ || ctx_->err)
                    throw std::runtime_error("redis_cli: cannot connect");
            }
            raw = static_cast<redisReply*>(
                ::redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
        }
        if (!raw)
            throw std::runtime_error("redis_cli: connection error");
        reply_ptr r(raw, ::freeReplyObject);
        if (r->type == REDIS_REPLY_ERROR)
            throw std::runtime_error("redis_cli: " + std::string(r->str, r->len));
        return r;
    }

    struct free_context {
        void operator()(redisContext* c) const { ::redisFree(c); }
    };

    std::uint16_t port_;
    std::unique_ptr<redisContext, free_context> ctx_;
};

} // namespace backplane::test

#endif
