// RMSNorm:  y = x / sqrt(mean(x^2) + eps) * g
#pragma once

#include <cmath>

#include "rosetta/kernels/common.hpp"
#include "rosetta/kernels/vec.hpp"

namespace rosetta::kernels {

/// Per row t:  r_t = 1 / sqrt(mean_j x[t,j]^2 + eps);  y[t,j] = x[t,j] * r_t * g[j]
/// y, x: [T, H]; g: [H]; rstd: [T] (saved r_t for backward).
template <class T, class L>
void rmsnorm_forward(MatrixView<T, L> y, std::span<T> rstd, CMat<T, L> x, CVec<T> g, T eps) {
  const std::size_t H = x.cols();
  if constexpr (std::is_same_v<L, RowMajor>) {
    // Contiguous rows, three vectorisable passes (same arithmetic per element as below):
    // the sums of squares, then 1/sqrt for all rows at once (the sqrt/divide latency is
    // paid once per SIMD register of rows, not once per row), then the scaling.
    const std::size_t R = x.rows();
    std::size_t t0 = 0;
#ifdef ROSETTA_VEC16
    if constexpr (std::is_same_v<T, float>)  // four rows at a time: the same sums
      for (; t0 + 4 <= R; t0 += 4)
        vec::sum_squares_rows<4>(x.data() + t0 * x.row_stride(), x.row_stride(), H,
                                 rstd.data() + t0);
#endif
    for (std::size_t t = t0; t < R; ++t)
      rstd[t] = vec::sum_squares(x.data() + t * x.row_stride(), H);
    for (std::size_t t = 0; t < R; ++t) rstd[t] = T(1) / std::sqrt(rstd[t] / T(H) + eps);
#ifdef ROSETTA_VEC16
    if constexpr (std::is_same_v<T, float>) {  // g in registers (the presets' 64 and 256)
      auto regs = [&]<std::size_t V>() {
        vec::scale_rows16<V>(x.data(), x.row_stride(), y.data(), y.row_stride(), g.data(),
                             rstd.data(), R);
      };
      if (H == 64) return regs.template operator()<4>();
      if (H == 256) return regs.template operator()<16>();
    }
#endif
    for (std::size_t t = 0; t < R; ++t) {
      const T* __restrict xr = x.data() + t * x.row_stride();
      T* __restrict yr = y.data() + t * y.row_stride();
      const T r = rstd[t];
      for (std::size_t j = 0; j < H; ++j) yr[j] = xr[j] * r * g[j];
    }
    return;
  }
  for (std::size_t t = 0; t < x.rows(); ++t) {
    T ss = 0;
    for (std::size_t j = 0; j < H; ++j) ss += x(t, j) * x(t, j);
    const T r = T(1) / std::sqrt(ss / T(H) + eps);
    rstd[t] = r;
    for (std::size_t j = 0; j < H; ++j) y(t, j) = x(t, j) * r * g[j];
  }
}

/// Differentiates y[t,j] = x[t,j] * r_t * g[j] with r_t = (mean x^2 + eps)^(-1/2):
///   dg[j]   += sum_t dy[t,j] * x[t,j] * r_t
///   dx[t,j] += r_t * g[j] * dy[t,j] - x[t,j] * r_t^3 / H * sum_i dy[t,i] * g[i] * x[t,i]
template <class T, class L>
void rmsnorm_backward(MatrixView<T, L> dx, std::span<T> dg, CMat<T, L> dy, CMat<T, L> x, CVec<T> g,
                      CVec<T> rstd) {
  const std::size_t H = x.cols();
  for (std::size_t t = 0; t < x.rows(); ++t) {
    const T r = rstd[t];
    T dot = 0;
    for (std::size_t j = 0; j < H; ++j) {
      dot += dy(t, j) * g[j] * x(t, j);
      dg[j] += dy(t, j) * x(t, j) * r;
    }
    const T c = dot * r * r * r / T(H);
    for (std::size_t j = 0; j < H; ++j) dx(t, j) += r * g[j] * dy(t, j) - x(t, j) * c;
  }
}

}  // namespace rosetta::kernels
