// Transformer<Policy>: the whole model.
//   x = embed[tokens]
//   for each block:  h = x + Attention(RMSNorm_1(x));  x = h + MoE(RMSNorm_2(h))
//   logits = RMSNorm_f(x) lm_head^T
// The model holds parameters and RoPE tables only; activations live in a Workspace, so a
// const model serves forward passes from several threads, one workspace each.
// Forward and backward run the stages of layers/stages.hpp in order (static dispatch); the
// helpers before the class are shared with VirtualTransformer (dispatch/virtual.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <span>
#include <vector>

#include "rosetta/core/policy.hpp"
#include "rosetta/core/rng.hpp"
#include "rosetta/kernels/cross_entropy.hpp"
#include "rosetta/kernels/embedding.hpp"
#include "rosetta/kernels/rope.hpp"
#include "rosetta/layers/attention_block.hpp"
#include "rosetta/layers/moe_block.hpp"
#include "rosetta/layers/stages.hpp"
#include "rosetta/model/params.hpp"
#include "rosetta/model/workspace.hpp"

namespace rosetta {

/// Token ids of a batch, row-major [batch, seq].
struct TokenBatch {
  std::span<const std::int32_t> ids;
  std::size_t batch = 0, seq = 0;
};

template <class T>
struct Losses {
  T ce = 0, aux = 0, total = 0;
};

/// Throws the contract's typed errors for a malformed batch (names the bad value).
inline void validate_batch(const Config& c, const TokenBatch& in, const char* what = "tokens") {
  if (in.batch == 0 || in.seq == 0)
    detail::raise<ValueError>(what, ": empty batch (batch=", in.batch, ", seq=", in.seq,
                              "; both must be >= 1)");
  if (in.seq > c.max_seq_len)
    detail::raise<ValueError>(what, ": sequence length ", in.seq,
                              " exceeds max_seq_len=", c.max_seq_len);
  if (in.ids.size() != in.batch * in.seq)
    detail::raise<ShapeError>(what, ": ", in.ids.size(), " ids for batch ", in.batch, " x seq ",
                              in.seq, " (need ", in.batch * in.seq, ")");
  for (std::size_t i = 0; i < in.ids.size(); ++i)
    if (in.ids[i] < 0 || static_cast<std::size_t>(in.ids[i]) >= c.vocab_size)
      detail::raise<IndexError>(what, "[", i / in.seq, "][", i % in.seq, "] = ", in.ids[i],
                                " is outside the vocabulary [0, ", c.vocab_size, ")");
}

/// Keys and values of every layer for incremental decoding: [batch * capacity, kvd] per
/// layer and per K/V. Sized once; decoding a token allocates nothing.
template <class T, class L>
class KVCache {
 public:
  KVCache(const Config& c, std::size_t batch, std::size_t capacity)
      : batch_(batch), capacity_(capacity) {
    if (batch == 0 || capacity == 0)
      detail::raise<ValueError>("KVCache: batch=", batch, ", capacity=", capacity,
                                " (both must be >= 1)");
    if (capacity > c.max_seq_len)
      detail::raise<ValueError>("KVCache: capacity ", capacity,
                                " exceeds max_seq_len=", c.max_seq_len);
    for (std::size_t l = 0; l < c.n_layers; ++l) {
      k_.emplace_back(Shape{batch * capacity, c.kv_dim()});
      v_.emplace_back(Shape{batch * capacity, c.kv_dim()});
    }
  }
  std::size_t batch() const { return batch_; }
  std::size_t capacity() const { return capacity_; }
  /// Positions cached so far (the RoPE offset of the next token).
  std::size_t length() const { return length_; }
  void clear() { length_ = 0; }

  MatrixView<T, L> k(std::size_t layer) { return k_[layer].matrix(); }
  MatrixView<T, L> v(std::size_t layer) { return v_[layer].matrix(); }
  void advance(std::size_t n) { length_ += n; }

