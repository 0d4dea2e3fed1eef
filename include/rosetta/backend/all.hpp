// Every backend this build has, as a type list, plus process-wide BLAS thread control.
#pragma once

#include <tuple>

#include "rosetta/backend/naive.hpp"
#include "rosetta/backend/threads.hpp"
#ifdef ROSETTA_HAS_EIGEN
#include "rosetta/backend/eigen.hpp"
#endif
#ifdef ROSETTA_HAS_BLIS
#include "rosetta/backend/blis.hpp"
#endif
#ifdef ROSETTA_HAS_CBLAS
#include "rosetta/backend/cblas.hpp"
#endif

namespace rosetta::backend {

/// The backends compiled into this translation unit, Naive first.
using Available = std::tuple<Naive
#ifdef ROSETTA_HAS_EIGEN
                             ,
                             Eigen
#endif
#ifdef ROSETTA_HAS_BLIS
                             ,
                             Blis
#endif
#ifdef ROSETTA_HAS_CBLAS
                             ,
                             Cblas
#endif
                             >;

/// Sets the thread count of every BLAS library compiled in (Eigen runs single-threaded
/// unless built with OpenMP; Naive is always single-threaded).
inline void set_blas_threads(int n) {
  if (n < 1) rosetta::detail::raise<ValueError>("set_blas_threads: n=", n, " (allowed: n >= 1)");
#ifdef ROSETTA_HAS_BLIS
  Blis::set_num_threads(n);
#endif
#ifdef ROSETTA_HAS_CBLAS
  Cblas::set_num_threads(n);
#endif
  (void)n;
}

}  // namespace rosetta::backend
