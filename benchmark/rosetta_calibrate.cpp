// rosetta-calibrate: measures which backend is fastest for every atlas kernel and size and for
// every gemm shape the model issues, and writes the routing table that backend::Auto and
// atlas::auto_run follow (format: include/rosetta/backend/auto_table.hpp).
//
//   rosetta-calibrate [--quick] [--out PATH] [--header PATH] [--no-atlas] [--no-gemm]
//                     [--filter REGEX] [--tie FRACTION] [--verify] [--verbose]
//
// Atlas: every kernel at sizes 1K, 64K, 1M (--quick; else also 8K, 256K, 4M), every backend the
// kernel has; the winner of each size owns the sizes up to the geometric midpoint to the next
// measured size (adjacent ranges with the same winner are merged).
// Gemm: the distinct (scalar, layout, opA, opB, m, n, k) that a forward pass and a training
// step of the tiny and small presets issue (the shapes of dispatch_warm, mem_train_step,
// scale_forward_256 and scale_train_256, two token batches; --quick) or more batches and the
// batch/sequence scaling scenarios too; recorded through the virtual twin with a recording
// gemm table, every shape re-created with the leading dimensions and alpha/beta it had in the
// model) timed on every gemm backend of this build (with Highway: backend::HwyGemm, "hwy", too).
// The winner is the lowest median; when the
// fallback backend (Auto::fallback()) is within --tie (10 %) of it, the fallback: the noise of
// this shared machine is a few per cent, and smaller wins in isolation did not carry over to
// the model in interleaved A/B runs (docs/decisions.md).
//
// Timing: warm-up, then rounds of one trial per candidate in rotating order (interleaved, so
// drift hits every candidate alike) until the budget is spent; median per candidate. Atlas:
// a trial is enough calls to last >= 100 us (hot, as rosetta-atlas measures). Gemm: a trial
// is one call after a pass over 2 MiB that evicts L1/L2 (operands, the library's code and
// buffers), since in the model other kernels run between two gemms; a hot loop favoured
// libraries with heavier per-call machinery (e.g. OpenBLAS on a 32 x 32 x 16 attention
// product: 13 % faster than Eigen hot, 2 % slower cold, and slower in the model). The shapes
// of a workload that streams more than half of L3 per iteration (the small preset: 28.5 MB of
// float weights) take their operands from memory, as in the model: each call the next of
// copies that fill twice L3 (its table comment says "from memory"); from L3, BLIS had won the
// small experts' 11-25-row products that it took 1.4-1.7x as long for in the model. A candidate
// whose fastest trial is slower than 2x the fastest of all after two rounds stops early. BLAS
// libraries run on one thread, as in rosetta-bench and rosetta-atlas. --quick runs in about 40 s
// here.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <rosetta/atlas/auto.hpp>
#include <rosetta/backend/auto.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "bench_batch.hpp"
#include "bench_support.hpp"
#include "rosetta/dispatch/virtual.hpp"
#include "rosetta/instances.hpp"
#include "rosetta/rosetta.hpp"

#ifdef ROSETTA_HAS_EIGEN
#include <Eigen/Core>
#endif

#ifndef ROSETTA_BENCH_FLAGS
#define ROSETTA_BENCH_FLAGS "unknown"
#endif