 private:
  std::size_t batch_, capacity_, length_ = 0;
  std::vector<Tensor<T, L>> k_, v_;
};

/// RoPE cos/sin tables [max_seq_len, head_dim / 2] of a config (computed in double).
template <class T>
struct RopeTables {
  std::vector<T> cos, sin;
  explicit RopeTables(const Config& c)
      : cos(c.max_seq_len * (c.head_dim / 2)), sin(c.max_seq_len * (c.head_dim / 2)) {
    kernels::rope_tables(std::span<T>(cos), std::span<T>(sin), c.max_seq_len, c.head_dim,
                         c.rope_base, c.rope_alpha);
  }
};

/// Deterministic init, identical for every layout, backend and dispatch: tensor i draws from
/// stream i of seed (a NormalStream seeded from Rng(seed, i): bit-identical on every
/// compiler and platform), in checkpoint ([out, in] row-major) order. Linear weights
/// N(0, 2/fan_in), embedding N(0, 2/hidden), norm gains 1.
template <class T, class L>
void init_params(ParamSet<T, L>& params, std::uint64_t seed) {
  const Config& cfg = params.config();
  std::uint64_t stream = 0;
  for (const auto& np : params.named()) {
    Rng rng(seed, stream++);
    if (np.rank == 1) {
      for (T& x : np.flat()) x = T(1);
      continue;
    }
    const bool is_embed = np.name == "tok_embeddings.weight";
    const double sd = std::sqrt(2.0 / static_cast<double>(is_embed ? cfg.hidden_dim : np.cols));
    NormalStream normal(rng);
    float z[256];  // row-major logical order, whatever the layout
    for (std::size_t i = 0; i < np.rows; ++i)
      for (std::size_t j0 = 0; j0 < np.cols; j0 += std::size(z)) {
        const std::size_t len = std::min(std::size(z), np.cols - j0);
        normal.fill(z, len);
        for (std::size_t j = 0; j < len; ++j) np.view(i, j0 + j) = static_cast<T>(sd * z[j]);
      }
  }
}

// The orchestration both Transformer (static dispatch) and VirtualTransformer (virtual
// dispatch) share around their stages.
namespace detail {

/// The stage context for the batch recorded in ws.
template <class T, class L>
layers::ForwardContext<T, L> stage_context(const Config& cfg, const ParamSet<T, L>& params,
                                           const RopeTables<T>& rope, Workspace<T, L>& ws) {
  return {cfg, params, rope.cos, rope.sin, ws, ws.batch, ws.seq};
}

/// The first step of every forward: records the batch shape and its token ids in ws.
template <class T, class L>
layers::ForwardContext<T, L> begin_forward(const Config& cfg, const ParamSet<T, L>& params,
                                           const RopeTables<T>& rope, const TokenBatch& in,
                                           Workspace<T, L>& ws) {
  ws.batch = in.batch;
  ws.seq = in.seq;
  std::copy(in.ids.begin(), in.ids.end(), ws.tokens.begin());
  return stage_context(cfg, params, rope, ws);
}

template <class T, class L>
void require_forward(const char* who, const Config& cfg, const Workspace<T, L>& ws,
                     std::span<const std::int32_t> targets) {
  if (!ws.has_forward)
    raise<ValueError>(who, ": loss/backward called before forward on this workspace");
  validate_batch(cfg, TokenBatch{targets, ws.batch, ws.seq}, "targets");
}

/// Cross-entropy of the logits in ws (saves the log-sum-exp) plus every block's aux loss.
template <class T, class L>
Losses<T> losses(const Config& cfg, Workspace<T, L>& ws, std::span<const std::int32_t> targets) {
  const std::size_t Tn = ws.batch * ws.seq;
  Losses<T> r;
  r.ce =
      kernels::cross_entropy_forward(std::span<T>(ws.lse.data(), Tn), ws.logits.crows(Tn), targets);
  for (std::size_t l = 0; l < cfg.n_layers; ++l) r.aux += ws.layers[l].aux;
  r.total = r.ce + r.aux;
  return r;
}

/// ws.dlogits = d(mean cross-entropy)/d(logits): where every backward starts.
template <class T, class L>
void loss_backward(Workspace<T, L>& ws, std::span<const std::int32_t> targets) {
  const std::size_t Tn = ws.batch * ws.seq;
  kernels::cross_entropy_backward(ws.dlogits.rows(Tn), ws.logits.crows(Tn),
                                  std::span<const T>(ws.lse.data(), Tn), targets);
}

}  // namespace detail

template <class P>
class Transformer {
 public:
  using policy = P;
  using T = typename P::scalar;
  using L = typename P::layout;
  using B = typename P::backend;
  using Params = ParamSet<T, L>;
  using Work = Workspace<T, L>;

  /// Validates cfg, allocates the parameters once and initialises them from seed.
  explicit Transformer(const Config& cfg, std::uint64_t seed = 42)
      : cfg_(validated(cfg)), params_(cfg_), rope_(cfg_) {
    init(seed);
  }

  const Config& config() const { return cfg_; }
  Params& params() { return params_; }
  const Params& params() const { return params_; }
  Work make_workspace() const { return Work(cfg_); }

  /// Re-initialises the parameters from seed (see init_params).
  void init(std::uint64_t seed) { init_params(params_, seed); }

  /// Runs the model; returns the logits [batch*seq, vocab] (row t = b*seq + s), which stay
  /// valid in ws until the next call. Saves what backward needs.
  MatrixView<const T, L> forward(const TokenBatch& in, Work& ws) const;

