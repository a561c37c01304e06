// <immintrin.h> for the files with run-time-dispatched AVX-512 code. GCC 12's AVX-512 headers
// start some intrinsics from _mm512_undefined_*(), which -Wextra reports as uninitialised use;
// the values are fully overwritten, so those two warnings are off in the including file.
#pragma once

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif
