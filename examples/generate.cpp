// generate: loads a checkpoint written by train_text and continues a prompt.
//
//   generate --checkpoint run.safetensors --prompt "This License" --max-len 200
//            --strategy greedy|sample|topk|topp [--k 40] [--p 0.9] [--temperature 0.8] [--seed 1]
//
// The tokenizer is the one the checkpoint names in its metadata ("tokenizer": bytes, or spm
// with "tokenizer_model" = the SentencePiece model file beside the checkpoint). The text is
// streamed to stdout as the tokens are chosen (KV-cache decoding, one forward per token);
// a summary goes to stderr. --max-len counts the prompt's tokens, as rosetta::generate does,
// and is bounded by the model's max_seq_len.
//
// Exit status: 0 done; 1 unreadable/corrupt checkpoint or tokenizer; 2 bad command line
// (including a prompt that encodes to no tokens, --max-len out of range, bad --k/--p/
// --temperature).
#include <fmt/core.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <rosetta/dispatch/select.hpp>
#include <rosetta/io/checkpoint.hpp>
#include <rosetta/rosetta.hpp>
#include <string>
#include <vector>

#include "tokenizer.hpp"

namespace {
using namespace rosetta;

struct Options {
  std::string checkpoint, prompt = "This License";
  std::size_t max_len = 200;
  std::string strategy = "topp";
  std::int64_t k = 40;
  double p = 0.9, temperature = 0.8;
  std::uint64_t seed = 1;
  bool quiet = false;
  std::string scalar = "float", layout = "row", backend = default_backend();
};

/// A bad command line (exit status 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class P>
void run(const Options& o, const io::SafeTensors& st, const examples::Tokenizer& tok,
         const std::vector<std::int32_t>& prompt, const AnyStrategy& strategy) {
  const Transformer<P> model = io::load_model<P>(st);
  Generator<P> gen(model, o.max_len);
  examples::StreamDecoder text(tok, prompt);

  std::fputs(text.prompt_text().c_str(), stdout);
  std::fflush(stdout);
  std::size_t produced = 0;
  const auto t0 = std::chrono::steady_clock::now();
  gen.run(prompt, o.max_len, strategy, o.seed, [&](std::int32_t id) {
    ++produced;
    const std::string piece = text.feed(id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string rest = text.finish();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!o.quiet)
    fmt::print(stderr,
               "generate: {} prompt + {} new tokens ({} tokenizer), strategy {}, seed {}, policy "
               "{}: {:.3f} s, {:.0f} tokens/s\n",
               prompt.size(), produced, tok.kind(), o.strategy, o.seed, P::name(), secs,
               secs > 0 ? static_cast<double>(produced) / secs : 0.0);
}

int generate_main(Options& o) {
  // sampling parameters first: a typo should not wait for a model to load
  AnyStrategy strategy;
  try {
    strategy = make_strategy(o.strategy, o.temperature, o.k, o.p);
  } catch (const ValueError& e) {
    throw UsageError(e.what());
  }

  const auto st = io::SafeTensors::load(o.checkpoint);  // CheckpointError if malformed
  const Config cfg = io::read_config(st);
  const auto tok = examples::tokenizer_from_metadata(st.metadata(), o.checkpoint);
  if (tok->vocab_size() > cfg.vocab_size)
    throw examples::TokenizerError(
        fmt::format("the tokenizer has {} tokens but the model's vocabulary is only {}",
                    tok->vocab_size(), cfg.vocab_size));

  const std::vector<std::int32_t> prompt = tok->encode(o.prompt);
  if (prompt.empty())
    throw UsageError("--prompt '" + o.prompt + "' encodes to no tokens (give some text)");
  if (o.max_len > cfg.max_seq_len)
    throw UsageError(
        fmt::format("--max-len {} exceeds the model's max_seq_len {}", o.max_len, cfg.max_seq_len));
  if (o.max_len <= prompt.size())
    throw UsageError(fmt::format(
        "--max-len {} leaves no room after the prompt's {} tokens (--max-len counts the prompt; "
        "allowed {}..{})",
        o.max_len, prompt.size(), prompt.size() + 1, cfg.max_seq_len));

  visit_policy(o.scalar, o.layout, o.backend,
               [&]<class P>() { run<P>(o, st, *tok, prompt, strategy); });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "generate: continues a prompt with a model trained by train_text, streaming the text. "
      "Exit status: 0 done, 1 bad checkpoint or tokenizer, 2 bad command line."};
  app.footer(
      examples::has_sentencepiece()
          ? "Tokenizers: whatever the checkpoint names (bytes, or spm with its model file "
            "beside the checkpoint)."
          : "Tokenizers: this build has no SentencePiece (libsentencepiece-dev was not found "
            "at configure time): checkpoints with the bytes tokenizer only.");
  app.add_option("--checkpoint", o.checkpoint, "checkpoint written by train_text")->required();
  app.add_option("--prompt", o.prompt, "text to continue")->capture_default_str();
  app.add_option("--max-len", o.max_len,
                 "total length in tokens, prompt included (<= the model's max_seq_len)")
      ->capture_default_str();
  app.add_option("--strategy", o.strategy,
                 "greedy (most likely token), sample (temperature), topk, topp")
      ->check(CLI::IsMember({"greedy", "sample", "topk", "topp"}))
      ->capture_default_str();
  app.add_option("--k", o.k, "topk: keep the k most likely tokens (0: no cut)")
      ->capture_default_str();
  app.add_option("--p", o.p, "topp: keep the most likely tokens holding mass p, 0 < p <= 1")
      ->capture_default_str();
  app.add_option("--temperature", o.temperature,
                 "sample/topk/topp: divide the logits by t (0: greedy; >= 0)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "sampling seed (same seed, same text)")->capture_default_str();
  app.add_flag("--quiet,-q", o.quiet, "no summary line on stderr");
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
  try {
    return generate_main(o);
  } catch (const UsageError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "generate: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // rosetta::Error (checkpoint), tokenizer and file errors
    std::fflush(stdout);
    fmt::print(stderr, "generate: error: {}\n", e.what());
    return 1;
  }
}
