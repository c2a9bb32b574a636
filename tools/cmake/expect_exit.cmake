# Runs a command and checks its exit code and output (ctest's WILL_FAIL cannot demand a specific
# code together with a message). Usage, as a test command:
#   cmake -DEXPECT_EXIT=2 "-DEXPECT_OUTPUT=<regex>" -P expect_exit.cmake -- <program> <args>...
# EXPECT_OUTPUT is matched against stdout and stderr together.
set(_command "")
set(_collect FALSE)
foreach(_i RANGE 1 ${CMAKE_ARGC})
  if(_i EQUAL CMAKE_ARGC)
    break()
  endif()
  if(_collect)
    list(APPEND _command "${CMAKE_ARGV${_i}}")
  elseif(CMAKE_ARGV${_i} STREQUAL "--")
    set(_collect TRUE)
  endif()
endforeach()
if(NOT _command)
  message(FATAL_ERROR "expect_exit.cmake: no command after --")
endif()

execute_process(COMMAND ${_command} RESULT_VARIABLE _code OUTPUT_VARIABLE _out
  ERROR_VARIABLE _out)
message("${_out}")
if(NOT _code STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit code ${EXPECT_EXIT}, got ${_code}")
endif()
if(DEFINED EXPECT_OUTPUT AND NOT _out MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "output does not match '${EXPECT_OUTPUT}'")
endif()
