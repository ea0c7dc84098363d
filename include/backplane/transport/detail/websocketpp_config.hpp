// backplane/transport/detail/websocketpp_config.hpp - websocketpp's
// whole-library configuration for the transport, and what the transport
// keeps in each connection.
#ifndef BACKPLANE_TRANSPORT_DETAIL_WEBSOCKETPP_CONFIG_HPP
#define BACKPLANE_TRANSPORT_DETAIL_WEBSOCKETPP_CONFIG_HPP

#include <backplane/transport/detail/write_queue.hpp>

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace backplane::transport::detail {

// What the transport keeps in each connection, through websocketpp's
// connection_base hook (so no map from connection to state is needed).
struct websocketpp_connection_data {
    std::uint64_t tag = 0;                          // the application's id for it
    std::size_t open_index = static_cast<std::size_t>(-1); // position in the open list
    std::chrono::steady_clock::time_point heard{};  // last message, ping or pong
    write_queue<::websocketpp::config::asio::message_type::ptr> out; // to write at the end of the turn
    bool closing = false;                           // close started by us
    bool admitted = false;                          // handshake accepted, not open yet
    bool handshaking = false;                       // accepted, handshake not ended
    std::uint64_t pong_flush = 0;                   // 1 + the flush count when a pong was queued
};

// websocketpp's whole-library configuration: Asio without TLS, single-threaded.
struct websocketpp_config : ::websocketpp::config::asio {
    using type = websocketpp_config;
    using base = ::websocketpp::config::asio;

    // Everything runs on one io_context thread: no mutex per send.
    typedef ::websocketpp::concurrency::none concurrency_type;
    typedef ::websocketpp::log::basic<concurrency_type, ::websocketpp::log::elevel> elog_type;
    typedef ::websocketpp::log::basic<concurrency_type, ::websocketpp::log::alevel> alog_type;
    typedef websocketpp_connection_data connection_base;

    struct transport_config : base::transport_config {
        typedef type::concurrency_type concurrency_type;
        typedef type::elog_type elog_type;
        typedef type::alog_type alog_type;
        static bool const enable_multithreading = false; // no strand per connection
    };
    typedef ::websocketpp::transport::asio::endpoint<transport_config> transport_type;

    static bool const enable_multithreading = false;
    // The read buffer lives inside every connection object: clients send
    // little, and an idle connection should cost little memory (default 16 KiB).
    static const std::size_t connection_read_buffer_size = 1024;
    static const std::size_t max_message_size = 64 * 1024;
    static const std::size_t max_http_body_size = 64 * 1024;
    static const ::websocketpp::log::level elog_level = ::websocketpp::log::elevel::none;
    static const ::websocketpp::log::level alog_level = ::websocketpp::log::alevel::none;
};

} // namespace backplane::transport::detail

#endif
