// Model configuration: the presets of the contract, validation and parameter counts.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "rosetta/core/errors.hpp"

namespace rosetta {

struct Config {
  std::size_t hidden_dim = 64;
  std::size_t n_layers = 2;
  std::size_t n_heads = 4;
  std::size_t n_kv_heads = 1;
  std::size_t head_dim = 16;
  std::size_t n_experts = 4;
  std::size_t top_k = 2;
  std::size_t ffn_dim = 256;
  std::size_t vocab_size = 1000;
  std::size_t max_seq_len = 512;
  double rope_base = 10000.0;
  double rope_alpha = 1.0;
  double rms_eps = 1e-6;
  double aux_alpha = 0.01;

  /// The benchmark preset (542,528 parameters).
  static Config tiny() { return Config{}; }
  /// The scale-axis preset.
  static Config small() {
    Config c;
    c.hidden_dim = 256;
    c.head_dim = 64;
    c.ffn_dim = 1024;
    return c;
  }
  /// The 6.9B reference preset: a config only (27 GB in float32); see memory_bytes().
  static Config default_6_9b() {
    Config c;
    c.hidden_dim = 768;
    c.n_layers = 30;
    c.n_heads = 12;
    c.n_kv_heads = 1;
    c.head_dim = 64;
    c.n_experts = 16;
    c.top_k = 4;
    c.ffn_dim = 6144;
    c.vocab_size = 32000;
    c.max_seq_len = 32768;
    c.rope_alpha = 8.0;
    return c;
  }

  std::size_t q_dim() const { return n_heads * head_dim; }
  std::size_t kv_dim() const { return n_kv_heads * head_dim; }

  /// Throws ConfigError naming the first violated rule.
  void validate() const {
    auto positive = [](const char* name, std::size_t v) {
      if (v == 0) detail::raise<ConfigError>("Config: ", name, "=0 (must be positive)");
    };
    positive("hidden_dim", hidden_dim);
    positive("n_layers", n_layers);
    positive("n_heads", n_heads);
    positive("n_kv_heads", n_kv_heads);
    positive("head_dim", head_dim);
    positive("n_experts", n_experts);
    positive("top_k", top_k);
    positive("ffn_dim", ffn_dim);
    positive("vocab_size", vocab_size);
    positive("max_seq_len", max_seq_len);
    if (n_heads * head_dim != hidden_dim)
      detail::raise<ConfigError>("Config: n_heads*head_dim = ", n_heads, "*", head_dim, " = ",
                                 n_heads * head_dim, " but hidden_dim=", hidden_dim,
                                 " (they must be equal)");
    if (n_heads % n_kv_heads != 0)
      detail::raise<ConfigError>("Config: n_heads=", n_heads,
                                 " is not a multiple of n_kv_heads=", n_kv_heads);
    if (top_k > n_experts)
      detail::raise<ConfigError>("Config: top_k=", top_k, " exceeds n_experts=", n_experts,
                                 " (allowed 1..n_experts)");
    if (head_dim % 2 != 0)
      detail::raise<ConfigError>("Config: head_dim=", head_dim, " is odd (RoPE rotates pairs)");
    if (rope_alpha > 1.0 && head_dim <= 2)
      detail::raise<ConfigError>("Config: NTK scaling (rope_alpha=", rope_alpha,
                                 ") needs head_dim > 2, got ", head_dim);
    if (!(rope_base > 0) || !std::isfinite(rope_base))
      detail::raise<ConfigError>("Config: rope_base=", rope_base, " (must be finite and > 0)");
    if (!(rope_alpha > 0) || !std::isfinite(rope_alpha))
      detail::raise<ConfigError>("Config: rope_alpha=", rope_alpha, " (must be finite and > 0)");
    if (!(rms_eps > 0) || !std::isfinite(rms_eps))
      detail::raise<ConfigError>("Config: rms_eps=", rms_eps, " (must be finite and > 0)");
    if (!(aux_alpha >= 0) || !std::isfinite(aux_alpha))
      detail::raise<ConfigError>("Config: aux_alpha=", aux_alpha, " (must be finite and >= 0)");
    if (vocab_size > static_cast<std::size_t>(INT32_MAX))
      detail::raise<ConfigError>("Config: vocab_size=", vocab_size, " exceeds 2^31-1");
  }

  /// Parameters of one expert (w1, w3: [F, H]; w2: [H, F]).
  std::size_t expert_params() const { return 3 * hidden_dim * ffn_dim; }
  /// Parameters of one transformer block.
  std::size_t layer_params() const {
    const std::size_t H = hidden_dim;
    return 2 * H                                           // attention_norm, ffn_norm
           + H * q_dim() + 2 * H * kv_dim() + q_dim() * H  // wq, wk, wv, wo
           + n_experts * H                                 // router
           + n_experts * expert_params();
  }
  /// Every tensor of the checkpoint: embedding, blocks, final norm, untied lm_head.
  std::size_t param_count() const {
    return vocab_size * hidden_dim + n_layers * layer_params() + hidden_dim +
           vocab_size * hidden_dim;
  }
  /// Parameters one token touches: all but the (n_experts - top_k) experts it skips per layer.
  std::size_t active_param_count() const {
    return param_count() - n_layers * (n_experts - top_k) * expert_params();
  }
  /// Bytes for parameters, gradients and both AdamW moments (training) at scalar size s.
  std::size_t training_state_bytes(std::size_t scalar_bytes) const {
    return 4 * param_count() * scalar_bytes;
  }
  /// Bytes of the parameters alone (inference).
  std::size_t param_bytes(std::size_t scalar_bytes) const { return param_count() * scalar_bytes; }
};

}  // namespace rosetta
