// Core types: layouts, views, tensors, errors, RNG. Bounds checks are forced on here.
#define ROSETTA_CHECKED 1
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <rosetta/rosetta.hpp>
#include <string>
#include <utility>
#include <vector>

namespace {
using namespace rosetta;

TEST(Layout, StridesFollowTheTag) {
  EXPECT_EQ(RowMajor::row_stride(7), 7u);
  EXPECT_EQ(RowMajor::col_stride(7), 1u);
  EXPECT_EQ(ColMajor::row_stride(7), 1u);
  EXPECT_EQ(ColMajor::col_stride(7), 7u);
  EXPECT_EQ(RowMajor::min_ld(3, 5), 5u);
  EXPECT_EQ(ColMajor::min_ld(3, 5), 3u);
  EXPECT_EQ(RowMajor::min_ld(3, 0), 1u);  // BLAS needs ld >= 1
}

TEST(Concepts, AcceptAndReject) {
  static_assert(Scalar<float> && Scalar<double>);
  static_assert(!Scalar<int> && !Scalar<long double> && !Scalar<float*>);
  static_assert(Layout<RowMajor> && Layout<ColMajor> && !Layout<int> && !Layout<float>);
  static_assert(Backend<backend::Naive> && !Backend<int> && !Backend<RowMajor>);
  SUCCEED();
}

TEST(Tensor, RowMajorIsCOrder) {
  Tensor<float, RowMajor> t({2, 3, 4});
  EXPECT_EQ(t.size(), 24u);
  t(1, 2, 3) = 5.f;
  EXPECT_EQ(t.data()[1 * 12 + 2 * 4 + 3], 5.f);
}

TEST(Tensor, ColMajorIsFortranOrder) {
  Tensor<double, ColMajor> t({2, 3, 4});
  t(1, 2, 3) = 5.0;
  EXPECT_EQ(t.data()[1 + 2 * 2 + 3 * 6], 5.0);
}

TEST(Tensor, IsZeroedAndAligned) {
  Tensor<float, RowMajor> t({7, 13});
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data()) % 64, 0u);
  for (float x : t.flat()) EXPECT_EQ(x, 0.f);
}

/// Large buffers start on a 2 MiB boundary (huge pages), small ones on 64 bytes; both zeroed,
/// copies deep and equal, moves keep the pointer (and so free it with its own alignment).
TEST(AlignedBuffer, LargeBuffersAreHugePageAligned) {
  const std::size_t big = kHugeMinBytes / sizeof(float) + 5,
                    small = kHugeMinBytes / sizeof(float) - 1;
  AlignedBuffer<float> a(big), b(small);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % kHugePage, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kAlignment, 0u);
  EXPECT_TRUE(std::all_of(a.data(), a.data() + a.size(), [](float x) { return x == 0.f; }));
  EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](float x) { return x == 0.f; }));
  a.data()[big - 1] = 2.f;
  AlignedBuffer<float> c = a;
  EXPECT_NE(c.data(), a.data());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c.data()) % kHugePage, 0u);
  EXPECT_EQ(c.data()[big - 1], 2.f);
  const float* p = c.data();
  AlignedBuffer<float> d = std::move(c);
  EXPECT_EQ(d.data(), p);
  EXPECT_EQ(c.size(), 0u);
}

TEST(Tensor, CopyIsDeepMoveSteals) {
  Tensor<float, RowMajor> a({2, 2});
  a(0, 1) = 3.f;
  Tensor<float, RowMajor> b = a;
  b(0, 1) = 4.f;
  EXPECT_EQ(a(0, 1), 3.f);
  const float* p = b.data();
  Tensor<float, RowMajor> c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c(0, 1), 4.f);
}

TEST(Tensor, ShapeErrors) {
  EXPECT_THROW((Tensor<float, RowMajor>({1, 2, 3, 4})), ShapeError);
  EXPECT_THROW((Tensor<float, RowMajor>(Shape{})), ShapeError);
  Tensor<float, RowMajor> t3({2, 3, 4});
  EXPECT_THROW(t3.matrix(), ShapeError);
  try {
    t3.matrix();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4]"), std::string::npos) << e.what();
  }
}

