// convergence: the contract's reference training run. Tiny model, batch 2 x seq 8, inputs
// 0..15, targets 1..16, the same batch every step; lr 1e-3, warmup 10, total 1200, clip 1,
// aux 0.01. Prints the loss curve, writes it as CSV and JSON, and ends with
//   final step=<n> ce=<x> aux=<x> total=<x>
// With --max-ce / --max-total it exits non-zero if the final losses are not below them.
#include <fmt/core.h>
#include <fmt/os.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <rosetta/dispatch/select.hpp>
#include <rosetta/rosetta.hpp>
#include <vector>

namespace {
using namespace rosetta;

struct Options {
  std::string scalar = "float", layout = "row", backend = default_backend();
  std::size_t steps = 1000, every = 50;
  std::uint64_t seed = 42;
  std::string csv = "convergence.csv", json = "convergence.json", plot = "convergence.svg";
  double max_ce = -1, max_total = -1;
  std::string plot_script;
};

struct Row {
  std::size_t step;
  double ce, aux, total, grad_norm, lr;
};

template <class P>
int run(const Options& o) {
  Transformer<P> model(Config::tiny(), o.seed);
  TrainConfig tc;
  tc.lr = 1e-3;
  tc.warmup = 10;
  tc.total_steps = 1200;
  tc.clip = 1.0;
  Trainer<P> trainer(model, tc);
  std::vector<std::int32_t> tokens(16), targets(16);
  for (int i = 0; i < 16; ++i) tokens[i] = i, targets[i] = i + 1;
  const TokenBatch batch{tokens, 2, 8};

  fmt::print("convergence: policy {} seed {} steps {}\n", P::name(), o.seed, o.steps);
  std::vector<Row> rows;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t s = 1; s <= o.steps; ++s) {
    const auto r = trainer.train_step(batch, targets);
    rows.push_back({s, double(r.ce), double(r.aux), double(r.total), r.grad_norm, r.lr});
    if (s == 1 || s % o.every == 0 || s == o.steps)
      fmt::print("step {:5d}  ce {:10.4e}  aux {:.5f}  total {:.6f}  |g| {:9.3e}  lr {:.2e}\n", s,
                 r.ce, r.aux, r.total, r.grad_norm, r.lr);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  {
    std::ofstream csv(o.csv);
    csv << "step,ce,aux,total,grad_norm,lr\n";
    for (const auto& r : rows)
      csv << fmt::format("{},{:.10e},{:.10e},{:.10e},{:.6e},{:.6e}\n", r.step, r.ce, r.aux, r.total,
                         r.grad_norm, r.lr);
    if (!csv) {
      fmt::print(stderr, "convergence: cannot write {}\n", o.csv);
      return 2;
    }
  }
  {
    nlohmann::json j;
    j["policy"] = P::name();
    j["seed"] = o.seed;
    j["seconds"] = secs;
    for (const auto& r : rows)
      j["curve"].push_back({{"step", r.step},
                            {"ce", r.ce},
                            {"aux", r.aux},
                            {"total", r.total},
                            {"grad_norm", r.grad_norm},
                            {"lr", r.lr}});
    std::ofstream(o.json) << j.dump(1) << "\n";
  }
  fmt::print("wrote {} and {} ({:.1f} s, {:.2f} ms/step)\n", o.csv, o.json, secs,
             1e3 * secs / double(o.steps));
  if (!o.plot_script.empty() && !o.plot.empty()) {
    const std::string cmd = fmt::format("python3 '{}' '{}' '{}'", o.plot_script, o.csv, o.plot);
    std::fflush(stdout);  // keep our lines before the script's
    if (std::system(cmd.c_str()) != 0)
      fmt::print("plot: skipped ({} failed; install python3-matplotlib for the plot)\n", cmd);
  }
  const Row& last = rows.back();
  fmt::print("final step={} ce={:.6e} aux={:.6e} total={:.6e}\n", last.step, last.ce, last.aux,
             last.total);
  bool ok = true;
  if (o.max_ce >= 0 && !(last.ce < o.max_ce)) {
    fmt::print(stderr, "FAIL: final ce {:.3e} is not below {:.3e}\n", last.ce, o.max_ce);
    ok = false;
  }
  if (o.max_total >= 0 && !(last.total < o.max_total)) {
    fmt::print(stderr, "FAIL: final total {:.4e} is not below {:.4e}\n", last.total, o.max_total);
    ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"convergence: the contract's reference training run (tiny preset)"};
  app.add_option("--scalar", o.scalar, "float or double")
      ->check(CLI::IsMember({"float", "double"}));
  app.add_option("--layout", o.layout, "row or col")->check(CLI::IsMember({"row", "col"}));
  app.add_option("--backend", o.backend,
                 "one of: " + fmt::format("{}", fmt::join(available_backends(), ", ")))
      ->check(CLI::IsMember(available_backends()));
  app.add_option("--steps", o.steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--every", o.every, "print every N steps")->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "initialisation seed");
  app.add_option("--csv", o.csv, "loss curve as CSV");
  app.add_option("--json", o.json, "loss curve as JSON");
  app.add_option("--plot", o.plot, "loss-curve plot (SVG or PNG by extension)");
  app.add_option("--plot-script", o.plot_script, "plotting script (scripts/plot_convergence.py)");
  app.add_option("--max-ce", o.max_ce, "exit 1 unless the final cross-entropy is below this");
  app.add_option("--max-total", o.max_total, "exit 1 unless the final total loss is below this");
  CLI11_PARSE(app, argc, argv);
  try {
    int rc = 0;
    visit_policy(o.scalar, o.layout, o.backend, [&]<class P>() { rc = run<P>(o); });
    return rc;
  } catch (const std::exception& e) {
    fmt::print(stderr, "convergence: error: {}\n", e.what());
    return 2;
  }
}
