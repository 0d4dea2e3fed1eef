// The mixture-of-experts half of a transformer block:
//   n2 = RMSNorm_2(h);  probs = softmax(n2 Wr^T);  top-k, renormalised weights w
//   out = h + sum_j w_j SwiGLU_{e_j}(n2),  SwiGLU_e(x) = (silu(x W1^T) * (x W3^T)) W2^T
// Tokens are gathered per expert ("slots", grouped by expert, token order inside a group),
// so each expert runs as three gemms over exactly the tokens routed to it.
#pragma once

#include "rosetta/kernels/linear.hpp"
#include "rosetta/kernels/rmsnorm.hpp"
#include "rosetta/kernels/router.hpp"
#include "rosetta/kernels/swiglu.hpp"
#include "rosetta/model/params.hpp"
#include "rosetta/model/workspace.hpp"

namespace rosetta::layers {

template <class P>
struct MoEBlock {
  using T = typename P::scalar;
  using L = typename P::layout;
  using B = typename P::backend;

  /// h -> out ([T, H]); returns this layer's aux loss; fills the cache.
  static T forward(const Config& c, const LayerParams<T, L>& p, LayerCache<T, L>& lc,
                   MatrixView<T, L> out, std::size_t Tn) {
    using namespace kernels;
    const std::size_t k = c.top_k, E = c.n_experts, slots = Tn * k;
    auto h = lc.h.crows(Tn);
    auto n2 = lc.n2.rows(Tn);
    rmsnorm_forward(n2, std::span<T>(lc.rstd2.data(), Tn), h, p.ffn_norm,
                    static_cast<T>(c.rms_eps));
    auto probs = lc.probs.rows(Tn);
    linear_forward<B>(probs, n2, p.router);
    std::span<std::int32_t> idx(lc.idx.data(), slots);
    router_forward(probs, idx, std::span<T>(lc.w.data(), slots), probs, k);
    lc.aux = aux_loss_forward(std::span<T>(lc.f), MatrixView<const T, L>(probs),
                              std::span<const std::int32_t>(idx), static_cast<T>(c.aux_alpha));
    // slots grouped by expert
    auto& off = lc.offsets;
    for (auto& o : off) o = 0;
    for (std::size_t s = 0; s < slots; ++s) ++off[static_cast<std::size_t>(idx[s]) + 1];
    for (std::size_t e = 0; e < E; ++e) off[e + 1] += off[e];
    for (std::size_t e = 0; e < E; ++e) lc.cursor[e] = off[e];
    for (std::size_t t = 0; t < Tn; ++t)
      for (std::size_t j = 0; j < k; ++j) {
        const auto e = static_cast<std::size_t>(idx[t * k + j]);
        const auto s = static_cast<std::size_t>(lc.cursor[e]++);
        lc.slot_token[s] = static_cast<std::int32_t>(t);
        lc.slot_of[t * k + j] = static_cast<std::int32_t>(s);
      }
    auto Xe = lc.Xe.rows(slots);
    for (std::size_t s = 0; s < slots; ++s) {
      const auto t = static_cast<std::size_t>(lc.slot_token[s]);
      for (std::size_t j = 0; j < c.hidden_dim; ++j) Xe(s, j) = n2(t, j);
    }
    for (std::size_t e = 0; e < E; ++e) {
      const auto r0 = static_cast<std::size_t>(off[e]),
                 n = static_cast<std::size_t>(off[e + 1]) - r0;
      if (n == 0) continue;
      auto x = MatrixView<const T, L>(Xe.rows(r0, n));
      auto G = lc.G.rows(slots).rows(r0, n), U = lc.U.rows(slots).rows(r0, n);
      auto A = lc.A.rows(slots).rows(r0, n);
      linear_forward<B>(G, x, p.experts[e].w1);
      linear_forward<B>(U, x, p.experts[e].w3);
      swiglu_forward(A, G, U);
      linear_forward<B>(lc.Y.rows(slots).rows(r0, n), A, p.experts[e].w2);
    }
    // out = h + sum_j w_j Y[slot_of(t, j)]   (a row at a time: the inner loop runs along a row)
    auto Y = lc.Y.crows(slots);
    for (std::size_t t = 0; t < Tn; ++t) {
      for (std::size_t i = 0; i < c.hidden_dim; ++i) out(t, i) = h(t, i);
      for (std::size_t j = 0; j < k; ++j) {
        const T w = lc.w[t * k + j];
        const auto s = static_cast<std::size_t>(lc.slot_of[t * k + j]);
        for (std::size_t i = 0; i < c.hidden_dim; ++i) out(t, i) += w * Y(s, i);
      }
    }
    return lc.aux;
  }

