// Catching up a reconnecting connection from a broker's history, on the
// in-memory bus with history: no gap and no duplicate at the seam between
// replay and live delivery, and a clear answer when history was lost.
#include <backplane/hub.hpp>

#include "support.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <random>

using namespace backplane;
using strings = std::vector<std::string>;

namespace {

// Frames are "id|payload", so that clients know what they last received.
hub_options with_ids(std::size_t page = 100)
{
    hub_options o;
    o.replay_page = page;
    o.build_frame = [](const message_view& m, std::string& out) {
        out.append(m.broker_id).append("|").append(m.payload);
    };
    return o;
}

// A memory broker whose live messages and history pages each wait in a queue
// until the test releases them, so that either may overtake the other, as
// with Redis, where they come on two connections.
struct lagging_broker {
    broker::memory inner;
    using queue = std::deque<std::function<void()>>;
    std::shared_ptr<queue> lagged = std::make_shared<queue>();
    std::shared_ptr<queue> pages = std::make_shared<queue>();

    asio::any_io_executor get_executor() const { return inner.get_executor(); }
    void set_message_handler(message_handler h)
    {
        if (!h)
            return inner.set_message_handler(nullptr);
        inner.set_message_handler([q = lagged, h](std::string_view ch, std::string_view id, std::string_view data) {
            q->push_back([h, ch = std::string(ch), id = std::string(id), data = std::string(data)] { h(ch, id, data); });
        });
    }
    void subscribe(std::string_view ch) { inner.subscribe(ch); }
    void unsubscribe(std::string_view ch) { inner.unsubscribe(ch); }
    void publish(std::string_view ch, std::string_view data, publish_handler done)
    {
        inner.publish(ch, data, std::move(done));
    }
    void history(std::string_view ch, std::string_view after, std::size_t n, history_handler done)
    {
        inner.history(ch, after, n, [q = pages, done](std::error_code ec, history_page page) {
            q->push_back([done, ec, page = std::move(page)] { done(ec, page); });
        });
    }
    bool subscribed(std::string_view ch) const { return inner.subscribed(ch); }

    /// Delivers up to `n` lagged live messages and up to `m` history pages.
    /// @returns how many in all.
    std::size_t release(std::size_t n, std::size_t m)
    {
        return release(*lagged, n) + release(*pages, m);
    }

    static std::size_t release(std::deque<std::function<void()>>& q, std::size_t n)
    {
        std::size_t done = 0;
        for (; done < n && !q.empty(); ++done) {
            auto f = std::move(q.front());
            q.pop_front();
            f();
        }
        return done;
    }
};

template <class Hub = memory_hub>
struct history_cluster {
    explicit history_cluster(int n, std::size_t history, hub_options o = with_ids()) : bus(history)
    {
        for (int i = 0; i < n; ++i) {
            o.instance_id = "i" + std::to_string(i + 1);
            broker::memory endpoint(bus, io.get_executor());
            if constexpr (std::is_same_v<Hub, memory_hub>)
                hubs.push_back(std::make_unique<Hub>(transport::memory{}, std::move(endpoint), o));
            else
                hubs.push_back(std::make_unique<Hub>(transport::memory{}, lagging_broker{std::move(endpoint)}, o));
        }
    }

    std::pair<test::connection_ptr, connection_id> connect(int i, const std::string& user)
    {
        auto c = transport::memory::make_connection();
        std::error_code ec;
        auto id = hubs[i]->open(c, user, ec);
        REQUIRE_FALSE(ec);
        return {c, id};
    }

    // Runs until nothing is queued, lagged live messages included.
    void run()
    {
        do {
            io.restart();
            io.run();
        } while (release_all());
    }

    bool release_all()
    {
        bool any = false;
        if constexpr (!std::is_same_v<Hub, memory_hub>)
            for (auto& h : hubs)
                any |= h->broker().release(SIZE_MAX, SIZE_MAX) > 0;
        return any;
    }

    asio::io_context io;
    broker::memory_bus bus;
    std::vector<std::unique_ptr<Hub>> hubs;
};

using lagging_hub = basic_hub<transport::memory, lagging_broker>;

std::string id_of(const std::string& frame) { return frame.substr(0, frame.find('|')); }
std::string text_of(const std::string& frame) { return frame.substr(frame.find('|') + 1); }

strings texts(const test::connection_ptr& c)
{
    strings out;
    for (const auto& f : c->texts())
        out.push_back(text_of(f));
    return out;
}

} // namespace