TEST(Tensor, CheckedIndexing) {
  Tensor<float, ColMajor> t({2, 3});
  EXPECT_THROW(t(2, 0), IndexError);
  EXPECT_THROW(t(0, 3), IndexError);
  EXPECT_THROW(t(0), IndexError);  // wrong rank
  try {
    t(0, 3);
  } catch (const IndexError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("index 3"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
  }
}

template <class L>
void check_view_semantics() {
  Tensor<float, L> t({4, 5});
  auto m = t.matrix();
  EXPECT_EQ(m.rows(), 4u);
  EXPECT_EQ(m.cols(), 5u);
  EXPECT_TRUE(m.contiguous());
  auto b = m.block(1, 2, 2, 3);
  EXPECT_FALSE(b.contiguous());
  b(1, 2) = 9.f;
  EXPECT_EQ(t(2, 4), 9.f);
  EXPECT_THROW(m.block(3, 0, 2, 1), ShapeError);
  EXPECT_THROW(b(2, 0), IndexError);
  EXPECT_THROW(b.flat(), ShapeError);
  MatrixView<const float, L> c = m;  // const conversion
  EXPECT_EQ(c(2, 4), 9.f);
  EXPECT_THROW((MatrixView<float, L>(t.data(), 4, 5, 3)), ShapeError);  // ld too small
}

TEST(MatrixView, RowMajor) {
  check_view_semantics<RowMajor>();
}
TEST(MatrixView, ColMajor) {
  check_view_semantics<ColMajor>();
}

TEST(Errors, AreTypedAndShareABase) {
  EXPECT_THROW(throw ShapeError("x"), Error);
  EXPECT_THROW(throw ConfigError("x"), Error);
  EXPECT_THROW(throw CheckpointError("x"), std::runtime_error);
  try {
    detail::raise<ValueError>("p=", 1.5, " (allowed (0, 1])");
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "p=1.5 (allowed (0, 1])");
  }
}

// Expected values come from an independent Python implementation of the documented
// algorithm (splitmix64 seeding, xoshiro256**, 53-bit uniforms, Box-Muller); the splitmix64
// vector for seed 1234567 is the published reference output.
TEST(Rng, SplitMix64ReferenceVector) {
  std::uint64_t s = 1234567;
  EXPECT_EQ(splitmix64(s), 6457827717110365317ull);
  EXPECT_EQ(splitmix64(s), 3203168211198807973ull);
  EXPECT_EQ(splitmix64(s), 9817491932198370423ull);
}

TEST(Rng, PinnedIntegers) {
  Rng r(42);
  EXPECT_EQ(r.next_u64(), 1546998764402558742ull);
  EXPECT_EQ(r.next_u64(), 6990951692964543102ull);
  EXPECT_EQ(r.next_u64(), 12544586762248559009ull);
  EXPECT_EQ(r.next_u64(), 17057574109182124193ull);
  Rng s(42, 7);
  EXPECT_EQ(s.next_u64(), 12324983354704563866ull);
  EXPECT_EQ(s.next_u64(), 327361404529169866ull);
}

TEST(Rng, PinnedUniformsAndNormals) {
  Rng r(42);
  EXPECT_EQ(r.uniform(), 0.08386297105988216);
  EXPECT_EQ(r.uniform(), 0.3789802506626686);
  EXPECT_EQ(r.uniform(), 0.6800434110281394);
  Rng n(42);
  // libm's log/cos may differ in the last bit between platforms: 1e-15 relative.
  const double expect[] = {-1.6132237513849157, 0.7816920450573488, 0.015871293375984856,
                           0.4772168184355812};
  for (double e : expect) EXPECT_NEAR(n.normal(), e, 1e-15 * std::abs(e));
}

