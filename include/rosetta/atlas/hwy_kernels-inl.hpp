// Hand-vectorised atlas kernels on Google Highway, written once and compiled either
//   * for the static target only (hwy_static.hpp includes this file once: the code is
//     built for whatever -march the including translation unit has), or
//   * once per target by hwy/foreach_target.h in benchmark/atlas/hwy_dynamic.cpp, which
//     chooses one of them at run time (HWY_DYNAMIC_DISPATCH).
// ROSETTA_ATLAS_HWY_NS names the enclosing namespace so the two builds never share a
// symbol. Every kernel has the signature void(Buffers&) and the semantics of naive.hpp.
//
// Tails: full vectors are loaded with LoadU; the last partial vector goes through a
// zero-padded stack copy (never a load or store past the end of an array), and its unused
// lanes are masked out of reductions.

// Normal include guards first (these headers handle re-inclusion themselves).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "rosetta/atlas/naive.hpp"

#ifndef ROSETTA_ATLAS_HWY_NS
#define ROSETTA_ATLAS_HWY_NS hwy_static
#endif

#include <hwy/highway.h>
// The contrib header is re-included per target by the same mechanism as this file.
#include <hwy/contrib/math/math-inl.h>

// Per-target include guard (Highway's idiom: toggled by foreach_target.h).
#if defined(ROSETTA_ATLAS_HWY_KERNELS_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROSETTA_ATLAS_HWY_KERNELS_INL_
#undef ROSETTA_ATLAS_HWY_KERNELS_INL_
#else
#define ROSETTA_ATLAS_HWY_KERNELS_INL_
#endif

HWY_BEFORE_NAMESPACE();
namespace rosetta::atlas::ROSETTA_ATLAS_HWY_NS::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VU = hn::Vec<DU>;
inline constexpr std::size_t kMaxLanes = hn::MaxLanes(DF());

// ---- helpers ---------------------------------------------------------------------------------
/// The last n % N elements of x, zero-padded to a whole vector.
HWY_INLINE VF LoadTail(DF d, const float* x, std::size_t rem, float* buf) {
  std::fill_n(buf, hn::Lanes(d), 0.0f);
  std::copy_n(x, rem, buf);
  return hn::Load(d, buf);
}
HWY_INLINE void StoreTail(DF d, VF v, float* y, std::size_t rem, float* buf) {
  hn::Store(v, d, buf);
  std::copy_n(buf, rem, y);
}

/// y[i] = f(x[i]) for i < n (y may alias x).
template <class F>
HWY_INLINE void Map1(const float* x, float* y, std::size_t n, const F& f) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    StoreTail(d, f(LoadTail(d, x + i, n - i, buf)), y + i, n - i, buf);
  }
}
/// y[i] = f(x1[i], x2[i]) for i < n (y may alias an input).
template <class F>
HWY_INLINE void Map2(const float* x1, const float* x2, float* y, std::size_t n, const F& f) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x1 + i), hn::LoadU(d, x2 + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float b1[kMaxLanes];
    HWY_ALIGN float b2[kMaxLanes];
    const VF v1 = LoadTail(d, x1 + i, n - i, b1);
    const VF v2 = LoadTail(d, x2 + i, n - i, b2);
    StoreTail(d, f(v1, v2), y + i, n - i, b1);
  }
}
template <class F>
HWY_INLINE void Map3(const float* x1, const float* x2, const float* x3, float* y, std::size_t n,
                     const F& f) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(f(hn::LoadU(d, x1 + i), hn::LoadU(d, x2 + i), hn::LoadU(d, x3 + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float b1[kMaxLanes];
    HWY_ALIGN float b2[kMaxLanes];
    HWY_ALIGN float b3[kMaxLanes];
    const VF v1 = LoadTail(d, x1 + i, n - i, b1);
    const VF v2 = LoadTail(d, x2 + i, n - i, b2);
    const VF v3 = LoadTail(d, x3 + i, n - i, b3);
    StoreTail(d, f(v1, v2, v3), y + i, n - i, b1);
  }
}

/// Lane-wise reduction with four independent accumulators (all starting at `init`):
/// acc = step(acc, x) per vector, merged with merge(); unused tail lanes read as `pad`.
template <class Step, class Merge>
HWY_INLINE VF Reduce(const float* x, std::size_t n, float init, float pad, const Step& step,
                     const Merge& merge) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  const VF id = hn::Set(d, init);
  VF a0 = id, a1 = id, a2 = id, a3 = id;
  std::size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = step(a0, hn::LoadU(d, x + i));
    a1 = step(a1, hn::LoadU(d, x + i + N));
    a2 = step(a2, hn::LoadU(d, x + i + 2 * N));
    a3 = step(a3, hn::LoadU(d, x + i + 3 * N));
  }
  for (; i + N <= n; i += N) a0 = step(a0, hn::LoadU(d, x + i));
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    const VF t = LoadTail(d, x + i, n - i, buf);
    a1 = step(a1, hn::IfThenElse(hn::FirstN(d, n - i), t, hn::Set(d, pad)));
  }
  return merge(merge(a0, a1), merge(a2, a3));
}

HWY_INLINE float SumLanes(VF v) {
  return hn::GetLane(hn::SumOfLanes(DF(), v));
}
HWY_INLINE float MaxLanes(VF v) {
  return hn::GetLane(hn::MaxOfLanes(DF(), v));
}
HWY_INLINE float MinLanes(VF v) {
  return hn::GetLane(hn::MinOfLanes(DF(), v));
}

HWY_INLINE float SumOf(const float* x, std::size_t n) {
  return SumLanes(Reduce(
      x, n, 0.0f, 0.0f, [](VF a, VF v) HWY_ATTR { return hn::Add(a, v); },
      [](VF a, VF b) HWY_ATTR { return hn::Add(a, b); }));
}
HWY_INLINE float SumSqOf(const float* x, std::size_t n) {
  return SumLanes(Reduce(
      x, n, 0.0f, 0.0f, [](VF a, VF v) HWY_ATTR { return hn::MulAdd(v, v, a); },
      [](VF a, VF b) HWY_ATTR { return hn::Add(a, b); }));
}
HWY_INLINE float MaxOf(const float* x, std::size_t n) {
  return MaxLanes(Reduce(
      x, n, -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
      [](VF a, VF v) HWY_ATTR { return hn::Max(a, v); },
      [](VF a, VF b) HWY_ATTR { return hn::Max(a, b); }));
}

