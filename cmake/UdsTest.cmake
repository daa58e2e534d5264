# Test registration. Every test goes through one helper, so timeouts and
# environment are uniform.
#   tests/unit/test_NAME.c   -> cmocka executable, CTest test "unit.NAME"
#   tests/cli/NAME.sh        -> shell script,      CTest test "cli.NAME"
#   tests/fuzz/fuzz_NAME.c   -> libFuzzer target; its corpus tests/fuzz/corpus/NAME/
#                               is replayed by an ordinary build as "fuzz.NAME"
find_library(CMOCKA_LIB cmocka REQUIRED)
find_path(CMOCKA_INC cmocka.h REQUIRED)

function(uds_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    LABELS "${T_LABELS}"
    ENVIRONMENT "UDS_BUILD_DIR=${CMAKE_BINARY_DIR};UDS_SOURCE_DIR=${PROJECT_SOURCE_DIR};ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()

file(GLOB UDS_UNIT_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${UDS_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^test_" "" short ${name})
  add_executable(${name} ${src} ${PROJECT_SOURCE_DIR}/tests/unit/testutil.c)
  target_include_directories(${name} PRIVATE ${CMOCKA_INC} ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE udsock_static ${CMOCKA_LIB} m pthread)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # a file may ask for a longer timeout with a comment: "// uds-test-timeout: 300"
  file(STRINGS ${src} tline REGEX "uds-test-timeout: [0-9]+")
  set(tmo 120)
  if(tline)
    string(REGEX MATCH "[0-9]+" tmo "${tline}")
  endif()
  uds_test(unit.${short} COMMAND ${name} TIMEOUT ${tmo} LABELS unit)
  if(short STREQUAL "bindmode")
    # records the socket file's mode at the moment of bind() and listen()
    # (the wrappers are in the test; see there)
    target_link_options(${name} PRIVATE -Wl,--wrap=bind,--wrap=listen)
  endif()
endforeach()

file(GLOB UDS_CLI_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cli/*.sh)
foreach(src ${UDS_CLI_TESTS})
  get_filename_component(name ${src} NAME_WE)
  file(STRINGS ${src} tline REGEX "uds-test-timeout: [0-9]+")
  set(tmo 300)
  if(tline)
    string(REGEX MATCH "[0-9]+" tmo "${tline}")
  endif()
  uds_test(cli.${name} COMMAND bash ${src} TIMEOUT ${tmo} LABELS cli)
endforeach()

file(GLOB UDS_FUZZ_TARGETS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${UDS_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  if(UDS_FUZZ)
    set(tgt ${name})
    add_executable(${tgt} ${src})
    target_compile_options(${tgt} PRIVATE -fsanitize=fuzzer)
    target_link_options(${tgt} PRIVATE -fsanitize=fuzzer)
    set_target_properties(${tgt} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  else()
    set(tgt replay_${short})
    add_executable(${tgt} ${src} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c)
    set_target_properties(${tgt} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    uds_test(fuzz.${short} COMMAND ${tgt} ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${short} LABELS fuzz)
  endif()
  target_link_libraries(${tgt} PRIVATE udsock_static)
  if(short STREQUAL "cli")
    # fuzz_cli: the CLI's own sources (its main.c is #included, renamed) and
    # the wraps that keep a parse in process and off the network (see there)
    set(cli_srcs ${UDS_CLI_SOURCES})
    list(FILTER cli_srcs EXCLUDE REGEX "/main\\.c$")
    target_sources(${tgt} PRIVATE ${cli_srcs})
    target_include_directories(${tgt} PRIVATE ${PROJECT_SOURCE_DIR}/src/cli)
    target_link_libraries(${tgt} PRIVATE m)
    target_link_options(${tgt} PRIVATE -Wl,--wrap=exit,--wrap=getaddrinfo,--wrap=getpwnam,--wrap=getgrnam,--wrap=socket,--wrap=fork)
  endif()
endforeach()

# Test tools: tests/tools/NAME.c -> build/tests/NAME, used by the CLI tests.
# They are independent judges of what the library and the CLI do: they never
# link libudsock nor include its headers (raw syscalls only).
file(GLOB UDS_TEST_TOOLS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/tools/*.c)
foreach(src ${UDS_TEST_TOOLS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(tool_${name} ${src})
  target_link_libraries(tool_${name} PRIVATE m)
  set_target_properties(tool_${name} PROPERTIES OUTPUT_NAME ${name}
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endforeach()

# Battery row 8 (issue 9): the 2-minute soak (tests/stress/soak.sh 120 2),
# label "soak". Plain builds only: under ASan the allocator's quarantine
# makes RSS grow by design, so an RSS slope says nothing there (the ASan
# build runs cli.integrity and cli.hostile instead). The load is rate-limited
# (SOAK_RATE) and the test runs alone (RUN_SERIAL): its fork-heavy load made
# the timing of a test beside it (cli.serve_limits) fail once, and others'
# load would blur its slopes. Adds its 2 minutes to the plain run.
if(NOT UDS_SANITIZE)
  uds_test(stress.soak COMMAND env SOAK_RATE=3000 bash ${PROJECT_SOURCE_DIR}/tests/stress/soak.sh 120 2
           TIMEOUT 300 LABELS "soak;stress")
  set_tests_properties(stress.soak PROPERTIES RUN_SERIAL TRUE)
endif()

# The syscall fault-injection shim (LD_PRELOAD; tests/cli/fault.sh):
# tests/fault/faultinject.c -> build/tests/libfaultinject.so
add_library(faultinject SHARED ${PROJECT_SOURCE_DIR}/tests/fault/faultinject.c)
target_link_libraries(faultinject PRIVATE dl)
set_target_properties(faultinject PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
