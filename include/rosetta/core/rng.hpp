// Deterministic random numbers with explicit state.
//
// Generator: xoshiro256** (Blackman & Vigna), its 256-bit state filled by splitmix64 from
// (seed, stream). Integer output is fully specified, so it is identical with every compiler
// and standard library. Uniforms take the top 53 bits. Normals use Box-Muller on two
// uniforms with std::log/std::sqrt/std::cos — not std::normal_distribution, whose algorithm
// differs between standard libraries. (sqrt is exact in IEEE arithmetic; log and cos are
// the platform libm's, which agree to the last bit or so.)
//
// NormalStream is the bulk generator parameter initialisation uses: Box-Muller in float on
// 16 pairs at a time from 8 interleaved xoshiro256** lanes, with log, sin and cos of our
// own (polynomials written with explicit std::fma, integer range reduction). Every step is
// an IEEE-rounded operation (+ - * / sqrt fma), so the output is bit-identical with every
// compiler, flag set and libm — whether or not the compiler contracts a*b+c on its own,
// because no such expression is left to contract. It vectorises (no libm calls, no branches).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numbers>

namespace rosetta {

/// splitmix64 step: advances state and returns the next output.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  /// Independent streams for one seed: stream s starts splitmix64 at seed ^ (s * golden).
  constexpr explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept {
    std::uint64_t sm = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (auto& w : s_) w = splitmix64(sm);
  }

  /// Next 64 random bits (xoshiro256**).
  constexpr std::uint64_t next_u64() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  constexpr double uniform() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// Standard normal N(0, 1) by Box-Muller (one output per two uniforms).
  double normal() noexcept {
    const double u1 = static_cast<double>((next_u64() >> 11) + 1) * 0x1.0p-53;  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

  /// Uniform integer in [0, n) (Lemire's multiply-shift; n > 0).
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(next_u64()) * n) >> 64);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4]{};
};

namespace detail {

/// ln(k * 2^-24) for k in [1, 2^24] (a float in (0, 1]): k = m * 2^e with m in
/// [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716, by its series to
/// s^9 (truncation < 3e-9 relative). ln(1) is exactly 0.
inline float ln_u24(std::uint32_t k) {
  const float u = static_cast<float>(k) * 0x1.0p-24f;  // exact: k has at most 25 bits
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(u);
  int e = static_cast<int>(bits >> 23) - 127;
  float m = std::bit_cast<float>((bits & 0x7FFFFFu) | 0x3F800000u);  // [1, 2)
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e += big ? 1 : 0;
  const float f = m - 1.0f;  // exact (Sterbenz)
  const float s = f / (2.0f + f);
  const float w = s * s;
  float p = std::fma(w, 2.0f / 9.0f, 2.0f / 7.0f);
  p = std::fma(w, p, 2.0f / 5.0f);
  p = std::fma(w, p, 2.0f / 3.0f);
  p = std::fma(w, p, 2.0f);
  constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187e-06f;
  const float fe = static_cast<float>(e);
  return std::fma(fe, kLn2Hi, std::fma(fe, kLn2Lo, s * p));
}

/// sin and cos of 2 pi j / 2^24 for j in [0, 2^24). The quarter turn q nearest the angle and
/// the remainder t in [-1/2, 1/2] quarter turns come from integer arithmetic (exact); then
/// a = t pi/2, |a| <= pi/4, and the Taylor series of sin to a^11 and cos to a^12 (truncation
/// < 2e-9), rotated by q quarter turns.
inline void sincos_turn24(std::uint32_t j, float& sin_out, float& cos_out) {
  const std::uint32_t q = (j + (1u << 21)) >> 22;  // 0..4
  const float t =
      static_cast<float>(static_cast<std::int32_t>(j) - static_cast<std::int32_t>(q << 22)) *
      0x1.0p-22f;                             // exact
  constexpr double h = std::numbers::pi / 2;  // a = h t; coefficients h^i / i! with signs
  const float t2 = t * t;
  float sp =
      std::fma(t2, static_cast<float>(h * h * h * h * h * h * h * h * h * h * h / -39916800.0),
               static_cast<float>(h * h * h * h * h * h * h * h * h / 362880.0));
  sp = std::fma(t2, sp, static_cast<float>(-h * h * h * h * h * h * h / 5040.0));
  sp = std::fma(t2, sp, static_cast<float>(h * h * h * h * h / 120.0));
  sp = std::fma(t2, sp, static_cast<float>(-h * h * h / 6.0));
  sp = std::fma(t2, sp, static_cast<float>(h));
  const float sa = t * sp;
  float cp =
      std::fma(t2, static_cast<float>(h * h * h * h * h * h * h * h * h * h * h * h / 479001600.0),
               static_cast<float>(-h * h * h * h * h * h * h * h * h * h / 3628800.0));
  cp = std::fma(t2, cp, static_cast<float>(h * h * h * h * h * h * h * h / 40320.0));
  cp = std::fma(t2, cp, static_cast<float>(-h * h * h * h * h * h / 720.0));
  cp = std::fma(t2, cp, static_cast<float>(h * h * h * h / 24.0));
  cp = std::fma(t2, cp, static_cast<float>(-h * h / 2.0));
  const float ca = std::fma(t2, cp, 1.0f);
  const bool swap = (q & 1u) != 0;
  const float s = swap ? ca : sa, c = swap ? sa : ca;
  sin_out = (q & 2u) != 0 ? -s : s;
  cos_out = ((q + 1u) & 2u) != 0 ? -c : c;
}

}  // namespace detail

