// Checkpoints: io::save_checkpoint / load_checkpoint / load_model / read_config.
// Round trips (weights, AdamW moments, step; training continues bit-identically), the
// on-disk layout ([out, in] row-major whatever the policy), the PyTorch fixtures loading as
// checkpoints, every malformed-checkpoint error, truncated and corrupted files, and the
// atomic save.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <rosetta/io/checkpoint.hpp>
#include <rosetta/rosetta.hpp>
#include <set>
#include <string>
#include <system_error>
#include <typeinfo>
#include <vector>

#include <unistd.h>
#include "model_check.hpp"

#ifndef ROSETTA_FIXTURES_DIR
#define ROSETTA_FIXTURES_DIR "/work/shared/fixtures"
#endif

namespace {
using namespace rosetta;
namespace fs = std::filesystem;

using FloatCol = Policy<float, ColMajor, backend::Naive>;
using DoubleRow = Policy<double, RowMajor, backend::Naive>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<unsigned> counter{0};
    path_ = fs::temp_directory_path() / ("rosetta_test_checkpoint_" + std::to_string(::getpid()) +
                                         "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  /// The names of the entries of the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

Config small_config() {
  Config c = Config::tiny();
  c.vocab_size = 97;
  c.max_seq_len = 64;
  c.n_kv_heads = 2;  // wk / wv are [32, 64]: not square, so a transposed layout shows
  return c;
}

TrainConfig train_config() {
  TrainConfig t;
  t.lr = 1e-3;
  t.warmup = 2;
  t.total_steps = 20;
  return t;
}

using test::Batch;
using test::random_batch;

template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}
template <class T, class L>
bool same_bits(const ParamSet<T, L>& a, const ParamSet<T, L>& b) {
  return same_bits<T>(a.flat(), b.flat());
}

/// Every tensor of a parameter set, row-major [rows, cols], widened to double.
template <class T, class L>
std::map<std::string, std::vector<double>> tensors_of(const ParamSet<T, L>& set) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& np : set.named()) {
    auto& v = out[np.name];
    for (std::size_t i = 0; i < np.rows; ++i)
      for (std::size_t j = 0; j < np.cols; ++j) v.push_back(static_cast<double>(np.view(i, j)));
  }
  return out;
}

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_bytes(const fs::path& p, const std::vector<char>& bytes, std::size_t n) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(n));
}

/// Rewrites a safetensors file tensor by tensor through io::SafeTensorsWriter.
struct Rewrite {
  std::set<std::string> drop;                                   // tensors to leave out
  std::map<std::string, std::vector<std::size_t>> reshape;      // same data, other shape
  std::set<std::string> drop_meta;                              // metadata keys to remove
  std::map<std::string, std::string> set_meta;                  // metadata to set
  std::function<void(io::SafeTensorsWriter&)> extra = nullptr;  // more tensors

  Rewrite& without(const std::string& name) {
    drop.insert(name);
    return *this;
  }
  Rewrite& reshaped(const std::string& name, std::vector<std::size_t> shape) {
    reshape[name] = std::move(shape);
    return *this;
  }
  Rewrite& without_meta(const std::string& key) {
    drop_meta.insert(key);
    return *this;
  }
  Rewrite& with_meta(const std::string& key, const std::string& value) {
    set_meta[key] = value;
    return *this;
  }
  Rewrite& plus(std::function<void(io::SafeTensorsWriter&)> f) {
    extra = std::move(f);
    return *this;
  }

  void apply(const fs::path& from, const fs::path& to) const {
    const io::SafeTensors st = io::SafeTensors::load(from);
    io::SafeTensorsWriter w;
    for (const auto& [k, v] : st.metadata())
      if (!drop_meta.count(k)) w.set_metadata(k, v);
    for (const auto& [k, v] : set_meta) w.set_metadata(k, v);
    for (const auto& t : st.tensors()) {
      if (drop.count(t.name)) continue;
      auto shape = reshape.count(t.name) ? reshape.at(t.name) : t.shape;
      switch (t.dtype) {
        case io::Dtype::F32:
          w.add(t.name, st.read<float>(t.name), shape);
          break;
        case io::Dtype::F64:
          w.add(t.name, st.read<double>(t.name), shape);
          break;
        default:
          w.add(t.name, st.read<std::int64_t>(t.name), shape);
          break;
      }
    }
    if (extra) extra(w);
    w.save(to);
  }
};

