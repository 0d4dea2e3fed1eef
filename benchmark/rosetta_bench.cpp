// rosetta-bench: the benchmark harness behind `make bench`.
//
// Runs the 22 reference scenarios of the cross-language study (ids and parameters fixed by
// docs/bench-schema.md) with the default policy, then the C++ axes — backend × layout ×
// scalar × dispatch over dispatch_warm and mem_train_step, batch/sequence scaling per
// backend, and the kernels per backend — and writes benchmarks/cpp.json.
//
// Each scenario runs in a fresh child process (this program re-executed with --run-one),
// so its peak RSS is its own and a crash cannot take the suite down. Fixed seed 42; 3
// warm-up + at least 10 timed trials, more for short scenarios until they take 0.1 s (at most
// 1000; --quick: 1 + 3); BLAS libraries pinned to one thread.
#include <pthread.h>
#include <sched.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <regex>
#include <thread>

#include "bench_batch.hpp"
#include "bench_support.hpp"
#include "rosetta/backend/auto.hpp"
#include "rosetta/dispatch/select.hpp"
#include "rosetta/dispatch/virtual.hpp"
#include "rosetta/instances.hpp"
#include "rosetta/rosetta.hpp"

// ---- global operator new, counted ---------------------------------------------------------
namespace {
void* counted_new(std::size_t n) {
  rosetta::bench::alloc_counter().add(n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* counted_new(std::size_t n, std::align_val_t al) {
  rosetta::bench::alloc_counter().add(n);
  const auto a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (std::max<std::size_t>(n, 1) + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t n) {
  return counted_new(n);
}
void* operator new[](std::size_t n) {
  return counted_new(n);
}
void* operator new(std::size_t n, std::align_val_t al) {
  return counted_new(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al) {
  return counted_new(n, al);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace rosetta::bench {
namespace {

// ---- scenario descriptions ------------------------------------------------------------------
struct PolicyDesc {
  std::string scalar = "float", layout = "row", backend, dispatch = "static";
  std::string name() const { return scalar + "/" + layout + "/" + backend + "/" + dispatch; }
};

enum class Kind { Forward, Train, Cold, ParallelForward, ParallelTrain, Matmul, Softmax, RmsNorm };

struct Scenario {
  std::string id, base_id, axis;
  Kind kind = Kind::Forward;
  std::string preset = "tiny";
  std::size_t batch = 0, seq = 0, threads = 1, n = 0;
  PolicyDesc policy;

  json params() const {
    json p;
    if (kind == Kind::Matmul || kind == Kind::Softmax || kind == Kind::RmsNorm) {
      p["n"] = n;
      if (kind == Kind::RmsNorm) p["shape"] = {2, 32, 64};
      if (kind == Kind::Matmul) p["shape"] = {n, n, n};
    } else {
      p["preset"] = preset;
      p["batch"] = batch;
      p["seq"] = seq;
      p["hidden"] = preset == "small" ? 256 : 64;
    }
    p["threads"] = threads;
    return p;
  }
};

Config preset_config(const std::string& p) {
  return p == "small" ? Config::small() : Config::tiny();
}

/// Everything a child measures; the parent adds statistics and derived values.
struct Measured {
  std::vector<std::int64_t> warm, timed, cpu;
  double alloc_bytes = 0, alloc_count = 0;  // per iteration
  Health health;
  std::optional<double> loss;
  std::uint64_t flops = 0, tokens = 0;
  int inner_reps = 1;
  RssSplit rss;      // sampled at the end of the timed loop, the scenario's state still alive
  json route_table;  // backend "auto": the routing table used (null otherwise)
  json paired;  // backend "auto": the paired comparison with the fixed backends (null otherwise)
  std::optional<std::int64_t> peak_rss;  // set before extra work (the paired models) raises it
};

struct RunOpts {
  int warmup = 3, trials = 10;
  /// Timed trials: at least `trials`, and more — up to kMaxTrials — until they take about
  /// this long (estimated from the last warm-up trial). Ten trials of a 0.25 ms forward pass
  /// are 2.5 ms of measurement: one disturbed trial moved the median by 5-10 % on this VM.
  double min_time_s = 0.1;
};
inline constexpr int kMaxTrials = 1000;
/// The most timed trials a scenario runs: kMaxTrials, or --trials when that asks for more.
inline int max_trials(const RunOpts& o) {
  return std::max(o.trials, kMaxTrials);
}

/// The number of timed trials for trials of `trial_ns` each (see RunOpts::min_time_s).
inline int timed_trials(const RunOpts& o, double trial_ns) {
  if (o.min_time_s <= 0 || trial_ns <= 0) return o.trials;
  const double want = std::ceil(o.min_time_s * 1e9 / trial_ns);
  return static_cast<int>(
      std::clamp(want, static_cast<double>(o.trials), static_cast<double>(max_trials(o))));
}

/// Times f: warm-up trials, then timed trials with wall/CPU clocks and allocation counts.
/// reps calls of f per trial (kernels: enough calls for ~100 µs); times are per call.
template <class F>
void time_loop(const RunOpts& o, int reps, Measured& m, F&& f) {
  m.inner_reps = reps;
  m.warm.reserve(static_cast<std::size_t>(o.warmup));
  for (int w = 0; w < o.warmup; ++w) {
    const auto t0 = wall_ns();
    for (int r = 0; r < reps; ++r) f();
    m.warm.push_back((wall_ns() - t0) / reps);
  }
  const int trials =
      timed_trials(o, m.warm.empty() ? 0.0 : static_cast<double>(m.warm.back()) * reps);
  // Reserved before the counted window: the vectors must not allocate inside it.
  m.timed.reserve(static_cast<std::size_t>(trials));
  m.cpu.reserve(static_cast<std::size_t>(trials));
  auto& ac = alloc_counter();
  const auto b0 = ac.bytes.load(), c0 = ac.count.load();
  for (int i = 0; i < trials; ++i) {
    const auto c = cpu_ns();
    const auto t0 = wall_ns();
    for (int r = 0; r < reps; ++r) f();
    const auto t1 = wall_ns();
    m.timed.push_back((t1 - t0) / reps);
    m.cpu.push_back((cpu_ns() - c) / reps);
  }
  const double iters = static_cast<double>(trials) * reps;
  m.alloc_bytes = static_cast<double>(ac.bytes.load() - b0) / iters;
  m.alloc_count = static_cast<double>(ac.count.load() - c0) / iters;
  m.rss = rss_split();  // after the counted window: reading /proc allocates
}

template <class F>
int calibrate_reps(F&& f) {
  f();
  const auto t0 = wall_ns();
  f();
  const auto dt = std::max<std::int64_t>(wall_ns() - t0, 1);
  return static_cast<int>(std::clamp<std::int64_t>(100'000 / dt, 1, 100'000));
}

template <class V>
void scan_logits(Health& h, V logits) {
  for (std::size_t i = 0; i < logits.rows(); ++i)
    for (std::size_t j = 0; j < logits.cols(); ++j) {
      const auto x = logits(i, j);
      h.scan(&x, 1);
    }
}

/// A barrier for n threads that spins (with a pause) before yielding the core. std::barrier
/// puts a waiting thread to sleep on a futex, and waking it costs tens of microseconds on
/// this VM: with a forward pass of ~0.26 ms per round, that alone held parallel_T2 to
/// ~1.6x although two separate processes running dispatch_warm at once each keep 98 % of
/// their single-process speed. Spinning is free while every worker has its own core; when
/// there are more workers than cores (parallel_T4 on 2 cores) the waiters yield after a
/// short spin, so the working threads get the cores.
class SpinBarrier {
 public:
  explicit SpinBarrier(std::size_t n)
      : n_(n), spin_(n <= std::max(1u, std::thread::hardware_concurrency()) ? 1u << 22 : 1u << 8) {}
  void arrive_and_wait() {
    const std::uint64_t gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      return;
    }
    for (unsigned i = 0; gen_.load(std::memory_order_acquire) == gen; ++i) {
      if (i < spin_) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  const std::size_t n_;
  const unsigned spin_;
  alignas(64) std::atomic<std::size_t> count_{0};
  alignas(64) std::atomic<std::uint64_t> gen_{0};
};

/// n workers, each pinned to its own core and owning its own state (built on its thread, so
/// its memory is first-touched there). The calling thread is worker 0 — no extra thread
/// waits on a core that a worker needs; n - 1 threads are started for the others.
/// run() releases one round of work (one work() per worker) and returns when all finished.
template <class State>
class Workers {
 public:
  template <class Make>
  Workers(std::size_t n, Make make) : start_(n), done_(n) {
    states_.resize(n);
    pin_to_core(0);
    states_[0] = make(0);
    for (std::size_t i = 1; i < n; ++i)
      threads_.emplace_back([this, i, make] {
        pin_to_core(i);
        states_[i] = make(i);
        done_.arrive_and_wait();  // constructed
        for (;;) {
          start_.arrive_and_wait();
          if (stop_) break;
          states_[i]->work();
          done_.arrive_and_wait();
        }
      });
    done_.arrive_and_wait();
  }
  void run() {
    start_.arrive_and_wait();
    states_[0]->work();
    done_.arrive_and_wait();
  }
  State& state(std::size_t i) { return *states_[i]; }
  ~Workers() {
    stop_ = true;
    start_.arrive_and_wait();
    for (auto& t : threads_) t.join();
  }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

 private:
  SpinBarrier start_, done_;
  std::vector<std::unique_ptr<State>> states_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

// ---- model scenarios, generic over the model type (static Transformer or virtual twin) ----
template <class Model, class TrainerT>
struct ModelRunner {
  using T = typename Model::policy::scalar;

  struct FwdState {
    Model model;
    typename Model::Work ws;
    Batch batch;
    FwdState(const Config& c, std::size_t b, std::size_t s, std::uint64_t stream)
        : model(c, kSeed), ws(model.make_workspace()), batch(make_batch(c, b, s, stream)) {}
    void work() { model.forward(batch.tokens(), ws); }
  };
  struct TrainState {
    Model model;
    TrainerT trainer;
    Batch batch;
    T loss = 0;
    TrainState(const Config& c, std::size_t b, std::size_t s, std::uint64_t stream)
        : model(c, kSeed), trainer(model, TrainConfig{}), batch(make_batch(c, b, s, stream)) {}
    void work() { loss = trainer.train_step(batch.tokens(), batch.targets).total; }
  };

  static void run(const Scenario& sc, const RunOpts& o, Measured& m) {
    const Config cfg = preset_config(sc.preset);
    switch (sc.kind) {
      case Kind::Forward: {
        FwdState st(cfg, sc.batch, sc.seq, 0);
        time_loop(o, 1, m, [&] { st.work(); });
        scan_logits(m.health, st.ws.logits.crows(sc.batch * sc.seq));
        m.tokens = sc.batch * sc.seq;
        break;
      }
      case Kind::Train: {
        TrainState st(cfg, sc.batch, sc.seq, 0);
        time_loop(o, 1, m, [&] { st.work(); });
        scan_logits(m.health, st.trainer.workspace().logits.crows(sc.batch * sc.seq));
        m.loss = static_cast<double>(st.loss);
        m.tokens = sc.batch * sc.seq;
        break;
      }
      case Kind::Cold: {
        const Batch b = make_batch(cfg, sc.batch, sc.seq);
        time_loop(o, 1, m, [&] {
          Model model(cfg, kSeed);
          auto ws = model.make_workspace();
          model.forward(b.tokens(), ws);
        });
        Model model(cfg, kSeed);  // untimed: the output's health
        auto ws = model.make_workspace();
        scan_logits(m.health, model.forward(b.tokens(), ws));
        m.rss = rss_split();  // each timed trial freed its model: sample with one alive
        m.tokens = sc.batch * sc.seq;
        break;
      }
      case Kind::ParallelForward: {
        Workers<FwdState> w(sc.threads, [&](std::size_t i) {
          return std::make_unique<FwdState>(cfg, sc.batch, sc.seq, i);
        });
        time_loop(o, 1, m, [&] { w.run(); });
        for (std::size_t i = 0; i < sc.threads; ++i)
          scan_logits(m.health, w.state(i).ws.logits.crows(sc.batch * sc.seq));
        m.tokens = sc.threads * sc.batch * sc.seq;
        break;
      }
      case Kind::ParallelTrain: {
        Workers<TrainState> w(sc.threads, [&](std::size_t i) {
          return std::make_unique<TrainState>(cfg, sc.batch, sc.seq, i);
        });
        time_loop(o, 1, m, [&] { w.run(); });
        double loss = 0;
        for (std::size_t i = 0; i < sc.threads; ++i) {
          scan_logits(m.health, w.state(i).trainer.workspace().logits.crows(sc.batch * sc.seq));
          loss += static_cast<double>(w.state(i).loss);
        }
        m.loss = loss / static_cast<double>(sc.threads);
        m.tokens = sc.threads * sc.batch * sc.seq;
        break;
      }
      default:
        throw std::logic_error("not a model scenario");
    }
  }

  /// FLOPs of one iteration: the same work once more, through the counting gemm table.
  static std::uint64_t count_flops(const Scenario& sc) {
    const Config cfg = preset_config(sc.preset);
    auto& counter = backend::flop_counter();
    auto once = [&](auto&& state) {  // counts one work() of a freshly built state
      counter = 0;
      state.work();
      return counter;
    };
    switch (sc.kind) {
      case Kind::Forward:
      case Kind::Cold:
        return once(FwdState(cfg, sc.batch, sc.seq, 0));
      case Kind::ParallelForward:
        return sc.threads * once(FwdState(cfg, sc.batch, sc.seq, 0));
      case Kind::Train:
        return once(TrainState(cfg, sc.batch, sc.seq, 0));
      case Kind::ParallelTrain:
        return sc.threads * once(TrainState(cfg, sc.batch, sc.seq, 0));
      default:
        return 0;
    }
  }
};

template <class T, class L, class B>
void run_kernel(const Scenario& sc, const RunOpts& o, Measured& m) {
  Rng rng(kSeed, 7);
  auto fill = [&](auto& t) {
    for (auto& x : t.flat()) x = static_cast<T>(rng.normal());
  };
  switch (sc.kind) {
    case Kind::Matmul: {
      Tensor<T, L> a({sc.n, sc.n}), b({sc.n, sc.n}), c({sc.n, sc.n});
      fill(a);
      fill(b);
      auto A = MatrixView<const T, L>(a.matrix()), Bm = MatrixView<const T, L>(b.matrix());
      auto C = c.matrix();
      auto f = [&] { B::gemm(Op::N, Op::N, T(1), A, Bm, T(0), C); };
      time_loop(o, calibrate_reps(f), m, f);
      m.health.scan(c.data(), sc.n * sc.n);
      backend::Dynamic::Scope scope(backend::counting_gemm_table<B>());
      backend::flop_counter() = 0;
      backend::Dynamic::gemm(Op::N, Op::N, T(1), A, Bm, T(0), C);
      m.flops = backend::flop_counter();
      break;
    }
    case Kind::Softmax: {
      Tensor<T, L> x({1, sc.n}), y({1, sc.n});
      fill(x);
      auto X = MatrixView<const T, L>(x.matrix());
      auto Y = y.matrix();
      auto f = [&] { kernels::softmax_forward(Y, X); };
      time_loop(o, calibrate_reps(f), m, f);
      m.health.scan(y.data(), sc.n);
      break;
    }
    case Kind::RmsNorm: {
      const std::size_t rows = 2 * 32, cols = 64;
      Tensor<T, L> x({rows, cols}), y({rows, cols}), g({cols}), rstd({rows});
      fill(x);
      for (auto& v : g.flat()) v = T(1);
      auto X = MatrixView<const T, L>(x.matrix());
      auto Y = y.matrix();
      auto f = [&] {
        kernels::rmsnorm_forward(Y, rstd.flat(), X, std::span<const T>(g.flat()), T(1e-5));
      };
      time_loop(o, calibrate_reps(f), m, f);
      m.health.scan(y.data(), rows * cols);
      break;
    }
    default:
      throw std::logic_error("not a kernel scenario");
  }
}

/// Which routing table backend::Auto uses in this process (loads it if need be).
json route_table_json() {
  const char* env = std::getenv(backend::Auto::kEnvVar);
  json j = {{"env", env && *env ? json(env) : json(nullptr)}};
  try {
    const auto& t = backend::Auto::routes();
    j["source"] = t.source();
    j["fingerprint"] = fmt::format("{:016x}", t.fingerprint());
    j["gemm_routes"] = t.gemm_routes();
    j["atlas_routes"] = t.atlas_routes();
    j["substituted"] = t.substituted();
    j["fallback"] = std::string(routing::name(t.fallback()));
  } catch (const std::exception& e) {
    j["error"] = e.what();
  }
  return j;
}

/// One model of a paired comparison, behind a virtual work() (one call per timed iteration:
/// the indirection costs nanoseconds against iterations of hundreds of microseconds).
struct PairedModel {
  virtual ~PairedModel() = default;
  virtual void work() = 0;
};

template <class P>
std::unique_ptr<PairedModel> paired_model(const Scenario& sc) {
  using R = ModelRunner<Transformer<P>, Trainer<P>>;
  struct Fwd final : PairedModel {
    typename R::FwdState s;
    explicit Fwd(const Scenario& c) : s(preset_config(c.preset), c.batch, c.seq, 0) {}
    void work() override { s.work(); }
  };
  struct Train final : PairedModel {
    typename R::TrainState s;
    explicit Train(const Scenario& c) : s(preset_config(c.preset), c.batch, c.seq, 0) {}
    void work() override { s.work(); }
  };
  if (sc.kind == Kind::Forward) return std::make_unique<Fwd>(sc);
  if (sc.kind == Kind::Train) return std::make_unique<Train>(sc);
  throw std::logic_error("paired comparison: not a forward or training scenario");
}

/// Paired comparison of backend::Auto with every fixed backend but naive (and our Highway
/// gemm, backend::HwyGemm, as a fixed backend where it is compiled in), in this process:
/// one model each (same seed and batch), all alive; each round runs every model twice in a
/// row and times the second iteration (the first brings its data and code back into the
/// caches the other models evicted: a steady state like the scenario's own loop), the order
/// rotating from round to round, so slow drift of this shared machine hits all alike. Per
/// fixed backend: the median and quartiles of the per-round ratio auto/fixed. Runs after the
/// scenario's own timed loop, so it does not disturb its numbers; about 0.15 s per trial of
/// the scenario (30 to 1000 rounds).
template <class T>
json paired_with_fixed(const Scenario& sc, const RunOpts& o) {
  std::vector<std::string> names{"auto"};
  std::vector<std::unique_ptr<PairedModel>> models;
  models.push_back(paired_model<Policy<T, RowMajor, backend::Auto>>(sc));
  for (const auto& b : available_backends()) {
    if (b == "naive") continue;  // 10-20x slower here: never the best, and slow to pair
    visit_policy(sc.policy.scalar, "row", b, [&]<class P>() {
      if constexpr (std::same_as<typename P::scalar, T> &&
                    std::same_as<typename P::layout, RowMajor>)
        models.push_back(paired_model<P>(sc));
    });
    names.push_back(b);
  }
#ifdef ROSETTA_HAS_HWY
  models.push_back(paired_model<Policy<T, RowMajor, backend::HwyGemm>>(sc));
  names.emplace_back(backend::HwyGemm::name);
#endif
  const std::size_t n = models.size();
  // Rounds for about 0.15 s per trial of the scenario (1.5 s by default; 2 runs per model and
  // round), 30 to 1000.
  std::int64_t round_ns = 1;
  for (int w = 0; w < std::max(o.warmup, 1); ++w) {
    const auto t0 = wall_ns();
    for (auto& mdl : models) mdl->work();
    round_ns = std::max<std::int64_t>(wall_ns() - t0, 1);
  }
  const int rounds =
      static_cast<int>(std::clamp<std::int64_t>(75'000'000LL * o.trials / round_ns, 30, 1000));
  std::vector<std::vector<std::int64_t>> t(n);
  for (int r = 0; r < rounds; ++r)
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (static_cast<std::size_t>(r) + k) % n;
      models[i]->work();  // untimed: brings this model's data and code back into the caches
      const auto t0 = wall_ns();
      models[i]->work();
      t[i].push_back(wall_ns() - t0);
    }
  json against = json::object();
  std::string best;
  double best_median = 0;
  for (std::size_t i = 1; i < n; ++i) {
    std::vector<double> ratio(static_cast<std::size_t>(rounds));
    for (std::size_t r = 0; r < ratio.size(); ++r)
      ratio[r] =
          static_cast<double>(t[0][r]) / static_cast<double>(std::max<std::int64_t>(t[i][r], 1));
    const double med = quantile(t[i], 0.5);
    against[names[i]] = {{"median_ns", std::llround(med)},
                         {"ratio_median", quantile(ratio, 0.5)},
                         {"ratio_q1", quantile(ratio, 0.25)},
                         {"ratio_q3", quantile(ratio, 0.75)}};
    if (best.empty() || med < best_median) best = names[i], best_median = med;
  }
  json out = {{"rounds", rounds},
              {"auto_median_ns", std::llround(quantile(t[0], 0.5))},
              {"against", against},
              {"best", best.empty() ? json(nullptr) : json(best)}};
  if (!best.empty()) out["ratio_to_best"] = against[best]["ratio_median"];
  return out;
}

/// Runs sc on Policy<T, L, B>: a kernel, the static model, or the virtual twin over
/// gemm_table<B>(); then counts its FLOPs. The virtual twin computes bit-identical results
/// (test_virtual), so counting its gemm calls counts exactly the products of this scenario,
/// with the same routing.
template <class T, class L, class B>
void measure_policy(const Scenario& sc, const RunOpts& o, Measured& m) {
  if (sc.kind == Kind::Matmul || sc.kind == Kind::Softmax || sc.kind == Kind::RmsNorm) {
    run_kernel<T, L, B>(sc, o, m);  // (softmax and RMSNorm do not use B)
    return;
  }
  using P = Policy<T, L, B>;
  using Virtual = ModelRunner<VirtualTransformer<T, L>, VirtualTrainer<T, L>>;
  if (sc.policy.dispatch == "static") {
    ModelRunner<Transformer<P>, Trainer<P>>::run(sc, o, m);
  } else {
    backend::Dynamic::Scope scope(backend::gemm_table<B>());
    Virtual::run(sc, o, m);
  }
  backend::Dynamic::Scope scope(backend::counting_gemm_table<B>());
  m.flops = Virtual::count_flops(sc);
}

/// The backends outside backend::Available (so not in visit_policy), row-major only:
/// "auto" (backend::Auto, measured routing; it forwards to the others) and "hwy"
/// (backend::HwyGemm, our Highway gemm, which Auto routes to; where Highway is compiled in).
/// For "auto" also the routing table and, in the cpp_auto forward/train rows, the paired
/// comparison.
template <class B>
void measure_extra(const Scenario& sc, const RunOpts& o, Measured& m) {
  const auto& p = sc.policy;
  if (p.layout != "row")
    throw std::invalid_argument("backend " + p.backend +
                                ": the benchmark instantiates layout row only, not '" + p.layout +
                                "'");
  constexpr bool is_auto = std::same_as<B, backend::Auto>;
  if constexpr (is_auto) {
    m.route_table = route_table_json();
    if (m.route_table.contains("error")) throw std::runtime_error(m.route_table["error"]);
  }
  auto run = [&]<class T>() {
    measure_policy<T, RowMajor, B>(sc, o, m);
    if (is_auto && p.dispatch == "static" && sc.axis == "cpp_auto" &&
        (sc.kind == Kind::Forward || sc.kind == Kind::Train)) {
      m.peak_rss = peak_rss_bytes();  // the scenario's own peak, before the paired models
      m.paired = paired_with_fixed<T>(sc, o);
    }
  };
  if (p.scalar == "float")
    run.template operator()<float>();
  else if (p.scalar == "double")
    run.template operator()<double>();
  else
    throw std::invalid_argument("scalar '" + p.scalar + "' is not one of: float, double");
}

/// Runs sc in this process with its policy chosen at run time.
Measured measure(const Scenario& sc, const RunOpts& o) {
  Measured m;
  const auto& p = sc.policy;
  if (p.backend == "auto") {
    measure_extra<backend::Auto>(sc, o, m);
    return m;
  }
#ifdef ROSETTA_HAS_HWY
  if (p.backend == backend::HwyGemm::name) {
    measure_extra<backend::HwyGemm>(sc, o, m);
    return m;
  }
#endif
  const std::string backend_name = p.backend == "none" ? "naive" : p.backend;
  visit_policy(p.scalar, p.layout, backend_name, [&]<class P>() {
    measure_policy<typename P::scalar, typename P::layout, typename P::backend>(sc, o, m);
  });
  return m;
}

// ---- the scenario list ------------------------------------------------------------------------
/// The backend of the 22 reference scenarios: backend::Auto, the fastest configuration here
/// (measured routing over every gemm backend of this build and our Highway gemm, with the
/// shipped table or ROSETTA_AUTO_TABLE's; docs/decisions.md, *Measured routing*). The fixed
/// backends run in the cpp_grid / cpp_auto / cpp_kernels rows.
constexpr const char* kReferenceBackend = "auto";

std::vector<Scenario> all_scenarios() {
  std::vector<Scenario> out;
  PolicyDesc def;
  def.backend = kReferenceBackend;
  auto add = [&](std::string id, std::string axis, Kind k, std::string preset, std::size_t b,
                 std::size_t s, std::size_t threads = 1, std::size_t n = 0) {
    Scenario sc;
    sc.id = sc.base_id = std::move(id);
    sc.axis = std::move(axis);
    sc.kind = k;
    sc.preset = std::move(preset);
    sc.batch = b;
    sc.seq = s;
    sc.threads = threads;
    sc.n = n;
    sc.policy = def;
    out.push_back(sc);
    return out.size() - 1;
  };
  // The 22 reference scenarios (default policy).
  add("mem_train_step", "memory", Kind::Train, "tiny", 2, 8);
  for (std::size_t b : {1, 2, 4, 8})
    add(fmt::format("mem_scale_batch_{}", b), "memory", Kind::Forward, "tiny", b, 32);
  for (std::size_t s : {8, 16, 32, 64})
    add(fmt::format("mem_scale_seq_{}", s), "memory", Kind::Forward, "tiny", 2, s);
  add("kernel_matmul", "compiler", Kind::Matmul, "tiny", 0, 0, 1, 64);
  add("kernel_softmax", "compiler", Kind::Softmax, "tiny", 0, 0, 1, 1000);
  add("kernel_rmsnorm", "compiler", Kind::RmsNorm, "tiny", 0, 0, 1, 2 * 32 * 64);
  add("dispatch_warm", "dispatch", Kind::Forward, "tiny", 2, 32);
  add("dispatch_cold", "dispatch", Kind::Cold, "tiny", 1, 8);
  for (std::size_t t : {1, 2, 4})
    add(fmt::format("parallel_T{}", t), "parallel", Kind::ParallelForward, "tiny", 2, 32, t);
  for (std::size_t t : {1, 2, 4})
    add(fmt::format("parallel_train_T{}", t), "parallel", Kind::ParallelTrain, "tiny", 2, 8, t);
  add("scale_forward_256", "scale", Kind::Forward, "small", 2, 32);
  add("scale_train_256", "scale", Kind::Train, "small", 2, 8);
  const std::vector<Scenario> ref = out;
  auto find = [&](const std::string& id) {
    for (const auto& s : ref)
      if (s.id == id) return s;
    throw std::logic_error("no scenario " + id);
  };
  auto variant = [&](const std::string& base, const std::string& axis, PolicyDesc p) {
    Scenario sc = find(base);
    sc.axis = axis;
    sc.policy = std::move(p);
    sc.id = base + "@" + sc.policy.name();
    if (sc.policy.backend == "none") sc.id = base + "@" + sc.policy.scalar + "/" + sc.policy.layout;
    out.push_back(sc);
  };
  const auto backends = available_backends();
  // Row-major, static only: backend::Auto's fixed targets outside Available (our Highway gemm).
  std::vector<std::string> extra_fixed;
#ifdef ROSETTA_HAS_HWY
  extra_fixed.emplace_back(backend::HwyGemm::name);
#endif
  // The C++ grid: backend x layout x scalar x dispatch. Each base is followed by its
  // measured-routing variants (backend::Auto, axis cpp_auto), so they run close in time to
  // the fixed backends they are compared with.
  for (const char* base : {"dispatch_warm", "mem_train_step"}) {
    for (const auto& b : backends)
      for (const char* l : {"row", "col"})
        for (const char* s : {"float", "double"})
          for (const char* d : {"static", "virtual"}) variant(base, "cpp_grid", {s, l, b, d});
    for (const char* s : {"float", "double"}) {
      for (const auto& b : extra_fixed) variant(base, "cpp_auto", {s, "row", b, "static"});
      variant(base, "cpp_auto", {s, "row", "auto", "static"});
    }
  }
  // Measured routing on the small preset, with every fixed backend beside it.
  for (const char* base : {"scale_forward_256", "scale_train_256"})
    for (const char* s : {"float", "double"}) {
      for (const auto& b : backends) variant(base, "cpp_auto", {s, "row", b, "static"});
      for (const auto& b : extra_fixed) variant(base, "cpp_auto", {s, "row", b, "static"});
      variant(base, "cpp_auto", {s, "row", "auto", "static"});
    }
  // Batch and sequence scaling per backend (float/row/static).
  for (const auto& b : backends)
    for (const char* base :
         {"mem_scale_batch_1", "mem_scale_batch_2", "mem_scale_batch_4", "mem_scale_batch_8",
          "mem_scale_seq_8", "mem_scale_seq_16", "mem_scale_seq_32", "mem_scale_seq_64"})
      variant(base, "cpp_grid", {"float", "row", b, "static"});
  // Kernels: the matmul per backend; softmax and RMSNorm do not use a backend.
  for (const char* l : {"row", "col"})
    for (const char* s : {"float", "double"}) {
      for (const auto& b : backends) variant("kernel_matmul", "cpp_kernels", {s, l, b, "static"});
      if (std::string_view(l) == "row") {
        for (const auto& b : extra_fixed)
          variant("kernel_matmul", "cpp_kernels", {s, l, b, "static"});
        variant("kernel_matmul", "cpp_kernels", {s, l, "auto", "static"});
      }
      variant("kernel_softmax", "cpp_kernels", {s, l, "none", "static"});
      variant("kernel_rmsnorm", "cpp_kernels", {s, l, "none", "static"});
    }
  return out;
}

// ---- child side: run one scenario, print one JSON object --------------------------------------
json opt_json(const std::optional<std::int64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

/// baseline: VmRSS before the scenario built anything (nullopt if the kernel has none).
json measured_to_json(const Measured& m, const std::optional<std::int64_t>& baseline) {
  json j;
  j["warmup_timings_ns"] = m.warm;
  j["timings_ns"] = m.timed;
  j["cpu_times_ns"] = m.cpu;
  j["alloc_bytes"] = m.alloc_bytes;
  j["alloc_count"] = m.alloc_count;
  j["peak_rss_bytes"] = m.peak_rss ? *m.peak_rss : peak_rss_bytes();
  j["rss_anon_bytes"] = opt_json(m.rss.anon);
  j["rss_file_bytes"] = opt_json(m.rss.file);
  j["baseline_rss_bytes"] = opt_json(baseline);
  j["nan_count"] = m.health.nan;
  j["inf_count"] = m.health.inf;
  j["max_abs_output"] = m.health.max_abs;
  j["loss"] = m.loss ? json(*m.loss) : json(nullptr);
  j["flops"] = m.flops;
  j["tokens_per_iter"] = m.tokens;
  j["inner_reps"] = m.inner_reps;
  if (!m.route_table.is_null()) j["route_table"] = m.route_table;
  if (!m.paired.is_null()) j["paired"] = m.paired;
  return j;
}

int run_one(const std::string& id, const RunOpts& o) {
  // First, before the scenario list or the scenario's state exist: what the process image
  // itself (binary, shared libraries, runtime start-up) occupies.
  const auto baseline = proc_status_bytes("VmRSS");
  // BLAS threads are pinned by the environment the parent set (OPENBLAS/BLIS/OMP_NUM_THREADS=1);
  // not by set_blas_threads(), which would load OpenBLAS into every child and inflate its RSS.
  for (const auto& sc : all_scenarios())
    if (sc.id == id) {
      std::cout << measured_to_json(measure(sc, o), baseline).dump() << "\n";
      return 0;
    }
  std::cerr << "rosetta-bench: unknown scenario id '" << id << "' (see --list)\n";
  return 2;
}

// ---- parent side ------------------------------------------------------------------------------
json library_versions() {
  json v;
#ifdef ROSETTA_HAS_EIGEN
  v["eigen"] =
      fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
#endif
#ifdef ROSETTA_HAS_BLIS
  v["blis"] = backend::Blis::version();
#endif
#ifdef ROSETTA_HAS_CBLAS
  v["openblas"] = backend::Cblas::version();
  v["openblas_library"] = backend::Cblas::library();
#endif
  return v;
}

/// Large single-threaded sgemm with the fastest backend compiled in, in GFLOPS (best of 3).
double sgemm_gflops(std::size_t n) {
  double best = 0;
  visit_policy("float", "row", default_backend(), [&]<class P>() {
    using B = typename P::backend;
    Tensor<float, RowMajor> a({n, n}), b({n, n}), c({n, n});
    for (auto& x : a.flat()) x = 0.5f;
    for (auto& x : b.flat()) x = 0.25f;
    auto A = MatrixView<const float, RowMajor>(a.matrix());
    auto Bm = MatrixView<const float, RowMajor>(b.matrix());
    B::gemm(Op::N, Op::N, 1.0f, A, Bm, 0.0f, c.matrix());
    for (int r = 0; r < 3; ++r) {
      const auto t0 = wall_ns();
      B::gemm(Op::N, Op::N, 1.0f, A, Bm, 0.0f, c.matrix());
      best = std::max(best,
                      2.0 * static_cast<double>(n * n * n) / static_cast<double>(wall_ns() - t0));
    }
  });
  return best;
}

std::string human(double ns) {
  if (ns >= 1e9) return fmt::format("{:.3f} s", ns / 1e9);
  if (ns >= 1e6) return fmt::format("{:.3f} ms", ns / 1e6);
  if (ns >= 1e3) return fmt::format("{:.3f} us", ns / 1e3);
  return fmt::format("{:.0f} ns", ns);
}

json scenario_json(const Scenario& sc, const json& r) {
  json j;
  j["id"] = sc.id;
  j["base_id"] = sc.base_id;
  j["axis"] = sc.axis;
  j["params"] = sc.params();
  j["params"]["inner_reps"] = r.value("inner_reps", 1);
  j["policy"] = {{"scalar", sc.policy.scalar},
                 {"layout", sc.policy.layout},
                 {"backend", sc.policy.backend},
                 {"dispatch", sc.policy.dispatch},
                 {"name", sc.policy.name()}};
  if (r.contains("route_table")) j["policy"]["route_table"] = r["route_table"];
  if (r.contains("paired")) j["paired"] = r["paired"];
  const std::vector<std::int64_t> t = r["timings_ns"];
  j["warmup_timings_ns"] = r["warmup_timings_ns"];
  j["timings_ns"] = t;
  j.update(summarize(t));
  j["cpu_times_ns"] = r["cpu_times_ns"];
  j["cpu_median_ns"] =
      std::llround(quantile(r["cpu_times_ns"].get<std::vector<std::int64_t>>(), 0.5));
  j["memory"] = {{"peak_rss_bytes", r["peak_rss_bytes"]},
                 {"rss_anon_bytes", r.value("rss_anon_bytes", json(nullptr))},
                 {"rss_file_bytes", r.value("rss_file_bytes", json(nullptr))},
                 {"baseline_rss_bytes", r.value("baseline_rss_bytes", json(nullptr))},
                 {"alloc_bytes", r["alloc_bytes"]},
                 {"alloc_count", r["alloc_count"]}};
  j["gc"] = {{"collections", 0}, {"pause_ns", 0}};
  j["numerical"] = {{"nan_count", r["nan_count"]},
                    {"inf_count", r["inf_count"]},
                    {"max_abs_output", r["max_abs_output"]},
                    {"loss", r["loss"]}};
  j["flops"] = r["flops"];
  j["tokens_per_iter"] = r["tokens_per_iter"];
  const double med = std::max(1.0, static_cast<double>(j["median_ns"].get<std::int64_t>()));
  const double tokens = r["tokens_per_iter"].get<double>();
  j["throughput_tokens_per_sec"] = tokens > 0 ? json(tokens / med * 1e9) : json(nullptr);
  j["throughput_inferences_per_sec"] = 1e9 / med;
  j["derived"] = {{"alloc_rate_bytes_per_sec", r["alloc_bytes"].get<double>() / med * 1e9},
                  {"gflops", nullptr},
                  {"peak_fraction", nullptr},
                  {"speedup", nullptr},
                  {"cold_warm_ratio", nullptr}};
  return j;
}

/// Fills the derived values that need other scenarios or the machine peak.
void derive(json& scenarios, double peak, unsigned cores) {
  std::map<std::string, const json*> by_id;
  for (const auto& s : scenarios) by_id[s["id"]] = &s;
  auto median_of = [&](const std::string& id) -> std::optional<double> {
    auto it = by_id.find(id);
    if (it == by_id.end() || !it->second->contains("median_ns")) return std::nullopt;
    return (*it->second)["median_ns"].get<double>();
  };
  for (auto& s : scenarios) {
    if (!s.contains("median_ns")) continue;
    auto& d = s["derived"];
    const double med = std::max(1.0, s["median_ns"].get<double>());
    const double flops = s["flops"].get<double>();
    const auto threads = s["params"]["threads"].get<unsigned>();
    if (flops > 0) {
      d["gflops"] = flops / med;
      d["peak_fraction"] = flops / med / (peak * std::min(threads, cores));
    }
    const std::string base = s["base_id"];
    const std::string suffix = s["id"].get<std::string>().substr(base.size());
    for (const char* fam : {"parallel_T", "parallel_train_T"})
      if (base.rfind(fam, 0) == 0 &&
          std::isdigit(static_cast<unsigned char>(base[std::strlen(fam)]))) {
        if (auto t1 = median_of(std::string(fam) + "1" + suffix))
          d["speedup"] = threads * *t1 / med;
      }
    if (base == "dispatch_cold")
      if (auto warm = median_of("dispatch_warm" + suffix)) d["cold_warm_ratio"] = med / *warm;
  }
}

/// Runs rosetta-rss-probe (next to this executable, if built) for `forward` and `train`:
/// dispatch_warm and mem_train_step in a program that holds one policy only. Fills
/// metadata.minimal_program_rss = {forward, train} and a note, or the note why not.
void probe_minimal_program(json& md) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path probe = fs::read_symlink("/proc/self/exe", ec).parent_path() / "rosetta-rss-probe";
  const std::string what =
      "rosetta-rss-probe: a separate executable linked with one backend only (HwyGemm when "
      "Highway is found, else the default backend; one "
      "policy, static dispatch; no scenario table, virtual twin, other backends, CLI11 or fmt) "
      "that runs dispatch_warm (forward, tiny, batch 2, seq 32) or mem_train_step (Trainer "
      "step, tiny, batch 2, seq 8) with rosetta-bench's seed and token batch, `iterations` "
      "times; peak_rss_bytes is its VmHWM, rss_anon_bytes/rss_file_bytes RssAnon/RssFile "
      "after the last iteration (model alive), baseline_rss_bytes VmRSS before the model is "
      "built, binary_bytes the size of the probe executable";
  if (ec || !fs::is_regular_file(probe, ec) || ::access(probe.c_str(), X_OK) != 0) {
    md["minimal_program_rss"] = nullptr;
    md["minimal_program_rss_note"] = "skipped: no executable " + probe.string() +
                                     " (build the rosetta-rss-probe target); " + what;
    std::cerr << "minimal program: " << probe.string() << " not found, skipped\n";
    return;
  }
  json res = json::object();
  std::string extra;
  for (const char* mode : {"forward", "train"}) {
    try {
      int status = 0;
      const auto text = run_child({"rosetta-rss-probe", mode}, status, probe.string());
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        res[mode] = {
            {"error", fmt::format("rosetta-rss-probe {} failed (status {})", mode, status)}};
      else
        res[mode] = json::parse(text);
    } catch (const std::exception& e) {
      res[mode] = {{"error", std::string(e.what())}};
    }
    const auto& r = res[mode];
    if (r.contains("error")) {
      std::cerr << fmt::format("minimal program {:<7}: {}\n", mode, r["error"].get<std::string>());
      continue;
    }
    if (r.value("policy", "") != md.value("default_policy", ""))
      extra = fmt::format("; note: the probe ran {}, the reference scenarios {}",
                          r.value("policy", "?"), md.value("default_policy", "?"));
    auto mb = [&](const char* k) {
      return r[k].is_number() ? fmt::format("{:.1f}", r[k].get<double>() / 1e6)
                              : std::string("n/a");
    };
    std::cerr << fmt::format(
        "minimal program {:<7}: peak rss {} MB (anon {} MB, file {} MB, baseline {} MB), "
        "binary {} MB\n",
        mode, mb("peak_rss_bytes"), mb("rss_anon_bytes"), mb("rss_file_bytes"),
        mb("baseline_rss_bytes"), mb("binary_bytes"));
  }
  md["minimal_program_rss"] = std::move(res);
  md["minimal_program_rss_note"] = what + extra;
}

int run_suite(const RunOpts& o, const std::string& filter, const std::string& json_path, bool quick,
              bool in_process) {
  const auto t_start = wall_ns();
  std::vector<Scenario> list;
  const std::regex re(filter.empty() ? ".*" : filter);
  for (const auto& sc : all_scenarios())
    if (std::regex_search(sc.id, re)) list.push_back(sc);
  if (list.empty()) {
    std::cerr << "rosetta-bench: no scenario id matches --filter '" << filter << "' (see --list)\n";
    return 2;
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::cerr << fmt::format(
      "rosetta-bench: {} scenarios, {} warm-up + at least {} trials each (and {} s of them, at "
      "most {}), seed {}\n",
      list.size(), o.warmup, o.trials, o.min_time_s, max_trials(o), kSeed);
  std::cerr << "measuring this machine's peak (FMA probe, large sgemm) ... " << std::flush;
  const double fma = fma_peak_gflops();
  const double fma_all = fma_peak_gflops_threads(cores);
  const std::size_t sg_n = quick ? 512 : 1024;
  const double sg = sgemm_gflops(sg_n);
  std::cerr << fmt::format(
      "FMA {:.1f} GFLOPS (all {} cores at once: {:.1f}, {:.2f}x), sgemm {:.1f} GFLOPS\n", fma,
      cores, fma_all, fma_all / fma, sg);

  json doc;
  doc["schema_version"] = 1;
  auto& md = doc["metadata"];
  md["language"] = "cpp";
  md["implementation"] = "rosetta";
  md["timestamp"] = utc_timestamp();
  md["git_rev"] = command_output("git -C '" ROSETTA_SOURCE_DIR "' rev-parse HEAD 2>/dev/null");
  md["compiler"] = {{"id", compiler_id()},
                    {"version", __VERSION__},
                    {"flags", ROSETTA_BENCH_FLAGS},
                    {"build_type", ROSETTA_BENCH_BUILD_TYPE}};
  md["cpu"] = {{"model", cpuinfo_field("model name")},
               {"logical_cores", cores},
               {"avx512", cpuinfo_field("flags").find("avx512f") != std::string::npos}};
  md["os"] = os_string();
  md["libraries"] = library_versions();
  md["threads"] = {{"blas_threads", 1},
                   {"omp_num_threads", std::getenv("OMP_NUM_THREADS")},
                   {"openblas_num_threads", std::getenv("OPENBLAS_NUM_THREADS")},
                   {"blis_num_threads", std::getenv("BLIS_NUM_THREADS")},
                   {"pinning", "parallel scenarios: worker i pinned to logical core i mod cores"}};
  md["seed"] = kSeed;
  md["warmup"] = o.warmup;
  md["trials"] = o.trials;
  md["min_time_s"] = o.min_time_s;
  md["max_trials"] = max_trials(o);
  md["quick"] = quick;
  md["default_policy"] = std::string("float/row/") + kReferenceBackend + "/static";
  // backend "auto" scenarios: the routing table their children load (each child also
  // reports the one it used, in policy.route_table).
  md["auto_table"] = route_table_json();
  md["peak"] = {{"fma_gflops", fma},
                {"fma_gflops_all_cores", fma_all},
                {"cores", cores},
                {"sgemm_gflops", sg},
                {"sgemm_n", sg_n},
                {"method",
                 "fma_gflops: 16 independent 16-lane FP32 FMA chains on one core, best of 5; "
                 "fma_gflops_all_cores: the same probe on every logical core at once (one "
                 "pinned thread each, rounds started together), summed, best of 5 rounds; "
                 "sgemm_gflops: single-threaded " +
                     default_backend() + " sgemm n^3"}};
  md["gc_note"] = "C++ has no garbage collector: gc fields are always 0";
  md["flop_counting"] =
      "2*m*n*k of every gemm the scenario executes, counted by running one extra untimed "
      "iteration of the bit-identical virtual twin over a counting gemm table (routed tokens "
      "only; attention counts the full S x S products it computes); elementwise work not counted";
  md["alloc_counting"] = "bytes and calls of global operator new per timed iteration";
  probe_minimal_program(md);

  auto& out = doc["scenarios"];
  out = json::array();
  int failures = 0;
  std::size_t k = 0;
  for (const auto& sc : list) {
    ++k;
    json r;
    std::string err;
    try {
      if (in_process) {
        const auto baseline = proc_status_bytes("VmRSS");
        r = measured_to_json(measure(sc, o), baseline);
      } else {
        int status = 0;
        const auto text = run_child(
            {"rosetta-bench", "--run-one", sc.id, "--warmup", std::to_string(o.warmup), "--trials",
             std::to_string(o.trials), "--min-time", fmt::format("{}", o.min_time_s)},
            status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
          err = fmt::format("child process failed (status {})", status);
        else
          r = json::parse(text);
      }
    } catch (const std::exception& e) {
      err = e.what();
    }
    const double elapsed = static_cast<double>(wall_ns() - t_start) / 1e9;
    if (!err.empty()) {
      ++failures;
      std::cerr << fmt::format("[{:3}/{}] {:<44} FAILED: {}\n", k, list.size(), sc.id, err);
      out.push_back({{"id", sc.id}, {"base_id", sc.base_id}, {"axis", sc.axis}, {"error", err}});
      continue;
    }
    json s = scenario_json(sc, r);
    const double med = s["median_ns"].get<double>();
    const double flops = s["flops"].get<double>();
    std::cerr << fmt::format(
        "[{:3}/{}] {:<44} median {:>11}  IQR {:>10}  {}rss {:5.1f} MB  ({:.0f} s)\n", k,
        list.size(), sc.id, human(med), human(s["iqr_ns"].get<double>()),
        flops > 0 ? fmt::format("{:6.1f} GFLOPS  ", flops / med) : std::string(),
        s["memory"]["peak_rss_bytes"].get<double>() / 1e6, elapsed);
    out.push_back(std::move(s));
  }
  derive(out, fma, cores);
  std::filesystem::path p(json_path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p);
  if (!f) {
    std::cerr << "rosetta-bench: cannot write " << json_path << "\n";
    return 1;
  }
  f << doc.dump(1) << "\n";
  std::cerr << fmt::format("rosetta-bench: wrote {} ({} scenarios, {} failed) in {:.0f} s\n",
                           json_path, out.size(), failures,
                           static_cast<double>(wall_ns() - t_start) / 1e9);
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace rosetta::bench

int main(int argc, char** argv) {
  using namespace rosetta::bench;
  // Pin every BLAS library to one thread before any of them initialises (children inherit).
  for (const char* v : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS"})
    ::setenv(v, "1", 1);
  CLI::App app{"rosetta-bench: the rosetta benchmark suite (writes benchmarks/cpp.json)"};
  bool quick = false, list = false, in_process = false;
  std::string filter, json_path = "benchmarks/cpp.json", run_one_id;
  RunOpts o;
  app.add_flag("--quick", quick, "1 warm-up + 3 trials per scenario (and no --min-time)");
  app.add_option("--filter", filter, "only scenario ids matching this regular expression");
  app.add_option("--json", json_path, "where to write the results")->capture_default_str();
  app.add_flag("--list", list, "list the scenario ids and exit");
  app.add_flag("--in-process", in_process, "run scenarios in this process (no peak RSS isolation)");
  auto* warm = app.add_option("--warmup", o.warmup, "warm-up trials")->check(CLI::Range(0, 1000));
  auto* trials =
      app.add_option("--trials", o.trials, "timed trials (at least)")->check(CLI::Range(1, 100000));
  auto* min_time = app.add_option("--min-time", o.min_time_s,
                                  "seconds of timed trials per scenario: more trials (up to 1000, "
                                  "or --trials) while they take less; 0: exactly --trials")
                       ->check(CLI::Range(0.0, 60.0))
                       ->capture_default_str();
  app.add_option("--run-one", run_one_id, "internal: run one scenario, print its JSON")->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    if (quick) {
      if (warm->count() == 0) o.warmup = 1;
      if (trials->count() == 0) o.trials = 3;
      if (min_time->count() == 0) o.min_time_s = 0;
    }
    if (!run_one_id.empty()) return run_one(run_one_id, o);
    if (list) {
      for (const auto& sc : all_scenarios())
        std::cout << sc.id << "\t" << sc.axis << "\t" << sc.policy.name() << "\n";
      return 0;
    }
    return run_suite(o, filter, json_path, quick, in_process);
  } catch (const std::exception& e) {
    std::cerr << "rosetta-bench: " << e.what() << "\n";
    return 1;
  }
}
