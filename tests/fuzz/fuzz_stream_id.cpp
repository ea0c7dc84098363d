// libFuzzer target for stream ids (backplane/stream_id.hpp). Built with
// -DBACKPLANE_FUZZ=ON and clang:
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON && cmake --build build-fuzz --target fuzz_stream_id
//   build-fuzz/tests/fuzz/fuzz_stream_id -max_total_time=60 tests/fuzz/corpus/fuzz_stream_id
//
// The input is parsed as an id: it must be accepted exactly when
// std::from_chars reads two numbers from it, and what is accepted must format
// back to the input unless the input has leading zeros, and parse back to the
// same id. Its first 32 bytes are also two ids, whose comparisons must agree
// with each other and with their (ms, seq) order.
#include <backplane/stream_id.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

namespace {

// A decimal number as std::from_chars reads it, the whole of `s`, of at most
// 20 digits (the parser's bound: UINT64_MAX has 20).
bool reference_decimal(std::string_view s, std::uint64_t& v)
{
    if (s.empty() || s.size() > 20 || s.front() < '0' || s.front() > '9')
        return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && end == s.data() + s.size();
}

bool canonical(std::string_view s)
{
    return s.size() == 1 || s.front() != '0';
}

void check_text(std::string_view in)
{
    backplane::stream_id id;
    const bool ok = backplane::parse_stream_id(in, id);
    const auto dash = in.find('-');
    backplane::stream_id expected;
    const bool expected_ok = dash != std::string_view::npos && reference_decimal(in.substr(0, dash), expected.ms)
                             && reference_decimal(in.substr(dash + 1), expected.seq);
    if (ok != expected_ok || (ok && id != expected))
        std::abort();
    if (!ok)
        return;
    const auto text = id.to_string();
    if ((canonical(in.substr(0, dash)) && canonical(in.substr(dash + 1))) != (text == in))
        std::abort();
    backplane::stream_id again;
    if (!backplane::parse_stream_id(text, again) || again != id)
        std::abort();
}

void check_order(const backplane::stream_id& a, const backplane::stream_id& b)
{
    const bool less = a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq);
    const bool equal = a.ms == b.ms && a.seq == b.seq;
    if ((a < b) != less || (a == b) != equal || (a != b) == equal || (b < a) != (!less && !equal)
        || (a <= b) != (less || equal) || (a > b) != (b < a))
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    check_text(std::string_view(reinterpret_cast<const char*>(data), size));
    if (size >= 32) {
        backplane::stream_id a, b;
        std::memcpy(&a.ms, data, 8);
        std::memcpy(&a.seq, data + 8, 8);
        std::memcpy(&b.ms, data + 16, 8);
        std::memcpy(&b.seq, data + 24, 8);
        check_order(a, b);
        check_order(a, a);
        check_text(a.to_string());
    }
    return 0;
}
