// Tests of rosetta::io::SafeTensors (reader) and SafeTensorsWriter.

#include "rosetta/io/safetensors.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#ifndef ROSETTA_FIXTURES_DIR
#define ROSETTA_FIXTURES_DIR "/work/shared/fixtures"
#endif

namespace {

namespace fs = std::filesystem;
using rosetta::CheckpointError;
using rosetta::io::Dtype;
using rosetta::io::SafeTensors;
using rosetta::io::SafeTensorsWriter;

// --- helpers ------------------------------------------------------------------------------

/// A directory unique to this test process, removed when the tests end.
class TempDirEnvironment : public ::testing::Environment {
 public:
  static const fs::path& dir() {
    static const fs::path d = [] {
      fs::path p =
          fs::temp_directory_path() / ("rosetta_test_safetensors_" + std::to_string(::getpid()));
      fs::remove_all(p);
      fs::create_directories(p);
      return p;
    }();
    return d;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir(), fs::perms::owner_all, fs::perm_options::add, ec);
    for (const auto& e : fs::recursive_directory_iterator(dir(), ec))
      fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir(), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kTempDirEnv =
    ::testing::AddGlobalTestEnvironment(new TempDirEnvironment);

/// A fresh, empty subdirectory of the temp dir, named after the current test.
fs::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path p =
      TempDirEnvironment::dir() / (std::string(info->test_suite_name()) + "." + info->name());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

fs::path fixture(const char* name) {
  return fs::path(ROSETTA_FIXTURES_DIR) / name;
}

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  if (!c.empty()) std::memcpy(b.data(), c.data(), c.size());
  return b;
}

void write_bytes(const fs::path& p, const std::vector<std::byte>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(out.good()) << p;
}

/// An 8-byte little-endian length prefix.
/// The 8-byte little-endian length prefix followed by `pad` bytes of `fill`. (Built at its
/// final size: growing an 8-byte vector trips a GCC 12 -Warray-bounds false positive.)
std::vector<std::byte> prefix(std::uint64_t n, std::size_t pad = 0, std::byte fill = std::byte{0}) {
  std::vector<std::byte> b(8 + pad, fill);
  for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = std::byte((n >> (8 * i)) & 0xFF);
  return b;
}

/// A file image: length prefix, `header` verbatim, then `data_bytes` bytes of data.
std::vector<std::byte> image(const std::string& header, std::size_t data_bytes) {
  std::vector<std::byte> b = prefix(header.size());
  for (char c : header) b.push_back(static_cast<std::byte>(c));
  b.resize(b.size() + data_bytes, std::byte{0x5a});
  return b;
}

/// Asserts that f() throws CheckpointError whose message contains every needle.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "expected CheckpointError, nothing was thrown";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks '" << n << "': " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected CheckpointError, got another exception: " << e.what();
  }
}

/// Parses `header` + `data_bytes` and expects a CheckpointError naming the source and needles.
void expect_parse_error(const std::string& header, std::size_t data_bytes,
                        std::initializer_list<std::string> needles) {
  expect_error([&] { (void)SafeTensors::parse(image(header, data_bytes), "case.safetensors"); },
               needles);
  expect_error([&] { (void)SafeTensors::parse(image(header, data_bytes), "case.safetensors"); },
               {"case.safetensors"});
}

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

// --- dtypes ---------------------------------------------------------------------------------

TEST(SafeTensorsDtype, NamesAndSizes) {
  using rosetta::io::dtype_from_name;
  using rosetta::io::dtype_name;
  using rosetta::io::dtype_size;
  EXPECT_EQ(dtype_name(Dtype::F32), "F32");
  EXPECT_EQ(dtype_name(Dtype::BF16), "BF16");
  EXPECT_EQ(dtype_size(Dtype::F64), 8u);
  EXPECT_EQ(dtype_size(Dtype::I32), 4u);
  EXPECT_EQ(dtype_size(Dtype::F16), 2u);
  EXPECT_EQ(dtype_size(Dtype::BOOL), 1u);
  for (const char* n : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
                        "I32", "U32", "F32", "U64", "I64", "F64"}) {
    const auto d = dtype_from_name(n);
    ASSERT_TRUE(d.has_value()) << n;
    EXPECT_EQ(dtype_name(*d), n);
  }
  EXPECT_FALSE(dtype_from_name("f32").has_value());
  EXPECT_FALSE(dtype_from_name("F17").has_value());
  static_assert(rosetta::io::dtype_of<float>() == Dtype::F32);
  static_assert(rosetta::io::dtype_of<double>() == Dtype::F64);
  static_assert(rosetta::io::dtype_of<std::int64_t>() == Dtype::I64);
}

