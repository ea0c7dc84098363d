// backplane/transport/detail/websocketpp_request.hpp - a websocketpp
// connection's request, as the application's hooks see it (http_request).
#ifndef BACKPLANE_TRANSPORT_DETAIL_WEBSOCKETPP_REQUEST_HPP
#define BACKPLANE_TRANSPORT_DETAIL_WEBSOCKETPP_REQUEST_HPP

#include <backplane/http.hpp>
#include <backplane/transport/detail/websocketpp_config.hpp>

#include <websocketpp/server.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace backplane::transport::detail {

class websocketpp_request final : public http_request {
public:
    using connection_type = ::websocketpp::server<websocketpp_config>::connection_type;

    /// A plain HTTP request.
    explicit websocketpp_request(connection_type& c) : websocketpp_request(c, c.get_request().get_method()) {}

    /// A WebSocket connection's handshake: a GET (websocketpp refuses any
    /// other method), also once the handshake's headers are gone.
    static websocketpp_request handshake(connection_type& c) { return websocketpp_request(c, "GET"); }

    std::string_view header(std::string_view name) const override
    {
        return c_.get_request_header(std::string(name));
    }

    std::string peer_address() const override
    {
        std::error_code ec;
        const auto peer = c_.get_raw_socket().remote_endpoint(ec);
        return ec ? std::string() : peer.address().to_string();
    }

private:
    websocketpp_request(connection_type& c, std::string_view method)
        : http_request(method, c.get_resource()), c_(c)
    {
    }

    connection_type& c_;
};

} // namespace backplane::transport::detail

#endif
