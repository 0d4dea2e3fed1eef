// rosetta-check: runs a PyTorch-made fixture (any config, read from its metadata) through
// every compiled policy and compares logits, losses, every gradient, the gradient norm, the
// parameters after one AdamW step, the loss trajectory and the greedy sequence.
// Exit status 0 only if every check of every policy passes.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <regex>
#include <rosetta/generate/generate.hpp>
#include <rosetta/io/checkpoint.hpp>
#include <rosetta/rosetta.hpp>
#include <tuple>
#include <vector>

namespace {
using namespace rosetta;

struct Tolerances {
  double logits, loss, grad, step, traj;
};
template <class T>
Tolerances tolerances() {
  // fixtures/README.md: float64 about 1e-9; float32 1e-4 logits/losses, 1e-3 the rest.
  if constexpr (std::is_same_v<T, double>)
    return {1e-9, 1e-9, 1e-9, 1e-9, 1e-9};
  else
    return {1e-4, 1e-4, 1e-3, 1e-3, 1e-3};
}

/// ||a - b|| / ||b|| (absolute when b == 0).
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

template <class T, class L>
std::vector<double> rowmajor(MatrixView<const T, L> m) {
  std::vector<double> out;
  out.reserve(m.size());
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j) out.push_back(static_cast<double>(m(i, j)));
  return out;
}

struct Report {
  int passed = 0, failed = 0;
  bool verbose = false;
  std::string worst_name;
  void check(const std::string& policy, const std::string& what, double err, double tol) {
    const bool ok = err <= tol && std::isfinite(err);
    ok ? ++passed : ++failed;
    if (verbose || !ok)
      fmt::print("  {:<24} {:<52} err {:9.3e}  tol {:7.1e}  {}\n", policy, what, err, tol,
                 ok ? "PASS" : "FAIL");
  }
};

std::vector<std::int32_t> ids(const io::SafeTensors& st, const char* name) {
  std::vector<std::int32_t> out;
  for (auto v : st.read<std::int64_t>(name)) out.push_back(static_cast<std::int32_t>(v));
  return out;
}

std::size_t mismatches(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  std::size_t n = a.size() == b.size() ? 0 : std::max(a.size(), b.size());
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) n += a[i] != b[i];
  return n;
}

