// train_text: trains the Mixture-of-Experts Transformer on a text file.
//
//   train_text [--corpus FILE] [--steps N] [--out run.safetensors] [--tokenizer spm|bytes]
//   train_text --resume run.safetensors --steps M
//
// The text is split once: the last --holdout share (10%, cut at a line break) is held out
// for evaluation, training windows of --seq tokens are drawn at random from the rest
// (the windows of step s come from Rng(seed, s), so a resumed run sees the same batches as
// an uninterrupted one). The tokenizer is a SentencePiece BPE model trained on the
// training part (saved beside the checkpoint as <out stem>.spm.model) or raw bytes.
//
// Output: a progress line (rewritten in place on a terminal, one line per --log-every steps
// otherwise); every --eval-every steps the held-out cross-entropy and the share of the
// top-k assignments each expert of each layer received since the last report (router
// collapse shows up as one expert taking most of them). Checkpoints (weights, AdamW
// moments, step, tokenizer name) are written atomically every --save-every steps and at
// the end. Ctrl-C (SIGINT) or SIGTERM finish the current step, save, and exit.
//
// Exit status: 0 done; 1 error (corpus, checkpoint, numerics); 2 bad command line;
// 130 interrupted by SIGINT (143 by SIGTERM) after saving the checkpoint.
#include <fmt/core.h>
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numbers>
#include <optional>
#include <rosetta/dispatch/select.hpp>
#include <rosetta/io/checkpoint.hpp>
#include <rosetta/rosetta.hpp>
#include <string>
#include <vector>

#include "tokenizer.hpp"

