// Text generation. max_len counts the prompt.
#pragma once

#include <cstdint>
#include <vector>

#include <functional>

#include "rosetta/generate/sampling.hpp"
#include "rosetta/model/transformer.hpp"

namespace rosetta {

/// Index of the largest value; ties pick the lowest index.
template <class T, class L>
std::int32_t argmax_row(MatrixView<const T, L> m, std::size_t row) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < m.cols(); ++j)
    if (m(row, j) > m(row, best)) best = j;
  return static_cast<std::int32_t>(best);
}

namespace detail {
inline void validate_generation(const Config& c, std::span<const std::int32_t> prompt,
                                std::size_t max_len) {
  if (prompt.empty()) raise<ValueError>("generate: empty prompt (need at least one token)");
  if (max_len > c.max_seq_len)
    raise<ValueError>("generate: max_len=", max_len, " exceeds max_seq_len=", c.max_seq_len);
  if (max_len < prompt.size())
    raise<ValueError>("generate: max_len=", max_len, " is shorter than the prompt (", prompt.size(),
                      " tokens; max_len counts the prompt)");
  validate_batch(c, TokenBatch{prompt, 1, prompt.size()}, "prompt");
}
}  // namespace detail

/// Greedy decoding by running the whole sequence again for every new token (the reference
/// the KV-cache path is tested against).
template <class P>
std::vector<std::int32_t> generate_full_recompute(const Transformer<P>& model,
                                                  std::span<const std::int32_t> prompt,
                                                  std::size_t max_len) {
  detail::validate_generation(model.config(), prompt, max_len);
  std::vector<std::int32_t> seq(prompt.begin(), prompt.end());
  auto ws = model.make_workspace();
  while (seq.size() < max_len) {
    auto logits = model.forward(TokenBatch{seq, 1, seq.size()}, ws);
    seq.push_back(argmax_row(logits, seq.size() - 1));
  }
  return seq;
}

/// Incremental generation with a KV cache: one forward over the prompt, then one forward
/// per new token over that position only. Holds the cache, workspace and sampler buffers,
/// so generating allocates nothing per token (beyond what a callback does).
template <class P>
class Generator {
 public:
  using T = typename P::scalar;
  using L = typename P::layout;

  /// capacity: the longest max_len this generator will serve (<= max_seq_len).
  Generator(const Transformer<P>& model, std::size_t capacity)
      : model_(model), cache_(model.config(), 1, capacity), ws_(model.config()) {
    model_.reserve_decode(ws_, cache_, capacity);
    scratch_.reserve(model.config().vocab_size);
    out_.reserve(capacity);
  }

  /// Prompt followed by generated tokens, max_len in all (max_len counts the prompt).
  /// on_token(id) is called for each new token as soon as it is chosen.
  template <class S>
  const std::vector<std::int32_t>& run(std::span<const std::int32_t> prompt, std::size_t max_len,
                                       const S& strategy, std::uint64_t seed,
                                       const std::function<void(std::int32_t)>& on_token = {}) {
    detail::validate_generation(model_.config(), prompt, max_len);
    if (max_len > cache_.capacity())
      detail::raise<ValueError>("generate: max_len=", max_len, " exceeds the generator's capacity ",
                                cache_.capacity());
    cache_.clear();
    out_.assign(prompt.begin(), prompt.end());
    Rng rng(seed);
    if (out_.size() >= max_len) return out_;
    auto logits = model_.forward_cached(TokenBatch{prompt, 1, prompt.size()}, cache_, ws_);
    std::size_t last = prompt.size() - 1;
    while (out_.size() < max_len) {
      const auto row = logits.rows(last, 1);
      const std::int32_t next = pick_token(strategy, row_span(row), rng, scratch_);
      out_.push_back(next);
      if (on_token) on_token(next);
      if (out_.size() == max_len) break;
      logits = model_.forward_cached(
          TokenBatch{std::span<const std::int32_t>(&out_.back(), 1), 1, 1}, cache_, ws_);
      last = 0;
    }
    return out_;
  }

 private:
  /// A logits row as a contiguous span (copied for column-major layouts).
  std::span<const T> row_span(MatrixView<const T, L> row) {
    if constexpr (L::is_row_major) {
      return {row.data(), row.cols()};
    } else {
      row_buf_.resize(row.cols());
      for (std::size_t j = 0; j < row.cols(); ++j) row_buf_[j] = row(0, j);
      return row_buf_;
    }
  }

  const Transformer<P>& model_;
  KVCache<T, L> cache_;
  Workspace<T, L> ws_;
  SamplerScratch scratch_;
  std::vector<std::int32_t> out_;
  std::vector<T> row_buf_;
};

/// Generates up to max_len tokens (prompt included) with a sampling strategy and seed.
template <class P, class S>
std::vector<std::int32_t> generate(const Transformer<P>& model,
                                   std::span<const std::int32_t> prompt, std::size_t max_len,
                                   const S& strategy, std::uint64_t seed) {
  detail::validate_generation(model.config(), prompt, max_len);
  Generator<P> g(model, max_len);
  return g.run(prompt, max_len, strategy, seed);
}

template <class P>
std::vector<std::int32_t> generate_greedy(const Transformer<P>& model,
                                          std::span<const std::int32_t> prompt,
                                          std::size_t max_len) {
  return generate(model, prompt, max_len, Greedy{}, 0);
}
template <class P>
std::vector<std::int32_t> generate_sample(const Transformer<P>& model,
                                          std::span<const std::int32_t> prompt, std::size_t max_len,
                                          double temperature, std::uint64_t seed) {
  return generate(model, prompt, max_len, Temperature(temperature), seed);
}
template <class P>
std::vector<std::int32_t> generate_topk(const Transformer<P>& model,
                                        std::span<const std::int32_t> prompt, std::size_t max_len,
                                        std::int64_t k, double temperature, std::uint64_t seed) {
  return generate(model, prompt, max_len, TopK(k, temperature), seed);
}
template <class P>
std::vector<std::int32_t> generate_topp(const Transformer<P>& model,
                                        std::span<const std::int32_t> prompt, std::size_t max_len,
                                        double p, double temperature, std::uint64_t seed) {
  return generate(model, prompt, max_len, TopP(p, temperature), seed);
}

}  // namespace rosetta