namespace rosetta::calibrate {
namespace {

using bench::wall_ns;
using routing::GemmBackend;

// ---- interleaved timing ------------------------------------------------------------------------
struct Method {
  double trial_ns = 5e4;     ///< one trial lasts at least this long
  double budget_ns = 1.5e7;  ///< rounds stop after about this long (per race)
  int min_rounds = 3, max_rounds = 31;
  double warm_ns = 5e5;  ///< warm-up per candidate (at least one call)
  double drop = 2.0;     ///< after two rounds, drop candidates slower than drop x the best
  /// Each trial is one call, timed alone, after a pass over a buffer larger than L2 (evicts
  /// the operands, the library's code and its buffers from L1/L2): how a gemm runs in the
  /// model, where other kernels run between two gemms, rather than in a hot loop.
  bool cold = false;
};

/// Touches every cache line of 2 MiB (more than this CPU's L2), read-modify-write.
void evict_caches() {
  static std::vector<float> junk(std::size_t{1} << 19, 0.0f);
  static volatile float sink = 0;
  for (std::size_t i = 0; i < junk.size(); i += 16) junk[i] += 1.0f;
  sink = sink + junk[junk.size() / 2];
}

struct Candidate {
  std::string name;
  std::function<void()> call;
  std::size_t reps = 1;
  std::vector<double> per_call_ns;
  double median = 0;
};

/// Times every candidate (see the top of this file); fills reps, per_call_ns and median.
void race(std::vector<Candidate>& cs, const Method& m) {
  for (auto& c : cs) {  // warm-up and calls per trial
    c.call();
    double spent = 0;
    std::size_t calls = 0;
    while (spent < m.warm_ns || calls < 2) {
      const auto t0 = wall_ns();
      c.call();
      spent += static_cast<double>(wall_ns() - t0);
      ++calls;
    }
    const double per_call = std::max(1.0, spent / static_cast<double>(calls));
    c.reps = m.cold ? 1 : static_cast<std::size_t>(std::max(1.0, std::ceil(m.trial_ns / per_call)));
  }
  std::vector<bool> live(cs.size(), true);
  const auto start = wall_ns();
  for (int round = 0; round < m.max_rounds; ++round) {
    for (std::size_t j = 0; j < cs.size(); ++j) {
      auto& c = cs[(j + static_cast<std::size_t>(round)) % cs.size()];
      if (!live[static_cast<std::size_t>(&c - cs.data())]) continue;
      if (m.cold) evict_caches();
      const auto t0 = wall_ns();
      for (std::size_t r = 0; r < c.reps; ++r) c.call();
      c.per_call_ns.push_back(static_cast<double>(wall_ns() - t0) / static_cast<double>(c.reps));
    }
    if (round == 1) {  // by the fastest trial of each, which one noisy trial cannot inflate
      auto fastest = [](const Candidate& c) {
        return *std::min_element(c.per_call_ns.begin(), c.per_call_ns.end());
      };
      double best = 1e300;
      for (const auto& c : cs) best = std::min(best, fastest(c));
      for (std::size_t i = 0; i < cs.size(); ++i)
        if (fastest(cs[i]) > m.drop * best) live[i] = false;
    }
    if (round + 1 >= m.min_rounds && static_cast<double>(wall_ns() - start) >= m.budget_ns) break;
  }
  for (auto& c : cs) c.median = bench::quantile(c.per_call_ns, 0.5);
}

std::string human_ns(double ns) {
  if (ns >= 1e6) return fmt::format("{:.2f} ms", ns / 1e6);
  if (ns >= 1e3) return fmt::format("{:.2f} us", ns / 1e3);
  return fmt::format("{:.0f} ns", ns);
}
std::string human_n(std::size_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= (1u << 10) && n % (1u << 10) == 0) return fmt::format("{}K", n >> 10);
  return std::to_string(n);
}
/// "eigen 1.20 us, openblas 1.13x, naive 4.0x" (the winner first, then the others by time).
std::string comparison(std::vector<Candidate> cs, const std::string& winner) {
  std::stable_sort(cs.begin(), cs.end(), [&](const Candidate& a, const Candidate& b) {
    return std::make_tuple(a.name != winner, a.median) <
           std::make_tuple(b.name != winner, b.median);
  });
  std::string s = cs[0].name + " " + human_ns(cs[0].median);
  for (std::size_t i = 1; i < cs.size(); ++i)
    s += fmt::format(", {} {:.2f}x", cs[i].name, cs[i].median / cs[0].median);
  return s;
}

// ---- atlas -------------------------------------------------------------------------------------
struct AtlasLine {
  std::string kernel;
  std::size_t lo, hi;  // hi == SIZE_MAX: '*'
  std::string backend, note;
};

std::vector<AtlasLine> calibrate_atlas(const std::vector<std::size_t>& sizes,
                                       const std::string& filter, const Method& m) {
  using atlas::Backend, atlas::Buffers, atlas::RunFn, atlas::index, atlas::registry;
  const std::regex re(filter.empty() ? ".*" : filter);
  std::vector<AtlasLine> out;
  const auto& reg = registry();
  std::size_t done = 0, total = 0;
  for (const auto& k : reg.kernels()) total += std::regex_search(std::string(k.name), re);
  for (const auto& k : reg.kernels()) {
    if (!std::regex_search(std::string(k.name), re)) continue;
    const auto t0 = wall_ns();
    std::vector<std::string> winners, notes;
    for (std::size_t n : sizes) {
      Buffers buf = k.make(n, 42);
      std::vector<Candidate> cs;
      for (Backend b : atlas::available_backends())
        if (k.has(b)) {
          RunFn f = k.run[index(b)];
          cs.push_back({std::string(atlas::name(b)), [f, &buf] { f(buf); }, 1, {}, 0});
        }
      race(cs, m);
      const auto best = std::min_element(
          cs.begin(), cs.end(), [](const auto& a, const auto& b) { return a.median < b.median; });
      winners.push_back(best->name);
      notes.push_back(human_n(n) + ": " + comparison(cs, best->name));
    }
    // Size i owns [midpoint(i-1, i), midpoint(i, i+1)), midpoints geometric.
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::size_t lo =
          i == 0 ? 0
                 : static_cast<std::size_t>(std::llround(std::sqrt(
                       static_cast<double>(sizes[i - 1]) * static_cast<double>(sizes[i]))));
      const std::size_t hi =
          i + 1 == sizes.size()
              ? std::numeric_limits<std::size_t>::max()
              : static_cast<std::size_t>(std::llround(
                    std::sqrt(static_cast<double>(sizes[i]) * static_cast<double>(sizes[i + 1])))) -
                    1;
      if (!out.empty() && out.back().kernel == k.name && out.back().backend == winners[i]) {
        out.back().hi = hi;
        out.back().note += "; " + notes[i];
      } else {
        out.push_back({std::string(k.name), lo, hi, winners[i], notes[i]});
      }
    }
    ++done;
    std::string w;
    for (std::size_t i = 0; i < sizes.size(); ++i) w += " " + human_n(sizes[i]) + ":" + winners[i];
    std::cerr << fmt::format("[atlas {:>2}/{}] {:<17} {:5.2f} s {}\n", done, total, k.name,
                             static_cast<double>(wall_ns() - t0) * 1e-9, w);
  }
  return out;
}