// --- round trip -----------------------------------------------------------------------------

struct Sample {
  std::vector<float> f{1.5f,
                       -0.0f,
                       std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::denorm_min(),
                       std::numeric_limits<float>::quiet_NaN(),
                       3.14159274f};
  std::vector<double> d{-1e300, 0.1, std::numeric_limits<double>::min(), -0.0,
                        std::numeric_limits<double>::signaling_NaN()};
  std::vector<std::int64_t> i{std::numeric_limits<std::int64_t>::min(), -1, 0,
                              std::numeric_limits<std::int64_t>::max()};
  std::vector<double> scalar{2.718281828459045};
  std::vector<float> empty{};
  std::vector<std::int32_t> i32{-7, 0, 2147483647};

  SafeTensorsWriter writer() const {
    SafeTensorsWriter w;
    w.set_metadata("format", "pt");
    w.set_metadata("config", R"({"hidden": 64})");
    w.set_metadata("format", "rosetta");  // replaces
    w.add<float>("z.float", std::span<const float>(f), {2, 3});
    w.add<double>("a.double", std::span<const double>(d), {5});
    w.add("m.int64", i, {2, 1, 2});
    w.add("scalar", scalar, {});
    w.add<float>("empty", empty, {0, 4});
    w.add("i32", std::span<const std::int32_t>(i32), {3});
    return w;
  }

  void check(const SafeTensors& st) const {
    EXPECT_EQ(st.metadata(), (std::map<std::string, std::string>{{"config", R"({"hidden": 64})"},
                                                                 {"format", "rosetta"}}));
    EXPECT_EQ(st.names(), (std::vector<std::string>{"z.float", "a.double", "m.int64", "scalar",
                                                    "empty", "i32"}));
    EXPECT_EQ(st.size(), 6u);
    EXPECT_TRUE(st.contains("scalar"));
    EXPECT_FALSE(st.contains("scalar2"));

    const auto& fi = st.info("z.float");
    EXPECT_EQ(fi.name, "z.float");
    EXPECT_EQ(fi.dtype, Dtype::F32);
    EXPECT_EQ(fi.shape, (std::vector<std::size_t>{2, 3}));
    EXPECT_EQ(fi.begin, 0u);
    EXPECT_EQ(fi.end, 24u);
    EXPECT_EQ(fi.numel(), 6u);
    EXPECT_TRUE(bit_equal(st.read<float>("z.float"), f));

    EXPECT_EQ(st.info("a.double").dtype, Dtype::F64);
    EXPECT_EQ(st.info("a.double").begin, 24u);
    EXPECT_TRUE(bit_equal(st.read<double>("a.double"), d));

    EXPECT_EQ(st.info("m.int64").dtype, Dtype::I64);
    EXPECT_EQ(st.info("m.int64").shape, (std::vector<std::size_t>{2, 1, 2}));
    EXPECT_EQ(st.read<std::int64_t>("m.int64"), i);

    const auto& si = st.info("scalar");
    EXPECT_TRUE(si.shape.empty());
    EXPECT_EQ(si.numel(), 1u);
    EXPECT_EQ(si.end - si.begin, 8u);
    EXPECT_TRUE(bit_equal(st.read<double>("scalar"), scalar));

    EXPECT_EQ(st.info("empty").numel(), 0u);
    EXPECT_EQ(st.info("empty").begin, st.info("empty").end);
    EXPECT_TRUE(st.read<float>("empty").empty());

    EXPECT_EQ(st.info("i32").dtype, Dtype::I32);
    EXPECT_EQ(st.read<std::int64_t>("i32"), (std::vector<std::int64_t>{-7, 0, 2147483647}));
  }
};

