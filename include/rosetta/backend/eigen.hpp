// Eigen backend: Eigen::Map over our views with the matching storage order and the view's
// leading dimension as outer stride, so no data is copied. Needs ROSETTA_HAS_EIGEN
// (link rosetta::eigen).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>

#include "rosetta/backend/common.hpp"
#include "rosetta/backend/naive.hpp"

namespace rosetta::backend {

struct Eigen {
  static constexpr const char* name = "eigen";

  template <class T, Layout L>
  using Mat = ::Eigen::Matrix<std::remove_const_t<T>, ::Eigen::Dynamic, ::Eigen::Dynamic,
                              L::is_row_major ? ::Eigen::RowMajor : ::Eigen::ColMajor>;

  /// Eigen::Map of a view (const-ness follows T).
  template <class T, Layout L>
  static auto map(const MatrixView<T, L>& v) {
    using M = std::conditional_t<std::is_const_v<T>, const Mat<T, L>, Mat<T, L>>;
    return ::Eigen::Map<M, ::Eigen::Unaligned, ::Eigen::OuterStride<>>(
        v.data(), static_cast<::Eigen::Index>(v.rows()), static_cast<::Eigen::Index>(v.cols()),
        ::Eigen::OuterStride<>(static_cast<::Eigen::Index>(v.ld())));
  }

  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("Eigen::gemm", opA, opB, A, B, C);
    if (detail::gemm_trivial(d, beta, C)) return;
    // Matrix-vector shapes (one row or one column, e.g. decoding one token) would go through
    // Eigen's GEMV, which heap-allocates a copy of the vector operand on every call; they
    // are plain dot products, done by the reference loops.
    if (d.m == 1 || d.n == 1) {
      Naive::gemm(opA, opB, alpha, A, B, beta, C);
      return;
    }
    // Eigen's gemm packs blocks of op(A) and op(B) into buffers that live on the stack up to
    // EIGEN_STACK_ALLOCATION_LIMIT (128 KB) and on the heap above it. Tiling the product so
    // that each block stays under the limit keeps steady-state calls allocation-free.
    constexpr std::size_t kBudget = (64 * 1024) / sizeof(T);  // elements per packed block
    const std::size_t kb = std::min<std::size_t>(d.k, 256);
    const std::size_t tile = std::max<std::size_t>(16, kBudget / kb);
    for (std::size_t p0 = 0; p0 < d.k; p0 += kb) {
      const std::size_t kp = std::min(kb, d.k - p0);
      const T b0 = p0 == 0 ? T(beta) : T(1);  // later k-slices accumulate
      for (std::size_t i0 = 0; i0 < d.m; i0 += tile)
        for (std::size_t j0 = 0; j0 < d.n; j0 += tile) {
          const std::size_t mi = std::min(tile, d.m - i0), nj = std::min(tile, d.n - j0);
          auto a = opA == Op::N ? A.block(i0, p0, mi, kp) : A.block(p0, i0, kp, mi);
          auto b = opB == Op::N ? B.block(p0, j0, kp, nj) : B.block(j0, p0, nj, kp);
          product(opA, opB, T(alpha), a, b, b0, C.block(i0, j0, mi, nj));
        }
    }
  }

 private:
  /// One product through Eigen: C <- alpha op(A) op(B) + beta C (beta == 0: C write-only).
  template <class TA, class TB, class T, Layout L>
  static void product(Op opA, Op opB, T alpha, MatrixView<TA, L> A, MatrixView<TB, L> B, T beta,
                      MatrixView<T, L> C) {
    auto a = map(A);
    auto b = map(B);
    auto c = map(C);
    auto run = [&](const auto& x, const auto& y) {
      if (beta == T(0)) {
        c.noalias() = alpha * (x * y);
      } else {
        if (beta != T(1)) c *= beta;
        c.noalias() += alpha * (x * y);
      }
    };
    if (opA == Op::N && opB == Op::N)
      run(a, b);
    else if (opA == Op::N)
      run(a, b.transpose());
    else if (opB == Op::N)
      run(a.transpose(), b);
    else
      run(a.transpose(), b.transpose());
  }
};

}  // namespace rosetta::backend
