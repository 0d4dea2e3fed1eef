// Shared by test_gemm and test_hwy_gemm: padded operands and the check of one gemm call against
// a long-double reference and against backend::Naive.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <rosetta/rosetta.hpp>
#include <string>
#include <vector>

namespace rosetta::test {

/// A matrix living inside a larger buffer: leading dimension = min_ld + pad, with the
/// padding filled with a sentinel so writes outside the view are detected.
template <class T, class L>
struct Padded {
  std::size_t rows, cols, ld;
  std::vector<T> buf;
  static constexpr T kSentinel = T(-777.25);

  Padded(std::size_t r, std::size_t c, std::size_t pad, Rng& rng)
      : rows(r), cols(c), ld(L::min_ld(r, c) + pad) {
    const std::size_t outer = L::is_row_major ? r : c;
    buf.assign(std::max<std::size_t>(1, outer) * ld, kSentinel);
    auto v = view();
    for (std::size_t i = 0; i < r; ++i)
      for (std::size_t j = 0; j < c; ++j) v(i, j) = T(2 * rng.uniform() - 1);
  }
  MatrixView<T, L> view() { return MatrixView<T, L>(buf.data(), rows, cols, ld); }
  MatrixView<const T, L> cview() const {
    return MatrixView<const T, L>(buf.data(), rows, cols, ld);
  }
  /// Number of sentinel slots that were overwritten.
  std::size_t padding_damage() const {
    std::size_t bad = 0;
    const std::size_t inner = L::is_row_major ? cols : rows;
    for (std::size_t idx = 0; idx < buf.size(); ++idx)
      if (idx % ld >= inner && buf[idx] != kSentinel) ++bad;
    return bad;
  }
};

struct Case {
  std::size_t m, n, k;
};

/// Checks one gemm call of policy P's backend against a long-double reference, element by
/// element, with a bound proportional to the magnitudes that were summed
/// (k * eps * sum|terms|), and against backend::Naive with the same bound.
template <class P>
void check_case(const Case& cs, Op opA, Op opB, typename P::scalar alpha, typename P::scalar beta,
                std::size_t pad) {
  using T = typename P::scalar;
  using L = typename P::layout;
  using B = typename P::backend;
  Rng rng(cs.m * 1000003 + cs.n * 1009 + cs.k, static_cast<int>(opA) * 2 + static_cast<int>(opB));
  Padded<T, L> A(opA == Op::N ? cs.m : cs.k, opA == Op::N ? cs.k : cs.m, pad, rng);
  Padded<T, L> Bm(opB == Op::N ? cs.k : cs.n, opB == Op::N ? cs.n : cs.k, pad + 1, rng);
  Padded<T, L> C(cs.m, cs.n, pad + 2, rng);
  Padded<T, L> Cn = C;  // same start for the Naive comparison
  const Padded<T, L> C0 = C;

  B::gemm(opA, opB, alpha, A.cview(), Bm.cview(), beta, C.view());
  backend::Naive::gemm(opA, opB, alpha, A.cview(), Bm.cview(), beta, Cn.view());

  const auto a = A.cview();
  const auto b = Bm.cview();
  const auto c = C.cview();
  const auto cn = Cn.cview();
  const auto c0 = C0.cview();
  const long double eps = std::numeric_limits<T>::epsilon();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < cs.m; ++i)
    for (std::size_t j = 0; j < cs.n; ++j) {
      long double ref = 0, mag = 0;
      for (std::size_t p = 0; p < cs.k; ++p) {
        const long double x = opA == Op::N ? a(i, p) : a(p, i);
        const long double y = opB == Op::N ? b(p, j) : b(j, p);
        ref += x * y;
        mag += std::fabs(x * y);
      }
      ref = alpha * ref + beta * (long double)c0(i, j);
      mag = std::fabs((long double)alpha) * mag + std::fabs(beta * (long double)c0(i, j));
      const long double bound = 2 * (cs.k + 2) * eps * mag + std::numeric_limits<T>::min();
      if (std::fabs(c(i, j) - ref) > bound || std::fabs(cn(i, j) - ref) > bound) {
        if (++bad <= 3)
          ADD_FAILURE() << P::name() << " m,n,k=" << cs.m << "," << cs.n << "," << cs.k
                        << " op=" << int(opA) << int(opB) << " at (" << i << "," << j << "): got "
                        << c(i, j) << ", naive " << cn(i, j) << ", ref " << (double)ref
                        << ", bound " << (double)bound;
      }
    }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(C.padding_damage(), 0u) << P::name() << ": wrote outside the C view";
}

