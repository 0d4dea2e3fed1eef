// The kernel atlas: one uniform description of many small float32 kernels, each implemented
// by several backends, so that a benchmark and the tests can iterate over all of them.
//
//   Kernel    a descriptor: name, domain, how a size n becomes a Shape, how to fill the
//             Buffers for that shape, bytes and flops per call, which outputs to compare
//             (with a tolerance), and one run function per Backend (nullptr = not there).
//   Buffers   every array a kernel touches; the roles of a..e are documented per kernel.
//   Registry  the table of Kernels; registry() in atlas.hpp builds the one of this build.
//
// A later automatic backend can look a kernel up by name and pick `run[backend]` from a
// (kernel, n) -> Backend table measured by rosetta-atlas: every implementation of a kernel
// has the same signature and reads/writes the same buffers.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rosetta::atlas {

// ---- backends ------------------------------------------------------------------------------
enum class Backend : std::uint8_t { naive, eigen, openblas, blis, hwy_static, hwy_dynamic };
inline constexpr std::size_t kNumBackends = 6;
inline constexpr std::array<std::string_view, kNumBackends> kBackendNames = {
    "naive", "eigen", "openblas", "blis", "hwy_static", "hwy_dynamic"};

constexpr std::string_view name(Backend b) {
  return kBackendNames[static_cast<std::size_t>(b)];
}
constexpr std::size_t index(Backend b) {
  return static_cast<std::size_t>(b);
}
inline std::optional<Backend> backend_from_name(std::string_view s) {
  for (std::size_t i = 0; i < kNumBackends; ++i)
    if (kBackendNames[i] == s) return static_cast<Backend>(i);
  return std::nullopt;
}

// ---- 64-byte aligned storage ------------------------------------------------------------------
template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
};
template <class T>
using AVec = std::vector<T, AlignedAllocator<T>>;

// ---- shapes ----------------------------------------------------------------------------------
/// The problem a kernel solves for a requested size n. Vector kernels use len = n; the
/// others derive rows/cols/inner/batch from n by the rule in Kernel::shape_rule.
struct Shape {
  std::size_t n = 0;       ///< the requested size
  std::size_t len = 0;     ///< vector length (vector kernels) or elements of the main input
  std::size_t rows = 1;    ///< rows / m / sequence length / number of structs
  std::size_t cols = 1;    ///< cols / k / head_dim / row length
  std::size_t inner = 1;   ///< gemm: the inner dimension; batched gemm: matrix order
  std::size_t batch = 1;   ///< batched gemm: number of matrices
  std::size_t reduce = 1;  ///< length of the longest sum behind one output (tolerances)

  std::string str() const {
    auto s = [](std::size_t v) { return std::to_string(v); };
    if (batch > 1) return s(batch) + "x[" + s(rows) + "x" + s(inner) + "x" + s(cols) + "]";
    if (inner > 1) return s(rows) + "x" + s(inner) + "x" + s(cols);
    if (rows > 1) return s(rows) + "x" + s(cols);
    return s(len);
  }
};

/// Integer square root (floor).
constexpr std::size_t isqrt(std::size_t n) {
  std::size_t r = static_cast<std::size_t>(std::sqrt(static_cast<double>(n)));
  while (r * r > n) --r;
  while ((r + 1) * (r + 1) <= n) ++r;
  return r;
}

// ---- buffers ---------------------------------------------------------------------------------
/// Everything a kernel reads or writes. Inputs are filled by Kernel::setup; outputs are
/// allocated (zeroed) there too, so a run function never allocates its outputs.
struct Buffers {
  Shape shape;
  AVec<float> a, b, c, d, e;  ///< float arrays, roles per kernel
  AVec<std::int32_t> labels;  ///< class indices (cross-entropy)
  AVec<std::uint16_t> h;      ///< bfloat16 bit patterns
  AVec<std::int8_t> q;        ///< int8 values
  std::array<float, 4> s{};   ///< scalar results (s[0]: the result; s[1]: auxiliary)
  std::array<float, 8> p{};   ///< scalar parameters (alpha, bounds, learning rate, ...)
  std::uint64_t seed = 0;     ///< random-number kernels: the stream
  std::int64_t step = 0;      ///< AdamW step / random-number call counter (advances per call)
};

/// Which Buffers members a kernel writes (the test compares exactly these).
enum Output : std::uint32_t {
  kOutA = 1u << 0,
  kOutB = 1u << 1,
  kOutC = 1u << 2,
  kOutD = 1u << 3,
  kOutE = 1u << 4,
  kOutS0 = 1u << 5,
  kOutS1 = 1u << 6,
  kOutH = 1u << 7,
  kOutQ = 1u << 8,
};

