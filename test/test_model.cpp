// The whole model: policy parity against Policy<double, RowMajor, Naive>, determinism,
// concurrent forward/backward on a const model, the contract's typed errors, the presets,
// numerical stability at the extremes, and the trainer's refusal of non-finite steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <latch>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "model_check.hpp"
#include "policies.hpp"

namespace {
using namespace rosetta;

using RefPolicy = Policy<double, RowMajor, backend::Naive>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The tiny preset with a small vocabulary and context, so every backend runs it quickly.
Config reduced_config(std::size_t n_kv_heads = 1) {
  Config c = Config::tiny();
  c.vocab_size = 97;
  c.max_seq_len = 64;
  c.n_kv_heads = n_kv_heads;
  return c;
}

using test::Batch;
using test::random_batch;

Batch repeated_batch(std::size_t batch, std::size_t seq, std::int32_t token) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  b.ids.assign(batch * seq, token);
  b.targets.assign(batch * seq, token);
  return b;
}

/// Everything one forward + loss + backward produces, widened to double (exactly: the
/// float -> double conversion is injective, so bitwise comparisons stay meaningful).
/// Matrices are stored row-major [rows, cols] whatever the policy's layout.
struct Snapshot {
  std::vector<double> logits;
  double ce = 0, aux = 0, total = 0;
  std::vector<std::string> names;
  std::vector<std::vector<double>> grads;
};

template <class T, class L>
std::vector<double> row_major(MatrixView<const T, L> m) {
  std::vector<double> out;
  out.reserve(m.rows() * m.cols());
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j) out.push_back(static_cast<double>(m(i, j)));
  return out;
}

/// The weights of every tensor in checkpoint order, row-major.
template <class T, class L>
std::vector<std::vector<double>> tensors_of(const ParamSet<T, L>& set) {
  std::vector<std::vector<double>> out;
  for (const auto& np : set.named()) out.push_back(row_major(MatrixView<const T, L>(np.view)));
  return out;
}

template <class P>
Snapshot run_on(const Transformer<P>& model, Workspace<typename P::scalar, typename P::layout>& ws,
                const Batch& b) {
  using T = typename P::scalar;
  using L = typename P::layout;
  Snapshot s;
  s.logits = row_major(model.forward(b.tokens(), ws));
  const Losses<T> l = model.loss(ws, b.targets);
  s.ce = static_cast<double>(l.ce);
  s.aux = static_cast<double>(l.aux);
  s.total = static_cast<double>(l.total);
  ParamSet<T, L> grads(model.config());
  grads.zero();
  model.backward(ws, b.targets, grads);
  for (const auto& np : grads.named()) s.names.push_back(np.name);
  s.grads = tensors_of(grads);
  return s;
}

template <class P>
Snapshot run(const Transformer<P>& model, const Batch& b) {
  auto ws = model.make_workspace();
  return run_on(model, ws, b);
}

