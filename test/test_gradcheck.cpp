// Gradient checks: every kernel's hand-derived backward, and the whole model's backward,
// against central differences in double precision.
//
// Method (per kernel): random inputs from rosetta::Rng with fixed seeds, a random upstream
// tensor R of the output's shape, the scalar L = sum(R * forward_output) (or the kernel's own
// scalar loss), analytic gradients from the backward with dy = R, and the numeric gradient
// (L(x + h) - L(x - h)) / 2h for EVERY element of every differentiated input. The error of a
// tensor is ||analytic - numeric|| / ||numeric|| and must be <= 1e-6.
//
// Backward outputs documented as accumulating are pre-filled with random values (and the
// pre-fill subtracted afterwards); outputs documented as overwritten are pre-filled with
// garbage. So the accumulate/overwrite contract of each comment is checked as well.
//
// Top-k routing is piecewise constant in its inputs: a perturbation that changes the set of
// experts selected for any token is skipped (counted; most must survive).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "policies.hpp"
#include "rosetta/kernels/attention.hpp"
#include "rosetta/kernels/cross_entropy.hpp"
#include "rosetta/kernels/embedding.hpp"
#include "rosetta/kernels/linear.hpp"
#include "rosetta/kernels/rmsnorm.hpp"
#include "rosetta/kernels/rope.hpp"
#include "rosetta/kernels/router.hpp"
#include "rosetta/kernels/softmax.hpp"
#include "rosetta/kernels/swiglu.hpp"

namespace {
using namespace rosetta;
using namespace rosetta::kernels;

constexpr double kTol = 1e-6;  // ||analytic - numeric|| / ||numeric||
constexpr double kH = 1e-5;    // central-difference step

// ---------------------------------------------------------------------------------------
// Summary: the worst error per kernel and the skip counts, printed after all tests.

struct Summary {
  std::map<std::string, double> worst;
  std::map<std::string, std::pair<std::size_t, std::size_t>> skips;  // skipped, tried
};
Summary& summary() {
  static Summary s;
  return s;
}

class SummaryPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf("[gradcheck] worst relative error per check (tolerance %.0e):\n", kTol);
    for (const auto& [k, v] : summary().worst) std::printf("  %-28s %.3e\n", k.c_str(), v);
    for (const auto& [k, v] : summary().skips)
      std::printf("  skipped (top-k flip) %-16s %zu of %zu perturbations\n", k.c_str(), v.first,
                  v.second);
  }
};
[[maybe_unused]] ::testing::Environment* const kSummaryEnv =
    ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

// ---------------------------------------------------------------------------------------
// Dense test matrices.

template <class L>
struct Mat {
  std::size_t rows, cols;
  std::vector<double> d;
  Mat(std::size_t r, std::size_t c, double fill = 0) : rows(r), cols(c), d(r * c, fill) {}
  MatrixView<double, L> v() { return MatrixView<double, L>(d.data(), rows, cols); }
  MatrixView<const double, L> cv() const {
    return MatrixView<const double, L>(d.data(), rows, cols);
  }
  std::span<double> s() { return d; }
  std::span<const double> cs() const { return d; }
};

void fill_normal(std::span<double> x, Rng& rng, double mean = 0, double sd = 1) {
  for (double& e : x) e = mean + sd * rng.normal();
}

double dot(std::span<const double> a, std::span<const double> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// a - b elementwise (removes the pre-fill of an accumulating gradient buffer).
std::vector<double> minus(std::span<const double> a, std::span<const double> b) {
  std::vector<double> r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] - b[i];
  return r;
}

// ---------------------------------------------------------------------------------------
// The numeric check.

struct CheckResult {
  double rel_err = 0;
  double num_norm = 0;
  std::size_t checked = 0, skipped = 0;
  std::size_t worst_index = 0;
  double worst_analytic = 0, worst_numeric = 0;
};

/// A loss evaluation; std::nullopt means "a discrete choice flipped: skip this perturbation".
using LossFn = std::function<std::optional<double>()>;