/// sum_i x[i] y[i] with four accumulators.
HWY_INLINE float DotOf(const float* x, const float* y, std::size_t n) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  VF a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  std::size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), a0);
    a1 = hn::MulAdd(hn::LoadU(d, x + i + N), hn::LoadU(d, y + i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(d, x + i + 2 * N), hn::LoadU(d, y + i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(d, x + i + 3 * N), hn::LoadU(d, y + i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(d, x + i), hn::LoadU(d, y + i), a0);
  if (i < n) {
    HWY_ALIGN float b1[kMaxLanes];
    HWY_ALIGN float b2[kMaxLanes];
    a1 = hn::MulAdd(LoadTail(d, x + i, n - i, b1), LoadTail(d, y + i, n - i, b2), a1);
  }
  return SumLanes(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
}

// ---- reductions ------------------------------------------------------------------------------
inline HWY_NOINLINE void k_sum(Buffers& b) {
  b.s[0] = SumOf(b.a.data(), b.shape.len);
}
inline HWY_NOINLINE void k_max(Buffers& b) {
  b.s[0] = MaxOf(b.a.data(), b.shape.len);
}
inline HWY_NOINLINE void k_min(Buffers& b) {
  b.s[0] = MinLanes(Reduce(
      b.a.data(), b.shape.len, std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::infinity(), [](VF a, VF v) HWY_ATTR { return hn::Min(a, v); },
      [](VF a, VF c) HWY_ATTR { return hn::Min(a, c); }));
}
inline HWY_NOINLINE void k_l2norm(Buffers& b) {
  b.s[0] = std::sqrt(SumSqOf(b.a.data(), b.shape.len));
}
inline HWY_NOINLINE void k_absmax(Buffers& b) {
  b.s[0] = MaxLanes(Reduce(
      b.a.data(), b.shape.len, 0.0f, 0.0f,
      [](VF a, VF v) HWY_ATTR { return hn::Max(a, hn::Abs(v)); },
      [](VF a, VF c) HWY_ATTR { return hn::Max(a, c); }));
}
inline HWY_NOINLINE void k_asum(Buffers& b) {
  b.s[0] = SumLanes(Reduce(
      b.a.data(), b.shape.len, 0.0f, 0.0f,
      [](VF a, VF v) HWY_ATTR { return hn::Add(a, hn::Abs(v)); },
      [](VF a, VF c) HWY_ATTR { return hn::Add(a, c); }));
}

// ---- elementwise -------------------------------------------------------------------------------
inline HWY_NOINLINE void k_add(Buffers& b) {
  Map2(b.a.data(), b.b.data(), b.c.data(), b.shape.len,
       [](VF x, VF y) HWY_ATTR { return hn::Add(x, y); });
}
inline HWY_NOINLINE void k_mul(Buffers& b) {
  Map2(b.a.data(), b.b.data(), b.c.data(), b.shape.len,
       [](VF x, VF y) HWY_ATTR { return hn::Mul(x, y); });
}
inline HWY_NOINLINE void k_fma(Buffers& b) {
  Map3(b.a.data(), b.b.data(), b.c.data(), b.d.data(), b.shape.len,
       [](VF x, VF y, VF z) HWY_ATTR { return hn::MulAdd(x, y, z); });
}
inline HWY_NOINLINE void k_clamp(Buffers& b) {
  const DF d;
  const VF lo = hn::Set(d, b.p[0]), hi = hn::Set(d, b.p[1]);
  Map1(b.a.data(), b.b.data(), b.shape.len,
       [lo, hi](VF x) HWY_ATTR { return hn::Min(hn::Max(x, lo), hi); });
}
inline HWY_NOINLINE void k_abs(Buffers& b) {
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR { return hn::Abs(x); });
}
inline HWY_NOINLINE void k_axpy(Buffers& b) {
  const VF alpha = hn::Set(DF(), b.p[0]);
  Map2(b.a.data(), b.b.data(), b.b.data(), b.shape.len,
       [alpha](VF x, VF y) HWY_ATTR { return hn::MulAdd(alpha, x, y); });
}
inline HWY_NOINLINE void k_scale(Buffers& b) {
  const VF alpha = hn::Set(DF(), b.p[0]);
  Map1(b.a.data(), b.a.data(), b.shape.len, [alpha](VF x) HWY_ATTR { return hn::Mul(x, alpha); });
}
inline HWY_NOINLINE void k_copy(Buffers& b) {
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR { return x; });
}

// ---- activations
// ---------------------------------------------------------------------------------
inline HWY_NOINLINE void k_exp(Buffers& b) {
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR { return hn::Exp(DF(), x); });
}
inline HWY_NOINLINE void k_log(Buffers& b) {  // defined for a > 0 (Highway's Log domain)
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR { return hn::Log(DF(), x); });
}
inline HWY_NOINLINE void k_silu(Buffers& b) {
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR {
    const DF d;
    return hn::Div(x, hn::Add(hn::Set(d, 1.0f), hn::Exp(d, hn::Neg(x))));
  });
}
inline HWY_NOINLINE void k_gelu_tanh(Buffers& b) {
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR {
    const DF d;
    const VF x3 = hn::Mul(hn::Mul(x, x), x);
    const VF inner = hn::Mul(hn::Set(d, kGeluK), hn::MulAdd(hn::Set(d, kGeluC), x3, x));
    const VF half_x = hn::Mul(hn::Set(d, 0.5f), x);
    return hn::MulAdd(half_x, hn::Tanh(d, inner), half_x);
  });
}
inline HWY_NOINLINE void k_mish(Buffers& b) {
  Map1(b.a.data(), b.b.data(), b.shape.len, [](VF x) HWY_ATTR {
    const DF d;
    const VF small = hn::Min(x, hn::Set(d, kSoftplusCut));  // keeps exp finite
    const VF softplus =
        hn::IfThenElse(hn::Gt(x, hn::Set(d, kSoftplusCut)), x, hn::Log1p(d, hn::Exp(d, small)));
    return hn::Mul(x, hn::Tanh(d, softplus));
  });
}

