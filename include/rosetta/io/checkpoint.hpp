// Model checkpoints in safetensors format.
//
// Tensors: "params.<name>" for every parameter (names as in the fixtures' README; linear
// weights stored [out, in] row-major whatever the in-memory layout), optionally
// "optim.m.<name>" / "optim.v.<name>" for the AdamW moments. Metadata (strings): "config"
// and "train" as JSON with the fixtures' keys, "step", "format", plus caller-supplied
// entries (e.g. the tokenizer). Tensors outside the params./optim. namespaces are ignored,
// so the PyTorch fixtures load as checkpoints.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "rosetta/io/safetensors.hpp"
#include "rosetta/model/transformer.hpp"
#include "rosetta/train/trainer.hpp"

namespace rosetta::io {

inline constexpr const char* kCheckpointFormat = "rosetta-checkpoint/1";

inline nlohmann::json config_to_json(const Config& c) {
  return {{"hidden", c.hidden_dim},   {"layers", c.n_layers},     {"heads", c.n_heads},
          {"kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim},   {"experts", c.n_experts},
          {"top_k", c.top_k},         {"ffn", c.ffn_dim},         {"vocab", c.vocab_size},
          {"max_seq", c.max_seq_len}, {"rope_base", c.rope_base}, {"rope_alpha", c.rope_alpha},
          {"rms_eps", c.rms_eps},     {"aux_alpha", c.aux_alpha}};
}

namespace detail {
template <class V>
void get_field(const nlohmann::json& j, const char* key, V& out, const std::string& where) {
  if (!j.contains(key)) rosetta::detail::raise<CheckpointError>(where, ": missing key '", key, "'");
  const auto& v = j.at(key);
  if constexpr (std::is_integral_v<V>) {
    if (!v.is_number_integer() || (v.is_number_integer() && v.get<long long>() < 0))
      rosetta::detail::raise<CheckpointError>(where, ": '", key, "' = ", v.dump(),
                                              " (need a non-negative integer)");
  } else {
    if (!v.is_number())
      rosetta::detail::raise<CheckpointError>(where, ": '", key, "' = ", v.dump(),
                                              " (need a number)");
  }
  out = v.get<V>();
}

inline nlohmann::json parse_json_meta(const SafeTensors& st, const char* key) {
  const auto& meta = st.metadata();
  auto it = meta.find(key);
  if (it == meta.end())
    rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': no '", key,
                                            "' entry in __metadata__");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': __metadata__.", key,
                                            " is not a JSON object");
  return j;
}
}  // namespace detail

/// Parses the fixture/checkpoint "config" JSON; the result is validated.
inline Config config_from_json(const nlohmann::json& j, const std::string& where = "config") {
  Config c;
  detail::get_field(j, "hidden", c.hidden_dim, where);
  detail::get_field(j, "layers", c.n_layers, where);
  detail::get_field(j, "heads", c.n_heads, where);
  detail::get_field(j, "kv_heads", c.n_kv_heads, where);
  detail::get_field(j, "head_dim", c.head_dim, where);
  detail::get_field(j, "experts", c.n_experts, where);
  detail::get_field(j, "top_k", c.top_k, where);
  detail::get_field(j, "ffn", c.ffn_dim, where);
  detail::get_field(j, "vocab", c.vocab_size, where);
  detail::get_field(j, "max_seq", c.max_seq_len, where);
  detail::get_field(j, "rope_base", c.rope_base, where);
  detail::get_field(j, "rope_alpha", c.rope_alpha, where);
  detail::get_field(j, "rms_eps", c.rms_eps, where);
  detail::get_field(j, "aux_alpha", c.aux_alpha, where);
  try {
    c.validate();
  } catch (const ConfigError& e) {
    rosetta::detail::raise<CheckpointError>(where, ": invalid model config: ", e.what());
  }
  return c;
}

inline nlohmann::json train_to_json(const TrainConfig& t) {
  return {{"lr", t.lr},
          {"beta1", t.beta1},
          {"beta2", t.beta2},
          {"eps", t.eps},
          {"weight_decay", t.weight_decay},
          {"clip", t.clip},
          {"warmup", t.warmup},
          {"total_steps", t.total_steps}};
}

inline TrainConfig train_from_json(const nlohmann::json& j, const std::string& where = "train") {
  TrainConfig t;
  detail::get_field(j, "lr", t.lr, where);
  detail::get_field(j, "beta1", t.beta1, where);
  detail::get_field(j, "beta2", t.beta2, where);
  detail::get_field(j, "eps", t.eps, where);
  detail::get_field(j, "weight_decay", t.weight_decay, where);
  detail::get_field(j, "clip", t.clip, where);
  detail::get_field(j, "warmup", t.warmup, where);
  detail::get_field(j, "total_steps", t.total_steps, where);
  return t;
}

/// The model config stored in a checkpoint (or fixture).
inline Config read_config(const SafeTensors& st) {
  return config_from_json(detail::parse_json_meta(st, "config"),
                          "checkpoint '" + st.source() + "' config");
}

