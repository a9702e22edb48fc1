# Hardening (issue 8): every row of the table in docs/bad-input.md ("Bad input and what bloomz does"), end to end.
bloomz_add_test(bad_input_test e2e bad_input_test.cpp)
add_dependencies(bad_input_test bloomz)