  /// Incremental decoding: in holds the next in.seq tokens of each of cache.batch()
  /// sequences, at positions cache.length() onward. Appends their keys/values to the cache
  /// and returns their logits [batch*seq, vocab]. Equal to the matching rows of a full
  /// forward over the whole sequences. (Not for backward.)
  MatrixView<const T, L> forward_cached(const TokenBatch& in, KVCache<T, L>& cache, Work& ws) const;

  /// Grows ws so that generation with this cache allocates nothing per token.
  void reserve_decode(Work& ws, const KVCache<T, L>& cache, std::size_t prefill) const {
    ws.reserve_tokens(cache.batch() * std::max<std::size_t>(prefill, 1), cache.capacity());
  }

 private:
  MatrixView<const T, L> run(const TokenBatch& in, Work& ws, KVCache<T, L>* cache) const;

 public:
  /// Mean cross-entropy against targets [batch*seq], the summed aux loss and their sum,
  /// for the batch of the last forward on ws.
  Losses<T> loss(Work& ws, std::span<const std::int32_t> targets) const;

  /// Accumulates d(total loss)/d(parameter) into grads for the last forward + loss on ws
  /// (GradMode::overwrite: writes them instead; grads need not be zeroed).
  void backward(Work& ws, std::span<const std::int32_t> targets, Params& grads,
                GradMode mode = GradMode::accumulate) const;

 private:
  static const Config& validated(const Config& c) {
    c.validate();
    return c;
  }
  void require_forward(const Work& ws, std::span<const std::int32_t> targets) const {
    detail::require_forward("Transformer", cfg_, ws, targets);
  }

  Config cfg_;
  Params params_;
  RopeTables<T> rope_;
};

// ---- out-of-class definitions (non-inline, so extern template can skip them) ----
template <class P>
MatrixView<const typename P::scalar, typename P::layout> Transformer<P>::forward(
    const TokenBatch& in, typename Transformer<P>::Work& ws) const {
  validate_batch(cfg_, in);
  ws.reserve(in.batch, in.seq);
  return run(in, ws, nullptr);
}

template <class P>
MatrixView<const typename P::scalar, typename P::layout> Transformer<P>::forward_cached(
    const TokenBatch& in, KVCache<typename P::scalar, typename P::layout>& cache,
    typename Transformer<P>::Work& ws) const {
  validate_batch(cfg_, in);
  if (in.batch != cache.batch())
    detail::raise<ShapeError>("forward_cached: batch ", in.batch, " but the cache holds ",
                              cache.batch(), " sequences");
  if (cache.length() + in.seq > cache.capacity())
    detail::raise<ValueError>("forward_cached: ", cache.length(), " cached + ", in.seq,
                              " new positions exceed the cache capacity ", cache.capacity());
  ws.reserve_tokens(in.batch * in.seq, cache.capacity());
  auto out = run(in, ws, &cache);
  cache.advance(in.seq);
  ws.has_forward = false;  // the saved state is not a full-sequence forward
  return out;
}

template <class P>
MatrixView<const typename P::scalar, typename P::layout> Transformer<P>::run(
    const TokenBatch& in, typename Transformer<P>::Work& ws,
    KVCache<typename P::scalar, typename P::layout>* cache) const {
  const auto c = detail::begin_forward(cfg_, params_, rope_, in, ws);
  layers::EmbeddingStage<P>::forward(c, 0);
  for (std::size_t l = 0; l < cfg_.n_layers; ++l) {
    if (cache) {
      const typename layers::AttentionBlock<P>::KV kv{cache->k(l), cache->v(l), cache->capacity(),
                                                      cache->length()};
      layers::AttentionStage<P>::forward(c, l, &kv);
    } else {
      layers::AttentionStage<P>::forward(c, l);
    }
    layers::MoEStage<P>::forward(c, l);
  }
  layers::HeadStage<P>::forward(c, 0);
  ws.has_forward = true;
  return ws.logits.crows(c.tokens());
}

template <class P>
Losses<typename P::scalar> Transformer<P>::loss(typename Transformer<P>::Work& ws,
                                                std::span<const std::int32_t> targets) const {
  require_forward(ws, targets);
  return detail::losses(cfg_, ws, targets);
}

template <class P>
void Transformer<P>::backward(typename Transformer<P>::Work& ws,
                              std::span<const std::int32_t> targets,
                              typename Transformer<P>::Params& grads, GradMode mode) const {
  require_forward(ws, targets);
  ws.reserve_backward();
  detail::loss_backward(ws, targets);
  const layers::BackwardContext<T, L> c{detail::stage_context(cfg_, params_, rope_, ws), grads,
                                        mode};
  layers::HeadStage<P>::backward(c, 0);
  for (std::size_t l = cfg_.n_layers; l-- > 0;) {
    layers::MoEStage<P>::backward(c, l);
    layers::AttentionStage<P>::backward(c, l);
  }
  layers::EmbeddingStage<P>::backward(c, 0);
}

}  // namespace rosetta