TEST(SafeTensorsRoundTrip, InMemory) {
  const Sample s;
  const auto bytes = s.writer().serialize();
  s.check(SafeTensors::parse(bytes, "memory"));
}

TEST(SafeTensorsRoundTrip, ThroughFile) {
  const Sample s;
  const fs::path p = test_dir() / "rt.safetensors";
  s.writer().save(p);
  s.check(SafeTensors::load(p));
  EXPECT_EQ(files_in(p.parent_path()), std::vector<fs::path>{"rt.safetensors"});
}

TEST(SafeTensorsRoundTrip, LayoutAndPadding) {
  const Sample s;
  const auto bytes = s.writer().serialize();
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | std::to_integer<std::uint64_t>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ(n % 8, 0u);
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));  // only spaces after '}'
  EXPECT_NE(header.find("\"__metadata__\""), std::string::npos);
  // Data section: the tensors back to back in insertion order.
  EXPECT_EQ(bytes.size(), 8 + n + 24 + 40 + 32 + 8 + 0 + 12);
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.5f);

  // No metadata -> no __metadata__ key; no tensors -> empty data section.
  SafeTensorsWriter w;
  const auto empty = w.serialize();
  const std::string h2(reinterpret_cast<const char*>(empty.data()) + 8, empty.size() - 8);
  EXPECT_EQ(h2.find("__metadata__"), std::string::npos);
  EXPECT_EQ(empty.size() % 8, 0u);
  const auto st = SafeTensors::parse(empty, "empty");
  EXPECT_EQ(st.size(), 0u);
  EXPECT_TRUE(st.metadata().empty());
}

