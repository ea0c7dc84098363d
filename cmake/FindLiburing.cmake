# FindLiburing: liburing, the io_uring helper library, as Debian's
# liburing-dev ships it (2.3 or later). Defines Liburing::liburing.
find_path(Liburing_INCLUDE_DIR NAMES liburing.h)
find_library(Liburing_LIBRARY NAMES uring)
# The flags the transport sets up its ring with came in liburing 2.3.
if(Liburing_INCLUDE_DIR)
  file(STRINGS "${Liburing_INCLUDE_DIR}/liburing/io_uring.h" _liburing_defer REGEX "IORING_SETUP_DEFER_TASKRUN")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Liburing
  REQUIRED_VARS Liburing_LIBRARY Liburing_INCLUDE_DIR _liburing_defer)
if(Liburing_FOUND AND NOT TARGET Liburing::liburing)
  add_library(Liburing::liburing UNKNOWN IMPORTED)
  set_target_properties(Liburing::liburing PROPERTIES
    IMPORTED_LOCATION "${Liburing_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Liburing_INCLUDE_DIR}")
endif()
mark_as_advanced(Liburing_INCLUDE_DIR Liburing_LIBRARY)
