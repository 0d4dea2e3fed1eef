// BLIS backend through BLIS's typed API: bli_?gemm takes a row stride and a column stride
// for every operand, so both layouts and both transposes are one call with no copies and
// no transpose flags (op(X)^T swaps the strides). Needs ROSETTA_HAS_BLIS (link rosetta::blis).
// The bli_* symbols exist only in libblis, so calls cannot be captured by another BLAS.
#pragma once

#include <blis.h>

#include <mutex>
#include <string>
#include <type_traits>

#include "rosetta/backend/common.hpp"
#include "rosetta/backend/threads.hpp"

namespace rosetta::backend {

struct Blis {
  static constexpr const char* name = "blis";

  /// Sets BLIS's thread count (process-wide).
  static void set_num_threads(int n) { bli_thread_set_num_threads(static_cast<dim_t>(n)); }

  /// "0.9.0 (zen3)": library version and the kernel set BLIS selected for this CPU.
  static std::string version() {
    return std::string(bli_info_get_version_str()) + " (" + bli_arch_string(bli_arch_query_id()) +
           ")";
  }

  /// Address of the gemm entry point rosetta calls for scalar T (for symbol-origin checks).
  template <class T>
  static const void* gemm_symbol() {
    if constexpr (std::is_same_v<T, float>)
      return reinterpret_cast<const void*>(&bli_sgemm);
    else
      return reinterpret_cast<const void*>(&bli_dgemm);
  }

  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("Blis::gemm", opA, opB, A, B, C);
    if (detail::gemm_trivial(d, beta, C)) return;
    init_threads();
    // Strides of op(X): the transpose swaps row and column strides.
    auto rs = [](Op op, const auto& x) {
      return inc(op == Op::N ? x.row_stride() : x.col_stride());
    };
    auto cs = [](Op op, const auto& x) {
      return inc(op == Op::N ? x.col_stride() : x.row_stride());
    };
    T a = alpha, b = beta;  // BLIS takes scalars by pointer
    const auto m = static_cast<dim_t>(d.m), n = static_cast<dim_t>(d.n),
               k = static_cast<dim_t>(d.k);
    auto* pa = const_cast<T*>(A.data());
    auto* pb = const_cast<T*>(B.data());
    if constexpr (std::is_same_v<T, float>)
      bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &a, pa, rs(opA, A), cs(opA, A), pb,
                rs(opB, B), cs(opB, B), &b, C.data(), inc(C.row_stride()), inc(C.col_stride()));
    else
      bli_dgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &a, pa, rs(opA, A), cs(opA, A), pb,
                rs(opB, B), cs(opB, B), &b, C.data(), inc(C.row_stride()), inc(C.col_stride()));
  }

 private:
  static inc_t inc(std::size_t s) { return static_cast<inc_t>(s); }
  /// Pins BLIS to default_blas_threads() on first use.
  static void init_threads() {
    static std::once_flag once;
    std::call_once(once, [] { set_num_threads(default_blas_threads()); });
  }
};

}  // namespace rosetta::backend