/// backend::gemm_sumsq with policy P's backend: C, NaN before (written, not read), is bit for
/// bit what B::gemm writes with beta = 0, nothing outside it is written, and the returned sum
/// is that C's sum of squares (a long double sum) within 32 eps relative — every term is
/// positive, and each is summed in T at most a few dozen times deep (HwyGemm: per lane over
/// a register block, then across the lanes; others: sum_squares) before double sums take over.
template <class P>
void check_gemm_sumsq(const Case& cs, Op opA, Op opB, typename P::scalar alpha, std::size_t pad) {
  using T = typename P::scalar;
  using L = typename P::layout;
  using B = typename P::backend;
  Rng rng(cs.m * 1000003 + cs.n * 1009 + cs.k, 7 + static_cast<int>(opA) * 2 + int(opB));
  Padded<T, L> A(opA == Op::N ? cs.m : cs.k, opA == Op::N ? cs.k : cs.m, pad, rng);
  Padded<T, L> Bm(opB == Op::N ? cs.k : cs.n, opB == Op::N ? cs.n : cs.k, pad + 1, rng);
  Padded<T, L> C(cs.m, cs.n, pad + 2, rng);
  Padded<T, L> Cg = C;
  for (std::size_t i = 0; i < cs.m; ++i)
    for (std::size_t j = 0; j < cs.n; ++j) C.view()(i, j) = std::numeric_limits<T>::quiet_NaN();
  const double got = backend::gemm_sumsq<B>(opA, opB, alpha, A.cview(), Bm.cview(), C.view());
  B::gemm(opA, opB, alpha, A.cview(), Bm.cview(), T(0), Cg.view());
  std::size_t differ = 0;
  long double want = 0;
  for (std::size_t i = 0; i < cs.m; ++i)
    for (std::size_t j = 0; j < cs.n; ++j) {
      const T x = C.cview()(i, j);
      if (!(x == Cg.cview()(i, j))) ++differ;
      want += static_cast<long double>(x) * x;
    }
  const std::string what = std::string(P::name()) + " m,n,k=" + std::to_string(cs.m) + "," +
                           std::to_string(cs.n) + "," + std::to_string(cs.k) +
                           " op=" + std::to_string(int(opA)) + std::to_string(int(opB));
  EXPECT_EQ(differ, 0u) << what << ": C differs from gemm's";
  const long double bound = 32 * std::numeric_limits<T>::epsilon() * want;
  EXPECT_LE(std::fabs(static_cast<long double>(got) - want), bound)
      << what << ": sum " << got << ", want " << static_cast<double>(want);
  EXPECT_EQ(C.padding_damage(), 0u) << what << ": wrote outside the C view";
}

/// Empty operands: k == 0 gives C <- beta C (zeros for beta == 0, even over NaN); m == 0 or
/// n == 0 does nothing and does not throw.
template <class T, class L, class B>
void check_empty_operands() {
  Rng rng(5);
  Padded<T, L> A(3, 0, 0, rng), Bm(0, 4, 0, rng), C(3, 4, 0, rng);
  const Padded<T, L> C0 = C;
  B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(2), C.view());
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) EXPECT_EQ(C.cview()(i, j), 2 * C0.cview()(i, j));
  C.view()(0, 0) = std::numeric_limits<T>::quiet_NaN();
  B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(0), C.view());
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) EXPECT_EQ(C.cview()(i, j), T(0));
  Padded<T, L> A0(0, 5, 0, rng), B5(5, 4, 0, rng), C0x4(0, 4, 0, rng);
  EXPECT_NO_THROW(B::gemm(Op::N, Op::N, T(1), A0.cview(), B5.cview(), T(0), C0x4.view()));
  Padded<T, L> A35(3, 5, 0, rng), B50(5, 0, 0, rng), C30(3, 0, 0, rng);
  EXPECT_NO_THROW(B::gemm(Op::N, Op::N, T(1), A35.cview(), B50.cview(), T(0), C30.view()));
}

/// Mismatched inner or outer dimensions throw ShapeError.
template <class T, class L, class B>
void check_shape_mismatch_throws() {
  Rng rng(9);
  Padded<T, L> A(2, 3, 0, rng), Bm(4, 5, 0, rng), C(2, 5, 0, rng), Cbad(3, 5, 0, rng);
  EXPECT_THROW(B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(0), C.view()), ShapeError);
  Padded<T, L> B3(3, 5, 0, rng);
  EXPECT_THROW(B::gemm(Op::N, Op::N, T(1), A.cview(), B3.cview(), T(0), Cbad.view()), ShapeError);
}

}  // namespace rosetta::test