using test::rel_err;
double rel_err(double a, double b) {
  return rel_err(std::vector<double>{a}, {b});
}

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}
bool bit_equal(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

/// Empty if both snapshots are bitwise identical, else what differs first.
std::string first_difference(const Snapshot& a, const Snapshot& b) {
  if (!bit_equal(a.logits, b.logits)) return "logits";
  if (!bit_equal(a.ce, b.ce)) return "ce loss";
  if (!bit_equal(a.aux, b.aux)) return "aux loss";
  if (!bit_equal(a.total, b.total)) return "total loss";
  if (a.grads.size() != b.grads.size()) return "number of gradients";
  for (std::size_t i = 0; i < a.grads.size(); ++i)
    if (!bit_equal(a.grads[i], b.grads[i])) return "gradient of " + a.names[i];
  return "";
}

/// Empty if every number of the snapshot is finite, else the first offender.
std::string first_non_finite(const Snapshot& s) {
  auto bad = [](const std::vector<double>& v) {
    return std::any_of(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
  };
  if (bad(s.logits)) return "logits";
  if (!std::isfinite(s.ce)) return "ce loss";
  if (!std::isfinite(s.aux)) return "aux loss";
  if (!std::isfinite(s.total)) return "total loss";
  for (std::size_t i = 0; i < s.grads.size(); ++i)
    if (bad(s.grads[i])) return "gradient of " + s.names[i];
  return "";
}

template <class T>
bool span_bit_equal(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

/// Expects f() to throw exactly E (or a subclass) with a message containing every part.
template <class E, class F>
void expect_throw_naming(const char* file, int line, F&& f, const std::vector<std::string>& parts) {
  ::testing::ScopedTrace trace(file, line, "expected " + std::string(typeid(E).name()));
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos)
          << "message \"" << msg << "\" does not mention \"" << p << "\"";
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong type " << typeid(e).name() << ": " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}
#define EXPECT_THROW_NAMING(E, ...) expect_throw_naming<E>(__FILE__, __LINE__, __VA_ARGS__)

/// A few policies covering every backend, scalar and layout (for the costlier tests).
using SomePolicies = ::testing::Types<
    Policy<float, RowMajor, backend::Naive>, Policy<double, ColMajor, backend::Naive>
#ifdef ROSETTA_HAS_EIGEN
    ,
    Policy<float, ColMajor, backend::Eigen>
#endif
#ifdef ROSETTA_HAS_BLIS
    ,
    Policy<double, RowMajor, backend::Blis>, Policy<float, ColMajor, backend::Blis>
#endif
#ifdef ROSETTA_HAS_CBLAS
    ,
    Policy<float, RowMajor, backend::Cblas>, Policy<double, ColMajor, backend::Cblas>
#endif
    >;

using NaivePolicies = ::testing::Types<Policy<float, RowMajor, backend::Naive>,
                                       Policy<double, ColMajor, backend::Naive>>;

// ---------------------------------------------------------------------------------------
// Parity: every policy against Policy<double, RowMajor, Naive>
// ---------------------------------------------------------------------------------------

constexpr std::uint64_t kSeed = 20240611;

struct ParityCase {
  const char* name;
  std::size_t n_kv_heads, batch, seq;
  std::uint64_t data_seed;
};
constexpr ParityCase kParityCases[] = {{"mqa", 1, 2, 8, 1}, {"gqa", 2, 3, 11, 2}};

struct Reference {
  std::vector<std::vector<double>> weights;
  Snapshot out;
};

const Reference& reference(std::size_t which) {
  static const std::vector<Reference> refs = [] {
    std::vector<Reference> r;
    for (const ParityCase& pc : kParityCases) {
      const Config cfg = reduced_config(pc.n_kv_heads);
      const Transformer<RefPolicy> model(cfg, kSeed);
      r.push_back(
          Reference{tensors_of(model.params()),
                    run(model, random_batch(pc.batch, pc.seq, cfg.vocab_size, pc.data_seed))});
    }
    return r;
  }();
  return refs[which];
}

template <class P>
class ModelParity : public ::testing::Test {};
TYPED_TEST_SUITE(ModelParity, test::Policies, test::PolicyName);

TYPED_TEST(ModelParity, SameSeedSameWeightsInEveryPolicy) {
  using T = typename TypeParam::scalar;
  for (std::size_t c = 0; c < std::size(kParityCases); ++c) {
    const Transformer<TypeParam> model(reduced_config(kParityCases[c].n_kv_heads), kSeed);
    const auto w = tensors_of(model.params());
    const auto& ref = reference(c).weights;
    ASSERT_EQ(w.size(), ref.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
      std::vector<double> expect = ref[i];
      for (double& x : expect) x = static_cast<double>(static_cast<T>(x));  // float rounding
      EXPECT_TRUE(bit_equal(w[i], expect))
          << kParityCases[c].name << ": " << model.params().named()[i].name;
    }
  }
}

TYPED_TEST(ModelParity, LogitsLossesAndGradientsMatchDoubleRowNaive) {
  using T = typename TypeParam::scalar;
  constexpr bool is_double = std::is_same_v<T, double>;
  const double tol_out = is_double ? 1e-12 : 1e-4;
  const double tol_grad = is_double ? 1e-12 : 1e-3;
  for (std::size_t c = 0; c < std::size(kParityCases); ++c) {
    const ParityCase& pc = kParityCases[c];
    SCOPED_TRACE(pc.name);
    const Config cfg = reduced_config(pc.n_kv_heads);
    const Transformer<TypeParam> model(cfg, kSeed);
    const Snapshot got = run(model, random_batch(pc.batch, pc.seq, cfg.vocab_size, pc.data_seed));
    const Snapshot& ref = reference(c).out;

    const double e_logits = rel_err(got.logits, ref.logits);
    const double e_loss = std::max(
        {rel_err(got.ce, ref.ce), rel_err(got.aux, ref.aux), rel_err(got.total, ref.total)});
    EXPECT_LE(e_logits, tol_out) << "logits";
    EXPECT_LE(rel_err(got.ce, ref.ce), tol_out) << "ce " << got.ce << " vs " << ref.ce;
    EXPECT_LE(rel_err(got.aux, ref.aux), tol_out) << "aux " << got.aux << " vs " << ref.aux;
    EXPECT_LE(rel_err(got.total, ref.total), tol_out)
        << "total " << got.total << " vs " << ref.total;
    ASSERT_EQ(got.grads.size(), ref.grads.size());
    double e_grad = 0;
    std::string worst;
    for (std::size_t i = 0; i < got.grads.size(); ++i) {
      const double e = rel_err(got.grads[i], ref.grads[i]);
      EXPECT_LE(e, tol_grad) << "gradient of " << got.names[i];
      if (e > e_grad) e_grad = e, worst = got.names[i];
    }
    std::printf("[parity] %-20s %s: logits %.2e  losses %.2e  worst gradient %.2e (%s)\n",
                TypeParam::name().c_str(), pc.name, e_logits, e_loss, e_grad, worst.c_str());
  }
}

// ---------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------

template <class P>
class ModelDeterminism : public ::testing::Test {};
TYPED_TEST_SUITE(ModelDeterminism, SomePolicies, test::PolicyName);

TYPED_TEST(ModelDeterminism, SameSeedBitIdenticalDifferentSeedDifferent) {
  using T = typename TypeParam::scalar;
  const Config cfg = reduced_config(2);
  Transformer<TypeParam> a(cfg, 1234), b(cfg, 1234), c(cfg, 1235);
  EXPECT_TRUE(span_bit_equal<T>(a.params().flat(), b.params().flat()));
  EXPECT_FALSE(span_bit_equal<T>(a.params().flat(), c.params().flat()));
  // Every random tensor changes with the seed; norm gains stay 1.
  const auto& na = a.params().named();
  const auto& nc = c.params().named();
  for (std::size_t i = 0; i < na.size(); ++i)
    EXPECT_EQ(span_bit_equal<T>(na[i].flat(), nc[i].flat()), na[i].rank == 1) << na[i].name;
  // init(seed) re-initialises in place to exactly what the constructor produced.
  b.init(1235);
  EXPECT_TRUE(span_bit_equal<T>(b.params().flat(), c.params().flat()));
  b.init(1234);
  EXPECT_TRUE(span_bit_equal<T>(a.params().flat(), b.params().flat()));
}

TYPED_TEST(ModelDeterminism, EveryTensorDrawsFromItsOwnStream) {
  const Transformer<TypeParam> m(reduced_config(), 99);
  const auto& named = m.params().named();
  for (std::size_t i = 0; i < named.size(); ++i)
    for (std::size_t j = i + 1; j < named.size(); ++j) {
      if (named[i].rank == 1 || named[j].rank == 1) continue;
      // Scaled to unit variance, the first draws of two tensors must differ.
      const double si = std::sqrt(2.0 / static_cast<double>(named[i].cols));
      const double sj = std::sqrt(2.0 / static_cast<double>(named[j].cols));
      bool differ = false;
      for (std::size_t k = 0; k < 4; ++k) {
        const double xi = static_cast<double>(named[i].view(0, k)) / si;
        const double xj = static_cast<double>(named[j].view(0, k)) / sj;
        differ = differ || std::abs(xi - xj) > 1e-3;
      }
      EXPECT_TRUE(differ) << named[i].name << " and " << named[j].name << " start equal";
    }
}

TYPED_TEST(ModelDeterminism, RepeatedRunsAreBitIdentical) {
  const Config cfg = reduced_config(2);
  const Transformer<TypeParam> a(cfg, 5), b(cfg, 5);
  const Batch x = random_batch(2, 9, cfg.vocab_size, 7);
  const Batch y = random_batch(3, 4, cfg.vocab_size, 8);
  const Snapshot first = run(a, x);
  EXPECT_EQ(first_difference(first, run(a, x)), "") << "second run on a fresh workspace";
  EXPECT_EQ(first_difference(first, run(b, x)), "") << "second model from the same seed";
  // One workspace reused, with another batch in between: no state leaks across calls.
  auto ws = a.make_workspace();
  EXPECT_EQ(first_difference(first, run_on(a, ws, x)), "");
  (void)run_on(a, ws, y);
  EXPECT_EQ(first_difference(first, run_on(a, ws, x)), "") << "after a different batch";
}

// ---------------------------------------------------------------------------------------
// Thread safety: one const model, several threads, one workspace each
// ---------------------------------------------------------------------------------------

template <class P>
class ModelThreads : public ::testing::Test {};
TYPED_TEST_SUITE(ModelThreads, SomePolicies, test::PolicyName);

TYPED_TEST(ModelThreads, ConcurrentForwardBackwardMatchesSequential) {
  const Config cfg = reduced_config(2);
  const Transformer<TypeParam> model(cfg, 77);
  const std::vector<Batch> inputs = {
      random_batch(2, 8, cfg.vocab_size, 1), random_batch(1, 13, cfg.vocab_size, 2),
      random_batch(3, 5, cfg.vocab_size, 3), random_batch(2, 16, cfg.vocab_size, 4)};
  std::vector<Snapshot> expected;
  for (const Batch& b : inputs) expected.push_back(run(model, b));

  constexpr int kRepeats = 3;
  std::vector<std::vector<Snapshot>> got(inputs.size());
  std::vector<std::string> errors(inputs.size());
  std::latch start(static_cast<std::ptrdiff_t>(inputs.size()));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        auto ws = model.make_workspace();
        start.arrive_and_wait();
        for (int r = 0; r < kRepeats; ++r) got[i].push_back(run_on(model, ws, inputs[i]));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(errors[i], "") << "thread " << i;
    ASSERT_EQ(got[i].size(), static_cast<std::size_t>(kRepeats)) << "thread " << i;
    for (int r = 0; r < kRepeats; ++r)
      EXPECT_EQ(first_difference(got[i][static_cast<std::size_t>(r)], expected[i]), "")
          << "thread " << i << " repeat " << r;
  }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

template <class P>
class ModelErrors : public ::testing::Test {};
TYPED_TEST_SUITE(ModelErrors, NaivePolicies, test::PolicyName);

TYPED_TEST(ModelErrors, TokenIdsOutsideTheVocabulary) {
  const Config cfg = reduced_config();
  const Transformer<TypeParam> model(cfg, 1);
  auto ws = model.make_workspace();
  Batch b = random_batch(2, 8, cfg.vocab_size, 3);
  b.ids[11] = -1;
  EXPECT_THROW_NAMING(IndexError, [&] { model.forward(b.tokens(), ws); },
                      {"[1][3]", "-1", "[0, 97)"});
  b.ids[11] = 97;
  EXPECT_THROW_NAMING(IndexError, [&] { model.forward(b.tokens(), ws); },
                      {"[1][3]", "= 97", "[0, 97)"});
  b.ids[11] = std::numeric_limits<std::int32_t>::max();
  EXPECT_THROW_NAMING(IndexError, [&] { model.forward(b.tokens(), ws); }, {"2147483647"});
  b.ids[11] = std::numeric_limits<std::int32_t>::min();
  EXPECT_THROW_NAMING(IndexError, [&] { model.forward(b.tokens(), ws); }, {"-2147483648"});
  b.ids[11] = 96;  // the largest valid id
  EXPECT_NO_THROW(model.forward(b.tokens(), ws));
}

TYPED_TEST(ModelErrors, EmptyBatchTooLongAndMisshapen) {
  const Config cfg = reduced_config();
  const Transformer<TypeParam> model(cfg, 1);
  auto ws = model.make_workspace();
  const std::vector<std::int32_t> none;
  EXPECT_THROW_NAMING(ValueError, [&] { model.forward(TokenBatch{none, 0, 8}, ws); }, {"batch=0"});
  EXPECT_THROW_NAMING(ValueError, [&] { model.forward(TokenBatch{none, 2, 0}, ws); }, {"seq=0"});
  EXPECT_THROW_NAMING(ValueError,
                      [&] {
                        model.forward(TokenBatch{none, 0, 0}, ws);
                      },
                      {"batch=0", "seq=0"});
  const Batch too_long = random_batch(1, 65, cfg.vocab_size, 4);
  EXPECT_THROW_NAMING(ValueError, [&] { model.forward(too_long.tokens(), ws); },
                      {"65", "max_seq_len=64"});
  const Batch full = random_batch(1, 64, cfg.vocab_size, 4);
  EXPECT_NO_THROW(model.forward(full.tokens(), ws));
  Batch b = random_batch(2, 8, cfg.vocab_size, 5);
  b.ids.pop_back();
  EXPECT_THROW_NAMING(ShapeError, [&] { model.forward(b.tokens(), ws); }, {"15", "16"});
  b.ids.resize(17, 0);
  EXPECT_THROW_NAMING(ShapeError, [&] { model.forward(b.tokens(), ws); }, {"17", "16"});
}

TYPED_TEST(ModelErrors, TargetsAreValidated) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  const Config cfg = reduced_config();
  const Transformer<TypeParam> model(cfg, 1);
  auto ws = model.make_workspace();
  ParamSet<T, L> grads(cfg);
  Batch b = random_batch(2, 8, cfg.vocab_size, 6);
  model.forward(b.tokens(), ws);
  std::vector<std::int32_t> bad = b.targets;
  bad[5] = 97;
  EXPECT_THROW_NAMING(IndexError, [&] { model.loss(ws, bad); }, {"targets", "97", "[0, 97)"});
  EXPECT_THROW_NAMING(IndexError, [&] { model.backward(ws, bad, grads); }, {"targets", "97"});
  bad[5] = -3;
  EXPECT_THROW_NAMING(IndexError, [&] { model.loss(ws, bad); }, {"targets", "-3"});
  EXPECT_THROW_NAMING(IndexError, [&] { model.backward(ws, bad, grads); }, {"targets", "-3"});
  bad = b.targets;
  bad.pop_back();
  EXPECT_THROW_NAMING(ShapeError, [&] { model.loss(ws, bad); }, {"targets", "15", "16"});
  EXPECT_THROW_NAMING(ShapeError, [&] { model.backward(ws, bad, grads); }, {"15", "16"});
  // The rejected calls did not touch the gradients, and the workspace still works.
  for (T g : grads.flat()) ASSERT_EQ(g, T(0));
  EXPECT_NO_THROW(model.loss(ws, b.targets));
  EXPECT_NO_THROW(model.backward(ws, b.targets, grads));
}

TYPED_TEST(ModelErrors, LossAndBackwardBeforeForward) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  const Config cfg = reduced_config();
  const Transformer<TypeParam> model(cfg, 1);
  auto ws = model.make_workspace();
  ParamSet<T, L> grads(cfg);
  const Batch b = random_batch(2, 8, cfg.vocab_size, 6);
  EXPECT_THROW_NAMING(ValueError, [&] { model.loss(ws, b.targets); }, {"before forward"});
  EXPECT_THROW_NAMING(ValueError, [&] { model.backward(ws, b.targets, grads); },
                      {"before forward"});
  // A forward that was rejected does not count as a forward.
  Batch bad = b;
  bad.ids[0] = -1;
  EXPECT_THROW(model.forward(bad.tokens(), ws), IndexError);
  EXPECT_THROW_NAMING(ValueError, [&] { model.loss(ws, b.targets); }, {"before forward"});
}

struct ConfigRule {
  const char* what;
  void (*mutate)(Config&);
  std::vector<std::string> mentions;
};

const ConfigRule kConfigRules[] = {
    {"n_heads*head_dim != hidden", [](Config& c) { c.hidden_dim = 60; }, {"hidden_dim=60", "64"}},
    {"n_heads*head_dim != hidden (head_dim)",
     [](Config& c) { c.head_dim = 8; },
     {"4*8", "hidden_dim=64"}},
    {"n_heads % n_kv_heads", [](Config& c) { c.n_kv_heads = 3; }, {"n_heads=4", "n_kv_heads=3"}},
    {"n_heads % n_kv_heads (more kv than q)",
     [](Config& c) { c.n_kv_heads = 8; },
     {"n_kv_heads=8"}},
    {"top_k 0", [](Config& c) { c.top_k = 0; }, {"top_k=0"}},
    {"top_k > n_experts", [](Config& c) { c.top_k = 5; }, {"top_k=5", "n_experts=4"}},
    {"odd head_dim",
     [](Config& c) {
       c.head_dim = 15;
       c.hidden_dim = 60;
     },
     {"head_dim=15"}},
    {"NTK with head_dim 2",
     [](Config& c) {
       c.n_heads = 2;
       c.n_kv_heads = 1;
       c.head_dim = 2;
       c.hidden_dim = 4;
       c.rope_alpha = 2.0;
     },
     {"head_dim", "rope_alpha=2"}},
    {"hidden_dim 0", [](Config& c) { c.hidden_dim = 0; }, {"hidden_dim=0"}},
    {"n_layers 0", [](Config& c) { c.n_layers = 0; }, {"n_layers=0"}},
    {"n_heads 0", [](Config& c) { c.n_heads = 0; }, {"n_heads=0"}},
    {"n_kv_heads 0", [](Config& c) { c.n_kv_heads = 0; }, {"n_kv_heads=0"}},
    {"head_dim 0", [](Config& c) { c.head_dim = 0; }, {"head_dim=0"}},
    {"n_experts 0", [](Config& c) { c.n_experts = 0; }, {"n_experts=0"}},
    {"ffn_dim 0", [](Config& c) { c.ffn_dim = 0; }, {"ffn_dim=0"}},
    {"vocab_size 0", [](Config& c) { c.vocab_size = 0; }, {"vocab_size=0"}},
    {"max_seq_len 0", [](Config& c) { c.max_seq_len = 0; }, {"max_seq_len=0"}},
    {"rope_base 0", [](Config& c) { c.rope_base = 0; }, {"rope_base=0"}},
    {"rope_base negative", [](Config& c) { c.rope_base = -10000; }, {"rope_base=-10000"}},
    {"rope_base NaN", [](Config& c) { c.rope_base = std::nan(""); }, {"rope_base=nan"}},
    {"rope_base inf",
     [](Config& c) { c.rope_base = std::numeric_limits<double>::infinity(); },
     {"rope_base=inf"}},
    {"rope_alpha 0", [](Config& c) { c.rope_alpha = 0; }, {"rope_alpha=0"}},
    {"rope_alpha NaN", [](Config& c) { c.rope_alpha = std::nan(""); }, {"rope_alpha=nan"}},
    {"rms_eps 0", [](Config& c) { c.rms_eps = 0; }, {"rms_eps=0"}},
    {"rms_eps negative", [](Config& c) { c.rms_eps = -1e-6; }, {"rms_eps=-9.99"}},
    {"rms_eps NaN", [](Config& c) { c.rms_eps = std::nan(""); }, {"rms_eps=nan"}},
    {"rms_eps inf",
     [](Config& c) { c.rms_eps = std::numeric_limits<double>::infinity(); },
     {"rms_eps=inf"}},
    {"aux_alpha negative", [](Config& c) { c.aux_alpha = -0.5; }, {"aux_alpha=-0.5"}},
    {"aux_alpha NaN", [](Config& c) { c.aux_alpha = std::nan(""); }, {"aux_alpha=nan"}},
};

TYPED_TEST(ModelErrors, EveryConfigRuleIsAConfigError) {
  for (const ConfigRule& rule : kConfigRules) {
    SCOPED_TRACE(rule.what);
    Config c = reduced_config();
    rule.mutate(c);
    EXPECT_THROW_NAMING(
        ConfigError, [&] { c.validate(); }, rule.mentions);
    EXPECT_THROW_NAMING(
        ConfigError, [&] { Transformer<TypeParam> m(c, 1); }, rule.mentions);
  }
  // A vocabulary beyond int32 token ids (validated only: never allocated).
  Config huge = reduced_config();
  huge.vocab_size = std::size_t{1} << 31;
  EXPECT_THROW_NAMING(ConfigError, [&] { huge.validate(); }, {"vocab_size=2147483648"});
  // Edge values that are allowed.
  Config ok = reduced_config();
  ok.top_k = ok.n_experts;
  ok.n_kv_heads = ok.n_heads;
  ok.aux_alpha = 0;
  ok.rope_alpha = 0.5;
  EXPECT_NO_THROW(ok.validate());
  EXPECT_NO_THROW(Transformer<TypeParam>(ok, 1));
}

struct TrainRule {
  const char* what;
  void (*mutate)(TrainConfig&);
  std::vector<std::string> mentions;
};

const TrainRule kTrainRules[] = {
    {"lr negative", [](TrainConfig& t) { t.lr = -1e-3; }, {"lr=-0.001"}},
    {"lr NaN", [](TrainConfig& t) { t.lr = std::nan(""); }, {"lr=nan"}},
    {"lr inf", [](TrainConfig& t) { t.lr = std::numeric_limits<double>::infinity(); }, {"lr=inf"}},
    {"beta1 1", [](TrainConfig& t) { t.beta1 = 1.0; }, {"beta1=1"}},
    {"beta1 negative", [](TrainConfig& t) { t.beta1 = -0.1; }, {"beta1=-0.1"}},
    {"beta1 NaN", [](TrainConfig& t) { t.beta1 = std::nan(""); }, {"beta1=nan"}},
    {"beta2 1", [](TrainConfig& t) { t.beta2 = 1.0; }, {"beta2=1"}},
    {"beta2 above 1", [](TrainConfig& t) { t.beta2 = 1.5; }, {"beta2=1.5"}},
    {"eps 0", [](TrainConfig& t) { t.eps = 0; }, {"eps=0"}},
    {"eps negative", [](TrainConfig& t) { t.eps = -1e-8; }, {"eps=-1"}},
    {"eps NaN", [](TrainConfig& t) { t.eps = std::nan(""); }, {"eps=nan"}},
    {"weight_decay negative", [](TrainConfig& t) { t.weight_decay = -0.1; }, {"weight_decay=-0.1"}},
    {"weight_decay NaN",
     [](TrainConfig& t) { t.weight_decay = std::nan(""); },
     {"weight_decay=nan"}},
    {"clip negative", [](TrainConfig& t) { t.clip = -1; }, {"clip=-1"}},
    {"clip NaN", [](TrainConfig& t) { t.clip = std::nan(""); }, {"clip=nan"}},
    {"total_steps < warmup",
     [](TrainConfig& t) {
       t.warmup = 10;
       t.total_steps = 5;
     },
     {"total_steps=5", "warmup=10"}},
};

TYPED_TEST(ModelErrors, EveryTrainConfigRuleIsAConfigError) {
  Transformer<TypeParam> model(reduced_config(), 1);
  for (const TrainRule& rule : kTrainRules) {
    SCOPED_TRACE(rule.what);
    TrainConfig tc;
    rule.mutate(tc);
    EXPECT_THROW_NAMING(
        ConfigError, [&] { tc.validate(); }, rule.mentions);
    EXPECT_THROW_NAMING(
        ConfigError, [&] { Trainer<TypeParam> t(model, tc); }, rule.mentions);
  }
  TrainConfig edge;
  edge.lr = 0;
  edge.beta1 = 0;
  edge.beta2 = 0;
  edge.weight_decay = 0;
  edge.clip = 0;
  edge.warmup = 0;
  edge.total_steps = 0;
  EXPECT_NO_THROW(edge.validate());
}

// ---------------------------------------------------------------------------------------
// The gradient norm
// ---------------------------------------------------------------------------------------

/// global_norm against a long double sum of the same squares: every size around its 64-lane
/// rows and 512-value blocks (and a block with a tail); values of one scale, so that a
/// value lost or counted twice moves the norm by far more than the tolerance (1/n of it).
template <class T>
void expect_norm_matches_long_double(double rel) {
  std::mt19937 gen(99);
  std::normal_distribution<double> normal(0.0, 3.0);
  for (const std::size_t n : {0, 1, 31, 32, 33, 511, 512, 513, 1023, 1024, 1055, 100003}) {
    std::vector<T> g(n);
    for (auto& x : g) x = static_cast<T>(normal(gen));
    long double want = 0;
    for (const T x : g) want += static_cast<long double>(x) * static_cast<long double>(x);
    const double got = global_norm(std::span<const T>(g));
    const double ref = static_cast<double>(std::sqrt(want));
    EXPECT_LE(std::abs(got - ref), rel * ref) << "n=" << n << " got " << got << " want " << ref;
  }
}

TEST(GradNorm, FloatMatchesALongDoubleSum) {
  expect_norm_matches_long_double<float>(1e-6);
}
TEST(GradNorm, DoubleMatchesALongDoubleSum) {
  expect_norm_matches_long_double<double>(1e-13);
}

template <class P>
class StepNorm : public ::testing::Test {};
TYPED_TEST_SUITE(StepNorm, SomePolicies, test::PolicyName);

// Trainer's gradient norm from the products' sums of squares (model_check.hpp): every
// backend's gemm and a pass over C (the fallback of backend::gemm_sumsq).
TYPED_TEST(StepNorm, IsTheNormOfTheStepsGradients) {
  test::expect_step_norm_is_the_gradient_norm<TypeParam>(reduced_config(), 31);
}

// ---------------------------------------------------------------------------------------
// Presets
// ---------------------------------------------------------------------------------------

TEST(Presets, TinyMatchesTheContract) {
  const Config c = Config::tiny();
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.hidden_dim, 64u);
  EXPECT_EQ(c.n_layers, 2u);
  EXPECT_EQ(c.n_heads, 4u);
  EXPECT_EQ(c.n_kv_heads, 1u);
  EXPECT_EQ(c.head_dim, 16u);
  EXPECT_EQ(c.n_experts, 4u);
  EXPECT_EQ(c.top_k, 2u);
  EXPECT_EQ(c.ffn_dim, 256u);
  EXPECT_EQ(c.vocab_size, 1000u);
  EXPECT_EQ(c.max_seq_len, 512u);
  EXPECT_EQ(c.rope_base, 10000.0);
  EXPECT_EQ(c.rope_alpha, 1.0);
  EXPECT_EQ(c.param_count(), 542528u);
  // The count is the size of the one parameter block, i.e. of the checkpoint's tensors.
  const ParamSet<float, RowMajor> p(c);
  EXPECT_EQ(p.flat().size(), 542528u);
  std::size_t sum = 0;
  for (const auto& np : p.named()) sum += np.rows * np.cols;
  EXPECT_EQ(sum, 542528u);
}