TEST_CASE("a rejoining member receives what it missed, then the live flow, each once")
{
    history_cluster<> c(2, 1000);
    auto [sender, s_id] = c.connect(0, "sender");
    auto [old, old_id] = c.connect(1, "x");
    c.hubs[0]->join(s_id, "r");
    c.hubs[1]->join(old_id, "r");
    for (int i = 1; i <= 5; ++i)
        c.hubs[0]->send_to_room("r", "m" + std::to_string(i));
    c.run();
    const auto last = id_of(old->texts().back());
    c.hubs[1]->close(old_id); // x goes away; the room goes on
    for (int i = 6; i <= 10; ++i)
        c.hubs[0]->send_to_room("r", "m" + std::to_string(i));
    c.run();

    auto [again, again_id] = c.connect(1, "x");
    std::vector<recovery_result> results;
    REQUIRE_FALSE(c.hubs[1]->join(again_id, "r", last, [&](const recovery_result& r) { results.push_back(r); }));
    c.hubs[0]->send_to_room("r", "m11");
    c.run();
    CHECK(texts(again) == strings{"m6", "m7", "m8", "m9", "m10", "m11"});
    REQUIRE(results.size() == 1);
    CHECK(results[0].recovered);
    CHECK(results[0].replayed == 5);
    CHECK(results[0].kind == message_kind::room);
    CHECK(results[0].target == "r");
}

TEST_CASE("the seam between replay and live holds under every interleaving tried")
{
    for (int trial = 0; trial < 300; ++trial) {
        std::mt19937 rng(trial);
        const bool fresh_hub = trial % 2; // the rejoining hub has no other member: a new subscription
        history_cluster<lagging_hub> c(3, 1000, with_ids(1 + rng() % 4));
        auto [sender, s_id] = c.connect(0, "sender");
        auto [witness, w_id] = c.connect(1, "witness"); // always there: the reference sequence
        c.hubs[1]->join(w_id, "r");
        int sent = 0;
        auto send = [&] { c.hubs[0]->send_to_room("r", "m" + std::to_string(++sent)); };
        for (int i = 0; i < 10; ++i)
            send();
        c.run();
        const std::size_t k = rng() % 10; // the client last received message k+1
        const auto last = id_of(witness->texts()[k]);

        const int at = fresh_hub ? 2 : 1;
        auto [x, x_id] = c.connect(at, "x");
        int callbacks = 0;
        REQUIRE_FALSE(c.hubs[at]->join(x_id, "r", last, [&](const recovery_result& r) {
            ++callbacks;
            CHECK(r.recovered);
        }));
        for (int step = 0; step < 60; ++step) { // publishing, reading, delivering: interleaved at random
            if (rng() % 2)
                send();
            for (int polls = int(rng() % 3); polls > 0; --polls)
                c.io.poll_one();
            c.hubs[at]->broker().release(rng() % 3, rng() % 2);
        }
        c.run();
        send(); // one more after everything settled
        c.run();
        INFO("trial " << trial);
        const auto all = texts(witness);
        REQUIRE(all.size() == std::size_t(sent));
        CHECK(texts(x) == strings(all.begin() + long(k) + 1, all.end()));
        CHECK(callbacks == 1);
        CHECK(c.hubs[at]->room_size("r") == (fresh_hub ? 1u : 2u));
    }
}

TEST_CASE("history trimmed past the client's id: recovered is false, and what is left is sent")
{
    history_cluster<> c(1, 5);
    auto [a, a_id] = c.connect(0, "a");
    c.hubs[0]->join(a_id, "r");
    c.hubs[0]->send_to_room("r", "m1");
    c.run();
    const auto last = id_of(a->texts().back());
    c.hubs[0]->close(a_id);
    auto [s, s_id] = c.connect(0, "s");
    for (int i = 2; i <= 10; ++i) // 9 more: m1 and m2..m5 are trimmed away
        c.hubs[0]->send_to_room("r", "m" + std::to_string(i));
    c.run();
    auto [b, b_id] = c.connect(0, "a");
    recovery_result result;
    c.hubs[0]->join(b_id, "r", last, [&](const recovery_result& r) { result = r; });
    c.run();
    CHECK_FALSE(result.recovered);
    CHECK(texts(b) == strings{"m6", "m7", "m8", "m9", "m10"});
}

