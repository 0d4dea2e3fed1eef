// The kernel atlas: 45 float32 kernels in 14 domains, each with a naive reference and, where
// it fits, Eigen, OpenBLAS, BLIS, Highway-static and Highway-dynamic implementations.
//
//   const auto& reg = rosetta::atlas::registry();
//   const Kernel* k = reg.find("softmax");
//   Buffers buf = k->make(65536, /*seed=*/42);
//   if (k->has(Backend::hwy_static)) k->run[index(Backend::hwy_static)](buf);
//
// Which backends exist depends on the build: Eigen (ROSETTA_HAS_EIGEN), OpenBLAS
// (ROSETTA_HAS_CBLAS), BLIS (ROSETTA_HAS_BLIS), Highway (ROSETTA_HAS_HWY, static dispatch,
// header-only) and the rosetta_atlas_hwy library (ROSETTA_ATLAS_HWY_DYNAMIC, dynamic
// dispatch). rosetta-atlas (benchmark/rosetta_atlas.cpp) measures every (kernel, backend,
// size); test/test_atlas.cpp checks every backend against naive.
#pragma once

#include <vector>

#include "rosetta/atlas/blas.hpp"
#include "rosetta/atlas/core.hpp"
#include "rosetta/atlas/kernels.hpp"
#include "rosetta/atlas/naive.hpp"
#ifdef ROSETTA_HAS_EIGEN
#include "rosetta/atlas/eigen.hpp"
#endif
#ifdef ROSETTA_HAS_HWY
#include "rosetta/atlas/hwy_static.hpp"
#endif
#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
#include "rosetta/atlas/hwy_dynamic.hpp"
#endif

namespace rosetta::atlas {

/// Backends compiled into this build, naive first.
inline std::vector<Backend> available_backends() {
  std::vector<Backend> out{Backend::naive};
#ifdef ROSETTA_HAS_EIGEN
  out.push_back(Backend::eigen);
#endif
#ifdef ROSETTA_HAS_CBLAS
  out.push_back(Backend::openblas);
#endif
#ifdef ROSETTA_HAS_BLIS
  out.push_back(Backend::blis);
#endif
#ifdef ROSETTA_HAS_HWY
  out.push_back(Backend::hwy_static);
#endif
#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
  out.push_back(Backend::hwy_dynamic);
#endif
  return out;
}

/// Every kernel with every implementation this build has (built once, thread-safely).
inline const Registry& registry() {
  static const Registry reg = [] {
    Registry r;
    register_kernels(r);
#ifdef ROSETTA_HAS_EIGEN
    register_eigen(r);
#endif
#ifdef ROSETTA_HAS_CBLAS
    register_openblas(r);
#endif
#ifdef ROSETTA_HAS_BLIS
    register_blis(r);
#endif
#ifdef ROSETTA_HAS_HWY
    register_hwy_static(r);
#endif
#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
    register_hwy_dynamic(r);
#endif
    return r;
  }();
  return reg;
}

}  // namespace rosetta::atlas
