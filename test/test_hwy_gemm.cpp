// backend::HwyGemm, our own Highway gemm (a routing target of backend::Auto, not in
// backend::Available): the checks of test_gemm (gemm_check.hpp: a long-double reference and
// backend::Naive, bounds relative to the sum of |a||b|, padding untouched) for float and
// double, both layouts, all four (opA, opB), alpha/beta, leading dimensions above the width,
// sizes 0, 1, odd and not multiples of the vector width, the model's shapes and the blocking
// boundaries (several k-blocks, several column blocks, partial panels and row blocks).
// Skipped when Highway is not compiled in.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <span>

#include "gemm_check.hpp"
#include "policies.hpp"

#ifndef ROSETTA_HAS_HWY

TEST(HwyGemm, NeedsHighway) {
  GTEST_SKIP() << "built without Highway (ROSETTA_HAS_HWY): backend::HwyGemm is not compiled in";
}

#else

#include <rosetta/backend/hwy_gemm.hpp>

namespace {
using namespace rosetta;
using test::Case;
using test::check_case;
using test::Padded;

static_assert(Backend<backend::HwyGemm>);

template <class P>
class HwyGemm : public ::testing::Test {};
using HwyPolicies = test::ToGTest<test::PoliciesFor<backend::HwyGemm> >::type;
TYPED_TEST_SUITE(HwyGemm, HwyPolicies, test::PolicyName);

const Op kOps[] = {Op::N, Op::T};

// Small and odd sizes (AVX-512 holds 16 floats / 8 doubles; the register blocks are 8 x 32
// floats and 6 x 32 doubles), and non-square shapes.
const Case kSizes[] = {{1, 1, 1},    {1, 2, 3},    {2, 1, 5},    {5, 3, 1},    {7, 7, 7},
                       {13, 17, 19}, {15, 33, 9},  {31, 47, 65}, {64, 64, 64}, {65, 65, 65},
                       {9, 129, 33}, {257, 1, 64}, {1, 257, 7},  {65, 7, 1},   {3, 64, 2}};
// The model's products (tiny: hidden 64, 64 tokens; small: hidden 256), e.g. C = X W^T.
const Case kModel[] = {{64, 192, 64}, {64, 64, 64}, {64, 256, 64}, {64, 64, 256}, {16, 1000, 64},
                       {64, 4, 64},   {8, 8, 64},   {32, 32, 16},  {1, 256, 64},  {3, 1024, 256}};
// Blocking boundaries: more columns than one packed block (1024), inner dimension over one
// k-block (256 floats, 128 doubles), both.
const Case kBlocks[] = {{17, 1100, 40}, {9, 40, 600}, {70, 70, 300}, {11, 1030, 260}};
// C = op(A) B^T computed as C^T (GemmSwapped; float with AVX-512, the others take the packed
// path): row counts that fill their 16-lane vectors or leave a few rows to the dot products,
// one or two vectors mostly unused against a long K, three vectors (one panel of three),
// K over one k-block and not a multiple of the vector, N over one chunk of the scratch and not
// a multiple of the 8-row block, C^T written per row block (K <= 64) with a partial last block;
// panels whose last vector is a half vector (5-8, 17-24 and 37-40 rows against a long K), and
// a half vector with one or two dot-product rows after it (9, 10, 25, 26 rows).
const Case kSwapped[] = {
    {9, 1024, 256},  {26, 133, 300},  {25, 1030, 513}, {24, 1024, 256}, {8, 136, 300},
    {5, 1030, 256},  {19, 133, 256},  {39, 1024, 256}, {37, 131, 520},  {1, 200, 130},
    {2, 128, 300},   {4, 1030, 129},  {13, 300, 64},   {16, 1000, 64},  {18, 257, 270},
    {29, 130, 200},  {32, 1024, 256}, {34, 515, 133},  {36, 140, 520},  {48, 136, 64},
    {64, 1000, 300}, {64, 1000, 64},  {29, 600, 70},   {11, 300, 256},  {25, 520, 300},
    {3, 300, 256},   {7, 1030, 257},  {20, 200, 300},  {22, 129, 512},  {41, 300, 256},
    {48, 200, 130},  {45, 1000, 64},  {47, 130, 600},  {32, 517, 64},   {61, 517, 64},
    {4, 520, 300},   {2, 1030, 256}};

/// f(case, opA, opB) for every case of every list above and all four (opA, opB).
template <class F>
void for_each_case(F f) {
  for (const auto& cases : {std::span<const Case>(kSizes), std::span<const Case>(kModel),
                            std::span<const Case>(kBlocks), std::span<const Case>(kSwapped)})
    for (const Case& cs : cases)
      for (Op oa : kOps)
        for (Op ob : kOps) f(cs, oa, ob);
}

TYPED_TEST(HwyGemm, MatchesReferenceForAllOpsAndSizes) {
  using T = typename TypeParam::scalar;
  for_each_case(
      [](const Case& cs, Op oa, Op ob) { check_case<TypeParam>(cs, oa, ob, T(1), T(0), 0); });
}

TYPED_TEST(HwyGemm, AlphaBetaAndLeadingDimensionAboveWidth) {
  using T = typename TypeParam::scalar;
  for_each_case([](const Case& cs, Op oa, Op ob) {
    check_case<TypeParam>(cs, oa, ob, T(-0.75), T(1.5), 3);
    check_case<TypeParam>(cs, oa, ob, T(2), T(1), 1);  // C += 2 op(A) op(B)
  });
}

TYPED_TEST(HwyGemm, BetaZeroMakesCWriteOnly) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const Case cases[] = {{1, 1, 1},    {7, 7, 7},    {33, 17, 5},    {64, 64, 64},
                        {65, 65, 65}, {9, 40, 300}, {34, 515, 133}, {32, 1024, 256}};
  for (const Case& cs : cases)
    for (Op oa : kOps)
      for (Op ob : kOps) {
        Rng rng(cs.m + cs.n + cs.k);
        Padded<T, L> A(oa == Op::N ? cs.m : cs.k, oa == Op::N ? cs.k : cs.m, 1, rng);
        Padded<T, L> Bm(ob == Op::N ? cs.k : cs.n, ob == Op::N ? cs.n : cs.k, 2, rng);
        Padded<T, L> C(cs.m, cs.n, 3, rng), Cn(cs.m, cs.n, 3, rng);
        for (std::size_t i = 0; i < cs.m; ++i)
          for (std::size_t j = 0; j < cs.n; ++j)
            C.view()(i, j) = std::numeric_limits<T>::quiet_NaN();
        B::gemm(oa, ob, T(2), A.cview(), Bm.cview(), T(0), C.view());
        backend::Naive::gemm(oa, ob, T(2), A.cview(), Bm.cview(), T(0), Cn.view());
        std::size_t bad = 0;
        for (std::size_t i = 0; i < cs.m; ++i)
          for (std::size_t j = 0; j < cs.n; ++j) {
            const T got = C.cview()(i, j), want = Cn.cview()(i, j);
            const T tol = T(4) * static_cast<T>(cs.k + 2) * std::numeric_limits<T>::epsilon() *
                          static_cast<T>(2 * cs.k);  // |a|, |b| <= 1
            if (!std::isfinite(got) || std::fabs(got - want) > tol) ++bad;
          }
        EXPECT_EQ(bad, 0u) << TypeParam::name() << " m,n,k=" << cs.m << "," << cs.n << "," << cs.k
                           << " op=" << int(oa) << int(ob);
        EXPECT_EQ(C.padding_damage(), 0u);
      }
}

