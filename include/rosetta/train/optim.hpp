// Optimiser pieces with PyTorch semantics: AdamW, the warmup + cosine schedule, global-norm
// clipping.
#pragma once

#include <cmath>
#include <numbers>
#include <span>

#include "rosetta/core/errors.hpp"
#include "rosetta/core/sum_squares.hpp"

namespace rosetta {

struct TrainConfig {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  double clip = 1.0;  // 0 disables clipping
  std::size_t warmup = 1000, total_steps = 100000;

  void validate() const {
    auto bad = [](const char* n, double v, const char* allowed) {
      detail::raise<ConfigError>("TrainConfig: ", n, "=", v, " (allowed ", allowed, ")");
    };
    if (!(lr >= 0) || !std::isfinite(lr)) bad("lr", lr, ">= 0, finite");
    if (!(beta1 >= 0 && beta1 < 1)) bad("beta1", beta1, "[0, 1)");
    if (!(beta2 >= 0 && beta2 < 1)) bad("beta2", beta2, "[0, 1)");
    if (!(eps > 0)) bad("eps", eps, "> 0");
    if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
      bad("weight_decay", weight_decay, ">= 0");
    if (!(clip >= 0) || !std::isfinite(clip)) bad("clip", clip, ">= 0 (0 disables)");
    if (total_steps < warmup)
      detail::raise<ConfigError>("TrainConfig: total_steps=", total_steps, " < warmup=", warmup);
  }
};

/// Learning rate of step t (t = 1, 2, ...):
///   t <= warmup:  lr * t / warmup
///   after:        0.1 lr + 0.9 lr * (1 + cos(pi * progress)) / 2,
///                 progress = (t - warmup) / (total - warmup), clamped to [0, 1].
inline double lr_at(const TrainConfig& c, std::size_t t) {
  if (c.warmup > 0 && t <= c.warmup)
    return c.lr * static_cast<double>(t) / static_cast<double>(c.warmup);
  const double span = static_cast<double>(c.total_steps - c.warmup);
  double progress = span > 0 ? static_cast<double>(t - c.warmup) / span : 1.0;
  progress = std::min(1.0, std::max(0.0, progress));
  const double min_lr = 0.1 * c.lr;
  return min_lr + (c.lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

/// sqrt(sum g^2), summed in sum_squares's fixed order (core/sum_squares.hpp).
template <class T>
double global_norm(std::span<const T> g) {
  return std::sqrt(sum_squares(g));
}

/// The clipping factor: clip / (norm + 1e-6) if norm > clip > 0, else 1.
inline double clip_factor(double norm, double clip) {
  return (clip <= 0 || !(norm > clip)) ? 1.0 : clip / (norm + 1e-6);
}

/// If norm > clip > 0: g *= clip / (norm + 1e-6). Returns the factor applied (1 if none).
template <class T>
double clip_by_global_norm(std::span<T> g, double norm, double clip) {
  const double f = clip_factor(norm, clip);
  if (f != 1.0)
    for (T& x : g) x = static_cast<T>(x * f);
  return f;
}

/// One AdamW step (t from 1), decoupled weight decay as torch.optim.AdamW:
///   p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
///   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
///
/// grad_scale != 1 applies gradient clipping in the same pass: the gradient used is
/// T(g * grad_scale), exactly what clip_by_global_norm would have stored, without the extra
/// read and write of every gradient (g itself is left unscaled).
template <class T>
void adamw_step(std::span<T> p, std::span<const T> g, std::span<T> m, std::span<T> v,
                const TrainConfig& c, double lr, std::size_t t, double grad_scale = 1.0) {
  const T b1 = static_cast<T>(c.beta1), b2 = static_cast<T>(c.beta2);
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
  const T decay = static_cast<T>(1.0 - lr * c.weight_decay);
  // As torch: step_size = lr / bc1 and the bias corrections as scalars, so each element
  // needs one division (m / denominator) and one square root; 1 / sqrt(bc2) is a multiply
  // (three divisions per element made the step bound by the divider: 27 % of mem_train_step).
  const T step_size = static_cast<T>(lr / bc1), rsbc2 = static_cast<T>(1.0 / std::sqrt(bc2));
  const T eps = static_cast<T>(c.eps);
  auto update = [&](auto grad) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      const T gi = grad(i);
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * rsbc2 + eps);
    }
  };
  if (grad_scale == 1.0)
    update([&](std::size_t i) { return g[i]; });
  else
    update([&](std::size_t i) { return static_cast<T>(g[i] * grad_scale); });
}

}  // namespace rosetta