TEST(SafeTensorsRead, Conversions) {
  SafeTensorsWriter w;
  w.add("f64", std::vector<double>{0.1, -2.5, 1e300}, {3});
  w.add("f32", std::vector<float>{0.1f, -2.5f}, {2});
  w.add("i64", std::vector<std::int64_t>{-3, (std::int64_t{1} << 53) + 1}, {2});
  w.add("i32", std::vector<std::int32_t>{-3, 5}, {2});
  const auto st = SafeTensors::parse(w.serialize(), "conv");

  const auto f = st.read<float>("f64");
  EXPECT_EQ(f[0], 0.1f);
  EXPECT_EQ(f[1], -2.5f);
  EXPECT_EQ(f[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(st.read<double>("f32")[0], static_cast<double>(0.1f));
  EXPECT_EQ(st.read<double>("i64"), (std::vector<double>{-3.0, 9007199254740992.0}));
  EXPECT_EQ(st.read<float>("i32"), (std::vector<float>{-3.0f, 5.0f}));

  std::array<double, 2> buf{};
  st.read_into<double>("f32", std::span<double>(buf));
  EXPECT_EQ(buf[1], -2.5);
  std::array<std::int64_t, 2> ibuf{};
  st.read_into<std::int64_t>("i32", std::span<std::int64_t>(ibuf));
  EXPECT_EQ(ibuf[0], -3);

  expect_error([&] { (void)st.read<std::int64_t>("f64"); }, {"f64", "F64", "int64"});
  expect_error([&] { (void)st.read<std::int64_t>("f32"); }, {"f32", "F32", "int64"});
}

TEST(SafeTensorsRead, ReadIntoSizeMismatch) {
  SafeTensorsWriter w;
  w.add("w", std::vector<float>(6, 1.0f), {2, 3});
  const auto st = SafeTensors::parse(w.serialize(), "rim");
  std::vector<float> small(5);
  expect_error([&] { st.read_into<float>("w", std::span<float>(small)); },
               {"'w'", "6 elements", "holds 5"});
  std::vector<float> ok(6);
  st.read_into<float>("w", std::span<float>(ok));
  EXPECT_EQ(ok, std::vector<float>(6, 1.0f));
}

TEST(SafeTensorsRead, MissingTensor) {
  const auto st = SafeTensors::parse(SafeTensorsWriter().serialize(), "nothing.safetensors");
  expect_error([&] { (void)st.info("foo"); }, {"no tensor named 'foo' in nothing.safetensors"});
  expect_error([&] { (void)st.read<float>("foo"); }, {"no tensor named 'foo'"});
}

TEST(SafeTensorsRead, UnsupportedDtype) {
  const std::string h = R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                        R"("u":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})";
  const auto st = SafeTensors::parse(image(h, 8), "bf16");
  EXPECT_EQ(st.info("b").dtype, Dtype::BF16);
  EXPECT_EQ(st.info("u").numel(), 4u);
  EXPECT_EQ(st.raw("u").size(), 4u);
  expect_error([&] { (void)st.read<float>("b"); },
               {"dtype BF16 of tensor 'b' is not supported for reading"});
  expect_error([&] { (void)st.read<double>("u"); }, {"dtype U8", "not supported"});
}

// --- writer errors --------------------------------------------------------------------------

TEST(SafeTensorsWriter, Errors) {
  SafeTensorsWriter w;
  w.add("x", std::vector<float>{1, 2}, {2});
  expect_error([&] { w.add("x", std::vector<double>{1}, {}); }, {"duplicate", "'x'"});
  expect_error(
      [&] {
        w.add("y", std::vector<float>{1, 2, 3}, {2, 2});
      },
      {"'y'", "[2, 2]", "4 elements", "3 data elements"});
  expect_error([&] { w.add("s", std::vector<float>{1, 2}, {}); }, {"'s'", "[]", "1 elements"});
  expect_error([&] { w.add("__metadata__", std::vector<float>{1}, {1}); }, {"reserved"});
  expect_error(
      [&] {
        w.add("big", std::vector<float>{1}, {std::size_t{1} << 40, std::size_t{1} << 40});
      },
      {"'big'", "overflowing"});
  expect_error([&] { w.set_metadata("bad", std::string("\xff\xfe")); }, {"UTF-8"});
  // The failed adds left the writer usable and unchanged.
  const auto st = SafeTensors::parse(w.serialize(), "w");
  EXPECT_EQ(st.names(), std::vector<std::string>{"x"});
}

// --- fixtures -------------------------------------------------------------------------------

TEST(SafeTensorsFixtures, TinyMqa) {
  const auto st = SafeTensors::load(fixture("tiny_mqa.safetensors"));
  for (const char* k : {"config", "train", "greedy"}) EXPECT_EQ(st.metadata().count(k), 1u) << k;
  const auto config = nlohmann::json::parse(st.metadata().at("config"));
  EXPECT_EQ(config.at("hidden"), 64);
  EXPECT_EQ(config.at("vocab"), 1000);

  const auto& emb = st.info("params.tok_embeddings.weight");
  EXPECT_EQ(emb.dtype, Dtype::F32);
  EXPECT_EQ(emb.shape, (std::vector<std::size_t>{1000, 64}));
  const auto w = st.read<float>("params.tok_embeddings.weight");
  ASSERT_EQ(w.size(), 64000u);
  for (float v : w) ASSERT_TRUE(std::isfinite(v));

  const auto& total = st.info("expect.loss.total");
  EXPECT_EQ(total.dtype, Dtype::F64);
  EXPECT_TRUE(total.shape.empty());
  const double loss = st.read<double>("expect.loss.total").at(0);
  const double ce = st.read<double>("expect.loss.ce").at(0);
  const double aux = st.read<double>("expect.loss.aux").at(0);
  EXPECT_NEAR(loss, ce + aux, 1e-12 * std::abs(loss));
  EXPECT_GT(ce, 0.0);

  const auto& tokens = st.info("input.tokens");
  EXPECT_EQ(tokens.dtype, Dtype::I64);
  EXPECT_EQ(tokens.shape, (std::vector<std::size_t>{2, 8}));
  for (std::int64_t t : st.read<std::int64_t>("input.tokens")) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 1000);
  }
  EXPECT_EQ(st.info("expect.logits").shape, (std::vector<std::size_t>{2, 8, 1000}));

  // names() follows the data offsets, and the ranges tile the data section.
  std::size_t pos = 0;
  for (const auto& n : st.names()) {
    EXPECT_EQ(st.info(n).begin, pos) << n;
    pos = st.info(n).end;
  }
}

