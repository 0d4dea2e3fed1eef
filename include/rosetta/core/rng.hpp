// Deterministic random numbers with explicit state.
//
// Generator: xoshiro256** (Blackman & Vigna), its 256-bit state filled by splitmix64 from
// (seed, stream). Integer output is fully specified, so it is identical with every compiler
// and standard library. Uniforms take the top 53 bits. Normals use Box-Muller on two
// uniforms with std::log/std::sqrt/std::cos — not std::normal_distribution, whose algorithm
// differs between standard libraries. (sqrt is exact in IEEE arithmetic; log and cos are
// the platform libm's, which agree to the last bit or so.)
#pragma once

#include <cmath>
#include <cstdint>
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

}  // namespace rosetta