// ---- gemm shapes of the model ---------------------------------------------------------------
struct ShapeKey {
  bool is_double, col;
  Op op_a, op_b;
  std::size_t m, n, k;
  auto tie() const { return std::make_tuple(is_double, col, op_a, op_b, m, n, k); }
  bool operator<(const ShapeKey& o) const { return tie() < o.tie(); }
};
struct ShapeInfo {
  std::size_t lda = 0, ldb = 0, ldc = 0;
  double alpha = 1, beta = 0;
  std::map<std::string, std::size_t> calls;  // per workload (first token batch only)
  std::size_t state_bytes = 0;               // the largest model state of a workload that issued it
};

/// What the recording gemm table collects.
struct Recorder {
  std::map<ShapeKey, ShapeInfo> shapes;
  std::string workload;         // calls are counted under this name; empty: not counted
  std::size_t state_bytes = 0;  // what one iteration of the running workload streams through
};
Recorder& recorder() {
  static Recorder r;
  return r;
}

/// The recording entry: notes the shape, then computes with the fallback backend.
template <class T, class L>
void record_gemm(Op opA, Op opB, T alpha, MatrixView<const T, L> A, MatrixView<const T, L> B,
                 T beta, MatrixView<T, L> C) {
  const ShapeKey key{std::is_same_v<T, double>,
                     !L::is_row_major,
                     opA,
                     opB,
                     backend::detail::op_rows(opA, A),
                     backend::detail::op_cols(opB, B),
                     backend::detail::op_cols(opA, A)};
  auto& rec = recorder();
  auto [it, fresh] = rec.shapes.try_emplace(key);
  if (fresh) {
    it->second.lda = A.ld();
    it->second.ldb = B.ld();
    it->second.ldc = C.ld();
    it->second.alpha = static_cast<double>(alpha);
    it->second.beta = static_cast<double>(beta);
  }
  if (!rec.workload.empty()) ++it->second.calls[rec.workload];
  it->second.state_bytes = std::max(it->second.state_bytes, rec.state_bytes);
#ifdef ROSETTA_HAS_EIGEN
  backend::Eigen::gemm(opA, opB, alpha, A, B, beta, C);
#else
  backend::Naive::gemm(opA, opB, alpha, A, B, beta, C);
#endif
}

constexpr backend::GemmTable kRecording{
    "recording",
    &record_gemm<float, RowMajor>,
    &record_gemm<float, ColMajor>,
    &record_gemm<double, RowMajor>,
    &record_gemm<double, ColMajor>,
    nullptr,  // gemm_sumsq: through record_gemm, then a sum of squares (Dynamic::gemm_sumsq)
    nullptr,
    nullptr,
    nullptr,
};

struct Workload {
  std::string name, preset;
  std::size_t batch, seq;
  bool train;
};

