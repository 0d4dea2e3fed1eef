// CBLAS backend, bound to OpenBLAS. libblis exports cblas_* too, so a binary that links both
// could silently route a plain cblas_sgemm call into BLIS (whichever library the dynamic
// linker sees first wins). We therefore never call cblas_* by name: the entry points are
// looked up with dlsym in the OpenBLAS shared object named by ROSETTA_CBLAS_LIBRARY (an
// absolute path set by the rosetta::cblas CMake target), which cannot resolve elsewhere.
// No cblas.h is included either: BLIS's blis.h declares the same functions and enums.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "rosetta/backend/common.hpp"
#include "rosetta/backend/threads.hpp"

#ifndef ROSETTA_CBLAS_LIBRARY
#define ROSETTA_CBLAS_LIBRARY "libopenblas.so.0"
#endif

namespace rosetta::backend {

struct Cblas {
  static constexpr const char* name = "openblas";

  /// The shared object the entry points are taken from.
  static const char* library() { return ROSETTA_CBLAS_LIBRARY; }

  /// Sets OpenBLAS's thread count (process-wide).
  static void set_num_threads(int n) { table().set_threads(n); }

  /// OpenBLAS's configuration string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... SkylakeX ...".
  static std::string version() { return table().get_config ? table().get_config() : "unknown"; }

  /// Address of the gemm entry point rosetta calls for scalar T (for symbol-origin checks).
  template <class T>
  static const void* gemm_symbol() {
    if constexpr (std::is_same_v<T, float>)
      return reinterpret_cast<const void*>(table().sgemm);
    else
      return reinterpret_cast<const void*>(table().dgemm);
  }

  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("Cblas::gemm", opA, opB, A, B, C);
    if (detail::gemm_trivial(d, beta, C)) return;
    if (opA == Op::N && opB == Op::N) {
      // OpenBLAS 0.3.21's small-matrix kernel for the no-transpose case (SkylakeX
      // ?gemm_small_kernel_nn) mallocs a buffer on every call. Route N,N through an
      // explicit transpose of the smaller operand (a thread-local buffer that only grows),
      // so the library takes a transposed kernel and steady state allocates nothing.
      // Cost: one copy of min(m*k, k*n) elements, small next to the 2mnk flops.
      auto& buf = transpose_buffer<T>();
      if (d.m * d.k <= d.k * d.n) {
        auto At = transposed_copy(MatrixView<const T, L>(A), buf);
        call(Op::T, Op::N, d, T(alpha), At, MatrixView<const T, L>(B), T(beta), C);
      } else {
        auto Bt = transposed_copy(MatrixView<const T, L>(B), buf);
        call(Op::N, Op::T, d, T(alpha), MatrixView<const T, L>(A), Bt, T(beta), C);
      }
      return;
    }
    call(opA, opB, d, T(alpha), MatrixView<const T, L>(A), MatrixView<const T, L>(B), T(beta), C);
  }

 private:
  template <class T, class L>
  static void call(Op opA, Op opB, const detail::GemmDims& d, T alpha, MatrixView<const T, L> A,
                   MatrixView<const T, L> B, T beta, MatrixView<T, L> C) {
    const int order = L::is_row_major ? kRowMajor : kColMajor;
    auto tr = [](Op op) { return op == Op::N ? kNoTrans : kTrans; };
    const auto m = static_cast<int>(d.m), n = static_cast<int>(d.n), k = static_cast<int>(d.k);
    const auto lda = static_cast<int>(A.ld()), ldb = static_cast<int>(B.ld()),
               ldc = static_cast<int>(C.ld());
    if constexpr (std::is_same_v<T, float>)
      table().sgemm(order, tr(opA), tr(opB), m, n, k, alpha, A.data(), lda, B.data(), ldb, beta,
                    C.data(), ldc);
    else
      table().dgemm(order, tr(opA), tr(opB), m, n, k, alpha, A.data(), lda, B.data(), ldb, beta,
                    C.data(), ldc);
  }

  template <class T>
  static std::vector<T>& transpose_buffer() {
    thread_local std::vector<T> buf;
    return buf;
  }

  /// X^T (cols x rows, same layout, dense) in buf, which grows only: to at least
  /// kMinTransposeBuffer values, then at least doubling — with Auto routing the few-row products
  /// of a training step here, the largest such operand changes as the routing does, and growing
  /// to each new size exactly allocated in the steady state (mem_train_step: 37 B per step on
  /// average).
  static constexpr std::size_t kMinTransposeBuffer = 16384;
  template <class T, class L>
  static MatrixView<const T, L> transposed_copy(MatrixView<const T, L> X, std::vector<T>& buf) {
    if (buf.size() < X.size())
      buf.resize(std::max({X.size(), 2 * buf.size(), kMinTransposeBuffer}));
    MatrixView<T, L> Xt(buf.data(), X.cols(), X.rows());
    for (std::size_t i = 0; i < X.rows(); ++i)
      for (std::size_t j = 0; j < X.cols(); ++j) Xt(j, i) = X(i, j);
    return Xt;
  }

 public:
 private:
  // CBLAS ABI constants (fixed by the CBLAS standard).
  static constexpr int kRowMajor = 101, kColMajor = 102, kNoTrans = 111, kTrans = 112;
  using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*,
                           int, float, float*, int);
  using DgemmFn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*,
                           int, double, double*, int);

  struct Table {
    SgemmFn sgemm = nullptr;
    DgemmFn dgemm = nullptr;
    void (*set_threads)(int) = nullptr;
    char* (*get_config)() = nullptr;
  };

  /// Resolved once, thread-safely; pins the thread count on first use.
  static const Table& table() {
    static const Table t = [] {
      void* h = ::dlopen(ROSETTA_CBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char* err = ::dlerror();
        rosetta::detail::raise<BackendError>("Cblas: cannot load OpenBLAS from '",
                                             ROSETTA_CBLAS_LIBRARY, "': ", err ? err : "?");
      }
      Table r;
      auto sym = [h](const char* s) {
        void* p = ::dlsym(h, s);
        if (!p)
          rosetta::detail::raise<BackendError>("Cblas: '", ROSETTA_CBLAS_LIBRARY,
                                               "' has no symbol ", s);
        return p;
      };
      r.sgemm = reinterpret_cast<SgemmFn>(sym("cblas_sgemm"));
      r.dgemm = reinterpret_cast<DgemmFn>(sym("cblas_dgemm"));
      r.set_threads = reinterpret_cast<void (*)(int)>(sym("openblas_set_num_threads"));
      r.get_config = reinterpret_cast<char* (*)()>(sym("openblas_get_config"));
      r.set_threads(default_blas_threads());
      return r;
    }();
    return t;
  }
};

}  // namespace rosetta::backend
