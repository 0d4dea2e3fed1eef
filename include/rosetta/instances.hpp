// Explicit instantiation of the model for the common policies (every scalar x layout of
// every backend compiled in). With ROSETTA_EXTERN_INSTANCES defined, translation units
// that include rosetta.hpp do not instantiate Transformer / Trainer themselves: a few
// translation units that define ROSETTA_INSTANTIATE_BACKEND_<NAME> do it once (see
// examples/instances/). This keeps build times of many programs and tests in check.
// The virtual twin (VirtualTransformer / VirtualTrainer, every scalar x layout) is
// instantiated once likewise, by the translation unit defining ROSETTA_INSTANTIATE_VIRTUAL.
#pragma once

#include "rosetta/backend/all.hpp"
#include "rosetta/dispatch/virtual.hpp"
#include "rosetta/model/transformer.hpp"
#include "rosetta/train/trainer.hpp"

// ROSETTA_INSTANCES_FOR(prefix, Backend): "extern template" or "template" for 4 policies.
#define ROSETTA_INSTANCES_FOR(prefix, B)                                            \
  prefix class rosetta::Transformer<rosetta::Policy<float, rosetta::RowMajor, B>>;  \
  prefix class rosetta::Transformer<rosetta::Policy<float, rosetta::ColMajor, B>>;  \
  prefix class rosetta::Transformer<rosetta::Policy<double, rosetta::RowMajor, B>>; \
  prefix class rosetta::Transformer<rosetta::Policy<double, rosetta::ColMajor, B>>; \
  prefix class rosetta::Trainer<rosetta::Policy<float, rosetta::RowMajor, B>>;      \
  prefix class rosetta::Trainer<rosetta::Policy<float, rosetta::ColMajor, B>>;      \
  prefix class rosetta::Trainer<rosetta::Policy<double, rosetta::RowMajor, B>>;     \
  prefix class rosetta::Trainer<rosetta::Policy<double, rosetta::ColMajor, B>>;

// ROSETTA_VIRTUAL_INSTANCES(prefix): the same for the 4 virtual models and their trainers
// (VirtualTrainer<T, L> is an alias, so the trainers are spelled out).
#define ROSETTA_VIRTUAL_PAIR(prefix, T, L)                                        \
  prefix class rosetta::VirtualTransformer<T, L>;                                 \
  prefix class rosetta::Trainer<rosetta::Policy<T, L, rosetta::backend::Dynamic>, \
                                rosetta::VirtualTransformer<T, L>>;
#define ROSETTA_VIRTUAL_INSTANCES(prefix)                 \
  ROSETTA_VIRTUAL_PAIR(prefix, float, rosetta::RowMajor)  \
  ROSETTA_VIRTUAL_PAIR(prefix, float, rosetta::ColMajor)  \
  ROSETTA_VIRTUAL_PAIR(prefix, double, rosetta::RowMajor) \
  ROSETTA_VIRTUAL_PAIR(prefix, double, rosetta::ColMajor)

#ifdef ROSETTA_EXTERN_INSTANCES
#ifndef ROSETTA_INSTANTIATE_VIRTUAL
ROSETTA_VIRTUAL_INSTANCES(extern template)
#endif
#ifndef ROSETTA_INSTANTIATE_BACKEND_NAIVE
ROSETTA_INSTANCES_FOR(extern template, rosetta::backend::Naive)
#endif
#if defined(ROSETTA_HAS_EIGEN) && !defined(ROSETTA_INSTANTIATE_BACKEND_EIGEN)
ROSETTA_INSTANCES_FOR(extern template, rosetta::backend::Eigen)
#endif
#if defined(ROSETTA_HAS_BLIS) && !defined(ROSETTA_INSTANTIATE_BACKEND_BLIS)
ROSETTA_INSTANCES_FOR(extern template, rosetta::backend::Blis)
#endif
#if defined(ROSETTA_HAS_CBLAS) && !defined(ROSETTA_INSTANTIATE_BACKEND_CBLAS)
ROSETTA_INSTANCES_FOR(extern template, rosetta::backend::Cblas)
#endif
#endif