TEST(Presets, SmallValidates) {
  const Config c = Config::small();
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.hidden_dim, 256u);
  EXPECT_EQ(c.head_dim, 64u);
  EXPECT_EQ(c.ffn_dim, 1024u);
}

TEST(Presets, Default69bIsAConfigOnly) {
  const Config c = Config::default_6_9b();
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.hidden_dim, 768u);
  EXPECT_EQ(c.n_layers, 30u);
  EXPECT_EQ(c.n_heads, 12u);
  EXPECT_EQ(c.n_kv_heads, 1u);
  EXPECT_EQ(c.head_dim, 64u);
  EXPECT_EQ(c.n_experts, 16u);
  EXPECT_EQ(c.top_k, 4u);
  EXPECT_EQ(c.ffn_dim, 6144u);
  EXPECT_EQ(c.vocab_size, 32000u);
  EXPECT_EQ(c.max_seq_len, 32768u);
  EXPECT_EQ(c.rope_alpha, 8.0);
  EXPECT_EQ(c.param_count(), 6882678528ull);
  EXPECT_EQ(c.active_param_count(), 1786599168ull);
  const std::size_t bytes = c.param_bytes(4);
  EXPECT_EQ(bytes, 4 * 6882678528ull);
  EXPECT_GT(static_cast<double>(bytes), 27.4e9);
  EXPECT_LT(static_cast<double>(bytes), 27.6e9);
  EXPECT_EQ(c.param_bytes(8), 2 * bytes);
  EXPECT_EQ(c.training_state_bytes(4), 4 * bytes);  // params, grads, two AdamW moments
}