TEST(Rng, SameSeedSameStreamDifferentStreamsDiffer) {
  Rng a(7, 3), b(7, 3), c(7, 4);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  Rng a2(7, 3);
  int same = 0;
  for (int i = 0; i < 100; ++i) same += a2.next_u64() == c.next_u64();
  EXPECT_EQ(same, 0);
}

TEST(Rng, NormalMomentsAndUniformRange) {
  Rng r(1);
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = r.normal();
    s += z;
    s2 += z * z;
  }
  // Mean within 5 standard errors of 0; variance within 5 standard errors of 1.
  EXPECT_NEAR(s / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(s2 / n, 1.0, 5.0 * std::sqrt(2.0 / n));
  for (int i = 0; i < 1000; ++i) {
    const double u = r.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_LT(r.below(10), 10u);
  }
}

// ---- NormalStream: the bulk generator parameter init uses ------------------------------
// Expected values from test/reference/normal_stream.py (Python integers + float64 libm, an
// independent implementation of the same description): `normal_stream.py 42 3 200000`.
// rosetta's log/sin/cos are float polynomials, so float tolerance: measured worst over those
// 200000 values 4.0e-7 absolute, 2.0e-7 relative to max(1, |z|); bound 4 float eps.
TEST(NormalStream, MatchesIndependentReference) {
  const std::pair<std::size_t, double> expect[] = {
      {0, -1.213935987808056},      {1, -0.7400108913305888},  {2, -0.049481057149779614},
      {63, -0.8663122114213966},    {64, 0.5699054755877507},  {65, 0.013790383758152353},
      {127, 0.13753053339383536},   {128, 1.8738244113635527}, {129, 0.4631406230075588},
      {1000, -0.16164876534097908}, {4097, 1.856451680159882}, {65536, 1.2972443729699528},
      {199999, 0.14198223203956806}};
  Rng parent(42, 3);
  NormalStream ns(parent);
  std::size_t at = 0;
  for (const auto& [index, value] : expect) {
    float z = 0;
    for (; at <= index; ++at) z = ns.next();
    EXPECT_NEAR(z, value, 4 * 0x1.0p-23 * std::max(1.0, std::abs(value))) << "index " << index;
  }
}

TEST(NormalStream, FillInAnyChunksEqualsNext) {
  Rng p1(9, 1), p2(9, 1);
  NormalStream a(p1), b(p2);
  std::vector<float> chunked(1000);
  std::size_t pos = 0;
  for (std::size_t len : {1u, 7u, 128u, 3u, 300u, 129u, 432u}) {
    b.fill(chunked.data() + pos, len);
    pos += len;
  }
  ASSERT_EQ(pos, chunked.size());
  for (std::size_t i = 0; i < chunked.size(); ++i) ASSERT_EQ(a.next(), chunked[i]) << i;
}

TEST(NormalStream, OwnLogSinCosAgainstLibm) {
  double worst_ln = 0, worst_trig = 0;
  for (std::uint32_t k = 1; k < (1u << 24); k += 61) {
    const double ref = std::log(k * 0x1.0p-24);
    worst_ln = std::max(worst_ln, std::abs(detail::ln_u24(k) - ref) / std::abs(ref));
  }
  EXPECT_EQ(detail::ln_u24(1u << 24), 0.0f);  // ln 1: r = 0 exactly
  for (std::uint32_t j = 0; j < (1u << 24); j += 59) {
    float s = 0, c = 0;
    detail::sincos_turn24(j, s, c);
    const double a = 2 * std::numbers::pi * j * 0x1.0p-24;
    worst_trig = std::max({worst_trig, std::abs(s - std::sin(a)), std::abs(c - std::cos(a))});
  }
  // Measured over every k and j: 2.1e-7 relative (ln), 8.5e-8 absolute (sin, cos).
  EXPECT_LE(worst_ln, 4 * 0x1.0p-23);
  EXPECT_LE(worst_trig, 2 * 0x1.0p-23);
}

