// rosetta-rss-probe: the smallest program that runs a reference scenario, to measure what
// one policy costs in resident memory without the rest of rosetta-bench.
//
//   rosetta-rss-probe forward [--iters N]   dispatch_warm: forward, tiny preset, batch 2, seq 32
//   rosetta-rss-probe train [--iters N]     mem_train_step: Trainer::train_step, batch 2, seq 8
//
// Seed 42 and the same token batch as rosetta-bench (bench_batch.hpp); one policy only: float,
// row-major, static dispatch, one backend — HwyGemm when Highway is found, else the default
// backend — the one backend this program is linked with (benchmark/CMakeLists.txt). rosetta-bench's
// 142 scenarios, the virtual twin, CLI11, fmt and the other backends are not in this binary.
// Prints one JSON line: peak_rss_bytes (VmHWM), rss_anon_bytes / rss_file_bytes (RssAnon /
// RssFile after the last iteration, model still alive), baseline_rss_bytes (VmRSS before the
// model is built), the policy name and binary_bytes (size of this executable).
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "bench_batch.hpp"
#include "bench_support.hpp"
#include "rosetta/backend/hwy_gemm.hpp"  // empty without ROSETTA_HAS_HWY
#include "rosetta/rosetta.hpp"

namespace {

using namespace rosetta;
using namespace rosetta::bench;

// Our Highway gemm when this build has Highway (Auto's fallback and the backend it routes most
// shapes to), else the default backend in default_backend()'s order of preference.
#if defined(ROSETTA_HAS_HWY)
using Backend = backend::HwyGemm;
#elif defined(ROSETTA_HAS_EIGEN)
using Backend = backend::Eigen;
#elif defined(ROSETTA_HAS_CBLAS)
using Backend = backend::Cblas;
#elif defined(ROSETTA_HAS_BLIS)
using Backend = backend::Blis;
#else
using Backend = backend::Naive;
#endif
using P = Policy<float, RowMajor, Backend>;

std::string opt(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string("null");
}
std::string number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

int usage() {
  std::fprintf(stderr, "usage: rosetta-rss-probe forward|train [--iters N]  (N >= 1)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const auto baseline = proc_status_bytes("VmRSS");
  if (argc != 2 && argc != 4) return usage();
  const std::string_view mode = argv[1];
  if (mode != "forward" && mode != "train") return usage();
  long iters = 200;
  if (argc == 4) {
    if (std::strcmp(argv[2], "--iters") != 0) return usage();
    char* end = nullptr;
    iters = std::strtol(argv[3], &end, 10);
    if (end == argv[3] || *end != '\0' || iters < 1) return usage();
  }
  const bool train = mode == "train";
  const std::size_t batch = 2, seq = train ? 8 : 32;

  const Config cfg = Config::tiny();
  RssSplit rss;
  double out = 0;  // last loss (train) or last logit (forward), so the work is used
  try {
    Transformer<P> model(cfg, kSeed);
    const Batch b = make_batch(cfg, batch, seq);
    if (train) {
      Trainer<P> trainer(model, TrainConfig{});
      for (long i = 0; i < iters; ++i)
        out = static_cast<double>(trainer.train_step(b.tokens(), b.targets).total);
      rss = rss_split();
    } else {
      auto ws = model.make_workspace();
      for (long i = 0; i < iters; ++i) model.forward(b.tokens(), ws);
      out = static_cast<double>(ws.logits.crows(batch * seq)(0, 0));
      rss = rss_split();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rosetta-rss-probe: %s\n", e.what());
    return 1;
  }
  struct stat st {};
  const std::optional<std::int64_t> binary =
      ::stat("/proc/self/exe", &st) == 0 ? std::optional<std::int64_t>(st.st_size) : std::nullopt;
  std::printf(
      "{\"mode\":\"%s\",\"policy\":\"float/row/%s/static\",\"preset\":\"tiny\",\"batch\":%zu,"
      "\"seq\":%zu,\"iterations\":%ld,\"peak_rss_bytes\":%lld,\"rss_anon_bytes\":%s,"
      "\"rss_file_bytes\":%s,\"baseline_rss_bytes\":%s,\"binary_bytes\":%s,\"output\":%s}\n",
      train ? "train" : "forward", Backend::name, batch, seq, iters,
      static_cast<long long>(peak_rss_bytes()), opt(rss.anon).c_str(), opt(rss.file).c_str(),
      opt(baseline).c_str(), opt(binary).c_str(), number(out).c_str());
  return 0;
}
