// The reference backend of the atlas: plain loops in float, written to be read. Every other
// backend is tested against these functions. Buffer roles are in kernels.hpp.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "rosetta/atlas/core.hpp"

namespace rosetta::atlas {

/// Attention head dimension of the attention kernels.
inline constexpr std::size_t kHeadDim = 64;
/// Tile sizes of the online-softmax attention (query rows x key columns).
inline constexpr std::size_t kFlashBr = 16, kFlashBc = 64;
/// Softplus switches to the identity above this (tanh(20) == 1 in float anyway).
inline constexpr float kSoftplusCut = 20.0f;
/// GELU (tanh form) constants: sqrt(2/pi) and the cubic coefficient.
inline constexpr float kGeluK = 0.7978845608028654f, kGeluC = 0.044715f;

/// float -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN.
inline std::uint16_t bf16_from_float(float x) {
  const auto u = std::bit_cast<std::uint32_t>(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  const std::uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}
inline float float_from_bf16(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

/// AdamW scalars of one step (computed once per call, identically by every backend).
struct AdamScalars {
  float lr, b1, b2, eps, wd, inv_bc1, inv_bc2;
};
/// Advances b.step and returns the scalars of that step (p = {lr, beta1, beta2, eps, wd}).
inline AdamScalars adam_scalars(Buffers& b) {
  const std::int64_t t = ++b.step;
  const double bc1 = 1.0 - std::pow(static_cast<double>(b.p[1]), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(b.p[2]), static_cast<double>(t));
  return {b.p[0],
          b.p[1],
          b.p[2],
          b.p[3],
          b.p[4],
          static_cast<float>(1.0 / bc1),
          static_cast<float>(1.0 / bc2)};
}

/// Scale of the global-norm clip: min(1, max_norm / (norm + 1e-6)).
inline float clip_scale(float norm, float max_norm) {
  return std::min(1.0f, max_norm / (norm + 1e-6f));
}

namespace naive {

// ---- reductions: a[len] -> s[0] ------------------------------------------------------------
inline void sum(Buffers& b) {
  float acc = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) acc += b.a[i];
  b.s[0] = acc;
}
inline void max(Buffers& b) {
  float m = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < b.shape.len; ++i) m = std::max(m, b.a[i]);
  b.s[0] = m;
}
inline void min(Buffers& b) {
  float m = std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < b.shape.len; ++i) m = std::min(m, b.a[i]);
  b.s[0] = m;
}
inline void l2norm(Buffers& b) {
  float acc = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) acc += b.a[i] * b.a[i];
  b.s[0] = std::sqrt(acc);
}
inline void absmax(Buffers& b) {
  float m = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) m = std::max(m, std::fabs(b.a[i]));
  b.s[0] = m;
}
inline void asum(Buffers& b) {
  float acc = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) acc += std::fabs(b.a[i]);
  b.s[0] = acc;
}

// ---- elementwise ---------------------------------------------------------------------------
inline void add(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.c[i] = b.a[i] + b.b[i];
}
inline void mul(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.c[i] = b.a[i] * b.b[i];
}
inline void fma(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.d[i] = b.a[i] * b.b[i] + b.c[i];
}
inline void clamp(Buffers& b) {
  const float lo = b.p[0], hi = b.p[1];
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = std::min(std::max(b.a[i], lo), hi);
}
inline void abs(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = std::fabs(b.a[i]);
}
inline void axpy(Buffers& b) {
  const float alpha = b.p[0];
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] += alpha * b.a[i];
}
inline void scale(Buffers& b) {
  const float alpha = b.p[0];
  for (std::size_t i = 0; i < b.shape.len; ++i) b.a[i] *= alpha;
}
inline void copy(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = b.a[i];
}

// ---- activations: b = f(a) --------------------------------------------------------------------
inline void exp(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = std::exp(b.a[i]);
}
inline void log(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = std::log(b.a[i]);
}
inline void silu(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = b.a[i] / (1.0f + std::exp(-b.a[i]));
}
inline void gelu_tanh(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) {
    const float x = b.a[i];
    b.b[i] = 0.5f * x * (1.0f + std::tanh(kGeluK * (x + kGeluC * x * x * x)));
  }
}
inline void mish(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) {
    const float x = b.a[i];
    const float softplus = x > kSoftplusCut ? x : std::log1p(std::exp(x));
    b.b[i] = x * std::tanh(softplus);
  }
}

