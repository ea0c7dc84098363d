# Installs the build to a temporary prefix, then builds and runs the consumer
# against it with find_package, and against the source tree with add_subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(way package subdirectory)
  set(build ${WORK_DIR}/${way})
  if(way STREQUAL package)
    set(how -DCMAKE_PREFIX_PATH=${prefix})
  else()
    set(how -DBACKPLANE_SOURCE_DIR=${SOURCE_DIR})
  endif()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${build}
      -DCMAKE_CXX_COMPILER=${CXX} ${how})
  run(${CMAKE_COMMAND} --build ${build})
  run(${build}/consumer)
  if(EXPECT_WEBSOCKET)
    run(${build}/consumer_websocket)
  endif()
endforeach()
