// hwy_dynamic: the Highway kernels of include/rosetta/atlas/hwy_kernels-inl.hpp compiled
// once per target (hwy/foreach_target.h re-includes that file for each) and exported
// through dispatch tables; each wrapper calls HWY_DYNAMIC_DISPATCH, which picks the best
// target for this CPU on the first call. This file is compiled for the baseline x86-64 ISA
// (no -march=native), so the choice really happens at run time.
#define ROSETTA_ATLAS_HWY_NS hwy_dynamic
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1  // also compile the AVX3_DL target (Ice Lake / Zen 4 and later)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "rosetta/atlas/hwy_kernels-inl.hpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <hwy/highway.h>
#include <hwy/targets.h>

#include "rosetta/atlas/hwy_kernels-inl.hpp"

#if HWY_ONCE
#include <cstdint>
#include <string>
#include <vector>

#include "rosetta/atlas/hwy_dynamic.hpp"
#include "rosetta/atlas/hwy_list.hpp"

namespace rosetta::atlas {
namespace hwy_dynamic {

#define ROSETTA_ATLAS_EXPORT(name) HWY_EXPORT(k_##name);
ROSETTA_ATLAS_HWY_KERNELS(ROSETTA_ATLAS_EXPORT)
#undef ROSETTA_ATLAS_EXPORT
HWY_EXPORT(k_target);

#define ROSETTA_ATLAS_WRAP(name)       \
  void name(Buffers& b) {              \
    HWY_DYNAMIC_DISPATCH(k_##name)(b); \
  }
ROSETTA_ATLAS_HWY_KERNELS(ROSETTA_ATLAS_WRAP)
#undef ROSETTA_ATLAS_WRAP

}  // namespace hwy_dynamic

void register_hwy_dynamic(Registry& r) {
#define ROSETTA_ATLAS_REGISTER(name) r.impl(#name, Backend::hwy_dynamic, &hwy_dynamic::name);
  ROSETTA_ATLAS_HWY_KERNELS(ROSETTA_ATLAS_REGISTER)
#undef ROSETTA_ATLAS_REGISTER
}

std::string hwy_dynamic_target() {
  Buffers unused;
  return hwy::TargetName(HWY_DYNAMIC_DISPATCH(hwy_dynamic::k_target)(unused));
}

std::string hwy_dynamic_compiled_targets() {
  std::string out;
  for (int i = 0; i <= 62; ++i) {  // best (lowest bit) first
    const std::int64_t bit = std::int64_t{1} << i;
    if ((HWY_TARGETS & bit) == 0) continue;
    if (!out.empty()) out += ' ';
    out += hwy::TargetName(bit);
  }
  return out;
}

std::vector<std::string> hwy_dynamic_runnable_targets() {
  std::vector<std::string> out;
  for (std::int64_t t : hwy::SupportedAndGeneratedTargets()) out.push_back(hwy::TargetName(t));
  return out;
}

bool hwy_dynamic_force_target(const std::string& target) {
  hwy::SetSupportedTargetsForTest(0);  // enumerate what the CPU itself supports
  if (!target.empty()) {
    std::int64_t bit = 0;
    for (std::int64_t t : hwy::SupportedAndGeneratedTargets())
      if (target == hwy::TargetName(t)) bit = t;
    if (bit == 0) return false;
    hwy::SetSupportedTargetsForTest(bit);
  }
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return true;
}

}  // namespace rosetta::atlas
#endif  // HWY_ONCE
