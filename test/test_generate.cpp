// Sampling strategies and KV-cache generation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "policies.hpp"

namespace {
using namespace rosetta;

Config small_config() {
  Config c = Config::tiny();
  c.vocab_size = 97;
  c.max_seq_len = 48;
  c.n_kv_heads = 2;
  return c;
}

template <class P>
class Generation : public ::testing::Test {};
TYPED_TEST_SUITE(Generation, test::Policies, test::PolicyName);

// The KV cache must reproduce full recomputation: same greedy tokens, same logits rows.
TYPED_TEST(Generation, KvCacheEqualsFullRecomputation) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  const Transformer<TypeParam> model(small_config(), 7);
  const std::vector<std::int32_t> prompt{3, 14, 15, 92, 65};
  const std::size_t max_len = 40;
  EXPECT_EQ(generate_greedy(model, prompt, max_len),
            generate_full_recompute(model, prompt, max_len));

  // logits of each decoded position against a full forward over the same prefix
  const auto seq = generate_greedy(model, prompt, max_len);
  KVCache<T, L> cache(model.config(), 1, max_len);
  auto ws_c = model.make_workspace(), ws_f = model.make_workspace();
  model.forward_cached(TokenBatch{std::span(seq).first(prompt.size()), 1, prompt.size()}, cache,
                       ws_c);
  const T tol = std::is_same_v<T, float> ? T(2e-5) : T(1e-12);
  for (std::size_t pos = prompt.size(); pos < max_len; pos += 7) {
    while (cache.length() < pos)
      model.forward_cached(TokenBatch{std::span(seq).subspan(cache.length(), 1), 1, 1}, cache,
                           ws_c);
    auto inc = model.forward_cached(TokenBatch{std::span(seq).subspan(pos, 1), 1, 1}, cache, ws_c);
    auto full = model.forward(TokenBatch{std::span(seq).first(pos + 1), 1, pos + 1}, ws_f);
    T num = 0, den = 0;
    for (std::size_t j = 0; j < inc.cols(); ++j) {
      const T d = inc(0, j) - full(pos, j);
      num += d * d;
      den += full(pos, j) * full(pos, j);
    }
    EXPECT_LE(std::sqrt(num / den), tol) << "position " << pos;
  }
}

// Same seed and strategy give the same tokens on every backend and layout.
TYPED_TEST(Generation, SameSeedSameTokensAsReferencePolicy) {
  using T = typename TypeParam::scalar;
  using Ref = Policy<T, RowMajor, backend::Naive>;
  const Transformer<TypeParam> model(small_config(), 11);
  const Transformer<Ref> ref(small_config(), 11);
  const std::vector<std::int32_t> prompt{1, 2, 3};
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    EXPECT_EQ(generate_sample(model, prompt, 30, 0.8, seed),
              generate_sample(ref, prompt, 30, 0.8, seed));
    EXPECT_EQ(generate_topk(model, prompt, 30, 5, 1.0, seed),
              generate_topk(ref, prompt, 30, 5, 1.0, seed));
    EXPECT_EQ(generate_topp(model, prompt, 30, 0.9, 1.0, seed),
              generate_topp(ref, prompt, 30, 0.9, 1.0, seed));
    EXPECT_EQ(generate_sample(model, prompt, 30, 0.8, seed),
              generate_sample(model, prompt, 30, 0.8, seed));
  }
}

std::vector<double> random_logits(std::size_t V, std::uint64_t seed, double scale = 2.0) {
  Rng r(seed);
  std::vector<double> l(V);
  for (auto& x : l) x = scale * r.normal();
  return l;
}

TEST(Sampling, GreedyTiesPickLowestId) {
  std::vector<double> l{0.5, 2.0, 2.0, 1.0};
  Rng rng(1);
  SamplerScratch s;
  EXPECT_EQ(Greedy{}.pick_token(std::span<const double>(l), rng, s), 1);
  EXPECT_EQ(Temperature(0.0).pick_token(std::span<const double>(l), rng, s), 1);  // t = 0: greedy
}

TEST(Sampling, TopKNeverLeavesTheKLargest) {
  SamplerScratch s;
  for (std::uint64_t trial = 0; trial < 200; ++trial) {
    const auto l = random_logits(50, trial);
    std::vector<std::int32_t> order(50);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return l[a] > l[b]; });
    const std::int64_t k = 1 + static_cast<std::int64_t>(trial % 7);
    Rng rng(trial);
    for (int draw = 0; draw < 20; ++draw) {
      const auto tok = TopK(k, 1.5).pick_token(std::span<const double>(l), rng, s);
      EXPECT_NE(std::find(order.begin(), order.begin() + k, tok), order.begin() + k)
          << "token " << tok << " outside the top " << k;
    }
  }
}