TEST(SafeTensorsFixtures, GqaNtk) {
  const auto st = SafeTensors::load(fixture("gqa_ntk.safetensors"));
  for (const char* k : {"config", "train", "greedy"}) EXPECT_EQ(st.metadata().count(k), 1u) << k;
  const auto config = nlohmann::json::parse(st.metadata().at("config"));
  EXPECT_EQ(config.at("kv_heads"), 2);
  EXPECT_EQ(st.info("params.tok_embeddings.weight").shape, (std::vector<std::size_t>{97, 32}));
  EXPECT_EQ(st.info("params.layers.0.attention.wk.weight").shape,
            (std::vector<std::size_t>{16, 32}));
  EXPECT_TRUE(st.info("expect.loss.total").shape.empty());
  EXPECT_EQ(st.info("expect.loss.total").dtype, Dtype::F64);
  EXPECT_EQ(st.info("expect.greedy").dtype, Dtype::I64);
  EXPECT_EQ(st.info("expect.train_losses").shape, (std::vector<std::size_t>{10}));
  // F32 parameters read as double are exact.
  const auto f = st.read<float>("params.norm.weight");
  const auto d = st.read<double>("params.norm.weight");
  for (std::size_t i = 0; i < f.size(); ++i) EXPECT_EQ(static_cast<double>(f[i]), d[i]);
}

TEST(SafeTensorsFixtures, RewriteIsBitExact) {
  // Every tensor of a fixture, written again by the writer, reads back to the same bytes.
  const auto src = SafeTensors::load(fixture("gqa_ntk.safetensors"));
  SafeTensorsWriter w;
  for (const auto& [k, v] : src.metadata()) w.set_metadata(k, v);
  for (const auto& t : src.tensors()) {
    switch (t.dtype) {
      case Dtype::F32:
        w.add(t.name, src.read<float>(t.name), t.shape);
        break;
      case Dtype::F64:
        w.add(t.name, src.read<double>(t.name), t.shape);
        break;
      case Dtype::I64:
        w.add(t.name, src.read<std::int64_t>(t.name), t.shape);
        break;
      default:
        FAIL() << "unexpected dtype " << t.dtype << " of " << t.name;
    }
  }
  const auto bytes = w.serialize();
  const auto copy = SafeTensors::parse(bytes, "copy");
  EXPECT_EQ(copy.metadata(), src.metadata());
  EXPECT_EQ(copy.names(), src.names());  // same insertion = offset order
  for (const auto& t : src.tensors()) {
    EXPECT_EQ(copy.info(t.name).shape, t.shape);
    EXPECT_EQ(copy.info(t.name).dtype, t.dtype);
    const auto a = src.raw(t.name);
    const auto b = copy.raw(t.name);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size()), 0) << t.name;
  }
  // The original file's data section is reproduced byte for byte.
  const auto orig = read_bytes(fixture("gqa_ntk.safetensors"));
  const std::size_t orig_data = src.tensors().back().end;
  ASSERT_GE(orig.size(), orig_data);
  ASSERT_GE(bytes.size(), orig_data);
  EXPECT_EQ(std::memcmp(orig.data() + (orig.size() - orig_data),
                        bytes.data() + (bytes.size() - orig_data), orig_data),
            0);
}

// --- malformed files ------------------------------------------------------------------------

TEST(SafeTensorsMalformed, EmptyFile) {
  const fs::path p = test_dir() / "empty.safetensors";
  write_bytes(p, {});
  expect_error([&] { (void)SafeTensors::load(p); }, {"empty.safetensors", "0 bytes", "shorter"});
}

TEST(SafeTensorsMalformed, SevenByteFile) {
  const fs::path p = test_dir() / "seven.safetensors";
  write_bytes(p, std::vector<std::byte>(7, std::byte{0}));
  expect_error([&] { (void)SafeTensors::load(p); }, {"seven.safetensors", "7 bytes", "8-byte"});
}

TEST(SafeTensorsMalformed, MissingFileAndDirectory) {
  const fs::path dir = test_dir();
  expect_error([&] { (void)SafeTensors::load(dir / "nope.safetensors"); },
               {"nope.safetensors", "No such file"});
  expect_error([&] { (void)SafeTensors::load(dir); }, {"directory"});
}

