// libFuzzer target for the envelope decoder. Built with -DBACKPLANE_FUZZ=ON and clang:
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON && cmake --build build-fuzz --target fuzz_envelope
//   build-fuzz/tests/fuzz/fuzz_envelope -max_total_time=60
//
// Any input must decode to views inside the input or fail with an error, and
// whatever decodes must encode back to the same bytes.
#include <backplane/envelope.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    backplane::envelope e;
    if (backplane::decode(in, e))
        return 0;
    for (auto v : {e.origin, e.target, e.payload})
        if (!v.empty() && (v.data() < in.data() || v.data() + v.size() > in.data() + in.size()))
            std::abort();
    std::string again;
    backplane::encode(e, again);
    backplane::envelope e2;
    if (backplane::decode(again, e2) || e2.origin != e.origin || e2.target != e.target
        || e2.payload != e.payload || e2.exclude != e.exclude || e2.sequence != e.sequence
        || e2.kind != e.kind)
        std::abort();
    return 0;
}