/// Runs every workload on `batches` token batches through the recording table; training
/// workloads take `steps` steps (the MoE routing, and so the expert shapes, changes as the
/// weights move). Calls are counted for the first batch's forward / second step.
template <class T, class L>
void record_shapes(const std::vector<Workload>& ws, std::size_t batches, int steps) {
  const backend::Dynamic::Scope scope(kRecording);
  for (const auto& w : ws) {
    const Config cfg = w.preset == "small" ? Config::small() : Config::tiny();
    // a forward pass reads every parameter; a training step also writes the gradients and
    // reads and writes AdamW's two moments
    recorder().state_bytes = cfg.param_count() * sizeof(T) * (w.train ? 4 : 1);
    for (std::size_t stream = 0; stream < batches; ++stream) {
      const bench::Batch b = bench::make_batch(cfg, w.batch, w.seq, stream);
      VirtualTransformer<T, L> model(cfg, bench::kSeed);
      if (w.train) {
        VirtualTrainer<T, L> trainer(model, TrainConfig{});
        for (int s = 0; s < steps; ++s) {
          recorder().workload = stream == 0 && s == 1 ? w.name : "";
          trainer.train_step(b.tokens(), b.targets);
        }
      } else {
        auto wsp = model.make_workspace();
        recorder().workload = stream == 0 ? w.name : "";
        model.forward(b.tokens(), wsp);
      }
      recorder().workload.clear();
    }
  }
}

struct GemmLine {
  ShapeKey key;
  std::string backend, note;
  std::map<std::string, double> median;  // per backend
};

/// Storage for a rows x cols view with leading dimension ld in layout L.
template <class T, class L>
struct Stored {
  std::vector<T> data;
  MatrixView<T, L> view;
  Stored(std::size_t rows, std::size_t cols, std::size_t ld, std::uint64_t seed)
      : data(std::max<std::size_t>(1, L::is_row_major ? rows * ld : cols * ld)) {
    Rng rng(seed, 11);
    for (auto& x : data) x = static_cast<T>(rng.normal() * 0.5);
    view = MatrixView<T, L>(data.data(), rows, cols, ld);
  }
};

/// Whether the model's operands of a shape come from memory rather than from L3: when the
/// workload that issued it streams more than half of L3 per iteration. A cyclic pass over that
/// much does not stay in L3 (the small preset's forward, 28.5 MB of weights with a 32 MiB L3:
/// its expert products took as long in the model as with the weight cycled through 64 MB).
bool streamed(const ShapeInfo& info) {
  return info.state_bytes > bench::l3_cache_bytes() / 2;
}

/// Copies of a shape's operands A, B, C, one after another, so that each call can take the next
/// copy: with copies over twice L3, every call reads its operands from memory. In an
/// AlignedBuffer, as the model's parameters are (huge pages from 4 MiB on).
template <class T, class L>
struct OperandCopies {
  AlignedBuffer<T> data;
  std::size_t n = 1, a_size, b_size, c_size;
  MatrixView<T, L> a0, b0, c0;
  OperandCopies(const Stored<T, L>& A, const Stored<T, L>& B, const Stored<T, L>& C,
                std::size_t min_bytes)
      : a_size(A.data.size()), b_size(B.data.size()), c_size(C.data.size()) {
    const std::size_t per = (a_size + b_size + c_size) * sizeof(T);
    n = std::max<std::size_t>(1, (min_bytes + per - 1) / per);
    data = AlignedBuffer<T>(n * (a_size + b_size + c_size));
    for (std::size_t i = 0; i < n; ++i) {
      T* p = data.data() + i * (a_size + b_size + c_size);
      std::copy(A.data.begin(), A.data.end(), p);
      std::copy(B.data.begin(), B.data.end(), p + a_size);
      std::copy(C.data.begin(), C.data.end(), p + a_size + b_size);
    }
    a0 = A.view, b0 = B.view, c0 = C.view;
  }
  /// The views of copy i (the same shapes and leading dimensions as the originals).
  std::tuple<MatrixView<const T, L>, MatrixView<const T, L>, MatrixView<T, L>> at(std::size_t i) {
    T* p = data.data() + (i % n) * (a_size + b_size + c_size);
    return {MatrixView<const T, L>(p, a0.rows(), a0.cols(), a0.ld()),
            MatrixView<const T, L>(p + a_size, b0.rows(), b0.cols(), b0.ld()),
            MatrixView<T, L>(p + a_size + b_size, c0.rows(), c0.cols(), c0.ld())};
  }
};