// ---- softmax over rows: a[rows x cols] -> b ----------------------------------------------------
inline void softmax(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = &b.a[r * C];
    float* y = &b.b[r * C];
    float m = x[0];
    for (std::size_t j = 1; j < C; ++j) m = std::max(m, x[j]);
    float sum = 0;
    for (std::size_t j = 0; j < C; ++j) {
      y[j] = std::exp(x[j] - m);
      sum += y[j];
    }
    for (std::size_t j = 0; j < C; ++j) y[j] /= sum;
  }
}
inline void log_softmax(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = &b.a[r * C];
    float* y = &b.b[r * C];
    float m = x[0];
    for (std::size_t j = 1; j < C; ++j) m = std::max(m, x[j]);
    float sum = 0;
    for (std::size_t j = 0; j < C; ++j) sum += std::exp(x[j] - m);
    const float lse = m + std::log(sum);
    for (std::size_t j = 0; j < C; ++j) y[j] = x[j] - lse;
  }
}

// ---- normalisation over rows: a[rows x cols], gain c[cols] (bias d[cols]) -> b -----------------
inline void rmsnorm(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = &b.a[r * C];
    float ss = 0;
    for (std::size_t j = 0; j < C; ++j) ss += x[j] * x[j];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(C) + b.p[0]);
    for (std::size_t j = 0; j < C; ++j) b.b[r * C + j] = x[j] * inv * b.c[j];
  }
}
inline void layernorm(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = &b.a[r * C];
    float sum = 0;
    for (std::size_t j = 0; j < C; ++j) sum += x[j];
    const float mean = sum / static_cast<float>(C);
    float var = 0;
    for (std::size_t j = 0; j < C; ++j) var += (x[j] - mean) * (x[j] - mean);
    const float inv = 1.0f / std::sqrt(var / static_cast<float>(C) + b.p[0]);
    for (std::size_t j = 0; j < C; ++j) b.b[r * C + j] = (x[j] - mean) * inv * b.c[j] + b.d[j];
  }
}

// ---- attention: Q a, K b, V c [S x 64] -> O d; scores e[S x S] (sdpa_causal only) --------------
inline void sdpa_causal(Buffers& b) {
  const std::size_t S = b.shape.rows, D = b.shape.cols;
  const float scale = b.p[0];
  for (std::size_t i = 0; i < S; ++i) {
    float* s = &b.e[i * S];
    for (std::size_t j = 0; j <= i; ++j) {
      float dot = 0;
      for (std::size_t t = 0; t < D; ++t) dot += b.a[i * D + t] * b.b[j * D + t];
      s[j] = dot * scale;
    }
    float m = s[0];
    for (std::size_t j = 1; j <= i; ++j) m = std::max(m, s[j]);
    float sum = 0;
    for (std::size_t j = 0; j <= i; ++j) {
      s[j] = std::exp(s[j] - m);
      sum += s[j];
    }
    for (std::size_t j = 0; j <= i; ++j) s[j] /= sum;
    for (std::size_t t = 0; t < D; ++t) {
      float o = 0;
      for (std::size_t j = 0; j <= i; ++j) o += s[j] * b.c[j * D + t];
      b.d[i * D + t] = o;
    }
  }
}
/// Online softmax over key tiles of kFlashBc for query tiles of kFlashBr rows: only a
/// kFlashBr x kFlashBc tile of scores exists at any time, never the S x S matrix.
inline void sdpa_flash(Buffers& b) {
  const std::size_t S = b.shape.rows, D = kHeadDim;
  const float scale = b.p[0];
  for (std::size_t i0 = 0; i0 < S; i0 += kFlashBr) {
    const std::size_t i1 = std::min(S, i0 + kFlashBr);
    float m[kFlashBr], l[kFlashBr], acc[kFlashBr][kHeadDim];
    for (std::size_t r = 0; r < kFlashBr; ++r) {
      m[r] = -std::numeric_limits<float>::infinity();
      l[r] = 0;
      for (std::size_t t = 0; t < D; ++t) acc[r][t] = 0;
    }
    for (std::size_t j0 = 0; j0 < i1; j0 += kFlashBc) {
      for (std::size_t i = i0; i < i1; ++i) {
        const std::size_t r = i - i0, j1 = std::min(i + 1, j0 + kFlashBc);
        if (j0 >= j1) continue;  // the whole key tile is in this row's future
        float s[kFlashBc];
        float tile_max = -std::numeric_limits<float>::infinity();
        for (std::size_t j = j0; j < j1; ++j) {
          float dot = 0;
          for (std::size_t t = 0; t < D; ++t) dot += b.a[i * D + t] * b.b[j * D + t];
          s[j - j0] = dot * scale;
          tile_max = std::max(tile_max, s[j - j0]);
        }
        const float m_new = std::max(m[r], tile_max);
        const float correction = std::exp(m[r] - m_new);
        l[r] *= correction;
        for (std::size_t t = 0; t < D; ++t) acc[r][t] *= correction;
        for (std::size_t j = j0; j < j1; ++j) {
          const float p = std::exp(s[j - j0] - m_new);
          l[r] += p;
          for (std::size_t t = 0; t < D; ++t) acc[r][t] += p * b.c[j * D + t];
        }
        m[r] = m_new;
      }
    }
    for (std::size_t i = i0; i < i1; ++i)
      for (std::size_t t = 0; t < D; ++t) b.d[i * D + t] = acc[i - i0][t] / l[i - i0];
  }
}

