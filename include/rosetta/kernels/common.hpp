// Shared aliases for kernels. Kernels are free function templates on views:
//   <op>_forward(outputs..., inputs..., sizes...)
//   <op>_backward(input grads..., weight grads..., output grad, saved forward values...)
// Backward *accumulates* into weight-gradient buffers (zeroing them is the caller's step);
// input gradients are documented per kernel (most accumulate too, so residual branches add).
// Inputs use the non-deduced aliases below, so T and L are deduced from the outputs and a
// MatrixView<T, L> converts to the read-only input type implicitly.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>

#include "rosetta/core/policy.hpp"
#include "rosetta/core/view.hpp"

namespace rosetta::kernels {

template <class T, class L>
using CMat = std::type_identity_t<MatrixView<const T, L>>;
template <class T>
using CVec = std::type_identity_t<std::span<const T>>;

}  // namespace rosetta::kernels