// ---- softmax
// ---------------------------------------------------------------------------------------
/// y = exp(x - m) (stored when y != nullptr); returns the sum of the values.
HWY_INLINE float ExpSubSum(const float* x, float* y, std::size_t n, float m) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  const VF vm = hn::Set(d, m);
  VF a0 = hn::Zero(d), a1 = a0;
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF e0 = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    const VF e1 = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i + N), vm));
    if (y) {
      hn::StoreU(e0, d, y + i);
      hn::StoreU(e1, d, y + i + N);
    }
    a0 = hn::Add(a0, e0);
    a1 = hn::Add(a1, e1);
  }
  for (; i + N <= n; i += N) {
    const VF e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    if (y) hn::StoreU(e, d, y + i);
    a0 = hn::Add(a0, e);
  }
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    const VF e = hn::IfThenElseZero(hn::FirstN(d, n - i),
                                    hn::Exp(d, hn::Sub(LoadTail(d, x + i, n - i, buf), vm)));
    if (y) StoreTail(d, e, y + i, n - i, buf);
    a1 = hn::Add(a1, e);
  }
  return SumLanes(hn::Add(a0, a1));
}

inline HWY_NOINLINE void k_softmax(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = b.a.data() + r * C;
    float* y = b.b.data() + r * C;
    const float sum = ExpSubSum(x, y, C, MaxOf(x, C));
    const VF inv = hn::Set(DF(), 1.0f / sum);
    Map1(y, y, C, [inv](VF v) HWY_ATTR { return hn::Mul(v, inv); });
  }
}
inline HWY_NOINLINE void k_log_softmax(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = b.a.data() + r * C;
    const float m = MaxOf(x, C);
    const VF lse = hn::Set(DF(), m + std::log(ExpSubSum(x, nullptr, C, m)));
    Map1(x, b.b.data() + r * C, C, [lse](VF v) HWY_ATTR { return hn::Sub(v, lse); });
  }
}

// ---- normalisation
// -------------------------------------------------------------------------------
inline HWY_NOINLINE void k_rmsnorm(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = b.a.data() + r * C;
    const float inv = 1.0f / std::sqrt(SumSqOf(x, C) / static_cast<float>(C) + b.p[0]);
    const VF vinv = hn::Set(DF(), inv);
    Map2(x, b.c.data(), b.b.data() + r * C, C,
         [vinv](VF v, VF g) HWY_ATTR { return hn::Mul(hn::Mul(v, vinv), g); });
  }
}
inline HWY_NOINLINE void k_layernorm(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  const DF d;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = b.a.data() + r * C;
    const float mean = SumOf(x, C) / static_cast<float>(C);
    const VF vmean = hn::Set(d, mean);
    // Two-pass variance; padded tail lanes read as `mean` and so contribute 0.
    const float var = SumLanes(Reduce(
        x, C, 0.0f, mean,
        [vmean](VF a, VF v) HWY_ATTR {
          const VF c = hn::Sub(v, vmean);
          return hn::MulAdd(c, c, a);
        },
        [](VF a, VF c) HWY_ATTR { return hn::Add(a, c); }));
    const VF vinv = hn::Set(d, 1.0f / std::sqrt(var / static_cast<float>(C) + b.p[0]));
    Map3(x, b.c.data(), b.d.data(), b.b.data() + r * C, C,
         [vmean, vinv](VF v, VF g, VF beta)
             HWY_ATTR { return hn::MulAdd(hn::Mul(hn::Sub(v, vmean), vinv), g, beta); });
  }
}

// ---- attention
// -------------------------------------------------------------------------------------
/// o[0..D) = sum_{j < n} p[j] * V[j][0..D), V rows of length D.
HWY_INLINE void WeightedRows(const float* p, const float* V, std::size_t n, std::size_t D,
                             float* o) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  std::size_t t = 0;
  for (; t + N <= D; t += N) {
    VF acc = hn::Zero(d);
    for (std::size_t j = 0; j < n; ++j)
      acc = hn::MulAdd(hn::Set(d, p[j]), hn::LoadU(d, V + j * D + t), acc);
    hn::StoreU(acc, d, o + t);
  }
  for (; t < D; ++t) {
    float acc = 0;
    for (std::size_t j = 0; j < n; ++j) acc += p[j] * V[j * D + t];
    o[t] = acc;
  }
}

inline HWY_NOINLINE void k_sdpa_causal(Buffers& b) {
  const std::size_t S = b.shape.rows, D = b.shape.cols;
  const float scale = b.p[0];
  for (std::size_t i = 0; i < S; ++i) {
    float* s = b.e.data() + i * S;
    const float* q = b.a.data() + i * D;
    for (std::size_t j = 0; j <= i; ++j) s[j] = DotOf(q, b.b.data() + j * D, D) * scale;
    const float sum = ExpSubSum(s, s, i + 1, MaxOf(s, i + 1));
    const VF inv = hn::Set(DF(), 1.0f / sum);
    Map1(s, s, i + 1, [inv](VF v) HWY_ATTR { return hn::Mul(v, inv); });
    WeightedRows(s, b.c.data(), i + 1, D, b.d.data() + i * D);
  }
}

