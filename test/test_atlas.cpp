// The kernel atlas: every registered (kernel, backend) against the naive reference on sizes
// with awkward tails, the registry's coverage, a few known answers of the reference itself,
// and the distribution of the random-number kernels.
//
// Tolerances live with each kernel (Kernel::tol in include/rosetta/atlas/kernels.hpp, with
// the reason per family); in short:
//   exact (bit-identical): elementwise add/mul/abs/clamp/copy/scale, layout, bf16, int8,
//     rand_uniform (the same integer hash and exact conversions in every backend);
//   close (rel + abs, fixed): FMA contraction (fma, axpy, outer: <= 1 ulp of |a b| + |c|),
//     transcendentals (libm vs SIMD polynomials, a few ulp each; 2e-5 relative leaves
//     about two orders of magnitude of margin), AdamW, rand_normal (the same uniform stream,
//     libm vs SIMD log/cos/sin);
//   summed (rel + abs, times sqrt(r) for sums of r terms): reductions, dot, norms, softmax,
//     attention, losses, gemm/gemv, prefix sums. Reordered float sums differ like a random
//     walk of rounding errors, ~sqrt(r) ulp of the partial sums, so the bound grows with
//     sqrt(r). Their inputs are positive where the result is a plain sum, so |ref| is the
//     right scale for a relative bound.
// Each case prints its worst error as a fraction of its tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <numeric>
#include <rosetta/atlas/atlas.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace rosetta::atlas;

/// 1 and 7 are shorter than a vector, 33 and 1000 leave tails, 4099 is prime-ish and beyond
/// one row of the row kernels, 70001 leaves a tail after many vectors.
constexpr std::size_t kSizes[] = {1, 7, 33, 1000, 4099, 70001};
constexpr std::uint64_t kSeed = 20240607;

struct Case {
  const Kernel* kernel;
  Backend backend;
};

std::vector<Case> parity_cases() {
  std::vector<Case> out;
  for (const auto& k : registry().kernels())
    for (Backend b : available_backends())
      if (b != Backend::naive && k.has(b)) out.push_back({&k, b});
  return out;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.kernel->name) + "_" + std::string(name(info.param.backend));
}

/// Compares one output; returns the worst |x - ref| / tolerance (0 for exact matches).
struct Comparison {
  double worst = 0;  // max over elements of |x - ref| / allowed (inf when exact but differs)
  std::size_t worst_at = 0;
  double got = 0, want = 0;
};

Comparison compare_floats(const float* got, const float* ref, std::size_t n, const Tolerance& t,
                          double growth) {
  Comparison c;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = got[i], r = ref[i];
    if (std::isnan(x) && std::isnan(r)) continue;
    const double err = std::fabs(x - r);
    const double allowed = (t.abs + t.rel * std::fabs(r)) * growth;
    double ratio = 0;
    if (std::isnan(err) || std::isinf(err))
      ratio = std::numeric_limits<double>::infinity();
    else if (err > 0)
      ratio = allowed > 0 ? err / allowed : std::numeric_limits<double>::infinity();
    if (ratio > c.worst) {
      c.worst = ratio;
      c.worst_at = i;
      c.got = x;
      c.want = r;
    }
  }
  return c;
}

template <class I>
Comparison compare_ints(const I* got, const I* ref, std::size_t n, int max_diff) {
  Comparison c;
  for (std::size_t i = 0; i < n; ++i) {
    const int diff = std::abs(static_cast<int>(got[i]) - static_cast<int>(ref[i]));
    const double ratio = diff == 0      ? 0
                         : max_diff > 0 ? static_cast<double>(diff) / max_diff
                                        : std::numeric_limits<double>::infinity();
    if (ratio > c.worst) {
      c.worst = ratio;
      c.worst_at = i;
      c.got = got[i];
      c.want = ref[i];
    }
  }
  return c;
}

