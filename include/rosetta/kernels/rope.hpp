// Rotary position embedding on interleaved pairs (2i, 2i+1) of every head.
#pragma once

#include <cmath>
#include <vector>

#include "rosetta/kernels/common.hpp"

namespace rosetta::kernels {

/// The effective base with NTK scaling: base' = base * alpha^(hd / (hd - 2)) if alpha > 1.
inline double rope_effective_base(double base, double alpha, std::size_t head_dim) {
  if (alpha > 1.0)
    return base *
           std::pow(alpha, static_cast<double>(head_dim) / static_cast<double>(head_dim - 2));
  return base;
}

/// Fills cos/sin tables [max_seq, head_dim/2] (row-major):
///   theta(pos, i) = pos * base'^(-2i / head_dim), computed in double.
template <class T>
void rope_tables(std::span<T> cos_t, std::span<T> sin_t, std::size_t max_seq, std::size_t head_dim,
                 double base, double alpha) {
  const std::size_t half = head_dim / 2;
  const double b = rope_effective_base(base, alpha, head_dim);
  for (std::size_t i = 0; i < half; ++i) {
    const double inv_freq =
        std::pow(b, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    for (std::size_t p = 0; p < max_seq; ++p) {
      const double th = static_cast<double>(p) * inv_freq;
      cos_t[p * half + i] = static_cast<T>(std::cos(th));
      sin_t[p * half + i] = static_cast<T>(std::sin(th));
    }
  }
}

/// In place, for each token row t (position pos0 + t % seq) and each head h:
///   (x0, x1) <- (x0 cos - x1 sin, x0 sin + x1 cos)   with x0 = x[t, h*hd + 2i], x1 = ...+1
/// x: [T, n_heads*head_dim]. sign = -1 applies the inverse rotation (that is the backward:
/// the rotation is orthogonal, so dx = R^T dy).
template <class T, class L>
void rope_apply(MatrixView<T, L> x, std::size_t head_dim, std::size_t seq, std::size_t pos0,
                CVec<T> cos_t, CVec<T> sin_t, T sign = T(1)) {
  const std::size_t half = head_dim / 2;
  const std::size_t n_heads = x.cols() / head_dim;
  for (std::size_t t = 0; t < x.rows(); ++t) {
    const std::size_t pos = pos0 + t % seq;
    const T* c = cos_t.data() + pos * half;
    const T* s = sin_t.data() + pos * half;
    for (std::size_t h = 0; h < n_heads; ++h)
      for (std::size_t i = 0; i < half; ++i) {
        const std::size_t j = h * head_dim + 2 * i;
        const T x0 = x(t, j), x1 = x(t, j + 1), sn = sign * s[i];
        x(t, j) = x0 * c[i] - x1 * sn;
        x(t, j + 1) = x0 * sn + x1 * c[i];
      }
  }
}

/// Forward: rotate by +theta.
template <class T, class L>
void rope_forward(MatrixView<T, L> x, std::size_t head_dim, std::size_t seq, std::size_t pos0,
                  CVec<T> cos_t, CVec<T> sin_t) {
  rope_apply(x, head_dim, seq, pos0, cos_t, sin_t, T(1));
}

/// Backward (in place on the gradient): rotate by -theta.
template <class T, class L>
void rope_backward(MatrixView<T, L> dx, std::size_t head_dim, std::size_t seq, std::size_t pos0,
                   CVec<T> cos_t, CVec<T> sin_t) {
  rope_apply(dx, head_dim, seq, pos0, cos_t, sin_t, T(-1));
}

}  // namespace rosetta::kernels
