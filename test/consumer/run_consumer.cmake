# Runs one consumer test; invoked by ctest as `cmake -D... -P run_consumer.cmake`.
#
#   MODE                install | subdirectory
#   CONSUMER_DIR        source dir of the consumer project
#   WORK_DIR            scratch dir (wiped first)
#   ROSETTA_SOURCE_DIR  rosetta's source tree         (subdirectory mode)
#   ROSETTA_BINARY_DIR  rosetta's build tree          (install mode)
#   EXPECTED_BACKENDS   '|'-separated backend names the package must provide (install mode)
#   CXX_COMPILER, GENERATOR, MAKE_PROGRAM, CONFIG     forwarded to the consumer build
cmake_minimum_required(VERSION 3.21)

foreach(_var IN ITEMS MODE CONSUMER_DIR WORK_DIR CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${_var} is not set")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

# Runs a command, echoing it; aborts the test with its output on failure.
function(run_step what)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[consumer:${MODE}] ${what}: ${_pretty}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[consumer:${MODE}] ${what} FAILED (exit ${_rc}):\n${_out}")
  endif()
  message(STATUS "${_out}")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(_configure_args
  -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build"
  -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_BUILD_TYPE=${CONFIG}")
if(MAKE_PROGRAM)
  list(APPEND _configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

if(MODE STREQUAL "install")
  if(NOT ROSETTA_BINARY_DIR)
    message(FATAL_ERROR "run_consumer.cmake: ROSETTA_BINARY_DIR is not set")
  endif()
  set(_prefix "${WORK_DIR}/prefix")
  run_step("install" "${CMAKE_COMMAND}" --install "${ROSETTA_BINARY_DIR}"
           --prefix "${_prefix}" --config "${CONFIG}")
  foreach(_f IN ITEMS include/rosetta/rosetta.hpp)
    if(NOT EXISTS "${_prefix}/${_f}")
      message(FATAL_ERROR "[consumer:install] ${_f} was not installed")
    endif()
  endforeach()
  file(GLOB_RECURSE _configs "${_prefix}/*.cmake")
  list(FILTER _configs INCLUDE REGEX "/rosettaConfig\\.cmake$")
  if(NOT _configs)
    message(FATAL_ERROR "[consumer:install] rosettaConfig.cmake was not installed")
  endif()
  list(APPEND _configure_args
    "-DCMAKE_PREFIX_PATH=${_prefix}"
    "-DROSETTA_EXPECTED_PREFIX=${_prefix}"
    "-DROSETTA_EXPECTED_BACKENDS=${EXPECTED_BACKENDS}"
    # Never pick up a package registered by some other build of rosetta.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  set(_programs consumer consumer_backends)
elseif(MODE STREQUAL "subdirectory")
  if(NOT ROSETTA_SOURCE_DIR)
    message(FATAL_ERROR "run_consumer.cmake: ROSETTA_SOURCE_DIR is not set")
  endif()
  list(APPEND _configure_args "-DROSETTA_SOURCE_DIR=${ROSETTA_SOURCE_DIR}")
  set(_programs consumer)
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run_step("configure" "${CMAKE_COMMAND}" ${_configure_args})
run_step("build" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config "${CONFIG}")
foreach(_prog IN LISTS _programs)
  run_step("run ${_prog}" "${WORK_DIR}/build/bin/${_prog}")
endforeach()
message(STATUS "[consumer:${MODE}] passed")
