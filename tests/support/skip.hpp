// tests/support/skip.hpp - a test that this machine cannot run says so.
//
//   if (!kernel_gives_send_ring())
//       return skip("this kernel refuses io_uring");
//
// It prints the marker that CTest's SKIP_REGULAR_EXPRESSION looks for
// (cmake/backplaneBuild.cmake), so the test is reported as skipped, not as
// passed; tests/run.sh fails a run with any skipped test. Catch2 2 has no
// skip of its own.
#ifndef BACKPLANE_TESTS_SUPPORT_SKIP_HPP
#define BACKPLANE_TESTS_SUPPORT_SKIP_HPP

#include <catch2/catch.hpp>

#include <iostream>
#include <string_view>

namespace backplane::test {

inline void skip(std::string_view why)
{
    std::cout << "BACKPLANE-SKIP: " << why << std::endl;
    WARN("skipped: " << why);
}

} // namespace backplane::test

#endif
