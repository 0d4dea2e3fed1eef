// The eigen backend of the atlas: Eigen expressions over Eigen::Map views of the buffers
// (no copies). Eigen vectorises them with its own packet math (exp, log, tanh, ...).
// Not registered: prefix_sum (Eigen has no scan) and the random-number kernels (Eigen has no
// counter-based generator). Needs ROSETTA_HAS_EIGEN (link rosetta::eigen).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "rosetta/atlas/core.hpp"
#include "rosetta/atlas/naive.hpp"

namespace rosetta::atlas {
namespace eigen_impl {

using Idx = Eigen::Index;
using Arr = Eigen::Map<Eigen::ArrayXf>;
using CArr = Eigen::Map<const Eigen::ArrayXf>;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Mat = Eigen::Map<RowMat>;

inline Idx ix(std::size_t n) {
  return static_cast<Idx>(n);
}
inline Arr arr(AVec<float>& v, std::size_t n, std::size_t off = 0) {
  return Arr(v.data() + off, ix(n));
}
inline Mat mat(AVec<float>& v, std::size_t r, std::size_t c) {
  return Mat(v.data(), ix(r), ix(c));
}
inline Arr vec(Buffers& b, AVec<float>& v) {
  return arr(v, b.shape.len);
}

/// Online-softmax tile state: at most kFlashBr x kFlashBc scores, no heap allocation.
using Tile =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor, kFlashBr, kFlashBc>;
using Acc = Eigen::Matrix<float, Eigen::Dynamic, static_cast<int>(kHeadDim), Eigen::RowMajor,
                          kFlashBr, static_cast<int>(kHeadDim)>;
using ColF = Eigen::Array<float, Eigen::Dynamic, 1, 0, kFlashBr, 1>;

inline void sdpa_flash(Buffers& b) {
  const std::size_t S = b.shape.rows, D = kHeadDim;
  const float scale = b.p[0];
  auto Q = mat(b.a, S, D), K = mat(b.b, S, D), V = mat(b.c, S, D), O = mat(b.d, S, D);
  for (std::size_t i0 = 0; i0 < S; i0 += kFlashBr) {
    const std::size_t br = std::min(kFlashBr, S - i0);
    Acc acc = Acc::Zero(ix(br), ix(D));
    ColF m = ColF::Constant(ix(br), -std::numeric_limits<float>::infinity());
    ColF l = ColF::Zero(ix(br));
    for (std::size_t j0 = 0; j0 < i0 + br; j0 += kFlashBc) {
      const std::size_t bc = std::min(kFlashBc, i0 + br - j0);
      Tile s(ix(br), ix(bc));
      s.noalias() =
          scale * (Q.middleRows(ix(i0), ix(br)) * K.middleRows(ix(j0), ix(bc)).transpose());
      for (std::size_t r = 0; r < br; ++r)  // causal mask: key j0 + c > query i0 + r
        for (std::size_t c = 0; c < bc; ++c)
          if (j0 + c > i0 + r) s(ix(r), ix(c)) = -std::numeric_limits<float>::infinity();
      const ColF m_new = m.max(s.rowwise().maxCoeff().array());
      const ColF corr = (m - m_new).exp();
      Tile p = (s.array().colwise() - m_new).exp().matrix();
      l = l * corr + p.rowwise().sum().array();
      acc = corr.matrix().asDiagonal() * acc;
      acc.noalias() += p * V.middleRows(ix(j0), ix(bc));
      m = m_new;
    }
    O.middleRows(ix(i0), ix(br)) = l.inverse().matrix().asDiagonal() * acc;
  }
}

}  // namespace eigen_impl

inline void register_eigen(Registry& r) {
  using namespace eigen_impl;
  using B = Buffers;
  constexpr auto E = Backend::eigen;
  // ---- reductions
  r.impl("sum", E, [](B& b) { b.s[0] = vec(b, b.a).sum(); });
  r.impl("max", E, [](B& b) { b.s[0] = vec(b, b.a).maxCoeff(); });
  r.impl("min", E, [](B& b) { b.s[0] = vec(b, b.a).minCoeff(); });
  r.impl("l2norm", E, [](B& b) { b.s[0] = vec(b, b.a).matrix().norm(); });
  r.impl("absmax", E, [](B& b) { b.s[0] = vec(b, b.a).abs().maxCoeff(); });
  r.impl("asum", E, [](B& b) { b.s[0] = vec(b, b.a).abs().sum(); });
  // ---- elementwise
  r.impl("add", E, [](B& b) { vec(b, b.c) = vec(b, b.a) + vec(b, b.b); });
  r.impl("mul", E, [](B& b) { vec(b, b.c) = vec(b, b.a) * vec(b, b.b); });
  r.impl("fma", E, [](B& b) { vec(b, b.d) = vec(b, b.a) * vec(b, b.b) + vec(b, b.c); });
  r.impl("clamp", E, [](B& b) { vec(b, b.b) = vec(b, b.a).max(b.p[0]).min(b.p[1]); });
  r.impl("abs", E, [](B& b) { vec(b, b.b) = vec(b, b.a).abs(); });
  r.impl("axpy", E, [](B& b) { vec(b, b.b) += b.p[0] * vec(b, b.a); });
  r.impl("scale", E, [](B& b) { vec(b, b.a) *= b.p[0]; });
  r.impl("copy", E, [](B& b) { vec(b, b.b) = vec(b, b.a); });
  // ---- activations
  r.impl("exp", E, [](B& b) { vec(b, b.b) = vec(b, b.a).exp(); });
  r.impl("log", E, [](B& b) { vec(b, b.b) = vec(b, b.a).log(); });
  r.impl("silu", E, [](B& b) {
    auto x = vec(b, b.a);
    vec(b, b.b) = x / (1.0f + (-x).exp());
  });
  r.impl("gelu_tanh", E, [](B& b) {
    auto x = vec(b, b.a);
    vec(b, b.b) = 0.5f * x * (1.0f + (kGeluK * (x + kGeluC * x.cube())).tanh());
  });
  r.impl("mish", E, [](B& b) {
    auto x = vec(b, b.a);
    vec(b, b.b) = x * (x > kSoftplusCut).select(x, x.min(kSoftplusCut).exp().log1p()).tanh();
  });
  // ---- softmax (row by row: each row is a contiguous segment)
  r.impl("softmax", E, [](B& b) {
    const std::size_t C = b.shape.cols;
    for (std::size_t row = 0; row < b.shape.rows; ++row) {
      auto x = arr(b.a, C, row * C);
      auto y = arr(b.b, C, row * C);
      y = (x - x.maxCoeff()).exp();
      y *= 1.0f / y.sum();
    }
  });
  r.impl("log_softmax", E, [](B& b) {
    const std::size_t C = b.shape.cols;
    for (std::size_t row = 0; row < b.shape.rows; ++row) {
      auto x = arr(b.a, C, row * C);
      const float m = x.maxCoeff();
      arr(b.b, C, row * C) = x - (m + std::log((x - m).exp().sum()));
    }
  });
  // ---- normalisation
  r.impl("rmsnorm", E, [](B& b) {
    const std::size_t C = b.shape.cols;
    auto g = arr(b.c, C);
    for (std::size_t row = 0; row < b.shape.rows; ++row) {
      auto x = arr(b.a, C, row * C);
      const float inv = 1.0f / std::sqrt(x.square().sum() / static_cast<float>(C) + b.p[0]);
      arr(b.b, C, row * C) = x * inv * g;
    }
  });
  r.impl("layernorm", E, [](B& b) {
    const std::size_t C = b.shape.cols;
    auto g = arr(b.c, C);
    auto beta = arr(b.d, C);
    for (std::size_t row = 0; row < b.shape.rows; ++row) {
      auto x = arr(b.a, C, row * C);
      const float mean = x.sum() / static_cast<float>(C);
      const float var = (x - mean).square().sum() / static_cast<float>(C);
      const float inv = 1.0f / std::sqrt(var + b.p[0]);
      arr(b.b, C, row * C) = (x - mean) * inv * g + beta;
    }
  });
  // ---- attention
  r.impl("sdpa_causal", E, [](B& b) {
    const std::size_t S = b.shape.rows, D = b.shape.cols;
    auto Q = mat(b.a, S, D), K = mat(b.b, S, D), V = mat(b.c, S, D), O = mat(b.d, S, D);
    auto P = mat(b.e, S, S);
    // Only the lower triangle of Q K^T is computed (Eigen's triangular product assignment).
    P.triangularView<Eigen::Lower>() = (b.p[0] * Q) * K.transpose();
    for (std::size_t i = 0; i < S; ++i) {
      auto row = P.row(ix(i)).head(ix(i + 1)).array();
      row = (row - row.maxCoeff()).exp();
      row *= 1.0f / row.sum();
    }
    O.noalias() = P.triangularView<Eigen::Lower>() * V;
  });
  r.impl("sdpa_flash", E, &eigen_impl::sdpa_flash);
  // ---- losses
  r.impl("cross_entropy", E, [](B& b) {
    const std::size_t R = b.shape.rows, C = b.shape.cols;
    const float inv_rows = 1.0f / static_cast<float>(R);
    float loss = 0;
    for (std::size_t row = 0; row < R; ++row) {
      auto x = arr(b.a, C, row * C);
      auto g = arr(b.b, C, row * C);
      const float m = x.maxCoeff();
      g = (x - m).exp();
      const float sum = g.sum();
      const auto label = static_cast<Idx>(b.labels[row]);
      loss += m + std::log(sum) - x(label);
      g *= (1.0f / sum) * inv_rows;
      g(label) -= inv_rows;
    }
    b.s[0] = loss * inv_rows;
  });
  r.impl("mse", E, [](B& b) {
    const Arr x = vec(b, b.a), y = vec(b, b.b);
    vec(b, b.c) = (2.0f / static_cast<float>(b.shape.len)) * (x - y);
    b.s[0] = (x - y).square().sum() / static_cast<float>(b.shape.len);
  });
  // ---- optimisers
  r.impl("adamw", E, [](B& b) {
    const AdamScalars k = adam_scalars(b);
    auto p = vec(b, b.a), g = vec(b, b.b), m = vec(b, b.c), v = vec(b, b.d);
    m = k.b1 * m + (1.0f - k.b1) * g;
    v = k.b2 * v + (1.0f - k.b2) * g.square();
    p -= k.lr * ((m * k.inv_bc1) / ((v * k.inv_bc2).sqrt() + k.eps) + k.wd * p);
  });
  r.impl("clip_global_norm", E, [](B& b) {
    const float norm = vec(b, b.a).matrix().norm();
    vec(b, b.b) = vec(b, b.a) * clip_scale(norm, b.p[0]);
    b.s[0] = norm;
  });
  // ---- linear algebra
  r.impl("gemm", E, [](B& b) {
    const auto& s = b.shape;
    mat(b.c, s.rows, s.cols).noalias() = mat(b.a, s.rows, s.inner) * mat(b.b, s.inner, s.cols);
  });
  r.impl("gemv", E, [](B& b) {
    const auto& s = b.shape;
    arr(b.c, s.rows).matrix().noalias() = mat(b.a, s.rows, s.cols) * arr(b.b, s.cols).matrix();
  });
  r.impl("gemm_batched", E, [](B& b) {
    using M16 = Eigen::Matrix<float, 16, 16, Eigen::RowMajor>;
    for (std::size_t m = 0; m < b.shape.batch; ++m) {
      Eigen::Map<const M16> A(b.a.data() + m * 256), Bm(b.b.data() + m * 256);
      Eigen::Map<M16>(b.c.data() + m * 256).noalias() = A * Bm;
    }
  });
  r.impl("outer", E, [](B& b) {
    const auto& s = b.shape;
    mat(b.a, s.rows, s.cols).noalias() +=
        (b.p[0] * arr(b.b, s.rows).matrix()) * arr(b.c, s.cols).matrix().transpose();
  });
  // ---- layout
  r.impl("transpose", E, [](B& b) {
    const auto& s = b.shape;
    mat(b.b, s.cols, s.rows).noalias() = mat(b.a, s.rows, s.cols).transpose();
  });
  using Aos = Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor>>;
  r.impl("aos_to_soa", E, [](B& b) {
    const Idx m = ix(b.shape.rows);
    Aos a(b.a.data(), m, 4);
    arr(b.b, b.shape.rows).matrix() = a.col(0);
    arr(b.c, b.shape.rows).matrix() = a.col(1);
    arr(b.d, b.shape.rows).matrix() = a.col(2);
    arr(b.e, b.shape.rows).matrix() = a.col(3);
  });
  r.impl("soa_to_aos", E, [](B& b) {
    const Idx m = ix(b.shape.rows);
    Aos a(b.a.data(), m, 4);
    a.col(0) = arr(b.b, b.shape.rows).matrix();
    a.col(1) = arr(b.c, b.shape.rows).matrix();
    a.col(2) = arr(b.d, b.shape.rows).matrix();
    a.col(3) = arr(b.e, b.shape.rows).matrix();
  });
  // ---- dot products
  r.impl("dot", E, [](B& b) { b.s[0] = vec(b, b.a).matrix().dot(vec(b, b.b).matrix()); });
  r.impl("cosine", E, [](B& b) {
    auto x = vec(b, b.a).matrix(), y = vec(b, b.b).matrix();
    b.s[0] = x.dot(y) / std::sqrt(x.squaredNorm() * y.squaredNorm());
  });
  // ---- quantisation (Eigen::bfloat16 rounds to nearest even)
  r.impl("f32_to_bf16", E, [](B& b) {
    Eigen::Map<Eigen::Array<Eigen::bfloat16, Eigen::Dynamic, 1>> h(
        reinterpret_cast<Eigen::bfloat16*>(b.h.data()), ix(b.shape.len));
    h = vec(b, b.a).cast<Eigen::bfloat16>();
  });
  r.impl("bf16_to_f32", E, [](B& b) {
    Eigen::Map<const Eigen::Array<Eigen::bfloat16, Eigen::Dynamic, 1>> h(
        reinterpret_cast<const Eigen::bfloat16*>(b.h.data()), ix(b.shape.len));
    vec(b, b.a) = h.cast<float>();
  });
  r.impl("f32_to_int8", E, [](B& b) {
    auto x = vec(b, b.a);
    const float amax = x.abs().maxCoeff();
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    Eigen::Map<Eigen::Array<std::int8_t, Eigen::Dynamic, 1>> q(b.q.data(), ix(b.shape.len));
    q = (x * inv).rint().max(-127.0f).min(127.0f).cast<std::int8_t>();
    b.s[0] = amax / 127.0f;
  });
  r.impl("int8_to_f32", E, [](B& b) {
    Eigen::Map<const Eigen::Array<std::int8_t, Eigen::Dynamic, 1>> q(b.q.data(), ix(b.shape.len));
    vec(b, b.a) = q.cast<float>() * b.p[0];
  });
}

}  // namespace rosetta::atlas