// ---------------------------------------------------------------------------------------
// Numerical stability
// ---------------------------------------------------------------------------------------

using StabilityPolicies = ::testing::Types<Policy<float, RowMajor, backend::Naive>,
                                           Policy<double, ColMajor, backend::Naive>
#ifdef ROSETTA_HAS_BLIS
                                           ,
                                           Policy<float, ColMajor, backend::Blis>
#endif
#ifdef ROSETTA_HAS_CBLAS
                                           ,
                                           Policy<double, RowMajor, backend::Cblas>
#endif
#ifdef ROSETTA_HAS_EIGEN
                                           ,
                                           Policy<float, RowMajor, backend::Eigen>
#endif
                                           >;

template <class P>
class ModelStability : public ::testing::Test {};
TYPED_TEST_SUITE(ModelStability, StabilityPolicies, test::PolicyName);

template <class T, class L>
void scale(MatrixView<T, L> m, double f) {
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j) m(i, j) = static_cast<T>(m(i, j) * f);
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

TYPED_TEST(ModelStability, HugeLogits) {
  const Config cfg = reduced_config();
  Transformer<TypeParam> model(cfg, 11);
  scale(model.params().lm_head, 3000.0);
  for (const Batch& b : {random_batch(2, 8, cfg.vocab_size, 1), repeated_batch(1, 64, 5)}) {
    const Snapshot s = run(model, b);
    EXPECT_EQ(first_non_finite(s), "");
    EXPECT_GE(max_abs(s.logits), 1e3);
    EXPECT_LE(max_abs(s.logits), 1e6);
    EXPECT_GE(s.ce, 0.0);
  }
}

