#include <backplane/detail/registry.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using backplane::detail::join_result;
using backplane::detail::list_kind;
using registry = backplane::detail::registry<int>;

namespace {

// The registry against a plain model: every list holds exactly the slots the
// model says, and no slot appears twice.
void check_against(const registry& r, const std::map<std::uint64_t, std::pair<std::string, std::set<std::string>>>& model)
{
    REQUIRE(r.connection_count() == model.size());
    std::map<std::string, std::multiset<std::uint64_t>> rooms, users;
    for (const auto& [id, v] : model) {
        REQUIRE(r.contains(id));
        REQUIRE(r.user_of(id) == v.first);
        users[v.first].insert(id);
        for (const auto& room : v.second)
            rooms[room].insert(id);
    }
    REQUIRE(r.room_count() == rooms.size());
    auto ids = [&](const registry::list_node* list) {
        std::multiset<std::uint64_t> out;
        REQUIRE(list);
        for (auto index : list->second.members)
            out.insert(r.target_at(index).id);
        return out;
    };
    for (const auto& [room, members] : rooms)
        REQUIRE(ids(r.room(room)) == members);
    for (const auto& [user, conns] : users)
        REQUIRE(ids(r.user(user)) == conns);
    std::multiset<std::uint64_t> all;
    for (const auto& [id, v] : model)
        all.insert(id);
    REQUIRE(ids(&const_cast<registry&>(r).all()) == all);
}

} // namespace

TEST_CASE("registry: joins and leaves report the reference-count edges")
{
    registry r;
    auto [a, a_new] = r.open(1, "alice");
    auto [b, b_new] = r.open(2, "alice");
    CHECK(a_new);
    CHECK_FALSE(b_new);
    CHECK(r.join(a, "lobby") == join_result::created);
    CHECK(r.join(b, "lobby") == join_result::joined);
    CHECK(r.join(b, "lobby") == join_result::already);
    CHECK_FALSE(r.leave(a, "lobby"));
    CHECK_FALSE(r.leave(a, "lobby")); // not a member any more
    CHECK(r.leave(b, "lobby"));
    CHECK(r.room("lobby") == nullptr);

    std::vector<std::string> emptied;
    auto record = [&](list_kind kind, std::string_view name) {
        emptied.push_back((kind == list_kind::room ? "room " : "user ") + std::string(name));
    };
    r.join(a, "x");
    r.close(a, record);
    CHECK(emptied == std::vector<std::string>{"room x"});
    r.close(b, record);
    CHECK(emptied == std::vector<std::string>{"room x", "user alice"});
    r.close(b, record); // twice: nothing
    CHECK(emptied.size() == 2);
}

TEST_CASE("registry: a stale id never names a reused slot")
{
    registry r;
    auto [a, unused] = r.open(1, "u");
    r.close(a, [](list_kind, std::string_view) {});
    auto [b, unused2] = r.open(2, "v");
    CHECK(a != b);
    CHECK_FALSE(r.contains(a));
    CHECK(r.join(a, "room") == join_result::unknown);
    CHECK(r.user_of(a).empty());
    CHECK(r.user_of(b) == "v");
    CHECK_FALSE(r.contains(0));
}

TEST_CASE("registry: random operations keep every list exact")
{
    // Few rooms, and more rooms than a connection holds before its memberships are indexed.
    const std::uint32_t rooms = GENERATE(8u, 40u);
    INFO(rooms << " rooms");
    std::mt19937 rng(7);
    registry r;
    std::map<std::uint64_t, std::pair<std::string, std::set<std::string>>> model;
    auto pick = [&]() {
        auto it = model.begin();
        std::advance(it, rng() % model.size());
        return it;
    };
    for (int step = 0; step < 20000; ++step) {
        const int op = model.empty() ? 0 : int(rng() % 4);
        const std::string room = "r" + std::to_string(rng() % rooms);
        if (op == 0) {
            const std::string user = "u" + std::to_string(rng() % 16);
            auto [id, unused] = r.open(step, user);
            model[id] = {user, {}};
        } else if (op == 1) {
            auto it = pick();
            r.join(it->first, room);
            it->second.second.insert(room);
        } else if (op == 2) {
            auto it = pick();
            r.leave(it->first, room);
            it->second.second.erase(room);
        } else {
            auto it = pick();
            r.close(it->first, [](list_kind, std::string_view) {});
            model.erase(it);
        }
        if (step % 97 == 0)
            check_against(r, model);
    }
    check_against(r, model);
}
