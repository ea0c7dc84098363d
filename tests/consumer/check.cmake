# Installs the build to a temporary prefix, then builds and runs the consumer
# against it with find_package, and against the source tree with
# add_subdirectory; each component the build has is used (Redis through a
# private redis-server on a Unix socket).
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

if(EXPECT_REDIS)
  set(socket ${WORK_DIR}/redis.sock)
  file(MAKE_DIRECTORY ${WORK_DIR})
  run(redis-server --port 0 --unixsocket ${socket} --save "" --appendonly no --daemonize yes
      --pidfile ${WORK_DIR}/redis.pid --dir ${WORK_DIR} --logfile ${WORK_DIR}/redis.log)
endif()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(way package subdirectory)
  set(build ${WORK_DIR}/${way})
  if(way STREQUAL package)
    set(how -DCMAKE_PREFIX_PATH=${prefix})
  else()
    set(how -DBACKPLANE_SOURCE_DIR=${SOURCE_DIR})
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${build}
      -DCMAKE_CXX_COMPILER=${CXX} -DEXPECT_REDIS=${EXPECT_REDIS} -DEXPECT_WEBSOCKET=${EXPECT_WEBSOCKET} ${how}
    RESULT_VARIABLE rc)
  if(rc EQUAL 0)
    execute_process(COMMAND ${CMAKE_COMMAND} --build ${build} RESULT_VARIABLE rc)
  endif()
  foreach(program consumer consumer_redis consumer_websocket)
    if(NOT rc EQUAL 0 OR NOT EXISTS ${build}/${program})
      continue()
    endif()
    if(program STREQUAL consumer_redis)
      execute_process(COMMAND ${build}/${program} ${socket} RESULT_VARIABLE rc)
    else()
      execute_process(COMMAND ${build}/${program} RESULT_VARIABLE rc)
    endif()
  endforeach()
  if(NOT rc EQUAL 0)
    break()
  endif()
endforeach()

if(EXPECT_REDIS)
  file(READ ${WORK_DIR}/redis.pid pid)
  string(STRIP "${pid}" pid)
  execute_process(COMMAND kill ${pid})
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the ${way} consumer failed (${rc})")
endif()
