bloomz_add_test(sampler_test unit sampler_test.cpp)
