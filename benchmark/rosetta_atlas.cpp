// rosetta-atlas: which backend wins which kernel at which size on this machine.
//
// For every kernel x backend x size of the atlas (include/rosetta/atlas/) it measures the
// time per call (warm-up, then repeated trials, each of enough calls to last ~0.2 ms; median
// and IQR over the trials) and writes one JSON row per (kernel, backend, n) with bytes,
// flops, GB/s, GFLOPS and their shares of this machine's limits measured in the same run:
// STREAM-style copy, triad and read bandwidth on arrays far beyond the L3 cache (1 and 2
// threads) and the FP32 FMA peak of one core. A row whose bandwidth exceeds what one thread
// moved to/from DRAM in those probes is marked cache_resident.
//
//   rosetta-atlas [--quick] [--filter REGEX] [--backends REGEX] [--json PATH] [--list]
//
// BLAS libraries run on one thread (the environment is pinned before they load), so every
// backend is compared single-threaded. `make bench-kernels` builds and runs it.
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <rosetta/atlas/atlas.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"

#ifdef ROSETTA_HAS_EIGEN
#include <Eigen/Core>
#endif

#ifndef ROSETTA_BENCH_FLAGS
#define ROSETTA_BENCH_FLAGS "unknown"
#endif
#ifndef ROSETTA_BENCH_BUILD_TYPE
#define ROSETTA_BENCH_BUILD_TYPE "unknown"
#endif
#ifndef ROSETTA_SOURCE_DIR
#define ROSETTA_SOURCE_DIR "."
#endif