TEST(Sampling, TopPNeverLeavesTheNucleus) {
  SamplerScratch s;
  for (std::uint64_t trial = 0; trial < 200; ++trial) {
    const auto l = random_logits(40, 1000 + trial);
    const double p = 0.05 + 0.9 * (trial % 10) / 10.0;
    // nucleus computed here independently: softmax, sort descending, smallest prefix >= p
    std::vector<double> pr(l.size());
    const double m = *std::max_element(l.begin(), l.end());
    double z = 0;
    for (std::size_t j = 0; j < l.size(); ++j) z += pr[j] = std::exp(l[j] - m);
    for (auto& x : pr) x /= z;
    std::vector<std::int32_t> order(l.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return pr[a] > pr[b]; });
    std::size_t n = 0;
    double mass = 0;
    while (n == 0 || mass < p) mass += pr[order[n++]];
    Rng rng(trial);
    for (int draw = 0; draw < 20; ++draw) {
      const auto tok = TopP(p, 1.0).pick_token(std::span<const double>(l), rng, s);
      EXPECT_NE(std::find(order.begin(), order.begin() + n, tok), order.begin() + n)
          << "token " << tok << " outside the nucleus of " << n << " for p=" << p;
    }
  }
}

TEST(Sampling, TopKWithZeroOrLargeKIsPlainSampling) {
  const auto l = random_logits(30, 5);
  SamplerScratch s;
  for (std::int64_t k : {0, 30, 31, 1000}) {
    Rng a(9), b(9);
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(TopK(k, 0.7).pick_token(std::span<const double>(l), a, s),
                Temperature(0.7).pick_token(std::span<const double>(l), b, s));
  }
}

// Pearson chi-square of N seeded draws against softmax(logits / t). With a fixed seed the
// statistic is deterministic; the bound is the 0.999 quantile of chi-square with V-1 = 9
// degrees of freedom (27.877).
TEST(Sampling, TemperatureFrequenciesMatchSoftmax) {
  const std::vector<double> l{1.0, 0.5, -0.3, 2.0, 0.0, -1.0, 1.5, 0.2, -0.5, 0.8};
  for (double t : {0.5, 1.0, 2.0}) {
    std::vector<double> pr(l.size());
    double z = 0;
    for (std::size_t j = 0; j < l.size(); ++j) z += pr[j] = std::exp(l[j] / t);
    for (auto& x : pr) x /= z;
    const int N = 40000;
    std::vector<int> count(l.size(), 0);
    Rng rng(2024);
    SamplerScratch s;
    for (int i = 0; i < N; ++i)
      ++count[Temperature(t).pick_token(std::span<const double>(l), rng, s)];
    double chi2 = 0;
    for (std::size_t j = 0; j < l.size(); ++j) {
      const double e = N * pr[j];
      chi2 += (count[j] - e) * (count[j] - e) / e;
    }
    EXPECT_LT(chi2, 27.877) << "t=" << t;
  }
}

TEST(Sampling, InvalidParametersAreTypedErrors) {
  EXPECT_THROW(TopP(0.0), ValueError);
  EXPECT_THROW(TopP(1.5), ValueError);
  EXPECT_THROW(TopP(-0.1), ValueError);
  EXPECT_NO_THROW(TopP(1.0));
  EXPECT_THROW(TopK(-1), ValueError);
  EXPECT_THROW(Temperature(-0.5), ValueError);
  EXPECT_THROW(TopK(5, -1.0), ValueError);
  EXPECT_THROW(make_strategy("beam"), ValueError);
  try {
    TopP(1.5);
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("1.5"), std::string::npos) << e.what();
  }
}

TEST(Sampling, RuntimeStrategyMatchesCompileTimeType) {
  const auto l = random_logits(64, 77);
  SamplerScratch s;
  const AnyStrategy any = make_strategy("topk", 0.9, 8, 0.9);
  Rng a(3), b(3);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(pick_token(any, std::span<const double>(l), a, s),
              pick_token(TopK(8, 0.9), std::span<const double>(l), b, s));
}

TEST(GenerateErrors, AreTypedErrors) {
  using P = Policy<double, RowMajor, backend::Naive>;
  const Transformer<P> m(small_config(), 1);
  const std::vector<std::int32_t> ok{1, 2}, bad{1, 97}, neg{-1};
  EXPECT_THROW(generate_greedy(m, std::span<const std::int32_t>(), 5), ValueError);
  EXPECT_THROW(generate_greedy(m, bad, 5), IndexError);
  EXPECT_THROW(generate_greedy(m, neg, 5), IndexError);
  EXPECT_THROW(generate_greedy(m, ok, 49), ValueError);  // max_seq_len is 48
  EXPECT_THROW(generate_greedy(m, ok, 1), ValueError);   // shorter than the prompt
  EXPECT_EQ(generate_greedy(m, ok, 2), ok);              // nothing to generate
  EXPECT_EQ(generate_greedy(m, ok, 48).size(), 48u);
}

}  // namespace
