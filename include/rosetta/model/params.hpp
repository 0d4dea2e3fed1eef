// All parameters of a model (or gradients, or AdamW moments: same shapes) in ONE aligned
// block, with a named view per tensor in checkpoint order. Linear weights are [out, in].
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "rosetta/core/aligned.hpp"
#include "rosetta/core/concepts.hpp"
#include "rosetta/core/sum_squares.hpp"
#include "rosetta/core/view.hpp"
#include "rosetta/model/config.hpp"

namespace rosetta {

/// One parameter tensor: its checkpoint name and shape, and its view into the block.
/// Vectors (norm gains) have rank 1 and are stored as an n x 1 matrix.
template <class T, class L>
struct NamedParam {
  std::string name;
  std::size_t rows, cols, rank;
  MatrixView<T, L> view;
  std::span<T> flat() const { return view.flat(); }
};

template <class T, class L>
struct ExpertParams {
  MatrixView<T, L> w1, w3, w2;  // gate [F, H], up [F, H], down [H, F]
};

template <class T, class L>
struct LayerParams {
  std::span<T> attention_norm;              // [H]
  MatrixView<T, L> wq, wk, wv, wo;          // [qd, H], [kvd, H], [kvd, H], [H, qd]
  std::span<T> ffn_norm;                    // [H]
  MatrixView<T, L> router;                  // [E, H]
  std::vector<ExpertParams<T, L>> experts;  // n_experts
};

/// What backward does with the gradient buffers it is given: add this pass's gradients to
/// them (accumulate, like PyTorch's .grad; the caller zeroes them first) or write them,
/// whatever the buffers held (overwrite: no zeroing pass, and the weight-gradient products
/// run with beta = 0, so they never read the old values; what Trainer::train_step uses).
enum class GradMode { accumulate, overwrite };

/// beta of the weight-gradient products: 1 adds to the gradient, 0 writes it.
template <class T>
T grad_beta(GradMode mode) {
  return mode == GradMode::accumulate ? T(1) : T(0);
}

/// Zeroes a gradient that backward then adds into, when it must be written (overwrite).
template <class T>
void zero_if_overwrite(GradMode mode, std::span<T> g) {
  if (mode == GradMode::overwrite) std::fill(g.begin(), g.end(), T(0));
}

template <Scalar T, Layout L>
class ParamSet {
 public:
  explicit ParamSet(const Config& cfg) : cfg_(cfg), block_(cfg.param_count()) {
    cfg.validate();
    std::size_t off = 0;
    const std::size_t H = cfg.hidden_dim, F = cfg.ffn_dim;
    auto mat = [&](std::string name, std::size_t r, std::size_t c) {
      MatrixView<T, L> v(block_.data() + off, r, c);
      off += r * c;
      all_.push_back({std::move(name), r, c, 2, v});
      return v;
    };
    auto vec = [&](std::string name, std::size_t n) {
      MatrixView<T, L> v(block_.data() + off, n, 1);
      off += n;
      all_.push_back({std::move(name), n, 1, 1, v});
      return std::span<T>(v.data(), n);
    };
    embed = mat("tok_embeddings.weight", cfg.vocab_size, H);
    layers.resize(cfg.n_layers);
    for (std::size_t l = 0; l < cfg.n_layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      LayerParams<T, L>& lp = layers[l];
      lp.attention_norm = vec(p + "attention_norm.weight", H);
      lp.wq = mat(p + "attention.wq.weight", cfg.q_dim(), H);
      lp.wk = mat(p + "attention.wk.weight", cfg.kv_dim(), H);
      lp.wv = mat(p + "attention.wv.weight", cfg.kv_dim(), H);
      lp.wo = mat(p + "attention.wo.weight", H, cfg.q_dim());
      lp.ffn_norm = vec(p + "ffn_norm.weight", H);
      lp.router = mat(p + "block_sparse_moe.gate.weight", cfg.n_experts, H);
      lp.experts.resize(cfg.n_experts);
      for (std::size_t e = 0; e < cfg.n_experts; ++e) {
        const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        lp.experts[e].w1 = mat(q + "w1.weight", F, H);
        lp.experts[e].w3 = mat(q + "w3.weight", F, H);
        lp.experts[e].w2 = mat(q + "w2.weight", H, F);
      }
    }
    norm = vec("norm.weight", H);
    lm_head = mat("output.weight", cfg.vocab_size, H);
  }
  // Views point into block_: moving keeps them valid, copying would not.
  ParamSet(ParamSet&&) noexcept = default;
  ParamSet& operator=(ParamSet&&) noexcept = default;
  ParamSet(const ParamSet&) = delete;
  ParamSet& operator=(const ParamSet&) = delete;

