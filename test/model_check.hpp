// Helpers shared by the model tests: token batches (ids and next-token targets drawn from the
// library's Rng), the relative error that parity checks compare against a tolerance, and the
// check of a training step's gradient norm.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <rosetta/rosetta.hpp>
#include <span>
#include <type_traits>
#include <vector>

namespace rosetta::test {

struct Batch {
  std::size_t batch = 0, seq = 0;
  std::vector<std::int32_t> ids, targets;
  TokenBatch tokens() const { return TokenBatch{ids, batch, seq}; }
};

/// batch x seq token ids and targets, uniform over [0, vocab), from Rng(seed, 12345).
inline Batch random_batch(std::size_t batch, std::size_t seq, std::size_t vocab,
                          std::uint64_t seed) {
  Batch b;
  b.batch = batch;
  b.seq = seq;
  Rng rng(seed, 12345);
  for (std::size_t i = 0; i < batch * seq; ++i) {
    b.ids.push_back(static_cast<std::int32_t>(rng.below(vocab)));
    b.targets.push_back(static_cast<std::int32_t>(rng.below(vocab)));
  }
  return b;
}

/// ||a - b|| / ||b|| over all elements (0 when both are zero; infinite when the sizes differ
/// or b is zero and a is not).
inline double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  long double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const long double d = static_cast<long double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<long double>(b[i]) * b[i];
  }
  if (den == 0) return num == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return static_cast<double>(std::sqrt(num / den));
}

/// Trainer::train_step's gradient norm is assembled from the sums of squares that the
/// weight-gradient products return (backend::gemm_sumsq) and a pass over the other tensors:
/// it must be the norm of the gradients the step computed (global_norm over all of them,
/// within the float summation error), with every linear layer's weight gradient recorded
/// (4 attention and 1 router product per layer, 3 per expert, the LM head). A sum recorded
/// for the wrong tensor, a product's sum missing a tail, or a tensor counted twice moves the
/// norm by far more than the tolerance. Three steps on batches from `seed`.
template <class P>
void expect_step_norm_is_the_gradient_norm(const Config& cfg, std::uint64_t seed) {
  using T = typename P::scalar;
  Transformer<P> model(cfg, seed);
  Trainer<P> trainer(model, TrainConfig{});
  const double rel = std::is_same_v<T, float> ? 2e-6 : 1e-12;
  for (std::uint64_t step = 0; step < 3; ++step) {
    const Batch b = random_batch(2, 8, cfg.vocab_size, seed + step);
    const auto r = trainer.train_step(b.tokens(), b.targets);
    const double want = global_norm(std::span<const T>(trainer.grads().flat()));
    EXPECT_LE(std::abs(r.grad_norm - want), rel * want)
        << P::name() << " step " << step << ": " << r.grad_norm << " vs " << want;
    EXPECT_EQ(trainer.grad_squares().recorded(), cfg.n_layers * (4 + 1 + 3 * cfg.n_experts) + 1)
        << P::name();
  }
}

}  // namespace rosetta::test