template <class T, class L>
GemmLine time_shape(const ShapeKey& key, const ShapeInfo& info, const Method& m, double tie,
                    GemmBackend fallback) {
  const std::size_t ar = key.op_a == Op::N ? key.m : key.k, ac = key.op_a == Op::N ? key.k : key.m;
  const std::size_t br = key.op_b == Op::N ? key.k : key.n, bc = key.op_b == Op::N ? key.n : key.k;
  Stored<T, L> A(ar, ac, info.lda, 1), B(br, bc, info.ldb, 2), C(key.m, key.n, info.ldc, 3);
  const T alpha = static_cast<T>(info.alpha), beta = static_cast<T>(info.beta);
  const bool from_memory = streamed(info);
  OperandCopies<T, L> copies(A, B, C, from_memory ? 2 * bench::l3_cache_bytes() : 0);
  std::size_t next = 0;  // one sequence for all candidates: no call finds its copy in L3
  std::vector<Candidate> cs;
  for (std::size_t i = 0; i < routing::kNumGemmBackends; ++i) {
    const auto id = static_cast<GemmBackend>(i);
    const backend::GemmFn<T, L> f = backend::auto_detail::compiled_fn<T, L>(id);
    if (!f) continue;
    cs.push_back({std::string(routing::name(id)),
                  [=, &key, &copies, &next] {
                    const auto [a, b, c] = copies.at(next++);
                    f(key.op_a, key.op_b, alpha, a, b, beta, c);
                  },
                  1,
                  {},
                  0});
  }
  race(cs, m);
  const auto best = std::min_element(
      cs.begin(), cs.end(), [](const auto& x, const auto& y) { return x.median < y.median; });
  std::string winner = best->name;
  for (const auto& cand : cs)
    if (cand.name == routing::name(fallback) && cand.median <= (1 + tie) * best->median)
      winner = cand.name;
  GemmLine line{key, winner, comparison(cs, winner) + (from_memory ? "; from memory" : ""), {}};
  for (const auto& cand : cs) line.median[cand.name] = cand.median;
  return line;
}

std::string shape_text(const ShapeKey& k) {
  return fmt::format("{} {} {} {} {} {} {}", k.is_double ? "double" : "float",
                     k.col ? "col" : "row", k.op_a == Op::N ? "N" : "T",
                     k.op_b == Op::N ? "N" : "T", k.m, k.n, k.k);
}

// ---- verification: the routed model against every fixed backend, in the model -----------------
/// Times one iteration of workload w on (T, L) through the virtual twin with Dynamic set to
/// gemm_table<Auto>() (the new table active) and to each fixed backend's table, interleaved:
/// the same dispatch path for all, so the difference is the routing.
template <class T, class L>
std::string verify(const Workload& w, const Method& m) {
  const Config cfg = w.preset == "small" ? Config::small() : Config::tiny();
  const bench::Batch b = bench::make_batch(cfg, w.batch, w.seq, 0);
  struct State {
    VirtualTransformer<T, L> model;
    VirtualTrainer<T, L> trainer;
    typename VirtualTransformer<T, L>::Work ws;
    explicit State(const Config& c)
        : model(c, bench::kSeed), trainer(model, TrainConfig{}), ws(model.make_workspace()) {}
  };
  std::vector<std::unique_ptr<State>> states;
  std::vector<Candidate> cs;
  auto add = [&](std::string name, const backend::GemmTable& table) {
    states.push_back(std::make_unique<State>(cfg));
    State* st = states.back().get();
    cs.push_back({std::move(name),
                  [st, &table, &b, train = w.train] {
                    backend::Dynamic::set(table);
                    if (train)
                      st->trainer.train_step(b.tokens(), b.targets);
                    else
                      st->model.forward(b.tokens(), st->ws);
                  },
                  1,
                  {},
                  0});
  };
  add("auto", backend::gemm_table<backend::Auto>());
  std::apply(
      [&](auto... bk) { (add(decltype(bk)::name, backend::gemm_table<decltype(bk)>()), ...); },
      backend::Available{});
#ifdef ROSETTA_HAS_HWY
  // Our own Highway gemm: a routing target of Auto, not in Available, but a fixed backend here.
  add(backend::HwyGemm::name, backend::gemm_table<backend::HwyGemm>());
#endif
  race(cs, m);
  backend::Dynamic::set(backend::gemm_table<backend::Naive>());
  return comparison(cs, "auto");
}