/// Expects f() to throw exactly E (or a subclass) with a message containing every part.
template <class E, class F>
void expect_throw_naming(const char* file, int line, F&& f, const std::vector<std::string>& parts) {
  ::testing::ScopedTrace trace(file, line, "expected " + std::string(typeid(E).name()));
  try {
    f();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos)
          << "message \"" << msg << "\" does not mention \"" << p << "\"";
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong type " << typeid(e).name() << ": " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}
#define EXPECT_THROW_NAMING(E, ...) expect_throw_naming<E>(__FILE__, __LINE__, __VA_ARGS__)

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

template <class P>
class CheckpointRoundTrip : public ::testing::Test {
 protected:
  TempDir dir;
  const Config cfg = small_config();
  const Batch batch = random_batch(2, 8, cfg.vocab_size, 1);
};
using RoundTripPolicies = ::testing::Types<FloatCol, DoubleRow>;
struct PolicyName {
  template <class P>
  static std::string GetName(int) {
    std::string s = P::name();
    std::replace(s.begin(), s.end(), '/', '_');
    return s;
  }
};
TYPED_TEST_SUITE(CheckpointRoundTrip, RoundTripPolicies, PolicyName);

TYPED_TEST(CheckpointRoundTrip, WeightsOnly) {
  Transformer<TypeParam> model(this->cfg, 3);
  Trainer<TypeParam> trainer(model, train_config());
  for (int i = 0; i < 3; ++i) trainer.train_step(this->batch.tokens(), this->batch.targets);
  const fs::path path = this->dir / "model.safetensors";
  io::save_checkpoint(path, model, static_cast<const Trainer<TypeParam>*>(nullptr),
                      {{"tokenizer", "bytes-v1"}});
  EXPECT_EQ(this->dir.entries(), std::vector<std::string>{"model.safetensors"});

  Transformer<TypeParam> fresh(this->cfg, 999);
  ASSERT_FALSE(same_bits(fresh.params(), model.params()));
  io::load_checkpoint(path, fresh);
  EXPECT_TRUE(same_bits(fresh.params(), model.params()));

  const io::SafeTensors st = io::SafeTensors::load(path);
  const Transformer<TypeParam> loaded = io::load_model<TypeParam>(st);
  EXPECT_TRUE(same_bits(loaded.params(), model.params()));
  EXPECT_EQ(io::config_to_json(loaded.config()), io::config_to_json(this->cfg));
  EXPECT_EQ(io::config_to_json(io::read_config(st)), io::config_to_json(this->cfg));
  EXPECT_EQ(st.metadata().at("format"), io::kCheckpointFormat);
  EXPECT_EQ(st.metadata().at("tokenizer"), "bytes-v1");
  EXPECT_EQ(st.metadata().count("step"), 0u);
  EXPECT_EQ(st.size(), model.params().named().size());  // params.* only, no optim.*
}

TYPED_TEST(CheckpointRoundTrip, WithTrainerTrainingContinuesIdentically) {
  const TrainConfig tc = train_config();
  Transformer<TypeParam> model(this->cfg, 4);
  Trainer<TypeParam> trainer(model, tc);
  for (int i = 0; i < 3; ++i) trainer.train_step(this->batch.tokens(), this->batch.targets);
  const fs::path path = this->dir / "ckpt.safetensors";
  io::save_checkpoint(path, model, &trainer);

  Transformer<TypeParam> fresh(this->cfg, 999);
  Trainer<TypeParam> resumed(fresh, tc);
  io::load_checkpoint(path, fresh, &resumed);
  EXPECT_TRUE(same_bits(fresh.params(), model.params()));
  EXPECT_TRUE(same_bits(resumed.adam_m(), trainer.adam_m()));
  EXPECT_TRUE(same_bits(resumed.adam_v(), trainer.adam_v()));
  EXPECT_EQ(resumed.step(), 3u);

  // The stored train config is the trainer's.
  const io::SafeTensors st = io::SafeTensors::load(path);
  const TrainConfig back =
      io::train_from_json(nlohmann::json::parse(st.metadata().at("train")), "train");
  EXPECT_EQ(back.lr, tc.lr);
  EXPECT_EQ(back.beta1, tc.beta1);
  EXPECT_EQ(back.beta2, tc.beta2);
  EXPECT_EQ(back.eps, tc.eps);
  EXPECT_EQ(back.weight_decay, tc.weight_decay);
  EXPECT_EQ(back.clip, tc.clip);
  EXPECT_EQ(back.warmup, tc.warmup);
  EXPECT_EQ(back.total_steps, tc.total_steps);
  EXPECT_EQ(st.metadata().at("step"), "3");
  EXPECT_EQ(st.size(), 3 * model.params().named().size());

  // One more step on each: bit-identical weights, moments, losses.
  for (int i = 0; i < 2; ++i) {
    const auto a = trainer.train_step(this->batch.tokens(), this->batch.targets);
    const auto b = resumed.train_step(this->batch.tokens(), this->batch.targets);
    EXPECT_EQ(std::memcmp(&a.total, &b.total, sizeof a.total), 0);
    EXPECT_EQ(a.lr, b.lr);
    EXPECT_TRUE(same_bits(fresh.params(), model.params())) << "after step " << trainer.step();
    EXPECT_TRUE(same_bits(resumed.adam_m(), trainer.adam_m()));
    EXPECT_TRUE(same_bits(resumed.adam_v(), trainer.adam_v()));
  }
  EXPECT_EQ(resumed.step(), 5u);

  // Weights-only loading of the same file ignores the optimizer tensors.
  Transformer<TypeParam> plain(this->cfg, 1);
  io::load_checkpoint(path, plain);
  const Transformer<TypeParam> via_load_model = io::load_model<TypeParam>(st);
  EXPECT_TRUE(same_bits(plain.params(), via_load_model.params()));
}

TYPED_TEST(CheckpointRoundTrip, TensorsAreOutInRowMajorWhateverTheLayout) {
  using T = typename TypeParam::scalar;
  const Transformer<TypeParam> model(this->cfg, 5);
  const fs::path path = this->dir / "layout.safetensors";
  io::save_checkpoint(path, model);
  const io::SafeTensors st = io::SafeTensors::load(path);
  const io::Dtype want = std::is_same_v<T, float> ? io::Dtype::F32 : io::Dtype::F64;
  const auto& l0 = model.params().layers[0];
  const std::size_t H = this->cfg.hidden_dim, F = this->cfg.ffn_dim;

  auto check = [&](const std::string& name, MatrixView<const T, typename TypeParam::layout> m) {
    SCOPED_TRACE(name);
    const auto& info = st.info("params." + name);
    EXPECT_EQ(info.dtype, want);
    ASSERT_EQ(info.shape, (std::vector<std::size_t>{m.rows(), m.cols()}));
    const std::vector<T> data = st.read<T>("params." + name);
    for (std::size_t i = 0; i < m.rows(); ++i)
      for (std::size_t j = 0; j < m.cols(); ++j)
        ASSERT_EQ(data[i * m.cols() + j], m(i, j)) << "(" << i << ", " << j << ")";
  };
  check("layers.0.attention.wq.weight", l0.wq);
  check("layers.0.attention.wk.weight", l0.wk);  // [32, 64]
  check("layers.0.attention.wo.weight", l0.wo);
  check("layers.0.block_sparse_moe.gate.weight", l0.router);                 // [4, 64]
  check("layers.0.block_sparse_moe.experts.1.w2.weight", l0.experts[1].w2);  // [64, 256]
  check("tok_embeddings.weight", model.params().embed);
  check("output.weight", model.params().lm_head);
  EXPECT_EQ(st.info("params.layers.0.attention.wk.weight").shape,
            (std::vector<std::size_t>{this->cfg.kv_dim(), H}));
  EXPECT_EQ(st.info("params.layers.0.block_sparse_moe.experts.1.w2.weight").shape,
            (std::vector<std::size_t>{H, F}));
  // Norm gains are vectors [H].
  EXPECT_EQ(st.info("params.norm.weight").shape, (std::vector<std::size_t>{H}));
  EXPECT_EQ(st.info("params.layers.1.ffn_norm.weight").shape, (std::vector<std::size_t>{H}));
  // Exactly the parameter tensors, by their checkpoint names.
  std::set<std::string> expect;
  for (const auto& np : model.params().named()) expect.insert("params." + np.name);
  const auto names = st.names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expect);
}