// C = A^T B of at least 1 MiB with one k-block and beta = 0 (a weight gradient) is written
// with non-temporal stores when C is 64-byte aligned with rows a multiple of 64 bytes apart
// (kStreamBytes; the row-major policies here): such a C in an AlignedBuffer, NaN before,
// against naive; the last rows of a partial row block and the last columns of a partial panel
// take the ordinary stores. A mutation of the streamed values fails it.
TYPED_TEST(HwyGemm, WeightGradientWrittenWithStreamingStores) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const Case cases[] = {{1024, 256, 8}, {256, 1040, 5}, {1030, 272, 3}};
  for (const Case& cs : cases) {
    Rng rng(cs.m * 7 + cs.k);
    Padded<T, L> A(cs.k, cs.m, 0, rng), Bm(cs.k, cs.n, 0, rng), Cn(cs.m, cs.n, 0, rng);
    const std::size_t ld = L::is_row_major ? cs.n : cs.m;
    AlignedBuffer<T> c(ld * (L::is_row_major ? cs.m : cs.n));
    for (std::size_t i = 0; i < c.size(); ++i) c.data()[i] = std::numeric_limits<T>::quiet_NaN();
    const MatrixView<T, L> C(c.data(), cs.m, cs.n, ld);
    B::gemm(Op::T, Op::N, T(1.5), A.cview(), Bm.cview(), T(0), C);
    backend::Naive::gemm(Op::T, Op::N, T(1.5), A.cview(), Bm.cview(), T(0), Cn.view());
    std::size_t bad = 0;
    const T tol = T(4) * static_cast<T>(cs.k + 2) * std::numeric_limits<T>::epsilon() *
                  static_cast<T>(2 * cs.k);  // |a|, |b| <= 1, alpha 1.5
    for (std::size_t i = 0; i < cs.m; ++i)
      for (std::size_t j = 0; j < cs.n; ++j)
        if (!(std::fabs(C(i, j) - Cn.cview()(i, j)) <= tol)) ++bad;
    EXPECT_EQ(bad, 0u) << TypeParam::name() << " m,n,k=" << cs.m << "," << cs.n << "," << cs.k;
    // and through gemm_sumsq (the sums taken from the streamed registers), NaN before again
    for (std::size_t i = 0; i < c.size(); ++i) c.data()[i] = std::numeric_limits<T>::quiet_NaN();
    const double got = B::gemm_sumsq(Op::T, Op::N, T(1.5), A.cview(), Bm.cview(), C);
    long double want = 0;
    bad = 0;
    for (std::size_t i = 0; i < cs.m; ++i)
      for (std::size_t j = 0; j < cs.n; ++j) {
        if (!(std::fabs(C(i, j) - Cn.cview()(i, j)) <= tol)) ++bad;
        want += static_cast<long double>(C(i, j)) * C(i, j);
      }
    EXPECT_EQ(bad, 0u) << TypeParam::name() << " gemm_sumsq m,n,k=" << cs.m << "," << cs.n;
    EXPECT_LE(std::fabs(static_cast<long double>(got) - want),
              32 * std::numeric_limits<T>::epsilon() * want)
        << TypeParam::name() << " m,n,k=" << cs.m << "," << cs.n << ": " << got << " vs "
        << static_cast<double>(want);
  }
}

