// backplane/redis/script.hpp - a Lua script run on a command connection, by
// its SHA1 once the server knows it.
//
//   redis::script publish_script(my_source);
//   publish_script.run(conn, {"1", key, arg}, handler);   // number of keys, keys, arguments
//
// The first calls send the source (EVAL) while SCRIPT LOAD is on its way;
// once it has answered, calls send the SHA1 (EVALSHA). A server that forgot
// the script (restarted without persistence, or SCRIPT FLUSH) answers
// NOSCRIPT: the call is sent again as EVAL, which loads it again, and the
// SHA1 is forgotten until a new SCRIPT LOAD answers. Commands are pipelined
// in order, so a call sent while the script is loading runs after it.
#ifndef BACKPLANE_REDIS_SCRIPT_HPP
#define BACKPLANE_REDIS_SCRIPT_HPP

#include <backplane/error.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/reply.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::redis {

class script {
public:
    /// @param source the script; it must outlive this object (a literal).
    explicit script(std::string_view source) : source_(source), sha_(std::make_shared<std::string>()) {}

    std::string_view source() const noexcept { return source_; }

    /// Sends SCRIPT LOAD, so that later calls can send the SHA1.
    void load(connection& conn) const
    {
        conn.execute({"SCRIPT", "LOAD", source_}, [sha = std::weak_ptr<std::string>(sha_)](std::error_code ec,
                                                                                           const reply& r) {
            if (auto s = sha.lock(); s && !ec && r.type == reply::kind::string)
                *s = r.text;
        });
    }

    /// Runs the script with `args`: the number of keys, the keys, then the
    /// arguments (as EVAL takes them after the script). `done` is called once.
    void run(connection& conn, std::vector<std::string> args, reply_handler done) const
    {
        std::vector<std::string_view> cmd;
        cmd.reserve(args.size() + 2);
        const bool by_sha = !sha_->empty();
        cmd.push_back(by_sha ? std::string_view("EVALSHA") : std::string_view("EVAL"));
        cmd.push_back(by_sha ? std::string_view(*sha_) : source_);
        for (const auto& a : args)
            cmd.push_back(a);
        if (!by_sha)
            return conn.execute(cmd, std::move(done));
        conn.execute(cmd, [this_script = *this, &conn, args = std::move(args),
                           done = std::move(done)](std::error_code ec, const reply& r) mutable {
            if (ec == error::server_error && r.text.rfind("NOSCRIPT", 0) == 0) {
                this_script.sha_->clear();
                this_script.load(conn);
                return this_script.run(conn, std::move(args), std::move(done));
            }
            done(ec, r);
        });
    }

private:
    std::string_view source_;
    std::shared_ptr<std::string> sha_; // shared with copies and the load's answer
};

} // namespace backplane::redis

#endif
