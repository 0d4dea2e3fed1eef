// The virtual twin: the same model with runtime polymorphism where Transformer<Policy> has
// templates, for the dispatch axis of the benchmarks.
//
//   backend::GemmTable       one gemm function pointer per (scalar, layout), plus a name, and
//                            one gemm_sumsq each (null: the table's gemm, then a sum of squares)
//   backend::gemm_table<B>() the table calling B::gemm; counting_gemm_table<B>() also adds
//                            2·m·n·k per call to the thread's backend::flop_counter()
//   backend::Dynamic         a Backend whose gemm calls through the selected table
//   ILayer<T, L>             one stage of the model behind a virtual interface
//   StageLayer<S>            the one adapter: any stage of layers/stages.hpp as an ILayer
//   VirtualTransformer<T, L> the model as std::vector<std::unique_ptr<ILayer<T, L>>>
//   VirtualTrainer<T, L>     Trainer over it
//
// No layer is written twice: the adapter forwards to the stage functions Transformer<P>
// calls, instantiated with Policy<T, L, backend::Dynamic>. With Dynamic set to
// gemm_table<B>(), VirtualTransformer<T, L> computes bit-for-bit what
// Transformer<Policy<T, L, B>> computes (test/test_virtual.cpp).
//
// Thread safety: the table selection is one process-wide std::atomic. Select it before
// starting threads that run models (or through a Dynamic::Scope around single-threaded
// work); changing it while other threads run gemms is not a data race, but those threads
// may then finish their pass on the new table.
#pragma once

#include <array>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "rosetta/backend/common.hpp"
#include "rosetta/backend/naive.hpp"
#include "rosetta/core/policy.hpp"
#include "rosetta/layers/stages.hpp"
#include "rosetta/model/transformer.hpp"
#include "rosetta/train/trainer.hpp"

namespace rosetta::backend {

/// A backend as data: one gemm per (scalar, layout), and one backend::gemm_sumsq (the
/// weight gradients of a training step; null: the table's gemm, then sum_squares of C).
/// Tables handed to Dynamic must outlive their selection (the ones below are static).
struct GemmTable {
  const char* name;
  GemmFn<float, RowMajor> float_row;
  GemmFn<float, ColMajor> float_col;
  GemmFn<double, RowMajor> double_row;
  GemmFn<double, ColMajor> double_col;
  GemmSumSqFn<float, RowMajor> float_row_sumsq = nullptr;
  GemmSumSqFn<float, ColMajor> float_col_sumsq = nullptr;
  GemmSumSqFn<double, RowMajor> double_row_sumsq = nullptr;
  GemmSumSqFn<double, ColMajor> double_col_sumsq = nullptr;

  /// The gemm_sumsq entry for scalar T and layout L (may be null).
  template <class T, class L>
  constexpr GemmSumSqFn<T, L> get_sumsq() const noexcept {
    return pick<T, L>(float_row_sumsq, float_col_sumsq, double_row_sumsq, double_col_sumsq);
  }

  /// The entry for scalar T and layout L.
  template <class T, class L>
  constexpr GemmFn<T, L> get() const noexcept {
    return pick<T, L>(float_row, float_col, double_row, double_col);
  }