/// Central differences over the elements `which` of x (all elements if empty) against the
/// analytic gradient (same storage order as x). x is restored afterwards.
CheckResult numeric_check(std::span<double> x, std::span<const double> analytic, const LossFn& loss,
                          double h = kH, const std::vector<std::size_t>& which = {}) {
  EXPECT_EQ(x.size(), analytic.size());
  CheckResult r;
  double diff2 = 0, num2 = 0, worst = -1;
  const std::size_t n = which.empty() ? x.size() : which.size();
  for (std::size_t c = 0; c < n; ++c) {
    const std::size_t j = which.empty() ? c : which[c];
    const double x0 = x[j];
    x[j] = x0 + h;
    const auto lp = loss();
    x[j] = x0 - h;
    const auto lm = loss();
    x[j] = x0;
    if (!lp || !lm) {
      ++r.skipped;
      continue;
    }
    ++r.checked;
    const double num = (*lp - *lm) / (2 * h);
    const double diff = analytic[j] - num;
    diff2 += diff * diff;
    num2 += num * num;
    if (std::abs(diff) > worst) {
      worst = std::abs(diff);
      r.worst_index = j;
      r.worst_analytic = analytic[j];
      r.worst_numeric = num;
    }
  }
  r.num_norm = std::sqrt(num2);
  // A tensor the loss does not depend on at all (e.g. an expert no token was routed to):
  // the numeric gradient is exactly zero and so must the analytic one be.
  r.rel_err = num2 > 0 ? std::sqrt(diff2 / num2) : (diff2 == 0 ? 0.0 : INFINITY);
  return r;
}

/// Records and checks one tensor's result.
void expect_grad(const std::string& kernel, const std::string& what, const CheckResult& r) {
  auto& w = summary().worst[kernel];
  w = std::max(w, r.rel_err);
  EXPECT_LE(r.rel_err, kTol) << kernel << ": d/d" << what << " relative error " << r.rel_err
                             << " (||numeric|| = " << r.num_norm << ", " << r.checked
                             << " elements checked, " << r.skipped << " skipped); worst element "
                             << r.worst_index << ": analytic " << r.worst_analytic << " vs numeric "
                             << r.worst_numeric;
  EXPECT_GT(r.checked, 0u) << kernel << ": d/d" << what << ": nothing was checked";
}

// ---------------------------------------------------------------------------------------
// Kernel checks, typed over (layout x backend) with T = double.

template <class B>
using DoublePolicies = test::List<Policy<double, RowMajor, B>, Policy<double, ColMajor, B>>;
template <class Tuple>
struct AllDouble;
template <>
struct AllDouble<std::tuple<>> {
  using type = test::List<>;
};
template <class B, class... Bs>
struct AllDouble<std::tuple<B, Bs...>> {
  using type =
      typename test::Concat<DoublePolicies<B>, typename AllDouble<std::tuple<Bs...>>::type>::type;
};
using KernelPolicies = test::ToGTest<AllDouble<backend::Available>::type>::type;

template <class P>
class GradKernel : public ::testing::Test {};
TYPED_TEST_SUITE(GradKernel, KernelPolicies, test::PolicyName);

TYPED_TEST(GradKernel, Embedding) {
  using L = typename TypeParam::layout;
  const std::size_t V = 7, H = 6, T = 10;
  Rng rng(101);
  Mat<L> table(V, H), R(T, H), out(T, H);
  fill_normal(table.s(), rng);
  fill_normal(R.s(), rng);
  // Repeated ids (accumulation) and an unused row (zero gradient).
  const std::vector<std::int32_t> tokens = {3, 0, 5, 3, 1, 6, 3, 0, 2, 5};
  auto loss = [&]() -> std::optional<double> {
    embedding_forward(out.v(), table.cv(), tokens);
    return dot(R.cs(), out.cs());
  };
  Mat<L> dtable(V, H), pre(V, H);
  fill_normal(pre.s(), rng);
  dtable.d = pre.d;  // accumulates
  embedding_backward(dtable.v(), R.cv(), tokens);
  expect_grad("embedding", "table", numeric_check(table.s(), minus(dtable.cs(), pre.cs()), loss));
}