TYPED_TEST(ModelStability, FullContextOneRepeatedToken) {
  const Config cfg = reduced_config(2);
  const Transformer<TypeParam> model(cfg, 12);
  for (std::int32_t tok : {0, 42, 96}) {
    const Snapshot s = run(model, repeated_batch(2, cfg.max_seq_len, tok));
    EXPECT_EQ(first_non_finite(s), "") << "token " << tok;
  }
  const Snapshot s = run(model, random_batch(1, cfg.max_seq_len, cfg.vocab_size, 13));
  EXPECT_EQ(first_non_finite(s), "");
}

TYPED_TEST(ModelStability, TinyPresetAtItsFullContext) {
  const Config cfg = Config::tiny();
  const Transformer<TypeParam> model(cfg, 13);
  const Snapshot s = run(model, repeated_batch(1, cfg.max_seq_len, 7));
  EXPECT_EQ(first_non_finite(s), "");
}

TYPED_TEST(ModelStability, NearZeroActivationsIntoRmsNorm) {
  const Config cfg = reduced_config();
  for (double f : {1e-20, 1e-30, 0.0}) {
    SCOPED_TRACE(f);
    Transformer<TypeParam> model(cfg, 14);
    scale(model.params().embed, f);
    const Snapshot s = run(model, random_batch(2, 8, cfg.vocab_size, 2));
    EXPECT_EQ(first_non_finite(s), "");
    // Everything downstream of a (near) zero embedding is (near) zero: uniform logits.
    EXPECT_NEAR(s.ce, std::log(static_cast<double>(cfg.vocab_size)), 1e-3);
  }
}

