// The virtual twin (dispatch/virtual.hpp): VirtualTransformer<T, L> with backend::Dynamic
// set to gemm_table<B>() must compute bit for bit what Transformer<Policy<T, L, B>> computes
// (logits, losses, every gradient, parameters after a training step), for every policy of
// this build; the counting gemm table must count the FLOPs of the analytic formula.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "model_check.hpp"
#include "policies.hpp"

namespace {
using namespace rosetta;

// ---------------------------------------------------------------------------------------
// Compile-time properties
// ---------------------------------------------------------------------------------------

static_assert(Backend<backend::Dynamic>);
static_assert(std::string_view(backend::Dynamic::name) == "dynamic");

template <class B, class Tuple>
struct Contains;
template <class B, class... Bs>
struct Contains<B, std::tuple<Bs...>> : std::bool_constant<(std::same_as<B, Bs> || ...)> {};
// Dynamic is not a backend of its own for the typed tests: it only forwards.
static_assert(!Contains<backend::Dynamic, backend::Available>::value);

static_assert(std::same_as<VirtualTransformer<float, ColMajor>::policy,
                           Policy<float, ColMajor, backend::Dynamic>>);
static_assert(
    std::same_as<VirtualTrainer<double, RowMajor>::Model, VirtualTransformer<double, RowMajor>>);
static_assert(std::same_as<Trainer<Policy<float, RowMajor, backend::Naive>>::Model,
                           Transformer<Policy<float, RowMajor, backend::Naive>>>);
static_assert(layers::Stage<layers::AttentionStage<Policy<float, RowMajor, backend::Dynamic>>>);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

constexpr std::uint64_t kSeed = 20240611;

using test::Batch;

/// Deterministic tokens spread over the vocabulary (no RNG involved).
Batch fixed_batch(std::size_t batch, std::size_t seq, std::size_t vocab) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  for (std::size_t i = 0; i < batch * seq; ++i) {
    b.ids.push_back(static_cast<std::int32_t>((i * 131 + 7) % vocab));
    b.targets.push_back(static_cast<std::int32_t>((i * 197 + 3) % vocab));
  }
  return b;
}

/// Every element of m in row-major order.
template <class T, class L>
std::vector<T> elements(MatrixView<const T, L> m) {
  std::vector<T> out;
  out.reserve(m.rows() * m.cols());
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j) out.push_back(m(i, j));
  return out;
}

template <class T>
bool bit_equal(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}
template <class T>
bool bit_equal(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// Empty if both parameter sets are bitwise identical, else the first tensor that differs.
template <class T, class L>
std::string first_difference(const ParamSet<T, L>& a, const ParamSet<T, L>& b) {
  const auto& na = a.named();
  const auto& nb = b.named();
  if (na.size() != nb.size()) return "number of tensors";
  for (std::size_t i = 0; i < na.size(); ++i)
    if (!bit_equal<T>(na[i].flat(), nb[i].flat())) return na[i].name;
  if (!bit_equal<T>(a.flat(), b.flat())) return "the flat block";
  return "";
}

/// What one forward + loss + backward produces.
template <class T, class L>
struct Pass {
  std::vector<T> logits;
  Losses<T> losses;
  ParamSet<T, L> grads;
};

template <class Model>
auto run_pass(const Model& model, const Batch& b) {
  using T = typename Model::policy::scalar;
  using L = typename Model::policy::layout;
  auto ws = model.make_workspace();
  Pass<T, L> p{elements(model.forward(b.tokens(), ws)), {}, ParamSet<T, L>(model.config())};
  p.losses = model.loss(ws, b.targets);
  p.grads.zero();
  model.backward(ws, b.targets, p.grads);
  return p;
}

// ---------------------------------------------------------------------------------------
// Static vs virtual: bit-identical for every policy
// ---------------------------------------------------------------------------------------

template <class P>
class VirtualTwin : public ::testing::Test {};
TYPED_TEST_SUITE(VirtualTwin, test::Policies, test::PolicyName);

TYPED_TEST(VirtualTwin, SameWeightsLogitsLossesAndGradients) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const backend::Dynamic::Scope scope(backend::gemm_table<B>());
  ASSERT_EQ(std::string(backend::Dynamic::table().name), std::string(B::name));

  const Config cfg = Config::tiny();
  const Transformer<TypeParam> fixed(cfg, kSeed);
  const VirtualTransformer<T, L> twin(cfg, kSeed);
  ASSERT_EQ(first_difference(fixed.params(), twin.params()), "") << "initial weights";

  const Batch b = fixed_batch(2, 8, cfg.vocab_size);
  const auto want = run_pass(fixed, b);
  const auto got = run_pass(twin, b);
  ASSERT_EQ(want.logits.size(), 2u * 8u * cfg.vocab_size);
  EXPECT_TRUE(bit_equal<T>(got.logits, want.logits)) << "logits";
  EXPECT_TRUE(bit_equal(got.losses.ce, want.losses.ce))
      << "ce " << got.losses.ce << " vs " << want.losses.ce;
  EXPECT_TRUE(bit_equal(got.losses.aux, want.losses.aux))
      << "aux " << got.losses.aux << " vs " << want.losses.aux;
  EXPECT_TRUE(bit_equal(got.losses.total, want.losses.total))
      << "total " << got.losses.total << " vs " << want.losses.total;
  EXPECT_EQ(first_difference(got.grads, want.grads), "") << "gradients";
  // Not vacuous: the gradients are there.
  bool any_nonzero = false;
  for (T g : want.grads.flat()) any_nonzero = any_nonzero || g != T(0);
  EXPECT_TRUE(any_nonzero);
}