/// Runs `backend` and naive on every size and checks every declared output; returns the
/// worst error / tolerance seen.
double check_against_naive(const Kernel& k, Backend backend, const std::string& label) {
  double worst_overall = 0;
  for (std::size_t n : kSizes) {
    Buffers ref = k.make(n, kSeed), got = k.make(n, kSeed);
    k.run[index(Backend::naive)](ref);
    k.run[index(backend)](got);
    const double g =
        k.tol.grows ? std::sqrt(static_cast<double>(std::max<std::size_t>(1, ref.shape.reduce)))
                    : 1.0;
    struct Out {
      const char* what;
      Comparison c;
    };
    std::vector<Out> outs;
    auto floats = [&](std::uint32_t bit, const char* what, const AVec<float>& x,
                      const AVec<float>& r) {
      if (!(k.outputs & bit)) return;
      EXPECT_EQ(x.size(), r.size()) << what;
      if (x.size() == r.size())
        outs.push_back({what, compare_floats(x.data(), r.data(), r.size(), k.tol, g)});
    };
    floats(kOutA, "a", got.a, ref.a);
    floats(kOutB, "b", got.b, ref.b);
    floats(kOutC, "c", got.c, ref.c);
    floats(kOutD, "d", got.d, ref.d);
    floats(kOutE, "e", got.e, ref.e);
    if (k.outputs & kOutS0)
      outs.push_back({"s[0]", compare_floats(&got.s[0], &ref.s[0], 1, k.tol, g)});
    if (k.outputs & kOutS1)
      outs.push_back({"s[1]", compare_floats(&got.s[1], &ref.s[1], 1, k.tol, g)});
    if (k.outputs & kOutH)
      outs.push_back({"h", compare_ints(got.h.data(), ref.h.data(), ref.h.size(), 0)});
    if (k.outputs & kOutQ)
      outs.push_back({"q", compare_ints(got.q.data(), ref.q.data(), ref.q.size(), k.tol.int_diff)});
    EXPECT_FALSE(outs.empty()) << "kernel " << k.name << " declares no outputs";
    for (const auto& o : outs) {
      worst_overall = std::max(worst_overall, o.c.worst);
      EXPECT_LE(o.c.worst, 1.0) << k.name << " on " << label << ", n=" << n << " (shape "
                                << ref.shape.str() << "), output " << o.what << "[" << o.c.worst_at
                                << "]: got " << o.c.got << ", naive " << o.c.want
                                << ", error/tolerance " << o.c.worst << " (tolerance rel "
                                << k.tol.rel << " abs " << k.tol.abs
                                << (k.tol.grows ? " x sqrt(r)" : "") << ": " << k.tol.why << ")";
    }
  }
  return worst_overall;
}

class AtlasParity : public ::testing::TestWithParam<Case> {};

TEST_P(AtlasParity, MatchesNaive) {
  const Kernel& k = *GetParam().kernel;
  const Backend backend = GetParam().backend;
  const double worst = check_against_naive(k, backend, std::string(name(backend)));
  std::cout << "[ atlas    ] " << k.name << " / " << name(backend)
            << ": worst error / tolerance over all sizes = " << worst << "\n";
}

INSTANTIATE_TEST_SUITE_P(Atlas, AtlasParity, ::testing::ValuesIn(parity_cases()), case_name);

// ---- the registry ---------------------------------------------------------------------------
TEST(AtlasRegistry, CoversAtLeast40KernelsIn12Domains) {
  const auto& reg = registry();
  EXPECT_GE(reg.kernels().size(), 40u);
  EXPECT_GE(reg.domains().size(), 12u);
  const std::set<std::string_view> want = {
      "reductions", "elementwise", "activations", "softmax",     "normalisation",
      "attention",  "losses",      "optimisers",  "linalg",      "layout",
      "scans",      "dot",         "random",      "quantisation"};
  for (auto d : want)
    EXPECT_NE(std::find(reg.domains().begin(), reg.domains().end(), d), reg.domains().end()) << d;
}

TEST(AtlasRegistry, EveryKernelIsCompleteAndHasNaive) {
  for (const auto& k : registry().kernels()) {
    SCOPED_TRACE(std::string(k.name));
    EXPECT_TRUE(k.has(Backend::naive));
    EXPECT_FALSE(k.domain.empty());
    EXPECT_FALSE(k.summary.empty());
    EXPECT_FALSE(k.shape_rule.empty());
    EXPECT_NE(k.outputs, 0u);
    EXPECT_FALSE(k.tol.why.empty());
    for (std::size_t n : {std::size_t{1}, std::size_t{1024}, std::size_t{1} << 24}) {
      const Shape s = k.shape(n);
      EXPECT_EQ(s.n, n);
      EXPECT_GE(s.len, 1u);
      EXPECT_GT(k.bytes(s), 0.0);
      EXPECT_GE(k.flops(s), 0.0);
    }
    EXPECT_EQ(registry().find(k.name), &k);
  }
  EXPECT_EQ(registry().find("no_such_kernel"), nullptr);
}