// ---- losses -------------------------------------------------------------------------------------
/// Logits a[rows x cols], labels[rows] -> s[0] = mean cross-entropy, b = d loss / d logits.
inline void cross_entropy(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  const float inv_rows = 1.0f / static_cast<float>(R);
  float loss = 0;
  for (std::size_t r = 0; r < R; ++r) {
    const float* x = &b.a[r * C];
    float* g = &b.b[r * C];
    float m = x[0];
    for (std::size_t j = 1; j < C; ++j) m = std::max(m, x[j]);
    float sum = 0;
    for (std::size_t j = 0; j < C; ++j) sum += std::exp(x[j] - m);
    const auto label = static_cast<std::size_t>(b.labels[r]);
    loss += m + std::log(sum) - x[label];
    const float inv_sum = 1.0f / sum;
    for (std::size_t j = 0; j < C; ++j) g[j] = std::exp(x[j] - m) * inv_sum * inv_rows;
    g[label] -= inv_rows;
  }
  b.s[0] = loss * inv_rows;
}
/// Prediction a, target b -> s[0] = mean (a - b)^2, c = 2 (a - b) / len.
inline void mse(Buffers& b) {
  const std::size_t n = b.shape.len;
  const float k = 2.0f / static_cast<float>(n);
  float acc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float diff = b.a[i] - b.b[i];
    acc += diff * diff;
    b.c[i] = k * diff;
  }
  b.s[0] = acc / static_cast<float>(n);
}

// ---- optimisers ---------------------------------------------------------------------------------
/// Params a, gradient b, first moment c, second moment d (in place), one AdamW step.
inline void adamw(Buffers& b) {
  const AdamScalars k = adam_scalars(b);
  for (std::size_t i = 0; i < b.shape.len; ++i) {
    const float g = b.b[i];
    b.c[i] = k.b1 * b.c[i] + (1.0f - k.b1) * g;
    b.d[i] = k.b2 * b.d[i] + (1.0f - k.b2) * g * g;
    const float mhat = b.c[i] * k.inv_bc1, vhat = b.d[i] * k.inv_bc2;
    b.a[i] -= k.lr * (mhat / (std::sqrt(vhat) + k.eps) + k.wd * b.a[i]);
  }
}
/// Gradient a -> s[0] = ||a||, b = a * min(1, max_norm / (||a|| + 1e-6)), max_norm = p[0].
inline void clip_global_norm(Buffers& b) {
  float ss = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) ss += b.a[i] * b.a[i];
  const float norm = std::sqrt(ss);
  const float k = clip_scale(norm, b.p[0]);
  for (std::size_t i = 0; i < b.shape.len; ++i) b.b[i] = b.a[i] * k;
  b.s[0] = norm;
}

// ---- linear algebra (row-major) ----------------------------------------------------------------
/// C c[m x n] = A a[m x k] * B b[k x n], in i-p-j order (unit stride in the inner loop).
inline void gemm(Buffers& b) {
  const std::size_t M = b.shape.rows, K = b.shape.inner, N = b.shape.cols;
  for (std::size_t i = 0; i < M; ++i) {
    float* c = &b.c[i * N];
    for (std::size_t j = 0; j < N; ++j) c[j] = 0;
    for (std::size_t p = 0; p < K; ++p) {
      const float aip = b.a[i * K + p];
      for (std::size_t j = 0; j < N; ++j) c[j] += aip * b.b[p * N + j];
    }
  }
}
/// y c[rows] = A a[rows x cols] * x b[cols].
inline void gemv(Buffers& b) {
  const std::size_t M = b.shape.rows, N = b.shape.cols;
  for (std::size_t i = 0; i < M; ++i) {
    float acc = 0;
    for (std::size_t j = 0; j < N; ++j) acc += b.a[i * N + j] * b.b[j];
    b.c[i] = acc;
  }
}
/// batch x (C = A * B) on 16 x 16 matrices stored back to back.
inline void gemm_batched(Buffers& b) {
  const std::size_t T = b.shape.inner, mat = T * T;
  for (std::size_t m = 0; m < b.shape.batch; ++m) {
    const float* A = &b.a[m * mat];
    const float* B = &b.b[m * mat];
    float* C = &b.c[m * mat];
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < T; ++j) {
        float acc = 0;
        for (std::size_t p = 0; p < T; ++p) acc += A[i * T + p] * B[p * T + j];
        C[i * T + j] = acc;
      }
  }
}
/// Outer product (BLAS ger): A a[rows x cols] += alpha * x b[rows] * y c[cols]^T.
inline void outer(Buffers& b) {
  const std::size_t M = b.shape.rows, N = b.shape.cols;
  const float alpha = b.p[0];
  for (std::size_t i = 0; i < M; ++i) {
    const float ax = alpha * b.b[i];
    for (std::size_t j = 0; j < N; ++j) b.a[i * N + j] += ax * b.c[j];
  }
}