TYPED_TEST(VirtualTwin, OneTrainerStepGivesBitIdenticalParameters) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const backend::Dynamic::Scope scope(backend::gemm_table<B>());

  const Config cfg = Config::tiny();
  Transformer<TypeParam> fixed(cfg, kSeed);
  VirtualTransformer<T, L> twin(cfg, kSeed);
  TrainConfig tc;
  tc.lr = 1e-3;
  tc.warmup = 10;
  tc.total_steps = 100;
  Trainer<TypeParam> fixed_trainer(fixed, tc);
  VirtualTrainer<T, L> twin_trainer(twin, tc);

  const Batch b = fixed_batch(2, 8, cfg.vocab_size);
  const StepResult<T> want = fixed_trainer.train_step(b.tokens(), b.targets);
  const StepResult<T> got = twin_trainer.train_step(b.tokens(), b.targets);
  EXPECT_TRUE(bit_equal(got.total, want.total));
  EXPECT_TRUE(bit_equal(got.grad_norm, want.grad_norm))
      << got.grad_norm << " vs " << want.grad_norm;
  EXPECT_EQ(twin_trainer.step(), 1u);
  EXPECT_EQ(first_difference(twin.params(), fixed.params()), "") << "parameters after the step";
  EXPECT_EQ(first_difference(twin_trainer.adam_m(), fixed_trainer.adam_m()), "") << "AdamW m";
  EXPECT_EQ(first_difference(twin_trainer.adam_v(), fixed_trainer.adam_v()), "") << "AdamW v";
  // The step changed the weights (the comparison above is not of two untouched models).
  const VirtualTransformer<T, L> untouched(cfg, kSeed);
  EXPECT_NE(first_difference(twin.params(), untouched.params()), "");
}

// ---------------------------------------------------------------------------------------
// GradMode::overwrite (what the trainer uses) against zeroing + accumulate
// ---------------------------------------------------------------------------------------

template <class P>
class GradModes : public ::testing::Test {};
TYPED_TEST_SUITE(GradModes, test::Policies, test::PolicyName);

/// Overwriting gradients that hold NaN gives what accumulating into zeros gives (== per
/// element: +0 and -0 count as equal, a NaN left anywhere does not), for the static model and
/// its virtual twin; one token (two of four experts get no token: their gradients must be
/// written as zeros) and sixteen; and overwriting again ignores the previous gradients.
template <class Model>
void check_overwrite(const Model& model, const Batch& b) {
  using T = typename Model::policy::scalar;
  using L = typename Model::policy::layout;
  auto ws = model.make_workspace();
  model.forward(b.tokens(), ws);
  model.loss(ws, b.targets);
  ParamSet<T, L> want(model.config()), got(model.config());
  want.zero();
  model.backward(ws, b.targets, want);
  for (T& g : got.flat()) g = std::numeric_limits<T>::quiet_NaN();
  for (int pass = 0; pass < 2; ++pass) {  // the second pass overwrites the first's gradients
    model.backward(ws, b.targets, got, GradMode::overwrite);
    const auto nw = want.named(), ng = got.named();
    for (std::size_t i = 0; i < nw.size(); ++i) {
      const auto w = nw[i].flat(), g = ng[i].flat();
      std::size_t bad = 0;
      for (std::size_t j = 0; j < w.size(); ++j) bad += !(g[j] == w[j]);
      EXPECT_EQ(bad, 0u) << nw[i].name << " (pass " << pass << ", batch " << b.batch << "x" << b.seq
                         << ")";
    }
  }
}

