// rosetta: a small Mixture-of-Experts Transformer as C++20 templates.
// The one header users include. Optional backends appear when their ROSETTA_HAS_* macro is
// defined (the rosetta::eigen / rosetta::blis / rosetta::cblas CMake targets set them).
#pragma once

#include "rosetta/backend/all.hpp"
#include "rosetta/core/aligned.hpp"
#include "rosetta/core/concepts.hpp"
#include "rosetta/core/config.hpp"
#include "rosetta/core/errors.hpp"
#include "rosetta/core/layout.hpp"
#include "rosetta/core/policy.hpp"
#include "rosetta/core/rng.hpp"
#include "rosetta/core/tensor.hpp"
#include "rosetta/core/view.hpp"
#include "rosetta/dispatch/virtual.hpp"
#include "rosetta/generate/generate.hpp"
#include "rosetta/generate/sampling.hpp"
#include "rosetta/instances.hpp"
#include "rosetta/model/config.hpp"
#include "rosetta/model/params.hpp"
#include "rosetta/model/transformer.hpp"
#include "rosetta/model/workspace.hpp"
#include "rosetta/train/optim.hpp"
#include "rosetta/train/trainer.hpp"
