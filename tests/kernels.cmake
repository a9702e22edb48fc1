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