// backend::gemm_sumsq on HwyGemm sums the squares in the micro-kernels as they store C (the
// swapped products: a pass over C after them): every path — packed and in place, partial
// panels and row blocks, several k-blocks (summed after the last only), several column
// blocks, the few-row short k-blocks, the swapped plans, column-major as the transposed
// product — against a sum of the C that gemm writes.
TYPED_TEST(HwyGemm, SumOfSquaresOfTheWrittenC) {
  using T = typename TypeParam::scalar;
  for_each_case([](const Case& cs, Op oa, Op ob) {
    test::check_gemm_sumsq<TypeParam>(cs, oa, ob, T(1.5), cs.m % 3);
  });
  const Case few_rows[] = {{7, 1024, 256}, {4, 256, 1024}};  // op(B) = B >= 512 KiB: KC = 64
  for (const Case& cs : few_rows) test::check_gemm_sumsq<TypeParam>(cs, Op::N, Op::N, T(1), 0);
}

TYPED_TEST(HwyGemm, EmptyOperands) {
  test::check_empty_operands<typename TypeParam::scalar, typename TypeParam::layout,
                             typename TypeParam::backend>();
}

TYPED_TEST(HwyGemm, ShapeMismatchThrows) {
  test::check_shape_mismatch_throws<typename TypeParam::scalar, typename TypeParam::layout,
                                    typename TypeParam::backend>();
}

}  // namespace

#endif  // ROSETTA_HAS_HWY