// ---- the table ---------------------------------------------------------------------------------
std::string library_versions() {
  std::string s;
#ifdef ROSETTA_HAS_EIGEN
  s += fmt::format("eigen {}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
#endif
#ifdef ROSETTA_HAS_BLIS
  s += ", blis " + backend::Blis::version();
#endif
#ifdef ROSETTA_HAS_CBLAS
  {
    std::string v = backend::Cblas::version();
    s += ", " + v.substr(0, v.find(' ', v.find(' ') + 1));  // "OpenBLAS 0.3.21"
  }
#endif
#ifdef ROSETTA_ATLAS_HWY_DYNAMIC
  s += ", highway (dynamic target " + atlas::hwy_dynamic_target() + ")";
#endif
#ifdef ROSETTA_HAS_HWY
  s += std::string(", hwy gemm (static target ") + hwy::TargetName(HWY_STATIC_TARGET) + ")";
#endif
  return s;
}

int run(bool quick, bool do_atlas, bool do_gemm, const std::string& filter, double tie,
        const std::string& out_path, const std::string& header_path, bool verbose,
        bool verify_model) {
  const auto t_start = wall_ns();
  const routing::Catalog catalog = atlas::route_catalog();
  std::vector<std::string> text;
  auto add = [&](std::string s) { text.push_back(std::move(s)); };
  add("# Routing table for backend::Auto and atlas::auto_run (format and lookup rule:");
  add("# include/rosetta/backend/auto_table.hpp). Generated by rosetta-calibrate" +
      std::string(quick ? " --quick" : "") + " on " + bench::utc_timestamp() + ",");
  add("# CPU " + bench::cpuinfo_field("model name") + ", " + __VERSION__ + " " ROSETTA_BENCH_FLAGS +
      ",");
  add("# " + library_versions() + "; one BLAS thread.");
  add("# Each entry's comment: the winner's median time per call, the others as multiples of it.");
  add("rosetta-auto-table 1");

  if (do_atlas) {
    const std::vector<std::size_t> sizes =
        quick
            ? std::vector<std::size_t>{1u << 10, 1u << 16, 1u << 20}
            : std::vector<std::size_t>{1u << 10, 1u << 13, 1u << 16, 1u << 18, 1u << 20, 1u << 22};
    Method m;
    m.trial_ns = 1e5;
    m.budget_ns = quick ? 1e7 : 4e7;
    std::string sz;
    for (auto n : sizes) sz += " " + human_n(n);
    add("");
    add("# atlas KERNEL N_MIN N_MAX BACKEND: measured at n =" + sz +
        "; a size's winner owns the sizes up to the");
    add("# geometric midpoints to its neighbours.");
    for (const auto& l : calibrate_atlas(sizes, filter, m))
      add(fmt::format(
          "atlas {} {} {} {}  # {}", l.kernel, l.lo,
          l.hi == std::numeric_limits<std::size_t>::max() ? std::string("*") : std::to_string(l.hi),
          l.backend, l.note));
  }

  std::vector<GemmLine> gemm_lines;
  std::vector<Workload> workloads = {{"dispatch_warm", "tiny", 2, 32, false},
                                     {"mem_train_step", "tiny", 2, 8, true},
                                     {"scale_forward_256", "small", 2, 32, false},
                                     {"scale_train_256", "small", 2, 8, true}};
  if (do_gemm) {
    if (!quick) {
      for (std::size_t b : {1, 4, 8})
        workloads.push_back({fmt::format("mem_scale_batch_{}", b), "tiny", b, 32, false});
      for (std::size_t s : {8, 16, 64})
        workloads.push_back({fmt::format("mem_scale_seq_{}", s), "tiny", 2, s, false});
    }
    const std::size_t batches = quick ? 2 : 4;
    const int steps = quick ? 4 : 13;  // rosetta-bench: 3 warm-up + 10 timed steps
    const auto t0 = wall_ns();
    record_shapes<float, RowMajor>(workloads, batches, steps);
    record_shapes<float, ColMajor>(workloads, batches, steps);
    record_shapes<double, RowMajor>(workloads, batches, steps);
    record_shapes<double, ColMajor>(workloads, batches, steps);
    const auto& shapes = recorder().shapes;
    std::cerr << fmt::format("[gemm] {} distinct shapes recorded in {:.1f} s\n", shapes.size(),
                             static_cast<double>(wall_ns() - t0) * 1e-9);
    Method m;
    m.cold = true;
    m.min_rounds = 15;
    m.max_rounds = 401;
    m.budget_ns = quick ? 4e6 : 2e7;
    const auto t1 = wall_ns();
    std::size_t i = 0;
    for (const auto& [key, info] : shapes) {
      if (key.is_double)
        gemm_lines.push_back(
            key.col ? time_shape<double, ColMajor>(key, info, m, tie, catalog.gemm_fallback)
                    : time_shape<double, RowMajor>(key, info, m, tie, catalog.gemm_fallback));
      else
        gemm_lines.push_back(
            key.col ? time_shape<float, ColMajor>(key, info, m, tie, catalog.gemm_fallback)
                    : time_shape<float, RowMajor>(key, info, m, tie, catalog.gemm_fallback));
      if (++i % 50 == 0 || i == shapes.size())
        std::cerr << fmt::format("[gemm] {}/{} shapes timed ({:.1f} s)\n", i, shapes.size(),
                                 static_cast<double>(wall_ns() - t1) * 1e-9);
    }
    add("");
    add("# gemm SCALAR LAYOUT OPA OPB M N K BACKEND: the shapes a forward pass and a training "
        "step");
    add("# of the tiny and small presets issue (" + std::to_string(batches) + " token batches, " +
        std::to_string(steps) + " training steps; leading dimensions, alpha and beta as in the");
    add("# model).");
    add(fmt::format(
        "# Winner: the lowest median; the fallback ({}) when it is within {:.0f} % of it.",
        routing::name(catalog.gemm_fallback), tie * 100));
    for (const auto& l : gemm_lines)
      add(fmt::format("gemm {} {}  # {}", shape_text(l.key), l.backend, l.note));

    // What the routes predict for the gemms of each workload (first token batch).
    std::cerr << "[gemm] predicted gemm time per iteration (sum over its gemms of the medians):\n";
    for (const auto& w : workloads)
      for (int sl = 0; sl < 4; ++sl) {
        const bool dbl = sl >= 2, col = sl % 2;
        std::map<std::string, double> fixed;
        double routed = 0;
        std::size_t calls = 0;
        for (const auto& l : gemm_lines) {
          if (l.key.is_double != dbl || l.key.col != col) continue;
          const auto it = shapes.at(l.key).calls.find(w.name);
          if (it == shapes.at(l.key).calls.end()) continue;
          const double c = static_cast<double>(it->second);
          calls += it->second;
          routed += c * l.median.at(l.backend);
          for (const auto& [b, t] : l.median) fixed[b] += c * t;
        }
        if (!calls) continue;
        std::string s;
        for (const auto& [b, t] : fixed) s += fmt::format("  {} {}", b, human_ns(t));
        std::cerr << fmt::format("  {:<18} {}/{}  {:3} gemms: auto {} |{}\n", w.name,
                                 dbl ? "double" : "float", col ? "col" : "row", calls,
                                 human_ns(routed), s);
        if (verbose)  // the routes that differ from the fallback, with their share
          for (const auto& l : gemm_lines) {
            const auto& sc = shapes.at(l.key).calls;
            const auto it = sc.find(w.name);
            const std::string fb(routing::name(catalog.gemm_fallback));
            if (l.key.is_double != dbl || l.key.col != col || it == sc.end() || l.backend == fb)
              continue;
            const double c = static_cast<double>(it->second);
            std::cerr << fmt::format(
                "      {:<32} x{:<3} {} {} vs {} {}: saves {}\n", shape_text(l.key), it->second,
                l.backend, human_ns(l.median.at(l.backend)), fb, human_ns(l.median.at(fb)),
                human_ns(c * (l.median.at(fb) - l.median.at(l.backend))));
          }
      }
  }

  std::string body;
  for (const auto& l : text) body += l + "\n";
  // The table must load in this build, strictly.
  const auto table = routing::RouteTable::parse(body, out_path, catalog);
  if (verify_model && do_gemm) {
    const backend::Auto::Scope scope(table);
    Method m;
    m.trial_ns = 2e6;
    m.budget_ns = quick ? 6e8 : 2e9;
    m.min_rounds = 9;
    m.max_rounds = 201;
    std::cerr << "[verify] one iteration in the model (virtual twin, interleaved rounds), routed "
                 "vs every fixed backend:\n";
    for (const auto& w : workloads) {
      if (quick && w.preset != "tiny") continue;
      std::cerr << fmt::format("  {:<18} float/row   {}\n", w.name, verify<float, RowMajor>(w, m));
      std::cerr << fmt::format("  {:<18} double/row  {}\n", w.name, verify<double, RowMajor>(w, m));
      std::cerr << fmt::format("  {:<18} float/col   {}\n", w.name, verify<float, ColMajor>(w, m));
      std::cerr << fmt::format("  {:<18} double/col  {}\n", w.name, verify<double, ColMajor>(w, m));
    }
  }
  std::cerr << fmt::format("rosetta-calibrate: {} gemm and {} atlas routes", table.gemm_routes(),
                           table.atlas_routes());
  auto write = [](const std::string& path, const std::string& content) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    f << content;
    if (!f) throw std::runtime_error("cannot write " + path);
  };
  write(out_path, body);
  std::cerr << " -> " << out_path;
  if (!header_path.empty()) {
    // The shipped copy without the per-entry comments (the measurements stay in --out).
    std::string brief;
    for (std::size_t pos = 0; pos < body.size();) {
      const std::size_t eol = body.find('\n', pos);
      std::string line = body.substr(pos, eol - pos);
      pos = eol + 1;
      if (line.rfind("gemm ", 0) == 0 || line.rfind("atlas ", 0) == 0)
        line = line.substr(0, line.find("  #"));
      if (line.rfind("# Each entry's comment", 0) == 0)
        line = "# The entries without their measurements (those are in " + out_path + ").";
      brief += line + "\n";
    }
    body = brief;
    if (body.size() > 60000)
      throw std::runtime_error(fmt::format(
          "the table has {} characters, too long for one string literal (ISO C++ guarantees "
          "65536); calibrate fewer shapes",
          body.size()));
    // A string constant as clang-format lays it out (broken after '=' past 100 columns).
    auto constant = [](const std::string& name, const std::string& value) {
      const std::string head = "inline constexpr const char* " + name + " =";
      const std::string lit = "R\"(" + value + ")\";";
      return head.size() + 1 + lit.size() <= 100 ? head + " " + lit + "\n"
                                                 : head + "\n    " + lit + "\n";
    };
    std::string h =
        "// Generated by rosetta-calibrate (benchmark/rosetta_calibrate.cpp); do not edit by "
        "hand.\n"
        "// The routing table backend::Auto loads when ROSETTA_AUTO_TABLE is not set (format:\n"
        "// backend/auto_table.hpp), measured on the development machine. In a build without\n"
        "// some backend its entries go to the fallback backend (backend/auto.hpp). Regenerate "
        "with\n"
        "// (one command) build/benchmark/rosetta-calibrate --quick --out "
        "benchmarks/auto-table.txt\n"
        "//   --header include/rosetta/backend/auto_default_table.hpp\n"
        "#pragma once\n\n"
        "namespace rosetta::backend::detail {\n"
        "inline constexpr const char* kAutoDefaultTable = R\"rosetta_table(\n" +
        body +
        ")rosetta_table\";\n"
        "// The CPU the table was measured on (CPUID vendor family/model). On another one,\n"
        "// Auto reads the table with BLIS and OpenBLAS missing (Auto::default_catalog()).\n" +
        constant("kAutoDefaultCpu", backend::auto_detail::cpu_id()) +
        "}  // namespace rosetta::backend::detail\n";
    write(header_path, h);
    std::cerr << " and " << header_path;
  }
  std::cerr << fmt::format(" ({:.1f} s)\n", static_cast<double>(wall_ns() - t_start) * 1e-9);
  return 0;
}

}  // namespace
}  // namespace rosetta::calibrate

