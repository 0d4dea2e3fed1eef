# Compiles one source with -fsyntax-only and checks the outcome; invoked by ctest as
# `cmake -D... -P check_compile.cmake`.
#
#   COMPILER      C++ compiler
#   SOURCE        file to compile
#   INCLUDE_DIRS  '|'-separated include directories (rosetta's and its dependencies')
#   DEFINITIONS   '|'-separated preprocessor definitions (optional)
#   IMPLICIT_DIRS '|'-separated compiler default include dirs, never passed as -I (optional)
#   EXPECT        FAIL: compilation must fail and the diagnostics must contain MESSAGE
#                 PASS: compilation must succeed
#   MESSAGE       concept name the diagnostics must blame (EXPECT FAIL only). Besides
#                 containing the text, the output must have a GCC "required for the
#                 satisfaction of 'MESSAGE<...>'" or Clang "does not satisfy 'MESSAGE'"
#                 note: GCC prints every constraint of the template in its first error
#                 line, so a bare substring match would pass for any violated concept.
cmake_minimum_required(VERSION 3.21)

foreach(_var IN ITEMS COMPILER SOURCE EXPECT)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_compile.cmake: ${_var} is not set")
  endif()
endforeach()

set(_args -std=c++20 -fsyntax-only)
string(REPLACE "|" ";" _incs "${INCLUDE_DIRS}")
string(REPLACE "|" ";" _implicit "${IMPLICIT_DIRS}")
foreach(_inc IN LISTS _incs)
  if(_inc AND NOT _inc IN_LIST _implicit)
    list(APPEND _args "-I${_inc}")
  endif()
endforeach()
string(REPLACE "|" ";" _defs "${DEFINITIONS}")
foreach(_def IN LISTS _defs)
  if(_def)
    list(APPEND _args "-D${_def}")
  endif()
endforeach()

# LC_ALL=C: ASCII quotes in GCC's diagnostics.
execute_process(COMMAND "${CMAKE_COMMAND}" -E env LC_ALL=C "${COMPILER}" ${_args} "${SOURCE}"
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
string(REPLACE ";" " " _cmd "${COMPILER};${_args};${SOURCE}")

if(EXPECT STREQUAL "PASS")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "expected to compile, but it failed (exit ${_rc}):\n${_cmd}\n${_out}")
  endif()
  message(STATUS "compiled as expected: ${SOURCE}")
elseif(EXPECT STREQUAL "FAIL")
  if(NOT MESSAGE)
    message(FATAL_ERROR "check_compile.cmake: EXPECT FAIL needs MESSAGE")
  endif()
  if(_rc EQUAL 0)
    message(FATAL_ERROR "expected a compile error, but it compiled:\n${_cmd}")
  endif()
  # A missing header is a broken setup, not the error we are looking for.
  if(_out MATCHES "No such file or directory|file not found")
    message(FATAL_ERROR "compile failed for the wrong reason (missing file):\n${_cmd}\n${_out}")
  endif()
  string(FIND "${_out}" "${MESSAGE}" _pos)
  if(_pos EQUAL -1)
    message(FATAL_ERROR
      "compile failed as expected, but the diagnostics do not mention '${MESSAGE}':\n${_cmd}\n${_out}")
  endif()
  if(NOT _out MATCHES "satisf(y|action of) '${MESSAGE}[<']")
    message(FATAL_ERROR
      "compile failed as expected, but no diagnostic says the '${MESSAGE}' concept is not "
      "satisfied:\n${_cmd}\n${_out}")
  endif()
  message(STATUS "failed to compile as expected, diagnostics blame '${MESSAGE}': ${SOURCE}")
else()
  message(FATAL_ERROR "check_compile.cmake: EXPECT must be PASS or FAIL, not '${EXPECT}'")
endif()
