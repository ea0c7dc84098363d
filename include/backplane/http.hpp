// backplane/http.hpp - what an application sees of an HTTP request (a
// WebSocket handshake, or a plain request such as a health check), and how
// it answers one.
//
// A transport implements `http_request` over what it has parsed and hands it
// to the application's hooks; the application never sees the transport's
// own types. A request is a view: it and the strings it returns are valid
// during the hook's call only. Where an answer is possible (a refused
// handshake, a plain request), the hook fills an `http_response`, which the
// transport writes after it returns.
#ifndef BACKPLANE_HTTP_HPP
#define BACKPLANE_HTTP_HPP

#include <backplane/detail/url.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane {

/// An HTTP request, as a transport shows it to the application.
class http_request {
public:
    /// "GET", "POST"...
    std::string_view method() const noexcept { return method_; }

    /// The request target as sent, not decoded: "/ws?user=a%20b".
    std::string_view target() const noexcept { return target_; }

    /// The target up to its query, not decoded: "/ws".
    std::string_view path() const noexcept { return target_.substr(0, target_.find('?')); }

    /// The value of the first query parameter `key`, percent-decoded ('+'
    /// is a space); nullopt if it is absent or malformed.
    std::optional<std::string> query_parameter(std::string_view key) const
    {
        const auto q = target_.find('?');
        return q == std::string_view::npos ? std::nullopt : detail::query_value(target_.substr(q + 1), key);
    }

    /// The value of the header `name` (any case), empty if absent. A header
    /// sent more than once comes as one value, its values joined with ", ".
    virtual std::string_view header(std::string_view name) const = 0;

    /// The TCP peer's address ("127.0.0.1", "::1"): behind a load balancer,
    /// the balancer's (see its X-Forwarded-For header). Empty if unknown.
    virtual std::string peer_address() const = 0;

protected:
    http_request(std::string_view method, std::string_view target) noexcept : method_(method), target_(target) {}
    http_request(const http_request&) = default;
    http_request& operator=(const http_request&) = default;
    ~http_request() = default;

private:
    std::string_view method_;
    std::string_view target_;
};

/// The answer to a plain HTTP request or to a refused handshake.
struct http_response {
    /// 0: none set; the transport answers its default (see its hooks).
    int status = 0;
    /// Header fields, in order.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    /// Adds the header field `name`: `value`.
    http_response& add_header(std::string name, std::string value)
    {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

} // namespace backplane

#endif