/// Standard normal floats in bulk (see the top of this file). Seeded from one draw of a
/// parent Rng: 8 xoshiro256** lanes, each filled by splitmix64. Each refill steps every lane
/// twice (16 words); word i gives one Box-Muller pair from its top 24 bits (u1 = (k+1)/2^24,
/// in (0, 1]) and the 24 bits below (angle 2 pi j / 2^24), i.e. |z| <= sqrt(48 ln 2) = 5.77;
/// the block holds the 16 cosine outputs, then the 16 sine outputs.
class NormalStream {
 public:
  explicit NormalStream(Rng& parent) noexcept {
    std::uint64_t sm = parent.next_u64();
    for (int l = 0; l < static_cast<int>(kLanes); ++l) {
      a_[l] = splitmix64(sm);
      b_[l] = splitmix64(sm);
      c_[l] = splitmix64(sm);
      d_[l] = splitmix64(sm);
    }
  }

  /// Next standard normal.
  float next() noexcept {
    if (pos_ == kBlock) refill();
    return buf_[pos_++];
  }

  /// out[i] = next() for i in [0, n).
  void fill(float* out, std::size_t n) noexcept {
    while (n > 0) {
      if (pos_ == kBlock) refill();
      const std::size_t take = n < kBlock - pos_ ? n : kBlock - pos_;
      for (std::size_t i = 0; i < take; ++i) out[i] = buf_[pos_ + i];
      pos_ += take;
      out += take;
      n -= take;
    }
  }

 private:
  using U64x8 = std::uint64_t __attribute__((vector_size(64)));
  static constexpr std::size_t kLanes = 8, kSteps = 8, kPairs = kSteps * kLanes,
                               kBlock = 2 * kPairs;

  void refill() noexcept {
    alignas(64) std::uint64_t x[kPairs];
    for (std::size_t step = 0; step < kSteps; ++step) {  // xoshiro256** on 8 lanes at once
      const U64x8 m5 = b_ + (b_ << 2), r5 = (m5 << 7) | (m5 >> 57);
      const U64x8 out = r5 + (r5 << 3);  // rotl(s1 * 5, 7) * 9
      std::memcpy(x + step * kLanes, &out, sizeof out);
      const U64x8 t = b_ << 17;
      c_ ^= a_;
      d_ ^= b_;
      b_ ^= c_;
      a_ ^= d_;
      c_ ^= t;
      d_ = (d_ << 45) | (d_ >> 19);
    }
    for (std::size_t i = 0; i < kPairs; ++i) {
      const auto k = static_cast<std::uint32_t>(x[i] >> 40) + 1u;  // [1, 2^24]
      const auto j = static_cast<std::uint32_t>(x[i] >> 16) & 0xFFFFFFu;
      const float r = std::sqrt(-2.0f * detail::ln_u24(k));
      float s, c;
      detail::sincos_turn24(j, s, c);
      buf_[i] = r * c;
      buf_[kPairs + i] = r * s;
    }
    pos_ = 0;
  }

  // The four xoshiro256** state words of the 8 lanes, as GCC/Clang vectors (lowered to
  // whatever SIMD width the target has; plain integer operations, so the same everywhere).
  U64x8 a_{}, b_{}, c_{}, d_{};
  alignas(64) float buf_[kBlock]{};
  std::size_t pos_ = kBlock;
};

}  // namespace rosetta