TEST(NormalStream, MomentsAndKolmogorovSmirnov) {
  Rng parent(1, 0);
  NormalStream ns(parent);
  const std::size_t n = 200000;
  std::vector<double> z(n);
  double s = 0, s2 = 0, s4 = 0;
  for (auto& v : z) {
    v = ns.next();
    s += v;
    s2 += v * v;
    s4 += v * v * v * v;
  }
  EXPECT_NEAR(s / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(s2 / n, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));  // Var(z^4) = 105 - 9 = 96
  std::sort(z.begin(), z.end());
  double d = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double cdf = 0.5 * std::erfc(-z[i] / std::numbers::sqrt2);
    d = std::max({d, cdf - double(i) / n, double(i + 1) / n - cdf});
  }
  EXPECT_LT(d, 1.95 / std::sqrt(double(n)));  // KS critical value at alpha = 0.001
  Rng q1(1, 0), q2(1, 1);
  NormalStream a(q1), b(q2);
  int same = 0;
  for (int i = 0; i < 1000; ++i) same += a.next() == b.next();
  EXPECT_LT(same, 5);  // streams differ
}

}  // namespace

// ---- kernels/vec.hpp: the vectorisable helpers against the plain definitions -------------
TEST(Vec, ExpF32IsWithinTwoUlpOfStdExp) {
  float worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.00731f) {
    const double ref = std::exp(static_cast<double>(x));
    const double got = rosetta::kernels::vec::exp_f32(x);
    const double ulp = std::nextafter(static_cast<float>(ref), INFINITY) - static_cast<float>(ref);
    worst = std::max(worst, static_cast<float>(std::fabs(got - ref) / ulp));
  }
  EXPECT_LE(worst, 2.0f) << "worst error in units of float spacing";
  EXPECT_EQ(rosetta::kernels::vec::exp_f32(0.0f), 1.0f);
}

TEST(Vec, ExpF32EdgeCases) {
  using rosetta::kernels::vec::exp_f32;
  EXPECT_TRUE(std::isnan(exp_f32(std::nanf(""))));
  EXPECT_LE(exp_f32(-1000.0f), 1e-44f);  // clamped to exp(-104): a denormal at most
  EXPECT_GE(exp_f32(-1000.0f), 0.0f);
  EXPECT_NEAR(exp_f32(-100.0f), std::exp(-100.0f), 1e-45f);  // denormal range
  for (float x : {88.0f, 88.5f, 88.7f})                      // k = 128: near FLT_MAX, finite
    EXPECT_NEAR(exp_f32(x) / std::exp(x), 1.0f, 3e-7f) << x;
}

TEST(Vec, ReductionsMatchPlainLoops) {
  rosetta::Rng rng(3);
  for (std::size_t n : {1u, 7u, 16u, 17u, 64u, 1000u}) {
    std::vector<double> x(n);
    for (auto& v : x) v = rng.normal();
    double ss = 0, mx = x[0], es = 0;
    for (double v : x) {
      ss += v * v;
      mx = std::max(mx, v);
    }
    for (double v : x) es += std::exp(v - mx);
    EXPECT_NEAR(rosetta::kernels::vec::sum_squares(x.data(), n), ss, 1e-12 * ss) << n;
    EXPECT_EQ(rosetta::kernels::vec::max(x.data(), n), mx) << n;
    std::vector<double> y = x;
    EXPECT_NEAR(rosetta::kernels::vec::exp_sub_sum(y.data(), n, mx), es, 1e-12 * es) << n;
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(y[i], std::exp(x[i] - mx));
  }
}

#ifdef ROSETTA_VEC16
namespace {
bool same_bits(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}
}  // namespace