inline HWY_NOINLINE void k_sdpa_flash(Buffers& b) {
  const std::size_t S = b.shape.rows, D = kHeadDim;
  const float scale = b.p[0];
  const DF d;
  const std::size_t N = hn::Lanes(d);
  HWY_ALIGN float acc[kFlashBr][kHeadDim];
  HWY_ALIGN float pv[kHeadDim];
  float s[kFlashBc], m[kFlashBr], l[kFlashBr];
  for (std::size_t i0 = 0; i0 < S; i0 += kFlashBr) {
    const std::size_t i1 = std::min(S, i0 + kFlashBr);
    for (std::size_t r = 0; r < kFlashBr; ++r) {
      m[r] = -std::numeric_limits<float>::infinity();
      l[r] = 0;
      std::fill_n(acc[r], D, 0.0f);
    }
    for (std::size_t j0 = 0; j0 < i1; j0 += kFlashBc) {
      for (std::size_t i = i0; i < i1; ++i) {
        const std::size_t r = i - i0, j1 = std::min(i + 1, j0 + kFlashBc);
        if (j0 >= j1) continue;
        const std::size_t nj = j1 - j0;
        const float* q = b.a.data() + i * D;
        for (std::size_t j = 0; j < nj; ++j) s[j] = DotOf(q, b.b.data() + (j0 + j) * D, D) * scale;
        const float m_new = std::max(m[r], MaxOf(s, nj));
        const float correction = std::exp(m[r] - m_new);
        l[r] = l[r] * correction + ExpSubSum(s, s, nj, m_new);
        WeightedRows(s, b.c.data() + j0 * D, nj, D, pv);
        const VF corr = hn::Set(d, correction);
        for (std::size_t t = 0; t + N <= D; t += N)
          hn::Store(hn::MulAdd(hn::Load(d, acc[r] + t), corr, hn::Load(d, pv + t)), d, acc[r] + t);
        for (std::size_t t = D - D % N; t < D; ++t) acc[r][t] = acc[r][t] * correction + pv[t];
        m[r] = m_new;
      }
    }
    for (std::size_t i = i0; i < i1; ++i) {
      const VF inv = hn::Set(d, 1.0f / l[i - i0]);
      Map1(acc[i - i0], b.d.data() + i * D, D, [inv](VF v) HWY_ATTR { return hn::Mul(v, inv); });
    }
  }
}

// ---- losses
// ---------------------------------------------------------------------------------------
inline HWY_NOINLINE void k_cross_entropy(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  const float inv_rows = 1.0f / static_cast<float>(R);
  float loss = 0;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = b.a.data() + r * C;
    float* g = b.b.data() + r * C;
    const float m = MaxOf(x, C);
    const float sum = ExpSubSum(x, nullptr, C, m);
    const auto label = static_cast<std::size_t>(b.labels[r]);
    loss += m + std::log(sum) - x[label];
    const DF d;
    const VF vm = hn::Set(d, m), k = hn::Set(d, (1.0f / sum) * inv_rows);
    Map1(x, g, C, [vm, k](VF v) HWY_ATTR { return hn::Mul(hn::Exp(DF(), hn::Sub(v, vm)), k); });
    g[label] -= inv_rows;
  }
  b.s[0] = loss * inv_rows;
}
inline HWY_NOINLINE void k_mse(Buffers& b) {
  const DF d;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  const VF k = hn::Set(d, 2.0f / static_cast<float>(n));
  const float *x = b.a.data(), *y = b.b.data();
  float* g = b.c.data();
  VF a0 = hn::Zero(d), a1 = a0;
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF d0 = hn::Sub(hn::LoadU(d, x + i), hn::LoadU(d, y + i));
    const VF d1 = hn::Sub(hn::LoadU(d, x + i + N), hn::LoadU(d, y + i + N));
    a0 = hn::MulAdd(d0, d0, a0);
    a1 = hn::MulAdd(d1, d1, a1);
    hn::StoreU(hn::Mul(k, d0), d, g + i);
    hn::StoreU(hn::Mul(k, d1), d, g + i + N);
  }
  for (; i + N <= n; i += N) {
    const VF d0 = hn::Sub(hn::LoadU(d, x + i), hn::LoadU(d, y + i));
    a0 = hn::MulAdd(d0, d0, a0);
    hn::StoreU(hn::Mul(k, d0), d, g + i);
  }
  if (i < n) {  // padded lanes are 0 - 0 = 0
    HWY_ALIGN float b1[kMaxLanes];
    HWY_ALIGN float b2[kMaxLanes];
    const VF d0 = hn::Sub(LoadTail(d, x + i, n - i, b1), LoadTail(d, y + i, n - i, b2));
    a1 = hn::MulAdd(d0, d0, a1);
    StoreTail(d, hn::Mul(k, d0), g + i, n - i, b1);
  }
  b.s[0] = SumLanes(hn::Add(a0, a1)) / static_cast<float>(n);
}

// ---- optimisers
// -----------------------------------------------------------------------------------
inline HWY_NOINLINE void k_adamw(Buffers& b) {
  const AdamScalars s = adam_scalars(b);
  const DF d;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  const VF b1 = hn::Set(d, s.b1), c1 = hn::Set(d, 1.0f - s.b1), b2 = hn::Set(d, s.b2),
           c2 = hn::Set(d, 1.0f - s.b2), ib1 = hn::Set(d, s.inv_bc1), ib2 = hn::Set(d, s.inv_bc2),
           eps = hn::Set(d, s.eps), wd = hn::Set(d, s.wd), lr = hn::Set(d, s.lr);
  auto step = [&](VF p, VF g, VF& m, VF& v) HWY_ATTR {
    m = hn::MulAdd(b1, m, hn::Mul(c1, g));
    v = hn::MulAdd(b2, v, hn::Mul(hn::Mul(c2, g), g));
    const VF mhat = hn::Mul(m, ib1), vhat = hn::Mul(v, ib2);
    const VF upd = hn::MulAdd(wd, p, hn::Div(mhat, hn::Add(hn::Sqrt(vhat), eps)));
    return hn::NegMulAdd(lr, upd, p);
  };
  float *P = b.a.data(), *G = b.b.data(), *Mm = b.c.data(), *Vv = b.d.data();
  std::size_t i = 0;
  for (; i + N <= n; i += N) {
    VF m = hn::LoadU(d, Mm + i), v = hn::LoadU(d, Vv + i);
    const VF p = step(hn::LoadU(d, P + i), hn::LoadU(d, G + i), m, v);
    hn::StoreU(p, d, P + i);
    hn::StoreU(m, d, Mm + i);
    hn::StoreU(v, d, Vv + i);
  }
  if (i < n) {
    const std::size_t rem = n - i;
    HWY_ALIGN float bp[kMaxLanes];
    HWY_ALIGN float bg[kMaxLanes];
    HWY_ALIGN float bm[kMaxLanes];
    HWY_ALIGN float bv[kMaxLanes];
    VF m = LoadTail(d, Mm + i, rem, bm), v = LoadTail(d, Vv + i, rem, bv);
    const VF p = step(LoadTail(d, P + i, rem, bp), LoadTail(d, G + i, rem, bg), m, v);
    StoreTail(d, p, P + i, rem, bp);
    StoreTail(d, m, Mm + i, rem, bm);
    StoreTail(d, v, Vv + i, rem, bv);
  }
}
inline HWY_NOINLINE void k_clip_global_norm(Buffers& b) {
  const float norm = std::sqrt(SumSqOf(b.a.data(), b.shape.len));
  const VF k = hn::Set(DF(), clip_scale(norm, b.p[0]));
  Map1(b.a.data(), b.b.data(), b.shape.len, [k](VF v) HWY_ATTR { return hn::Mul(v, k); });
  b.s[0] = norm;
}