 private:
  /// The one of four per-(scalar, layout) members that belongs to (T, L).
  template <class T, class L>
  static constexpr auto pick(auto fr, auto fc, auto dr, auto dc) noexcept {
    static_assert(Scalar<T> && (std::same_as<L, RowMajor> || std::same_as<L, ColMajor>));
    constexpr bool row = std::same_as<L, RowMajor>;
    if constexpr (std::same_as<T, float>) {
      if constexpr (row)
        return fr;
      else
        return fc;
    } else {
      if constexpr (row)
        return dr;
      else
        return dc;
    }
  }
};

/// FLOPs (2·m·n·k per gemm, as issued) counted on this thread by counting_gemm_table()
/// entries. Reset it by assigning 0.
inline std::uint64_t& flop_counter() noexcept {
  thread_local std::uint64_t flops = 0;
  return flops;
}

namespace detail {

template <class B, class T, class L>
void table_gemm(Op opA, Op opB, T alpha, MatrixView<const T, L> A, MatrixView<const T, L> Bm,
                T beta, MatrixView<T, L> C) {
  B::gemm(opA, opB, alpha, A, Bm, beta, C);
}

template <class B, class T, class L>
double table_gemm_sumsq(Op opA, Op opB, T alpha, MatrixView<const T, L> A,
                        MatrixView<const T, L> Bm, MatrixView<T, L> C) {
  return backend::gemm_sumsq<B>(opA, opB, alpha, A, Bm, C);
}

/// Counts after the call: a gemm that throws (bad shapes) executed nothing.
template <class B, class T, class L>
void counting_table_gemm(Op opA, Op opB, T alpha, MatrixView<const T, L> A,
                         MatrixView<const T, L> Bm, T beta, MatrixView<T, L> C) {
  B::gemm(opA, opB, alpha, A, Bm, beta, C);
  const std::uint64_t m = op_rows(opA, A), k = op_cols(opA, A), n = op_cols(opB, Bm);
  flop_counter() += 2 * m * n * k;
}

template <class B, class T, class L>
double counting_table_gemm_sumsq(Op opA, Op opB, T alpha, MatrixView<const T, L> A,
                                 MatrixView<const T, L> Bm, MatrixView<T, L> C) {
  const double s = backend::gemm_sumsq<B>(opA, opB, alpha, A, Bm, C);
  const std::uint64_t m = op_rows(opA, A), k = op_cols(opA, A), n = op_cols(opB, Bm);
  flop_counter() += 2 * m * n * k;
  return s;
}

/// "counting:<backend name>", as a static NUL-terminated string.
template <class B>
inline constexpr auto counting_name = [] {
  constexpr std::string_view prefix = "counting:", base = B::name;
  std::array<char, prefix.size() + base.size() + 1> s{};
  for (std::size_t i = 0; i < prefix.size(); ++i) s[i] = prefix[i];
  for (std::size_t i = 0; i < base.size(); ++i) s[prefix.size() + i] = base[i];
  return s;
}();

template <class B>
inline constexpr GemmTable plain_table{
    B::name,
    &table_gemm<B, float, RowMajor>,
    &table_gemm<B, float, ColMajor>,
    &table_gemm<B, double, RowMajor>,
    &table_gemm<B, double, ColMajor>,
    &table_gemm_sumsq<B, float, RowMajor>,
    &table_gemm_sumsq<B, float, ColMajor>,
    &table_gemm_sumsq<B, double, RowMajor>,
    &table_gemm_sumsq<B, double, ColMajor>,
};

template <class B>
inline constexpr GemmTable counting_table{
    counting_name<B>.data(),
    &counting_table_gemm<B, float, RowMajor>,
    &counting_table_gemm<B, float, ColMajor>,
    &counting_table_gemm<B, double, RowMajor>,
    &counting_table_gemm<B, double, ColMajor>,
    &counting_table_gemm_sumsq<B, float, RowMajor>,
    &counting_table_gemm_sumsq<B, float, ColMajor>,
    &counting_table_gemm_sumsq<B, double, RowMajor>,
    &counting_table_gemm_sumsq<B, double, ColMajor>,
};

}  // namespace detail

/// The table whose entries call B::gemm (name: B::name).
template <Backend B>
const GemmTable& gemm_table() noexcept {
  return detail::plain_table<B>;
}

/// The table whose entries call B::gemm and then add 2·m·n·k (op(A): m x k, op(B): k x n)
/// to flop_counter() (name: "counting:" + B::name).
template <Backend B>
const GemmTable& counting_gemm_table() noexcept {
  return detail::counting_table<B>;
}

/// A backend chosen at run time: every gemm is one indirect call through the selected
/// GemmTable (default: gemm_table<Naive>()). Selection is process-wide; see the top of this
/// file for thread safety.
struct Dynamic {
  static constexpr const char* name = "dynamic";

  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const GemmTable& t = table();
    const GemmFn<T, L> fn = t.template get<T, L>();
    if (!fn)
      rosetta::detail::raise<BackendError>(
          "Dynamic::gemm: gemm table '", t.name, "' has no entry for ",
          std::same_as<T, float> ? "float" : "double", "/", L::name);
    fn(opA, opB, alpha, MatrixView<const T, L>(A), MatrixView<const T, L>(B), beta, C);
  }

