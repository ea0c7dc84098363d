// A transport, a broker and a locator written from backplane/policies.hpp
// alone, as a user would write their own: the hub takes them, and the
// library's asynchronous operations complete through any Asio completion
// token (a callback, a future, deferred, a C++20 coroutine).
#include <backplane/policies.hpp>

#include <backplane/hub.hpp>

#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_future.hpp>
// Asio 1.22 enables co_await for g++ and for clang with libc++ only (clang 14
// with libstdc++ has no <experimental/coroutine>): the coroutine section runs
// where Asio supports it, which the g++ build does.
#if defined(ASIO_HAS_CO_AWAIT)
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#endif

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

// A transport whose connections are strings the frames are appended to.
struct string_transport {
    using connection_handle = std::shared_ptr<std::string>;
    using frame = std::shared_ptr<const std::string>;

    frame make_frame(std::string_view payload) const { return std::make_shared<const std::string>(payload); }

    backplane::send_status send(const connection_handle& c, const frame& f) const
    {
        c->append(*f).push_back(';');
        return backplane::send_status::ok;
    }
};

// A broker that loops every publish back to its own hub: one instance.
class loopback_broker {
public:
    explicit loopback_broker(asio::any_io_executor ex) : ex_(std::move(ex)) {}

    asio::any_io_executor get_executor() const { return ex_; }
    void set_message_handler(backplane::message_handler h) { *handler_ = std::move(h); }
    void subscribe(std::string_view channel) { channels_.emplace_back(channel); }
    void unsubscribe(std::string_view channel) { channels_.erase(std::find(channels_.begin(), channels_.end(), channel)); }
    void publish(std::string_view channel, std::string_view data, backplane::publish_handler done)
    {
        if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end())
            asio::post(ex_, [h = handler_, c = std::string(channel), d = std::string(data)] {
                if (*h)
                    (*h)(c, {}, d);
            });
        if (done)
            asio::post(ex_, [done = std::move(done)] { done({}); });
    }

    const std::vector<std::string>& channels() const { return channels_; }

private:
    asio::any_io_executor ex_;
    std::shared_ptr<backplane::message_handler> handler_ = std::make_shared<backplane::message_handler>();
    std::vector<std::string> channels_;
};

// A locator that knows one fixed host for everybody who is online here.
class table_locator {
public:
    explicit table_locator(asio::any_io_executor ex) : ex_(std::move(ex)) {}

    void set_instance(std::string_view id) { instance_ = std::string(id); }
    void user_online(std::string_view user) { online_[std::string(user)] = instance_; }
    void user_offline(std::string_view user) { online_.erase(std::string(user)); }
    void where(std::string_view user, backplane::where_handler done)
    {
        auto it = online_.find(std::string(user));
        asio::post(ex_, [done = std::move(done), host = it == online_.end() ? std::string() : it->second] {
            done({}, host);
        });
    }
    void online(std::string_view, std::size_t, backplane::online_handler done)
    {
        backplane::online_page page;
        for (const auto& [user, host] : online_)
            page.users.push_back({user, host});
        asio::post(ex_, [done = std::move(done), page = std::move(page)]() mutable { done({}, std::move(page)); });
    }

private:
    asio::any_io_executor ex_;
    std::string instance_;
    std::map<std::string, std::string> online_;
};

static_assert(backplane::is_transport_v<string_transport>);
static_assert(backplane::is_broker_v<loopback_broker>);
static_assert(!backplane::has_history_v<loopback_broker>);
static_assert(backplane::is_locator_v<table_locator>);
static_assert(!backplane::is_broker_v<string_transport>); // a wrong policy is told apart
#if defined(__cpp_concepts)
static_assert(backplane::Transport<string_transport> && backplane::Broker<loopback_broker>
              && backplane::Locator<table_locator>);
#endif

using custom_hub = backplane::basic_hub<string_transport, loopback_broker, table_locator>;

} // namespace

TEST_CASE("policies written from policies.hpp alone: a hub delivers through them")
{
    asio::io_context io;
    custom_hub hub({}, loopback_broker(io.get_executor()), table_locator(io.get_executor()));
    auto alice = std::make_shared<std::string>(), bob = std::make_shared<std::string>();
    std::error_code ec;
    const auto a = hub.open(alice, "alice", ec);
    hub.open(bob, "bob", ec);
    REQUIRE_FALSE(hub.join(a, "lobby"));
    CHECK(hub.broker().channels() == std::vector<std::string>{"chat:global", "notif:user:alice", "notif:user:bob",
                                                              "chat:room:lobby"});
    hub.broadcast("hi");
    hub.send_to_room("lobby", "room");
    hub.send_to_user("bob", "dm");
    io.run();
    CHECK(*alice == "hi;room;");
    CHECK(*bob == "hi;dm;");
}

TEST_CASE("the hub's asynchronous queries take any completion token")
{
    asio::io_context io;
    custom_hub hub({}, loopback_broker(io.get_executor()), table_locator(io.get_executor()));
    std::error_code ec;
    hub.open(std::make_shared<std::string>(), "alice", ec);

    SECTION("a callback")
    {
        std::string host = "?";
        hub.async_where("alice", [&](std::error_code e, std::string h) {
            CHECK_FALSE(e);
            host = h;
        });
        io.run();
        CHECK(host == hub.instance_id());
    }
    SECTION("deferred, then a callback")
    {
        auto op = hub.async_where("nobody", asio::experimental::deferred);
        std::string host = "?";
        std::move(op)([&](std::error_code e, std::string h) {
            CHECK_FALSE(e);
            host = h;
        });
        io.run();
        CHECK(host.empty());
    }
    SECTION("a future, the io_context run by another thread")
    {
        auto work = asio::make_work_guard(io);
        std::thread runner([&] { io.run(); });
        auto page = hub.async_online("0", 10, asio::use_future).get();
        CHECK(page.users.size() == 1);
        bool shut = false;
        hub.async_shutdown(asio::use_future).get();
        shut = true;
        work.reset();
        runner.join();
        CHECK(shut);
    }
#if defined(ASIO_HAS_CO_AWAIT)
    SECTION("a C++20 coroutine")
    {
        std::string host;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                host = co_await hub.async_where("alice", asio::use_awaitable);
                const auto page = co_await hub.async_online("0", 10, asio::use_awaitable);
                CHECK(page.users.at(0).user == "alice");
            },
            asio::detached);
        io.run();
        CHECK(host == hub.instance_id());
    }
#endif
}
