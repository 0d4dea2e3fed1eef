// The atlas's kernel descriptors: for each kernel its domain, the shape a size n maps to, the
// buffer roles and input data, bytes and flops per call, what the tests compare with which
// tolerance, and the naive (reference) implementation. Other backends only add run functions.
//
// Conventions
//   bytes: the traffic of the reference algorithm over whole arrays: every array read once
//          counts its size, every array written once its size, in-place arrays twice; no
//          write-allocate traffic (as STREAM counts). A kernel that needs two passes over a
//          large array (the norm before the clip, the max before int8 rounding) counts both.
//          Re-reads of one row that stays in cache (softmax, norms) are not counted.
//   flops: one per add, multiply, compare (max/min), abs, divide, sqrt and transcendental
//          (exp, log, tanh, sin, cos count 1 each); a fused multiply-add counts 2.
//   shape rules: vector kernels run on n elements. Row kernels split n into rows of a fixed
//          width (softmax/losses: 1000 = the tiny model's vocabulary; norms: 1024). Matrix
//          kernels (gemv, outer product, transpose) use a sqrt(n) x sqrt(n) matrix. The cubic
//          kernels use s = floor(sqrt(n) / 4), so the 16M size is a 1024 x 1024 gemm
//          (2.1 GFLOP) and a 1024-token attention head, and everything stays bounded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rosetta/atlas/core.hpp"
#include "rosetta/atlas/naive.hpp"

