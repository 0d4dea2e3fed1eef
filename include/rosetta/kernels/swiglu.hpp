// SiLU and the SwiGLU gate of an expert:  a = silu(g) * u,  silu(g) = g * sigmoid(g)
#pragma once

#include <cmath>

#include "rosetta/kernels/common.hpp"
#include "rosetta/kernels/vec.hpp"

namespace rosetta::kernels {

template <class T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
template <class T>
inline T silu(T x) {
  return x * sigmoid(x);
}

/// a = silu(g) * u   elementwise; a, g, u: [N, F]
template <class T, class L>
void swiglu_forward(MatrixView<T, L> a, CMat<T, L> g, CMat<T, L> u) {
  if constexpr (std::is_same_v<L, RowMajor>) {  // contiguous rows: vectorisable sigmoid
    for (std::size_t i = 0; i < a.rows(); ++i) {
      T* __restrict ar = a.data() + i * a.row_stride();
      const T* __restrict gr = g.data() + i * g.row_stride();
      const T* __restrict ur = u.data() + i * u.row_stride();
      // g u / (1 + exp(-g)): one division per element (g sigmoid(g) u took a reciprocal and
      // two multiplies: 9.0 -> 7.7 us for 128 x 256 floats; within 2 ulp of it)
#ifdef ROSETTA_VEC16
      if constexpr (std::is_same_v<T, float>) {
        vec::swiglu16(ar, gr, ur, a.cols());
        continue;
      }
#endif
      for (std::size_t j = 0; j < a.cols(); ++j)
        ar[j] = gr[j] * ur[j] / (T(1) + vec::exp_any(-gr[j]));
    }
    return;
  }
  for (std::size_t i = 0; i < a.rows(); ++i)
    for (std::size_t j = 0; j < a.cols(); ++j) a(i, j) = silu(g(i, j)) * u(i, j);
}

/// Differentiates a = silu(g) * u (overwrites dg, du):
///   du = da * silu(g);   dg = da * u * sigmoid(g) * (1 + g * (1 - sigmoid(g)))
template <class T, class L>
void swiglu_backward(MatrixView<T, L> dg, MatrixView<T, L> du, CMat<T, L> da, CMat<T, L> g,
                     CMat<T, L> u) {
  if constexpr (std::is_same_v<L, RowMajor>) {  // contiguous rows: vectorisable sigmoid
    for (std::size_t i = 0; i < da.rows(); ++i) {
      T* __restrict dgr = dg.data() + i * dg.row_stride();
      T* __restrict dur = du.data() + i * du.row_stride();
      const T* __restrict dar = da.data() + i * da.row_stride();
      const T* __restrict gr = g.data() + i * g.row_stride();
      const T* __restrict ur = u.data() + i * u.row_stride();
#ifdef ROSETTA_VEC16
      if constexpr (std::is_same_v<T, float>) {
        vec::swiglu_backward16(dgr, dur, dar, gr, ur, da.cols());
        continue;
      }
#endif
      for (std::size_t j = 0; j < da.cols(); ++j) {
        const T x = gr[j], s = vec::sigmoid(x);
        dur[j] = dar[j] * x * s;
        dgr[j] = dar[j] * ur[j] * s * (T(1) + x * (T(1) - s));
      }
    }
    return;
  }
  for (std::size_t i = 0; i < da.rows(); ++i)
    for (std::size_t j = 0; j < da.cols(); ++j) {
      const T x = g(i, j), s = sigmoid(x);
      du(i, j) = da(i, j) * x * s;
      dg(i, j) = da(i, j) * u(i, j) * s * (T(1) + x * (T(1) - s));
    }
}

}  // namespace rosetta::kernels
