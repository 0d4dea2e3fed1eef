// BLAS thread counts. rosetta's own threads are the parallel axis, so every BLAS library is
// pinned to one thread the first time rosetta calls it, unless the environment variable
// ROSETTA_BLAS_THREADS=N says otherwise. set_blas_threads(n) changes it at any time.
#pragma once

#include <cstdlib>
#include <string>

#include "rosetta/core/errors.hpp"

namespace rosetta::backend {

/// Threads requested by ROSETTA_BLAS_THREADS, or 1. A malformed value is a ValueError.
inline int default_blas_threads() {
  const char* env = std::getenv("ROSETTA_BLAS_THREADS");
  if (!env || !*env) return 1;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (*end != '\0' || n < 1 || n > 1024)
    rosetta::detail::raise<ValueError>("ROSETTA_BLAS_THREADS='", env,
                                       "' is not a thread count (allowed: 1..1024)");
  return static_cast<int>(n);
}

}  // namespace rosetta::backend