template <class P>
void run_policy(const io::SafeTensors& st, Report& rep) {
  using T = typename P::scalar;
  const std::string pn = P::name();
  const Tolerances tol = tolerances<T>();
  const auto tokens = ids(st, "input.tokens"), targets = ids(st, "input.targets");
  const auto& tshape = st.info("input.tokens").shape;
  if (tshape.size() != 2) detail::raise<CheckpointError>("fixture: input.tokens must be [B, S]");
  const TokenBatch batch{tokens, tshape[0], tshape[1]};
  const auto tj = nlohmann::json::parse(st.metadata().at("train"));
  const TrainConfig tc = io::train_from_json(tj);

  int before = rep.failed;
  // forward, losses, gradients
  auto model = io::load_model<P>(st);
  auto ws = model.make_workspace();
  auto logits = model.forward(batch, ws);
  rep.check(pn, "logits", rel_err(rowmajor(logits), st.read<double>("expect.logits")), tol.logits);
  const auto losses = model.loss(ws, targets);
  rep.check(pn, "loss.ce", rel_err({double(losses.ce)}, st.read<double>("expect.loss.ce")),
            tol.loss);
  rep.check(pn, "loss.aux", rel_err({double(losses.aux)}, st.read<double>("expect.loss.aux")),
            tol.loss);
  rep.check(pn, "loss.total", rel_err({double(losses.total)}, st.read<double>("expect.loss.total")),
            tol.loss);
  ParamSet<T, typename P::layout> grads(model.config());
  grads.zero();
  model.backward(ws, targets, grads);
  double worst = 0;
  std::string worst_name;
  for (const auto& np : grads.named()) {
    const double e = rel_err(rowmajor(MatrixView<const T, typename P::layout>(np.view)),
                             st.read<double>("expect.grad." + np.name));
    rep.check(pn, "grad." + np.name, e, tol.grad);
    if (e > worst) worst = e, worst_name = np.name;
  }
  const double gn = global_norm(std::span<const T>(grads.flat()));
  rep.check(pn, "grad_norm", rel_err({gn}, st.read<double>("expect.grad_norm")), tol.grad);

  // one clipped AdamW step at constant lr
  {
    auto m1 = io::load_model<P>(st);
    Trainer<P> tr(m1, tc);
    tr.train_step(batch, targets, tc.lr);
    double w1 = 0;
    for (const auto& np : m1.params().named())
      w1 = std::max(w1, rel_err(rowmajor(MatrixView<const T, typename P::layout>(np.view)),
                                st.read<double>("expect.step1." + np.name)));
    rep.check(pn, "step1 (worst tensor)", w1, tol.step);
  }
  // loss trajectory with the schedule
  {
    auto m2 = io::load_model<P>(st);
    Trainer<P> tr(m2, tc);
    const auto expect = st.read<double>("expect.train_losses");
    std::vector<double> got;
    for (std::size_t s = 0; s < expect.size(); ++s)
      got.push_back(static_cast<double>(tr.train_step(batch, targets).total));
    rep.check(pn, fmt::format("train_losses ({} steps)", expect.size()), rel_err(got, expect),
              tol.traj);
  }
  // greedy decode: full recomputation and the KV cache must both equal the fixture
  {
    const auto gj = nlohmann::json::parse(st.metadata().at("greedy"));
    const auto prompt = ids(st, "input.prompt");
    const auto expect = ids(st, "expect.greedy");
    const std::size_t max_len = gj.at("max_len").get<std::size_t>();
    const auto full = generate_full_recompute(model, prompt, max_len);
    rep.check(pn, "greedy (full recompute), mismatches", double(mismatches(full, expect)), 0.0);
    const auto cached = generate_greedy(model, prompt, max_len);
    rep.check(pn, "greedy (KV cache), mismatches", double(mismatches(cached, expect)), 0.0);
  }
  fmt::print("{:<26} {}  (worst gradient {:.2e}: {})\n", pn, rep.failed == before ? "PASS" : "FAIL",
             worst, worst_name);
}

template <class B>
void run_backend(const io::SafeTensors& st, Report& rep, const std::regex& filter) {
  auto one = [&]<class P>() {
    if (std::regex_search(P::name(), filter)) run_policy<P>(st, rep);
  };
  one.template operator()<Policy<float, RowMajor, B>>();
  one.template operator()<Policy<float, ColMajor, B>>();
  one.template operator()<Policy<double, RowMajor, B>>();
  one.template operator()<Policy<double, ColMajor, B>>();
}

template <class... Bs>
void run_all(const io::SafeTensors& st, Report& rep, const std::regex& filter, std::tuple<Bs...>*) {
  (run_backend<Bs>(st, rep, filter), ...);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rosetta-check: compare every compiled policy against PyTorch fixtures"};
  std::vector<std::string> files;
  std::string filter = ".*";
  bool verbose = false;
  app.add_option("fixtures", files, "safetensors fixture files")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--policy", filter, "regex over policy names, e.g. 'float/row'");
  app.add_flag("-v,--verbose", verbose, "print every check, not only failures");
  CLI11_PARSE(app, argc, argv);

  Report rep;
  rep.verbose = verbose;
  try {
    const std::regex re(filter);
    for (const auto& f : files) {
      const auto st = io::SafeTensors::load(f);
      const Config c = io::read_config(st);
      fmt::print("{}: hidden {} layers {} heads {}/{} experts {} top-{} vocab {}\n", f,
                 c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.n_experts, c.top_k,
                 c.vocab_size);
      run_all(st, rep, re, static_cast<backend::Available*>(nullptr));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "rosetta-check: error: {}\n", e.what());
    return 2;
  }
  fmt::print("{} passed, {} failed\n", rep.passed, rep.failed);
  return rep.failed == 0 && rep.passed > 0 ? 0 : 1;
}