TEST(AtlasRegistry, EveryBackendOfThisBuildIsUsed) {
  for (Backend b : available_backends()) {
    std::size_t count = 0;
    for (const auto& k : registry().kernels()) count += k.has(b) ? 1 : 0;
    EXPECT_GT(count, 0u) << name(b);
    std::cout << "[ atlas    ] backend " << name(b) << ": " << count << " kernels\n";
  }
  EXPECT_EQ(backend_from_name("hwy_dynamic"), Backend::hwy_dynamic);
  EXPECT_FALSE(backend_from_name("cuda").has_value());
}

#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
TEST(AtlasRegistry, HighwayDispatchPicksACompiledTarget) {
  const std::string chosen = hwy_dynamic_target(), compiled = hwy_dynamic_compiled_targets();
  std::cout << "[ atlas    ] hwy static target " << hwy_static_target() << "; dynamic dispatch "
            << chosen << " out of {" << compiled << "}\n";
  EXPECT_FALSE(chosen.empty());
  EXPECT_NE((" " + compiled + " ").find(" " + chosen + " "), std::string::npos);
}

// The parity cases above exercise the target dispatch picks on this CPU; this runs every
// other compiled target the CPU can execute (e.g. AVX3, AVX2, SSE4, SSSE3, SCALAR), so the
// code paths other machines would take are checked here too.
TEST(AtlasHwyDynamic, EveryRunnableTargetMatchesNaive) {
  const auto targets = hwy_dynamic_runnable_targets();
  ASSERT_FALSE(targets.empty());
  for (const auto& t : targets) {
    ASSERT_TRUE(hwy_dynamic_force_target(t)) << t;
    EXPECT_EQ(hwy_dynamic_target(), t);
    double worst = 0;
    for (const auto& k : registry().kernels())
      if (k.has(Backend::hwy_dynamic))
        worst = std::max(worst, check_against_naive(k, Backend::hwy_dynamic, "hwy_dynamic/" + t));
    std::cout << "[ atlas    ] hwy_dynamic forced to " << t
              << ": worst error / tolerance over all kernels and sizes = " << worst << "\n";
  }
  ASSERT_TRUE(hwy_dynamic_force_target(""));
}
#endif

// ---- known answers of the reference ----------------------------------------------------------
Buffers run_naive(std::string_view kernel, std::size_t n, std::uint64_t seed = kSeed) {
  const Kernel* k = registry().find(kernel);
  EXPECT_NE(k, nullptr) << kernel;
  Buffers b = k->make(n, seed);
  k->run[index(Backend::naive)](b);
  return b;
}

TEST(AtlasNaive, GemmMatchesLongDouble) {
  const Buffers b = run_naive("gemm", 70001);  // 66 x 66 x 66
  const auto& s = b.shape;
  for (std::size_t i = 0; i < s.rows; ++i)
    for (std::size_t j = 0; j < s.cols; ++j) {
      long double acc = 0;
      for (std::size_t p = 0; p < s.inner; ++p)
        acc += static_cast<long double>(b.a[i * s.inner + p]) * b.b[p * s.cols + j];
      ASSERT_NEAR(b.c[i * s.cols + j], static_cast<double>(acc), 1e-5);
    }
}

TEST(AtlasNaive, SoftmaxRowsSumToOneAndCrossEntropyGradientRowsToZero) {
  const Buffers sm = run_naive("softmax", 4099);
  const Buffers ce = run_naive("cross_entropy", 4099);
  for (std::size_t r = 0; r < sm.shape.rows; ++r) {
    double s = 0, g = 0;
    for (std::size_t j = 0; j < sm.shape.cols; ++j) {
      s += sm.b[r * sm.shape.cols + j];
      g += ce.b[r * ce.shape.cols + j];
    }
    EXPECT_NEAR(s, 1.0, 1e-5);
    EXPECT_NEAR(g, 0.0, 1e-6);
  }
  EXPECT_GT(ce.s[0], 0.0f);
}

TEST(AtlasNaive, FlashAttentionEqualsMaterialisedAttention) {
  for (std::size_t n : {1000u, 70001u, 300000u}) {  // S = 7, 66, 136
    const Buffers causal = run_naive("sdpa_causal", n), flash = run_naive("sdpa_flash", n);
    ASSERT_EQ(causal.d.size(), flash.d.size());
    for (std::size_t i = 0; i < causal.d.size(); ++i)
      ASSERT_NEAR(flash.d[i], causal.d[i], 2e-6) << "n=" << n << " i=" << i;
  }
}

