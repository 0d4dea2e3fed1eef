// Helpers for contiguous rows that compilers turn into SIMD code (AVX-512 / AVX2 / SSE with
// -march=native, plain scalar code elsewhere): reductions with independent partial sums, and
// a polynomial exp for float. The kernels use them when a row is contiguous (RowMajor) and
// fall back to their plain loops otherwise, which stay the readable reference.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>  // masked loads and stores (softmax_short)
#endif

namespace rosetta::kernels::vec {

/// Number of independent partial sums: one 512-bit register of floats.
inline constexpr std::size_t kLanes = 16;

/// sum_j x[j]^2 with kLanes interleaved partial sums added pairwise at the end (a fixed
/// order: deterministic, but not the left-to-right order of the plain loop).
template <class T>
T sum_squares(const T* x, std::size_t n) {
  T s[kLanes] = {};
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) s[j] += x[i + j] * x[i + j];
  for (std::size_t i = body; i < n; ++i) s[i - body] += x[i] * x[i];
  for (std::size_t w = kLanes / 2; w > 0; w /= 2)
    for (std::size_t j = 0; j < w; ++j) s[j] += s[j + w];
  return s[0];
}

/// max_j x[j] (n >= 1), kLanes running maxima combined at the end; each step is
/// std::max's `m < v ? v : m`.
template <class T>
T max(const T* x, std::size_t n) {
  T m[kLanes];
  for (std::size_t j = 0; j < kLanes; ++j) m[j] = x[0];
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) m[j] = m[j] < x[i + j] ? x[i + j] : m[j];
  for (std::size_t i = body; i < n; ++i) m[0] = m[0] < x[i] ? x[i] : m[0];
  for (std::size_t j = 1; j < kLanes; ++j) m[0] = m[0] < m[j] ? m[j] : m[0];
  return m[0];
}

// ---- explicit 16-float vectors (GCC >= 12 / clang vector extensions) -------------------------
// For short rows, where the loops above spend their time in scalar tails and in combining
// their 16 partial results one after the other: softmax of attention's causal prefixes (1..S
// entries). Each result is bit-identical to the scalar helpers' (same exp operations, same
// pairwise order of the partial sums; max is exact in any order); test_core checks that.
// Only where 16 floats are one register (AVX-512) and the compiler has
// __builtin_shufflevector (GCC >= 12, clang); elsewhere the scalar helpers run.
#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)) && defined(__AVX512F__)
#define ROSETTA_VEC16 1
using f16 = float __attribute__((vector_size(64)));
using i16 = std::int32_t __attribute__((vector_size(64)));
using u16 = std::uint32_t __attribute__((vector_size(64)));

inline f16 splat(float x) {
  return f16{} + x;
}
inline f16 load16(const float* p) {
  f16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, f16 v) {
  std::memcpy(p, &v, sizeof v);
}
namespace exp_detail {  // exp_poly's steps on 16 lanes (the float ones are below)
inline f16 clamp(f16 x, float lo, float hi) {
  x = x < lo ? splat(lo) : x;
  return x > hi ? splat(hi) : x;
}
/// p 2^kf for integral kf in [-150, 128] with one rounding: AVX-512's vscalefps. The float
/// version's two exact-or-once-rounded products give the same bits (test_core checks it over
/// the whole clamped range, the denormal results included); 1.2x faster SwiGLU than the
/// conversion, shifts and two multiplies on 16 lanes.
inline f16 scale_pow2(f16 p, f16 kf) {
  return reinterpret_cast<f16>(
      _mm512_scalef_ps(reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(kf)));
}
}  // namespace exp_detail
#endif

namespace exp_detail {
// The two steps of exp_f32 that differ between one float and a vector of them (see exp16).
inline float clamp(float x, float lo, float hi) {
  x = x < lo ? lo : x;  // comparisons false for NaN: NaN passes through
  return x > hi ? hi : x;
}
/// 2^k for k in [-126, 127], built in the exponent bits.
inline float pow2(std::int32_t k) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(k + 127) << 23);
}
/// p 2^kf for integral kf in [-150, 128]: 2^(k/2) 2^(k - k/2), each a normal power of 2, so
/// the first product is exact and the second rounds once (also into the denormal range).
inline float scale_pow2(float p, float kf) {
  const auto k = static_cast<std::int32_t>(kf);
  const auto k1 = k >> 1, k2 = k - k1;  // each in [-75, 64]
  return p * pow2(k1) * pow2(k2);
}

