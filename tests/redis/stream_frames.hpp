// Test support for the brokers that keep history: frames that carry the
// message id ("id|payload"), so that a client knows what it last received.
#ifndef BACKPLANE_TESTS_STREAM_FRAMES_HPP
#define BACKPLANE_TESTS_STREAM_FRAMES_HPP

#include <backplane/hub.hpp>
#include <backplane/transport/memory.hpp>

#include <string>
#include <vector>

namespace backplane::test {

// Frames are "id|payload", so that a client knows what it last received.
inline hub_options with_ids()
{
    hub_options o;
    o.replay_page = 50;
    o.build_frame = [](const message_view& m, std::string& out) {
        out.append(m.broker_id).append("|").append(m.payload);
    };
    return o;
}

inline std::string payload_of(const std::string& frame) { return frame.substr(frame.find('|') + 1); }
inline std::string id_of(const std::string& frame) { return frame.substr(0, frame.find('|')); }

inline std::vector<std::string> payloads(const transport::memory::connection_handle& c)
{
    std::vector<std::string> out;
    for (const auto& t : c->texts())
        out.push_back(payload_of(t));
    return out;
}

inline std::vector<std::string> numbered(int from, int to)
{
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i)
        out.push_back("m" + std::to_string(i));
    return out;
}

} // namespace backplane::test

#endif
