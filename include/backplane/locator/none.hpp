// backplane/locator/none.hpp - the locator of a hub that does not know where
// users are: the default of basic_hub's third parameter.
//
// where() and online() answer std::errc::operation_not_supported; a hub
// with this locator cannot route direct messages through the host's
// instance channel (direct_routing::instance_channel), and says so at
// construction. See backplane/policies.hpp for the Locator requirements.
#ifndef BACKPLANE_LOCATOR_NONE_HPP
#define BACKPLANE_LOCATOR_NONE_HPP

#include <backplane/policies.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <cstddef>
#include <string_view>
#include <system_error>
#include <utility>

namespace backplane::locator {

class none {
public:
    /// @param ex the executor of the hub that owns this locator, where the
    /// answers of where() and online() are posted.
    explicit none(asio::any_io_executor ex) : executor_(std::move(ex)) {}

    void set_instance(std::string_view) noexcept {}
    void user_online(std::string_view) noexcept {}
    void user_offline(std::string_view) noexcept {}

    void where(std::string_view, where_handler done)
    {
        asio::post(executor_, [done = std::move(done)] { done(unsupported(), {}); });
    }

    void online(std::string_view, std::size_t, online_handler done)
    {
        asio::post(executor_, [done = std::move(done)] { done(unsupported(), {}); });
    }

private:
    static std::error_code unsupported() { return std::make_error_code(std::errc::operation_not_supported); }

    asio::any_io_executor executor_;
};

static_assert(is_locator_v<none>, "locator::none must satisfy the Locator requirements");

} // namespace backplane::locator

#endif