// The explicit 16-lane paths must give exactly the scalar helpers' values (not just close):
// the model's results must not depend on which of the two ran.
TEST(Vec, Exp16IsBitIdenticalToExpF32) {
  namespace v = rosetta::kernels::vec;
  std::vector<float> xs = {0.0f,    -0.0f,   1.0f,     -1.0f,  88.72f, 88.73f,   100.0f,    -103.9f,
                           -104.0f, -104.1f, -1000.0f, 1e-30f, -87.5f, INFINITY, -INFINITY, NAN};
  for (float x = -110.0f; x <= 90.0f; x += 0.0137f) xs.push_back(x);
  // results in the denormal range (one rounding of p 2^k in both versions) and near overflow
  for (float x = -104.5f; x <= -86.0f; x += 0.0009f) xs.push_back(x);
  for (float x = 87.0f; x <= 89.0f; x += 0.0007f) xs.push_back(x);
  while (xs.size() % 16) xs.push_back(0.5f);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < xs.size(); i += 16) {
    const v::f16 e = v::exp16(v::load16(xs.data() + i));
    for (std::size_t j = 0; j < 16; ++j)
      if (!same_bits(e[j], v::exp_f32(xs[i + j])) && !(std::isnan(e[j]) && std::isnan(xs[i + j])))
        ++bad;
  }
  EXPECT_EQ(bad, 0u) << "of " << xs.size();
}

// Each value of swiglu16 / swiglu_backward16 must not depend on whether it fell in a whole
// 16-lane step or in the masked tail (rows of any length; n = 1 is all tail): a scalar tail
// contracted the backward's products into FMAs differently and failed here. The forward is
// also the scalar formula exactly (a multiply and a division of exp_f32).
TEST(Vec, Swiglu16IsTheSameInTheTail) {
  namespace v = rosetta::kernels::vec;
  rosetta::Rng rng(5);
  std::size_t bad = 0, checked = 0;
  for (std::size_t n : {1u, 15u, 16u, 17u, 33u, 256u}) {
    std::vector<float> g(n), u(n), da(n), a(n), dg(n), du(n);
    for (std::size_t j = 0; j < n; ++j) {
      // mostly |g| < 8, some far out (exp's clamped range, the saturated sigmoid)
      const double scale = j % 7 == 3 ? 60.0 : 3.0;
      g[j] = static_cast<float>(rng.normal() * scale);
      u[j] = static_cast<float>(rng.normal());
      da[j] = static_cast<float>(rng.normal());
    }
    v::swiglu16(a.data(), g.data(), u.data(), n);
    v::swiglu_backward16(dg.data(), du.data(), da.data(), g.data(), u.data(), n);
    for (std::size_t j = 0; j < n; ++j) {
      float a1, dg1, du1;
      v::swiglu16(&a1, &g[j], &u[j], 1);
      v::swiglu_backward16(&dg1, &du1, &da[j], &g[j], &u[j], 1);
      bad += !same_bits(a[j], g[j] * u[j] / (1.0f + v::exp_f32(-g[j])));
      bad += !same_bits(a[j], a1) + !same_bits(dg[j], dg1) + !same_bits(du[j], du1);
      checked += 4;
    }
  }
  EXPECT_EQ(bad, 0u) << "of " << checked;
}

// The cross-entropy's explicit-vector helpers give the scalar helpers' values exactly.
TEST(Vec, ExpSum16AndExpScale16AreBitIdenticalToTheScalarHelpers) {
  namespace v = rosetta::kernels::vec;
  rosetta::Rng rng(13);
  std::size_t bad = 0, checked = 0;
  for (std::size_t n : {1u, 2u, 15u, 16u, 17u, 31u, 33u, 64u, 1000u, 1001u}) {
    std::vector<float> x(n), d(n);
    for (auto& e : x) e = static_cast<float>(rng.normal() * 4.0);
    x[n / 2] = -200.0f;  // exp's clamped range
    const float m = v::max(x.data(), n);
    bad += !same_bits(v::exp_sum16(x.data(), n, m), v::exp_sum(x.data(), n, m));
    v::exp_scale16(d.data(), x.data(), n, m, 0.125f);
    for (std::size_t j = 0; j < n; ++j) bad += !same_bits(d[j], 0.125f * v::exp_f32(x[j] - m));
    v::exp_scale16(x.data(), x.data(), n, m, 0.125f);  // in place, as the backward runs
    for (std::size_t j = 0; j < n; ++j) bad += !same_bits(x[j], d[j]);
    checked += 1 + 2 * n;
  }
  EXPECT_EQ(bad, 0u) << "of " << checked;
}

