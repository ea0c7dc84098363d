# Findwebsocketpp: the header-only websocketpp library, as Debian's
# libwebsocketpp-dev ships it. Defines websocketpp::websocketpp.
find_path(websocketpp_INCLUDE_DIR NAMES websocketpp/version.hpp)
if(websocketpp_INCLUDE_DIR)
  file(STRINGS "${websocketpp_INCLUDE_DIR}/websocketpp/version.hpp" _wspp_lines
       REGEX "^static int const (major|minor|patch)_version = [0-9]+")
  foreach(_part major minor patch)
    string(REGEX REPLACE ".*${_part}_version = ([0-9]+).*" "\\1" _wspp_${_part} "${_wspp_lines}")
  endforeach()
  set(websocketpp_VERSION "${_wspp_major}.${_wspp_minor}.${_wspp_patch}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(websocketpp
  REQUIRED_VARS websocketpp_INCLUDE_DIR VERSION_VAR websocketpp_VERSION)
if(websocketpp_FOUND AND NOT TARGET websocketpp::websocketpp)
  add_library(websocketpp::websocketpp INTERFACE IMPORTED)
  set_target_properties(websocketpp::websocketpp PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${websocketpp_INCLUDE_DIR}")
endif()
mark_as_advanced(websocketpp_INCLUDE_DIR)
