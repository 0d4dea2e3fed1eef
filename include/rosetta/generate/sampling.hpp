// Sampling strategies. Each is a small value type with a validated parameter set and
//   pick_token(logits, rng, scratch) -> token id
// usable as a compile-time type (Greedy, Temperature, TopK, TopP) or at run time through
// AnyStrategy (a std::variant of the same types: one definition each, no copies).
//
// Semantics (contract, Inference): greedy ties pick the lowest id; temperature t == 0 means
// greedy (a negative t is a ValueError); top-k with k == 0 or k >= V is plain sampling
// (a negative k is a ValueError); top-p keeps the smallest prefix of the descending
// distribution whose mass reaches p (at least one token), p in (0, 1]. One uniform draw
// per sampled token, inverse-CDF over the kept tokens in descending-probability order
// (index order for plain sampling).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "rosetta/core/errors.hpp"
#include "rosetta/core/rng.hpp"

namespace rosetta {

/// Reusable buffers so that sampling allocates nothing per token once sized.
struct SamplerScratch {
  std::vector<double> p;
  std::vector<std::int32_t> order;
  void reserve(std::size_t V) {
    if (p.size() < V) p.resize(V);
    if (order.size() < V) order.resize(V);
  }
};

namespace detail {

template <class T>
std::int32_t argmax(std::span<const T> logits) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < logits.size(); ++j)
    if (logits[j] > logits[best]) best = j;
  return static_cast<std::int32_t>(best);
}

/// p[j] = softmax(logits / t)[j] for j in ids (others untouched); returns nothing.
template <class T>
void tempered_softmax(std::span<const T> logits, double t, std::span<const std::int32_t> ids,
                      std::span<double> p) {
  double m = -INFINITY;
  for (auto j : ids) m = std::max(m, static_cast<double>(logits[static_cast<std::size_t>(j)]));
  double sum = 0;
  for (auto j : ids) {
    const auto u = static_cast<std::size_t>(j);
    p[u] = std::exp((static_cast<double>(logits[u]) - m) / t);
    sum += p[u];
  }
  for (auto j : ids) p[static_cast<std::size_t>(j)] /= sum;
}

/// Draws from the distribution p restricted to ids (already normalised over ids) with one
/// uniform from rng, walking ids in order.
inline std::int32_t draw(std::span<const std::int32_t> ids, std::span<const double> p, Rng& rng) {
  const double u = rng.uniform();
  double cum = 0;
  for (auto j : ids) {
    cum += p[static_cast<std::size_t>(j)];
    if (u < cum) return j;
  }
  return ids.back();  // rounding left u >= total mass
}

/// Sorts ids by descending probability (ties: lower id first). std::sort with a total
/// order instead of std::stable_sort, which allocates a temporary buffer per call.
inline void sort_desc(std::span<std::int32_t> ids, std::span<const double> key) {
  std::sort(ids.begin(), ids.end(), [&](std::int32_t a, std::int32_t b) {
    const double ka = key[static_cast<std::size_t>(a)], kb = key[static_cast<std::size_t>(b)];
    return ka > kb || (ka == kb && a < b);
  });
}

inline void check_temperature(double t) {
  if (!(t >= 0) || !std::isfinite(t))
    raise<ValueError>("temperature=", t, " (allowed: t >= 0, finite; 0 means greedy)");
}

}  // namespace detail

struct Greedy {
  static constexpr const char* name = "greedy";
  template <class T>
  std::int32_t pick_token(std::span<const T> logits, Rng&, SamplerScratch&) const {
    return detail::argmax(logits);
  }
};

struct Temperature {
  static constexpr const char* name = "sample";
  double t = 1.0;
  explicit Temperature(double temperature = 1.0) : t(temperature) { detail::check_temperature(t); }
  template <class T>
  std::int32_t pick_token(std::span<const T> logits, Rng& rng, SamplerScratch& s) const {
    if (t == 0) return detail::argmax(logits);
    const std::size_t V = logits.size();
    s.reserve(V);
    std::span<std::int32_t> ids(s.order.data(), V);
    for (std::size_t j = 0; j < V; ++j) ids[j] = static_cast<std::int32_t>(j);
    detail::tempered_softmax(logits, t, ids, std::span<double>(s.p));
    return detail::draw(ids, s.p, rng);
  }
};