TEST(CheckpointLayouts, LoadsAcrossLayoutsAndScalars) {
  TempDir dir;
  const Config cfg = small_config();
  const Transformer<FloatCol> src(cfg, 6);
  io::save_checkpoint(dir / "f.safetensors", src);
  // Same scalar, other layout: identical values.
  Transformer<Policy<float, RowMajor, backend::Naive>> row(cfg, 1);
  io::load_checkpoint(dir / "f.safetensors", row);
  EXPECT_EQ(tensors_of(row.params()), tensors_of(src.params()));
  // float -> double is exact.
  Transformer<DoubleRow> wide(cfg, 1);
  io::load_checkpoint(dir / "f.safetensors", wide);
  EXPECT_EQ(tensors_of(wide.params()), tensors_of(src.params()));
  // And the same forward results, up to float rounding (the layouts' loops contract into
  // FMAs differently with -march=native, so not bitwise).
  const Batch b = random_batch(1, 10, cfg.vocab_size, 2);
  auto ws1 = src.make_workspace();
  auto ws2 = row.make_workspace();
  const auto l1 = src.forward(b.tokens(), ws1);
  const auto l2 = row.forward(b.tokens(), ws2);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < l1.rows(); ++i)
    for (std::size_t j = 0; j < l1.cols(); ++j) {
      num += std::pow(double(l1(i, j)) - double(l2(i, j)), 2);
      den += std::pow(double(l2(i, j)), 2);
    }
  EXPECT_LE(std::sqrt(num / den), 1e-5);
}