namespace rosetta::atlas {

namespace shapes {
/// n elements in one vector.
inline Shape vec(std::size_t n) {
  Shape s;
  s.n = n;
  s.len = std::max<std::size_t>(n, 1);
  s.cols = s.len;
  s.reduce = s.len;
  return s;
}
/// floor(n / w) rows of width w (one shorter row if n < w).
inline Shape rows(std::size_t n, std::size_t w) {
  Shape s;
  s.n = n;
  s.cols = std::clamp<std::size_t>(n, 1, w);
  s.rows = std::max<std::size_t>(1, n / s.cols);
  s.len = s.rows * s.cols;
  s.reduce = s.cols;
  return s;
}
inline Shape rows1000(std::size_t n) {
  return rows(n, 1000);
}
inline Shape rows1024(std::size_t n) {
  return rows(n, 1024);
}
/// r x c with r = floor(sqrt(n)), c = floor(n / r): square when n is a square.
inline Shape matrix(std::size_t n) {
  Shape s;
  s.n = n;
  s.rows = std::max<std::size_t>(1, isqrt(n));
  s.cols = std::max<std::size_t>(1, n / s.rows);
  s.len = s.rows * s.cols;
  s.reduce = s.cols;
  return s;
}
/// r x r with r = floor(sqrt(n)).
inline Shape square(std::size_t n) {
  Shape s = matrix(n);
  s.cols = s.rows;
  s.len = s.rows * s.cols;
  s.reduce = s.cols;
  return s;
}
/// Cubic kernels: s = max(1, floor(sqrt(n) / 4)); gemm s x s x s.
inline std::size_t cubic_side(std::size_t n) {
  return std::max<std::size_t>(1, isqrt(n) / 4);
}
inline Shape gemm(std::size_t n) {
  Shape s;
  s.n = n;
  s.rows = s.inner = s.cols = cubic_side(n);
  s.len = s.rows * s.cols;
  s.reduce = s.inner;
  return s;
}
/// Attention: sequence S = cubic_side(n), head dimension 64.
inline Shape attention(std::size_t n) {
  Shape s;
  s.n = n;
  s.rows = cubic_side(n);
  s.cols = kHeadDim;
  s.len = s.rows * s.cols;
  s.reduce = std::max(s.rows, s.cols);
  return s;
}
/// Batched gemm of 16 x 16 matrices, batch = max(1, n / 256) (A holds ~n elements).
inline Shape batched(std::size_t n) {
  Shape s;
  s.n = n;
  s.rows = s.cols = s.inner = 16;
  s.batch = std::max<std::size_t>(1, n / 256);
  s.len = s.batch * 256;
  s.reduce = 16;
  return s;
}
/// max(1, n / 4) structs of 4 floats.
inline Shape structs(std::size_t n) {
  Shape s;
  s.n = n;
  s.rows = std::max<std::size_t>(1, n / 4);
  s.cols = 4;
  s.len = 4 * s.rows;
  return s;
}
}  // namespace shapes

namespace detail {

inline constexpr double kF = 4.0;  // bytes per float

inline Tolerance exact(std::string_view why) {
  return {0, 0, false, 0, why};
}
inline Tolerance close(double rel, double abs, std::string_view why) {
  return {rel, abs, false, 0, why};
}
inline Tolerance summed(double rel, double abs, std::string_view why) {
  return {rel, abs, true, 0, why};
}

// Reasons, one per kernel family (the test prints them on failure).
inline constexpr std::string_view kWhyExact =
    "the same IEEE operations per element in every backend: bit-identical";
inline constexpr std::string_view kWhySum =
    "a sum of r float terms in another order (partial sums, pairwise, blocked): the "
    "difference grows like sqrt(r) ulp; inputs are positive so |ref| is the scale";
inline constexpr std::string_view kWhyFma =
    "a*b+c rounded once (contracted FMA) or twice: <= 1 ulp of |a*b|+|c| (<= 2 here)";
inline constexpr std::string_view kWhyUlp =
    "libm vs SIMD polynomial exp/log/tanh: each within a few ulp, at most 3 composed "
    "(2e-5 relative = ~170 ulp of margin); absolute floor for results near 0";
inline constexpr std::string_view kWhyRows =
    "per row: exp within a few ulp plus a sum of up to 1024 terms in another order";
inline constexpr std::string_view kWhyAttention =
    "dot products of 64 terms, exp within a few ulp, weighted sums of up to S values of "
    "V in [-1, 1], all in another order";
inline constexpr std::string_view kWhyAdam =
    "sqrt and division are correctly rounded everywhere; only FMA contraction differs";
inline constexpr std::string_view kWhyGemm =
    "sums of k products in another order (blocked, vectorised): ~sqrt(k) ulp of the "
    "partial sums, inputs in [-1, 1]";
inline constexpr std::string_view kWhyNormal =
    "the same uniform stream (bit-identical); log/sqrt/cos/sin from libm vs SIMD "
    "polynomials: a few ulp of values <= 6 in magnitude";

/// Kernel with everything but the non-naive backends.
inline Kernel def(std::string_view name, std::string_view domain, std::string_view summary,
                  std::string_view shape_rule, Shape (*shape)(std::size_t),
                  void (*setup)(Buffers&, std::uint64_t), double (*bytes)(const Shape&),
                  double (*flops)(const Shape&), Bound bound, std::uint32_t outputs, Tolerance tol,
                  RunFn naive_fn) {
  Kernel k;
  k.name = name;
  k.domain = domain;
  k.summary = summary;
  k.shape_rule = shape_rule;
  k.shape = shape;
  k.setup = setup;
  k.bytes = bytes;
  k.flops = flops;
  k.bound = bound;
  k.outputs = outputs;
  k.tol = tol;
  k.run[index(Backend::naive)] = naive_fn;
  return k;
}

// ---- setups (b.shape is set; inputs from the seed; outputs zeroed) ---------------------------
inline void zeros(AVec<float>& v, std::size_t n) {
  v.assign(n, 0.0f);
}

/// a = inputs in [lo, hi) (len), b = output (len).
inline void unary(Buffers& b, std::uint64_t seed, float lo, float hi) {
  Filler f(seed);
  f.fill(b.a, b.shape.len, lo, hi);
  zeros(b.b, b.shape.len);
}
/// a, b inputs in [lo, hi), c = output.
inline void binary(Buffers& b, std::uint64_t seed, float lo, float hi) {
  Filler f(seed);
  f.fill(b.a, b.shape.len, lo, hi);
  f.fill(b.b, b.shape.len, lo, hi);
  zeros(b.c, b.shape.len);
}
inline void reduction(Buffers& b, std::uint64_t seed, float lo, float hi) {
  Filler f(seed);
  f.fill(b.a, b.shape.len, lo, hi);
}

/// Q a, K b, V c in [-1, 1), O d zeroed, p[0] = 1/sqrt(64).
inline void attention(Buffers& b, std::uint64_t seed) {
  Filler f(seed);
  f.fill(b.a, b.shape.len, -1, 1);
  f.fill(b.b, b.shape.len, -1, 1);
  f.fill(b.c, b.shape.len, -1, 1);
  zeros(b.d, b.shape.len);
  b.p[0] = 1.0f / 8.0f;
}

inline double pairs(const Shape& s) {  // causal (query, key) pairs
  return static_cast<double>(s.rows) * static_cast<double>(s.rows + 1) / 2;
}
inline double len(const Shape& s) {
  return static_cast<double>(s.len);
}

}  // namespace detail

/// Adds every kernel of the atlas with its naive implementation.
inline void register_kernels(Registry& r) {
  using namespace detail;
  using B = Buffers;
  using S = const Shape&;
  constexpr auto M = Bound::memory;
  constexpr auto C = Bound::compute;
  const auto vec = &shapes::vec;
  constexpr std::string_view kVec = "n elements";

  // ---- reductions: a[n] -> s[0] -----------------------------------------------------------------
  auto red_bytes = [](S s) { return kF * len(s); };
  r.add(def(
      "sum", "reductions", "s = sum_i a_i", kVec, vec,
      [](B& b, std::uint64_t z) { reduction(b, z, 0, 1); }, red_bytes, [](S s) { return len(s); },
      M, kOutS0, summed(3e-7, 0, kWhySum), naive::sum));
  r.add(def(
      "max", "reductions", "s = max_i a_i", kVec, vec,
      [](B& b, std::uint64_t z) { reduction(b, z, -1, 1); }, red_bytes, [](S s) { return len(s); },
      M, kOutS0, exact(kWhyExact), naive::max));
  r.add(def(
      "min", "reductions", "s = min_i a_i", kVec, vec,
      [](B& b, std::uint64_t z) { reduction(b, z, -1, 1); }, red_bytes, [](S s) { return len(s); },
      M, kOutS0, exact(kWhyExact), naive::min));
  r.add(def(
      "l2norm", "reductions", "s = sqrt(sum_i a_i^2)", kVec, vec,
      [](B& b, std::uint64_t z) { reduction(b, z, -1, 1); }, red_bytes,
      [](S s) { return 2 * len(s); }, M, kOutS0, summed(3e-7, 0, kWhySum), naive::l2norm));
  r.add(def(
      "absmax", "reductions", "s = max_i |a_i| (BLAS i?amax)", kVec, vec,
      [](B& b, std::uint64_t z) { reduction(b, z, -1, 1); }, red_bytes,
      [](S s) { return 2 * len(s); }, M, kOutS0, exact(kWhyExact), naive::absmax));
  r.add(def(
      "asum", "reductions", "s = sum_i |a_i| (BLAS ?asum)", kVec, vec,
      [](B& b, std::uint64_t z) { reduction(b, z, -1, 1); }, red_bytes,
      [](S s) { return 2 * len(s); }, M, kOutS0, summed(3e-7, 0, kWhySum), naive::asum));

  // ---- elementwise
  // ----------------------------------------------------------------------------------
  r.add(def(
      "add", "elementwise", "c = a + b", kVec, vec,
      [](B& b, std::uint64_t z) { binary(b, z, -1, 1); }, [](S s) { return 3 * kF * len(s); },
      [](S s) { return len(s); }, M, kOutC, exact(kWhyExact), naive::add));
  r.add(def(
      "mul", "elementwise", "c = a * b", kVec, vec,
      [](B& b, std::uint64_t z) { binary(b, z, -1, 1); }, [](S s) { return 3 * kF * len(s); },
      [](S s) { return len(s); }, M, kOutC, exact(kWhyExact), naive::mul));
  r.add(def(
      "fma", "elementwise", "d = a * b + c", kVec, vec,
      [](B& b, std::uint64_t z) {
        binary(b, z, -1, 1);
        Filler(z + 1).fill(b.c, b.shape.len, -1, 1);
        zeros(b.d, b.shape.len);
      },
      [](S s) { return 4 * kF * len(s); }, [](S s) { return 2 * len(s); }, M, kOutD,
      close(1e-6, 1e-6, kWhyFma), naive::fma));
  r.add(def(
      "clamp", "elementwise", "b = min(max(a, lo), hi), lo = -0.5, hi = 0.5", kVec, vec,
      [](B& b, std::uint64_t z) {
        unary(b, z, -1, 1);
        b.p[0] = -0.5f;
        b.p[1] = 0.5f;
      },
      [](S s) { return 2 * kF * len(s); }, [](S s) { return 2 * len(s); }, M, kOutB,
      exact(kWhyExact), naive::clamp));
  r.add(def(
      "abs", "elementwise", "b = |a|", kVec, vec, [](B& b, std::uint64_t z) { unary(b, z, -1, 1); },
      [](S s) { return 2 * kF * len(s); }, [](S s) { return len(s); }, M, kOutB, exact(kWhyExact),
      naive::abs));
  r.add(def(
      "axpy", "elementwise", "b += alpha * a, alpha = 0.5 (in place; BLAS ?axpy)", kVec, vec,
      [](B& b, std::uint64_t z) {
        unary(b, z, -1, 1);
        Filler(z + 1).fill(b.b, b.shape.len, -1, 1);
        b.p[0] = 0.5f;
      },
      [](S s) { return 3 * kF * len(s); }, [](S s) { return 2 * len(s); }, M, kOutB,
      close(1e-6, 1e-6, kWhyFma), naive::axpy));
  r.add(def(
      "scale", "elementwise", "a *= alpha, alpha = -1 (in place, stays bounded; BLAS ?scal)", kVec,
      vec,
      [](B& b, std::uint64_t z) {
        reduction(b, z, -1, 1);
        b.p[0] = -1.0f;
      },
      [](S s) { return 2 * kF * len(s); }, [](S s) { return len(s); }, M, kOutA, exact(kWhyExact),
      naive::scale));
  r.add(def(
      "copy", "elementwise", "b = a (BLAS ?copy)", kVec, vec,
      [](B& b, std::uint64_t z) { unary(b, z, -1, 1); }, [](S s) { return 2 * kF * len(s); },
      [](S) { return 0.0; }, M, kOutB, exact(kWhyExact), naive::copy));

  // ---- activations: b = f(a)
  // ----------------------------------------------------------------------
  auto act_bytes = [](S s) { return 2 * kF * len(s); };
  r.add(def(
      "exp", "activations", "b = exp(a), a in [-20, 20)", kVec, vec,
      [](B& b, std::uint64_t z) { unary(b, z, -20, 20); }, act_bytes, [](S s) { return len(s); }, M,
      kOutB, close(2e-5, 0, kWhyUlp), naive::exp));
  r.add(def(
      "log", "activations", "b = log(a), a in [1e-3, 100) (defined for a > 0)", kVec, vec,
      [](B& b, std::uint64_t z) { unary(b, z, 1e-3f, 100); }, act_bytes, [](S s) { return len(s); },
      M, kOutB, close(2e-5, 1e-6, kWhyUlp), naive::log));
  r.add(def(
      "silu", "activations", "b = a / (1 + exp(-a)), a in [-10, 10)", kVec, vec,
      [](B& b, std::uint64_t z) { unary(b, z, -10, 10); }, act_bytes,
      [](S s) { return 4 * len(s); }, M, kOutB, close(2e-5, 1e-6, kWhyUlp), naive::silu));
  r.add(def(
      "gelu_tanh", "activations", "b = a/2 (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))), a in [-6, 6)",
      kVec, vec, [](B& b, std::uint64_t z) { unary(b, z, -6, 6); }, act_bytes,
      [](S s) { return 9 * len(s); }, M, kOutB, close(2e-5, 1e-6, kWhyUlp), naive::gelu_tanh));
  r.add(def(
      "mish", "activations", "b = a tanh(softplus(a)), a in [-10, 10)", kVec, vec,
      [](B& b, std::uint64_t z) { unary(b, z, -10, 10); }, act_bytes,
      [](S s) { return 5 * len(s); }, M, kOutB, close(2e-5, 1e-6, kWhyUlp), naive::mish));

  // ---- softmax over rows of 1000
  // --------------------------------------------------------------------
  constexpr std::string_view kRows1000 =
      "rows of 1000 (the tiny model's vocabulary): floor(n/1000) x 1000";
  r.add(def(
      "softmax", "softmax", "b_rj = exp(a_rj - max_r) / sum_j exp(a_rj - max_r)", kRows1000,
      &shapes::rows1000, [](B& b, std::uint64_t z) { unary(b, z, -8, 8); }, act_bytes,
      [](S s) { return 5 * len(s); }, M, kOutB, summed(1e-6, 1e-9, kWhyRows), naive::softmax));
  r.add(def(
      "log_softmax", "softmax", "b_rj = a_rj - max_r - log sum_j exp(a_rj - max_r)", kRows1000,
      &shapes::rows1000, [](B& b, std::uint64_t z) { unary(b, z, -8, 8); }, act_bytes,
      [](S s) { return 5 * len(s); }, M, kOutB, summed(1e-6, 1e-6, kWhyRows), naive::log_softmax));

  // ---- normalisation over rows of 1024
  // ------------------------------------------------------------
  constexpr std::string_view kRows1024 = "rows of 1024: floor(n/1024) x 1024";
  r.add(def(
      "rmsnorm", "normalisation", "b = a / sqrt(mean(a^2) + 1e-5) * g  (g = c)", kRows1024,
      &shapes::rows1024,
      [](B& b, std::uint64_t z) {
        unary(b, z, -2, 2);
        Filler(z + 1).fill(b.c, b.shape.cols, 0.5f, 1.5f);
        b.p[0] = 1e-5f;
      },
      [](S s) { return 2 * kF * len(s) + kF * static_cast<double>(s.cols); },
      [](S s) { return 4 * len(s); }, M, kOutB, summed(1e-6, 1e-6, kWhyRows), naive::rmsnorm));
  r.add(def(
      "layernorm", "normalisation",
      "b = (a - mean) / sqrt(var + 1e-5) * g + beta  (g = c, beta = d)", kRows1024,
      &shapes::rows1024,
      [](B& b, std::uint64_t z) {
        unary(b, z, -2, 2);
        Filler(z + 1).fill(b.c, b.shape.cols, 0.5f, 1.5f);
        Filler(z + 2).fill(b.d, b.shape.cols, -0.5f, 0.5f);
        b.p[0] = 1e-5f;
      },
      [](S s) { return 2 * kF * len(s) + 2 * kF * static_cast<double>(s.cols); },
      [](S s) { return 8 * len(s); }, M, kOutB, summed(1e-6, 1e-6, kWhyRows), naive::layernorm));

  // ---- attention: one head, Q a, K b, V c [S x 64] -> O d
  // -----------------------------------------
  constexpr std::string_view kAttn = "one head, head_dim 64, S = max(1, floor(sqrt(n)/4)) tokens";
  auto attn_flops = [](S s) { return 4 * pairs(s) * kHeadDim + 5 * pairs(s); };
  r.add(def(
      "sdpa_causal", "attention",
      "O = softmax(Q K^T / 8 + causal mask) V, S x S scores materialised (e)", kAttn,
      &shapes::attention,
      [](B& b, std::uint64_t z) {
        attention(b, z);
        zeros(b.e, b.shape.rows * b.shape.rows);
      },
      [](S s) { return 4 * kF * len(s) + 2 * kF * pairs(s); }, attn_flops, C, kOutD,
      summed(2e-6, 2e-6, kWhyAttention), naive::sdpa_causal));
  r.add(def(
      "sdpa_flash", "attention",
      "the same O by online softmax over 16 x 64 tiles: never materialises S x S", kAttn,
      &shapes::attention, &detail::attention, [](S s) { return 4 * kF * len(s); }, attn_flops, C,
      kOutD, summed(2e-6, 2e-6, kWhyAttention), naive::sdpa_flash));

  // ---- losses
  // ------------------------------------------------------------------------------------
  r.add(def(
      "cross_entropy", "losses",
      "fused forward + backward: s = mean_r (lse_r - a_r,label), b = (softmax(a) - onehot) / rows",
      kRows1000, &shapes::rows1000,
      [](B& b, std::uint64_t z) {
        unary(b, z, -8, 8);
        Filler f(z + 1);
        b.labels.resize(b.shape.rows);
        for (auto& l : b.labels)
          l = static_cast<std::int32_t>(f.next() % static_cast<std::uint64_t>(b.shape.cols));
      },
      [](S s) { return 2 * kF * len(s) + 4.0 * static_cast<double>(s.rows); },
      [](S s) { return 8 * len(s); }, M, kOutB | kOutS0, summed(2e-6, 1e-9, kWhyRows),
      naive::cross_entropy));
  r.add(def(
      "mse", "losses", "s = mean (a - b)^2, c = 2 (a - b) / n", kVec, vec,
      [](B& b, std::uint64_t z) { binary(b, z, 0, 1); }, [](S s) { return 3 * kF * len(s); },
      [](S s) { return 4 * len(s); }, M, kOutC | kOutS0, summed(3e-7, 1e-9, kWhySum), naive::mse));

  // ---- optimisers
  // ----------------------------------------------------------------------------------
  r.add(def(
      "adamw", "optimisers",
      "one AdamW step on params a with grad b, moments c, d (lr 1e-3, betas 0.9/0.999, eps "
      "1e-8, wd 0.01; step counter advances per call)",
      kVec, vec,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        f.fill(b.a, b.shape.len, -1, 1);
        f.fill(b.b, b.shape.len, -1, 1);
        f.fill(b.c, b.shape.len, -0.1f, 0.1f);
        f.fill(b.d, b.shape.len, 0, 0.01f);
        b.p = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 0, 0};
        b.step = 0;
      },
      [](S s) { return 7 * kF * len(s); }, [](S s) { return 16 * len(s); }, M,
      kOutA | kOutC | kOutD, close(2e-6, 1e-7, kWhyAdam), naive::adamw));
  r.add(def(
      "clip_global_norm", "optimisers", "s = ||a||, b = a * min(1, 1 / (||a|| + 1e-6))", kVec, vec,
      [](B& b, std::uint64_t z) {
        unary(b, z, -1, 1);
        b.p[0] = 1.0f;
      },
      [](S s) { return 3 * kF * len(s); }, [](S s) { return 3 * len(s); }, M, kOutB | kOutS0,
      summed(3e-7, 1e-9, kWhySum), naive::clip_global_norm));

  // ---- linear algebra
  // ------------------------------------------------------------------------------
  r.add(def(
      "gemm", "linalg", "C c = A a * B b, all s x s row-major",
      "s = max(1, floor(sqrt(n)/4)): 1K->8, 64K->64, 1M->256, 16M->1024", &shapes::gemm,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        f.fill(b.a, b.shape.rows * b.shape.inner, -1, 1);
        f.fill(b.b, b.shape.inner * b.shape.cols, -1, 1);
        zeros(b.c, b.shape.rows * b.shape.cols);
      },
      [](S s) { return 3 * kF * len(s); },
      [](S s) {
        return 2.0 * static_cast<double>(s.rows) * static_cast<double>(s.inner) *
               static_cast<double>(s.cols);
      },
      C, kOutC, summed(1e-6, 1e-6, kWhyGemm), naive::gemm));
  r.add(def(
      "gemv", "linalg", "y c = A a * x b, A r x r row-major", "r = floor(sqrt(n))", &shapes::square,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        f.fill(b.a, b.shape.len, -1, 1);
        f.fill(b.b, b.shape.cols, -1, 1);
        zeros(b.c, b.shape.rows);
      },
      [](S s) { return kF * (len(s) + static_cast<double>(s.rows + s.cols)); },
      [](S s) { return 2 * len(s); }, M, kOutC, summed(1e-6, 1e-6, kWhyGemm), naive::gemv));
  r.add(def(
      "gemm_batched", "linalg", "C_i = A_i * B_i for 16 x 16 matrices back to back",
      "batch = max(1, floor(n/256)) matrices of 16 x 16", &shapes::batched,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        f.fill(b.a, b.shape.len, -1, 1);
        f.fill(b.b, b.shape.len, -1, 1);
        zeros(b.c, b.shape.len);
      },
      [](S s) { return 3 * kF * len(s); }, [](S s) { return 2 * 16 * len(s); }, C, kOutC,
      summed(1e-6, 1e-6, kWhyGemm), naive::gemm_batched));
  r.add(def(
      "outer", "linalg", "A a += 0.5 x b y c^T (BLAS ?ger), A r x r", "r = floor(sqrt(n))",
      &shapes::square,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        f.fill(b.a, b.shape.len, -1, 1);
        f.fill(b.b, b.shape.rows, -1, 1);
        f.fill(b.c, b.shape.cols, -1, 1);
        b.p[0] = 0.5f;
      },
      [](S s) { return kF * (2 * len(s) + static_cast<double>(s.rows + s.cols)); },
      [](S s) { return 2 * len(s); }, M, kOutA, close(1e-6, 1e-6, kWhyFma), naive::outer));

  // ---- layout
  // ----------------------------------------------------------------------------------------
  r.add(def(
      "transpose", "layout", "b[c x r] = a[r x c]^T", "r = floor(sqrt(n)), c = floor(n / r)",
      &shapes::matrix, [](B& b, std::uint64_t z) { unary(b, z, -1, 1); }, act_bytes,
      [](S) { return 0.0; }, M, kOutB, exact(kWhyExact), naive::transpose));
  r.add(def(
      "aos_to_soa", "layout", "a = {x,y,z,w}[m] -> b = x[m], c = y[m], d = z[m], e = w[m]",
      "m = max(1, floor(n/4)) structs of 4 floats", &shapes::structs,
      [](B& b, std::uint64_t z) {
        Filler(z).fill(b.a, b.shape.len, -1, 1);
        for (auto* v : {&b.b, &b.c, &b.d, &b.e}) zeros(*v, b.shape.rows);
      },
      act_bytes, [](S) { return 0.0; }, M, kOutB | kOutC | kOutD | kOutE, exact(kWhyExact),
      naive::aos_to_soa));
  r.add(def(
      "soa_to_aos", "layout", "b, c, d, e [m] -> a = {x,y,z,w}[m]",
      "m = max(1, floor(n/4)) structs of 4 floats", &shapes::structs,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        for (auto* v : {&b.b, &b.c, &b.d, &b.e}) f.fill(*v, b.shape.rows, -1, 1);
        zeros(b.a, b.shape.len);
      },
      act_bytes, [](S) { return 0.0; }, M, kOutA, exact(kWhyExact), naive::soa_to_aos));

  // ---- scans
  // -----------------------------------------------------------------------------------------
  r.add(def(
      "prefix_sum", "scans", "b_i = a_0 + ... + a_i (inclusive)", kVec, vec,
      [](B& b, std::uint64_t z) { unary(b, z, 0, 1); }, act_bytes, [](S s) { return len(s); }, M,
      kOutB, summed(3e-7, 1e-7, kWhySum), naive::prefix_sum));

  // ---- dot products
  // ---------------------------------------------------------------------------------
  r.add(def(
      "dot", "dot", "s = sum_i a_i b_i (BLAS ?dot)", kVec, vec,
      [](B& b, std::uint64_t z) { binary(b, z, 0, 1); }, [](S s) { return 2 * kF * len(s); },
      [](S s) { return 2 * len(s); }, M, kOutS0, summed(3e-7, 0, kWhySum), naive::dot));
  r.add(def(
      "cosine", "dot", "s = a.b / (||a|| ||b||)", kVec, vec,
      [](B& b, std::uint64_t z) { binary(b, z, 0, 1); }, [](S s) { return 2 * kF * len(s); },
      [](S s) { return 6 * len(s); }, M, kOutS0, summed(3e-7, 1e-7, kWhySum), naive::cosine));

  // ---- random numbers: counter-based, the same stream for every backend
  // ---------------------------
  auto rng_setup = [](B& b, std::uint64_t z) {
    zeros(b.a, b.shape.len);
    b.seed = z;
    b.step = 0;
  };
  r.add(def(
      "rand_uniform", "random", "a_i = U[0, 1) from fmix32(fmix32(i ^ k0) + k1)", kVec, vec,
      rng_setup, [](S s) { return kF * len(s); }, [](S) { return 0.0; }, M, kOutA, exact(kWhyExact),
      naive::rand_uniform));
  r.add(def(
      "rand_normal", "random",
      "a = N(0, 1) by Box-Muller on counter pairs (2j, 2j+1) of the uniform stream", kVec, vec,
      rng_setup, [](S s) { return kF * len(s); }, [](S s) { return 4 * len(s); }, M, kOutA,
      close(1e-5, 1e-5, kWhyNormal), naive::rand_normal));

  // ---- quantisation
  // ----------------------------------------------------------------------------------
  r.add(def(
      "f32_to_bf16", "quantisation", "h = bf16(a), round to nearest even", kVec, vec,
      [](B& b, std::uint64_t z) {
        reduction(b, z, -100, 100);
        b.h.assign(b.shape.len, 0);
      },
      [](S s) { return 6 * len(s); }, [](S) { return 0.0; }, M, kOutH, exact(kWhyExact),
      naive::f32_to_bf16));
  r.add(def(
      "bf16_to_f32", "quantisation", "a = float(h)", kVec, vec,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        b.h.resize(b.shape.len);
        for (auto& x : b.h) x = bf16_from_float(f.uniform(-100, 100));
        zeros(b.a, b.shape.len);
      },
      [](S s) { return 6 * len(s); }, [](S) { return 0.0; }, M, kOutA, exact(kWhyExact),
      naive::bf16_to_f32));
  r.add(def(
      "f32_to_int8", "quantisation",
      "s = max|a| / 127, q = rint(a * 127 / max|a|) (two passes: max, then round)", kVec, vec,
      [](B& b, std::uint64_t z) {
        reduction(b, z, -3, 3);
        b.q.assign(b.shape.len, 0);
      },
      [](S s) { return 9 * len(s); }, [](S s) { return 3 * len(s); }, M, kOutQ | kOutS0,
      exact(kWhyExact), naive::f32_to_int8));
  r.add(def(
      "int8_to_f32", "quantisation", "a = q * scale", kVec, vec,
      [](B& b, std::uint64_t z) {
        Filler f(z);
        b.q.resize(b.shape.len);
        for (auto& x : b.q) x = static_cast<std::int8_t>(static_cast<int>(f.next() % 255) - 127);
        zeros(b.a, b.shape.len);
        b.p[0] = 3.0f / 127.0f;
      },
      [](S s) { return 5 * len(s); }, [](S s) { return len(s); }, M, kOutA, exact(kWhyExact),
      naive::int8_to_f32));
}

}  // namespace rosetta::atlas
