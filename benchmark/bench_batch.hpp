// The token batch every model scenario of rosetta-bench feeds the model, shared with
// rosetta-rss-probe so the probe runs exactly the reference scenarios' inputs: fixed seed
// 42, ids then targets drawn uniformly from the vocabulary by Rng(42, 1000 + stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rosetta/core/rng.hpp"
#include "rosetta/model/config.hpp"
#include "rosetta/model/transformer.hpp"

namespace rosetta::bench {

inline constexpr std::uint64_t kSeed = 42;

struct Batch {
  std::vector<std::int32_t> ids, targets;
  TokenBatch tokens() const { return TokenBatch{ids, batch, seq}; }
  std::size_t batch, seq;
};

inline Batch make_batch(const Config& c, std::size_t batch, std::size_t seq,
                        std::uint64_t stream = 0) {
  Batch b{{}, {}, batch, seq};
  Rng rng(kSeed, 1000 + stream);
  for (std::size_t i = 0; i < batch * seq; ++i)
    b.ids.push_back(static_cast<std::int32_t>(rng.below(c.vocab_size)));
  for (std::size_t i = 0; i < batch * seq; ++i)
    b.targets.push_back(static_cast<std::int32_t>(rng.below(c.vocab_size)));
  return b;
}

}  // namespace rosetta::bench