TEST(SafeTensorsMalformed, HeaderLengthLargerThanFile) {
  const auto b = prefix(100, 50, std::byte{' '});
  expect_error([&] { (void)SafeTensors::parse(b, "short.st"); },
               {"short.st", "header length 100", "50 bytes"});
  // Also through a file.
  const fs::path p = test_dir() / "short.safetensors";
  write_bytes(p, b);
  expect_error([&] { (void)SafeTensors::load(p); }, {"short.safetensors", "header length 100"});
}

TEST(SafeTensorsMalformed, HeaderLengthAboveFormatLimit) {
  // 2^62 and 100 MB + 1 in a 16-byte file: rejected without allocating the header.
  for (std::uint64_t n : {std::uint64_t{1} << 62, std::uint64_t{100'000'001},
                          std::numeric_limits<std::uint64_t>::max()}) {
    const auto b = prefix(n, 8, std::byte{'{'});
    expect_error([&] { (void)SafeTensors::parse(b, "huge.st"); },
                 {"huge.st", "header length " + std::to_string(n), "100000000"});
  }
}

TEST(SafeTensorsMalformed, ZeroHeaderLength) {
  expect_parse_error("", 0, {"not valid JSON"});
}

TEST(SafeTensorsMalformed, InvalidJson) {
  expect_parse_error(R"({"a": {"dtype": "F32",)", 0, {"not valid JSON", "parse error"});
  expect_parse_error(R"({"a": 1} trailing)", 0, {"not valid JSON"});
  expect_parse_error(std::string("{}\0\0\0\0\0\0", 8), 0,
                     {"not valid JSON", "NUL byte at header offset 2"});
  expect_parse_error(std::string("{}\0junk", 7), 0, {"NUL byte"});
  expect_parse_error("{\"\xff\": 1}", 0, {"not valid JSON"});  // not UTF-8
}

TEST(SafeTensorsMalformed, NotAnObject) {
  expect_parse_error(R"([{"dtype":"F32","shape":[],"data_offsets":[0,4]}])", 4,
                     {"header is an array", "expected a JSON object"});
  expect_parse_error("42", 0, {"header is an integer"});
}

TEST(SafeTensorsMalformed, DuplicateTensorName) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                     R"("a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                     12, {"duplicate tensor name 'a'"});
  expect_parse_error(R"({"__metadata__":{},"__metadata__":{}})", 0,
                     {"duplicate key '__metadata__'"});
}

TEST(SafeTensorsMalformed, DuplicateKeyInEntryOrMetadata) {
  expect_parse_error(R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", 4,
                     {"duplicate key 'dtype'", "entry 'a'"});
  expect_parse_error(R"({"__metadata__":{"k":"1","k":"2"}})", 0,
                     {"duplicate key 'k'", "'__metadata__'"});
}

TEST(SafeTensorsMalformed, Metadata) {
  expect_parse_error(R"({"__metadata__":["x"]})", 0, {"__metadata__ is an array"});
  expect_parse_error(R"({"__metadata__":{"seed":9}})", 0,
                     {"__metadata__ value of key 'seed'", "an integer", "expected a string"});
  expect_parse_error(R"({"__metadata__":{"config":{"hidden":64}}})", 0,
                     {"key 'config'", "an object"});
}

TEST(SafeTensorsMalformed, EntryStructure) {
  expect_parse_error(R"({"a":[0,4]})", 4, {"entry 'a'", "an array", "expected an object"});
  expect_parse_error(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, {"'a'", "no \"dtype\""});
  expect_parse_error(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4, {"'a'", "no \"shape\""});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1]}})", 4, {"'a'", "no \"data_offsets\""});
  expect_parse_error(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4,
                     {"'a' dtype is an integer", "expected a string"});
}

TEST(SafeTensorsMalformed, UnknownDtype) {
  expect_parse_error(R"({"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", 4,
                     {"'a'", "unknown dtype 'F17'", "F32", "BF16"});
  expect_parse_error(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4,
                     {"unknown dtype 'f32'"});
}

TEST(SafeTensorsMalformed, BadShape) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":3,"data_offsets":[0,12]}})", 12,
                     {"'a' shape is an integer"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[3,-1],"data_offsets":[0,12]}})", 12,
                     {"'a' shape[1] is -1", "non-negative integer"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,12]}})", 12,
                     {"shape[0] is 1.5"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":["3"],"data_offsets":[0,12]}})", 12,
                     {"shape[0] is \"3\""});
}