// ---------------------------------------------------------------------------------------
// The PyTorch fixtures load as checkpoints
// ---------------------------------------------------------------------------------------

template <class P>
class FixtureCheckpoint : public ::testing::Test {};
TYPED_TEST_SUITE(FixtureCheckpoint, RoundTripPolicies, PolicyName);

using test::rel_err;

TYPED_TEST(FixtureCheckpoint, BothFixturesLoadViaLoadModel) {
  using T = typename TypeParam::scalar;
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-9;
  for (const char* file : {"tiny_mqa.safetensors", "gqa_ntk.safetensors"}) {
    SCOPED_TRACE(file);
    const fs::path path = fs::path(ROSETTA_FIXTURES_DIR) / file;
    ASSERT_TRUE(fs::exists(path)) << path;
    const io::SafeTensors st = io::SafeTensors::load(path);
    const Config cfg = io::read_config(st);
    if (std::string(file) == "gqa_ntk.safetensors") {
      EXPECT_EQ(cfg.hidden_dim, 32u);
      EXPECT_EQ(cfg.n_heads, 4u);
      EXPECT_EQ(cfg.n_kv_heads, 2u);
      EXPECT_EQ(cfg.rope_alpha, 2.0);
      EXPECT_EQ(cfg.ffn_dim, 64u);
      EXPECT_EQ(cfg.vocab_size, 97u);
    } else {
      const Config tiny = Config::tiny();
      EXPECT_EQ(cfg.hidden_dim, tiny.hidden_dim);
      EXPECT_EQ(cfg.n_layers, tiny.n_layers);
      EXPECT_EQ(cfg.n_heads, tiny.n_heads);
      EXPECT_EQ(cfg.n_kv_heads, tiny.n_kv_heads);
      EXPECT_EQ(cfg.n_experts, tiny.n_experts);
      EXPECT_EQ(cfg.top_k, tiny.top_k);
      EXPECT_EQ(cfg.ffn_dim, tiny.ffn_dim);
      EXPECT_EQ(cfg.vocab_size, tiny.vocab_size);
    }
    const Transformer<TypeParam> model = io::load_model<TypeParam>(st);
    EXPECT_EQ(io::config_to_json(model.config()), io::config_to_json(cfg));
    // Every parameter equals the stored F32 value (exact in both scalars).
    for (const auto& np : model.params().named()) {
      const std::vector<T> stored = st.read<T>("params." + np.name);
      ASSERT_EQ(stored.size(), np.rows * np.cols) << np.name;
      for (std::size_t i = 0; i < np.rows; ++i)
        for (std::size_t j = 0; j < np.cols; ++j)
          ASSERT_EQ(np.view(i, j), stored[i * np.cols + j]) << np.name;
    }
    // Loaded weights reproduce the fixture's logits and losses.
    const auto shape = st.info("input.tokens").shape;
    ASSERT_EQ(shape.size(), 2u);
    std::vector<std::int32_t> ids, targets;
    for (auto x : st.read<std::int64_t>("input.tokens"))
      ids.push_back(static_cast<std::int32_t>(x));
    for (auto x : st.read<std::int64_t>("input.targets"))
      targets.push_back(static_cast<std::int32_t>(x));
    auto ws = model.make_workspace();
    const auto logits = model.forward(TokenBatch{ids, shape[0], shape[1]}, ws);
    std::vector<double> got;
    for (std::size_t i = 0; i < logits.rows(); ++i)
      for (std::size_t j = 0; j < logits.cols(); ++j)
        got.push_back(static_cast<double>(logits(i, j)));
    EXPECT_LE(rel_err(got, st.read<double>("expect.logits")), tol);
    const auto l = model.loss(ws, targets);
    EXPECT_LE(rel_err({static_cast<double>(l.total)}, st.read<double>("expect.loss.total")), tol);

    // Into an existing model of the same config, too; a fixture has no optimizer state.
    Transformer<TypeParam> existing(cfg, 7);
    io::load_checkpoint(st, existing);
    EXPECT_TRUE(same_bits(existing.params(), model.params()));
    Trainer<TypeParam> trainer(existing, TrainConfig{});
    EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(st, existing, &trainer); },
                        {"optimizer", "step"});
  }
}