// ---- layout -------------------------------------------------------------------------------------
/// b[cols x rows] = a[rows x cols]^T.
inline void transpose(Buffers& b) {
  const std::size_t R = b.shape.rows, C = b.shape.cols;
  for (std::size_t i = 0; i < R; ++i)
    for (std::size_t j = 0; j < C; ++j) b.b[j * R + i] = b.a[i * C + j];
}
/// a = rows structs {x, y, z, w} -> b = x[], c = y[], d = z[], e = w[].
inline void aos_to_soa(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.rows; ++i) {
    b.b[i] = b.a[4 * i + 0];
    b.c[i] = b.a[4 * i + 1];
    b.d[i] = b.a[4 * i + 2];
    b.e[i] = b.a[4 * i + 3];
  }
}
/// b, c, d, e -> a (the inverse of aos_to_soa).
inline void soa_to_aos(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.rows; ++i) {
    b.a[4 * i + 0] = b.b[i];
    b.a[4 * i + 1] = b.c[i];
    b.a[4 * i + 2] = b.d[i];
    b.a[4 * i + 3] = b.e[i];
  }
}

// ---- scans --------------------------------------------------------------------------------------
/// Inclusive prefix sum: b[i] = a[0] + ... + a[i].
inline void prefix_sum(Buffers& b) {
  float acc = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) {
    acc += b.a[i];
    b.b[i] = acc;
  }
}

// ---- dot products -------------------------------------------------------------------------------
inline void dot(Buffers& b) {
  float acc = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) acc += b.a[i] * b.b[i];
  b.s[0] = acc;
}
/// s[0] = a.b / (||a|| ||b||).
inline void cosine(Buffers& b) {
  float ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) {
    ab += b.a[i] * b.b[i];
    aa += b.a[i] * b.a[i];
    bb += b.b[i] * b.b[i];
  }
  b.s[0] = ab / std::sqrt(aa * bb);
}

// ---- random numbers (see rng_bits in core.hpp); every call advances b.step ----------------------
inline void rand_uniform(Buffers& b) {
  const RngKey key = rng_key(b.seed, b.step++);
  for (std::size_t i = 0; i < b.shape.len; ++i)
    b.a[i] = rng_uniform(rng_bits(static_cast<std::uint32_t>(i), key));
}
/// Box-Muller on the pair of counters (2j, 2j+1): a[2j] = r cos(t), a[2j+1] = r sin(t).
inline void rand_normal(Buffers& b) {
  const RngKey key = rng_key(b.seed, b.step++);
  const std::size_t n = b.shape.len;
  for (std::size_t j = 0; 2 * j < n; ++j) {
    const float u1 = rng_open(rng_bits(static_cast<std::uint32_t>(2 * j), key));
    const float u2 = rng_uniform(rng_bits(static_cast<std::uint32_t>(2 * j + 1), key));
    const float r = std::sqrt(-2.0f * std::log(u1)), t = kTwoPi * u2;
    b.a[2 * j] = r * std::cos(t);
    if (2 * j + 1 < n) b.a[2 * j + 1] = r * std::sin(t);
  }
}

// ---- quantisation -------------------------------------------------------------------------------
inline void f32_to_bf16(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.h[i] = bf16_from_float(b.a[i]);
}
inline void bf16_to_f32(Buffers& b) {
  for (std::size_t i = 0; i < b.shape.len; ++i) b.a[i] = float_from_bf16(b.h[i]);
}
/// Symmetric per-tensor int8: s[0] = max|a| / 127, q = rint(a * 127 / max|a|) in [-127, 127].
inline void f32_to_int8(Buffers& b) {
  float amax = 0;
  for (std::size_t i = 0; i < b.shape.len; ++i) amax = std::max(amax, std::fabs(b.a[i]));
  const float inv = amax > 0 ? 127.0f / amax : 0.0f;
  for (std::size_t i = 0; i < b.shape.len; ++i) {
    const float r = std::nearbyint(b.a[i] * inv);
    b.q[i] = static_cast<std::int8_t>(std::min(127.0f, std::max(-127.0f, r)));
  }
  b.s[0] = amax / 127.0f;
}
/// a = q * p[0].
inline void int8_to_f32(Buffers& b) {
  const float scale = b.p[0];
  for (std::size_t i = 0; i < b.shape.len; ++i) b.a[i] = static_cast<float>(b.q[i]) * scale;
}

}  // namespace naive
}  // namespace rosetta::atlas