TYPED_TEST(GradKernel, RMSNorm) {
  using L = typename TypeParam::layout;
  const std::size_t T = 6, H = 8;
  for (const double eps : {1e-6, 0.5}) {
    Rng rng(202);
    Mat<L> x(T, H), R(T, H), y(T, H);
    std::vector<double> g(H), rstd(T);
    fill_normal(x.s(), rng);
    fill_normal(R.s(), rng);
    fill_normal(g, rng, 1.0, 0.5);
    auto loss = [&]() -> std::optional<double> {
      rmsnorm_forward(y.v(), std::span<double>(rstd), x.cv(), g, eps);
      return dot(R.cs(), y.cs());
    };
    loss();
    Mat<L> dx(T, H), prex(T, H);
    std::vector<double> dg(H), preg(H);
    fill_normal(prex.s(), rng);
    fill_normal(preg, rng);
    dx.d = prex.d;  // both accumulate
    dg = preg;
    rmsnorm_backward(dx.v(), std::span<double>(dg), R.cv(), x.cv(), g, rstd);
    expect_grad("rmsnorm", "x", numeric_check(x.s(), minus(dx.cs(), prex.cs()), loss));
    expect_grad("rmsnorm", "g", numeric_check(g, minus(dg, preg), loss));
  }
}

TYPED_TEST(GradKernel, Linear) {
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const std::size_t T = 5, In = 7, Out = 4;
  Rng rng(303);
  Mat<L> x(T, In), W(Out, In), R(T, Out), y(T, Out);
  fill_normal(x.s(), rng);
  fill_normal(W.s(), rng);
  fill_normal(R.s(), rng);
  auto loss = [&]() -> std::optional<double> {
    linear_forward<B>(y.v(), x.cv(), W.cv());
    return dot(R.cs(), y.cs());
  };
  // dx_beta = 0: dx overwritten (garbage before); dW accumulates.
  Mat<L> dx(T, In, 1e3), dW(Out, In), preW(Out, In);
  fill_normal(preW.s(), rng);
  dW.d = preW.d;
  linear_backward<B>(dx.v(), dW.v(), R.cv(), x.cv(), W.cv(), 0.0);
  expect_grad("linear", "x", numeric_check(x.s(), dx.cs(), loss));
  expect_grad("linear", "W", numeric_check(W.s(), minus(dW.cs(), preW.cs()), loss));
  // dx_beta = 1 (the default): dx accumulates.
  Mat<L> dx2(T, In), prex(T, In), dW2(Out, In);
  fill_normal(prex.s(), rng);
  dx2.d = prex.d;
  linear_backward<B>(dx2.v(), dW2.v(), R.cv(), x.cv(), W.cv());
  expect_grad("linear", "x (accumulated)", numeric_check(x.s(), minus(dx2.cs(), prex.cs()), loss));
}

TYPED_TEST(GradKernel, RoPE) {
  using L = typename TypeParam::layout;
  const std::size_t batch = 2, seq = 5, T = batch * seq, hd = 6, heads = 2, pos0 = 3;
  const std::size_t max_seq = 16, half = hd / 2;
  for (const double alpha : {1.0, 2.0}) {
    std::vector<double> cs(max_seq * half), sn(max_seq * half);
    rope_tables(std::span<double>(cs), std::span<double>(sn), max_seq, hd, 10000.0, alpha);
    Rng rng(404);
    Mat<L> x(T, heads * hd), R(T, heads * hd), y(T, heads * hd);
    fill_normal(x.s(), rng);
    fill_normal(R.s(), rng);
    auto loss = [&]() -> std::optional<double> {
      y.d = x.d;
      rope_forward(y.v(), hd, seq, pos0, cs, sn);
      return dot(R.cs(), y.cs());
    };
    Mat<L> dx = R;  // in place on the gradient
    rope_backward(dx.v(), hd, seq, pos0, cs, sn);
    expect_grad(alpha > 1 ? "rope (alpha=2, NTK)" : "rope (alpha=1)", "x",
                numeric_check(x.s(), dx.cs(), loss));
  }
}

