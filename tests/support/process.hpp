// tests/support/process.hpp - a child process a test can start, stop,
// resume, kill and wait for (POSIX, fork + exec).
//
//   backplane::test::process p({"redis-server", "--port", "7000"});
//   p.suspend();   // SIGSTOP: the process is there but does nothing
//   p.resume();    // SIGCONT
//   p.kill();      // SIGKILL, and reaped
//
// The child gets stdin and stdout/stderr from /dev/null (or the files given
// in process_options), no file descriptor of the test besides those, and is
// killed by the kernel if the test process dies first (Linux
// PR_SET_PDEATHSIG), so a crashed test leaves no stray server behind.
// The destructor terminates the child (SIGTERM, then SIGKILL after a grace
// period) and reaps it.
#ifndef BACKPLANE_TESTS_SUPPORT_PROCESS_HPP
#define BACKPLANE_TESTS_SUPPORT_PROCESS_HPP

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <cerrno>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace backplane::test {

/// How to start a child.
struct process_options {
    /// Where stdout and stderr go; empty: /dev/null.
    std::string output_file;
    /// Working directory of the child; empty: the test's.
    std::string working_directory;
    /// How long the destructor waits after SIGTERM before SIGKILL.
    std::chrono::milliseconds terminate_grace{2000};
};

/// One child process. Not copyable; movable.
class process {
public:
    /// Starts `argv[0]` (looked up in PATH) with `argv`.
    /// @throws std::system_error if fork fails, std::runtime_error if the
    /// program cannot be executed.
    explicit process(std::vector<std::string> argv, process_options options = {})
        : options_(std::move(options))
    {
        if (argv.empty())
            throw std::invalid_argument("process: empty argv");
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        const char* out = options_.output_file.empty() ? "/dev/null" : options_.output_file.c_str();
        const char* dir = options_.working_directory.empty() ? nullptr : options_.working_directory.c_str();

        // A pipe closed on exec tells the parent whether exec worked.
        int status_pipe[2];
        if (::pipe2(status_pipe, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::generic_category(), "pipe2");
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) {
            const int e = errno;
            ::close(status_pipe[0]);
            ::close(status_pipe[1]);
            throw std::system_error(e, std::generic_category(), "fork");
        }
        if (pid_ == 0)
            exec_child(args.data(), out, dir, status_pipe[1], parent); // never returns
        ::close(status_pipe[1]);
        int child_errno = 0;
        ssize_t n;
        do
            n = ::read(status_pipe[0], &child_errno, sizeof child_errno);
        while (n < 0 && errno == EINTR);
        ::close(status_pipe[0]);
        if (n > 0) {
            wait();
            throw std::runtime_error("process: cannot run " + argv[0] + ": "
                                     + std::generic_category().message(child_errno));
        }
    }

    process(const process&) = delete;
    process& operator=(const process&) = delete;
    process(process&& other) noexcept
        : options_(std::move(other.options_)), pid_(std::exchange(other.pid_, -1)), status_(other.status_)
    {
    }
    process& operator=(process&&) = delete;

    ~process() { terminate(); }

    pid_t pid() const noexcept { return pid_; }

    /// Whether the child has not been reaped yet (it may be stopped).
    bool running()
    {
        if (pid_ <= 0)
            return false;
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            status_ = status;
            pid_ = -1;
            return false;
        }
        return true;
    }

    /// Sends `sig`; false if the child is gone.
    bool signal(int sig) { return pid_ > 0 && ::kill(pid_, sig) == 0; }

    /// SIGSTOP: the process keeps its sockets but runs no more.
    bool suspend() { return signal(SIGSTOP); }
    /// SIGCONT.
    bool resume() { return signal(SIGCONT); }

    /// SIGKILL, then waits for the child.
    void kill()
    {
        if (signal(SIGKILL))
            wait();
    }

    /// Waits for the child to exit; returns its waitpid status (-1 if it
    /// was reaped before).
    int wait()
    {
        if (pid_ <= 0)
            return status_;
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        status_ = status;
        pid_ = -1;
        return status_;
    }

    /// Waits up to `timeout` for the child to exit; true if it did.
    bool wait_for(std::chrono::milliseconds timeout)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (running()) {
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return true;
    }

    /// SIGCONT (a stopped child cannot act on SIGTERM), SIGTERM, and SIGKILL
    /// if it is still there after the grace period. Reaps it.
    void terminate()
    {
        if (pid_ <= 0)
            return;
        resume();
        signal(SIGTERM);
        if (!wait_for(options_.terminate_grace))
            kill();
    }

private:
    [[noreturn]] static void exec_child(char** argv, const char* out, const char* dir, int status_fd,
                                        pid_t parent) noexcept
    {
        // Only async-signal-safe calls between fork and exec.
#ifdef __linux__
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) // the parent died before prctl
            ::_exit(127);
#else
        (void)parent;
#endif
        ::setpgid(0, 0); // a Ctrl-C meant for the test does not reach the child twice
        const int null_in = ::open("/dev/null", O_RDONLY);
        const int output = ::open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (null_in < 0 || output < 0)
            fail(status_fd);
        ::dup2(null_in, 0);
        ::dup2(output, 1);
        ::dup2(output, 2);
        if (dir && ::chdir(dir) != 0)
            fail(status_fd);
        // No descriptor of the test survives in the child (its sockets above
        // all), but the status pipe, which exec closes.
        close_from(3, status_fd);
        ::execvp(argv[0], argv);
        fail(status_fd);
    }

    // Closes every descriptor from `first` up, but `keep`.
    static void close_from(int first, int keep) noexcept
    {
#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
        const auto k = static_cast<unsigned>(keep);
        if (keep < first) {
            if (::close_range(static_cast<unsigned>(first), ~0U, 0) == 0)
                return;
        } else if ((keep == first || ::close_range(static_cast<unsigned>(first), k - 1, 0) == 0)
                 && ::close_range(k + 1, ~0U, 0) == 0)
            return;
#endif
        const long max_fd = ::sysconf(_SC_OPEN_MAX);
        for (int fd = first; fd < (max_fd > 0 ? max_fd : 1024); ++fd)
            if (fd != keep)
                ::close(fd);
    }

    [[noreturn]] static void fail(int status_fd) noexcept
    {
        const int e = errno;
        (void)!::write(status_fd, &e, sizeof e);
        ::_exit(127);
    }

    process_options options_;
    pid_t pid_ = -1;
    int status_ = -1;
};

} // namespace backplane::test

#endif