/// The body of exp_f32 for F = float or a vector of floats: the same operations in the same
/// order, so both give the same bits. Always inlined: GCC left the vector instance out of line
/// in softmax_prefix16 (three call sites), 8 % slower.
template <class F>
[[gnu::always_inline]] inline F exp_poly(F x) {
  constexpr float kLo = -104.0f, kHi = 88.72f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187e-06f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = clamp(x, kLo, kHi);
  const F kf = (x * kLog2e + kRound) - kRound;
  const F r = (x - kf * kLn2Hi) - kf * kLn2Lo;
  F p = F{} + 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return scale_pow2(p, kf);  // kf in [-150, 128]
}
}  // namespace exp_detail

/// exp(x) for float without a libm call, so loops over it vectorise. Range reduction
/// x = k ln2 + r, |r| <= ln2/2, exp(r) by its Taylor series to r^7 (truncation error
/// < 6e-9 relative, below float's 6e-8 spacing), times 2^k applied as 2^(k/2) 2^(k - k/2),
/// each built in the exponent bits (so k = 128 near FLT_MAX and the denormal range both
/// work). x is clamped to [-104, 88.72]: below, the result is 0 or the smallest denormals
/// instead of exactly 0; above, exp overflows float anyway. NaN stays NaN.
inline float exp_f32(float x) {
  return exp_detail::exp_poly(x);
}

/// 1 / (1 + exp(-x)): float through exp_f32 (vectorisable), double through std::exp.
template <class T>
inline T sigmoid(T x) {
  if constexpr (std::is_same_v<T, float>)
    return 1.0f / (1.0f + exp_f32(-x));
  else
    return T(1) / (T(1) + std::exp(-x));
}

/// exp for either scalar: float exp_f32, double std::exp (the reference precision).
template <class T>
T exp_any(T v) {
  if constexpr (std::is_same_v<T, float>)
    return exp_f32(v);
  else
    return std::exp(v);
}

/// sum_j exp(x[j] - m), x left unchanged, kLanes partial sums.
template <class T>
T exp_sum(const T* x, std::size_t n, T m) {
  T s[kLanes] = {};
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) s[j] += exp_any(x[i + j] - m);
  for (std::size_t i = body; i < n; ++i) s[i - body] += exp_any(x[i] - m);
  for (std::size_t w = kLanes / 2; w > 0; w /= 2)
    for (std::size_t j = 0; j < w; ++j) s[j] += s[j + w];
  return s[0];
}

/// x[j] <- exp(x[j] - m) for j < n; returns the sum of the new values (kLanes partial sums).
template <class T>
T exp_sub_sum(T* x, std::size_t n, T m) {
  T s[kLanes] = {};
  const std::size_t body = n - n % kLanes;
  for (std::size_t i = 0; i < body; i += kLanes)
    for (std::size_t j = 0; j < kLanes; ++j) {
      x[i + j] = exp_any(x[i + j] - m);
      s[j] += x[i + j];
    }
  if (const std::size_t rem = n - body; rem > 0) {
    // The tail as one more full step on a padded copy, so it is vectorised too (a scalar tail
    // of up to 15 exps was most of the time on short rows: attention's causal prefixes).
    T t[kLanes];
    for (std::size_t j = 0; j < kLanes; ++j) t[j] = j < rem ? x[body + j] : m;
    for (std::size_t j = 0; j < kLanes; ++j) t[j] = exp_any(t[j] - m);
    for (std::size_t j = 0; j < rem; ++j) x[body + j] = t[j];
    for (std::size_t j = 0; j < kLanes; ++j) s[j] += j < rem ? t[j] : T(0);
  }
  for (std::size_t w = kLanes / 2; w > 0; w /= 2)
    for (std::size_t j = 0; j < w; ++j) s[j] += s[j + w];
  return s[0];
}

#ifdef ROSETTA_VEC16
/// Lane j: j < n (as a mask: all ones or zero).
inline i16 lanes_below(std::size_t n) {
  const i16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return iota < static_cast<std::int32_t>(std::min<std::size_t>(n, 16));
}
inline f16 select(i16 mask, f16 a, f16 b) {
  return mask ? a : b;
}
/// max as `m < v ? v : m`, lane by lane (std::max's NaN behaviour).
inline f16 vmax(f16 m, f16 v) {
  return m < v ? v : m;
}

/// exp_f32 on 16 lanes (exp_detail::exp_poly: the same operations in the same order).
inline f16 exp16(f16 x) {
  return exp_detail::exp_poly(x);
}