// ---- linear algebra
// -------------------------------------------------------------------------------- gemm: C = A B
// (row-major), blocked for the caches: a kKc x kNc panel of B is packed into a contiguous buffer
// whose rows are padded to whole vectors (so the micro-kernel has no column tails); the
// micro-kernel keeps a 4-row x 2-vector block of C in registers and streams the packed panel,
// broadcasting one element of A per row and step.
inline constexpr std::size_t kGemmKc = 256, kGemmNc = 512;

template <std::size_t R>
HWY_INLINE void GemmMicro(const float* A, std::size_t lda, const float* Bp, std::size_t ldb,
                          std::size_t kc, float* C, std::size_t ldc, bool accumulate) {
  const DF d;
  const std::size_t N = hn::Lanes(d);
  VF c00 = hn::Zero(d), c01 = c00;
  [[maybe_unused]] VF c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (std::size_t p = 0; p < kc; ++p) {
    const VF b0 = hn::LoadU(d, Bp + p * ldb), b1 = hn::LoadU(d, Bp + p * ldb + N);
    const VF a0 = hn::Set(d, A[p]);
    c00 = hn::MulAdd(a0, b0, c00);
    c01 = hn::MulAdd(a0, b1, c01);
    if constexpr (R > 1) {
      const VF a1 = hn::Set(d, A[lda + p]);
      c10 = hn::MulAdd(a1, b0, c10);
      c11 = hn::MulAdd(a1, b1, c11);
    }
    if constexpr (R > 2) {
      const VF a2 = hn::Set(d, A[2 * lda + p]);
      c20 = hn::MulAdd(a2, b0, c20);
      c21 = hn::MulAdd(a2, b1, c21);
    }
    if constexpr (R > 3) {
      const VF a3 = hn::Set(d, A[3 * lda + p]);
      c30 = hn::MulAdd(a3, b0, c30);
      c31 = hn::MulAdd(a3, b1, c31);
    }
  }
  auto put = [&](float* c, VF v0, VF v1) HWY_ATTR {
    if (accumulate) {
      v0 = hn::Add(v0, hn::LoadU(d, c));
      v1 = hn::Add(v1, hn::LoadU(d, c + N));
    }
    hn::StoreU(v0, d, c);
    hn::StoreU(v1, d, c + N);
  };
  put(C, c00, c01);
  if constexpr (R > 1) put(C + ldc, c10, c11);
  if constexpr (R > 2) put(C + 2 * ldc, c20, c21);
  if constexpr (R > 3) put(C + 3 * ldc, c30, c31);
}

template <std::size_t R>
HWY_INLINE void GemmRows(const float* A, std::size_t K, const float* Bp, std::size_t ldb,
                         std::size_t kc, float* C, std::size_t ldc, std::size_t nc,
                         bool accumulate) {
  const std::size_t W = 2 * hn::Lanes(DF());
  std::size_t j = 0;
  for (; j + W <= nc; j += W) GemmMicro<R>(A, K, Bp + j, ldb, kc, C + j, ldc, accumulate);
  if (j < nc) {  // the last columns: through a padded copy of the C block
    HWY_ALIGN float tmp[4][2 * kMaxLanes];
    for (std::size_t r = 0; r < R; ++r) {
      std::fill_n(tmp[r], W, 0.0f);
      std::copy_n(C + r * ldc + j, nc - j, tmp[r]);
    }
    GemmMicro<R>(A, K, Bp + j, ldb, kc, tmp[0], 2 * kMaxLanes, accumulate);
    for (std::size_t r = 0; r < R; ++r) std::copy_n(tmp[r], nc - j, C + r * ldc + j);
  }
}

inline HWY_NOINLINE void k_gemm(Buffers& b) {
  const std::size_t M = b.shape.rows, K = b.shape.inner, Ncol = b.shape.cols;
  const std::size_t W = 2 * hn::Lanes(DF());
  const std::size_t ldb = (std::min(kGemmNc, Ncol) + W - 1) / W * W;
  thread_local AVec<float> packed;
  if (packed.size() < kGemmKc * ldb) packed.resize(kGemmKc * ldb);
  const float *A = b.a.data(), *B = b.b.data();
  float* C = b.c.data();
  for (std::size_t j0 = 0; j0 < Ncol; j0 += kGemmNc) {
    const std::size_t nc = std::min(kGemmNc, Ncol - j0);
    for (std::size_t p0 = 0; p0 < K; p0 += kGemmKc) {
      const std::size_t kc = std::min(kGemmKc, K - p0);
      for (std::size_t p = 0; p < kc; ++p) {
        float* dst = packed.data() + p * ldb;
        std::copy_n(B + (p0 + p) * Ncol + j0, nc, dst);
        std::fill(dst + nc, dst + ldb, 0.0f);
      }
      const bool acc = p0 > 0;
      std::size_t i = 0;
      for (; i + 4 <= M; i += 4)
        GemmRows<4>(A + i * K + p0, K, packed.data(), ldb, kc, C + i * Ncol + j0, Ncol, nc, acc);
      for (; i < M; ++i)
        GemmRows<1>(A + i * K + p0, K, packed.data(), ldb, kc, C + i * Ncol + j0, Ncol, nc, acc);
    }
  }
}

