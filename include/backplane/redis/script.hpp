// backplane/redis/script.hpp - a Lua script run on a command connection, by
// its SHA1 once the server knows it.
//
//   redis::script publish_script(my_source);
//   publish_script.run(conn, {"1", key, arg}, handler);   // number of keys, keys, arguments
//
// A script serves one connection. On each new connection (the first, or a
// reconnect: the server may have restarted and forgotten it) the first call
// sends SCRIPT LOAD, then the calls send the source (EVAL) until the load has
// answered, and the SHA1 (EVALSHA) after. Commands are pipelined in order on
// one connection, so the calls run in the order they were made: no EVALSHA
// is sent to a server that has not loaded the script on this connection. A
// server that forgets it all the same (SCRIPT FLUSH) answers NOSCRIPT: that
// call is sent again as EVAL, after the calls already sent.
#ifndef BACKPLANE_REDIS_SCRIPT_HPP
#define BACKPLANE_REDIS_SCRIPT_HPP

#include <backplane/error.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/reply.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::redis {

class script {
public:
    /// @param source the script; it must outlive this object (a literal).
    explicit script(std::string_view source) : source_(source), state_(std::make_shared<state>()) {}

    std::string_view source() const noexcept { return source_; }

    /// Sends SCRIPT LOAD now, so that the first calls can send the SHA1
    /// sooner; run() does it on its own on each new connection.
    void load(connection& conn) const
    {
        state_->sha.clear();
        state_->connection = generation(conn);
        conn.execute({"SCRIPT", "LOAD", source_}, [st = std::weak_ptr<state>(state_), at = state_->connection](
                                                      std::error_code ec, const reply& r) {
            if (auto s = st.lock(); s && !ec && r.type == reply::kind::string && s->connection == at)
                s->sha = r.text;
        });
    }

    /// Runs the script with `args`: the number of keys, the keys, then the
    /// arguments (as EVAL takes them after the script). `done` is called once.
    void run(connection& conn, std::vector<std::string> args, reply_handler done) const
    {
        const bool ready = conn.state() == connection_state::ready;
        if (ready && state_->connection != generation(conn))
            load(conn); // a new connection: its server may not know the script
        std::vector<std::string_view> cmd;
        cmd.reserve(args.size() + 2);
        const bool by_sha = ready && !state_->sha.empty();
        cmd.push_back(by_sha ? std::string_view("EVALSHA") : std::string_view("EVAL"));
        cmd.push_back(by_sha ? std::string_view(state_->sha) : source_);
        for (const auto& a : args)
            cmd.push_back(a);
        if (!by_sha)
            return conn.execute(cmd, std::move(done));
        conn.execute(cmd, [this_script = *this, &conn, args = std::move(args),
                           done = std::move(done)](std::error_code ec, const reply& r) mutable {
            if (ec == error::server_error && r.text.rfind("NOSCRIPT", 0) == 0) {
                this_script.load(conn);
                return this_script.run(conn, std::move(args), std::move(done));
            }
            done(ec, r);
        });
    }

private:
    struct state {
        std::string sha;             // empty until SCRIPT LOAD answers on this connection
        std::uint64_t connection = 0; // which connection of `conn` the SHA1 is for
    };

    // Grows by one each time the connection becomes ready.
    static std::uint64_t generation(const connection& conn) noexcept { return conn.stats().connection.connects; }

    std::string_view source_;
    std::shared_ptr<state> state_; // shared with copies and the load's answer
};

/// A broker's idle_expiry as its scripts take it: whole seconds, "0" for
/// never (they skip EXPIRE then).
/// @throws std::invalid_argument below zero (EXPIRE would delete the key at
/// once) or above ten years (the server refuses what overflows; 0 says never).
inline std::string expiry_argument(std::chrono::seconds idle_expiry)
{
    if (idle_expiry.count() < 0 || idle_expiry > std::chrono::hours(24 * 3650))
        throw std::invalid_argument("backplane: idle_expiry must be in [0, 10 years] (0: never)");
    return std::to_string(idle_expiry.count());
}

} // namespace backplane::redis

#endif
