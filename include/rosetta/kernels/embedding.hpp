// Embedding lookup.
#pragma once

#include <cstdint>

#include "rosetta/kernels/common.hpp"

namespace rosetta::kernels {

/// out[t, :] = table[tokens[t], :]
/// out: [T, H], table: [V, H], tokens: [T] (ids already validated to be in [0, V)).
template <class T, class L>
void embedding_forward(MatrixView<T, L> out, CMat<T, L> table,
                       std::span<const std::int32_t> tokens) {
  for (std::size_t t = 0; t < out.rows(); ++t) {
    const auto id = static_cast<std::size_t>(tokens[t]);
    for (std::size_t j = 0; j < out.cols(); ++j) out(t, j) = table(id, j);
  }
}

/// dtable[tokens[t], :] += dout[t, :]   (differentiates out[t,:] = table[tokens[t],:])
template <class T, class L>
void embedding_backward(MatrixView<T, L> dtable, CMat<T, L> dout,
                        std::span<const std::int32_t> tokens) {
  for (std::size_t t = 0; t < dout.rows(); ++t) {
    const auto id = static_cast<std::size_t>(tokens[t]);
    for (std::size_t j = 0; j < dout.cols(); ++j) dtable(id, j) += dout(t, j);
  }
}

}  // namespace rosetta::kernels