TYPED_TEST(GradModes, OverwriteEqualsZeroingThenAccumulating) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const backend::Dynamic::Scope scope(backend::gemm_table<B>());
  const Config cfg = Config::tiny();
  const Transformer<TypeParam> fixed(cfg, kSeed);
  const VirtualTransformer<T, L> twin(cfg, kSeed);
  for (const Batch& b : {fixed_batch(1, 1, cfg.vocab_size), fixed_batch(2, 8, cfg.vocab_size)}) {
    check_overwrite(fixed, b);
    check_overwrite(twin, b);
  }
}

// ---------------------------------------------------------------------------------------
// FLOP counting: the counting table against the analytic formula
// ---------------------------------------------------------------------------------------

/// 2·m·n·k of every product one forward issues, from the config alone.
std::uint64_t forward_flops(const Config& c, std::uint64_t batch, std::uint64_t seq) {
  const std::uint64_t Tn = batch * seq, H = c.hidden_dim, qd = c.q_dim(), kvd = c.kv_dim();
  std::uint64_t per_layer = 0;
  per_layer += 2 * Tn * H * (qd + 2 * kvd);                           // q, k, v projections
  per_layer += 2 * Tn * qd * H;                                       // output projection
  per_layer += batch * c.n_heads * 2 * (2 * seq * seq * c.head_dim);  // scores, P·V
  per_layer += 2 * Tn * H * c.n_experts;                              // router
  per_layer += 2 * (Tn * c.top_k) * H * c.ffn_dim * 3;                // w1, w3, w2 per slot
  return c.n_layers * per_layer + 2 * Tn * H * c.vocab_size;          // + LM head
}

template <class P>
class VirtualFlops : public ::testing::Test {};
TYPED_TEST_SUITE(VirtualFlops, test::Policies, test::PolicyName);

TYPED_TEST(VirtualFlops, CountingTableCountsTheAnalyticForwardFlops) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const Config cfg = Config::tiny();
  const std::uint64_t expected = forward_flops(cfg, 2, 32);
  // The benchmark schema quotes 37.1 M for this case.
  EXPECT_GE(expected, 37'050'000u);
  EXPECT_LT(expected, 37'150'000u);

  const VirtualTransformer<T, L> model(cfg, kSeed);
  auto ws = model.make_workspace();
  const Batch b = fixed_batch(2, 32, cfg.vocab_size);
  std::vector<T> plain, counted;
  {
    const backend::Dynamic::Scope scope(backend::gemm_table<B>());
    backend::flop_counter() = 0;
    plain = elements(model.forward(b.tokens(), ws));
    EXPECT_EQ(backend::flop_counter(), 0u) << "the plain table does not count";
  }
  {
    const backend::Dynamic::Scope scope(backend::counting_gemm_table<B>());
    EXPECT_EQ(std::string(backend::Dynamic::table().name), "counting:" + std::string(B::name));
    backend::flop_counter() = 0;
    counted = elements(model.forward(b.tokens(), ws));
    EXPECT_EQ(backend::flop_counter(), expected);
    backend::flop_counter() = 0;
  }
  EXPECT_TRUE(bit_equal<T>(counted, plain)) << "counting changes no result";
}

// ---------------------------------------------------------------------------------------
// Dynamic's selection, the stages, errors
// ---------------------------------------------------------------------------------------

TEST(Dynamic, DefaultsToNaiveAndScopesRestore) {
  const backend::GemmTable& before = backend::Dynamic::table();
  EXPECT_EQ(&before, &backend::gemm_table<backend::Naive>());
  EXPECT_STREQ(before.name, "naive");
  {
    const backend::Dynamic::Scope outer(backend::counting_gemm_table<backend::Naive>());
    EXPECT_EQ(&backend::Dynamic::table(), &backend::counting_gemm_table<backend::Naive>());
    {
      const backend::Dynamic::Scope inner(backend::gemm_table<backend::Naive>());
      EXPECT_EQ(&backend::Dynamic::table(), &backend::gemm_table<backend::Naive>());
    }
    EXPECT_EQ(&backend::Dynamic::table(), &backend::counting_gemm_table<backend::Naive>());
  }
  EXPECT_EQ(&backend::Dynamic::table(), &before);
  backend::Dynamic::set(backend::counting_gemm_table<backend::Naive>());
  EXPECT_EQ(&backend::Dynamic::table(), &backend::counting_gemm_table<backend::Naive>());
  backend::Dynamic::set(before);
  EXPECT_EQ(&backend::Dynamic::table(), &before);
}

