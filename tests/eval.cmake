# Issue 9: perplexity, KL divergence and choice scoring (library part and the two commands).
bloomz_add_test(eval_test model eval_test.cpp ${PROJECT_SOURCE_DIR}/src/eval.cpp)
add_dependencies(eval_test bloomz)
