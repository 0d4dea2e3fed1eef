// Google Benchmark micro-kernels over backend x layout x scalar: the gemm of kernel_matmul
// (n x n x n into a preallocated output), the row softmax of kernel_softmax and the RMSNorm
// of kernel_rmsnorm, and the AdamW update with clipping (separate pass vs fused). One
// templated definition each, registered for every policy compiled in.
//   build/benchmark/bench_kernels --benchmark_filter=gemm
#include <benchmark/benchmark.h>

#include <string>
#include <tuple>
#include <vector>

#include "rosetta/backend/all.hpp"
#include "rosetta/core/rng.hpp"
#include "rosetta/core/tensor.hpp"
#include "rosetta/kernels/rmsnorm.hpp"
#include "rosetta/kernels/softmax.hpp"
#include "rosetta/train/optim.hpp"

namespace {
using namespace rosetta;

template <class T, class L>
void fill(Tensor<T, L>& t, std::uint64_t stream) {
  Rng rng(42, stream);
  for (auto& x : t.flat()) x = static_cast<T>(rng.normal());
}

template <class P>
void BM_gemm(benchmark::State& st) {
  using T = typename P::scalar;
  using L = typename P::layout;
  const auto n = static_cast<std::size_t>(st.range(0));
  Tensor<T, L> a({n, n}), b({n, n}), c({n, n});
  fill(a, 1);
  fill(b, 2);
  const MatrixView<const T, L> A(a.matrix()), B(b.matrix());
  auto C = c.matrix();
  for (auto _ : st) {
    P::backend::gemm(Op::N, Op::N, T(1), A, B, T(0), C);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOPS"] = benchmark::Counter(2.0 * static_cast<double>(n * n * n),
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}

template <class P>
void BM_softmax(benchmark::State& st) {
  using T = typename P::scalar;
  using L = typename P::layout;
  const auto n = static_cast<std::size_t>(st.range(0));
  Tensor<T, L> x({1, n}), y({1, n});
  fill(x, 3);
  const MatrixView<const T, L> X(x.matrix());
  auto Y = y.matrix();
  for (auto _ : st) {
    kernels::softmax_forward(Y, X);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}

template <class P>
void BM_rmsnorm(benchmark::State& st) {
  using T = typename P::scalar;
  using L = typename P::layout;
  const std::size_t rows = 2 * 32, cols = 64;
  Tensor<T, L> x({rows, cols}), y({rows, cols}), g({cols}), rstd({rows});
  fill(x, 4);
  for (auto& v : g.flat()) v = T(1);
  const MatrixView<const T, L> X(x.matrix());
  auto Y = y.matrix();
  for (auto _ : st) {
    kernels::rmsnorm_forward(Y, rstd.flat(), X, std::span<const T>(g.flat()), T(1e-5));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}

// The optimizer update over the tiny preset's 542,528 parameters with clipping active:
// range(0) == 0 clips in its own pass first (clip_by_global_norm, then adamw_step),
// range(0) == 1 applies the clipping factor inside the AdamW pass (what Trainer does).
template <class P>
void BM_adamw_clip(benchmark::State& st) {
  using T = typename P::scalar;
  const std::size_t n = 542'528;
  std::vector<T> p(n), g(n), m(n), v(n);
  Rng rng(42, 5);
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = static_cast<T>(rng.normal());
    g[i] = static_cast<T>(rng.normal());
  }
  const TrainConfig tc;
  const double f = 0.5;  // a clipping factor != 1
  std::size_t t = 0;
  for (auto _ : st) {
    ++t;
    if (st.range(0) == 0) {
      for (T& x : g) x = static_cast<T>(x * f);
      adamw_step(std::span<T>(p), std::span<const T>(g), std::span<T>(m), std::span<T>(v), tc, 1e-4,
                 t);
    } else {
      adamw_step(std::span<T>(p), std::span<const T>(g), std::span<T>(m), std::span<T>(v), tc, 1e-4,
                 t, f);
    }
    benchmark::DoNotOptimize(p.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) *
                       static_cast<std::int64_t>(n * sizeof(T)) * (st.range(0) == 0 ? 9 : 7));
}

template <class P>
void register_policy() {
  const std::string name = P::name();
  benchmark::RegisterBenchmark(("gemm/" + name).c_str(), BM_gemm<P>)->Arg(64)->Arg(256);
  // softmax and RMSNorm use no gemm: once per scalar x layout (registered with Naive).
  if constexpr (std::is_same_v<typename P::backend, backend::Naive>) {
    benchmark::RegisterBenchmark(("softmax/" + name).c_str(), BM_softmax<P>)->Arg(1000);
    benchmark::RegisterBenchmark(("rmsnorm/" + name).c_str(), BM_rmsnorm<P>);
    if constexpr (std::is_same_v<typename P::layout, RowMajor>)
      benchmark::RegisterBenchmark(
          ("adamw_clip/" +
           std::string(std::is_same_v<typename P::scalar, float> ? "float" : "double"))
              .c_str(),
          BM_adamw_clip<P>)
          ->ArgName("fused")
          ->Arg(0)
          ->Arg(1);
  }
}

template <class B>
void register_backend() {
  register_policy<Policy<float, RowMajor, B>>();
  register_policy<Policy<float, ColMajor, B>>();
  register_policy<Policy<double, RowMajor, B>>();
  register_policy<Policy<double, ColMajor, B>>();
}

}  // namespace

int main(int argc, char** argv) {
  rosetta::backend::set_blas_threads(1);
  std::apply([](auto... b) { (register_backend<decltype(b)>(), ...); },
             rosetta::backend::Available{});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
