# Warnings for our own targets only (dependency headers are included as SYSTEM).
function(l2o_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# l2o_add_test(NAME name SOURCES a.cpp ... LABELS unit|slow [TIMEOUT s])
# One GoogleTest executable per call, registered with ctest under its label.
function(l2o_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE l2o GTest::gtest GTest::gtest_main)
  l2o_warnings(${T_NAME})
  if(L2O_USE_PCH)
    target_precompile_headers(${T_NAME} REUSE_FROM l2o)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "L2O_BIN=${PROJECT_BINARY_DIR}/bin/l2o;L2O_SOURCE_DIR=${PROJECT_SOURCE_DIR};OMP_NUM_THREADS=1")
endfunction()