TEST(Dynamic, GemmForwardsAndCountsIssuedShapes) {
  const backend::Dynamic::Scope scope(backend::counting_gemm_table<backend::Naive>());
  // op(A) = A^T: 3x2 (A is 2x3), op(B) = B: 2x4  ->  m=3, n=4, k=2
  std::vector<double> a = {1, 2, 3, 4, 5, 6}, bm = {1, 0, 2, 1, 0, 1, 1, 3}, c(12, -1.0);
  backend::flop_counter() = 0;
  backend::Dynamic::gemm(Op::T, Op::N, 1.0, MatrixView<const double, RowMajor>(a.data(), 2, 3),
                         MatrixView<const double, RowMajor>(bm.data(), 2, 4), 0.0,
                         MatrixView<double, RowMajor>(c.data(), 3, 4));
  EXPECT_EQ(backend::flop_counter(), 2u * 3u * 4u * 2u);
  // C[i][j] = sum_p A[p][i] B[p][j]
  const std::vector<double> want = {1, 4, 6, 13, 2, 5, 9, 17, 3, 6, 12, 21};
  EXPECT_EQ(c, want);
  // A failing gemm counts nothing.
  EXPECT_THROW(
      backend::Dynamic::gemm(Op::N, Op::N, 1.0, MatrixView<const double, RowMajor>(a.data(), 2, 3),
                             MatrixView<const double, RowMajor>(bm.data(), 2, 4), 0.0,
                             MatrixView<double, RowMajor>(c.data(), 2, 4)),
      ShapeError);
  EXPECT_EQ(backend::flop_counter(), 2u * 3u * 4u * 2u);
  backend::flop_counter() = 0;
}

TEST(Dynamic, TableWithoutAnEntryIsABackendError) {
  backend::GemmTable partial = backend::gemm_table<backend::Naive>();
  partial.name = "partial";
  partial.float_col = nullptr;
  const backend::Dynamic::Scope scope(partial);
  std::vector<float> a(4, 1.0f), c(4, 0.0f);
  const MatrixView<const float, ColMajor> A(a.data(), 2, 2);
  try {
    backend::Dynamic::gemm(Op::N, Op::N, 1.0f, A, A, 0.0f,
                           MatrixView<float, ColMajor>(c.data(), 2, 2));
    ADD_FAILURE() << "did not throw";
  } catch (const BackendError& e) {
    EXPECT_NE(std::string(e.what()).find("partial"), std::string::npos) << e.what();
  }
}

TEST(VirtualTransformer, StagesInForwardOrder) {
  Config cfg = Config::tiny();
  cfg.n_layers = 3;
  const VirtualTransformer<float, RowMajor> model(cfg, 1);
  std::vector<std::string> names;
  for (const auto& s : model.stages()) names.push_back(s->name());
  const std::vector<std::string> want = {
      "embedding",    "layers.0.attention", "layers.0.moe", "layers.1.attention",
      "layers.1.moe", "layers.2.attention", "layers.2.moe", "head"};
  EXPECT_EQ(names, want);
}

TEST(VirtualTransformer, LossBeforeForwardAndBadTokensAreRejected) {
  const Config cfg = Config::tiny();
  const VirtualTransformer<double, ColMajor> model(cfg, 1);
  auto ws = model.make_workspace();
  ParamSet<double, ColMajor> grads(cfg);
  Batch b = fixed_batch(2, 8, cfg.vocab_size);
  EXPECT_THROW(model.loss(ws, b.targets), ValueError);
  EXPECT_THROW(model.backward(ws, b.targets, grads), ValueError);
  b.ids[3] = -1;
  EXPECT_THROW(model.forward(b.tokens(), ws), IndexError);
  Config bad = cfg;
  bad.top_k = 9;
  using Model = VirtualTransformer<float, RowMajor>;
  EXPECT_THROW(Model{bad}, ConfigError);
}

}  // namespace
