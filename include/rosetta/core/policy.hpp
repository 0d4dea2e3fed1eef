// Policy<T, L, B>: the one template parameter every layer takes. It bundles the scalar type,
// the memory layout and the BLAS backend, each checked by its concept.
#pragma once

#include <concepts>
#include <string>
#include <string_view>

#include "rosetta/core/concepts.hpp"
#include "rosetta/core/layout.hpp"
#include "rosetta/core/view.hpp"

namespace rosetta {

/// Transpose flag of a gemm operand: op(X) = X (N) or X^T (T).
enum class Op { N, T };

namespace detail {
template <class B, class T, class L>
concept GemmFor = requires(Op op, T s, MatrixView<const T, L> a, MatrixView<T, L> c) {
  B::gemm(op, op, s, a, a, s, c);
};
}  // namespace detail

/// The backend axis: a stateless type with a name and
/// gemm(opA, opB, alpha, A, B, beta, C) for both scalars and both layouts. Optional:
/// gemm_sumsq(opA, opB, alpha, A, B, C) -> double, C written (beta = 0) and the sum of its
/// squares returned (see backend::gemm_sumsq, which falls back to gemm + a pass over C).
template <class B>
concept Backend = requires {
  { B::name } -> std::convertible_to<std::string_view>;
}
&&detail::GemmFor<B, float, RowMajor>&& detail::GemmFor<B, float, ColMajor>&&
    detail::GemmFor<B, double, RowMajor>&& detail::GemmFor<B, double, ColMajor>;

template <Scalar T, Layout L, Backend B>
struct Policy {
  using scalar = T;
  using layout = L;
  using backend = B;
  using Matrix = MatrixView<T, L>;
  using ConstMatrix = MatrixView<const T, L>;

  /// e.g. "float/row/naive".
  static std::string name() {
    return std::string(std::same_as<T, float> ? "float" : "double") + "/" + L::name + "/" +
           std::string(B::name);
  }
};

}  // namespace rosetta