namespace rosetta::atlas_bench {
namespace {

using json = nlohmann::json;
using bench::pin_to_core;
using bench::wall_ns;
using namespace rosetta::atlas;

constexpr std::uint64_t kSeed = 42;

struct Options {
  std::vector<std::size_t> sizes;
  double trial_ns = 2e5;     ///< one trial lasts at least this long (enough calls per trial)
  double budget_ns = 1.2e8;  ///< timed trials per measurement stop after about this long
  int min_trials = 7, max_trials = 61;
  double warm_ns = 2e6;  ///< warm-up time (at least one call)
};

// ---- statistics over doubles ---------------------------------------------------------------
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  const double f = pos - static_cast<double>(lo);
  return v[lo] * (1 - f) + v[hi] * f;
}

struct Timing {
  std::vector<double> per_call_ns;  ///< one value per trial
  std::size_t reps = 1;             ///< calls per trial
};

/// Warm-up, calibration (calls per trial), then timed trials until the budget is spent.
/// Consecutive calls cycle through `sets` (several copies of the buffers when one copy would
/// partly stay in the L3 cache between calls; see buffer_sets()).
Timing measure(RunFn run, std::vector<Buffers>& sets, const Options& o) {
  std::size_t next = 0;
  auto f = [&] { run(sets[next++ % sets.size()]); };
  for (std::size_t i = 1; i < sets.size(); ++i) f();
  f();  // warm-up: caches, lazy library initialisation, page faults of outputs
  auto t0 = wall_ns();
  f();
  const double one = std::max<double>(1.0, static_cast<double>(wall_ns() - t0));
  for (double spent = one; spent < o.warm_ns;) {  // more warm-up for short calls
    t0 = wall_ns();
    f();
    spent += static_cast<double>(wall_ns() - t0);
  }
  // Calibration: grow the number of calls until a batch lasts at least half a trial, then
  // size trials from that batch's time per call (one call alone is too noisy to go by).
  Timing t;
  double per_call = one;
  if (one < o.trial_ns) {
    std::size_t reps = 1;
    for (;;) {
      t0 = wall_ns();
      for (std::size_t r = 0; r < reps; ++r) f();
      const double dt = std::max(1.0, static_cast<double>(wall_ns() - t0));
      per_call = dt / static_cast<double>(reps);
      if (dt >= o.trial_ns / 2 || reps >= (std::size_t{1} << 24)) break;
      reps = static_cast<std::size_t>(std::ceil(static_cast<double>(reps) * o.trial_ns / dt));
    }
  }
  t.reps = per_call >= o.trial_ns ? 1 : static_cast<std::size_t>(std::ceil(o.trial_ns / per_call));
  const double per_trial = per_call * static_cast<double>(t.reps);
  const int trials =
      std::clamp(static_cast<int>(o.budget_ns / per_trial), o.min_trials, o.max_trials);
  for (int k = 0; k < trials; ++k) {
    t0 = wall_ns();
    for (std::size_t r = 0; r < t.reps; ++r) f();
    t.per_call_ns.push_back(static_cast<double>(wall_ns() - t0) / static_cast<double>(t.reps));
  }
  return t;
}

/// Bytes of all arrays in b.
double footprint(const Buffers& b) {
  return static_cast<double>(
      (b.a.size() + b.b.size() + b.c.size() + b.d.size() + b.e.size() + b.labels.size()) * 4 +
      b.h.size() * 2 + b.q.size());
}
/// How many copies of a kernel's buffers to cycle through: 1 while they fit in the L3 cache
/// (those sizes are meant to be cache-resident); beyond, enough copies that consecutive calls
/// touch at least 4x L3 (at most 4), so the largest size measures DRAM, not a warm L3
/// holding part of a 64 MB array from the previous call.
std::size_t buffer_sets(double bytes, double l3) {
  if (bytes <= l3) return 1;
  return static_cast<std::size_t>(std::clamp(std::ceil(4 * l3 / bytes), 1.0, 4.0));
}
/// The last-level cache size (bench::l3_cache_bytes()).
double l3_bytes() {
  return static_cast<double>(bench::l3_cache_bytes());
}

// ---- machine limits measured in this run ----------------------------------------------------
/// STREAM-style copy (c = a) and triad (a = b + s c) on float arrays of `elems` each,
/// split over `threads` threads (thread i pinned to core i). Best of `reps` passes, GB/s
/// counting 2 (copy) or 3 (triad) arrays of traffic, no write-allocate (as STREAM does).
/// Plus `read` (a sum over one array: read-only kernels) and `update` (c = s c in place:
/// read-modify-write kernels such as axpy or AdamW, which need no write-allocate).
struct Stream {
  double copy_gbps = 0, triad_gbps = 0, read_gbps = 0, update_gbps = 0;
};
Stream stream(std::size_t elems, unsigned threads, int reps) {
  AVec<float> a(elems), b(elems), c(elems);
  auto parallel = [&](auto&& body) {
    std::vector<std::thread> pool;
    const std::size_t chunk = (elems + threads - 1) / threads;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        pin_to_core(t);
        const std::size_t lo = std::min(elems, t * chunk), hi = std::min(elems, lo + chunk);
        body(lo, hi);
      });
    for (auto& th : pool) th.join();
  };
  parallel([&](std::size_t lo, std::size_t hi) {  // first touch by the thread that uses it
    for (std::size_t i = lo; i < hi; ++i) {
      a[i] = 1.0f;
      b[i] = 2.0f;
      c[i] = 0.5f;
    }
  });
  Stream s;
  const double bytes = static_cast<double>(elems) * sizeof(float);
  for (int r = 0; r < reps; ++r) {
    auto t0 = wall_ns();
    parallel([&](std::size_t lo, std::size_t hi) {
      float* __restrict dst = c.data();
      const float* __restrict src = a.data();
      for (std::size_t i = lo; i < hi; ++i) dst[i] = src[i];
    });
    s.copy_gbps = std::max(s.copy_gbps, 2 * bytes / static_cast<double>(wall_ns() - t0));
    t0 = wall_ns();
    parallel([&](std::size_t lo, std::size_t hi) {
      float* __restrict dst = a.data();
      const float* __restrict x = b.data();
      const float* __restrict y = c.data();
      for (std::size_t i = lo; i < hi; ++i) dst[i] = x[i] + 3.0f * y[i];
    });
    s.triad_gbps = std::max(s.triad_gbps, 3 * bytes / static_cast<double>(wall_ns() - t0));
    std::vector<float> partial(threads, 0.0f);
    t0 = wall_ns();
    parallel([&](std::size_t lo, std::size_t hi) {
      constexpr std::size_t kAcc = 32;  // independent partial sums (vectorisable)
      float acc[kAcc] = {};
      const float* __restrict x = b.data();
      std::size_t i = lo;
      for (; i + kAcc <= hi; i += kAcc)
        for (std::size_t j = 0; j < kAcc; ++j) acc[j] += x[i + j];
      for (; i < hi; ++i) acc[0] += x[i];
      float total = 0;
      for (float v : acc) total += v;
      partial[lo / ((elems + threads - 1) / threads)] = total;
    });
    s.read_gbps = std::max(s.read_gbps, bytes / static_cast<double>(wall_ns() - t0));
    t0 = wall_ns();
    parallel([&](std::size_t lo, std::size_t hi) {
      float* __restrict x = c.data();
      for (std::size_t i = lo; i < hi; ++i) x[i] *= 0.999f;
    });
    s.update_gbps = std::max(s.update_gbps, 2 * bytes / static_cast<double>(wall_ns() - t0));
    volatile float keep = partial[0];
    (void)keep;
  }
  volatile float sink = a[elems / 2] + c[elems / 3];  // keep the arrays observable
  (void)sink;
  return s;
}

