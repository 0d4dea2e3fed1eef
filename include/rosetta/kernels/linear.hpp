// Linear layer without bias, weights stored [out, in] (PyTorch / checkpoint convention).
#pragma once

#include "rosetta/backend/common.hpp"
#include "rosetta/kernels/common.hpp"

namespace rosetta::kernels {

/// y = x W^T      x: [T, in], W: [out, in], y: [T, out]   (overwrites y)
template <class B, class T, class L>
void linear_forward(MatrixView<T, L> y, CMat<T, L> x, CMat<T, L> W) {
  B::gemm(Op::N, Op::T, T(1), x, W, T(0), y);
}

/// Differentiates y = x W^T:
///   dW += dy^T x   ([out, T] [T, in]) — dW = dy^T x when dW_beta == 0
///   dx  = dy W     ([T, out] [out, in]) — accumulated when dx_beta == 1, overwritten when 0.
/// dW_ssq: when not null, set to sum dW^2 (with dW_beta == 0 by the product that writes dW,
/// backend::gemm_sumsq; else by a pass over dW).
template <class B, class T, class L>
void linear_backward(MatrixView<T, L> dx, MatrixView<T, L> dW, CMat<T, L> dy, CMat<T, L> x,
                     CMat<T, L> W, T dx_beta = T(1), T dW_beta = T(1), double* dW_ssq = nullptr) {
  if (dW_ssq != nullptr && dW_beta == T(0)) {
    *dW_ssq = backend::gemm_sumsq<B>(Op::T, Op::N, T(1), dy, x, dW);
  } else {
    B::gemm(Op::T, Op::N, T(1), dy, x, dW_beta, dW);
    if (dW_ssq != nullptr) *dW_ssq = sum_squares(CMat<T, L>(dW));
  }
  B::gemm(Op::N, Op::N, T(1), dy, W, dx_beta, dx);
}

}  // namespace rosetta::kernels