namespace detail {

/// Reads every tensor "<prefix><name>" of st for a parameter set (checking presence, shapes,
/// dtypes and that no unknown tensor uses the prefix) into row-major staging buffers,
/// without touching the set: a load that fails leaves the model as it was.
template <class T, class L>
std::vector<std::vector<T>> stage_set(const SafeTensors& st, const std::string& prefix,
                                      const ParamSet<T, L>& set) {
  std::vector<std::vector<T>> staged;
  staged.reserve(set.named().size());
  for (const auto& np : set.named()) {
    const std::string key = prefix + np.name;
    if (!st.contains(key))
      rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': missing tensor '",
                                              key, "'");
    const auto& info = st.info(key);
    const std::vector<std::size_t> want = np.rank == 1 ? std::vector<std::size_t>{np.rows}
                                                       : std::vector<std::size_t>{np.rows, np.cols};
    if (info.shape != want) {
      std::string got = "[", exp = "[";
      for (std::size_t i = 0; i < info.shape.size(); ++i)
        got += (i ? ", " : "") + std::to_string(info.shape[i]);
      for (std::size_t i = 0; i < want.size(); ++i)
        exp += (i ? ", " : "") + std::to_string(want[i]);
      rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': tensor '", key,
                                              "' has shape ", got, "], the config needs ", exp,
                                              "]");
    }
    staged.push_back(st.read<T>(key));
  }
  // extra tensors in our namespace are an error (a checkpoint of another architecture)
  for (const auto& name : st.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    bool known = false;
    for (const auto& np : set.named()) known = known || (prefix + np.name == name);
    if (!known)
      rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': unexpected tensor '",
                                              name, "' (not a parameter of this config)");
  }
  return staged;
}

/// Copies staged row-major values into the set's views (any layout).
template <class T, class L>
void commit_set(const std::vector<std::vector<T>>& staged, ParamSet<T, L>& set) {
  for (std::size_t t = 0; t < set.named().size(); ++t) {
    const auto& np = set.named()[t];
    for (std::size_t i = 0; i < np.rows; ++i)
      for (std::size_t j = 0; j < np.cols; ++j) np.view(i, j) = staged[t][i * np.cols + j];
  }
}

/// Validates and copies tensor "<prefix><name>" of st into a parameter set.
template <class T, class L>
void load_set(const SafeTensors& st, const std::string& prefix, ParamSet<T, L>& set) {
  commit_set(stage_set(st, prefix, set), set);
}

template <class T, class L>
void add_set(SafeTensorsWriter& w, const std::string& prefix, const ParamSet<T, L>& set) {
  std::vector<T> tmp;
  for (const auto& np : set.named()) {
    tmp.resize(np.rows * np.cols);
    for (std::size_t i = 0; i < np.rows; ++i)
      for (std::size_t j = 0; j < np.cols; ++j) tmp[i * np.cols + j] = np.view(i, j);
    std::vector<std::size_t> shape = np.rank == 1 ? std::vector<std::size_t>{np.rows}
                                                  : std::vector<std::size_t>{np.rows, np.cols};
    w.add<T>(prefix + np.name, std::span<const T>(tmp), std::move(shape));
  }
}

}  // namespace detail

/// Writes model (and, if given, the trainer's AdamW moments, step and train config)
/// atomically: a temporary file in the same directory, then rename.
template <class P>
void save_checkpoint(const std::filesystem::path& path, const Transformer<P>& model,
                     const Trainer<P>* trainer = nullptr,
                     const std::map<std::string, std::string>& extra_metadata = {}) {
  SafeTensorsWriter w;
  for (const auto& [k, v] : extra_metadata) w.set_metadata(k, v);
  w.set_metadata("format", kCheckpointFormat);
  w.set_metadata("config", config_to_json(model.config()).dump());
  detail::add_set(w, "params.", model.params());
  if (trainer) {
    auto& tr = const_cast<Trainer<P>&>(*trainer);
    w.set_metadata("train", train_to_json(tr.config()).dump());
    w.set_metadata("step", std::to_string(tr.step()));
    detail::add_set(w, "optim.m.", tr.adam_m());
    detail::add_set(w, "optim.v.", tr.adam_v());
  }
  w.save(path);
}

/// Loads the parameters of a checkpoint into model; the checkpoint's config must equal the
/// model's. With a trainer, also the AdamW moments and step (CheckpointError if absent).
template <class P>
void load_checkpoint(const SafeTensors& st, Transformer<P>& model, Trainer<P>* trainer = nullptr) {
  const Config c = read_config(st);
  if (config_to_json(c) != config_to_json(model.config()))
    rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': config ",
                                            config_to_json(c).dump(), " differs from the model's ",
                                            config_to_json(model.config()).dump());
  // stage everything first: nothing is modified unless the whole checkpoint is valid
  const auto params = detail::stage_set(st, "params.", model.params());
  if (!trainer) {
    detail::commit_set(params, model.params());
    return;
  }
  {
    const auto& meta = st.metadata();
    auto it = meta.find("step");
    if (it == meta.end())
      rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(),
                                              "': no optimizer state (no 'step' in __metadata__)");
    // digits only: std::stoull would accept "-1" (and wrap around) or leading spaces
    const std::string& text = it->second;
    const bool digits =
        !text.empty() && text.size() <= 19 &&
        std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits)
      rosetta::detail::raise<CheckpointError>("checkpoint '", st.source(), "': step '", text,
                                              "' is not a non-negative integer");
    const std::size_t step = std::stoull(text);
    const auto m = detail::stage_set(st, "optim.m.", trainer->adam_m());
    const auto v = detail::stage_set(st, "optim.v.", trainer->adam_v());
    detail::commit_set(params, model.params());
    detail::commit_set(m, trainer->adam_m());
    detail::commit_set(v, trainer->adam_v());
    trainer->set_step(step);
  }
}

template <class P>
void load_checkpoint(const std::filesystem::path& path, Transformer<P>& model,
                     Trainer<P>* trainer = nullptr) {
  load_checkpoint(SafeTensors::load(path), model, trainer);
}

/// A new model with the checkpoint's config and weights.
template <class P>
Transformer<P> load_model(const SafeTensors& st) {
  Transformer<P> m(read_config(st));
  detail::load_set(st, "params.", m.params());
  return m;
}

}  // namespace rosetta::io