struct TopK {
  static constexpr const char* name = "topk";
  std::int64_t k = 40;
  double t = 1.0;
  explicit TopK(std::int64_t k_ = 40, double temperature = 1.0) : k(k_), t(temperature) {
    if (k < 0) detail::raise<ValueError>("top-k: k=", k, " (allowed: k >= 0; 0 means no cut)");
    detail::check_temperature(t);
  }
  template <class T>
  std::int32_t pick_token(std::span<const T> logits, Rng& rng, SamplerScratch& s) const {
    const std::size_t V = logits.size();
    if (k == 0 || static_cast<std::size_t>(k) >= V)
      return Temperature(t).pick_token(logits, rng, s);
    if (t == 0) return detail::argmax(logits);
    s.reserve(V);
    std::span<std::int32_t> ids(s.order.data(), V);
    for (std::size_t j = 0; j < V; ++j) {
      ids[j] = static_cast<std::int32_t>(j);
      s.p[j] = static_cast<double>(logits[j]);  // sort key: the logit
    }
    const auto kk = static_cast<std::size_t>(k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(kk), ids.end(),
                      [&](std::int32_t a, std::int32_t b) {
                        const auto ua = static_cast<std::size_t>(a),
                                   ub = static_cast<std::size_t>(b);
                        return s.p[ua] > s.p[ub] || (s.p[ua] == s.p[ub] && a < b);
                      });
    auto kept = ids.first(kk);
    detail::tempered_softmax(logits, t, kept, std::span<double>(s.p));
    return detail::draw(kept, s.p, rng);
  }
};

struct TopP {
  static constexpr const char* name = "topp";
  double p = 0.9;
  double t = 1.0;
  explicit TopP(double p_ = 0.9, double temperature = 1.0) : p(p_), t(temperature) {
    if (!(p > 0 && p <= 1)) detail::raise<ValueError>("top-p: p=", p, " (allowed: 0 < p <= 1)");
    detail::check_temperature(t);
  }
  template <class T>
  std::int32_t pick_token(std::span<const T> logits, Rng& rng, SamplerScratch& s) const {
    if (t == 0) return detail::argmax(logits);
    const std::size_t V = logits.size();
    s.reserve(V);
    std::span<std::int32_t> ids(s.order.data(), V);
    for (std::size_t j = 0; j < V; ++j) ids[j] = static_cast<std::int32_t>(j);
    detail::tempered_softmax(logits, t, ids, std::span<double>(s.p));
    detail::sort_desc(ids, s.p);
    std::size_t n = 0;
    double mass = 0;
    while (n < V && (n == 0 || mass < p)) mass += s.p[static_cast<std::size_t>(ids[n++])];
    auto kept = ids.first(n);
    for (auto j : kept) s.p[static_cast<std::size_t>(j)] /= mass;
    return detail::draw(kept, s.p, rng);
  }
};

/// A strategy chosen at run time.
using AnyStrategy = std::variant<Greedy, Temperature, TopK, TopP>;

template <class S, class T>
std::int32_t pick_token(const S& strategy, std::span<const T> logits, Rng& rng,
                        SamplerScratch& scratch) {
  if constexpr (std::is_same_v<S, AnyStrategy>)
    return std::visit([&](const auto& st) { return st.pick_token(logits, rng, scratch); },
                      strategy);
  else
    return strategy.pick_token(logits, rng, scratch);
}

/// Builds a strategy from its name ("greedy", "sample", "topk", "topp") and parameters.
inline AnyStrategy make_strategy(const std::string& name, double temperature = 1.0,
                                 std::int64_t k = 40, double p = 0.9) {
  if (name == "greedy") return Greedy{};
  if (name == "sample") return Temperature(temperature);
  if (name == "topk") return TopK(k, temperature);
  if (name == "topp") return TopP(p, temperature);
  detail::raise<ValueError>("strategy '", name, "' is not one of: greedy, sample, topk, topp");
}

}  // namespace rosetta