TEST_CASE("history lost (a broker restarted without persistence): recovered is false, never a silent gap")
{
    history_cluster<> c(1, 100);
    auto [a, a_id] = c.connect(0, "a");
    c.hubs[0]->join(a_id, "r");
    c.hubs[0]->send_to_room("r", "m1");
    c.run();
    const auto last = id_of(a->texts().back());
    c.hubs[0]->close(a_id);
    c.bus.clear_history();
    auto [b, b_id] = c.connect(0, "a");
    recovery_result result;
    result.recovered = true;
    c.hubs[0]->join(b_id, "r", last, [&](const recovery_result& r) { result = r; });
    c.run();
    CHECK_FALSE(result.recovered);
    CHECK(result.replayed == 0);
}

TEST_CASE("a reconnecting connection resumes its global and user channels")
{
    history_cluster<> c(2, 100, with_ids(2));
    auto [a, a_id] = c.connect(1, "alice");
    c.hubs[0]->broadcast("g1");
    c.hubs[0]->send_to_user("alice", "d1");
    c.run();
    const auto frames = a->texts();
    REQUIRE(frames.size() == 2);
    const auto last_global = id_of(frames[0]), last_user = id_of(frames[1]);
    c.hubs[1]->close(a_id);
    for (int i = 2; i <= 6; ++i) {
        c.hubs[0]->broadcast("g" + std::to_string(i));
        c.hubs[0]->send_to_user("alice", "d" + std::to_string(i));
    }
    c.run();

    auto conn = transport::memory::make_connection();
    std::error_code ec;
    strings scopes;
    auto id = c.hubs[1]->open(conn, "alice", ec, {last_global, last_user}, [&](const recovery_result& r) {
        scopes.push_back((r.kind == message_kind::broadcast ? "global " : "user ")
                         + std::to_string(r.replayed) + (r.recovered ? " recovered" : " lost"));
    });
    REQUIRE_FALSE(ec);
    c.hubs[0]->broadcast("g7");
    c.run();
    std::sort(scopes.begin(), scopes.end());
    // g7 was published before the later pages were read: it came from history.
    CHECK(scopes == strings{"global 6 recovered", "user 5 recovered"});
    strings global, user;
    for (const auto& t : texts(conn))
        (t[0] == 'g' ? global : user).push_back(t);
    CHECK(global == strings{"g2", "g3", "g4", "g5", "g6", "g7"});
    CHECK(user == strings{"d2", "d3", "d4", "d5", "d6"});
    CHECK(c.hubs[1]->contains(id));
}

TEST_CASE("a connection that closes or leaves while catching up leaves nothing behind")
{
    history_cluster<> c(1, 100);
    auto [s, s_id] = c.connect(0, "s");
    for (int i = 0; i < 5; ++i)
        c.hubs[0]->send_to_room("r", "m");
    c.run();
    int called = 0;
    auto [a, a_id] = c.connect(0, "a");
    c.hubs[0]->join(a_id, "r", "0-0", [&](const recovery_result&) { ++called; });
    CHECK(c.hubs[0]->room_count() == 1);
    c.hubs[0]->close(a_id); // before the page arrives
    CHECK(c.hubs[0]->room_count() == 0);
    auto [b, b_id] = c.connect(0, "b");
    c.hubs[0]->join(b_id, "r", "0-0", [&](const recovery_result&) { ++called; });
    c.hubs[0]->leave(b_id, "r");
    c.run();
    CHECK(called == 0);
    CHECK(a->frames_received() == 0);
    CHECK(b->frames_received() == 0);
    CHECK(c.hubs[0]->room_count() == 0);
    CHECK_FALSE(c.hubs[0]->broker().subscribed("chat:room:r"));
}

TEST_CASE("a bad id is refused before anything happens")
{
    history_cluster<> c(1, 10);
    auto [a, a_id] = c.connect(0, "a");
    for (const char* bad : {"", "1", "x-1", "1-", "-1", "1-2-3", "99999999999999999999999-0"})
        CHECK(c.hubs[0]->join(a_id, "r", bad, {}) == error::invalid_stream_id);
    std::error_code ec;
    CHECK(c.hubs[0]->open(transport::memory::make_connection(), "b", ec, {"nope", ""}, {}) == no_connection);
    CHECK(ec == error::invalid_stream_id);
    CHECK(c.hubs[0]->room_count() == 0);
}
