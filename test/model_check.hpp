// Helpers shared by the model tests: token batches (ids and next-token targets drawn from the
// library's Rng) and the relative error that parity checks compare against a tolerance.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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

}  // namespace rosetta::test