TEST(Vec, Softmax16IsBitIdenticalToTheScalarHelpers) {
  namespace v = rosetta::kernels::vec;
  rosetta::Rng rng(11);
  std::size_t cases = 0;
  for (std::size_t n = 0; n <= 70; ++n)
    for (std::size_t extra : {0u, 1u, 5u, 16u, 40u}) {
      const std::size_t cols = std::max<std::size_t>(n + extra, 1);
      for (int kind = 0; kind < 4; ++kind) {
        std::vector<float> x(cols);
        for (auto& e : x) e = static_cast<float>(4 * rng.normal());
        if (kind == 1 && n > 2) x[n / 2] = -INFINITY;  // a masked score
        if (kind == 2 && n > 1) x[n - 1] = 1e30f;      // one dominant entry
        if (kind == 3 && n > 0) x[n / 3] = NAN;
        std::vector<float> want = x, got = x;
        if (n > 0) {  // the helpers' path (softmax_row_prefix before the 16-lane version)
          const float m = v::max(want.data(), n);
          const float inv = 1.0f / v::exp_sub_sum(want.data(), n, m);
          for (std::size_t j = 0; j < n; ++j) want[j] *= inv;
        }
        for (std::size_t j = n; j < cols; ++j) want[j] = 0.0f;
        v::softmax_prefix16(got.data(), n, cols);
        for (std::size_t j = 0; j < cols; ++j)
          ASSERT_TRUE(same_bits(got[j], want[j]) || (std::isnan(got[j]) && std::isnan(want[j])))
              << "n " << n << " cols " << cols << " kind " << kind << " j " << j << ": " << got[j]
              << " vs " << want[j];
        ++cases;
      }
    }
  EXPECT_EQ(cases, 71u * 5 * 4);
}

// sum_squares_rows: the interleaved rows give sum_squares' values bit for bit (the same
// partial sums in the same order), for row lengths around whole vectors, with a NaN and an
// infinity; bytes between the rows are not read into the sums.
TEST(Vec, SumSquaresRowsIsBitIdenticalToSumSquares) {
  namespace v = rosetta::kernels::vec;
  constexpr std::size_t R = 4;
  rosetta::Rng rng(13);
  for (std::size_t n : {1u, 5u, 15u, 16u, 17u, 31u, 32u, 33u, 64u, 100u, 256u}) {
    const std::size_t stride = n + 7;
    std::vector<float> x(R * stride);
    for (auto& e : x) e = static_cast<float>(3 * rng.normal());
    if (n > 3) x[2 * stride + n / 2] = NAN;
    if (n > 3) x[3 * stride + n / 3] = INFINITY;
    float got[R];
    v::sum_squares_rows<R>(x.data(), stride, n, got);
    for (std::size_t r = 0; r < R; ++r) {
      const float want = v::sum_squares(x.data() + r * stride, n);
      EXPECT_TRUE(same_bits(got[r], want) || (std::isnan(got[r]) && std::isnan(want)))
          << "n " << n << " row " << r << ": " << got[r] << " vs " << want;
    }
  }
}