json library_versions() {
  json v;
#ifdef ROSETTA_HAS_EIGEN
  v["eigen"] =
      fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
#endif
#ifdef ROSETTA_HAS_BLIS
  v["blis"] = blis_version();
#endif
#ifdef ROSETTA_HAS_CBLAS
  v["openblas"] = openblas_config();
#endif
#ifdef HWY_MAJOR
  v["highway"] = fmt::format("{}.{}.{}", HWY_MAJOR, HWY_MINOR, HWY_PATCH);
#endif
  return v;
}

std::string human(std::size_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= (1u << 10) && n % (1u << 10) == 0) return fmt::format("{}K", n >> 10);
  return std::to_string(n);
}

// ---- the run
// --------------------------------------------------------------------------------------
int list_kernels() {
  const auto& reg = registry();
  for (const auto& k : reg.kernels()) {
    std::string backends;
    for (Backend b : available_backends())
      if (k.has(b)) {
        if (!backends.empty()) backends += ',';
        backends += name(b);
      }
    std::cout << fmt::format("{:<18} {:<14} {:<58} {}\n", k.name, k.domain, backends, k.shape_rule);
  }
  std::cout << reg.kernels().size() << " kernels in " << reg.domains().size() << " domains\n";
  return 0;
}

int run(const Options& o, const std::string& filter, const std::string& backend_filter,
        const std::string& json_path, bool quick) {
  const auto t_start = wall_ns();
  const auto& reg = registry();
  const std::regex kre(filter.empty() ? ".*" : filter),
      bre(backend_filter.empty() ? ".*" : backend_filter);
  std::vector<const Kernel*> kernels;
  for (const auto& k : reg.kernels())
    if (std::regex_search(std::string(k.name), kre)) kernels.push_back(&k);
  if (kernels.empty()) {
    std::cerr << "rosetta-atlas: no kernel matches --filter '" << filter << "' (see --list)\n";
    return 2;
  }
  std::vector<Backend> backends;
  for (Backend b : available_backends())
    if (std::regex_search(std::string(name(b)), bre)) backends.push_back(b);

  // Machine limits first (quiet machine, nothing else allocated yet).
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const double l3 = l3_bytes();
  constexpr std::size_t kStreamElems = std::size_t{32} << 20;  // 128 MiB per array, 4x L3
  std::cerr
      << "rosetta-atlas: measuring this machine (STREAM copy/triad/read/update on 3 x 128 MiB, "
         "1 and 2 threads; FMA peak) ... "
      << std::flush;
  const Stream s1 = stream(kStreamElems, 1, quick ? 3 : 5);
  const Stream s2 = stream(kStreamElems, std::min(2u, cores), quick ? 3 : 5);
  const double fma = bench::fma_peak_gflops();
  // The single-thread DRAM ceiling for the cache_resident flag: the most bytes per second
  // one thread moved to or from memory in the probes, counting what really crosses the bus:
  // copy and triad store with ordinary stores, so each written line is first read
  // (write-allocate) and copy moves 3 arrays, triad 4; read moves 1, update 2. Kernel byte counts
  // never include write-allocate, so they are lower bounds of their real traffic: a kernel above
  // this ceiling cannot have been served by DRAM alone (a conservative flag).
  const double dram_1t =
      std::max({s1.copy_gbps * 3 / 2, s1.triad_gbps * 4 / 3, s1.read_gbps, s1.update_gbps});
  // Probes and kernels at DRAM speed differ by a few per cent from run to run on this
  // shared machine; flag only rows clearly above the ceiling.
  constexpr double kNoiseMargin = 1.10;
  std::cerr << fmt::format(
      "copy {:.1f}/{:.1f}, triad {:.1f}/{:.1f}, read {:.1f}/{:.1f}, update {:.1f}/{:.1f} GB/s "
      "(1/2 threads), FMA peak {:.1f} GFLOPS\n",
      s1.copy_gbps, s2.copy_gbps, s1.triad_gbps, s2.triad_gbps, s1.read_gbps, s2.read_gbps,
      s1.update_gbps, s2.update_gbps, fma);
#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
  const std::string hwy_dyn = hwy_dynamic_target();
#endif

  json results = json::array();
  json kernel_docs = json::array();
  std::size_t ki = 0;
  for (const Kernel* k : kernels) {
    ++ki;
    const auto t_kernel = wall_ns();
    std::vector<Backend> mine;
    for (Backend b : backends)
      if (k->has(b)) mine.push_back(b);
    json kd = {{"kernel", k->name},
               {"domain", k->domain},
               {"summary", k->summary},
               {"shape_rule", k->shape_rule},
               {"bound", k->bound == Bound::compute ? "compute" : "memory"}};
    for (Backend b : mine) kd["backends"].push_back(name(b));
    kernel_docs.push_back(kd);
    std::string best_note;
    for (std::size_t n : o.sizes) {
      std::vector<Buffers> sets;  // shared by the backends (same inputs)
      sets.push_back(k->make(n, kSeed));
      const std::size_t copies = buffer_sets(footprint(sets[0]), l3);
      for (std::size_t c = 1; c < copies; ++c) sets.push_back(k->make(n, kSeed));
      const Shape& s = sets[0].shape;
      const double bytes = k->bytes(s), flops = k->flops(s);
      double best = 0;
      std::string best_backend;
      for (Backend b : mine) {
        const Timing t = measure(k->run[index(b)], sets, o);
        const double med = quantile(t.per_call_ns, 0.5);
        const double iqr = quantile(t.per_call_ns, 0.75) - quantile(t.per_call_ns, 0.25);
        const double gbps = bytes / med, gflops = flops / med;
        json row = {{"kernel", k->name},
                    {"domain", k->domain},
                    {"backend", name(b)},
                    {"n", n},
                    {"shape", s.str()},
                    {"elements", s.len},
                    {"median_ns", med},
                    {"iqr_ns", iqr},
                    {"min_ns", *std::min_element(t.per_call_ns.begin(), t.per_call_ns.end())},
                    {"trials", t.per_call_ns.size()},
                    {"calls_per_trial", t.reps},
                    {"buffer_sets", copies},
                    {"bytes", bytes},
                    {"flops", flops},
                    {"bound", k->bound == Bound::compute ? "compute" : "memory"},
                    {"gbps", gbps},
                    {"share_of_triad", gbps / s1.triad_gbps},
                    {"share_of_dram", gbps / dram_1t},
                    {"gflops", flops > 0 ? json(gflops) : json(nullptr)},
                    {"share_of_fma_peak",
                     k->bound == Bound::compute && flops > 0 ? json(gflops / fma) : json(nullptr)},
                    {"cache_resident", gbps > kNoiseMargin * dram_1t}};
        results.push_back(row);
        const double score = 1.0 / med;
        if (score > best) {
          best = score;
          best_backend = std::string(name(b));
        }
      }
      best_note += fmt::format(" {}:{}", human(n), best_backend);
    }
    std::cerr << fmt::format(
        "[{:>2}/{}] {:<17} {:<13} {} backend(s) x {} sizes {:>6.1f} s  best{}\n", ki,
        kernels.size(), k->name, k->domain, mine.size(), o.sizes.size(),
        static_cast<double>(wall_ns() - t_kernel) * 1e-9, best_note);
  }

  json doc;
  doc["schema_version"] = 1;
  auto& md = doc["metadata"];
  md["tool"] = "rosetta-atlas";
  md["timestamp"] = bench::utc_timestamp();
  md["git_rev"] =
      bench::command_output("git -C '" ROSETTA_SOURCE_DIR "' rev-parse HEAD 2>/dev/null");
  md["compiler"] = {{"id", bench::compiler_id()},
                    {"version", __VERSION__},
                    {"flags", ROSETTA_BENCH_FLAGS},
                    {"build_type", ROSETTA_BENCH_BUILD_TYPE}};
  md["cpu"] = {{"model", bench::cpuinfo_field("model name")},
               {"logical_cores", cores},
               {"l3_bytes", l3},
               {"avx512", bench::cpuinfo_field("flags").find("avx512f") != std::string::npos}};
  md["os"] = bench::os_string();
  md["libraries"] = library_versions();
#ifdef ROSETTA_HAS_HWY
  md["hwy"]["static_target"] = hwy_static_target();
#endif
#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
  md["hwy"]["dynamic_target"] = hwy_dyn;
  md["hwy"]["dynamic_compiled_targets"] = hwy_dynamic_compiled_targets();
  md["hwy"]["dynamic_build"] = "baseline x86-64 (no -march), all targets, runtime dispatch";
#endif
  md["threads"] = {{"kernels", 1},
                   {"blas_threads", 1},
                   {"openblas_num_threads", std::getenv("OPENBLAS_NUM_THREADS")},
                   {"blis_num_threads", std::getenv("BLIS_NUM_THREADS")},
                   {"omp_num_threads", std::getenv("OMP_NUM_THREADS")}};
  md["stream"] = {{"array_bytes", kStreamElems * sizeof(float)},
                  {"arrays", 3},
                  {"copy_gbps_1t", s1.copy_gbps},
                  {"triad_gbps_1t", s1.triad_gbps},
                  {"read_gbps_1t", s1.read_gbps},
                  {"update_gbps_1t", s1.update_gbps},
                  {"copy_gbps_2t", s2.copy_gbps},
                  {"triad_gbps_2t", s2.triad_gbps},
                  {"read_gbps_2t", s2.read_gbps},
                  {"update_gbps_2t", s2.update_gbps},
                  {"threads_2t", std::min(2u, cores)}};
  md["dram_traffic_gbps_1t"] = dram_1t;
  md["fma_peak_gflops"] = fma;
  md["sizes"] = o.sizes;
  md["quick"] = quick;
  md["seed"] = kSeed;
  md["method"] = {{"warmup", "one call, then more until 2 ms"},
                  {"trial_target_ns", o.trial_ns},
                  {"budget_ns", o.budget_ns},
                  {"min_trials", o.min_trials},
                  {"max_trials", o.max_trials},
                  {"statistic",
                   "median and IQR of per-call times over trials (each trial = calls_per_trial "
                   "calls)"},
                  {"buffer_sets",
                   "buffers larger than L3 are replicated (at most 4 copies) and consecutive calls "
                   "cycle through them, touching >= 4x L3: the largest size measures DRAM, not "
                   "data the previous call left in L3"}};
  md["conventions"] = {
      {"bytes",
       "traffic of the reference algorithm: arrays read/written once each (in-place "
       "twice), no write-allocate, extra full passes counted (see kernels.hpp)"},
      {"flops", "add/mul/compare/abs/div/sqrt/transcendental = 1, fma = 2"},
      {"share_of_triad", "gbps / triad_gbps_1t"},
      {"share_of_dram", "gbps / dram_traffic_gbps_1t"},
      {"share_of_fma_peak", "gflops / fma_peak_gflops, for compute-bound kernels only"},
      {"stream",
       "STREAM convention: copy counts 2 arrays, triad 3 (no write-allocate), read 1, update "
       "(in place) 2"},
      {"dram_traffic_gbps_1t",
       "max(1.5 copy_gbps_1t, 4/3 triad_gbps_1t, read_gbps_1t, update_gbps_1t): the most "
       "bytes/s one thread moved to/from DRAM, write-allocate included (kernels run on one "
       "thread)"},
      {"cache_resident",
       "gbps > 1.10 * dram_traffic_gbps_1t: more than one thread moves to/from DRAM (10 % for "
       "run-to-run noise), so (partly) served from cache; conservative, since kernel bytes "
       "exclude write-allocate"}};
  md["filter"] = filter;
  md["backend_filter"] = backend_filter;
  md["wall_seconds"] = static_cast<double>(wall_ns() - t_start) * 1e-9;
  doc["kernels"] = kernel_docs;
  doc["results"] = results;

  const std::filesystem::path out(json_path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  std::ofstream f(out);
  if (!f) {
    std::cerr << "rosetta-atlas: cannot write " << json_path << "\n";
    return 1;
  }
  f << doc.dump(1) << "\n";
  std::cerr << fmt::format("rosetta-atlas: {} rows -> {} ({:.1f} s)\n", results.size(), json_path,
                           static_cast<double>(wall_ns() - t_start) * 1e-9);
  return 0;
}

}  // namespace
}  // namespace rosetta::atlas_bench