TEST(SafeTensorsMalformed, BadDataOffsets) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8,
                     {"'a' data_offsets is [0,4,8]", "exactly 2"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8,
                     {"'a' data_offsets", "non-negative"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 8,
                     {"'a' data_offsets [4, 0]", "begin > end"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":{"begin":0}}})", 8,
                     {"'a' data_offsets", "exactly 2"});
}

TEST(SafeTensorsMalformed, ShapeTimesDtypeMismatch) {
  expect_parse_error(R"({"a":{"dtype":"F64","shape":[2,3],"data_offsets":[0,24]}})", 24,
                     {"'a' shape [2, 3] of dtype F64 needs 48 bytes", "span 24 bytes"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,8]}})", 8,
                     {"'a' shape [] of dtype F32 needs 4 bytes", "span 8"});
}

TEST(SafeTensorsMalformed, ShapeOverflow) {
  expect_parse_error(
      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})", 0,
      {"'a'", "overflow"});
  // Elements fit size_t but bytes do not.
  expect_parse_error(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})",
                     0, {"'a'", "overflow"});
  // A zero extent makes the product zero, however large the others are.
  const auto st = SafeTensors::parse(
      image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 0),
      "zero");
  EXPECT_EQ(st.info("a").numel(), 0u);
}

TEST(SafeTensorsMalformed, EndBeyondDataSection) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 12,
                     {"'a' data_offsets [0, 16]", "beyond the data section of 12 bytes"});
  expect_parse_error(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[99,99]}})", 0,
                     {"'a' data_offsets [99, 99]", "beyond the data section of 0 bytes"});
}

TEST(SafeTensorsMalformed, OverlappingRanges) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     12, {"overlap", "'b' data_offsets [4, 12]", "'a' data_offsets [0, 8]"});
  // Identical ranges overlap too.
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                     8, {"overlap"});
}

TEST(SafeTensorsMalformed, GapBetweenTensors) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                     12, {"gap", "bytes [4, 8)", "'a'", "'b'"});
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
                     {"gap", "bytes [0, 4)", "start at offset 0"});
}

TEST(SafeTensorsMalformed, TrailingBytes) {
  expect_parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 10,
                     {"data section has 10 bytes", "cover only 4"});
  expect_parse_error(R"({})", 3, {"data section has 3 bytes", "cover only 0"});
}

TEST(SafeTensorsMalformed, ValidEdgeCases) {
  // Padding spaces after the JSON, zero-size tensors sharing an offset, unknown entry keys.
  const std::string h = R"({"e1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                        R"("e2":{"dtype":"F64","shape":[3,0],"data_offsets":[0,0]},)"
                        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})"
                        "     ";
  const auto st = SafeTensors::parse(image(h, 4), "edge");
  EXPECT_EQ(st.names(), (std::vector<std::string>{"e1", "e2", "a"}));
}

TEST(SafeTensorsMalformed, TruncatedFixture) {
  const auto full = read_bytes(fixture("tiny_mqa.safetensors"));
  ASSERT_GT(full.size(), 1000u);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | std::to_integer<std::uint64_t>(full[static_cast<std::size_t>(i)]);
  const fs::path dir = test_dir();
  struct Cut {
    std::size_t size;
    std::vector<std::string> needles;
  };
  const std::vector<Cut> cuts = {
      {0, {"0 bytes", "shorter"}},
      {5, {"5 bytes", "shorter"}},
      {8, {"header length " + std::to_string(n), "exceeds the 0 bytes"}},
      {8 + n / 2, {"header length " + std::to_string(n)}},
      {8 + n - 1, {"header length " + std::to_string(n)}},
      {8 + n, {"beyond the data section of 0 bytes"}},
      {8 + n + 1001, {"beyond the data section of 1001 bytes"}},
      {full.size() - 1, {"beyond the data section of " + std::to_string(full.size() - 9 - n)}},
  };
  for (const auto& cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut.size));
    const fs::path p = dir / ("cut_" + std::to_string(cut.size) + ".safetensors");
    write_bytes(p, std::vector<std::byte>(full.begin(),
                                          full.begin() + static_cast<std::ptrdiff_t>(cut.size)));
    try {
      (void)SafeTensors::load(p);
      ADD_FAILURE() << "no error";
    } catch (const CheckpointError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.filename().string()), std::string::npos) << msg;
      for (const auto& needle : cut.needles)
        EXPECT_NE(msg.find(needle), std::string::npos) << "lacks '" << needle << "': " << msg;
    }
  }
  // The untruncated copy loads.
  const fs::path p = dir / "whole.safetensors";
  write_bytes(p, full);
  EXPECT_NO_THROW((void)SafeTensors::load(p));
}

