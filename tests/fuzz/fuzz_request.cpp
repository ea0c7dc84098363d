// libFuzzer target for the reference server's request reader (demo/protocol.hpp,
// demo/json.hpp). Built with -DBACKPLANE_FUZZ=ON and clang:
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON && cmake --build build-fuzz --target fuzz_request
//   build-fuzz/tests/fuzz/fuzz_request -max_total_time=60 tests/fuzz/corpus/fuzz_request
//
// The low bits of the first byte choose the frame's flag and the reader's
// options (so that the seeds stay text: "3" is a text frame to a server with
// history, presence and tokens), the rest is the frame. A request read must hold only
// what the options allow, valid names and a bounded text, each field as an
// independent JSON parser reads it; a refusal must carry a code from the
// README's table and an error reply that is valid JSON. Reading the same frame
// again with the same reader must give the same answer: nothing of one frame
// leaks into the next.
#include "protocol.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using demo::protocol::op;

// The codes the reader may answer with (README, "Errors"; invalid_last_id
// under "Catching up").
bool known_code(std::string_view code)
{
    for (std::string_view c : {"invalid_json", "not_text", "unknown_op", "unsupported", "missing_field",
                               "wrong_type", "unknown_field", "invalid_name", "too_long", "invalid_cursor",
                               "invalid_last_id"})
        if (code == c)
            return true;
    return false;
}

// The string member `key` of `j` as nlohmann-json reads it, or nullptr.
const std::string* member(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    return it == j.end() || !it->is_string() ? nullptr : &it->get_ref<const std::string&>();
}

bool same_string(const nlohmann::json& j, const char* key, const std::string& v)
{
    const std::string* m = member(j, key);
    return m && *m == v;
}

void check_request(std::string_view frame, const demo::protocol::capabilities& caps,
                   const demo::protocol::request& r)
{
    const auto named = [&](const std::string& n) { return !backplane::validate_name(n, caps.max_name_length); };
    const auto j = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object())
        std::abort();
    const std::string* op_name = member(j, "op");
    if (!op_name)
        std::abort();
    switch (r.kind) {
    case op::send:
        if (*op_name != "send" || r.text.size() > caps.max_text || !same_string(j, "text", r.text)
            || r.to_room != j.contains("room") || (r.to_room && (!named(r.room) || !same_string(j, "room", r.room))))
            std::abort();
        break;
    case op::dm:
        if (*op_name != "dm" || r.text.size() > caps.max_text || !same_string(j, "text", r.text) || !named(r.user)
            || !same_string(j, "to", r.user))
            std::abort();
        break;
    case op::join:
    case op::leave:
        if (*op_name != (r.kind == op::join ? "join" : "leave") || !named(r.room) || !same_string(j, "room", r.room))
            std::abort();
        if (r.last_id) {
            backplane::stream_id id;
            if (r.kind != op::join || !caps.history || !backplane::parse_stream_id(*r.last_id, id)
                || !same_string(j, "last_id", *r.last_id))
                std::abort();
        }
        break;
    case op::where:
        if (*op_name != "where" || !caps.presence || !named(r.user) || !same_string(j, "user", r.user))
            std::abort();
        break;
    case op::online:
        if (*op_name != "online" || !caps.presence || r.cursor.empty()
            || r.cursor.find_first_not_of("0123456789") != std::string::npos)
            std::abort();
        break;
    case op::refresh:
        if (*op_name != "refresh" || !caps.tokens || !same_string(j, "token", r.token))
            std::abort();
        break;
    }
    // The text goes out in every message frame: it must survive the writer.
    std::string written;
    demo::json::write_string(written, r.text);
    const auto back = nlohmann::json::parse(written, nullptr, false);
    if (!back.is_string() || back.get_ref<const std::string&>() != r.text)
        std::abort();
}

void check_error(const demo::protocol::error& e)
{
    if (e.code.empty() || !known_code(e.code) || e.message.empty())
        std::abort();
    // The reply goes to the client in a text frame: valid JSON, so valid UTF-8.
    const auto reply = nlohmann::json::parse(demo::protocol::error_reply(e), nullptr, false);
    if (!reply.is_object() || !same_string(reply, "code", std::string(e.code))
        || !same_string(reply, "message", e.message))
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    // 1: history, 2: presence, 4: small limits, 8: a binary frame, 16: tokens
    const unsigned flags = data[0];
    demo::protocol::capabilities caps;
    caps.history = flags & 1;
    caps.presence = flags & 2;
    caps.tokens = flags & 16;
    if (flags & 4) { // so that the fuzzer reaches them
        caps.max_text = 8;
        caps.max_name_length = 8;
    }
    const bool text = !(flags & 8);
    const std::string_view frame(reinterpret_cast<const char*>(data + 1), size - 1);

    demo::protocol::reader reader(caps);
    demo::protocol::request r;
    demo::protocol::error e;
    const bool ok = reader.read(frame, text, r, e);
    if (ok) {
        if (!text)
            std::abort();
        check_request(frame, caps, r);
    } else {
        check_error(e);
    }

    demo::protocol::request again;
    demo::protocol::error e2;
    if (reader.read(frame, text, again, e2) != ok)
        std::abort();
    if (ok ? again.kind != r.kind || again.room != r.room || again.to_room != r.to_room || again.user != r.user
                 || again.text != r.text || again.cursor != r.cursor || again.last_id != r.last_id
                 || again.token != r.token
           : e2.code != e.code || e2.message != e.message)
        std::abort();
    return 0;
}
