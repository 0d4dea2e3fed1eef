// Mean cross-entropy over rows, with the max-subtracted log-sum-exp:
//   loss = 1/T sum_t (lse_t - logits[t, y_t]),  lse_t = m_t + log sum_j exp(logits[t,j] - m_t)
#pragma once

#include <cmath>
#include <cstdint>

#include "rosetta/kernels/common.hpp"
#include "rosetta/kernels/vec.hpp"

namespace rosetta::kernels {

/// Returns the mean loss; saves lse [T] for the backward. logits: [T, V], targets: [T].
template <class T, class L>
T cross_entropy_forward(std::span<T> lse, MatrixView<const T, L> logits,
                        std::span<const std::int32_t> targets) {
  T total = 0;
  if constexpr (std::is_same_v<L, RowMajor>) {  // contiguous rows: the vectorised helpers
    const std::size_t V = logits.cols();
    for (std::size_t t = 0; t < logits.rows(); ++t) {
      const T* row = logits.data() + t * logits.row_stride();
      const T m = vec::max(row, V);
#ifdef ROSETTA_VEC16
      if constexpr (std::is_same_v<T, float>)
        lse[t] = m + std::log(vec::exp_sum16(row, V, m));  // the same value, explicit vectors
      else
#endif
        lse[t] = m + std::log(vec::exp_sum(row, V, m));
      total += lse[t] - row[static_cast<std::size_t>(targets[t])];
    }
    return total / static_cast<T>(logits.rows());
  }
  for (std::size_t t = 0; t < logits.rows(); ++t) {
    T m = logits(t, 0);
    for (std::size_t j = 1; j < logits.cols(); ++j) m = std::max(m, logits(t, j));
    T s = 0;
    for (std::size_t j = 0; j < logits.cols(); ++j) s += std::exp(logits(t, j) - m);
    lse[t] = m + std::log(s);
    total += lse[t] - logits(t, static_cast<std::size_t>(targets[t]));
  }
  return total / static_cast<T>(logits.rows());
}

/// Fused softmax + cross-entropy backward (overwrites dlogits; may alias logits):
///   dlogits[t, j] = scale * (exp(logits[t, j] - lse_t) - [j == y_t]),  scale = dL/dloss / T
template <class T, class L>
void cross_entropy_backward(MatrixView<T, L> dlogits, CMat<T, L> logits, std::span<const T> lse,
                            std::span<const std::int32_t> targets, T dloss = T(1)) {
  const T scale = dloss / static_cast<T>(logits.rows());
  for (std::size_t t = 0; t < logits.rows(); ++t) {
    if constexpr (std::is_same_v<L, RowMajor>) {  // contiguous rows (d may alias x)
      const T* x = logits.data() + t * logits.row_stride();
      T* d = dlogits.data() + t * dlogits.row_stride();
#ifdef ROSETTA_VEC16
      if constexpr (std::is_same_v<T, float>)
        vec::exp_scale16(d, x, logits.cols(), lse[t], scale);
      else
#endif
        for (std::size_t j = 0; j < logits.cols(); ++j) d[j] = scale * vec::exp_any(x[j] - lse[t]);
    } else {
      for (std::size_t j = 0; j < logits.cols(); ++j)
        dlogits(t, j) = scale * std::exp(logits(t, j) - lse[t]);
    }
    dlogits(t, static_cast<std::size_t>(targets[t])) -= scale;
  }
}

}  // namespace rosetta::kernels