// ---------------------------------------------------------------------------------------
// Malformed checkpoints
// ---------------------------------------------------------------------------------------

class CheckpointErrors : public ::testing::Test {
 protected:
  using P = DoubleRow;
  void SetUp() override {
    model = std::make_unique<Transformer<P>>(cfg, 8);
    io::save_checkpoint(good, *model);
    trainer = std::make_unique<Trainer<P>>(*model, train_config());
    trainer->train_step(batch.tokens(), batch.targets);
    io::save_checkpoint(good_trained, *model, trainer.get());
  }
  /// load_checkpoint into a fresh model and load_model must both fail naming `parts`.
  void expect_rejected(const fs::path& p, const std::vector<std::string>& parts, int line) {
    Transformer<P> m(cfg, 1);
    expect_throw_naming<CheckpointError>(
        __FILE__, line, [&] { io::load_checkpoint(p, m); }, parts);
    expect_throw_naming<CheckpointError>(
        __FILE__, line, [&] { (void)io::load_model<P>(io::SafeTensors::load(p)); }, parts);
  }

  TempDir dir;
  const Config cfg = small_config();
  const Batch batch = random_batch(2, 8, cfg.vocab_size, 3);
  const fs::path good = dir / "good.safetensors";
  const fs::path good_trained = dir / "trained.safetensors";
  const fs::path bad = dir / "bad.safetensors";
  std::unique_ptr<Transformer<P>> model;
  std::unique_ptr<Trainer<P>> trainer;
};

TEST_F(CheckpointErrors, MissingTensor) {
  const std::string name = "params.layers.1.block_sparse_moe.experts.3.w2.weight";
  Rewrite().without(name).apply(good, bad);
  expect_rejected(bad, {"missing tensor", name}, __LINE__);
  Rewrite().without("params.norm.weight").apply(good, bad);
  expect_rejected(bad, {"params.norm.weight"}, __LINE__);
}

