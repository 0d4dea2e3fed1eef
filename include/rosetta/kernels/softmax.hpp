// Row softmax, max-subtracted.
#pragma once

#include <cmath>

#include "rosetta/kernels/common.hpp"
#include "rosetta/kernels/vec.hpp"

namespace rosetta::kernels {

/// In place on the first n entries of row i of y (entries n.. are set to 0):
///   y[i,j] = exp(y[i,j] - max) / sum_j' exp(y[i,j'] - max)
template <class T, class L>
void softmax_row_prefix(MatrixView<T, L> y, std::size_t i, std::size_t n) {
  if constexpr (std::is_same_v<L, RowMajor>) {  // contiguous row: the vectorised helpers
    T* row = y.data() + i * y.row_stride();
#ifdef ROSETTA_VEC16
    if constexpr (std::is_same_v<T, float>) {  // explicit vectors: same values, no scalar tails
      vec::softmax_prefix16(row, n, y.cols());
      return;
    }
#endif
    const T m = vec::max(row, n);
    const T inv = T(1) / vec::exp_sub_sum(row, n, m);
    for (std::size_t j = 0; j < n; ++j) row[j] *= inv;
    for (std::size_t j = n; j < y.cols(); ++j) row[j] = T(0);
    return;
  }
  T m = y(i, 0);
  for (std::size_t j = 1; j < n; ++j) m = std::max(m, y(i, j));
  T sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const T e = std::exp(y(i, j) - m);
    y(i, j) = e;
    sum += e;
  }
  const T inv = T(1) / sum;
  for (std::size_t j = 0; j < n; ++j) y(i, j) *= inv;
  for (std::size_t j = n; j < y.cols(); ++j) y(i, j) = T(0);
}

/// Rows per call of vec::softmax_prefix16_rows (their steps interleaved).
inline constexpr std::size_t kSoftmaxRows = 4;

/// softmax_row_prefix on every row of y, row i over its first n0 + (i / per) * grow entries
/// (n0 >= 1, per >= 1): grow = 1 for a causal attention's scores (per: rows per query, the
/// heads of attention_forward's heads_as_rows), 0 for whole rows. Float rows kSoftmaxRows at a
/// time (vec::softmax_prefix16_rows: the same values).
template <class T, class L>
void softmax_rows_prefix(MatrixView<T, L> y, std::size_t n0, std::size_t grow,
                         std::size_t per = 1) {
  std::size_t i = 0;
#ifdef ROSETTA_VEC16
  if constexpr (std::is_same_v<T, float> && std::is_same_v<L, RowMajor>)
    for (; i + kSoftmaxRows <= y.rows(); i += kSoftmaxRows) {
      std::size_t n[kSoftmaxRows];
      for (std::size_t r = 0; r < kSoftmaxRows; ++r) n[r] = n0 + (i + r) / per * grow;
      vec::softmax_prefix16_rows<kSoftmaxRows>(y.data() + i * y.row_stride(), y.row_stride(), n,
                                               y.cols());
    }
#endif
  for (; i < y.rows(); ++i) softmax_row_prefix(y, i, n0 + i / per * grow);
}

/// y = softmax(x) over each row.   x, y: [R, C] (y may alias x).
template <class T, class L>
void softmax_forward(MatrixView<T, L> y, CMat<T, L> x) {
  if (y.data() != x.data())
    for (std::size_t i = 0; i < x.rows(); ++i)
      for (std::size_t j = 0; j < x.cols(); ++j) y(i, j) = x(i, j);
  softmax_rows_prefix(y.rows(0, x.rows()), x.cols(), 0);
}

/// Differentiates y = softmax(x):  dx[i,j] = y[i,j] * (dy[i,j] - sum_j' dy[i,j'] y[i,j'])
/// (overwrites dx; dx may alias dy).
template <class T, class L>
void softmax_backward(MatrixView<T, L> dx, CMat<T, L> dy, CMat<T, L> y) {
  for (std::size_t i = 0; i < y.rows(); ++i) {
    T dot = 0;
    for (std::size_t j = 0; j < y.cols(); ++j) dot += dy(i, j) * y(i, j);
    for (std::size_t j = 0; j < y.cols(); ++j) dx(i, j) = y(i, j) * (dy(i, j) - dot);
  }
}

}  // namespace rosetta::kernels
