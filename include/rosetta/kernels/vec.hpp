// Helpers for contiguous rows that compilers turn into SIMD code (AVX-512 / AVX2 / SSE with
// -march=native, plain scalar code elsewhere): reductions with independent partial sums, and
// a polynomial exp for float. The kernels use them when a row is contiguous (RowMajor) and
// fall back to their plain loops otherwise, which stay the readable reference.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

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

/// exp(x) for float without a libm call, so loops over it vectorise. Range reduction
/// x = k ln2 + r, |r| <= ln2/2, exp(r) by its Taylor series to r^7 (truncation error
/// < 6e-9 relative, below float's 6e-8 spacing), times 2^k applied as 2^(k/2) 2^(k - k/2),
/// each built in the exponent bits (so k = 128 near FLT_MAX and the denormal range both
/// work). x is clamped to [-104, 88.72]: below, the result is 0 or the smallest denormals
/// instead of exactly 0; above, exp overflows float anyway. NaN stays NaN.
inline float exp_f32(float x) {
  constexpr float kLo = -104.0f, kHi = 88.72f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187e-06f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = x < kLo ? kLo : x;                 // comparisons false for NaN: NaN passes through
  x = x > kHi ? kHi : x;
  const float kf = (x * kLog2e + kRound) - kRound;
  const float r = (x - kf * kLn2Hi) - kf * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const auto k = static_cast<std::int32_t>(kf);  // in [-150, 128]
  const std::int32_t k1 = k >> 1, k2 = k - k1;   // each in [-75, 64]: normal powers of 2
  const float s1 = std::bit_cast<float>(static_cast<std::uint32_t>(k1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<std::uint32_t>(k2 + 127) << 23);
  return p * s1 * s2;
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

}  // namespace rosetta::kernels::vec