TYPED_TEST(GradKernel, Softmax) {
  using L = typename TypeParam::layout;
  const std::size_t R_ = 4, C = 7;
  Rng rng(505);
  Mat<L> x(R_, C), R(R_, C), y(R_, C);
  fill_normal(x.s(), rng, 0, 2);
  fill_normal(R.s(), rng);
  auto loss = [&]() -> std::optional<double> {
    softmax_forward(y.v(), x.cv());
    return dot(R.cs(), y.cs());
  };
  loss();
  Mat<L> dx(R_, C, 1e3);  // overwritten
  softmax_backward(dx.v(), R.cv(), y.cv());
  expect_grad("softmax", "x", numeric_check(x.s(), dx.cs(), loss));
  // The documented aliasing (dx == dy) gives the same result.
  loss();  // y at the unperturbed x again
  Mat<L> alias = R;
  softmax_backward(alias.v(), alias.cv(), y.cv());
  EXPECT_EQ(alias.d, dx.d);
}

TYPED_TEST(GradKernel, SwiGLU) {
  using L = typename TypeParam::layout;
  const std::size_t N = 5, F = 6;
  Rng rng(606);
  Mat<L> g(N, F), u(N, F), R(N, F), a(N, F);
  fill_normal(g.s(), rng, 0, 2);
  fill_normal(u.s(), rng);
  fill_normal(R.s(), rng);
  auto loss = [&]() -> std::optional<double> {
    swiglu_forward(a.v(), g.cv(), u.cv());
    return dot(R.cs(), a.cs());
  };
  Mat<L> dg(N, F, 1e3), du(N, F, 1e3);  // overwritten
  swiglu_backward(dg.v(), du.v(), R.cv(), g.cv(), u.cv());
  expect_grad("swiglu", "g", numeric_check(g.s(), dg.cs(), loss));
  expect_grad("swiglu", "u", numeric_check(u.s(), du.cs(), loss));
}

TYPED_TEST(GradKernel, Attention) {
  using L = typename TypeParam::layout;
  using B = typename TypeParam::backend;
  const std::size_t batch = 2, S = 5, T = batch * S, heads = 4, hd = 4;
  for (const std::size_t kv : {std::size_t{1}, std::size_t{2}}) {
    const std::string name = kv == 1 ? "attention (MQA)" : "attention (GQA 2)";
    const AttentionDims d{batch, S, S, S, heads, kv, hd};
    Rng rng(707 + kv);
    Mat<L> q(T, heads * hd), k(T, kv * hd), v(T, kv * hd), R(T, heads * hd);
    Mat<L> o(T, heads * hd), P(batch * heads * S, S);
    fill_normal(q.s(), rng);
    fill_normal(k.s(), rng);
    fill_normal(v.s(), rng);
    fill_normal(R.s(), rng);
    auto loss = [&]() -> std::optional<double> {
      attention_forward<B>(o.v(), P.v(), q.cv(), k.cv(), v.cv(), d);
      return dot(R.cs(), o.cs());
    };
    loss();  // P for the backward
    Mat<L> dq(T, heads * hd, 1e3), dk(T, kv * hd), dv(T, kv * hd), dP(S * heads / kv, S, 1e3);
    Mat<L> prek(T, kv * hd), prev(T, kv * hd);
    fill_normal(prek.s(), rng);
    fill_normal(prev.s(), rng);
    dk.d = prek.d;  // dk, dv accumulate; dq is overwritten
    dv.d = prev.d;
    attention_backward<B>(dq.v(), dk.v(), dv.v(), dP.v(), R.cv(), q.cv(), k.cv(), v.cv(), P.cv(),
                          d);
    expect_grad(name, "q", numeric_check(q.s(), dq.cs(), loss));
    expect_grad(name, "k", numeric_check(k.s(), minus(dk.cs(), prek.cs()), loss));
    expect_grad(name, "v", numeric_check(v.s(), minus(dv.cs(), prev.cs()), loss));
  }
}

/// The selected expert set of every token (order inside a token's k choices does not matter:
/// the MoE output and the aux loss are symmetric in it).
std::vector<std::int32_t> selection_sets(std::span<const std::int32_t> idx, std::size_t k) {
  std::vector<std::int32_t> s(idx.begin(), idx.end());
  for (std::size_t t = 0; t * k < s.size(); ++t)
    std::sort(s.begin() + static_cast<std::ptrdiff_t>(t * k),
              s.begin() + static_cast<std::ptrdiff_t>((t + 1) * k));
  return s;
}

