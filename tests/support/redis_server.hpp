// tests/support/redis_server.hpp - a private redis-server for one test.
//
//   backplane::test::redis_server server;          // started, answering
//   auto url = server.url();                       // "redis://127.0.0.1:PORT"
//   server.kill();                                 // kill -9
//   server.start();                                // again, on the same port
//   server.suspend(); server.resume();             // SIGSTOP / SIGCONT
//
// The server listens on 127.0.0.1 on a free port (and, on request, on a Unix
// socket), keeps nothing (no RDB, no AOF), runs in the foreground in a fresh
// temporary directory, and is stopped and its directory removed by the
// destructor. The program is `redis-server` from PATH, or the one named by
// the environment variable BACKPLANE_REDIS_SERVER.
//
// Readiness is checked by a blocking PING on a plain socket (no client
// library): start() returns once the server answers (PONG, or NOAUTH when a
// password is set).
#ifndef BACKPLANE_TESTS_SUPPORT_REDIS_SERVER_HPP
#define BACKPLANE_TESTS_SUPPORT_REDIS_SERVER_HPP

#include "process.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace backplane::test {

/// How to run the server.
struct redis_server_options {
    /// Also listen on a Unix socket (see redis_server::unix_path()).
    bool unix_socket = false;
    /// Password of the default user (--requirepass); empty: none.
    std::string requirepass;
    /// More arguments for redis-server, as "--name", "value" pairs or whole
    /// config directives (e.g. {"--user", "app on >secret ~* &* +@all"}).
    std::vector<std::string> extra_args;
    /// How long start() waits for the server to answer.
    std::chrono::milliseconds start_timeout{5000};
    /// A Redis Cluster node (--cluster-enabled yes, its nodes.conf in the
    /// server's directory), on a port below 55,536 whose cluster bus port
    /// (port + 10,000) is free too. redis_cluster_server.hpp joins such nodes.
    bool cluster = false;
    /// With `cluster`: how long a master may be unreachable before its
    /// replica takes over.
    std::chrono::milliseconds cluster_node_timeout{2000};
};

/// One redis-server child process.
class redis_server {
public:
    /// Starts the server on a free port.
    /// @throws std::runtime_error if it does not answer within start_timeout.
    explicit redis_server(redis_server_options options = {}) : options_(std::move(options))
    {
        auto base = std::filesystem::temp_directory_path() / "backplane-redis-XXXXXX";
        std::string tmpl = base.string();
        if (!::mkdtemp(tmpl.data()))
            throw std::runtime_error("redis_server: mkdtemp failed");
        dir_ = tmpl;
        // A port found free may be taken before the server binds it: retry.
        for (int attempt = 0;; ++attempt) {
            port_ = options_.cluster ? free_cluster_port() : free_port();
            try {
                start();
                return;
            } catch (const std::exception&) {
                if (attempt == 4) {
                    cleanup();
                    throw;
                }
            }
        }
    }

    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    ~redis_server() { cleanup(); }

    /// Starts the server again (after kill() or stop()) on the same port.
    /// @throws std::runtime_error if it does not answer in time.
    void start()
    {
        if (process_ && process_->running())
            return;
        process_options po;
        po.output_file = (dir_ / "redis.log").string();
        po.working_directory = dir_.string();
        std::vector<std::string> argv{program(), "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--daemonize", "no",
                                      "--dir", dir_.string(), "--protected-mode", "no"};
        if (options_.unix_socket) {
            argv.insert(argv.end(), {"--unixsocket", unix_path(), "--unixsocketperm", "700"});
        }
        if (!options_.requirepass.empty())
            argv.insert(argv.end(), {"--requirepass", options_.requirepass});
        if (options_.cluster)
            argv.insert(argv.end(), {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                     "--cluster-node-timeout", std::to_string(options_.cluster_node_timeout.count())});
        argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
        process_ = std::make_unique<process>(std::move(argv), po);
        const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
        while (!answers()) {
            if (!process_->running() || std::chrono::steady_clock::now() >= deadline) {
                process_.reset();
                throw std::runtime_error("redis_server: redis-server did not start on port "
                                         + std::to_string(port_));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    /// kill -9: the server dies at once; its clients see their connections reset.
    void kill()
    {
        if (process_)
            process_->kill();
        process_.reset();
    }

    /// SIGTERM and wait: a clean shutdown.
    void stop() { process_.reset(); }

    /// SIGSTOP: connections stay open but nothing answers.
    void suspend() { process_->suspend(); }
    /// SIGCONT.
    void resume() { process_->resume(); }

    bool running() const { return process_ && process_->running(); }
    std::uint16_t port() const noexcept { return port_; }
    std::string host() const { return "127.0.0.1"; }
    /// "redis://127.0.0.1:PORT".
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
    /// The Unix socket's path (with redis_server_options::unix_socket).
    std::string unix_path() const { return (dir_ / "redis.sock").string(); }
    /// The temporary directory (the log is redis.log in it).
    const std::filesystem::path& directory() const noexcept { return dir_; }

    /// Whether the server answers a PING within `timeout` now.
    bool answers(std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) const
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        timeval tv{};
        tv.tv_sec = timeout.count() / 1000;
        tv.tv_usec = (timeout.count() % 1000) * 1000;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port_);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = false;
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            static const char ping[] = "PING\r\n";
            char reply[64] = {};
            if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == ssize_t(sizeof ping - 1)) {
                const auto n = ::recv(fd, reply, sizeof reply, 0);
                ok = n > 0 && (reply[0] == '+' || reply[0] == '-');
            }
        }
        ::close(fd);
        return ok;
    }

private:
    static std::string program()
    {
        const char* p = std::getenv("BACKPLANE_REDIS_SERVER");
        return p && *p ? p : "redis-server";
    }

    // Whether `port` on the loopback interface can be bound now.
    static bool bindable(std::uint16_t port)
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return false;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        return ok;
    }

    // A free port from 20,000 to 44,999 whose bus port (port + 10,000, below
    // 55,000) is free too.
    static std::uint16_t free_cluster_port()
    {
        static std::uint16_t next = static_cast<std::uint16_t>(20000 + (::getpid() * 37) % 20000);
        for (int tries = 0; tries < 20000; ++tries) {
            const std::uint16_t port = next;
            next = static_cast<std::uint16_t>(next >= 44999 ? 20000 : next + 1);
            if (bindable(port) && bindable(static_cast<std::uint16_t>(port + 10000)))
                return port;
        }
        throw std::runtime_error("redis_server: no free port pair for a cluster node");
    }

    // A port the kernel just gave out on the loopback interface.
    static std::uint16_t free_port()
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            throw std::runtime_error("redis_server: socket failed");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
            || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ::close(fd);
            throw std::runtime_error("redis_server: no free port");
        }
        ::close(fd);
        return ntohs(addr.sin_port);
    }

    void cleanup() noexcept
    {
        process_.reset();
        std::error_code ignored;
        if (!dir_.empty())
            std::filesystem::remove_all(dir_, ignored);
    }

    redis_server_options options_;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    std::unique_ptr<process> process_;
};

} // namespace backplane::test

#endif
