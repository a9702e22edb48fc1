# Kernel tests (issue 3): fp16 conversions, kernel tables against ggml's fixtures and each other,
# the matmul driver's determinism. Included from tests/CMakeLists.txt.
include(GoogleTest)
foreach(_kt fp16_test kernels_test matmul_test)
  add_executable(${_kt} ${CMAKE_CURRENT_LIST_DIR}/${_kt}.cpp)
  target_link_libraries(${_kt} PRIVATE bloomz_core GTest::gtest_main nlohmann_json::nlohmann_json
                        bloomz_warnings)
  target_include_directories(${_kt} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(${_kt} PRIVATE BLOOMZ_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data")
  gtest_discover_tests(${_kt} PROPERTIES LABELS kernels DISCOVERY_TIMEOUT 60)
endforeach()
unset(_kt)

# The emulated AVX-512 build (issue 15): the kernel, matmul and forward-pass tests again, linked
# against bloomz_core_simde, whose avx512 / avx512vnni tables are SIMDe code that any x86-64 CPU
# with AVX2 runs (their ctest names start with "simde."). On an AVX-512 CPU the tests above run the
# native tables as well.
if(TARGET bloomz_core_simde)
  foreach(_kt kernels_test matmul_test forward_test)
    add_executable(${_kt}_simde ${CMAKE_CURRENT_LIST_DIR}/${_kt}.cpp)
    target_link_libraries(${_kt}_simde PRIVATE bloomz_core_simde GTest::gtest_main nlohmann_json::nlohmann_json
                          bloomz_warnings bloomz_sanitizers)
    target_include_directories(${_kt}_simde PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/src)
    target_compile_definitions(${_kt}_simde PRIVATE BLOOMZ_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
                               BLOOMZ_SIMDE_BUILD=1)
    # forward_test_simde: a minute in a Release build (emulated AVX-512 runs every fixture model);
    # its own label lets the sanitizer stage of .ci/run leave it out.
    set(_label simde)
    if(_kt STREQUAL "forward_test")
      set(_label simde_model)
    endif()
    gtest_discover_tests(${_kt}_simde TEST_PREFIX "simde." PROPERTIES LABELS ${_label} DISCOVERY_TIMEOUT 60)
  endforeach()
  unset(_kt)
  unset(_label)
endif()
