# `bloomz serve` (issue 18): the HTTP tests in C++ (a cpp-httplib client), and the official
# `openai` npm client against the server (tests/server_openai_client.sh; needs node and npm).
bloomz_add_test(server_test e2e server_test.cpp)
target_link_libraries(server_test PRIVATE bloomz_server)
add_dependencies(server_test bloomz)

# Registered whether or not node is there: without node and npm it fails (a real client is the point).
add_test(NAME Serve.OpenAiNpmClient
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/server_openai_client.sh $<TARGET_FILE:bloomz>
                 ${CMAKE_CURRENT_SOURCE_DIR}/data/models/tiny-odd-f16.gguf)
set_tests_properties(Serve.OpenAiNpmClient PROPERTIES LABELS e2e TIMEOUT 600)
