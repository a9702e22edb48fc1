# Tokenizer tests (issue 4). Included at the end of tests/CMakeLists.txt, which defines
# bloomz_add_test (links bloomz_core, GTest::gtest_main, nlohmann_json; defines BLOOMZ_TEST_DATA).
bloomz_add_test(tokenizer_test unit tokenizer_test.cpp)
bloomz_add_test(tokenizer_fixture_test fixture tokenizer_fixture_test.cpp)
bloomz_add_test(tokenizer_cli_test cli tokenizer_cli_test.cpp)
add_dependencies(tokenizer_cli_test bloomz)
