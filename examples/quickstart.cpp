// quickstart: the smallest complete rosetta program. Copy it and start from here.
//
//   1. build the tiny model (542,528 parameters) with one compile-time policy
//   2. run a forward pass on a batch of tokens: logits and loss
//   3. generate tokens with the untrained model, greedily and with top-p sampling
//   4. train a few steps on the batch (a counting pattern: token i is followed by i + 1)
//   5. generate again: greedy decoding now continues the count
//
// Its output is explained line by line in docs/examples.md.
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <rosetta/rosetta.hpp>  // the one header: model, training, generation
#include <vector>

int main(int argc, char** argv) {
  std::uint64_t seed = 42;  // initialisation seed (weights) and sampling seed
  std::size_t n_new = 4;    // tokens to generate after the prompt
  std::size_t steps = 30;   // training steps
  CLI::App app{"quickstart: forward pass, loss, generation and a few training steps"};
  app.add_option("--seed", seed, "seed of the weights and of top-p sampling")
      ->capture_default_str();
  app.add_option("--tokens", n_new, "tokens to generate after the 4-token prompt (1..500)")
      ->check(CLI::Range(1, 500))
      ->capture_default_str();
  app.add_option("--steps", steps, "training steps between the two generations")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  using namespace rosetta;
  try {
    // The policy fixes the scalar type, the memory layout and the gemm backend at compile
    // time. backend::Naive (plain loops) is always available; with the rosetta::all target
    // backend::Eigen, backend::Blis or backend::Cblas are faster drop-in replacements.
    using P = Policy<float, RowMajor, backend::Naive>;

    // 1. The model: parameters are allocated once and initialised from the seed (the same
    //    weights for every policy).
    const Config cfg = Config::tiny();  // hidden 64, 2 layers, 4 experts (top-2), vocab 1000
    Transformer<P> model(cfg, seed);
    fmt::print("model     {}: {} parameters, vocab {}, {} layers, {} experts (top-{})\n", P::name(),
               cfg.param_count(), cfg.vocab_size, cfg.n_layers, cfg.n_experts, cfg.top_k);

    // 2. A batch of 2 sequences x 8 tokens, stored row-major: [0..7] and [8..15]. The
    //    targets are the next tokens, [1..8] and [9..16].
    const std::size_t batch = 2, seq = 8;
    std::vector<std::int32_t> tokens(batch * seq), targets(batch * seq);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = static_cast<std::int32_t>(i);
      targets[i] = static_cast<std::int32_t>(i + 1);
    }
    // A workspace holds the activations (one per thread); the model itself stays const.
    auto ws = model.make_workspace();
    auto logits = model.forward(TokenBatch{tokens, batch, seq}, ws);  // [batch*seq, vocab]
    fmt::print("forward   tokens [{} x {}] -> logits [{} x {}]\n", batch, seq, logits.rows(),
               logits.cols());
    const auto loss = model.loss(ws, targets);  // needs the forward above on the same ws
    fmt::print("loss      ce {:.4f} (uniform guess: ln {} = {:.4f})  aux {:.4f}  total {:.4f}\n",
               loss.ce, cfg.vocab_size, std::log(double(cfg.vocab_size)), loss.aux, loss.total);

    // 3. Generation. max_len counts the prompt. Greedy picks the most likely token; top-p
    //    samples from the smallest set of tokens holding 90% of the probability (temperature
    //    0.8), reproducibly for a given seed. Both use the KV cache.
    const std::vector<std::int32_t> prompt{0, 1, 2, 3};
    const std::size_t max_len = prompt.size() + n_new;
    fmt::print("prompt    {}\n", prompt);
    fmt::print("untrained greedy {}\n", generate_greedy(model, prompt, max_len));
    fmt::print("untrained top-p  {}\n", generate_topp(model, prompt, max_len, 0.9, 0.8, seed));

    // 4. Training: the Trainer owns gradients, AdamW moments and its own workspace. Each
    //    train_step runs forward, loss, backward, gradient clipping and one AdamW step.
    TrainConfig tc;
    tc.lr = 3e-3;
    tc.warmup = 5;
    tc.total_steps = std::max<std::size_t>(steps, tc.warmup);
    Trainer<P> trainer(model, tc);
    for (std::size_t s = 1; s <= steps; ++s) {
      const auto r = trainer.train_step(TokenBatch{tokens, batch, seq}, targets);
      if (s == 1 || s % 10 == 0 || s == steps)
        fmt::print("train     step {:3d}  ce {:.4f}  aux {:.4f}  lr {:.1e}\n", s, r.ce, r.aux,
                   r.lr);
    }

    // 5. The same prompt again: the model has learned "i is followed by i + 1" at the 8
    //    positions it was trained on (--tokens 4 fills exactly those; try --tokens 12).
    fmt::print("trained   greedy {}\n", generate_greedy(model, prompt, max_len));
    fmt::print("trained   top-p  {}\n", generate_topp(model, prompt, max_len, 0.9, 0.8, seed));
    return 0;
  } catch (const rosetta::Error& e) {  // every rosetta error names the bad value
    fmt::print(stderr, "quickstart: error: {}\n", e.what());
    return 1;
  }
}