  const Config& config() const { return cfg_; }
  /// Every parameter as one contiguous span (for AdamW, norms, zeroing).
  std::span<T> flat() { return block_.span(); }
  std::span<const T> flat() const { return block_.span(); }
  /// The tensors in checkpoint order.
  const std::vector<NamedParam<T, L>>& named() const { return all_; }
  void zero() {
    for (T& x : block_.span()) x = T(0);
  }
  /// Copies values from another set of the same config (no allocation).
  void assign(const ParamSet& o) {
    std::copy(o.block_.data(), o.block_.data() + o.block_.size(), block_.data());
  }

  MatrixView<T, L> embed;
  std::vector<LayerParams<T, L>> layers;
  std::span<T> norm;
  MatrixView<T, L> lm_head;

 private:
  Config cfg_;
  AlignedBuffer<T> block_;
  std::vector<NamedParam<T, L>> all_;
};

/// The squared norm of a gradient ParamSet, assembled tensor by tensor: backward records
/// the sums of squares that its weight-gradient products return as they write a gradient
/// (GradMode::overwrite, backend::gemm_sumsq; Workspace::grad_slot) — the small preset's
/// expert gradients are written to memory with streaming stores and would otherwise be read
/// back for the norm alone — and total() sums the tensors nobody recorded (embedding and
/// norm gains) itself. Trainer::train_step's gradient norm is sqrt(total()).
template <Scalar T, Layout L>
class GradSquares {
 public:
  explicit GradSquares(const ParamSet<T, L>& grads) {
    for (const auto& p : grads.named()) flat_.push_back(std::span<const T>(p.flat()));
    ssq_.assign(flat_.size(), 0.0);
    recorded_.assign(flat_.size(), 0);
  }
  /// Forgets every recorded sum (before a backward pass).
  void clear() { std::fill(recorded_.begin(), recorded_.end(), char{0}); }
  /// Where to record the sum of squares of the gradient tensor whose data starts at g (counted
  /// as recorded from now on), or nullptr when g starts none of this ParamSet's tensors.
  double* slot(const T* g) {
    // the tensors lie in memory order
    const auto it = std::ranges::lower_bound(flat_, g, {}, [](auto t) { return t.data(); });
    if (it == flat_.end() || it->data() != g) return nullptr;
    const auto i = static_cast<std::size_t>(it - flat_.begin());
    recorded_[i] = 1;
    return &ssq_[i];
  }
  /// sum g^2 over every tensor: the recorded sums, and sum_squares of the others, in tensor
  /// order.
  double total() const {
    double s = 0.0;
    for (std::size_t i = 0; i < flat_.size(); ++i)
      s += recorded_[i] ? ssq_[i] : sum_squares(flat_[i]);
    return s;
  }
  /// How many tensors have a recorded sum.
  std::size_t recorded() const {
    return static_cast<std::size_t>(std::count(recorded_.begin(), recorded_.end(), char{1}));
  }

 private:
  std::vector<std::span<const T>> flat_;  // the gradient tensors, in memory order
  std::vector<double> ssq_;
  std::vector<char> recorded_;
};

}  // namespace rosetta