inline HWY_NOINLINE void k_gemv(Buffers& b) {
  const std::size_t M = b.shape.rows, Ncol = b.shape.cols;
  const DF d;
  const std::size_t N = hn::Lanes(d);
  const float *A = b.a.data(), *x = b.b.data();
  std::size_t i = 0;
  for (; i + 4 <= M; i += 4) {
    const float *r0 = A + i * Ncol, *r1 = r0 + Ncol, *r2 = r1 + Ncol, *r3 = r2 + Ncol;
    VF a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
    std::size_t j = 0;
    for (; j + N <= Ncol; j += N) {
      const VF xv = hn::LoadU(d, x + j);
      a0 = hn::MulAdd(hn::LoadU(d, r0 + j), xv, a0);
      a1 = hn::MulAdd(hn::LoadU(d, r1 + j), xv, a1);
      a2 = hn::MulAdd(hn::LoadU(d, r2 + j), xv, a2);
      a3 = hn::MulAdd(hn::LoadU(d, r3 + j), xv, a3);
    }
    float t0 = SumLanes(a0), t1 = SumLanes(a1), t2 = SumLanes(a2), t3 = SumLanes(a3);
    for (; j < Ncol; ++j) {
      t0 += r0[j] * x[j];
      t1 += r1[j] * x[j];
      t2 += r2[j] * x[j];
      t3 += r3[j] * x[j];
    }
    b.c[i] = t0;
    b.c[i + 1] = t1;
    b.c[i + 2] = t2;
    b.c[i + 3] = t3;
  }
  for (; i < M; ++i) b.c[i] = DotOf(A + i * Ncol, x, Ncol);
}

inline HWY_NOINLINE void k_gemm_batched(Buffers& b) {
  const hn::CappedTag<float, 16> d;  // a whole number of vectors per 16-float row
  const std::size_t N = hn::Lanes(d), T = 16;
  for (std::size_t m = 0; m < b.shape.batch; ++m) {
    const float* A = b.a.data() + m * T * T;
    const float* B = b.b.data() + m * T * T;
    float* C = b.c.data() + m * T * T;
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t t = 0; t < T; t += N) {
        auto acc = hn::Zero(d);
        for (std::size_t p = 0; p < T; ++p)
          acc = hn::MulAdd(hn::Set(d, A[i * T + p]), hn::LoadU(d, B + p * T + t), acc);
        hn::StoreU(acc, d, C + i * T + t);
      }
  }
}

inline HWY_NOINLINE void k_outer(Buffers& b) {
  const std::size_t M = b.shape.rows, Ncol = b.shape.cols;
  for (std::size_t i = 0; i < M; ++i) {
    const VF ax = hn::Set(DF(), b.p[0] * b.b[i]);
    float* row = b.a.data() + i * Ncol;
    Map2(b.c.data(), row, row, Ncol, [ax](VF y, VF a) HWY_ATTR { return hn::MulAdd(ax, y, a); });
  }
}

// ---- layout
// ------------------------------------------------------------------------------------------
/// Tiles of 32 x 32: each is transposed into a contiguous stack buffer by 4 x 4 blocks in
/// registers (128-bit vectors, two rounds of interleaves: 32-bit lanes, then 64-bit halves),
/// then written out as 32 whole output row segments. Writing the 4 x 4 blocks straight to
/// the output would touch 32 output rows a few bytes at a time; with a power-of-two row
/// length those rows share cache sets and get evicted between writes.
inline HWY_NOINLINE void k_transpose(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  const float* A = b.a.data();
  float* B = b.b.data();
  constexpr std::size_t kTile = 32;
  HWY_ALIGN float tile[kTile * kTile];  // tile[jj * kTile + ii] = A[i0 + ii][j0 + jj]
  for (std::size_t i0 = 0; i0 < R; i0 += kTile) {
    const std::size_t ni = std::min(kTile, R - i0);
    for (std::size_t j0 = 0; j0 < C; j0 += kTile) {
      const std::size_t nj = std::min(kTile, C - j0);
      const float* a0 = A + i0 * C + j0;
      std::size_t ii = 0;
#if HWY_TARGET != HWY_SCALAR  // one-lane vectors: element by element below
      const hn::CappedTag<float, 4> d4;
      if (hn::Lanes(d4) == 4) {
        for (; ii + 4 <= ni; ii += 4) {
          std::size_t jj = 0;
          for (; jj + 4 <= nj; jj += 4) {
            const float* a = a0 + ii * C + jj;
            const auto r0 = hn::LoadU(d4, a), r1 = hn::LoadU(d4, a + C),
                       r2 = hn::LoadU(d4, a + 2 * C), r3 = hn::LoadU(d4, a + 3 * C);
            const auto t0 = hn::InterleaveLower(d4, r0, r1);  // r00 r10 r01 r11
            const auto t1 = hn::InterleaveLower(d4, r2, r3);  // r20 r30 r21 r31
            const auto t2 = hn::InterleaveUpper(d4, r0, r1);  // r02 r12 r03 r13
            const auto t3 = hn::InterleaveUpper(d4, r2, r3);  // r22 r32 r23 r33
            float* o = tile + jj * kTile + ii;
            hn::Store(hn::ConcatLowerLower(d4, t1, t0), d4, o);
            hn::Store(hn::ConcatUpperUpper(d4, t1, t0), d4, o + kTile);
            hn::Store(hn::ConcatLowerLower(d4, t3, t2), d4, o + 2 * kTile);
            hn::Store(hn::ConcatUpperUpper(d4, t3, t2), d4, o + 3 * kTile);
          }
          for (; jj < nj; ++jj)
            for (std::size_t r = 0; r < 4; ++r) tile[jj * kTile + ii + r] = a0[(ii + r) * C + jj];
        }
      }
#endif
      for (; ii < ni; ++ii)
        for (std::size_t jj = 0; jj < nj; ++jj) tile[jj * kTile + ii] = a0[ii * C + jj];
      for (std::size_t jj = 0; jj < nj; ++jj)
        std::copy_n(tile + jj * kTile, ni, B + (j0 + jj) * R + i0);
    }
  }
}
inline HWY_NOINLINE void k_aos_to_soa(Buffers& b) {
  const DF d;
  const std::size_t N = hn::Lanes(d), m = b.shape.rows;
  std::size_t i = 0;
  for (; i + N <= m; i += N) {
    VF x, y, z, w;
    hn::LoadInterleaved4(d, b.a.data() + 4 * i, x, y, z, w);
    hn::StoreU(x, d, b.b.data() + i);
    hn::StoreU(y, d, b.c.data() + i);
    hn::StoreU(z, d, b.d.data() + i);
    hn::StoreU(w, d, b.e.data() + i);
  }
  for (; i < m; ++i) {
    b.b[i] = b.a[4 * i];
    b.c[i] = b.a[4 * i + 1];
    b.d[i] = b.a[4 * i + 2];
    b.e[i] = b.a[4 * i + 3];
  }
}
inline HWY_NOINLINE void k_soa_to_aos(Buffers& b) {
  const DF d;
  const std::size_t N = hn::Lanes(d), m = b.shape.rows;
  std::size_t i = 0;
  for (; i + N <= m; i += N)
    hn::StoreInterleaved4(hn::LoadU(d, b.b.data() + i), hn::LoadU(d, b.c.data() + i),
                          hn::LoadU(d, b.d.data() + i), hn::LoadU(d, b.e.data() + i), d,
                          b.a.data() + 4 * i);
  for (; i < m; ++i) {
    b.a[4 * i] = b.b[i];
    b.a[4 * i + 1] = b.c[i];
    b.a[4 * i + 2] = b.d[i];
    b.a[4 * i + 3] = b.e[i];
  }
}

