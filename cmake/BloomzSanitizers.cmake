# bloomz_sanitizers: ASan/UBSan (or TSan) flags for every project target when BLOOMZ_SANITIZE is set.
add_library(bloomz_sanitizers INTERFACE)
if(BLOOMZ_SANITIZE)
  string(REPLACE ";" "," _bloomz_san "${BLOOMZ_SANITIZE}")
  target_compile_options(bloomz_sanitizers INTERFACE -fsanitize=${_bloomz_san} -fno-omit-frame-pointer
                         -fno-sanitize-recover=all)
  target_link_options(bloomz_sanitizers INTERFACE -fsanitize=${_bloomz_san})
endif()
