// tests/support/redis_cluster_server.hpp - a private Redis Cluster for one test.
//
//   backplane::test::redis_cluster_server cluster;   // 3 masters, 3 replicas, all slots served
//   cluster.node(i).kill();                          // any node, as a redis_server
//   cluster.seeds();                                 // "127.0.0.1:P1,127.0.0.1:P2,..."
//
// Each node is a redis_server in cluster mode (its own directory and port,
// the bus on port + 10,000); `redis-cli --cluster create` (from PATH, or next
// to BACKPLANE_REDIS_SERVER) joins them and hands out the 16,384 slots. The
// constructor returns once every node says cluster_state:ok and every replica
// has synced with its master (so that it can take over).
#ifndef BACKPLANE_TESTS_SUPPORT_REDIS_CLUSTER_SERVER_HPP
#define BACKPLANE_TESTS_SUPPORT_REDIS_CLUSTER_SERVER_HPP

#include "process.hpp"
#include "redis_server.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace backplane::test {

class redis_cluster_server {
public:
    /// @throws std::runtime_error if the cluster is not up within `timeout`.
    /// @param node_timeout how long a master may be unreachable before its
    /// replica takes over (cluster-node-timeout).
    explicit redis_cluster_server(int masters = 3, int replicas_each = 1,
                                  std::chrono::milliseconds node_timeout = std::chrono::milliseconds(2000),
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(20000))
    {
        redis_server_options o;
        o.cluster = true;
        o.cluster_node_timeout = node_timeout;
        // A replica can only take over once it has synced; Redis waits 5 s
        // by default before a diskless sync, to serve several replicas at once.
        o.extra_args.insert(o.extra_args.end(), {"--repl-diskless-sync-delay", "0"});
        for (int i = 0; i < masters * (1 + replicas_each); ++i)
            nodes_.push_back(std::make_unique<redis_server>(o));
        std::vector<std::string> argv{cli(), "--cluster", "create"};
        for (const auto& n : nodes_)
            argv.push_back(n->host() + ":" + std::to_string(n->port()));
        argv.insert(argv.end(), {"--cluster-replicas", std::to_string(replicas_each), "--cluster-yes"});
        process_options po;
        po.output_file = (nodes_.front()->directory() / "cluster-create.log").string();
        if (process(argv, po).wait() != 0)
            throw std::runtime_error("redis_cluster_server: redis-cli --cluster create failed: " + read(po.output_file));
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            while (cluster_info(i).find("cluster_state:ok") == std::string::npos) {
                if (std::chrono::steady_clock::now() >= deadline)
                    throw std::runtime_error("redis_cluster_server: node " + std::to_string(i) + " not ok: "
                                             + cluster_info(i));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            for (;;) {
                const auto replication = cli_output(i, {"INFO", "replication"});
                if (replication.find("role:master") != std::string::npos
                    || replication.find("master_link_status:up") != std::string::npos)
                    break;
                if (std::chrono::steady_clock::now() >= deadline)
                    throw std::runtime_error("redis_cluster_server: replica " + std::to_string(i) + " not synced: "
                                             + replication);
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
    }

    std::size_t size() const noexcept { return nodes_.size(); }
    redis_server& node(std::size_t i) { return *nodes_.at(i); }

    /// Every node's "host:port", comma-separated.
    std::string seeds() const
    {
        std::string out;
        for (const auto& n : nodes_)
            out += (out.empty() ? "" : ",") + n->host() + ":" + std::to_string(n->port());
        return out;
    }

    /// What `redis-cli -p PORT ARGS...` printed to node `i`.
    std::string cli_output(std::size_t i, std::vector<std::string> args) const
    {
        std::vector<std::string> argv{cli(), "-p", std::to_string(nodes_.at(i)->port())};
        argv.insert(argv.end(), args.begin(), args.end());
        process_options po;
        po.output_file = (nodes_.at(i)->directory() / "cli.out").string();
        std::remove(po.output_file.c_str()); // the process appends
        process(argv, po).wait();
        return read(po.output_file);
    }

    /// Starts `redis-cli ARGS...` (a `--cluster` command, say) without
    /// waiting for it; what it prints goes to `output_file()`.
    process start_cli(std::vector<std::string> args) const
    {
        std::vector<std::string> argv{cli()};
        argv.insert(argv.end(), args.begin(), args.end());
        process_options po;
        po.output_file = output_file();
        std::remove(po.output_file.c_str());
        return process(argv, po);
    }

    /// What the last start_cli() printed so far.
    std::string output_file() const { return (nodes_.front()->directory() / "cli-started.out").string(); }
    std::string started_output() const { return read(output_file()); }

    /// CLUSTER INFO of node `i`.
    std::string cluster_info(std::size_t i) const { return cli_output(i, {"CLUSTER", "INFO"}); }

private:
    // redis-cli next to the server named by BACKPLANE_REDIS_SERVER, or from PATH.
    static std::string cli()
    {
        const char* server = std::getenv("BACKPLANE_REDIS_SERVER");
        if (server && *server) {
            std::string path = server;
            const auto slash = path.rfind('/');
            if (slash != std::string::npos) {
                path = path.substr(0, slash + 1) + "redis-cli";
                if (std::ifstream(path).good())
                    return path;
            }
        }
        return "redis-cli";
    }

    static std::string read(const std::string& file)
    {
        std::ifstream in(file);
        std::stringstream all;
        all << in.rdbuf();
        return all.str();
    }

    std::vector<std::unique_ptr<redis_server>> nodes_;
};

} // namespace backplane::test

#endif
