// Transformer<Policy>: the whole model.
//   x = embed[tokens]
//   for each block:  h = x + Attention(RMSNorm_1(x));  x = h + MoE(RMSNorm_2(h))
//   logits = RMSNorm_f(x) lm_head^T
// The model holds parameters and RoPE tables only; activations live in a Workspace, so a
// const model serves forward passes from several threads, one workspace each.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rosetta/core/policy.hpp"
#include "rosetta/core/rng.hpp"
#include "rosetta/kernels/cross_entropy.hpp"
#include "rosetta/kernels/embedding.hpp"
#include "rosetta/kernels/rope.hpp"
#include "rosetta/layers/attention_block.hpp"
#include "rosetta/layers/moe_block.hpp"
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
      : cfg_(validated(cfg)), params_(cfg_) {
    const std::size_t half = cfg_.head_dim / 2;
    rope_cos_.resize(cfg_.max_seq_len * half);
    rope_sin_.resize(cfg_.max_seq_len * half);
    kernels::rope_tables(std::span<T>(rope_cos_), std::span<T>(rope_sin_), cfg_.max_seq_len,
                         cfg_.head_dim, cfg_.rope_base, cfg_.rope_alpha);
    init(seed);
  }

  const Config& config() const { return cfg_; }
  Params& params() { return params_; }
  const Params& params() const { return params_; }
  Work make_workspace() const { return Work(cfg_); }

  /// Deterministic init, identical for every layout and backend: tensor i draws from
  /// stream i of seed, in checkpoint ([out, in] row-major) order. Linear weights
  /// N(0, 2/fan_in), embedding N(0, 2/hidden), norm gains 1.
  void init(std::uint64_t seed) {
    std::uint64_t stream = 0;
    for (const auto& np : params_.named()) {
      Rng rng(seed, stream++);
      if (np.rank == 1) {
        for (T& x : np.flat()) x = T(1);
        continue;
      }
      const bool is_embed = np.name == "tok_embeddings.weight";
      const double sd = std::sqrt(2.0 / static_cast<double>(is_embed ? cfg_.hidden_dim : np.cols));
      for (std::size_t i = 0; i < np.rows; ++i)
        for (std::size_t j = 0; j < np.cols; ++j) np.view(i, j) = static_cast<T>(sd * rng.normal());
    }
  }

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

  /// Accumulates d(total loss)/d(parameter) into grads for the last forward + loss on ws.
  void backward(Work& ws, std::span<const std::int32_t> targets, Params& grads) const;

 private:
  static const Config& validated(const Config& c) {
    c.validate();
    return c;
  }
  void require_forward(const Work& ws, std::span<const std::int32_t> targets) const {
    if (!ws.has_forward)
      detail::raise<ValueError>(
          "Transformer: loss/backward called before forward on this workspace");
    validate_batch(cfg_, TokenBatch{targets, ws.batch, ws.seq}, "targets");
  }

  Config cfg_;
  Params params_;
  std::vector<T> rope_cos_, rope_sin_;
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
  const std::size_t Tn = in.batch * in.seq;
  ws.batch = in.batch;
  ws.seq = in.seq;
  std::copy(in.ids.begin(), in.ids.end(), ws.tokens.begin());
  const typename layers::AttentionBlock<P>::Rope rope{rope_cos_, rope_sin_};
  kernels::embedding_forward(ws.layers[0].x_in.rows(Tn), params_.embed,
                             std::span<const std::int32_t>(ws.tokens.data(), Tn));
  for (std::size_t l = 0; l < cfg_.n_layers; ++l) {
    auto& lc = ws.layers[l];
    if (cache) {
      const typename layers::AttentionBlock<P>::KV kv{cache->k(l), cache->v(l), cache->capacity(),
                                                      cache->length()};
      layers::AttentionBlock<P>::forward(cfg_, params_.layers[l], lc, rope, in.batch, in.seq, &kv);
    } else {
      layers::AttentionBlock<P>::forward(cfg_, params_.layers[l], lc, rope, in.batch, in.seq);
    }
    auto out = (l + 1 < cfg_.n_layers) ? ws.layers[l + 1].x_in.rows(Tn) : ws.x_final.rows(Tn);
    layers::MoEBlock<P>::forward(cfg_, params_.layers[l], lc, out, Tn);
  }
  kernels::rmsnorm_forward(ws.xf.rows(Tn), std::span<T>(ws.rstd_f.data(), Tn), ws.x_final.crows(Tn),
                           params_.norm, static_cast<T>(cfg_.rms_eps));
  kernels::linear_forward<B>(ws.logits.rows(Tn), ws.xf.crows(Tn), params_.lm_head);
  ws.has_forward = true;
  return ws.logits.crows(Tn);
}

template <class P>
Losses<typename P::scalar> Transformer<P>::loss(typename Transformer<P>::Work& ws,
                                                std::span<const std::int32_t> targets) const {
  require_forward(ws, targets);
  const std::size_t Tn = ws.batch * ws.seq;
  Losses<T> r;
  r.ce =
      kernels::cross_entropy_forward(std::span<T>(ws.lse.data(), Tn), ws.logits.crows(Tn), targets);
  for (std::size_t l = 0; l < cfg_.n_layers; ++l) r.aux += ws.layers[l].aux;
  r.total = r.ce + r.aux;
  return r;
}

template <class P>
void Transformer<P>::backward(typename Transformer<P>::Work& ws,
                              std::span<const std::int32_t> targets,
                              typename Transformer<P>::Params& grads) const {
  require_forward(ws, targets);
  ws.reserve_backward();
  const std::size_t Tn = ws.batch * ws.seq;
  const typename layers::AttentionBlock<P>::Rope rope{rope_cos_, rope_sin_};
  auto dlogits = ws.dlogits.rows(Tn);
  kernels::cross_entropy_backward(dlogits, ws.logits.crows(Tn),
                                  std::span<const T>(ws.lse.data(), Tn), targets);
  // logits = xf lm_head^T
  auto dxf = ws.dn.rows(Tn);
  kernels::linear_backward<B>(dxf, grads.lm_head, MatrixView<const T, L>(dlogits), ws.xf.crows(Tn),
                              params_.lm_head, T(0));
  auto dx = ws.dx.rows(Tn);
  for (std::size_t t = 0; t < Tn; ++t)
    for (std::size_t j = 0; j < cfg_.hidden_dim; ++j) dx(t, j) = T(0);
  kernels::rmsnorm_backward(dx, grads.norm, MatrixView<const T, L>(dxf), ws.x_final.crows(Tn),
                            params_.norm, std::span<const T>(ws.rstd_f.data(), Tn));
  for (std::size_t l = cfg_.n_layers; l-- > 0;) {
    layers::MoEBlock<P>::backward(cfg_, params_.layers[l], grads.layers[l], ws.layers[l], ws, Tn);
    layers::AttentionBlock<P>::backward(cfg_, params_.layers[l], grads.layers[l], ws.layers[l], ws,
                                        rope, ws.batch, ws.seq);
  }
  kernels::embedding_backward(grads.embed, MatrixView<const T, L>(dx),
                              std::span<const std::int32_t>(ws.tokens.data(), Tn));
}

}  // namespace rosetta
