// Trainer: one model, its gradients, AdamW moments and a workspace; train_step runs
// forward -> loss -> backward -> clip -> AdamW with no heap allocation after the first call.
// The model type M defaults to Transformer<P>; any model with the same interface (config,
// params, forward, loss, backward over ParamSet / Workspace of P's scalar and layout) works,
// e.g. VirtualTransformer (VirtualTrainer in dispatch/virtual.hpp).
#pragma once

#include <cmath>
#include <concepts>

#include "rosetta/model/transformer.hpp"
#include "rosetta/train/optim.hpp"

namespace rosetta {

template <class T>
struct StepResult {
  T ce = 0, aux = 0, total = 0;
  double grad_norm = 0;  // before clipping
  double lr = 0;
};

template <class P, class M = Transformer<P>>
class Trainer {
 public:
  using T = typename P::scalar;
  using L = typename P::layout;
  using Model = M;
  static_assert(std::same_as<typename M::policy, P>, "Trainer<P, M>: M::policy must be P");

  Trainer(Model& model, const TrainConfig& tc)
      : model_(model),
        tc_(validated(tc)),
        grads_(model.config()),
        m_(model.config()),
        v_(model.config()),
        ws_(model.config()),
        squares_(grads_) {}

  /// One step at the scheduled learning rate lr_at(step() + 1).
  StepResult<T> train_step(const TokenBatch& tokens, std::span<const std::int32_t> targets) {
    return train_step(tokens, targets, lr_at(tc_, t_ + 1));
  }

  /// One step at an explicit learning rate. Throws NumericalError (weights, moments and
  /// step count untouched) if the loss or the gradient norm is not finite.
  StepResult<T> train_step(const TokenBatch& tokens, std::span<const std::int32_t> targets,
                           double lr);

  std::size_t step() const { return t_; }
  /// For resuming: the optimizer step count the moments belong to.
  void set_step(std::size_t t) { t_ = t; }
  const TrainConfig& config() const { return tc_; }
  Model& model() { return model_; }
  ParamSet<T, L>& grads() { return grads_; }
  ParamSet<T, L>& adam_m() { return m_; }
  ParamSet<T, L>& adam_v() { return v_; }
  Workspace<T, L>& workspace() { return ws_; }
  /// The gradients' sums of squares that the last step's backward recorded.
  const GradSquares<T, L>& grad_squares() const { return squares_; }

 private:
  static const TrainConfig& validated(const TrainConfig& c) {
    c.validate();
    return c;
  }
  Model& model_;
  TrainConfig tc_;
  ParamSet<T, L> grads_, m_, v_;
  Workspace<T, L> ws_;
  GradSquares<T, L> squares_;  // of grads_, recorded by backward
  std::size_t t_ = 0;
};

// Out of class (non-inline), so an extern template declaration can skip it.
template <class P, class M>
StepResult<typename P::scalar> Trainer<P, M>::train_step(const TokenBatch& tokens,
                                                         std::span<const std::int32_t> targets,
                                                         double lr) {
  StepResult<T> r;
  model_.forward(tokens, ws_);
  const auto losses = model_.loss(ws_, targets);
  r.ce = losses.ce;
  r.aux = losses.aux;
  r.total = losses.total;
  if (!std::isfinite(static_cast<double>(r.total)))
    detail::raise<NumericalError>("train_step ", t_ + 1, ": loss is not finite (ce=", r.ce,
                                  ", aux=", r.aux, "); weights left unchanged");
  // Written, not accumulated into zeros: no zeroing pass over every gradient, and the weight
  // gradient products do not read the old values (mem_train_step 403 -> 366 us,
  // scale_train_256 12.5 -> 11.3 ms on hwy; interleaved runs).
  // The weight-gradient products also return their gradients' sums of squares (recorded in
  // squares_ through the workspace), so the norm reads only the gradients nobody summed (the
  // embedding's and the norm gains'): the small preset's expert gradients go to memory with
  // streaming stores, and reading them back for the norm alone took ~7 % of scale_train_256.
  squares_.clear();
  ws_.grad_squares = &squares_;
  model_.backward(ws_, targets, grads_, GradMode::overwrite);
  r.grad_norm = std::sqrt(squares_.total());
  if (!std::isfinite(r.grad_norm))
    detail::raise<NumericalError>("train_step ", t_ + 1, ": gradient norm is ", r.grad_norm,
                                  "; weights left unchanged");
  // Clipping is applied inside the AdamW pass (same values as clipping first; grads() keeps
  // the unclipped gradients).
  ++t_;
  adamw_step(model_.params().flat(), std::span<const T>(grads_.flat()), m_.flat(), v_.flat(), tc_,
             lr, t_, clip_factor(r.grad_norm, tc_.clip));
  r.lr = lr;
  return r;
}

}  // namespace rosetta