int main(int argc, char** argv) {
  using namespace rosetta::calibrate;
  // One BLAS thread, set before any BLAS library initialises.
  for (const char* v : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS"})
    ::setenv(v, "1", 1);
  CLI::App app{"rosetta-calibrate: measures the routing table of backend::Auto / atlas::auto_run"};
  bool quick = false, no_atlas = false, no_gemm = false, verbose = false, verify_model = false;
  std::string filter, out = "benchmarks/auto-table.txt", header;
  double tie = 0.10;
  app.add_flag("--quick", quick, "atlas sizes 1K 64K 1M, two token batches, short budgets");
  app.add_option("--out", out, "where to write the table")->capture_default_str();
  app.add_option("--header", header, "also write it as a C++ header (the shipped default)");
  app.add_flag("--no-atlas", no_atlas, "leave out the atlas entries");
  app.add_flag("--no-gemm", no_gemm, "leave out the gemm entries");
  app.add_flag("--verbose", verbose, "list the gemm routes that differ from the fallback");
  app.add_flag("--verify", verify_model,
               "time the model with the new routes against every fixed backend (interleaved)");
  app.add_option("--filter", filter, "only atlas kernels matching this regular expression");
  app.add_option("--tie", tie, "prefer the fallback backend within this fraction of the winner")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);
  try {
    return run(quick, !no_atlas, !no_gemm, filter, tie, out, header, verbose, verify_model);
  } catch (const std::exception& e) {
    std::cerr << "rosetta-calibrate: " << e.what() << "\n";
    return 1;
  }
}