TEST_F(CheckpointErrors, ExtraParamsTensor) {
  const std::string name = "params.layers.0.attention.bias";
  Rewrite()
      .plus([&](io::SafeTensorsWriter& w) { w.add(name, std::vector<double>(64, 0.0), {64}); })
      .apply(good, bad);
  expect_rejected(bad, {"unexpected tensor", name}, __LINE__);
  // A whole extra layer (checkpoint of a deeper model with the config edited).
  Rewrite()
      .plus([&](io::SafeTensorsWriter& w) {
        w.add("params.layers.2.ffn_norm.weight", std::vector<double>(64, 1.0), {64});
      })
      .apply(good, bad);
  expect_rejected(bad, {"params.layers.2.ffn_norm.weight"}, __LINE__);
  // Tensors outside params./optim. are ignored (the fixtures carry input.* and expect.*).
  Rewrite()
      .plus([&](io::SafeTensorsWriter& w) {
        w.add("notes.anything", std::vector<double>(3, 1.0), {3});
      })
      .apply(good, bad);
  Transformer<P> m(cfg, 1);
  EXPECT_NO_THROW(io::load_checkpoint(bad, m));
}

TEST_F(CheckpointErrors, WrongShape) {
  const std::string wk = "params.layers.0.attention.wk.weight";  // [32, 64]
  Rewrite().reshaped(wk, {64, 32}).apply(good, bad);
  expect_rejected(bad, {wk, "[64, 32]", "[32, 64]"}, __LINE__);
  Rewrite().reshaped(wk, {2048}).apply(good, bad);
  expect_rejected(bad, {wk, "[2048]"}, __LINE__);
  Rewrite().reshaped("params.norm.weight", {64, 1}).apply(good, bad);
  expect_rejected(bad, {"params.norm.weight", "[64, 1]", "[64]"}, __LINE__);
  // A tensor of another size altogether.
  Rewrite()
      .without("params.output.weight")
      .plus([&](io::SafeTensorsWriter& w) {
        w.add("params.output.weight", std::vector<double>(100 * 64, 0.0), {100, 64});
      })
      .apply(good, bad);
  expect_rejected(bad, {"params.output.weight", "[100, 64]", "[97, 64]"}, __LINE__);
}

TEST_F(CheckpointErrors, ConfigMismatchWithAnExistingModel) {
  Config other = cfg;
  other.vocab_size = 101;
  Transformer<P> m(other, 1);
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(good, m); },
                      {"config", "\"vocab\":97", "\"vocab\":101"});
  Config alpha = cfg;
  alpha.rope_alpha = 2.0;  // same shapes, different model
  Transformer<P> m2(alpha, 1);
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(good, m2); },
                      {"config", "rope_alpha"});
  // A checkpoint whose config was edited to disagree with its tensors.
  nlohmann::json j = io::config_to_json(cfg);
  j["ffn"] = 128;
  Rewrite().with_meta("config", j.dump()).apply(good, bad);
  Transformer<P> m3(cfg, 1);
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(bad, m3); }, {"config"});
  EXPECT_THROW_NAMING(CheckpointError, [&] { (void)io::load_model<P>(io::SafeTensors::load(bad)); },
                      {"w1.weight", "[256, 64]", "[128, 64]"});
}

