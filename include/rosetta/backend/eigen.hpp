// Eigen backend: Eigen::Map over our views with the matching storage order and the view's
// leading dimension as outer stride, so no data is copied. Needs ROSETTA_HAS_EIGEN
// (link rosetta::eigen).
#pragma once

#include <Eigen/Core>
#include <type_traits>

#include "rosetta/backend/common.hpp"

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
    auto a = map(A);
    auto b = map(B);
    auto c = map(C);
    // beta == 0: assign (C write-only); otherwise scale then accumulate.
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
