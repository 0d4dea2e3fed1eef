// The model as a sequence of stages, each with the same two entry points:
//   embedding                 x_0 = embed[tokens]
//   per block l: attention    h_l = x_l + Attention(RMSNorm_1(x_l))          (AttentionBlock)
//                moe          x_{l+1} = h_l + MoE(RMSNorm_2(h_l))             (MoEBlock)
//   head                      logits = RMSNorm_f(x_L) lm_head^T
// A stage is a struct of static functions
//   forward(const ForwardContext&, layer)   backward(const BackwardContext&, layer)
// that only wires the workspace and parameters of its block to the layer code. Backward
// runs the stages in reverse order with dL/d(stage output) in ws.dx on entry and
// dL/d(stage input) in ws.dx on return; the head stage starts from ws.dlogits.
// Transformer<P> calls the stages directly (static dispatch); VirtualTransformer<T, L>
// calls the same stages through one virtual adapter (rosetta/dispatch/virtual.hpp).
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>

#include "rosetta/kernels/embedding.hpp"
#include "rosetta/kernels/linear.hpp"
#include "rosetta/kernels/rmsnorm.hpp"
#include "rosetta/layers/attention_block.hpp"
#include "rosetta/layers/moe_block.hpp"
#include "rosetta/model/params.hpp"
#include "rosetta/model/workspace.hpp"

namespace rosetta::layers {

/// What the stages read and write during one forward pass over batch x seq tokens.
template <class T, class L>
struct ForwardContext {
  const Config& cfg;
  const ParamSet<T, L>& params;
  std::span<const T> rope_cos, rope_sin;
  Workspace<T, L>& ws;
  std::size_t batch, seq;

  std::size_t tokens() const { return batch * seq; }
};

/// The same for backward, plus the gradients: added to (GradMode::accumulate) or written
/// (GradMode::overwrite: every gradient element is set, whatever the buffers held).
template <class T, class L>
struct BackwardContext : ForwardContext<T, L> {
  ParamSet<T, L>& grads;
  GradMode mode = GradMode::accumulate;
};

/// The uniform stage interface the models (and the virtual adapter) call.
template <class S>
concept Stage = requires(const ForwardContext<typename S::T, typename S::L>& f,
                         const BackwardContext<typename S::T, typename S::L>& b, std::size_t l) {
  { S::name } -> std::convertible_to<std::string_view>;
  { S::per_layer } -> std::convertible_to<bool>;
  S::forward(f, l);
  S::backward(b, l);
};

/// x_0 = embed[tokens]  (writes the first block's input; `layer` is unused).
template <class P>
struct EmbeddingStage {
  using T = typename P::scalar;
  using L = typename P::layout;
  static constexpr const char* name = "embedding";
  static constexpr bool per_layer = false;

  static void forward(const ForwardContext<T, L>& c, std::size_t /*layer*/) {
    const std::size_t Tn = c.tokens();
    kernels::embedding_forward(c.ws.layers[0].x_in.rows(Tn), c.params.embed,
                               std::span<const std::int32_t>(c.ws.tokens.data(), Tn));
  }
  /// dembed[tokens[t]] += dx[t]   (overwrite: the table is zeroed first — rows of tokens not
  /// in the batch have zero gradient)
  static void backward(const BackwardContext<T, L>& c, std::size_t /*layer*/) {
    const std::size_t Tn = c.tokens();
    zero_if_overwrite(c.mode, c.grads.embed.flat());
    kernels::embedding_backward(c.grads.embed, MatrixView<const T, L>(c.ws.dx.rows(Tn)),
                                std::span<const std::int32_t>(c.ws.tokens.data(), Tn));
  }
};

/// Block `layer`'s attention half: x_in -> h of that block (AttentionBlock).
template <class P>
struct AttentionStage {
  using T = typename P::scalar;
  using L = typename P::layout;
  using Block = AttentionBlock<P>;
  static constexpr const char* name = "attention";
  static constexpr bool per_layer = true;

