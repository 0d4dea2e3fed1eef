// Every backend's gemm, for both layouts and both scalars, against a long-double reference
// and against the Naive backend: all four (opA, opB), square and non-square sizes, alpha and
// beta away from 1 and 0, views whose leading dimension exceeds their width, and edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "policies.hpp"

namespace {
using namespace rosetta;

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

// Sizes named by the issue (1, 7, 64, 65, 257) plus non-square shapes.
const Case kCases[] = {{1, 1, 1},    {7, 7, 7},    {64, 64, 64}, {65, 65, 65}, {257, 257, 257},
                       {7, 65, 257}, {257, 1, 64}, {1, 257, 7},  {65, 7, 1},   {3, 64, 2}};
const Op kOps[] = {Op::N, Op::T};

template <class P>
class Gemm : public ::testing::Test {};
TYPED_TEST_SUITE(Gemm, test::Policies, test::PolicyName);

/// Checks one gemm call of backend B against a long-double reference, element by element,
/// with a bound proportional to the magnitudes that were summed (k * eps * sum|terms|).
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

TYPED_TEST(Gemm, MatchesReferenceForAllOpsAndSizes) {
  using T = typename TypeParam::scalar;
  for (const Case& cs : kCases)
    for (Op oa : kOps)
      for (Op ob : kOps) check_case<TypeParam>(cs, oa, ob, T(1), T(0), 0);
}

TYPED_TEST(Gemm, AlphaBetaAndLeadingDimensionAboveWidth) {
  using T = typename TypeParam::scalar;
  for (const Case& cs : kCases)
    for (Op oa : kOps)
      for (Op ob : kOps) check_case<TypeParam>(cs, oa, ob, T(-0.75), T(1.5), 3);
}

TYPED_TEST(Gemm, BetaZeroMakesCWriteOnly) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  for (std::size_t n : {1u, 7u, 65u}) {
    Rng rng(n);
    Padded<T, L> A(n, n, 0, rng), Bm(n, n, 0, rng), C(n, n, 0, rng);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) C.view()(i, j) = std::numeric_limits<T>::quiet_NaN();
    B::gemm(Op::N, Op::T, T(2), A.cview(), Bm.cview(), T(0), C.view());
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        T ref = 0;
        for (std::size_t p = 0; p < n; ++p) ref += A.cview()(i, p) * Bm.cview()(j, p);
        ASSERT_TRUE(std::isfinite(C.cview()(i, j))) << TypeParam::name() << " n=" << n;
        EXPECT_NEAR(C.cview()(i, j), 2 * ref, 1e-4 * n);
      }
  }
}

TYPED_TEST(Gemm, EmptyOperands) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  Rng rng(5);
  // k == 0: C <- beta * C (zeros for beta == 0, even over NaN).
  Padded<T, L> A(3, 0, 0, rng), Bm(0, 4, 0, rng), C(3, 4, 0, rng);
  const Padded<T, L> C0 = C;
  B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(2), C.view());
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) EXPECT_EQ(C.cview()(i, j), 2 * C0.cview()(i, j));
  C.view()(0, 0) = std::numeric_limits<T>::quiet_NaN();
  B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(0), C.view());
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) EXPECT_EQ(C.cview()(i, j), T(0));
  // m == 0 or n == 0: nothing happens and nothing throws.
  Padded<T, L> A0(0, 5, 0, rng), B5(5, 4, 0, rng), C0x4(0, 4, 0, rng);
  EXPECT_NO_THROW(B::gemm(Op::N, Op::N, T(1), A0.cview(), B5.cview(), T(0), C0x4.view()));
}

TYPED_TEST(Gemm, ShapeMismatchThrowsNamingTheShapes) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  Rng rng(9);
  Padded<T, L> A(2, 3, 0, rng), Bm(4, 5, 0, rng), C(2, 5, 0, rng), Cbad(3, 5, 0, rng);
  EXPECT_THROW(B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(0), C.view()), ShapeError);
  Padded<T, L> B3(3, 5, 0, rng);
  EXPECT_THROW(B::gemm(Op::N, Op::N, T(1), A.cview(), B3.cview(), T(0), Cbad.view()), ShapeError);
  try {
    B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(0), C.view());
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("2x3"), std::string::npos) << m;
    EXPECT_NE(m.find("4x5"), std::string::npos) << m;
  }
}

}  // namespace
