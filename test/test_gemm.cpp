// Every backend's gemm, for both layouts and both scalars, against a long-double reference
// and against the Naive backend: all four (opA, opB), square and non-square sizes, alpha and
// beta away from 1 and 0, views whose leading dimension exceeds their width, and edge cases.
// (The checks are shared with test_hwy_gemm: gemm_check.hpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "gemm_check.hpp"
#include "policies.hpp"

namespace {
using namespace rosetta;

using test::Case;
using test::check_case;
using test::Padded;

// Sizes named by the issue (1, 7, 64, 65, 257) plus non-square shapes.
const Case kCases[] = {{1, 1, 1},    {7, 7, 7},    {64, 64, 64}, {65, 65, 65}, {257, 257, 257},
                       {7, 65, 257}, {257, 1, 64}, {1, 257, 7},  {65, 7, 1},   {3, 64, 2}};
const Op kOps[] = {Op::N, Op::T};

template <class P>
class Gemm : public ::testing::Test {};
TYPED_TEST_SUITE(Gemm, test::Policies, test::PolicyName);

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

// backend::gemm_sumsq: the backend's gemm and sum_squares of C (or its own fused sum), for
// every policy — what a training step's weight-gradient products call.
TYPED_TEST(Gemm, GemmSumsqWritesCAndReturnsItsSumOfSquares) {
  using T = typename TypeParam::scalar;
  for (const Case& cs : kCases)
    for (Op oa : kOps)
      for (Op ob : kOps) test::check_gemm_sumsq<TypeParam>(cs, oa, ob, T(-0.75), 1);
}

TYPED_TEST(Gemm, EmptyOperands) {
  test::check_empty_operands<typename TypeParam::scalar, typename TypeParam::layout,
                             typename TypeParam::backend>();
}

TYPED_TEST(Gemm, ShapeMismatchThrowsNamingTheShapes) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  test::check_shape_mismatch_throws<T, L, B>();
  Rng rng(9);
  Padded<T, L> A(2, 3, 0, rng), Bm(4, 5, 0, rng), C(2, 5, 0, rng);
  try {
    B::gemm(Op::N, Op::N, T(1), A.cview(), Bm.cview(), T(0), C.view());
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("2x3"), std::string::npos) << m;
    EXPECT_NE(m.find("4x5"), std::string::npos) << m;
  }
}

}  // namespace