TYPED_TEST(GradKernel, RouterAndAuxLoss) {
  using L = typename TypeParam::layout;
  const std::size_t T = 10, E = 4;
  struct Case {
    const char* name;
    std::size_t k;
    double alpha, aux_scale;
    bool use_w;  // include sum(R_w * w) in L
  };
  const Case cases[] = {
      {"router (k=2, w+aux)", 2, 0.5, 1.0, true},      {"router (k=1, w+aux)", 1, 0.5, 1.0, true},
      {"router (k=E, w+aux)", E, 0.5, 1.0, true},      {"router (k=2, w only)", 2, 0.0, 1.0, true},
      {"router (k=2, scaled aux)", 2, 0.5, 0.3, true}, {"aux_loss (k=2)", 2, 0.5, 1.0, false},
      {"aux_loss (k=1)", 1, 0.5, 1.0, false},
  };
  std::size_t skipped = 0, tried = 0;
  for (const Case& c : cases) {
    Rng rng(808);
    const std::size_t slots = T * c.k;
    Mat<L> logits(T, E), probs(T, E);
    std::vector<double> Rw(slots), w(slots), f(E);
    std::vector<std::int32_t> idx(slots);
    fill_normal(logits.s(), rng);
    fill_normal(Rw, rng);
    if (!c.use_w) std::fill(Rw.begin(), Rw.end(), 0.0);
    auto forward = [&]() {
      router_forward(probs.v(), std::span<std::int32_t>(idx), std::span<double>(w), logits.cv(),
                     c.k);
      const double aux = aux_loss_forward(std::span<double>(f), probs.cv(),
                                          std::span<const std::int32_t>(idx), c.alpha);
      return dot(Rw, w) + c.aux_scale * aux;
    };
    forward();
    const auto base_sel = selection_sets(idx, c.k);
    const std::vector<double> base_w = w, base_f = f;
    const Mat<L> base_probs = probs;
    const std::vector<std::int32_t> base_idx = idx;
    auto loss = [&]() -> std::optional<double> {
      const double l = forward();
      if (selection_sets(idx, c.k) != base_sel) return std::nullopt;
      return l;
    };
    Mat<L> dlogits(T, E, 1e3);  // overwritten
    router_backward(dlogits.v(), std::span<const double>(Rw), base_probs.cv(),
                    std::span<const std::int32_t>(base_idx), std::span<const double>(base_w),
                    std::span<const double>(base_f), c.alpha, c.k, c.aux_scale);
    const auto r = numeric_check(logits.s(), dlogits.cs(), loss);
    expect_grad(c.name, "logits", r);
    skipped += r.skipped;
    tried += r.skipped + r.checked;
    EXPECT_LE(r.skipped * 10, r.skipped + r.checked) << c.name << ": too many top-k flips";
  }
  auto& s = summary().skips["router kernel"];
  s.first += skipped;
  s.second += tried;
}

