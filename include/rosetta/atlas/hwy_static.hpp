// The hwy_static backend: the Highway kernels compiled for the static target only, i.e. for
// the -march of the translation unit that includes this header (AVX3_DL with -march=native
// on this machine's AVX-512 CPU). Needs Highway (link rosetta::hwy, ROSETTA_HAS_HWY).
#pragma once

// Highway 1.0.3 (Debian 12) fails to configure itself ("best baseline should be included in
// dynamic targets") when -march enables AVX3_DL unless this is defined (rosetta::hwy sets it
// too).
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1
#endif

#include <hwy/targets.h>
#include <string>

#include "rosetta/atlas/core.hpp"
#include "rosetta/atlas/hwy_kernels-inl.hpp"
#include "rosetta/atlas/hwy_list.hpp"

namespace rosetta::atlas {

/// Highway's name of the static target, e.g. "AVX3_DL".
inline std::string hwy_static_target() {
  return hwy::TargetName(HWY_STATIC_TARGET);
}

inline void register_hwy_static(Registry& r) {
#define ROSETTA_ATLAS_HWY_STATIC(name) \
  r.impl(#name, Backend::hwy_static, &hwy_static::HWY_NAMESPACE::k_##name);
  ROSETTA_ATLAS_HWY_KERNELS(ROSETTA_ATLAS_HWY_STATIC)
#undef ROSETTA_ATLAS_HWY_STATIC
}

}  // namespace rosetta::atlas
