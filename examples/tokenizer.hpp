// Tokenizers for the example programs (train_text, generate). Not part of the library.
//
//   ByteTokenizer   every byte is a token: vocabulary 256, no files, no dependencies.
//   SpmTokenizer    a SentencePiece BPE model trained on the corpus (ROSETTA_HAS_SENTENCEPIECE,
//                   Debian package libsentencepiece-dev).
//
// SentencePiece reads its training text line by line and never sees a newline, so the
// SpmTokenizer adds one user-defined piece, "<nl>", and encodes text line by line with <nl>
// between the lines; decoding splits at <nl> again. The model is trained with the identity
// normaliser and without removing whitespace, so decode(encode(text)) == text for any text
// made of characters the corpus contains (others become <unk>, decoded as " ⁇ ").
//
// A checkpoint names its tokenizer in its metadata:
//   "tokenizer"        "bytes" or "spm"
//   "tokenizer_model"  (spm only) the model file, relative to the checkpoint's directory
// tokenizer_from_metadata() reads these back.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#ifdef ROSETTA_HAS_SENTENCEPIECE
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>
#endif

namespace examples {

/// What the example programs throw for tokenizer and file problems.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// True if this build can train and load SentencePiece models.
constexpr bool has_sentencepiece() {
#ifdef ROSETTA_HAS_SENTENCEPIECE
  return true;
#else
  return false;
#endif
}

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// "bytes" or "spm" (the checkpoint's "tokenizer" metadata value).
  virtual std::string kind() const = 0;
  /// Token ids are in [0, vocab_size()).
  virtual std::size_t vocab_size() const = 0;
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  /// Throws TokenizerError for an id outside [0, vocab_size()).
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
};

// ---------------------------------------------------------------------------------------

class ByteTokenizer final : public Tokenizer {
 public:
  std::string kind() const override { return "bytes"; }
  std::size_t vocab_size() const override { return 256; }
  std::vector<std::int32_t> encode(std::string_view text) const override {
    std::vector<std::int32_t> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i)
      ids[i] = static_cast<std::int32_t>(static_cast<unsigned char>(text[i]));
    return ids;
  }
  std::string decode(std::span<const std::int32_t> ids) const override {
    std::string out(ids.size(), '\0');
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] > 255)
        throw TokenizerError("bytes tokenizer: id " + std::to_string(ids[i]) +
                             " is outside [0, 256)");
      out[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
    }
    return out;
  }
};

// ---------------------------------------------------------------------------------------

/// Reads a whole file; throws TokenizerError naming the file if it cannot.
inline std::string read_file(const std::filesystem::path& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw TokenizerError(std::string(what) + " '" + path.string() + "' is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError(std::string("cannot open ") + what + " '" + path.string() + "'");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw TokenizerError(std::string("cannot read ") + what + " '" + path.string() + "'");
  return data;
}

/// Writes bytes to path atomically (temporary file beside it, then rename).
inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw TokenizerError("cannot write '" + tmp.string() + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw TokenizerError("cannot rename '" + tmp.string() + "' to '" + path.string() + "'");
  }
}

#ifdef ROSETTA_HAS_SENTENCEPIECE

class SpmTokenizer final : public Tokenizer {
 public:
  static constexpr const char* kNewline = "<nl>";

  /// Trains a BPE model on text with (at most) vocab pieces. SentencePiece may stop short of
  /// vocab on a small text; vocab_size() is what it produced.
  static std::unique_ptr<SpmTokenizer> train(std::string_view text, std::size_t vocab,
                                             int threads = 2) {
    Lines lines(text);
    const std::unordered_map<std::string, std::string> args{
        {"model_type", "bpe"},
        {"vocab_size", std::to_string(vocab)},
        {"character_coverage", "1.0"},            // keep every character of the corpus
        {"normalization_rule_name", "identity"},  // no NFKC: decode(encode(x)) == x
        {"remove_extra_whitespaces", "false"},    // keep indentation and double spaces
        {"bos_id", "-1"},                         // a plain token stream: no <s>, </s>
        {"eos_id", "-1"},
        {"user_defined_symbols", kNewline},
        {"hard_vocab_limit", "false"},
        {"num_threads", std::to_string(threads)},
        {"minloglevel", "2"},  // only errors on stderr
    };
    std::string proto;
    const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
    if (!status.ok())
      throw TokenizerError(std::string("SentencePiece training failed: ") + status.ToString());
    return from_proto(std::move(proto), "the trained model");
  }

  static std::unique_ptr<SpmTokenizer> load(const std::filesystem::path& path) {
    return from_proto(read_file(path, "SentencePiece model"), "'" + path.string() + "'");
  }