// --- atomic save ----------------------------------------------------------------------------

SafeTensorsWriter small_writer(float v) {
  SafeTensorsWriter w;
  w.add("v", std::vector<float>(16, v), {16});
  return w;
}

TEST(SafeTensorsSave, ReplacesExistingFile) {
  const fs::path dir = test_dir();
  const fs::path p = dir / "ckpt.safetensors";
  small_writer(1.0f).save(p);
  small_writer(2.0f).save(p);
  EXPECT_EQ(SafeTensors::load(p).read<float>("v"), std::vector<float>(16, 2.0f));
  EXPECT_EQ(files_in(dir), std::vector<fs::path>{"ckpt.safetensors"});
  // A relative path (parent "") works as well.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);
  small_writer(3.0f).save("rel.safetensors");
  fs::current_path(cwd);
  EXPECT_EQ(SafeTensors::load(dir / "rel.safetensors").read<float>("v")[0], 3.0f);
}

TEST(SafeTensorsSave, NonexistentDirectory) {
  const fs::path dir = test_dir();
  const fs::path p = dir / "missing" / "ckpt.safetensors";
  expect_error([&] { small_writer(1.0f).save(p); },
               {p.string(), "cannot create temporary file", "No such file or directory"});
  EXPECT_TRUE(files_in(dir).empty());
  // A path "below" a regular file.
  write_bytes(dir / "file", {});
  expect_error([&] { small_writer(1.0f).save(dir / "file" / "x.safetensors"); },
               {"Not a directory"});
  EXPECT_EQ(files_in(dir), std::vector<fs::path>{"file"});
}

TEST(SafeTensorsSave, ReadOnlyDirectory) {
  const fs::path dir = test_dir();
  const fs::path p = dir / "ckpt.safetensors";
  small_writer(1.0f).save(p);
  const auto before = read_bytes(p);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(dir.c_str(), W_OK) == 0) {
    fs::permissions(dir, fs::perms::owner_all);
    GTEST_SKIP() << "running with privileges that ignore directory permissions (root)";
  }
  expect_error([&] { small_writer(2.0f).save(p); }, {p.string(), "Permission denied"});
  fs::permissions(dir, fs::perms::owner_all);
  EXPECT_EQ(files_in(dir), std::vector<fs::path>{"ckpt.safetensors"});
  EXPECT_EQ(read_bytes(p), before);
}

TEST(SafeTensorsSave, WriteFailureKeepsOriginal) {
  // RLIMIT_FSIZE makes write() fail with EFBIG, also for root.
  const fs::path dir = test_dir();
  const fs::path p = dir / "ckpt.safetensors";
  small_writer(1.0f).save(p);
  const auto before = read_bytes(p);

  SafeTensorsWriter big;
  big.add("v", std::vector<double>(100000, 1.0), {100000});
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  bool threw = false;
  std::string msg;
  try {
    big.save(p);
  } catch (const CheckpointError& e) {
    threw = true;
    msg = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_TRUE(threw);
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("write failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_EQ(files_in(dir), std::vector<fs::path>{"ckpt.safetensors"});
  EXPECT_EQ(read_bytes(p), before);
}

TEST(SafeTensorsSave, RenameFailureRemovesTemp) {
  // The target is a non-empty directory: the temp file is written, rename() fails.
  const fs::path dir = test_dir();
  const fs::path target = dir / "ckpt.safetensors";
  fs::create_directories(target / "inside");
  expect_error([&] { small_writer(1.0f).save(target); }, {target.string(), "rename"});
  EXPECT_EQ(files_in(dir), std::vector<fs::path>{"ckpt.safetensors"});
  EXPECT_TRUE(fs::is_directory(target / "inside"));
}

}  // namespace
