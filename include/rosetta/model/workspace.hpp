// Activations saved by forward for backward, and backward scratch. A workspace belongs to
// one thread; a const model can run forward on many workspaces at once. Buffers grow to the
// largest batch x sequence seen and are then reused: steady state allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "rosetta/core/tensor.hpp"
#include "rosetta/model/config.hpp"
#include "rosetta/model/params.hpp"

namespace rosetta {

/// A [rows, cols] matrix buffer in layout L whose leading rows are used.
template <class T, class L>
struct Buf {
  Tensor<T, L> t;
  void alloc(std::size_t rows, std::size_t cols) {
    if (t.rank() != 2 || t.dim(0) != rows || t.dim(1) != cols) t = Tensor<T, L>({rows, cols});
  }
  MatrixView<T, L> rows(std::size_t n) { return t.matrix().rows(0, n); }
  MatrixView<T, L> block(std::size_t r, std::size_t c) { return t.matrix().block(0, 0, r, c); }
  MatrixView<const T, L> crows(std::size_t n) const { return t.matrix().rows(0, n); }
};

/// What forward keeps per block for backward.
template <class T, class L>
struct LayerCache {
  Buf<T, L> x_in, n1, q, k, v, P, o, h, n2, probs, Xe, G, U, A, Y;
  std::vector<T> rstd1, rstd2, w, f;
  std::vector<std::int32_t> idx, slot_token, slot_of, offsets, cursor;
  T aux = 0;
};

template <class T, class L>
class Workspace {
 public:
  explicit Workspace(const Config& cfg) : cfg_(cfg) {}

  /// Grows the forward buffers for batch x seq tokens; no-op when they already fit.
  /// Growing discards the saved forward state.
  void reserve(std::size_t batch, std::size_t seq) { reserve_tokens(batch * seq, seq); }
  /// Grows the forward buffers for `tokens` rows attending over up to `keys` positions
  /// (keys > rows per sequence when decoding with a KV cache).
  void reserve_tokens(std::size_t tokens, std::size_t keys) {
    if (tokens <= tok_cap_ && keys <= seq_cap_) return;
    tok_cap_ = std::max(tok_cap_, tokens);
    seq_cap_ = std::max(seq_cap_, keys);
    allocate();
  }
  /// Allocates the backward scratch at the current capacity (once); keeps forward state.
  void reserve_backward() {
    if (train_ready_) return;
    train_ready_ = true;
    allocate_backward();
  }

  std::size_t token_capacity() const { return tok_cap_; }

  // forward state
  std::vector<LayerCache<T, L>> layers;
  Buf<T, L> x_final, xf, logits;
  std::vector<T> rstd_f, lse;
  std::vector<std::int32_t> tokens;
  std::size_t batch = 0, seq = 0;
  bool has_forward = false;
  // backward scratch
  Buf<T, L> dx, dn, dq, dk, dv, d_o, dP, dlogits, dXe, dY, dA, dG, dU, drouter;
  std::vector<T> dw;
  /// Where backward records the gradients' sums of squares (Trainer: its own; null: nowhere).
  GradSquares<T, L>* grad_squares = nullptr;

  /// The slot for the sum of squares of gradient tensor g that backward writes (overwrite)
  /// — nullptr when accumulating, without a grad_squares, or for a g that is not its tensor.
  double* grad_slot(GradMode mode, const T* g) {
    return mode == GradMode::overwrite && grad_squares != nullptr ? grad_squares->slot(g) : nullptr;
  }

 private:
  void allocate() {
    const Config& c = cfg_;
    const std::size_t Tn = tok_cap_, S = seq_cap_, H = c.hidden_dim, F = c.ffn_dim;
    const std::size_t slots = Tn * c.top_k, E = c.n_experts;
    layers.resize(c.n_layers);
    for (auto& lc : layers) {
      for (auto* b : {&lc.x_in, &lc.n1, &lc.h, &lc.n2}) b->alloc(Tn, H);
      lc.q.alloc(Tn, c.q_dim());
      lc.o.alloc(Tn, c.q_dim());
      lc.k.alloc(Tn, c.kv_dim());
      lc.v.alloc(Tn, c.kv_dim());
      lc.P.alloc(Tn * c.n_heads, S);
      lc.probs.alloc(Tn, E);
      lc.Xe.alloc(slots, H);
      lc.Y.alloc(slots, H);
      for (auto* b : {&lc.G, &lc.U, &lc.A}) b->alloc(slots, F);
      lc.rstd1.assign(Tn, T(0));
      lc.rstd2.assign(Tn, T(0));
      lc.w.assign(slots, T(0));
      lc.f.assign(E, T(0));
      lc.idx.assign(slots, 0);
      lc.slot_token.assign(slots, 0);
      lc.slot_of.assign(slots, 0);
      lc.offsets.assign(E + 1, 0);
      lc.cursor.assign(E, 0);
    }
    x_final.alloc(Tn, H);
    xf.alloc(Tn, H);
    logits.alloc(Tn, c.vocab_size);
    rstd_f.assign(Tn, T(0));
    lse.assign(Tn, T(0));
    tokens.assign(Tn, 0);
    if (train_ready_) allocate_backward();
    has_forward = false;
  }

  void allocate_backward() {
    const Config& c = cfg_;
    const std::size_t Tn = tok_cap_, S = seq_cap_, H = c.hidden_dim, F = c.ffn_dim;
    const std::size_t slots = Tn * c.top_k, E = c.n_experts;
    {
      for (auto* b : {&dx, &dn}) b->alloc(Tn, H);
      for (auto* b : {&dq, &d_o}) b->alloc(Tn, c.q_dim());
      for (auto* b : {&dk, &dv}) b->alloc(Tn, c.kv_dim());
      dP.alloc(S * (c.n_heads / c.n_kv_heads), S);  // the scores of a KV head's query heads
      dlogits.alloc(Tn, c.vocab_size);
      for (auto* b : {&dXe, &dY}) b->alloc(slots, H);
      for (auto* b : {&dA, &dG, &dU}) b->alloc(slots, F);
      drouter.alloc(Tn, E);
      dw.assign(slots, T(0));
    }
  }

  Config cfg_;
  std::size_t tok_cap_ = 0, seq_cap_ = 0;
  bool train_ready_ = false;
};

}  // namespace rosetta
