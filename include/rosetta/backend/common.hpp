// What every gemm backend shares: the shape check and the edge cases (empty operands).
//
// gemm(opA, opB, alpha, A, B, beta, C):  C <- alpha * op(A) * op(B) + beta * C
//   op(A): m x k, op(B): k x n, C: m x n, all in the same layout.
//   beta == 0: C is write-only (NaN or garbage already in C never reaches the result).
//   m == 0 or n == 0: nothing to do.  k == 0: C <- beta * C (zeros when beta == 0).
#pragma once

#include <cstddef>
#include <type_traits>

#include "rosetta/core/errors.hpp"
#include "rosetta/core/policy.hpp"
#include "rosetta/core/sum_squares.hpp"
#include "rosetta/core/view.hpp"

namespace rosetta::backend::detail {

struct GemmDims {
  std::size_t m, n, k;
};

template <class V>
std::size_t op_rows(Op op, const V& x) {
  return op == Op::N ? x.rows() : x.cols();
}
template <class V>
std::size_t op_cols(Op op, const V& x) {
  return op == Op::N ? x.cols() : x.rows();
}

/// Validates the operand shapes and returns (m, n, k); throws ShapeError naming the operand.
template <class TA, class TB, class TC, class L>
GemmDims check_gemm(const char* who, Op opA, Op opB, const MatrixView<TA, L>& A,
                    const MatrixView<TB, L>& B, const MatrixView<TC, L>& C) {
  const std::size_t m = op_rows(opA, A), k = op_cols(opA, A);
  const std::size_t kb = op_rows(opB, B), n = op_cols(opB, B);
  auto name = [](Op o) { return o == Op::N ? "" : "^T"; };
  if (kb != k)
    rosetta::detail::raise<ShapeError>(who, ": inner dimensions differ: op(A)=A", name(opA), " is ",
                                       m, "x", k, " but op(B)=B", name(opB), " is ", kb, "x", n,
                                       " (need op(B) rows == ", k, ")");
  if (C.rows() != m || C.cols() != n)
    rosetta::detail::raise<ShapeError>(who, ": C is ", C.rows(), "x", C.cols(),
                                       " but op(A)*op(B) is ", m, "x", n);
  return {m, n, k};
}

/// C <- beta * C, with beta == 0 writing exact zeros.
template <class T, class L>
void scale(MatrixView<T, L> C, T beta) {
  for (std::size_t i = 0; i < C.rows(); ++i)
    for (std::size_t j = 0; j < C.cols(); ++j) C(i, j) = beta == T(0) ? T(0) : beta * C(i, j);
}

/// Handles the empty cases; returns true when the caller has nothing left to do.
template <class T, class L>
bool gemm_trivial(const GemmDims& d, T beta, MatrixView<T, L> C) {
  if (d.m == 0 || d.n == 0) return true;
  if (d.k == 0) {
    scale(C, beta);
    return true;
  }
  return false;
}

}  // namespace rosetta::backend::detail

namespace rosetta::backend {
/// Non-deduced scalar argument: lets gemm(…, 1.0, …) work for float views.
template <class T>
using scalar_arg = std::type_identity_t<std::remove_const_t<T>>;

/// A gemm as a function pointer, for one scalar and layout: C <- alpha op(A) op(B) + beta C
/// (the entries of dispatch/virtual.hpp's GemmTable and of backend::Auto's routes).
template <class T, class L>
using GemmFn = void (*)(Op opA, Op opB, T alpha, MatrixView<const T, L> A, MatrixView<const T, L> B,
                        T beta, MatrixView<T, L> C);

/// gemm_sumsq as a function pointer (dispatch/virtual.hpp's GemmTable).
template <class T, class L>
using GemmSumSqFn = double (*)(Op opA, Op opB, T alpha, MatrixView<const T, L> A,
                               MatrixView<const T, L> B, MatrixView<T, L> C);

/// C <- alpha op(A) op(B), C written and not read (beta = 0), and returns the sum of the
/// squares of C's elements as written: in a model, a weight gradient and its share of the
/// squared gradient norm, without a second pass over the gradient. A backend with a static
/// gemm_sumsq of this signature sums itself (HwyGemm: in its kernels' epilogue, from the
/// registers it stores C from); any other runs its gemm, then sum_squares(C) — in cache for a
/// C that fits, a read of all of C from memory otherwise.
template <class B, class TA, class TB, class T, Layout L>
double gemm_sumsq(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> Bm,
                  MatrixView<T, L> C) {
  if constexpr (requires { B::gemm_sumsq(opA, opB, alpha, A, Bm, C); }) {
    return B::gemm_sumsq(opA, opB, alpha, A, Bm, C);
  } else {
    B::gemm(opA, opB, alpha, A, Bm, T(0), C);
    return sum_squares(MatrixView<const T, L>(C));
  }
}
}  // namespace rosetta::backend