// ---- scans
// ----------------------------------------------------------------------------------------
/// In-register inclusive scan (log2(N) steps of "add the vector shifted up by k lanes",
/// the shift a full-width TableLookupLanes with zeros shifted in), plus a running carry
/// (the last lane, broadcast).
inline HWY_NOINLINE void k_prefix_sum(Buffers& b) {
  const DF d;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  HWY_ALIGN std::int32_t shift_idx[8][kMaxLanes];
  HWY_ALIGN std::int32_t last_idx[kMaxLanes];
  std::size_t steps = 0;
  for (std::size_t k = 1; k < N; k *= 2, ++steps)
    for (std::size_t l = 0; l < N; ++l)
      shift_idx[steps][l] = static_cast<std::int32_t>(l >= k ? l - k : 0);
  for (std::size_t l = 0; l < N; ++l) last_idx[l] = static_cast<std::int32_t>(N - 1);
  auto scan = [&](VF v) HWY_ATTR {
    std::size_t k = 1;
    for (std::size_t s = 0; s < steps; ++s, k *= 2) {
      const VF shifted = hn::TableLookupLanes(v, hn::SetTableIndices(d, shift_idx[s]));
      v = hn::Add(v, hn::IfThenZeroElse(hn::FirstN(d, k), shifted));
    }
    return v;
  };
  const auto last = hn::SetTableIndices(d, last_idx);
  VF carry = hn::Zero(d);
  const float* x = b.a.data();
  float* y = b.b.data();
  std::size_t i = 0;
  for (; i + N <= n; i += N) {
    const VF v = hn::Add(scan(hn::LoadU(d, x + i)), carry);
    hn::StoreU(v, d, y + i);
    carry = hn::TableLookupLanes(v, last);
  }
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    StoreTail(d, hn::Add(scan(LoadTail(d, x + i, n - i, buf)), carry), y + i, n - i, buf);
  }
}

// ---- dot products
// ----------------------------------------------------------------------------------
inline HWY_NOINLINE void k_dot(Buffers& b) {
  b.s[0] = DotOf(b.a.data(), b.b.data(), b.shape.len);
}
inline HWY_NOINLINE void k_cosine(Buffers& b) {
  const DF d;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  const float *x = b.a.data(), *y = b.b.data();
  VF ab = hn::Zero(d), aa = ab, bb = ab, ab1 = ab, aa1 = ab, bb1 = ab;
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF u = hn::LoadU(d, x + i), v = hn::LoadU(d, y + i);
    const VF u1 = hn::LoadU(d, x + i + N), v1 = hn::LoadU(d, y + i + N);
    ab = hn::MulAdd(u, v, ab);
    aa = hn::MulAdd(u, u, aa);
    bb = hn::MulAdd(v, v, bb);
    ab1 = hn::MulAdd(u1, v1, ab1);
    aa1 = hn::MulAdd(u1, u1, aa1);
    bb1 = hn::MulAdd(v1, v1, bb1);
  }
  for (; i < n; i += N) {
    HWY_ALIGN float b1[kMaxLanes];
    HWY_ALIGN float b2[kMaxLanes];
    const std::size_t rem = std::min(N, n - i);
    const VF u = LoadTail(d, x + i, rem, b1), v = LoadTail(d, y + i, rem, b2);
    ab = hn::MulAdd(u, v, ab);
    aa = hn::MulAdd(u, u, aa);
    bb = hn::MulAdd(v, v, bb);
  }
  const float sab = SumLanes(hn::Add(ab, ab1)), saa = SumLanes(hn::Add(aa, aa1)),
              sbb = SumLanes(hn::Add(bb, bb1));
  b.s[0] = sab / std::sqrt(saa * sbb);
}

// ---- random numbers: the counter-based stream of core.hpp, N counters at a time
// ---------------------
HWY_INLINE VU Fmix32(VU h) {
  const DU du;
  h = hn::Xor(h, hn::ShiftRight<16>(h));
  h = hn::Mul(h, hn::Set(du, 0x85EBCA6Bu));
  h = hn::Xor(h, hn::ShiftRight<13>(h));
  h = hn::Mul(h, hn::Set(du, 0xC2B2AE35u));
  return hn::Xor(h, hn::ShiftRight<16>(h));
}
HWY_INLINE VU RngBits(VU ctr, RngKey k) {
  const DU du;
  return Fmix32(hn::Add(Fmix32(hn::Xor(ctr, hn::Set(du, k.k0))), hn::Set(du, k.k1)));
}
/// Top 24 bits as a float in [0, 1) (| 1 for the open interval (0, 1)).
HWY_INLINE VF Bits24(VU bits, bool open) {
  const DF d;
  const DU du;
  const DI di;
  VU top = hn::ShiftRight<8>(bits);
  if (open) top = hn::Or(top, hn::Set(du, 1u));
  return hn::Mul(hn::ConvertTo(d, hn::BitCast(di, top)), hn::Set(d, 1.0f / 16777216.0f));
}