TEST_F(CheckpointErrors, MissingOrGarbledConfigMetadata) {
  Rewrite().without_meta("config").apply(good, bad);
  expect_rejected(bad, {"'config'"}, __LINE__);
  EXPECT_THROW_NAMING(CheckpointError, [&] { (void)io::read_config(io::SafeTensors::load(bad)); },
                      {"'config'"});

  struct Garbled {
    std::string text;
    std::vector<std::string> mentions;
  };
  nlohmann::json missing = io::config_to_json(cfg);
  missing.erase("heads");
  nlohmann::json as_string = io::config_to_json(cfg);
  as_string["hidden"] = "64";
  nlohmann::json negative = io::config_to_json(cfg);
  negative["layers"] = -2;
  nlohmann::json fractional = io::config_to_json(cfg);
  fractional["experts"] = 4.5;
  nlohmann::json invalid = io::config_to_json(cfg);
  invalid["heads"] = 3;
  nlohmann::json nan_eps = io::config_to_json(cfg);
  nan_eps["rms_eps"] = nullptr;
  const std::vector<Garbled> cases = {
      {"{not json", {"config", "not a JSON object"}},
      {"", {"config", "not a JSON object"}},
      {"[1, 2, 3]", {"config", "not a JSON object"}},
      {"42", {"config", "not a JSON object"}},
      {missing.dump(), {"'heads'"}},
      {as_string.dump(), {"'hidden'", "\"64\""}},
      {negative.dump(), {"'layers'", "-2"}},
      {fractional.dump(), {"'experts'", "4.5"}},
      {nan_eps.dump(), {"'rms_eps'"}},
      {invalid.dump(), {"invalid model config", "n_heads*head_dim"}},
  };
  for (const Garbled& g : cases) {
    SCOPED_TRACE(g.text);
    Rewrite().with_meta("config", g.text).apply(good, bad);
    expect_rejected(bad, g.mentions, __LINE__);
  }
}

TEST_F(CheckpointErrors, OptimizerStateFromACheckpointWithout) {
  Transformer<P> m(cfg, 1);
  Trainer<P> t(m, train_config());
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(good, m, &t); },
                      {"good.safetensors", "optimizer", "step"});
  EXPECT_EQ(t.step(), 0u);
  // A trained checkpoint with a bad step or a missing moment is refused too.
  Rewrite().with_meta("step", "3x").apply(good_trained, bad);
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(bad, m, &t); }, {"'3x'"});
  Rewrite().without("optim.v.norm.weight").apply(good_trained, bad);
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(bad, m, &t); },
                      {"missing tensor", "optim.v.norm.weight"});
  // ...but the same file still loads its weights.
  EXPECT_NO_THROW(io::load_checkpoint(bad, m));
}

// A load that fails changes nothing: the model (and the trainer's moments and step) keep
// their values, whichever tensor is the bad one.
TEST_F(CheckpointErrors, FailedLoadLeavesModelAndTrainerUntouched) {
  Transformer<P> m(cfg, 1);
  Trainer<P> t(m, train_config());
  t.train_step(batch.tokens(), batch.targets);
  const std::vector<double> before(m.params().flat().begin(), m.params().flat().end());
  const std::vector<double> m_before(t.adam_m().flat().begin(), t.adam_m().flat().end());
  Rewrite().without("params.output.weight").apply(good_trained, bad);  // the last parameter
  EXPECT_THROW(io::load_checkpoint(bad, m), CheckpointError);
  Rewrite().without("optim.v.output.weight").apply(good_trained, bad);  // the last moment
  EXPECT_THROW(io::load_checkpoint(bad, m, &t), CheckpointError);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), m.params().flat().begin()));
  EXPECT_TRUE(std::equal(m_before.begin(), m_before.end(), t.adam_m().flat().begin()));
  EXPECT_EQ(t.step(), 1u);
}

// std::stoull accepts "-1" (and wraps it to 2^64 - 1): a negative step must be refused,
// not turned into step 18446744073709551615.
TEST_F(CheckpointErrors, NegativeStepIsRefused) {
  Transformer<P> m(cfg, 1);
  Trainer<P> t(m, train_config());
  Rewrite().with_meta("step", "-1").apply(good_trained, bad);
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::load_checkpoint(bad, m, &t); }, {"'-1'"});
  EXPECT_EQ(t.step(), 0u);
}

