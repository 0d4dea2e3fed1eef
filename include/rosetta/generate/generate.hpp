// Text generation. max_len counts the prompt.
#pragma once

#include <cstdint>
#include <vector>

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
    raise<ValueError>("generate: max_len=", max_len, " is shorter than the prompt (",
                      prompt.size(), " tokens; max_len counts the prompt)");
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

}  // namespace rosetta