TYPED_TEST(GradKernel, RouterSkipsPerturbationsThatFlipTopK) {
  // Token 0's 2nd and 3rd experts tie to within h/2: moving either logit by h swaps which one
  // is selected, and exactly those two perturbations must be skipped (moving the other logits
  // of token 0 scales p1 and p2 alike, so it cannot flip them).
  using L = typename TypeParam::layout;
  const std::size_t T = 6, E = 4, k = 2, slots = T * k;
  const double alpha = 0.5;
  Rng rng(818);
  Mat<L> logits(T, E), probs(T, E);
  std::vector<double> Rw(slots), w(slots), f(E);
  std::vector<std::int32_t> idx(slots);
  fill_normal(logits.s(), rng);
  fill_normal(Rw, rng);
  auto lv = logits.v();
  lv(0, 0) = 2.0;
  lv(0, 1) = 0.3;
  lv(0, 2) = 0.3 + 0.3 * kH;
  lv(0, 3) = -1.0;
  auto forward = [&]() {
    router_forward(probs.v(), std::span<std::int32_t>(idx), std::span<double>(w), logits.cv(), k);
    return dot(Rw, w) + aux_loss_forward(std::span<double>(f), probs.cv(),
                                         std::span<const std::int32_t>(idx), alpha);
  };
  forward();
  const auto base_sel = selection_sets(idx, k);
  ASSERT_EQ(base_sel[0], 0);
  ASSERT_EQ(base_sel[1], 2);
  Mat<L> dlogits(T, E);
  router_backward(dlogits.v(), std::span<const double>(Rw), probs.cv(),
                  std::span<const std::int32_t>(idx), std::span<const double>(w),
                  std::span<const double>(f), alpha, k);
  auto loss = [&]() -> std::optional<double> {
    const double l = forward();
    if (selection_sets(idx, k) != base_sel) return std::nullopt;
    return l;
  };
  const auto r = numeric_check(logits.s(), dlogits.cs(), loss);
  EXPECT_EQ(r.skipped, 2u);
  expect_grad("router (near-tie, skips)", "logits", r);
  auto& s = summary().skips["router near-tie"];
  s.first += r.skipped;
  s.second += r.skipped + r.checked;
}

TYPED_TEST(GradKernel, CrossEntropy) {
  using L = typename TypeParam::layout;
  const std::size_t T = 6, V = 9;
  for (const double dloss : {1.0, 0.37}) {
    Rng rng(909);
    Mat<L> logits(T, V);
    std::vector<double> lse(T);
    fill_normal(logits.s(), rng, 0, 2);
    std::vector<std::int32_t> targets(T);
    for (auto& t : targets) t = static_cast<std::int32_t>(rng.below(V));
    auto loss = [&]() -> std::optional<double> {
      return dloss * cross_entropy_forward(std::span<double>(lse), logits.cv(), targets);
    };
    loss();
    Mat<L> dlogits(T, V, 1e3);  // overwritten
    cross_entropy_backward(dlogits.v(), logits.cv(), std::span<const double>(lse), targets, dloss);
    expect_grad(dloss == 1.0 ? "cross_entropy" : "cross_entropy (dloss=0.37)", "logits",
                numeric_check(logits.s(), dlogits.cs(), loss));
  }
}

// ---------------------------------------------------------------------------------------
// The whole model: Transformer<Policy<double, L, Naive>>, loss = ce + aux.

template <class P>
class GradModel : public ::testing::Test {};
using ModelPolicies = ::testing::Types<Policy<double, RowMajor, backend::Naive>,
                                       Policy<double, ColMajor, backend::Naive>>;
TYPED_TEST_SUITE(GradModel, ModelPolicies, test::PolicyName);

Config small_config(std::size_t top_k, std::size_t kv_heads) {
  Config c;
  c.hidden_dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = kv_heads;
  c.head_dim = 4;
  c.n_experts = 4;
  c.top_k = top_k;
  c.ffn_dim = 8;
  c.vocab_size = 11;
  c.max_seq_len = 16;
  c.rope_alpha = 2.0;
  return c;
}

/// Which elements of a parameter tensor of n elements to perturb: all of a small tensor,
/// else kSample distinct ones drawn with a fixed seed (sorted).
constexpr std::size_t kSample = 48;
std::vector<std::size_t> sample_elements(std::size_t n, std::uint64_t stream) {
  std::vector<std::size_t> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = i;
  if (n <= kSample) return all;
  Rng rng(12345, stream);
  for (std::size_t i = 0; i < kSample; ++i) std::swap(all[i], all[i + rng.below(n - i)]);
  all.resize(kSample);
  std::sort(all.begin(), all.end());
  return all;
}

/// The expert a parameter tensor belongs to, as (layer, expert); nullopt for other tensors.
std::optional<std::pair<std::size_t, std::size_t>> expert_of(const std::string& name) {
  unsigned l = 0, e = 0;
  if (std::sscanf(name.c_str(), "layers.%u.block_sparse_moe.experts.%u.", &l, &e) != 2)
    return std::nullopt;
  return std::pair<std::size_t, std::size_t>{l, e};
}