TEST(AtlasNaive, LayoutRoundTripsAndScanTotals) {
  const Buffers t = run_naive("transpose", 4099);  // 64 x 64 (n = 4099: r = 64, c = 64)
  for (std::size_t i = 0; i < t.shape.rows; ++i)
    for (std::size_t j = 0; j < t.shape.cols; ++j)
      ASSERT_EQ(t.b[j * t.shape.rows + i], t.a[i * t.shape.cols + j]);
  const Buffers soa = run_naive("aos_to_soa", 1000);
  for (std::size_t i = 0; i < soa.shape.rows; ++i) {
    ASSERT_EQ(soa.b[i], soa.a[4 * i]);
    ASSERT_EQ(soa.e[i], soa.a[4 * i + 3]);
  }
  const Buffers ps = run_naive("prefix_sum", 1000);
  EXPECT_NEAR(ps.b.back(), std::accumulate(ps.a.begin(), ps.a.end(), 0.0), 1e-3);
}

TEST(AtlasNaive, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16_from_float(1.0f), 0x3F80);
  EXPECT_EQ(bf16_from_float(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie -> even
  EXPECT_EQ(bf16_from_float(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie -> even
  EXPECT_EQ(bf16_from_float(std::bit_cast<float>(0x3F808001u)), 0x3F81);  // above the tie
  EXPECT_TRUE(std::isnan(float_from_bf16(bf16_from_float(std::nanf("")))));
  EXPECT_EQ(float_from_bf16(0xC2C8), -100.0f);
}

TEST(AtlasNaive, Int8QuantisationRoundTripsWithinHalfAStep) {
  const Buffers q = run_naive("f32_to_int8", 4099);
  const float scale = q.s[0];
  for (std::size_t i = 0; i < q.shape.len; ++i)
    ASSERT_LE(std::fabs(static_cast<float>(q.q[i]) * scale - q.a[i]), 0.5f * scale * 1.0001f);
}

// ---- random numbers: distributions, for every backend that generates them --------------------
/// Kolmogorov-Smirnov statistic of the sample against a continuous CDF.
template <class Cdf>
double ks_statistic(std::vector<double> x, Cdf cdf) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double d = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double f = cdf(x[i]);
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  return d;
}

TEST(AtlasRandom, DistributionsOfEveryBackend) {
  // n = 70001 samples. KS critical value at alpha = 0.001: 1.95 / sqrt(n) = 0.0074. Mean and
  // variance within 5 standard errors. The streams are deterministic, so this is a fixed
  // check that the generator (shared by all backends) and each transform are sound.
  constexpr std::size_t n = 70001;
  const double ks_bound = 1.95 / std::sqrt(static_cast<double>(n));
  for (const char* kernel : {"rand_uniform", "rand_normal"}) {
    const Kernel& k = *registry().find(kernel);
    const bool normal = std::string_view(kernel) == "rand_normal";
    for (Backend backend : available_backends()) {
      if (!k.has(backend)) continue;
      SCOPED_TRACE(std::string(kernel) + " / " + std::string(name(backend)));
      Buffers b = k.make(n, kSeed);
      k.run[index(backend)](b);
      const std::vector<float> first(b.a.begin(), b.a.end());
      std::vector<double> x(b.a.begin(), b.a.end());
      double mean = 0, var = 0;
      for (double v : x) mean += v;
      mean /= n;
      for (double v : x) var += (v - mean) * (v - mean);
      var /= n - 1;
      const double want_mean = normal ? 0.0 : 0.5, want_var = normal ? 1.0 : 1.0 / 12;
      EXPECT_NEAR(mean, want_mean, 5 * std::sqrt(want_var / n));
      EXPECT_NEAR(var, want_var, 5 * want_var * std::sqrt(2.0 / n));
      const double ks =
          normal ? ks_statistic(x, [](double v) { return 0.5 * std::erfc(-v / std::sqrt(2.0)); })
                 : ks_statistic(x, [](double v) { return std::clamp(v, 0.0, 1.0); });
      EXPECT_LT(ks, ks_bound);
      std::cout << "[ atlas    ] " << kernel << " / " << name(backend) << ": mean " << mean
                << " var " << var << " KS " << ks << " (bound " << ks_bound << ")\n";
      if (!normal) {
        for (double v : x) {
          ASSERT_TRUE(v >= 0.0 && v < 1.0) << v;
        }
      }
      // The stream advances: a second call gives different numbers.
      k.run[index(backend)](b);
      std::size_t same = 0;
      for (std::size_t i = 0; i < n; ++i) same += b.a[i] == first[i] ? 1 : 0;
      EXPECT_LT(same, n / 100);
    }
  }
}

}  // namespace
