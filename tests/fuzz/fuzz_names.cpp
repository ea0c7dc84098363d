// libFuzzer target for name validation (backplane/names.hpp). Built with
// -DBACKPLANE_FUZZ=ON and clang:
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON && cmake --build build-fuzz --target fuzz_names
//   build-fuzz/tests/fuzz/fuzz_names -max_total_time=60 tests/fuzz/corpus/fuzz_names
//
// A name must be accepted exactly when a decoder written here, after the
// table of well-formed UTF-8 (Unicode, table 3-7), finds it well-formed and
// every character allowed: no ':' '*' '?' '[' ']', space or control
// character, no code point that is_name_code_point refuses. The input is
// checked with the default length limit and with a limit its length chooses.
#include <backplane/names.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

// The code point at the front of `s` and its length; a length of 0 if the
// bytes there are not well-formed UTF-8.
std::size_t next_code_point(std::string_view s, char32_t& cp)
{
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const auto in = [&](std::size_t k, unsigned lo, unsigned hi) { return k < s.size() && at(k) >= lo && at(k) <= hi; };
    const unsigned b = at(0);
    if (b <= 0x7f) {
        cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf && in(1, 0x80, 0xbf)) {
        cp = (b & 0x1f) << 6 | (at(1) & 0x3f);
        return 2;
    }
    const bool three = (b == 0xe0 && in(1, 0xa0, 0xbf)) || (b >= 0xe1 && b <= 0xec && in(1, 0x80, 0xbf))
                       || (b == 0xed && in(1, 0x80, 0x9f)) || (b >= 0xee && b <= 0xef && in(1, 0x80, 0xbf));
    if (three && in(2, 0x80, 0xbf)) {
        cp = (b & 0x0f) << 12 | (at(1) & 0x3f) << 6 | (at(2) & 0x3f);
        return 3;
    }
    const bool four = (b == 0xf0 && in(1, 0x90, 0xbf)) || (b >= 0xf1 && b <= 0xf3 && in(1, 0x80, 0xbf))
                      || (b == 0xf4 && in(1, 0x80, 0x8f));
    if (four && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf)) {
        cp = (b & 0x07) << 18 | (at(1) & 0x3f) << 12 | (at(2) & 0x3f) << 6 | (at(3) & 0x3f);
        return 4;
    }
    return 0;
}

bool allowed(char32_t cp)
{
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
        return false;
    for (char32_t refused : {U' ', U':', U'*', U'?', U'[', U']'})
        if (cp == refused)
            return false;
    return cp < 0x80 || backplane::is_name_code_point(cp);
}

bool expected_valid(std::string_view name, std::size_t max_length)
{
    if (name.empty() || name.size() > max_length)
        return false;
    while (!name.empty()) {
        char32_t cp = 0;
        const std::size_t n = next_code_point(name, cp);
        if (n == 0 || !allowed(cp))
            return false;
        name.remove_prefix(n);
    }
    return true;
}

void check(std::string_view name, std::size_t max_length)
{
    const auto ec = backplane::validate_name(name, max_length);
    if (ec && ec != backplane::error::invalid_name)
        std::abort();
    if (!ec != expected_valid(name, max_length))
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view name(reinterpret_cast<const char*>(data), size);
    check(name, backplane::default_max_name_length);
    check(name, size % 7 + size / 2);
    return 0;
}