TYPED_TEST(ModelStability, HugeLogitsOverAFullRepeatedContext) {
  const Config cfg = reduced_config();
  Transformer<TypeParam> model(cfg, 15);
  scale(model.params().lm_head, 1e4);
  const Snapshot s = run(model, repeated_batch(1, cfg.max_seq_len, 3));
  EXPECT_EQ(first_non_finite(s), "");
  EXPECT_GE(max_abs(s.logits), 1e3);
}

// ---------------------------------------------------------------------------------------
// Training errors: a non-finite step changes nothing
// ---------------------------------------------------------------------------------------

template <class P>
class TrainerErrors : public ::testing::Test {};
TYPED_TEST_SUITE(TrainerErrors, SomePolicies, test::PolicyName);

template <class T>
std::vector<T> copy_of(std::span<const T> s) {
  return std::vector<T>(s.begin(), s.end());
}
template <class T>
bool same_bits(const std::vector<T>& a, std::span<const T> b) {
  return span_bit_equal<T>(std::span<const T>(a), b);
}

/// Runs train_step expecting NumericalError naming `mention`, and checks that weights,
/// both AdamW moments and the step count are bitwise unchanged.
template <class P>
void expect_refused_step(Trainer<P>& trainer, const Batch& b, const std::string& mention) {
  using T = typename P::scalar;
  auto& model = trainer.model();
  const auto params = copy_of<T>(model.params().flat());
  const auto m = copy_of<T>(trainer.adam_m().flat());
  const auto v = copy_of<T>(trainer.adam_v().flat());
  const std::size_t step = trainer.step();
  EXPECT_THROW_NAMING(NumericalError, [&] { trainer.train_step(b.tokens(), b.targets); },
                      {mention, "train_step " + std::to_string(step + 1)});
  EXPECT_TRUE(same_bits<T>(params, model.params().flat())) << "weights changed";
  EXPECT_TRUE(same_bits<T>(m, trainer.adam_m().flat())) << "first moment changed";
  EXPECT_TRUE(same_bits<T>(v, trainer.adam_v().flat())) << "second moment changed";
  EXPECT_EQ(trainer.step(), step);
}