namespace {
using namespace rosetta;
namespace fs = std::filesystem;
using examples::Tokenizer;

// ---- signals ----------------------------------------------------------------------------

volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  g_signal = sig;
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the program at once (saves are atomic)
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

/// A bad command line (exit status 2), as opposed to a failure while running (1).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// A failure while running (exit status 1): corpus, output directory.
using Failure = std::runtime_error;

// ---- options ----------------------------------------------------------------------------

// Defaults, measured on a 2-core machine with the default corpus (GPL-3: 35 KB, 9.2k
// SentencePiece tokens for training): about 20-25 steps/s, so 2000 steps take 1.5-2 minutes.
// The text is small enough for the tiny model to memorise: with PyTorch's usual weight decay
// (0.1) the held-out loss bottoms out after about 200 steps and then climbs; weight decay 2
// keeps it falling for about 1000 steps (docs/examples.md has the numbers).
struct Options {
  std::string corpus = "/usr/share/common-licenses/GPL-3";
  std::string out = "train_text.safetensors";
  std::string resume;
  std::size_t steps = 2000, batch = 8, seq = 64;
  double lr = 2e-3, weight_decay = 2.0;
  std::size_t warmup = 100;
  std::size_t eval_every = 200, save_every = 500, log_every = 50, eval_windows = 64;
  std::uint64_t seed = 1;
  std::string tokenizer = examples::has_sentencepiece() ? "spm" : "bytes";
  std::size_t vocab = 1000;
  std::string preset = "tiny";
  double holdout = 0.1;
  std::string scalar = "float", layout = "row", backend = default_backend();
  // which flags were given (a resumed run takes the others from the checkpoint)
  bool given_out = false, given_steps = false, given_corpus = false, given_batch = false,
       given_seq = false, given_seed = false, given_lr = false, given_wd = false,
       given_warmup = false, given_holdout = false;
};

// ---- data -------------------------------------------------------------------------------

struct Data {
  std::vector<std::int32_t> train, held;
  std::size_t train_bytes = 0, held_bytes = 0;
};

/// Splits text into (training, held-out): the held-out part is the last `holdout` share,
/// starting at a line break when there is one in the last share.
std::pair<std::string_view, std::string_view> split_text(std::string_view text, double holdout) {
  if (holdout <= 0) return {text, {}};
  std::size_t cut = static_cast<std::size_t>(static_cast<double>(text.size()) * (1.0 - holdout));
  const std::size_t nl = text.find('\n', cut);
  if (nl != std::string_view::npos && nl + 1 < text.size()) cut = nl + 1;
  return {text.substr(0, cut), text.substr(cut)};
}

/// One training batch: `batch` random windows of seq + 1 tokens (inputs and next tokens).
void sample_batch(const std::vector<std::int32_t>& train, std::size_t batch, std::size_t seq,
                  std::uint64_t seed, std::size_t step, std::vector<std::int32_t>& inputs,
                  std::vector<std::int32_t>& targets) {
  Rng rng(seed, step);
  for (std::size_t b = 0; b < batch; ++b) {
    const auto start = static_cast<std::size_t>(rng.below(train.size() - seq));
    std::copy_n(train.begin() + static_cast<std::ptrdiff_t>(start), seq,
                inputs.begin() + static_cast<std::ptrdiff_t>(b * seq));
    std::copy_n(train.begin() + static_cast<std::ptrdiff_t>(start + 1), seq,
                targets.begin() + static_cast<std::ptrdiff_t>(b * seq));
  }
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s / 60) % 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// ---- everything the training loop needs, prepared before the policy is chosen ------------

struct Setup {
  Options o;
  Config cfg;
  TrainConfig tc;
  std::unique_ptr<Tokenizer> tok;
  Data data;
  std::optional<io::SafeTensors> resume;  // the checkpoint to continue from
  std::size_t start_step = 0;
  fs::path spm_file;  // the SentencePiece model beside --out (spm only)
  bool tty = false;
};

/// Held-out cross-entropy: the mean over up to eval_windows non-overlapping windows of the
/// held-out tokens (forward only, on its own workspace).
template <class P>
double evaluate(const Transformer<P>& model, Workspace<typename P::scalar, typename P::layout>& ws,
                const Setup& s) {
  const auto& held = s.data.held;
  const std::size_t seq = s.o.seq;
  const std::size_t windows = std::min(s.o.eval_windows, (held.size() - 1) / seq);
  std::vector<std::int32_t> in(s.o.batch * seq), tg(s.o.batch * seq);
  double sum = 0;
  for (std::size_t w0 = 0; w0 < windows; w0 += s.o.batch) {
    const std::size_t nb = std::min(s.o.batch, windows - w0);
    for (std::size_t b = 0; b < nb; ++b) {
      const auto off = static_cast<std::ptrdiff_t>((w0 + b) * seq);
      std::copy_n(held.begin() + off, seq, in.begin() + static_cast<std::ptrdiff_t>(b * seq));
      std::copy_n(held.begin() + off + 1, seq, tg.begin() + static_cast<std::ptrdiff_t>(b * seq));
    }
    model.forward(TokenBatch{std::span<const std::int32_t>(in.data(), nb * seq), nb, seq}, ws);
    const auto l = model.loss(ws, std::span<const std::int32_t>(tg.data(), nb * seq));
    sum += static_cast<double>(l.ce) * static_cast<double>(nb);
  }
  return windows ? sum / static_cast<double>(windows) : NAN;
}

std::map<std::string, std::string> checkpoint_metadata(const Setup& s) {
  auto meta = examples::tokenizer_metadata(*s.tok, s.spm_file);
  std::error_code ec;  // an absolute corpus path, so --resume works from any directory
  const fs::path corpus = fs::absolute(s.o.corpus, ec);
  const nlohmann::json run = {{"corpus", ec ? s.o.corpus : corpus.lexically_normal().string()},
                              {"batch", s.o.batch},
                              {"seq", s.o.seq},
                              {"seed", s.o.seed},
                              {"holdout", s.o.holdout}};
  meta["train_text"] = run.dump();
  return meta;
}

template <class P>
int train(Setup& s) {
  const Options& o = s.o;
  Transformer<P> model(s.cfg, o.seed);
  Trainer<P> trainer(model, s.tc);
  if (s.resume) io::load_checkpoint(*s.resume, model, &trainer);
  s.resume.reset();  // free the file's bytes
  const auto meta = checkpoint_metadata(s);
  auto save = [&] {
    io::save_checkpoint(o.out, model, &trainer, meta);
    return trainer.step();
  };

  const bool eval_on = !s.data.held.empty();
  const double bytes_per_token =
      eval_on ? static_cast<double>(s.data.held_bytes) / static_cast<double>(s.data.held.size())
              : 1.0;
  auto eval_ws = model.make_workspace();
  auto report_eval = [&](std::size_t step, double train_ce) -> double {
    if (!eval_on) return NAN;
    const double ce = evaluate(model, eval_ws, s);
    if (s.tty) fmt::print("\r\033[K");
    fmt::print("eval  step {:6d}  held-out ce {:.4f} ({:.3f} bits/byte)", step, ce,
               ce / std::numbers::ln2 / bytes_per_token);
    if (std::isfinite(train_ce)) fmt::print("  train ce {:.4f}", train_ce);
    fmt::print("\n");
    return ce;
  };

  fmt::print("train_text: policy {}, {} parameters, vocab {} ({} tokenizer), batch {} x seq {}\n",
             P::name(), s.cfg.param_count(), s.cfg.vocab_size, s.tok->kind(), o.batch, o.seq);
  fmt::print(
      "train_text: lr {:.1e} wd {} warmup {} cosine to step {}, steps {} -> {}, checkpoint {}\n",
      s.tc.lr, s.tc.weight_decay, s.tc.warmup, s.tc.total_steps, trainer.step(), o.steps, o.out);
  const double first_eval = report_eval(trainer.step(), NAN);

  const std::size_t T = o.batch * o.seq, E = s.cfg.n_experts, K = s.cfg.top_k;
  std::vector<std::int32_t> inputs(T), targets(T);
  std::vector<std::vector<std::uint64_t>> routed(s.cfg.n_layers, std::vector<std::uint64_t>(E));
  std::size_t routed_since = trainer.step() + 1;

  double ema = 0, ema_w = 0;       // smoothed train ce for the live line
  double win_ce = 0, win_aux = 0;  // sums since the last log line
  std::size_t win_n = 0;
  double train_secs = 0, last_ce = NAN, last_eval = first_eval;
  std::size_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  while (trainer.step() < o.steps && g_signal == 0) {
    const std::size_t step = trainer.step() + 1;
    sample_batch(s.data.train, o.batch, o.seq, o.seed, step, inputs, targets);
    const auto ts = std::chrono::steady_clock::now();
    const auto r = trainer.train_step(TokenBatch{inputs, o.batch, o.seq}, targets);
    train_secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    ++done;

    // routing of this step: layers[l].idx holds the top-k expert ids of every token
    for (std::size_t l = 0; l < s.cfg.n_layers; ++l) {
      const auto& idx = trainer.workspace().layers[l].idx;
      for (std::size_t i = 0; i < T * K; ++i) ++routed[l][static_cast<std::size_t>(idx[i])];
    }

    const double ce = static_cast<double>(r.ce);
    last_ce = ce;
    ema = 0.9 * ema + 0.1 * ce;
    ema_w = 0.9 * ema_w + 0.1;
    win_ce += ce;
    win_aux += static_cast<double>(r.aux);
    ++win_n;

    const double tok_s = static_cast<double>(done * T) / train_secs;
    const double eta = static_cast<double>(o.steps - step) * elapsed() / static_cast<double>(done);
    if (s.tty) {
      fmt::print("\r\033[Kstep {:6d}/{}  ce {:.4f}  aux {:.4f}  lr {:.2e}  {:.0f} tok/s  ETA {}",
                 step, o.steps, ema / ema_w, r.aux, r.lr, tok_s, format_duration(eta));
      std::fflush(stdout);
    } else if (step % o.log_every == 0 || step == o.steps) {
      fmt::print(
          "step {:6d}/{}  ce {:.4f}  aux {:.4f}  lr {:.2e}  |g| {:.2f}  {:.0f} tok/s  ETA {}\n",
          step, o.steps, win_ce / double(win_n), win_aux / double(win_n), r.lr, r.grad_norm, tok_s,
          format_duration(eta));
      std::fflush(stdout);
      win_ce = win_aux = 0;
      win_n = 0;
    }

    if (step % o.eval_every == 0 || step == o.steps) {
      last_eval = report_eval(step, ema / ema_w);
      std::string line =
          fmt::format("route step {:6d}  expert share, steps {}-{}:", step, routed_since, step);
      for (std::size_t l = 0; l < s.cfg.n_layers; ++l) {
        std::uint64_t total = 0;
        for (auto c : routed[l]) total += c;
        line += fmt::format("  L{} [", l);
        for (std::size_t e = 0; e < E; ++e)
          line += fmt::format("{}{:3.0f}%", e ? " " : "",
                              100.0 * static_cast<double>(routed[l][e]) / double(total));
        line += "]";
        std::fill(routed[l].begin(), routed[l].end(), 0);
      }
      if (s.tty) fmt::print("\r\033[K");
      fmt::print("{}\n", line);
      std::fflush(stdout);
      routed_since = step + 1;
    }
    if (step % o.save_every == 0 && step != o.steps && g_signal == 0) {
      save();
      if (s.tty) fmt::print("\r\033[K");
      fmt::print("saved {} (step {})\n", o.out, step);
    }
  }
  if (s.tty) fmt::print("\r\033[K");
  if (done > 0 && trainer.step() % o.eval_every != 0 && trainer.step() != o.steps)
    last_eval = report_eval(trainer.step(), ema / ema_w);  // interrupted between evaluations

  const std::size_t final_step = save();
  const double secs = elapsed();
  fmt::print("saved {} (step {})", o.out, final_step);
  if (s.tok->kind() == "spm") fmt::print(", tokenizer {}", s.spm_file.string());
  fmt::print("\n");
  if (done > 0)
    fmt::print("trained {} steps in {} ({:.2f} steps/s, {:.0f} tokens/s in train_step)\n", done,
               format_duration(secs), static_cast<double>(done) / secs,
               static_cast<double>(done * T) / train_secs);
  if (eval_on && done > 0)
    fmt::print("held-out ce {:.4f} -> {:.4f}, last train ce {:.4f}\n", first_eval, last_eval,
               last_ce);
  if (g_signal != 0) {
    const int sig = g_signal;
    fmt::print("interrupted by {} at step {}; continue with: train_text --resume {} --steps {}\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", final_step, o.out, o.steps);
    return 128 + sig;
  }
  return 0;
}

// ---- preparation (independent of the policy) -------------------------------------------

Config preset_config(const std::string& name) {
  if (name == "tiny") return Config::tiny();
  if (name == "small") return Config::small();
  throw UsageError("--preset '" + name + "' is not one of: tiny, small");
}

void prepare(Setup& s) {
  Options& o = s.o;
  // where the checkpoint (and the tokenizer) go: fail now, not after an hour of training
  const fs::path out_dir = fs::absolute(o.out).parent_path();
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec) || ::access(out_dir.c_str(), W_OK) != 0)
    throw Failure("cannot write --out '" + o.out + "': directory '" + out_dir.string() +
                  "' does not exist or is not writable");
  if (fs::exists(o.out, ec) && fs::is_directory(o.out, ec))
    throw UsageError("--out '" + o.out + "' is a directory");
  if (!o.resume.empty()) {
    // model config, tokenizer, optimizer state and step come from the checkpoint; the run
    // settings (corpus, batch, seq, seed, holdout) too unless given on the command line
    s.resume.emplace(io::SafeTensors::load(o.resume));
    const auto& meta = s.resume->metadata();
    s.cfg = io::read_config(*s.resume);
    auto train_it = meta.find("train");
    if (train_it == meta.end() || meta.find("step") == meta.end())
      throw CheckpointError("checkpoint '" + o.resume +
                            "' holds no optimizer state (not written by a trainer); cannot resume");
    const auto tj = nlohmann::json::parse(train_it->second, nullptr, false);
    if (tj.is_discarded() || !tj.is_object())
      throw CheckpointError("checkpoint '" + o.resume + "': metadata 'train' is not JSON");
    s.tc = io::train_from_json(tj, "checkpoint '" + o.resume + "' train");
    const std::string& step_text = meta.at("step");
    if (step_text.empty() || step_text.size() > 18 ||
        !std::all_of(step_text.begin(), step_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; }))
      throw CheckpointError("checkpoint '" + o.resume + "': step '" + step_text +
                            "' is not a non-negative integer");
    s.start_step = std::stoull(step_text);
    if (auto run = meta.find("train_text"); run != meta.end()) {
      const auto rj = nlohmann::json::parse(run->second, nullptr, false);
      if (rj.is_object()) {
        auto take = [&](const char* key, auto& field, bool given) {
          if (!given && rj.contains(key)) field = rj.at(key).get<std::decay_t<decltype(field)>>();
        };
        take("corpus", o.corpus, o.given_corpus);
        take("batch", o.batch, o.given_batch);
        take("seq", o.seq, o.given_seq);
        take("seed", o.seed, o.given_seed);
        take("holdout", o.holdout, o.given_holdout);
      }
    }
    if (o.given_lr) s.tc.lr = o.lr;
    if (o.given_warmup) s.tc.warmup = o.warmup;
    if (o.given_wd) s.tc.weight_decay = o.weight_decay;
    if (!o.given_steps) o.steps = s.tc.total_steps;  // the step the interrupted run aimed at
    if (o.steps <= s.start_step)
      throw UsageError(
          fmt::format("the checkpoint is already at step {}; pass --steps N with "
                      "N > {} to train further (N is the step to stop at)",
                      s.start_step, s.start_step));
    if (o.steps > s.tc.total_steps) {
      fmt::print("train_text: note: cosine schedule extended from step {} to {}\n",
                 s.tc.total_steps, o.steps);
      s.tc.total_steps = o.steps;
    }
    s.tc.warmup = std::min(s.tc.warmup, s.tc.total_steps);
    s.tok = examples::tokenizer_from_metadata(meta, o.resume);
    fmt::print("train_text: resuming {} at step {} ({} tokenizer)\n", o.resume, s.start_step,
               s.tok->kind());
  }
  if (o.seq > 512 && o.resume.empty())
    throw UsageError(fmt::format("--seq {} exceeds the presets' max_seq_len 512", o.seq));

  // the corpus and its split
  std::string text;
  try {
    text = examples::read_file(o.corpus, "corpus");
  } catch (const examples::TokenizerError& e) {
    throw Failure(std::string(e.what()) + " (choose a text file with --corpus)");
  }
  if (text.empty()) throw Failure("corpus '" + o.corpus + "' is empty");
  const auto [train_text, held_text] = split_text(text, o.holdout);

  if (!s.tok) {  // a new run: make the tokenizer
    if (o.tokenizer == "bytes") {
      s.tok = std::make_unique<examples::ByteTokenizer>();
    } else {
#ifdef ROSETTA_HAS_SENTENCEPIECE
      const auto t0 = std::chrono::steady_clock::now();
      s.tok = examples::SpmTokenizer::train(train_text, o.vocab);
      fmt::print("train_text: SentencePiece BPE trained on {} bytes: {} pieces ({:.1f} s)\n",
                 train_text.size(), s.tok->vocab_size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
#endif
    }
    s.cfg = preset_config(o.preset);
    s.cfg.vocab_size = s.tok->vocab_size();
    s.tc.lr = o.lr;
    s.tc.total_steps = o.steps;
    s.tc.warmup = std::min(o.warmup, o.steps);
    s.tc.weight_decay = o.weight_decay;
    s.tc.clip = 1.0;
  }
  if (s.tok->vocab_size() > s.cfg.vocab_size)
    throw examples::TokenizerError(
        fmt::format("the tokenizer has {} tokens but the model's vocabulary is {}",
                    s.tok->vocab_size(), s.cfg.vocab_size));
  if (o.seq > s.cfg.max_seq_len)
    throw UsageError(
        fmt::format("--seq {} exceeds the model's max_seq_len {}", o.seq, s.cfg.max_seq_len));

  const auto t0 = std::chrono::steady_clock::now();
  s.data.train = s.tok->encode(train_text);
  s.data.held = s.tok->encode(held_text);
  s.data.train_bytes = train_text.size();
  s.data.held_bytes = held_text.size();
  fmt::print("train_text: corpus {}: {} bytes -> {} training + {} held-out tokens ({:.1f} s)\n",
             o.corpus, text.size(), s.data.train.size(), s.data.held.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (s.data.train.size() < o.seq + 1)
    throw Failure(fmt::format(
        "corpus '{}' is too short: {} training tokens, --seq {} needs at least {} (use a longer "
        "text or a smaller --seq)",
        o.corpus, s.data.train.size(), o.seq, o.seq + 1));
  if (o.holdout > 0 && s.data.held.size() < o.seq + 1)
    throw Failure(fmt::format(
        "corpus '{}' is too short: the held-out {:.0f}% has {} tokens, --seq {} needs at least "
        "{} (use a longer text, a smaller --seq, or --holdout 0)",
        o.corpus, 100 * o.holdout, s.data.held.size(), o.seq, o.seq + 1));

#ifdef ROSETTA_HAS_SENTENCEPIECE
  if (const auto* spm = dynamic_cast<const examples::SpmTokenizer*>(s.tok.get())) {
    s.spm_file = examples::spm_model_path(o.out);
    spm->save(s.spm_file);
  }
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const auto kPositive = CLI::Range(std::size_t{1}, std::size_t{1'000'000'000});
  Options o;
  const bool spm = examples::has_sentencepiece();
  CLI::App app{
      "train_text: trains the MoE Transformer on a text file and writes a checkpoint that "
      "`generate` samples from. Exit status: 0 done, 1 error, 2 bad command line, 130 "
      "interrupted by Ctrl-C (after saving the checkpoint)."};
  app.footer(
      spm ? "Tokenizers: spm (SentencePiece BPE trained on the corpus, saved beside the "
            "checkpoint) or bytes (vocabulary 256)."
          : "Tokenizers: this build has no SentencePiece (libsentencepiece-dev was not found at "
            "configure time): bytes only.");
  app.add_option("--corpus", o.corpus, "training text (UTF-8 or any bytes)")->capture_default_str();
  app.add_option("--steps", o.steps,
                 "train until this step (with --resume: default the checkpoint's planned total)")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--out", o.out, "checkpoint to write (atomically); with --resume: the same file")
      ->capture_default_str();
  app.add_option("--resume", o.resume,
                 "continue from this checkpoint (model, tokenizer, optimizer state, step)");
  app.add_option("--batch", o.batch, "sequences per step")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  app.add_option("--seq", o.seq, "tokens per sequence (<= 512)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{512}))
      ->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate (AdamW)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "linear warmup steps, then cosine decay to 0.1 lr")
      ->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "held-out loss and expert shares every N steps")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--save-every", o.save_every, "checkpoint every N steps (and at the end)")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--log-every", o.log_every, "progress line every N steps when not on a terminal")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--eval-windows", o.eval_windows, "held-out windows of --seq tokens to evaluate")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--holdout", o.holdout, "share of the text (its end) held out for evaluation")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the initial weights and of the training windows")
      ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer,
                 spm ? "spm or bytes" : "bytes (this build has no SentencePiece)")
      ->check(CLI::Validator(
          [spm](std::string& v) -> std::string {
            if (v == "bytes" || (v == "spm" && spm)) return {};
            if (v == "spm")
              return "spm: this build has no SentencePiece (libsentencepiece-dev was not found "
                     "at configure time); use --tokenizer bytes";
            return v + " is not one of: " + (spm ? "spm, bytes" : "bytes");
          },
          spm ? "{spm,bytes}" : "{bytes}"))
      ->capture_default_str();
  app.add_option("--vocab", o.vocab, "SentencePiece vocabulary size")
      ->check(CLI::Range(std::size_t{16}, std::size_t{100000}))
      ->capture_default_str();
  app.add_option("--preset", o.preset, "model size: tiny or small (vocab set by the tokenizer)")
      ->check(CLI::IsMember({"tiny", "small"}))
      ->capture_default_str();
  app.add_option("--scalar", o.scalar, "float or double")
      ->check(CLI::IsMember({"float", "double"}))
      ->capture_default_str();
  app.add_option("--layout", o.layout, "row or col")
      ->check(CLI::IsMember({"row", "col"}))
      ->capture_default_str();
  app.add_option("--backend", o.backend,
                 "one of: " + fmt::format("{}", fmt::join(available_backends(), ", ")))
      ->check(CLI::IsMember(available_backends()))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  o.given_out = app.count("--out") > 0;
  o.given_steps = app.count("--steps") > 0;
  if (!o.resume.empty() && !o.given_out) o.out = o.resume;  // continue in place
  o.given_corpus = app.count("--corpus") > 0;
  o.given_batch = app.count("--batch") > 0;
  o.given_seq = app.count("--seq") > 0;
  o.given_seed = app.count("--seed") > 0;
  o.given_lr = app.count("--lr") > 0;
  o.given_warmup = app.count("--warmup") > 0;
  o.given_wd = app.count("--weight-decay") > 0;
  o.given_holdout = app.count("--holdout") > 0;
  if (!o.resume.empty())
    for (const char* f : {"--tokenizer", "--vocab", "--preset"})
      if (app.count(f) > 0)
        fmt::print("train_text: note: {} is ignored with --resume (the checkpoint fixes it)\n", f);

  install_signal_handlers();
  try {
    Setup s;
    s.o = o;
    s.tty = ::isatty(::fileno(stdout)) != 0;
    prepare(s);
    int rc = 0;
    visit_policy(s.o.scalar, s.o.layout, s.o.backend, [&]<class P>() { rc = train<P>(s); });
    return rc;
  } catch (const UsageError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "train_text: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // rosetta::Error, tokenizer and file errors
    std::fflush(stdout);
    fmt::print(stderr, "train_text: error: {}\n", e.what());
    return 1;
  }
}