/// Row-major float RMSNorm, whichever path a width takes (rows of 64 and 256 scale with g in
/// registers, sums four rows at a time), gives the bits of its definition on each row:
/// r = 1 / sqrt(sum_squares / H + eps), y = (x r) g — rows strided, counts not multiples of 4.
TEST(Vec, RmsNormForwardIsBitIdenticalToItsDefinition) {
  namespace v = rosetta::kernels::vec;
  rosetta::Rng rng(21);
  const float eps = 1e-5f;
  for (std::size_t H : {48u, 64u, 80u, 256u})
    for (std::size_t R : {1u, 3u, 4u, 5u, 9u}) {
      const std::size_t xs = H + 16, ys = H + 32;
      std::vector<float> x(R * xs), y(R * ys, -1.f), g(H), rstd(R);
      for (auto& e : x) e = static_cast<float>(2 * rng.normal());
      for (auto& e : g) e = static_cast<float>(1 + 0.1 * rng.normal());
      rosetta::kernels::rmsnorm_forward(
          rosetta::MatrixView<float, rosetta::RowMajor>(y.data(), R, H, ys), std::span<float>(rstd),
          rosetta::MatrixView<const float, rosetta::RowMajor>(x.data(), R, H, xs),
          std::span<const float>(g), eps);
      for (std::size_t t = 0; t < R; ++t) {
        const float r =
            1.0f / std::sqrt(v::sum_squares(x.data() + t * xs, H) / static_cast<float>(H) + eps);
        EXPECT_TRUE(same_bits(rstd[t], r)) << "H " << H << " row " << t;
        for (std::size_t j = 0; j < H; ++j)
          ASSERT_TRUE(same_bits(y[t * ys + j], x[t * xs + j] * r * g[j]))
              << "H " << H << " R " << R << " row " << t << " col " << j;
        for (std::size_t j = H; j < ys && t + 1 < R; ++j)
          ASSERT_EQ(y[t * ys + j], -1.f) << "written past the row";
      }
    }
}

// softmax_prefix16_rows interleaves R rows' steps (branch-free on n when every row has
// n <= 32 <= cols, or cols < 16): each row must come out as softmax_prefix16 alone leaves it,
// for causal runs of n (attention), equal n (the router), rows too long for the short path,
// masked scores and NaNs; bytes past the last row untouched.
TEST(Vec, SoftmaxRowsIsBitIdenticalRowByRow) {
  namespace v = rosetta::kernels::vec;
  constexpr std::size_t R = 4;
  rosetta::Rng rng(12);
  std::size_t cases = 0;
  for (std::size_t cols : {1u, 3u, 4u, 5u, 15u, 16u, 17u, 31u, 32u, 33u, 40u, 70u})
    for (int pattern = 0; pattern < 3; ++pattern)
      for (std::size_t n0 = 1; n0 <= cols; ++n0) {
        std::size_t n[R];
        bool fits = true;
        for (std::size_t r = 0; r < R; ++r) {
          n[r] = pattern == 0 ? n0 + r : pattern == 1 ? n0 : cols - (n0 + 3 * r) % cols;
          fits = fits && n[r] >= 1 && n[r] <= cols;
        }
        if (!fits) continue;
        const std::size_t stride = cols + 3, len = R * stride;
        std::vector<float> x(len + 8);
        for (auto& e : x) e = static_cast<float>(4 * rng.normal());
        if (n0 % 5 == 2) x[stride + n[1] / 2] = -INFINITY;  // a masked score in row 1
        if (n0 % 7 == 3) x[2 * stride + n[2] / 3] = NAN;    // a NaN in row 2
        std::vector<float> want = x, got = x;
        for (std::size_t r = 0; r < R; ++r)
          v::softmax_prefix16(want.data() + r * stride, n[r], cols);
        v::softmax_prefix16_rows<R>(got.data(), stride, n, cols);
        for (std::size_t j = 0; j < want.size(); ++j)
          ASSERT_TRUE(same_bits(got[j], want[j]) || (std::isnan(got[j]) && std::isnan(want[j])))
              << "cols " << cols << " pattern " << pattern << " n0 " << n0 << " index " << j << ": "
              << got[j] << " vs " << want[j];
        ++cases;
      }
  EXPECT_GT(cases, 500u);
}
#endif
