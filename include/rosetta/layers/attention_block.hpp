// The attention half of a transformer block:
//   n1 = RMSNorm_1(x);  q, k, v = n1 Wq^T, n1 Wk^T, n1 Wv^T;  RoPE(q), RoPE(k)
//   o = CausalAttention(q, k, v);  h = x + o Wo^T
#pragma once

#include "rosetta/kernels/attention.hpp"
#include "rosetta/kernels/linear.hpp"
#include "rosetta/kernels/rmsnorm.hpp"
#include "rosetta/kernels/rope.hpp"
#include "rosetta/model/params.hpp"
#include "rosetta/model/workspace.hpp"

namespace rosetta::layers {

template <class P>
struct AttentionBlock {
  using T = typename P::scalar;
  using L = typename P::layout;
  using B = typename P::backend;

  struct Rope {
    std::span<const T> cos, sin;
  };

  /// Keys and values of earlier positions (decoding): [batch * capacity, kvd] each; rows
  /// [b*capacity, b*capacity + pos0) hold sequence b's cached positions.
  struct KV {
    MatrixView<T, L> k, v;
    std::size_t capacity = 0, pos0 = 0;
  };

  /// x_in -> h (both [T, H]) for seq new positions per sequence; fills the cache for
  /// backward. With kv, the new keys/values are appended to it (positions pos0..) and the
  /// queries attend over all pos0 + seq of them.
  static void forward(const Config& c, const LayerParams<T, L>& p, LayerCache<T, L>& lc,
                      const Rope& rope, std::size_t batch, std::size_t seq,
                      const KV* kv = nullptr) {
    using namespace kernels;
    const std::size_t Tn = batch * seq, pos0 = kv ? kv->pos0 : 0;
    auto x = lc.x_in.crows(Tn);
    auto n1 = lc.n1.rows(Tn), q = lc.q.rows(Tn), k = lc.k.rows(Tn), v = lc.v.rows(Tn);
    rmsnorm_forward(n1, std::span<T>(lc.rstd1.data(), Tn), x, p.attention_norm,
                    static_cast<T>(c.rms_eps));
    linear_forward<B>(q, n1, p.wq);
    linear_forward<B>(k, n1, p.wk);
    linear_forward<B>(v, n1, p.wv);
    rope_forward(q, c.head_dim, seq, pos0, rope.cos, rope.sin);
    rope_forward(k, c.head_dim, seq, pos0, rope.cos, rope.sin);
    auto o = lc.o.rows(Tn);
    if (!kv) {
      const AttentionDims d{batch, seq, seq, seq, c.n_heads, c.n_kv_heads, c.head_dim};
      attention_forward<B>(o, lc.P.block(Tn * c.n_heads, seq), q, k, v, d);
    } else {
      for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t s = 0; s < seq; ++s)
          for (std::size_t j = 0; j < c.kv_dim(); ++j) {
            kv->k(b * kv->capacity + pos0 + s, j) = k(b * seq + s, j);
            kv->v(b * kv->capacity + pos0 + s, j) = v(b * seq + s, j);
          }
      const std::size_t sk = pos0 + seq;
      const AttentionDims d{batch, seq, sk, kv->capacity, c.n_heads, c.n_kv_heads, c.head_dim};
      attention_forward<B>(o, lc.P.block(Tn * c.n_heads, sk), q, MatrixView<const T, L>(kv->k),
                           MatrixView<const T, L>(kv->v), d);
    }
    // h = x + o Wo^T
    auto h = lc.h.rows(Tn);
    for (std::size_t t = 0; t < Tn; ++t)
      for (std::size_t j = 0; j < c.hidden_dim; ++j) h(t, j) = x(t, j);
    B::gemm(Op::N, Op::T, T(1), MatrixView<const T, L>(o), p.wo, T(1), h);
  }

  /// dx holds dL/dh on entry and dL/dx_in on return (the residual adds through).
  template <class WS>
  static void backward(const Config& c, const LayerParams<T, L>& p, LayerParams<T, L>& g,
                       const LayerCache<T, L>& lc, WS& ws, const Rope& rope, std::size_t batch,
                       std::size_t seq, GradMode mode = GradMode::accumulate) {
    using namespace kernels;
    const T gb = grad_beta<T>(mode);  // beta of the weight gradients
    const std::size_t Tn = batch * seq;
    auto dx = ws.dx.rows(Tn);
    auto d_o = ws.d_o.rows(Tn), dq = ws.dq.rows(Tn), dk = ws.dk.rows(Tn), dv = ws.dv.rows(Tn);
    auto dn1 = ws.dn.rows(Tn);
    // h = x + o Wo^T:  d_o = dh Wo, dWo += dh^T o
    linear_backward<B>(d_o, g.wo, MatrixView<const T, L>(dx), lc.o.crows(Tn), p.wo, T(0), gb,
                       ws.grad_slot(mode, g.wo.data()));
    for (auto m : {dk, dv})
      for (std::size_t t = 0; t < Tn; ++t)
        for (std::size_t j = 0; j < m.cols(); ++j) m(t, j) = T(0);
    const AttentionDims d{batch, seq, seq, seq, c.n_heads, c.n_kv_heads, c.head_dim};
    attention_backward<B>(dq, dk, dv, ws.dP.block(seq * (c.n_heads / c.n_kv_heads), seq),
                          MatrixView<const T, L>(d_o), lc.q.crows(Tn), lc.k.crows(Tn),
                          lc.v.crows(Tn), lc.P.t.matrix().block(0, 0, Tn * c.n_heads, seq), d);
    rope_backward(dq, c.head_dim, seq, 0, rope.cos, rope.sin);
    rope_backward(dk, c.head_dim, seq, 0, rope.cos, rope.sin);
    auto n1 = lc.n1.crows(Tn);
    linear_backward<B>(dn1, g.wq, MatrixView<const T, L>(dq), n1, p.wq, T(0), gb,
                       ws.grad_slot(mode, g.wq.data()));
    linear_backward<B>(dn1, g.wk, MatrixView<const T, L>(dk), n1, p.wk, T(1), gb,
                       ws.grad_slot(mode, g.wk.data()));
    linear_backward<B>(dn1, g.wv, MatrixView<const T, L>(dv), n1, p.wv, T(1), gb,
                       ws.grad_slot(mode, g.wv.data()));
    zero_if_overwrite(mode, g.attention_norm);
    rmsnorm_backward(dx, g.attention_norm, MatrixView<const T, L>(dn1), lc.x_in.crows(Tn),
                     p.attention_norm, std::span<const T>(lc.rstd1.data(), Tn));
  }
};

}  // namespace rosetta::layers
