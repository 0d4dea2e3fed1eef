// Token batches for the model tests: ids and next-token targets, drawn from the library's Rng
// (random_batch) or from a fixed formula (fixed_batch); one definition for every test file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <rosetta/rosetta.hpp>
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

}  // namespace rosetta::test
