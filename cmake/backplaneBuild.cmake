# How the project builds its own programs (tests, benchmarks, demo): warnings,
# sanitizers, and the list of test suites a build has. Not installed: the
# library's users get none of this.

set(backplane_warnings -Wall -Wextra -Wpedantic -Wshadow)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # g++ 12 at -O2 and -O3 warns falsely inside libstdc++'s std::string:
  # -Wrestrict on "x" + std::to_string(n) (GCC bug 105329) and
  # -Wmaybe-uninitialized on strings of temporaries (GCC bug 107919).
  list(APPEND backplane_warnings -Wno-restrict -Wno-maybe-uninitialized)
endif()
if(BACKPLANE_WERROR)
  list(APPEND backplane_warnings -Werror)
endif()

# backplane_program(TARGET [SANITIZE list]): the project's warnings, and the
# sanitizers of BACKPLANE_SANITIZE (or those given).
function(backplane_program target)
  cmake_parse_arguments(arg "" "SANITIZE" "" ${ARGN})
  if(NOT DEFINED arg_SANITIZE)
    set(arg_SANITIZE "${BACKPLANE_SANITIZE}")
  endif()
  target_compile_options(${target} PRIVATE ${backplane_warnings})
  if(arg_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${arg_SANITIZE} -fno-sanitize-recover=all
                                             -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${arg_SANITIZE})
  endif()
endfunction()

# backplane_suite(NAME FOUND WHY): records that suite NAME is built when FOUND
# is true; otherwise leaves it out with WHY, or fails under
# BACKPLANE_REQUIRE_ALL_SUITES. Sets backplane_suite_ok in the caller.
function(backplane_suite name found why)
  if(found)
    set_property(GLOBAL APPEND PROPERTY backplane_suites "${name}")
    set(backplane_suite_ok TRUE PARENT_SCOPE)
  elseif(BACKPLANE_REQUIRE_ALL_SUITES)
    message(FATAL_ERROR "backplane: the ${name} suite cannot be built: ${why}")
  else()
    message(STATUS "backplane: the ${name} suite is left out: ${why}")
    set_property(GLOBAL APPEND PROPERTY backplane_suites_left_out "${name}")
    set(backplane_suite_ok FALSE PARENT_SCOPE)
  endif()
endfunction()

# Writes the suites built and left out to backplane-suites.txt in the build
# tree, for tests/run.sh to print beside the test counts.
function(backplane_write_suites)
  get_property(built GLOBAL PROPERTY backplane_suites)
  get_property(left GLOBAL PROPERTY backplane_suites_left_out)
  string(REPLACE ";" ", " built "${built}")
  string(REPLACE ";" ", " left "${left}")
  file(WRITE ${PROJECT_BINARY_DIR}/backplane-suites.txt "built: ${built}\nleft out: ${left}\n")
endfunction()

# The marker a test prints when this machine cannot run it (see
# tests/support/skip.hpp); CTest then reports it as skipped, not passed.
set(backplane_skip_marker "BACKPLANE-SKIP:")