  /// backend::gemm_sumsq through the selected table: its gemm_sumsq entry, or (null) its
  /// gemm and then sum_squares(C).
  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static double gemm_sumsq(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A,
                           MatrixView<TB, L> B, MatrixView<T, L> C) {
    if (const GemmSumSqFn<T, L> fn = table().template get_sumsq<T, L>())
      return fn(opA, opB, alpha, MatrixView<const T, L>(A), MatrixView<const T, L>(B), C);
    gemm(opA, opB, alpha, A, B, T(0), C);
    return sum_squares(MatrixView<const T, L>(C));
  }

  /// The selected table.
  static const GemmTable& table() noexcept { return *current_.load(std::memory_order_acquire); }
  /// Selects t for every thread (t must outlive the selection).
  static void set(const GemmTable& t) noexcept { current_.store(&t, std::memory_order_release); }

  /// Selects a table for its lifetime, then restores the previous one.
  class Scope {
   public:
    explicit Scope(const GemmTable& t) noexcept
        : previous_(current_.exchange(&t, std::memory_order_acq_rel)) {}
    ~Scope() { current_.store(previous_, std::memory_order_release); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const GemmTable* previous_;
  };

 private:
  static constinit inline std::atomic<const GemmTable*> current_{&detail::plain_table<Naive>};
};

static_assert(Backend<Dynamic>);

}  // namespace rosetta::backend

namespace rosetta {

/// One stage of the model behind a virtual interface. Stages own no parameters (they live
/// in the model's ParamSet, so optimizer and checkpoints see one block) and no activations
/// (those live in the Workspace): a stage is code plus its block index.
template <class T, class L>
class ILayer {
 public:
  virtual ~ILayer() = default;
  /// Reads its input from and writes its output to c.ws (see layers/stages.hpp).
  virtual void forward(const layers::ForwardContext<T, L>& c) const = 0;
  /// c.ws.dx holds dL/d(output) on entry (the head: c.ws.dlogits) and dL/d(input) on
  /// return; accumulates into c.grads.
  virtual void backward(const layers::BackwardContext<T, L>& c) const = 0;
  /// e.g. "embedding", "layers.0.attention", "layers.1.moe", "head".
  virtual std::string name() const = 0;

 protected:
  ILayer() = default;
  ILayer(const ILayer&) = default;
  ILayer& operator=(const ILayer&) = default;
};

/// The one adapter: stage S (any of layers/stages.hpp) of block `layer` as an ILayer.
template <layers::Stage S>
class StageLayer final : public ILayer<typename S::T, typename S::L> {
  using T = typename S::T;
  using L = typename S::L;

 public:
  explicit StageLayer(std::size_t layer = 0) : layer_(layer) {}
  void forward(const layers::ForwardContext<T, L>& c) const override { S::forward(c, layer_); }
  void backward(const layers::BackwardContext<T, L>& c) const override { S::backward(c, layer_); }
  std::string name() const override {
    return S::per_layer ? "layers." + std::to_string(layer_) + "." + S::name : S::name;
  }

 private:
  std::size_t layer_;
};

/// The model with virtual dispatch at both levels: each stage through ILayer, each gemm
/// through backend::Dynamic's table. Same interface, weights and numbers as
/// Transformer<Policy<T, L, B>> when Dynamic has gemm_table<B>() selected.
template <Scalar T, Layout L>
class VirtualTransformer {
 public:
  using policy = Policy<T, L, backend::Dynamic>;
  using Params = ParamSet<T, L>;
  using Work = Workspace<T, L>;
  using Layer = ILayer<T, L>;