  /// The serialized model (what load() reads).
  const std::string& model_bytes() const { return proto_; }
  void save(const std::filesystem::path& path) const { write_file_atomic(path, proto_); }

  std::string kind() const override { return "spm"; }
  std::size_t vocab_size() const override { return static_cast<std::size_t>(sp_.GetPieceSize()); }

  std::vector<std::int32_t> encode(std::string_view text) const override {
    std::vector<std::int32_t> out;
    std::vector<int> ids;
    std::size_t begin = 0;
    while (true) {
      const std::size_t nl = text.find('\n', begin);
      const std::string_view line =
          text.substr(begin, nl == std::string_view::npos ? std::string_view::npos : nl - begin);
      if (!line.empty()) {
        const auto st = sp_.Encode(line, &ids);
        if (!st.ok()) throw TokenizerError("SentencePiece encode: " + st.ToString());
        out.insert(out.end(), ids.begin(), ids.end());
      }
      if (nl == std::string_view::npos) break;
      out.push_back(newline_id_);
      begin = nl + 1;
    }
    return out;
  }

  std::string decode(std::span<const std::int32_t> ids) const override {
    std::string out, piece;
    std::vector<int> line;
    auto flush = [&] {
      if (line.empty()) return;
      const auto st = sp_.Decode(line, &piece);
      if (!st.ok()) throw TokenizerError("SentencePiece decode: " + st.ToString());
      out += piece;
      line.clear();
    };
    for (const std::int32_t id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= vocab_size())
        throw TokenizerError("spm tokenizer: id " + std::to_string(id) + " is outside [0, " +
                             std::to_string(vocab_size()) + ")");
      if (id == newline_id_) {
        flush();
        out += '\n';
      } else {
        line.push_back(id);
      }
    }
    flush();
    return out;
  }

 private:
  /// Feeds the lines of a text to the SentencePiece trainer (without copying the text).
  class Lines final : public sentencepiece::SentenceIterator {
   public:
    explicit Lines(std::string_view text) : text_(text) { advance(); }
    bool done() const override { return done_; }
    void Next() override { advance(); }
    const std::string& value() const override { return line_; }
    sentencepiece::util::Status status() const override { return {}; }

   private:
    // SentencePiece skips sentences longer than max_sentence_length (4192 bytes): longer
    // lines are fed in pieces, cut at a space (or at least not inside a UTF-8 sequence).
    static constexpr std::size_t kMaxPiece = 4000;

    void advance() {
      // skip empty lines: they carry nothing for the trainer
      while (pos_ <= text_.size()) {
        const std::size_t nl = text_.find('\n', pos_);
        std::size_t end = nl == std::string_view::npos ? text_.size() : nl;
        std::size_t next = end + 1;
        if (end - pos_ > kMaxPiece) {
          end = pos_ + kMaxPiece;
          const std::size_t space = text_.rfind(' ', end);
          if (space != std::string_view::npos && space > pos_ + kMaxPiece / 2)
            end = space;
          else
            while (end > pos_ + 1 && (static_cast<unsigned char>(text_[end]) & 0xC0) == 0x80) --end;
          next = end;
        }
        line_.assign(text_.substr(pos_, end - pos_));
        pos_ = next;
        if (!line_.empty()) return;
      }
      done_ = true;
    }
    std::string_view text_;
    std::size_t pos_ = 0;
    std::string line_;
    bool done_ = false;
  };

  static std::unique_ptr<SpmTokenizer> from_proto(std::string proto, const std::string& what) {
    auto t = std::unique_ptr<SpmTokenizer>(new SpmTokenizer());
    const auto st = t->sp_.LoadFromSerializedProto(proto);
    if (!st.ok())
      throw TokenizerError("cannot load SentencePiece model " + what + ": " + st.ToString());
    t->newline_id_ = t->sp_.PieceToId(kNewline);
    if (t->newline_id_ == t->sp_.unk_id())
      throw TokenizerError("SentencePiece model " + what + " has no '" + kNewline +
                           "' piece (not made by train_text)");
    t->proto_ = std::move(proto);
    return t;
  }

  SpmTokenizer() = default;
  sentencepiece::SentencePieceProcessor sp_;
  std::string proto_;
  std::int32_t newline_id_ = -1;
};

#endif  // ROSETTA_HAS_SENTENCEPIECE

// ---------------------------------------------------------------------------------------

/// The file name train_text gives the SentencePiece model of checkpoint `ckpt`:
/// "run.safetensors" -> "run.spm.model" (in the same directory).
inline std::filesystem::path spm_model_path(const std::filesystem::path& ckpt) {
  std::filesystem::path p = ckpt;
  p.replace_extension(".spm.model");
  return p;
}