/// Combines the 16 lanes pairwise: lanes j and j + w by `op` for w = 8, 4, 2, 1 (the scalar
/// helpers' order for sums); returns the result in lane 0.
template <class Op>
float hreduce16(f16 v, Op op) {
  v = op(v,
         __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
  v = op(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7));
  v = op(v, __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3));
  v = op(v, __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  return v[0];
}
/// Horizontal max (exact in any order) and sum (s[j] += s[j + w], as the scalar helpers).
inline float hmax16(f16 m) {
  return hreduce16(m, [](f16 a, f16 b) { return vmax(a, b); });
}
inline float hsum16(f16 s) {
  return hreduce16(s, [](f16 a, f16 b) { return a + b; });
}

/// The AVX-512 mask of the first min(n, 16) lanes (masked loads and stores of partial vectors).
inline __mmask16 first_lanes(std::size_t n) {
  return static_cast<__mmask16>((1u << std::min<std::size_t>(n, 16)) - 1u);
}

/// hsum16 of four vectors at once (out[r] = hsum16(v[r]), the same pairs in the same order:
/// lanes j and j + w for w = 8, 4, 2, 1), the rows side by side in the lanes of each level:
/// 10 shuffles and 5 adds where four hsum16 take 16 and 16 (the shuffles of the last two
/// levels on 256- and 128-bit vectors).
inline void hsum16x4(const f16 (&v)[4], float* out) {
  using f8 = float __attribute__((vector_size(32)));
  using f4 = float __attribute__((vector_size(16)));
  // w = 8: rows a|b and c|d, each 8 lanes of a row's v_j + v_{j+8}
  const f16 ab =
      __builtin_shufflevector(v[0], v[1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
      __builtin_shufflevector(v[0], v[1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                              31);
  const f16 cd =
      __builtin_shufflevector(v[2], v[3], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
      __builtin_shufflevector(v[2], v[3], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                              31);
  // w = 4: lanes 4r + j of row r's s_j + s_{j+4}
  const f16 q =
      __builtin_shufflevector(ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
      __builtin_shufflevector(ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  // w = 2: lanes 2r + j
  const f8 z = __builtin_shufflevector(q, q, 0, 1, 4, 5, 8, 9, 12, 13) +
               __builtin_shufflevector(q, q, 2, 3, 6, 7, 10, 11, 14, 15);
  // w = 1: lane r
  const f4 s =
      __builtin_shufflevector(z, z, 0, 2, 4, 6) + __builtin_shufflevector(z, z, 1, 3, 5, 7);
  std::memcpy(out, &s, sizeof s);
}

/// sum_squares over R rows at once (row r at row0 + r * stride, n >= 1 floats each; result
/// in out[r]), the rows' steps interleaved: one row's chain — dependent adds into one register,
/// then four shuffle-and-add levels — ran alone per call. The same values as sum_squares: lane
/// j is its partial sum j, the last partial vector is a masked load (lanes past n add 0 * 0),
/// and hsum16 adds the lanes in its pairwise order.
template <std::size_t R>
inline void sum_squares_rows(const float* row0, std::size_t stride, std::size_t n, float* out) {
  f16 acc[R];
  for (std::size_t r = 0; r < R; ++r) acc[r] = f16{};
  const std::size_t body = n - n % 16;
  for (std::size_t i = 0; i < body; i += 16)
    for (std::size_t r = 0; r < R; ++r) {
      const f16 v = load16(row0 + r * stride + i);
      acc[r] += v * v;
    }
  if (body < n) {
    const __mmask16 k = first_lanes(n - body);
    for (std::size_t r = 0; r < R; ++r) {
      const f16 v = _mm512_maskz_loadu_ps(k, row0 + r * stride + body);
      acc[r] += v * v;
    }
  }
  if constexpr (R == 4)
    hsum16x4(acc, out);
  else
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum16(acc[r]);
}

/// RMSNorm's scaling, y[t] = (x[t] r[t]) g, for rows of exactly 16 V floats with g held in
/// V registers instead of loaded again for every row: kernel_rmsnorm (64 rows of 64) 410-480
/// -> 280-310 ns, with the sums' hsum16x4.
template <std::size_t V>
inline void scale_rows16(const float* x, std::size_t xs, float* y, std::size_t ys, const float* g,
                         const float* r, std::size_t rows) {
  f16 gv[V];
  for (std::size_t v = 0; v < V; ++v) gv[v] = load16(g + 16 * v);
  for (std::size_t t = 0; t < rows; ++t) {
    const f16 rv = splat(r[t]);
    for (std::size_t v = 0; v < V; ++v)
      store16(y + t * ys + 16 * v, load16(x + t * xs + 16 * v) * rv * gv[v]);
  }
}

/// softmax_prefix16 on R rows at once (row[r], n[r] entries, 1 <= n[r] <= 16 V): V vectors
/// per row, every step on all of them with lanes >= n[r] masked, no branch on n, the rows'
/// steps interleaved. A row's chain (max, exp, sum, divide, scale) is ~100 cycles of
/// dependent operations; one row at a time, the out-of-order window held little else (causal
/// attention's rows also took different branches row after row). Each row holds at least
/// 16 V floats, or `masked` (V = 1): lanes >= cols are neither read nor written (AVX-512
/// masked accesses: the router's rows of 4). Same operations in the same order as the
/// general path (an extra vmax with row[0] and an extra + 0 are identities there).
template <std::size_t R, std::size_t V, bool masked>
[[gnu::always_inline]] inline void softmax_short(float* const* row, const std::size_t* n,
                                                 std::size_t cols) {
  const __mmask16 in_row = first_lanes(cols);
  f16 x[R][V], e[R][V], mv[R], sv[R];
  i16 valid[R][V];
  float m[R], inv[R];
  for (std::size_t r = 0; r < R; ++r) {
    const f16 first = splat(row[r][0]);
    mv[r] = first;
    for (std::size_t v = 0; v < V; ++v) {
      x[r][v] = masked ? f16(_mm512_maskz_loadu_ps(in_row, row[r])) : load16(row[r] + 16 * v);
      valid[r][v] = lanes_below(n[r] > 16 * v ? n[r] - 16 * v : 0);
      mv[r] = vmax(mv[r], select(valid[r][v], x[r][v], first));
    }
  }
  for (std::size_t r = 0; r < R; ++r) m[r] = hmax16(mv[r]);
  for (std::size_t r = 0; r < R; ++r) {
    sv[r] = f16{};
    for (std::size_t v = 0; v < V; ++v) {
      e[r][v] = exp_detail::exp_poly(select(valid[r][v], x[r][v], splat(m[r])) - m[r]);
      sv[r] += select(valid[r][v], e[r][v], f16{});
    }
  }
  for (std::size_t r = 0; r < R; ++r) inv[r] = 1.0f / hsum16(sv[r]);
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t v = 0; v < V; ++v) {
      const f16 y = select(valid[r][v], e[r][v] * inv[r], f16{});
      if constexpr (masked)
        _mm512_mask_storeu_ps(row[r], in_row, y);
      else
        store16(row[r] + 16 * v, y);
    }
    if constexpr (!masked) std::fill(row[r] + 16 * V, row[r] + cols, 0.0f);
  }
}

/// softmax_prefix16 on R rows, row r at row0 + r * stride over its first n[r] >= 1 entries,
/// all `cols` wide: interleaved when every row fits softmax_short, else one after the other.
/// Same values.
inline void softmax_prefix16(float* row, std::size_t n, std::size_t cols);
template <std::size_t R>
inline void softmax_prefix16_rows(float* row0, std::size_t stride, const std::size_t* n,
                                  std::size_t cols) {
  float* rows[R];
  bool short_rows = cols >= 32;
  for (std::size_t r = 0; r < R; ++r) {
    rows[r] = row0 + r * stride;
    short_rows = short_rows && n[r] <= 32;
  }
  if (short_rows) return softmax_short<R, 2, false>(rows, n, cols);
  if (cols < 16) return softmax_short<R, 1, true>(rows, n, cols);
  for (std::size_t r = 0; r < R; ++r) softmax_prefix16(rows[r], n[r], cols);
}

/// Softmax over row[0, n) (n >= 1) in place, zeros in row[n, cols): the same values as
/// max + exp_sub_sum + scaling with the helpers above. Reads and writes whole 16-float vectors
/// up to round_up(n, 16) when that is within cols (the row's width), else the last partial
/// vector goes through a local copy.
inline void softmax_prefix16(float* row, std::size_t n, std::size_t cols) {
  if (n == 0) {
    std::fill(row, row + cols, 0.0f);
    return;
  }
  const std::size_t body = n - n % 16, rem = n - body;
  alignas(64) float tail[16];
  const bool in_row = body + 16 <= cols;
  auto tail_load = [&] {
    if (in_row) return load16(row + body);
    std::fill(tail, tail + 16, 0.0f);
    std::copy(row + body, row + n, tail);
    return load16(tail);
  };
  const i16 valid = lanes_below(rem);
  f16 mv = splat(row[0]);
  for (std::size_t i = 0; i < body; i += 16) mv = vmax(mv, load16(row + i));
  if (rem) mv = vmax(mv, select(valid, tail_load(), splat(row[0])));
  const float m = hmax16(mv);
  f16 sv = f16{};
  for (std::size_t i = 0; i < body; i += 16) {
    const f16 e = exp16(load16(row + i) - m);
    store16(row + i, e);
    sv += e;
  }
  f16 et{};
  if (rem) {
    et = exp16(select(valid, tail_load(), splat(m)) - m);
    sv += select(valid, et, f16{});
  }
  const float inv = 1.0f / hsum16(sv);
  for (std::size_t i = 0; i < body; i += 16) store16(row + i, load16(row + i) * inv);
  if (rem) {
    et *= inv;
    if (in_row) {
      store16(row + body, select(valid, et, f16{}));
    } else {
      store16(tail, et);
      std::copy(tail, tail + rem, row + body);
    }
  }
  for (std::size_t j = in_row && rem ? body + 16 : n; j < cols; ++j) row[j] = 0.0f;
}

/// Runs step(j, k) for j = 0, 16, 32, ... < n, k the mask of the lanes j.. that are < n: all 16
/// but in the last, partial step. load16k / store16k read and write those lanes only (whole
/// vectors when k is all ones, which the compiler sees in the loop's steps).
inline constexpr __mmask16 kAllLanes = 0xFFFF;
template <class Step>
[[gnu::always_inline]] inline void for_each16(std::size_t n, Step&& step) {
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16) step(j, kAllLanes);
  if (j < n) step(j, first_lanes(n - j));
}
[[gnu::always_inline]] inline f16 load16k(const float* p, __mmask16 k) {
  return k == kAllLanes ? load16(p) : f16(_mm512_maskz_loadu_ps(k, p));
}
[[gnu::always_inline]] inline void store16k(float* p, __mmask16 k, f16 v) {
  if (k == kAllLanes)
    store16(p, v);
  else
    _mm512_mask_storeu_ps(p, k, v);
}

/// SwiGLU along a row, 16 values at a time: a[j] = g[j] u[j] / (1 + exp_f32(-g[j])), the
/// scalar formula's operations in its order (the same bits); the tail as one more masked
/// step. GCC's own vectorisation of the scalar loop threaded exp's clamp into separate paths
/// for the clamped lanes, with a second division per vector for them (dispatch_warm -1.6 %).
inline void swiglu16(float* a, const float* g, const float* u, std::size_t n) {
  for_each16(n, [&](std::size_t j, __mmask16 k) {
    const f16 x = load16k(g + j, k);
    store16k(a + j, k, x * load16k(u + j, k) / (1.0f + exp16(-x)));
  });
}

/// Its derivative along a row, 16 values at a time (the tail masked), s = 1 / (1 + exp_f32(-g)):
/// du = da g s,  dg = da u s (1 + g (1 - s)). Every value through the same vector code (a
/// scalar tail contracted its products into FMAs differently: other bits).
inline void swiglu_backward16(float* dg, float* du, const float* da, const float* g, const float* u,
                              std::size_t n) {
  for_each16(n, [&](std::size_t j, __mmask16 k) {
    const f16 d = load16k(da + j, k), x = load16k(g + j, k);
    const f16 s = 1.0f / (1.0f + exp16(-x));
    store16k(du + j, k, d * x * s);
    store16k(dg + j, k, d * load16k(u + j, k) * s * (1.0f + x * (1.0f - s)));
  });
}

/// exp_sum on 16 lanes: lane j sums exp_f32(x[i] - m) over i = j mod 16, the tail masked into
/// lanes 0.. (+0 elsewhere), then hsum16 — the scalar helper's values (test_core checks it).
/// GCC's vectorisation of the scalar loop split exp's clamp into masked paths (2.7 % of
/// mem_train_step with the cross-entropy backward below).
inline float exp_sum16(const float* x, std::size_t n, float m) {
  f16 s{};
  for_each16(n, [&](std::size_t j, __mmask16 k) {
    s += _mm512_maskz_mov_ps(k, exp16(load16k(x + j, k) - m));
  });
  return hsum16(s);
}

/// d[j] = scale * exp_f32(x[j] - sub) for j < n, 16 at a time, the tail masked (d may be x).
inline void exp_scale16(float* d, const float* x, std::size_t n, float sub, float scale) {
  for_each16(n, [&](std::size_t j, __mmask16 k) {
    store16k(d + j, k, scale * exp16(load16k(x + j, k) - sub));
  });
}
#endif

}  // namespace rosetta::kernels::vec
