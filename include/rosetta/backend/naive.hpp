// The reference backend: plain loops, no library. Every other backend is tested against it.
#pragma once

#include <type_traits>

#include "rosetta/backend/common.hpp"

namespace rosetta::backend {

struct Naive {
  static constexpr const char* name = "naive";

  /// C <- alpha * op(A) * op(B) + beta * C  (see backend/common.hpp for the edge cases).
  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("Naive::gemm", opA, opB, A, B, C);
    if (detail::gemm_trivial(d, beta, C)) return;
    auto a = [&](std::size_t i, std::size_t p) { return opA == Op::N ? A(i, p) : A(p, i); };
    auto b = [&](std::size_t p, std::size_t j) { return opB == Op::N ? B(p, j) : B(j, p); };
    for (std::size_t i = 0; i < d.m; ++i)
      for (std::size_t j = 0; j < d.n; ++j) {
        T acc = 0;
        for (std::size_t p = 0; p < d.k; ++p) acc += a(i, p) * b(p, j);
        C(i, j) = beta == T(0) ? alpha * acc : alpha * acc + beta * C(i, j);
      }
  }
};

}  // namespace rosetta::backend