/// Agreement with the naive reference: |x - ref| <= (abs + rel * |ref|) * g, where
/// g = sqrt(shape.reduce) if `grows` (rounding errors of a sum of r terms in a different
/// order grow like a random walk, ~sqrt(r) eps), else 1. Integers: |x - ref| <= int_diff.
struct Tolerance {
  double rel = 0, abs = 0;
  bool grows = false;
  int int_diff = 0;
  std::string_view why;
};

enum class Bound : std::uint8_t { memory, compute };

using RunFn = void (*)(Buffers&);

struct Kernel {
  std::string_view name, domain;
  std::string_view summary;     ///< the math, one line
  std::string_view shape_rule;  ///< how n maps to the Shape
  Shape (*shape)(std::size_t n) = nullptr;
  void (*setup)(Buffers&, std::uint64_t seed) = nullptr;  ///< b.shape is set before
  double (*bytes)(const Shape&) = nullptr;  ///< compulsory traffic per call (see rosetta-atlas)
  double (*flops)(const Shape&) = nullptr;  ///< floating-point operations per call
  Bound bound = Bound::memory;
  std::uint32_t outputs = 0;  ///< Output bits
  Tolerance tol;
  std::array<RunFn, kNumBackends> run{};

  bool has(Backend b) const { return run[index(b)] != nullptr; }

  /// Buffers for size n, filled from `seed` (the same seed gives the same inputs).
  Buffers make(std::size_t n, std::uint64_t seed) const {
    Buffers buf;
    buf.shape = shape(n);
    setup(buf, seed);
    return buf;
  }
};

class Registry {
 public:
  /// Adds a kernel; it must come with its naive (reference) implementation.
  Kernel& add(Kernel k) {
    if (!k.has(Backend::naive) || !k.shape || !k.setup || !k.bytes || !k.flops)
      throw std::logic_error("atlas: kernel '" + std::string(k.name) + "' is incomplete");
    if (find(k.name))
      throw std::logic_error("atlas: duplicate kernel '" + std::string(k.name) + "'");
    kernels_.push_back(k);
    return kernels_.back();
  }
  /// Registers backend b's implementation of an existing kernel.
  void impl(std::string_view kernel, Backend b, RunFn f) {
    for (auto& k : kernels_)
      if (k.name == kernel) {
        k.run[index(b)] = f;
        return;
      }
    throw std::logic_error("atlas: no kernel '" + std::string(kernel) + "' for backend " +
                           std::string(name(b)));
  }
  const Kernel* find(std::string_view kernel) const {
    for (const auto& k : kernels_)
      if (k.name == kernel) return &k;
    return nullptr;
  }
  std::span<const Kernel> kernels() const { return kernels_; }
  std::vector<std::string_view> domains() const {
    std::vector<std::string_view> out;
    for (const auto& k : kernels_) {
      bool seen = false;
      for (auto d : out) seen = seen || d == k.domain;
      if (!seen) out.push_back(k.domain);
    }
    return out;
  }

 private:
  std::vector<Kernel> kernels_;
};

// ---- counter-based random numbers (shared by every backend that generates them) -----------
// Element i of call `step` of stream `seed` is a pure function of (seed, step, i), so a
// vectorised generator can produce exactly the same sequence as the scalar loop:
//   h = fmix32(fmix32(i ^ k0) + k1),  (k0, k1) = the two halves of splitmix64(seed, step)
// fmix32 is MurmurHash3's finaliser (a bijection of 32-bit words). Counters are 32-bit, so a
// call produces at most 2^32 values.
struct RngKey {
  std::uint32_t k0, k1;
};
inline RngKey rng_key(std::uint64_t seed, std::int64_t step) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(step) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return {static_cast<std::uint32_t>(z), static_cast<std::uint32_t>(z >> 32)};
}
constexpr std::uint32_t fmix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}
constexpr std::uint32_t rng_bits(std::uint32_t i, RngKey k) {
  return fmix32(fmix32(i ^ k.k0) + k.k1);
}
/// [0, 1): the top 24 bits, exactly representable.
constexpr float rng_uniform(std::uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}
/// (0, 1): an odd multiple of 2^-24, so log() of it is finite.
constexpr float rng_open(std::uint32_t bits) {
  return static_cast<float>((bits >> 8) | 1u) * (1.0f / 16777216.0f);
}
inline constexpr float kTwoPi = 6.28318530717958647692f;

// ---- filling inputs ---------------------------------------------------------------------------
/// Deterministic input data (splitmix64 per element; independent of the RNG kernels).
class Filler {
 public:
  explicit Filler(std::uint64_t seed) : state_(seed * 0xD1B54A32D192ED03ull + 1) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) {
    const float u = static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
  }
  void fill(AVec<float>& v, std::size_t n, float lo, float hi) {
    v.resize(n);
    for (auto& x : v) x = uniform(lo, hi);
  }

 private:
  std::uint64_t state_;
};

}  // namespace rosetta::atlas