inline HWY_NOINLINE void k_rand_uniform(Buffers& b) {
  const RngKey key = rng_key(b.seed, b.step++);
  const DF d;
  const DU du;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  float* out = b.a.data();
  VU ctr = hn::Iota(du, 0);
  const VU inc = hn::Set(du, static_cast<std::uint32_t>(N));
  std::size_t i = 0;
  for (; i + N <= n; i += N, ctr = hn::Add(ctr, inc))
    hn::StoreU(Bits24(RngBits(ctr, key), false), d, out + i);
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    StoreTail(d, Bits24(RngBits(ctr, key), false), out + i, n - i, buf);
  }
}
inline HWY_NOINLINE void k_rand_normal(Buffers& b) {
  const RngKey key = rng_key(b.seed, b.step++);
  const DF d;
  const DU du;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  float* out = b.a.data();
  // Pair j (counters 2j, 2j+1) fills out[2j], out[2j+1]; N pairs per step.
  VU c1 = hn::Mul(hn::Iota(du, 0), hn::Set(du, 2u));
  const VU one = hn::Set(du, 1u), inc = hn::Set(du, static_cast<std::uint32_t>(2 * N));
  auto pair = [&](VU c, VF& z0, VF& z1) HWY_ATTR {
    const VF u1 = Bits24(RngBits(c, key), true);
    const VF u2 = Bits24(RngBits(hn::Add(c, one), key), false);
    const VF r = hn::Sqrt(hn::Mul(hn::Set(d, -2.0f), hn::Log(d, u1)));
    const VF t = hn::Mul(hn::Set(d, kTwoPi), u2);
    z0 = hn::Mul(r, hn::Cos(d, t));
    z1 = hn::Mul(r, hn::Sin(d, t));
  };
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N, c1 = hn::Add(c1, inc)) {
    VF z0, z1;
    pair(c1, z0, z1);
    hn::StoreInterleaved2(z0, z1, d, out + i);
  }
  if (i < n) {
    HWY_ALIGN float buf[2 * kMaxLanes];
    VF z0, z1;
    pair(c1, z0, z1);
    hn::StoreInterleaved2(z0, z1, d, buf);
    std::copy_n(buf, n - i, out + i);
  }
}

// ---- quantisation
// ----------------------------------------------------------------------------------
inline HWY_NOINLINE void k_f32_to_bf16(Buffers& b) {
  const DF d;
  const DU du;
  const DI di;
  const hn::Rebind<std::uint16_t, DF> d16;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  auto convert = [&](VF v) HWY_ATTR {
    const VU u = hn::BitCast(du, v);
    const VU lsb = hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u));
    const VU rounded = hn::ShiftRight<16>(hn::Add(hn::Add(u, hn::Set(du, 0x7FFFu)), lsb));
    const VU quiet = hn::Or(hn::ShiftRight<16>(u), hn::Set(du, 0x40u));
    const VU r = hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), quiet, rounded);
    return hn::DemoteTo(d16, hn::BitCast(di, r));  // values <= 0xFFFF: exact
  };
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(convert(hn::LoadU(d, b.a.data() + i)), d16, b.h.data() + i);
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    HWY_ALIGN std::uint16_t out[kMaxLanes];
    hn::Store(convert(LoadTail(d, b.a.data() + i, n - i, buf)), d16, out);
    std::copy_n(out, n - i, b.h.data() + i);
  }
}
inline HWY_NOINLINE void k_bf16_to_f32(Buffers& b) {
  const DF d;
  const DU du;
  const hn::Rebind<std::uint16_t, DF> d16;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  std::size_t i = 0;
  for (; i + N <= n; i += N) {
    const VU wide = hn::PromoteTo(du, hn::LoadU(d16, b.h.data() + i));
    hn::StoreU(hn::BitCast(d, hn::ShiftLeft<16>(wide)), d, b.a.data() + i);
  }
  for (; i < n; ++i) b.a[i] = float_from_bf16(b.h[i]);
}
inline HWY_NOINLINE void k_f32_to_int8(Buffers& b) {
  const DF d;
  const DI di;
  const hn::Rebind<std::int8_t, DF> d8;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  const float amax = MaxLanes(Reduce(
      b.a.data(), n, 0.0f, 0.0f, [](VF a, VF v) HWY_ATTR { return hn::Max(a, hn::Abs(v)); },
      [](VF a, VF c) HWY_ATTR { return hn::Max(a, c); }));
  const VF inv = hn::Set(d, amax > 0 ? 127.0f / amax : 0.0f);
  const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
  auto quant = [&](VF v) HWY_ATTR {
    return hn::DemoteTo(d8, hn::Min(hn::Max(hn::NearestInt(hn::Mul(v, inv)), lo), hi));
  };
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(quant(hn::LoadU(d, b.a.data() + i)), d8, b.q.data() + i);
  if (i < n) {
    HWY_ALIGN float buf[kMaxLanes];
    HWY_ALIGN std::int8_t out[kMaxLanes];
    hn::Store(quant(LoadTail(d, b.a.data() + i, n - i, buf)), d8, out);
    std::copy_n(out, n - i, b.q.data() + i);
  }
  b.s[0] = amax / 127.0f;
}
inline HWY_NOINLINE void k_int8_to_f32(Buffers& b) {
  const DF d;
  const DI di;
  const hn::Rebind<std::int8_t, DF> d8;
  const std::size_t N = hn::Lanes(d), n = b.shape.len;
  const VF scale = hn::Set(d, b.p[0]);
  std::size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, b.q.data() + i))), scale),
               d, b.a.data() + i);
  for (; i < n; ++i) b.a[i] = static_cast<float>(b.q[i]) * b.p[0];
}

/// The target this code was compiled for (for reports).
inline HWY_NOINLINE std::int64_t k_target(Buffers&) {
  return HWY_TARGET;
}

}  // namespace rosetta::atlas::ROSETTA_ATLAS_HWY_NS::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