  /// dx holds dL/dout on entry and dL/dh on return.
  template <class WS>
  static void backward(const Config& c, const LayerParams<T, L>& p, LayerParams<T, L>& g,
                       const LayerCache<T, L>& lc, WS& ws, std::size_t Tn,
                       GradMode mode = GradMode::accumulate) {
    using namespace kernels;
    const T gb = grad_beta<T>(mode);  // beta of the weight gradients
    const std::size_t k = c.top_k, E = c.n_experts, slots = Tn * k, H = c.hidden_dim;
    auto dx = ws.dx.rows(Tn);
    auto Y = lc.Y.crows(slots);
    auto dY = ws.dY.rows(slots);
    // out[t] = h[t] + sum_j w_tj Y[s_tj]:  dY[s] = w dout[t],  dw_tj = <dout[t], Y[s]>
    for (std::size_t t = 0; t < Tn; ++t)
      for (std::size_t j = 0; j < k; ++j) {
        const auto s = static_cast<std::size_t>(lc.slot_of[t * k + j]);
        const T w = lc.w[t * k + j];
        T dot = 0;
        for (std::size_t i = 0; i < H; ++i) {
          dY(s, i) = w * dx(t, i);
          dot += dx(t, i) * Y(s, i);
        }
        ws.dw[t * k + j] = dot;
      }
    auto Xe = lc.Xe.crows(slots);
    auto dXe = ws.dXe.rows(slots);
    for (std::size_t e = 0; e < E; ++e) {
      const auto r0 = static_cast<std::size_t>(lc.offsets[e]);
      const auto n = static_cast<std::size_t>(lc.offsets[e + 1]) - r0;
      auto& pe = p.experts[e];
      auto& ge = g.experts[e];
      if (n == 0) {  // no token routed here: a zero gradient (written when overwriting)
        for (auto m : {ge.w1, ge.w2, ge.w3}) {
          zero_if_overwrite(mode, m.flat());
          if (double* ssq = ws.grad_slot(mode, m.data())) *ssq = 0.0;
        }
        continue;
      }
      auto dA = ws.dA.rows(slots).rows(r0, n), dG = ws.dG.rows(slots).rows(r0, n),
           dU = ws.dU.rows(slots).rows(r0, n);
      auto x = Xe.rows(r0, n);
      // Y = A W2^T
      linear_backward<B>(dA, ge.w2, MatrixView<const T, L>(dY.rows(r0, n)),
                         lc.A.crows(slots).rows(r0, n), pe.w2, T(0), gb,
                         ws.grad_slot(mode, ge.w2.data()));
      swiglu_backward(dG, dU, MatrixView<const T, L>(dA), lc.G.crows(slots).rows(r0, n),
                      lc.U.crows(slots).rows(r0, n));
      // G = x W1^T, U = x W3^T
      linear_backward<B>(dXe.rows(r0, n), ge.w1, MatrixView<const T, L>(dG), x, pe.w1, T(0), gb,
                         ws.grad_slot(mode, ge.w1.data()));
      linear_backward<B>(dXe.rows(r0, n), ge.w3, MatrixView<const T, L>(dU), x, pe.w3, T(1), gb,
                         ws.grad_slot(mode, ge.w3.data()));
    }
    // scatter the gathered rows back: dn2[t] = sum_j dXe[s_tj]   (token order: deterministic)
    auto dn2 = ws.dn.rows(Tn);
    for (std::size_t t = 0; t < Tn; ++t)
      for (std::size_t i = 0; i < H; ++i) {
        T acc = 0;
        for (std::size_t j = 0; j < k; ++j)
          acc += dXe(static_cast<std::size_t>(lc.slot_of[t * k + j]), i);
        dn2(t, i) = acc;
      }
    // router: renormalised top-k weights and the aux loss, through the softmax
    auto drl = ws.drouter.rows(Tn);
    router_backward(drl, std::span<const T>(ws.dw.data(), slots), lc.probs.crows(Tn),
                    std::span<const std::int32_t>(lc.idx.data(), slots),
                    std::span<const T>(lc.w.data(), slots), std::span<const T>(lc.f),
                    static_cast<T>(c.aux_alpha), k);
    linear_backward<B>(dn2, g.router, MatrixView<const T, L>(drl), lc.n2.crows(Tn), p.router, T(1),
                       gb, ws.grad_slot(mode, g.router.data()));
    // n2 = RMSNorm(h); the residual passes dx through unchanged
    zero_if_overwrite(mode, g.ffn_norm);
    rmsnorm_backward(dx, g.ffn_norm, MatrixView<const T, L>(dn2), lc.h.crows(Tn), p.ffn_norm,
                     std::span<const T>(lc.rstd2.data(), Tn));
  }
};

}  // namespace rosetta::layers
