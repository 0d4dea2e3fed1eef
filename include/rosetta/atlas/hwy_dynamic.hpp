// The hwy_dynamic backend: the same Highway kernels compiled for every x86 target Highway
// knows (SSSE3 ... AVX3_DL, plus a scalar fallback) in one translation unit built for the
// baseline x86-64 ISA, with the best one for the running CPU chosen at the first call
// (HWY_DYNAMIC_DISPATCH). Implemented in benchmark/atlas/hwy_dynamic.cpp, the static library
// rosetta_atlas_hwy, which defines ROSETTA_ATLAS_HWY_DYNAMIC for its users.
#pragma once

#include <string>
#include <vector>

#include "rosetta/atlas/core.hpp"

namespace rosetta::atlas {

/// Registers every Highway kernel as Backend::hwy_dynamic.
void register_hwy_dynamic(Registry& r);
/// The target dynamic dispatch picks on this CPU, e.g. "AVX3_DL".
std::string hwy_dynamic_target();
/// The targets compiled into the library, best first, e.g. "AVX3_DL AVX3 AVX2 SSE4 SSSE3 SCALAR".
std::string hwy_dynamic_compiled_targets();
/// The compiled targets this CPU can run, best first.
std::vector<std::string> hwy_dynamic_runnable_targets();
/// Test hook: make dynamic dispatch use the target named `target` (one of the runnable ones;
/// process-wide, through Highway's SetSupportedTargetsForTest). An empty name restores the
/// normal choice. Returns false for a target that is not runnable.
bool hwy_dynamic_force_target(const std::string& target);

}  // namespace rosetta::atlas
