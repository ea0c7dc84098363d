// tests/support/fake_request.hpp - an http_request as a transport would show
// one, built from a method, a target and headers: for the tests of what
// reads requests without a socket.
#ifndef BACKPLANE_TESTS_SUPPORT_FAKE_REQUEST_HPP
#define BACKPLANE_TESTS_SUPPORT_FAKE_REQUEST_HPP

#include <backplane/http.hpp>

#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace backplane::test {

/// A request whose headers are looked up as given (case included); its
/// peer is 192.0.2.1.
class fake_request final : public http_request {
public:
    fake_request(std::string_view method, std::string_view target, std::map<std::string, std::string> headers = {})
        : http_request(method, target), headers_(std::move(headers))
    {
    }
    std::string_view header(std::string_view name) const override
    {
        const auto it = headers_.find(std::string(name));
        return it == headers_.end() ? std::string_view{} : std::string_view(it->second);
    }
    std::string peer_address() const override { return "192.0.2.1"; }

private:
    std::map<std::string, std::string> headers_;
};

} // namespace backplane::test

#endif
