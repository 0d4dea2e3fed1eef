// Linear layer without bias, weights stored [out, in] (PyTorch / checkpoint convention).
#pragma once

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
template <class B, class T, class L>
void linear_backward(MatrixView<T, L> dx, MatrixView<T, L> dW, CMat<T, L> dy, CMat<T, L> x,
                     CMat<T, L> W, T dx_beta = T(1), T dW_beta = T(1)) {
  B::gemm(Op::T, Op::N, T(1), dy, x, dW_beta, dW);
  B::gemm(Op::N, Op::N, T(1), dy, W, dx_beta, dx);
}

}  // namespace rosetta::kernels