/// Checks every parameter tensor (all elements of small ones, a fixed sample of the others);
/// returns (skipped, tried).
template <class P>
std::pair<std::size_t, std::size_t> model_gradcheck(const Config& cfg, const std::string& name,
                                                    std::uint64_t seed) {
  using T = typename P::scalar;
  using L = typename P::layout;
  Transformer<P> model(cfg, seed);
  auto ws = model.make_workspace();
  const std::size_t batch = 2, seq = 5, Tn = batch * seq, slots = Tn * cfg.top_k;
  Rng rng(seed, 1000);
  std::vector<std::int32_t> ids(Tn), targets(Tn);
  for (auto& t : ids) t = static_cast<std::int32_t>(rng.below(cfg.vocab_size));
  for (auto& t : targets) t = static_cast<std::int32_t>(rng.below(cfg.vocab_size));
  const TokenBatch in{ids, batch, seq};

  auto selections = [&]() {
    std::vector<std::vector<std::int32_t>> s;
    for (const auto& lc : ws.layers)
      s.push_back(selection_sets(std::span<const std::int32_t>(lc.idx.data(), slots), cfg.top_k));
    return s;
  };
  model.forward(in, ws);
  const Losses<T> base = model.loss(ws, targets);
  EXPECT_TRUE(std::isfinite(base.total));
  EXPECT_GT(base.aux, 0.0);
  const auto base_sel = selections();

  ParamSet<T, L> grads(cfg);
  grads.zero();
  model.backward(ws, targets, grads);

  LossFn loss = [&]() -> std::optional<double> {
    model.forward(in, ws);
    const double l = model.loss(ws, targets).total;
    if (selections() != base_sel) return std::nullopt;
    return l;
  };
  std::size_t skipped = 0, tried = 0;
  const auto& named = model.params().named();
  const auto& gnamed = grads.named();
  EXPECT_EQ(named.size(), gnamed.size());
  for (std::size_t i = 0; i < named.size(); ++i) {
    const auto which = sample_elements(named[i].flat().size(), i);
    const auto r = numeric_check(named[i].flat(), gnamed[i].flat(), loss, kH, which);
    expect_grad(name, named[i].name, r);
    skipped += r.skipped;
    tried += r.skipped + r.checked;
    // Only an expert that no token picked may have an identically zero gradient (then the
    // analytic one is exactly zero too, see numeric_check); every other tensor must matter.
    bool used = true;
    if (const auto le = expert_of(named[i].name)) {
      const auto& sel = base_sel[le->first];
      used = std::find(sel.begin(), sel.end(), static_cast<std::int32_t>(le->second)) != sel.end();
    }
    if (used)
      EXPECT_GT(r.num_norm, 0.0) << name << ": " << named[i].name << " has no gradient";
    else
      EXPECT_EQ(r.num_norm, 0.0) << name << ": " << named[i].name << " (unused expert)";
  }
  // The loss is restored bit for bit (every perturbation was undone).
  model.forward(in, ws);
  EXPECT_EQ(model.loss(ws, targets).total, base.total);
  EXPECT_LT(skipped * 5, tried) << name << ": " << skipped << " of " << tried
                                << " perturbations flipped a top-k choice";
  auto& s = summary().skips[name];
  s.first += skipped;
  s.second += tried;
  return {skipped, tried};
}

TYPED_TEST(GradModel, TopK2GQA) {
  model_gradcheck<TypeParam>(small_config(2, 2), "model (k=2, kv=2)", 7);
}

TYPED_TEST(GradModel, TopKAllExpertsMQA) {
  // top_k == n_experts: no routing discontinuity at all, so nothing may be skipped.
  const auto [skipped, tried] =
      model_gradcheck<TypeParam>(small_config(4, 1), "model (k=E=4, kv=1)", 8);
  EXPECT_EQ(skipped, 0u);
  EXPECT_GT(tried, 0u);
}

TYPED_TEST(GradModel, TopK1GQA) {
  model_gradcheck<TypeParam>(small_config(1, 2), "model (k=1, kv=2)", 9);
}

}  // namespace
