# bloomz_warnings: the warning set every project target compiles with.
add_library(bloomz_warnings INTERFACE)
target_compile_options(bloomz_warnings INTERFACE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
                       -Wcast-align -Woverloaded-virtual -Wnull-dereference)
if(BLOOMZ_WERROR)
  target_compile_options(bloomz_warnings INTERFACE -Werror)
endif()