TYPED_TEST(TrainerErrors, NonFiniteLossLeavesEverythingUntouched) {
  using T = typename TypeParam::scalar;
  const Config cfg = reduced_config();
  Transformer<TypeParam> model(cfg, 21);
  TrainConfig tc;
  tc.lr = 1e-3;
  tc.warmup = 2;
  tc.total_steps = 10;
  Trainer<TypeParam> trainer(model, tc);
  const Batch b = random_batch(2, 8, cfg.vocab_size, 3);
  for (int i = 0; i < 2; ++i) trainer.train_step(b.tokens(), b.targets);  // non-zero moments
  ASSERT_EQ(trainer.step(), 2u);

  const auto clean = copy_of<T>(model.params().flat());
  auto embed = model.params().embed;
  const auto row = static_cast<std::size_t>(b.ids[3]);
  for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                -std::numeric_limits<T>::infinity()}) {
    SCOPED_TRACE(static_cast<double>(bad));
    for (std::size_t j = 0; j < cfg.hidden_dim; ++j) embed(row, j) = bad;
    expect_refused_step(trainer, b, "not finite");
    embed(row, 0) = T(0.5);  // a single poisoned element is enough
    for (std::size_t j = 1; j < cfg.hidden_dim; ++j) embed(row, j) = T(0.5);
    embed(row, 7) = bad;
    expect_refused_step(trainer, b, "not finite");
    std::copy(clean.begin(), clean.end(), model.params().flat().begin());
  }
  // The trainer is still usable and continues from step 2.
  const auto r = trainer.train_step(b.tokens(), b.targets);
  EXPECT_TRUE(std::isfinite(static_cast<double>(r.total)));
  EXPECT_EQ(trainer.step(), 3u);
}

TYPED_TEST(TrainerErrors, NonFiniteGradientLeavesEverythingUntouched) {
  using T = typename TypeParam::scalar;
  // A zero embedding with a tiny (valid) rms_eps: the forward is all zeros, so the loss is
  // a finite log V, but every RMSNorm's backward multiplies by 1/sqrt(eps) (1e15 in float,
  // 1e150 in double), which overflows before the gradient reaches the embedding.
  Config cfg = reduced_config();
  cfg.rms_eps = std::is_same_v<T, float> ? 1e-30 : 1e-300;
  Transformer<TypeParam> model(cfg, 22);
  for (T& x : model.params().flat().subspan(0, cfg.vocab_size * cfg.hidden_dim)) x = T(0);
  Trainer<TypeParam> trainer(model, TrainConfig{});
  const Batch b = random_batch(2, 8, cfg.vocab_size, 4);
  auto ws = model.make_workspace();
  model.forward(b.tokens(), ws);
  const auto l = model.loss(ws, b.targets);
  ASSERT_TRUE(std::isfinite(static_cast<double>(l.total))) << "the setup should give a finite loss";
  expect_refused_step(trainer, b, "gradient norm");
}

}  // namespace