int main(int argc, char** argv) {
  using namespace rosetta::atlas_bench;
  // One BLAS thread, set before any BLAS library initialises.
  for (const char* v : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS"})
    ::setenv(v, "1", 1);
  CLI::App app{"rosetta-atlas: every kernel x backend x size -> benchmarks/atlas.json"};
  bool quick = false, list = false;
  std::string filter, backend_filter, json_path = "benchmarks/atlas.json";
  std::vector<std::size_t> sizes;
  double budget_ms = 120;
  app.add_flag("--quick", quick, "sizes 1K, 64K, 1M (no 16M) and fewer STREAM passes");
  app.add_option("--filter", filter, "only kernels whose name matches this regular expression");
  app.add_option("--backends", backend_filter, "only backends matching this regular expression");
  app.add_option("--json", json_path, "where to write the results")->capture_default_str();
  app.add_option("--sizes", sizes, "sizes n to run instead of 1K 64K 1M 16M (e.g. 1024,65536)")
      ->delimiter(',');
  app.add_option("--budget-ms", budget_ms, "timed trials per measurement stop after ~this long")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 60000.0));
  app.add_flag("--list", list, "list the kernels (domain, backends, shape rule) and exit");
  CLI11_PARSE(app, argc, argv);
  try {
    if (list) return list_kernels();
    Options o;
    o.budget_ns = budget_ms * 1e6;
    o.sizes = sizes;
    if (o.sizes.empty()) {
      o.sizes = {std::size_t{1} << 10, std::size_t{1} << 16, std::size_t{1} << 20};
      if (!quick) o.sizes.push_back(std::size_t{1} << 24);
    }
    return run(o, filter, backend_filter, json_path, quick);
  } catch (const std::exception& e) {
    std::cerr << "rosetta-atlas: " << e.what() << "\n";
    return 1;
  }
}