TEST_F(CheckpointErrors, TruncatedFilesAreCheckpointErrors) {
  for (const fs::path& src : {good, good_trained}) {
    const std::vector<char> bytes = read_bytes(src);
    ASSERT_GT(bytes.size(), 16u);
    std::uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    const std::size_t h = static_cast<std::size_t>(header), n = bytes.size();
    const std::vector<std::size_t> cuts = {0,         1,           7,         8,     9,
                                           8 + h / 3, 8 + h / 2,   8 + h - 1, 8 + h, 8 + h + 1,
                                           8 + h + 7, (n + h) / 2, n - 8,     n - 1};
    for (std::size_t cut : cuts) {
      SCOPED_TRACE("cut at byte " + std::to_string(cut) + " of " + std::to_string(n));
      ASSERT_LT(cut, n);
      write_bytes(bad, bytes, cut);
      Transformer<P> m(cfg, 1);
      Trainer<P> t(m, train_config());
      EXPECT_THROW(io::load_checkpoint(bad, m), CheckpointError);
      EXPECT_THROW(io::load_checkpoint(bad, m, &t), CheckpointError);
      EXPECT_THROW((void)io::load_model<P>(io::SafeTensors::load(bad)), CheckpointError);
    }
  }
}

TEST_F(CheckpointErrors, CorruptedHeaderBytesNeverEscapeAsAnotherError) {
  // Overwrite single bytes of the JSON header: each file either still loads (e.g. a space
  // changed into another space) or is refused with a CheckpointError; nothing else escapes.
  const std::vector<char> bytes = read_bytes(good_trained);
  std::uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  Rng rng(77, 0);
  const char replacements[] = {'"', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'x', '\0', ' '};
  int refused = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<char> b = bytes;
    const std::size_t pos = 8 + static_cast<std::size_t>(rng.below(header));
    b[pos] = replacements[rng.below(sizeof replacements)];
    write_bytes(bad, b, b.size());
    Transformer<P> m(cfg, 1);
    Trainer<P> t(m, train_config());
    try {
      io::load_checkpoint(bad, m, &t);
    } catch (const CheckpointError&) {
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "byte " << pos << " = '" << b[pos] << "': escaped as " << typeid(e).name()
                    << ": " << e.what();
    }
  }
  EXPECT_GE(refused, 20);
}

TEST_F(CheckpointErrors, NotACheckpointAtAll) {
  std::ofstream(bad) << "this is not a safetensors file at all";
  expect_rejected(bad, {"bad.safetensors"}, __LINE__);
  expect_rejected(dir / "does_not_exist.safetensors", {"does_not_exist.safetensors"}, __LINE__);
  expect_rejected(dir.path(), {"directory"}, __LINE__);
}

// ---------------------------------------------------------------------------------------
// Atomic save
// ---------------------------------------------------------------------------------------

TEST(CheckpointSave, IntoAMissingDirectoryFailsCleanly) {
  TempDir dir;
  const Transformer<DoubleRow> model(small_config(), 1);
  const fs::path target = dir / "no_such_dir" / "ckpt.safetensors";
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::save_checkpoint(target, model); },
                      {"no_such_dir"});
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});  // nothing created, no temp files
}

TEST(CheckpointSave, OverADirectoryFailsAndRemovesItsTempFile) {
  TempDir dir;
  const Transformer<DoubleRow> model(small_config(), 1);
  fs::create_directory(dir / "occupied");
  EXPECT_THROW_NAMING(CheckpointError, [&] { io::save_checkpoint(dir / "occupied", model); },
                      {"occupied"});
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"occupied"});
  EXPECT_TRUE(fs::is_empty(dir / "occupied"));
}

TEST(CheckpointSave, OverAnExistingCheckpointReplacesIt) {
  TempDir dir;
  const Config cfg = small_config();
  const Transformer<FloatCol> a(cfg, 1), b(cfg, 2);
  const fs::path path = dir / "ckpt.safetensors";
  io::save_checkpoint(path, a);
  io::save_checkpoint(path, b);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ckpt.safetensors"});
  Transformer<FloatCol> back(cfg, 3);
  io::load_checkpoint(path, back);
  EXPECT_TRUE(same_bits(back.params(), b.params()));
  // A smaller checkpoint over a larger one leaves no stale bytes behind.
  Config smaller = cfg;
  smaller.n_layers = 1;
  const Transformer<FloatCol> c(smaller, 4);
  io::save_checkpoint(path, c);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"ckpt.safetensors"});
  const Transformer<FloatCol> d = io::load_model<FloatCol>(io::SafeTensors::load(path));
  EXPECT_TRUE(same_bits(d.params(), c.params()));
}

}  // namespace
