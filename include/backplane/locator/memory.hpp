// backplane/locator/memory.hpp - which instance hosts each user, for hubs in
// one process: a directory shared by their locators.
//
//   locator::memory_directory users;                   // one per process
//   basic_hub<transport::memory, broker::memory, locator::memory> hub(
//       {}, {bus, io.get_executor()}, {users, io.get_executor()}, options);
//
// As locator::redis does across processes: a user's entry names the instance
// of its newest first connection, and goes when the last connection of that
// instance closes (another instance where the user is still connected takes
// it back). The contract is in backplane/policies.hpp.
#ifndef BACKPLANE_LOCATOR_MEMORY_HPP
#define BACKPLANE_LOCATOR_MEMORY_HPP

#include <backplane/policies.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::locator {

/// The user -> instance map of the hubs of one process. Thread-safe.
class memory_directory {
public:
    memory_directory() = default;
    memory_directory(const memory_directory&) = delete;
    memory_directory& operator=(const memory_directory&) = delete;

    /// The instance hosting `user`; empty if none.
    std::string host(std::string_view user) const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = users_.find(std::string(user));
        return it == users_.end() || it->second.empty() ? std::string() : it->second.back();
    }

    /// Users online now.
    std::size_t size() const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return users_.size();
    }

private:
    friend class memory;

    void online(const std::string& user, const std::string& instance)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto& hosts = users_[user];
        hosts.erase(std::remove(hosts.begin(), hosts.end(), instance), hosts.end());
        hosts.push_back(instance); // the newest is the host
    }

    void offline(const std::string& user, const std::string& instance)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = users_.find(user);
        if (it == users_.end())
            return;
        auto& hosts = it->second;
        hosts.erase(std::remove(hosts.begin(), hosts.end(), instance), hosts.end());
        if (hosts.empty())
            users_.erase(it);
    }

    // A page from `cursor` (a position in name order, "0" for the first).
    online_page page(std::size_t from, std::size_t limit) const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        online_page out;
        auto it = users_.begin();
        std::advance(it, std::min(from, users_.size()));
        for (; it != users_.end() && out.users.size() < limit; ++it)
            out.users.push_back({it->first, it->second.back()});
        const std::size_t next = from + out.users.size();
        out.cursor = it == users_.end() ? "0" : std::to_string(next);
        return out;
    }

    mutable std::mutex mutex_;
    std::map<std::string, std::vector<std::string>> users_; // user -> instances, newest last
};

/// One hub's locator on a memory_directory. Use it on its executor only.
class memory {
public:
    /// @param directory must outlive the locator.
    /// @param ex the executor of the hub that owns this locator.
    memory(memory_directory& directory, asio::any_io_executor ex) : directory_(&directory), executor_(std::move(ex)) {}

    memory(memory&&) noexcept = default;
    memory& operator=(memory&&) = delete;

    ~memory()
    {
        if (directory_) // as a crashed instance's entries expire
            for (const auto& user : local_)
                directory_->offline(user, instance_);
    }

    void set_instance(std::string_view id) { instance_ = std::string(id); }

    void user_online(std::string_view user)
    {
        local_.emplace_back(user);
        directory_->online(local_.back(), instance_);
    }

    void user_offline(std::string_view user)
    {
        const std::string name(user);
        local_.erase(std::remove(local_.begin(), local_.end(), name), local_.end());
        directory_->offline(name, instance_);
    }

    void where(std::string_view user, where_handler done)
    {
        asio::post(executor_, [done = std::move(done), host = directory_->host(user)] { done({}, host); });
    }

    void online(std::string_view cursor, std::size_t limit, online_handler done)
    {
        std::size_t from = 0;
        for (char c : cursor) {
            if (c < '0' || c > '9')
                return asio::post(executor_, [done = std::move(done)] {
                    done(std::make_error_code(std::errc::invalid_argument), {});
                });
            from = from * 10 + static_cast<std::size_t>(c - '0');
        }
        asio::post(executor_, [done = std::move(done), page = directory_->page(from, std::max<std::size_t>(limit, 1))]()
                   mutable { done({}, std::move(page)); });
    }

private:
    memory_directory* directory_;
    asio::any_io_executor executor_;
    std::string instance_;
    std::vector<std::string> local_; // users with a connection here
};

static_assert(is_locator_v<memory>, "locator::memory must satisfy the Locator requirements");

} // namespace backplane::locator

#endif
