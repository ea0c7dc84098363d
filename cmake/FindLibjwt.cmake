# FindLibjwt: libjwt, the JSON Web Token library on OpenSSL, as Debian's
# libjwt-dev ships it (1.10). Defines Libjwt::libjwt.
find_path(Libjwt_INCLUDE_DIR NAMES jwt.h)
find_library(Libjwt_LIBRARY NAMES jwt)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libjwt REQUIRED_VARS Libjwt_LIBRARY Libjwt_INCLUDE_DIR)
if(Libjwt_FOUND AND NOT TARGET Libjwt::libjwt)
  add_library(Libjwt::libjwt UNKNOWN IMPORTED)
  set_target_properties(Libjwt::libjwt PROPERTIES
    IMPORTED_LOCATION "${Libjwt_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Libjwt_INCLUDE_DIR}")
endif()
mark_as_advanced(Libjwt_INCLUDE_DIR Libjwt_LIBRARY)