/// The checkpoint metadata entries that name tok (model_file: the spm model's path).
inline std::map<std::string, std::string> tokenizer_metadata(
    const Tokenizer& tok, const std::filesystem::path& model_file = {}) {
  std::map<std::string, std::string> m{{"tokenizer", tok.kind()}};
  if (tok.kind() == "spm") m["tokenizer_model"] = model_file.filename().string();
  return m;
}

/// The tokenizer a checkpoint names (see the top of this file). Throws TokenizerError.
inline std::unique_ptr<Tokenizer> tokenizer_from_metadata(
    const std::map<std::string, std::string>& meta, const std::filesystem::path& checkpoint) {
  const auto kind = meta.find("tokenizer");
  if (kind == meta.end())
    throw TokenizerError("checkpoint '" + checkpoint.string() +
                         "' names no tokenizer (no 'tokenizer' metadata; was it written by "
                         "train_text?)");
  if (kind->second == "bytes") return std::make_unique<ByteTokenizer>();
  if (kind->second != "spm")
    throw TokenizerError("checkpoint '" + checkpoint.string() + "': unknown tokenizer '" +
                         kind->second + "' (known: bytes, spm)");
#ifdef ROSETTA_HAS_SENTENCEPIECE
  const auto file = meta.find("tokenizer_model");
  if (file == meta.end() || file->second.empty())
    throw TokenizerError("checkpoint '" + checkpoint.string() +
                         "': tokenizer 'spm' but no 'tokenizer_model' metadata");
  const std::filesystem::path model = checkpoint.parent_path() / file->second;
  std::error_code ec;
  if (!std::filesystem::exists(model, ec))
    throw TokenizerError("checkpoint '" + checkpoint.string() +
                         "' needs the SentencePiece model '" + model.string() +
                         "', which does not exist (keep it beside the checkpoint)");
  return SpmTokenizer::load(model);
#else
  throw TokenizerError("checkpoint '" + checkpoint.string() +
                       "' uses a SentencePiece tokenizer, but this program was built without "
                       "SentencePiece (install libsentencepiece-dev and reconfigure)");
#endif
}

// ---------------------------------------------------------------------------------------

/// Turns a growing token sequence into text for streaming: feed() returns the text that
/// became final since the last call. An incomplete UTF-8 sequence at the end (the bytes
/// tokenizer emits one byte at a time) is held back until the next token completes it;
/// finish() returns whatever is left. Decoding the whole sequence each time (rather than
/// the new token alone) keeps SentencePiece's word-boundary spaces right.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tok, std::span<const std::int32_t> prompt)
      : tok_(tok), ids_(prompt.begin(), prompt.end()), prompt_(tok.decode(ids_)), shown_(prompt_) {}

  std::string feed(std::int32_t id) {
    ids_.push_back(id);
    return take(false);
  }
  std::string finish() { return take(true); }
  /// The prompt as decoded (the text the continuation follows).
  const std::string& prompt_text() const { return prompt_; }

 private:
  std::string take(bool all) {
    std::string text = tok_.decode(ids_);
    if (text.compare(0, shown_.size(), shown_) != 0) {
      // decoding the longer sequence changed text already shown (should not happen with
      // these tokenizers); show nothing until the end rather than garbling the output
      if (!all) return {};
      return "\n" + text.substr(std::min(text.size(), prompt_.size()));
    }
    std::size_t end = text.size();
    if (!all) end = complete_utf8_prefix(text);
    if (end <= shown_.size()) return {};
    std::string out = text.substr(shown_.size(), end - shown_.size());
    shown_.append(out);
    return out;
  }

  /// Length of the longest prefix of s that does not end inside a UTF-8 sequence.
  static std::size_t complete_utf8_prefix(const std::string& s) {
    std::size_t i = s.size(), back = 0;
    while (i > 0 && back < 4) {
      const auto c = static_cast<unsigned char>(s[i - 1]);
      ++back;
      if ((c & 0xC0) != 0x80) {  // a lead byte (or ASCII)
        std::size_t need = 1;
        if ((c & 0xE0) == 0xC0)
          need = 2;
        else if ((c & 0xF0) == 0xE0)
          need = 3;
        else if ((c & 0xF8) == 0xF0)
          need = 4;
        return back >= need ? s.size() : i - 1;
      }
      --i;
    }
    return s.size();  // not UTF-8 at all: show it as it is
  }

  const Tokenizer& tok_;
  std::vector<std::int32_t> ids_;
  std::string prompt_;  // decoded prompt
  std::string shown_;   // everything returned so far, prompt included
};

}  // namespace examples
