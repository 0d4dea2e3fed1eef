// MoE router and its auxiliary load-balancing loss.
//   probs = softmax(logits) over all E experts;  top-k by probability (ties: lowest index);
//   w_j = p_{e_j} / sum_{i<k} p_{e_i}  (renormalised over the k selected)
//   L_aux = alpha * E * sum_e f_e P_e,  f_e = share of the T*k assignments to e (constant),
//   P_e = mean_t probs[t, e]
#pragma once

#include <cstdint>

#include "rosetta/kernels/common.hpp"
#include "rosetta/kernels/softmax.hpp"

namespace rosetta::kernels {

/// probs: [T, E] (overwritten with softmax(logits); may alias logits);
/// idx, w: [T*k] selected experts and renormalised weights, token-major.
template <class T, class L>
void router_forward(MatrixView<T, L> probs, std::span<std::int32_t> idx, std::span<T> w,
                    CMat<T, L> logits, std::size_t k) {
  softmax_forward(probs, logits);
  const std::size_t E = probs.cols();
  for (std::size_t t = 0; t < probs.rows(); ++t) {
    std::int32_t* sel = idx.data() + t * k;
    T sum = 0;
    for (std::size_t j = 0; j < k; ++j) {
      std::int32_t best = -1;
      for (std::size_t e = 0; e < E; ++e) {
        bool taken = false;
        for (std::size_t i = 0; i < j; ++i) taken |= sel[i] == static_cast<std::int32_t>(e);
        // strict '>' while scanning upward: the lowest index wins a tie
        if (!taken && (best < 0 || probs(t, e) > probs(t, static_cast<std::size_t>(best))))
          best = static_cast<std::int32_t>(e);
      }
      sel[j] = best;
      sum += probs(t, static_cast<std::size_t>(best));
    }
    for (std::size_t j = 0; j < k; ++j)
      w[t * k + j] = probs(t, static_cast<std::size_t>(sel[j])) / sum;
  }
}

/// Returns L_aux and fills f[e] (share of the T*k assignments routed to e).
template <class T, class L>
T aux_loss_forward(std::span<T> f, MatrixView<const T, L> probs, std::span<const std::int32_t> idx,
                   T alpha) {
  const std::size_t Tn = probs.rows(), E = probs.cols();
  for (std::size_t e = 0; e < E; ++e) f[e] = 0;
  for (std::int32_t e : idx) f[static_cast<std::size_t>(e)] += T(1);
  for (std::size_t e = 0; e < E; ++e) f[e] /= static_cast<T>(idx.size());
  T loss = 0;
  for (std::size_t e = 0; e < E; ++e) {
    T Pe = 0;
    for (std::size_t t = 0; t < Tn; ++t) Pe += probs(t, e);
    loss += f[e] * Pe / static_cast<T>(Tn);
  }
  return alpha * static_cast<T>(E) * loss;
}

/// Gradient into the router logits (overwrites dlogits: [T, E]), from
///  - dw [T*k]: dL/dw_j of the renormalised weights:
///      dp_{e_j} += (dw_j - sum_i dw_i w_i) / sum_i p_{e_i}
///  - the aux loss (f constant): dp[t, e] += alpha * E * f_e / T * aux_scale
/// then through the softmax: dlogits = probs * (dp - sum_e dp * probs).
template <class T, class L>
void router_backward(MatrixView<T, L> dlogits, std::span<const T> dw, CMat<T, L> probs,
                     std::span<const std::int32_t> idx, std::span<const T> w, std::span<const T> f,
                     T alpha, std::size_t k, T aux_scale = T(1)) {
  const std::size_t Tn = probs.rows(), E = probs.cols();
  const T aux = alpha * static_cast<T>(E) / static_cast<T>(Tn) * aux_scale;
  for (std::size_t t = 0; t < Tn; ++t) {
    for (std::size_t e = 0; e < E; ++e) dlogits(t, e) = aux * f[e];
    T psum = 0, dot = 0;
    for (std::size_t j = 0; j < k; ++j) {
      psum += probs(t, static_cast<std::size_t>(idx[t * k + j]));
      dot += dw[t * k + j] * w[t * k + j];
    }
    for (std::size_t j = 0; j < k; ++j)
      dlogits(t, static_cast<std::size_t>(idx[t * k + j])) += (dw[t * k + j] - dot) / psum;
  }
  softmax_backward(dlogits, MatrixView<const T, L>(dlogits), probs);
}

}  // namespace rosetta::kernels