  /// Validates cfg, allocates the parameters once, initialises them from seed (the same
  /// weights as Transformer for the same seed) and assembles the stages.
  explicit VirtualTransformer(const Config& cfg, std::uint64_t seed = 42);

  const Config& config() const { return cfg_; }
  Params& params() { return params_; }
  const Params& params() const { return params_; }
  Work make_workspace() const { return Work(cfg_); }
  /// Re-initialises the parameters from seed (see init_params).
  void init(std::uint64_t seed) { init_params(params_, seed); }
  /// The stages in forward order: embedding, then attention and moe per block, then head.
  const std::vector<std::unique_ptr<Layer>>& stages() const { return stages_; }

  /// As Transformer::forward: the logits [batch*seq, vocab], valid in ws until the next call.
  MatrixView<const T, L> forward(const TokenBatch& in, Work& ws) const;
  /// As Transformer::loss.
  Losses<T> loss(Work& ws, std::span<const std::int32_t> targets) const;
  /// As Transformer::backward: accumulates d(total loss)/d(parameter) into grads (or, with
  /// GradMode::overwrite, writes them).
  void backward(Work& ws, std::span<const std::int32_t> targets, Params& grads,
                GradMode mode = GradMode::accumulate) const;

 private:
  static const Config& validated(const Config& c) {
    c.validate();
    return c;
  }

  Config cfg_;
  Params params_;
  RopeTables<T> rope_;
  std::vector<std::unique_ptr<Layer>> stages_;
};

/// Trainer over the virtual model.
template <Scalar T, Layout L>
using VirtualTrainer = Trainer<Policy<T, L, backend::Dynamic>, VirtualTransformer<T, L>>;

// ---- out-of-class definitions (non-inline, so extern template can skip them) ----
template <Scalar T, Layout L>
VirtualTransformer<T, L>::VirtualTransformer(const Config& cfg, std::uint64_t seed)
    : cfg_(validated(cfg)), params_(cfg_), rope_(cfg_) {
  using P = policy;
  init(seed);
  stages_.reserve(2 * cfg_.n_layers + 2);
  stages_.push_back(std::make_unique<StageLayer<layers::EmbeddingStage<P>>>());
  for (std::size_t l = 0; l < cfg_.n_layers; ++l) {
    stages_.push_back(std::make_unique<StageLayer<layers::AttentionStage<P>>>(l));
    stages_.push_back(std::make_unique<StageLayer<layers::MoEStage<P>>>(l));
  }
  stages_.push_back(std::make_unique<StageLayer<layers::HeadStage<P>>>());
}

template <Scalar T, Layout L>
MatrixView<const T, L> VirtualTransformer<T, L>::forward(const TokenBatch& in, Work& ws) const {
  validate_batch(cfg_, in);
  ws.reserve(in.batch, in.seq);
  const auto c = detail::begin_forward(cfg_, params_, rope_, in, ws);
  for (const auto& layer : stages_) layer->forward(c);
  ws.has_forward = true;
  return ws.logits.crows(c.tokens());
}

template <Scalar T, Layout L>
Losses<T> VirtualTransformer<T, L>::loss(Work& ws, std::span<const std::int32_t> targets) const {
  detail::require_forward("VirtualTransformer", cfg_, ws, targets);
  return detail::losses(cfg_, ws, targets);
}

template <Scalar T, Layout L>
void VirtualTransformer<T, L>::backward(Work& ws, std::span<const std::int32_t> targets,
                                        Params& grads, GradMode mode) const {
  detail::require_forward("VirtualTransformer", cfg_, ws, targets);
  ws.reserve_backward();
  detail::loss_backward(ws, targets);
  const layers::BackwardContext<T, L> c{detail::stage_context(cfg_, params_, rope_, ws), grads,
                                        mode};
  for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) (*it)->backward(c);
}

}  // namespace rosetta