  /// With kv: incremental decoding against a KV cache (see AttentionBlock::forward).
  static void forward(const ForwardContext<T, L>& c, std::size_t layer,
                      const typename Block::KV* kv = nullptr) {
    Block::forward(c.cfg, c.params.layers[layer], c.ws.layers[layer], rope(c), c.batch, c.seq, kv);
  }
  static void backward(const BackwardContext<T, L>& c, std::size_t layer) {
    Block::backward(c.cfg, c.params.layers[layer], c.grads.layers[layer], c.ws.layers[layer], c.ws,
                    rope(c), c.batch, c.seq, c.mode);
  }

 private:
  static typename Block::Rope rope(const ForwardContext<T, L>& c) {
    return {c.rope_cos, c.rope_sin};
  }
};

/// Block `layer`'s mixture-of-experts half: h -> the next block's x_in (or x_final after
/// the last block). Its aux loss stays in ws.layers[layer].aux.
template <class P>
struct MoEStage {
  using T = typename P::scalar;
  using L = typename P::layout;
  static constexpr const char* name = "moe";
  static constexpr bool per_layer = true;

  static void forward(const ForwardContext<T, L>& c, std::size_t layer) {
    const std::size_t Tn = c.tokens();
    auto out =
        layer + 1 < c.cfg.n_layers ? c.ws.layers[layer + 1].x_in.rows(Tn) : c.ws.x_final.rows(Tn);
    MoEBlock<P>::forward(c.cfg, c.params.layers[layer], c.ws.layers[layer], out, Tn);
  }
  static void backward(const BackwardContext<T, L>& c, std::size_t layer) {
    MoEBlock<P>::backward(c.cfg, c.params.layers[layer], c.grads.layers[layer], c.ws.layers[layer],
                          c.ws, c.tokens(), c.mode);
  }
};

/// xf = RMSNorm_f(x_final);  logits = xf lm_head^T   (`layer` is unused).
template <class P>
struct HeadStage {
  using T = typename P::scalar;
  using L = typename P::layout;
  using B = typename P::backend;
  static constexpr const char* name = "head";
  static constexpr bool per_layer = false;

  static void forward(const ForwardContext<T, L>& c, std::size_t /*layer*/) {
    const std::size_t Tn = c.tokens();
    auto& ws = c.ws;
    kernels::rmsnorm_forward(ws.xf.rows(Tn), std::span<T>(ws.rstd_f.data(), Tn),
                             ws.x_final.crows(Tn), c.params.norm, static_cast<T>(c.cfg.rms_eps));
    kernels::linear_forward<B>(ws.logits.rows(Tn), ws.xf.crows(Tn), c.params.lm_head);
  }
  /// ws.dlogits holds dL/dlogits on entry; ws.dx holds dL/dx_final on return.
  static void backward(const BackwardContext<T, L>& c, std::size_t /*layer*/) {
    const std::size_t Tn = c.tokens();
    auto& ws = c.ws;
    // logits = xf lm_head^T
    auto dxf = ws.dn.rows(Tn);
    kernels::linear_backward<B>(dxf, c.grads.lm_head, ws.dlogits.crows(Tn), ws.xf.crows(Tn),
                                c.params.lm_head, T(0), grad_beta<T>(c.mode),
                                ws.grad_slot(c.mode, c.grads.lm_head.data()));
    auto dx = ws.dx.rows(Tn);
    for (std::size_t t = 0; t < Tn; ++t)
      for (std::size_t j = 0; j < c.cfg.hidden_dim; ++j) dx(t, j) = T(0);
    zero_if_overwrite(c.mode, c.grads.norm);
    kernels::rmsnorm_backward(dx, c.grads.norm, MatrixView<const T, L>(dxf), ws.x_final.crows(Tn),
                              c.params.norm, std::span<const T>(ws.rstd_f.data(), Tn));
  }
};

}  // namespace rosetta::layers
