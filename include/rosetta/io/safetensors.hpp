// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
//
//   [8 bytes]  N, the header length, unsigned 64-bit little-endian
//   [N bytes]  a JSON object, UTF-8, optionally padded with trailing spaces:
//                {"__metadata__": {"key": "string value", ...},              (optional)
//                 "<tensor name>": {"dtype": "F32", "shape": [2, 3],
//                                   "data_offsets": [begin, end]}, ...}
//   [rest]     the data section; each tensor's bytes are [begin, end) relative to its start,
//              row-major (C order), little-endian. Shape [] is a scalar (one element).
//
// The reader validates everything the format requires and reports the first problem as a
// CheckpointError naming the source, what is wrong, the offending value and what was
// allowed. It never allocates more than the input's size plus the parsed header (the
// header length is checked against the input size before the header is touched).
//
// Reading converts numerically into float, double or std::int64_t:
//   stored F32, F64        -> float, double     (F64 -> float rounds to nearest)
//   stored I64, I32        -> float, double     (rounds to nearest beyond 2^24 / 2^53)
//   stored I64, I32        -> std::int64_t      (exact)
//   stored F32, F64        -> std::int64_t      refused (not lossless; NaN/inf undefined)
// Every other dtype (F16, BF16, U8, BOOL, ...) is parsed and validated but refused by read().
// Unknown keys inside a tensor entry are ignored, as the reference implementation does.
//
// The writer lays the tensors out contiguously in insertion order and pads the header with
// spaces to a multiple of 8 bytes; save() replaces the target atomically (temporary file in
// the same directory, fsync, rename).
//
// Assumes a little-endian host (checked at compile time).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <ostream>
#include <ranges>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rosetta/core/errors.hpp"

#if __has_include(<unistd.h>) && __has_include(<fcntl.h>)
#include <fcntl.h>
#include <unistd.h>
#define ROSETTA_SAFETENSORS_POSIX 1
#else
#include <fstream>
#define ROSETTA_SAFETENSORS_POSIX 0
#endif

namespace rosetta::io {

static_assert(std::endian::native == std::endian::little,
              "rosetta::io safetensors support assumes a little-endian host");
static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4);
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8);

/// The format's cap on the JSON header length (100 MB).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

// ---------------------------------------------------------------------------------------
// dtypes
// ---------------------------------------------------------------------------------------

/// Element types defined by the safetensors format (the byte-sized ones).
enum class Dtype : std::uint8_t {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  U64,
  I64,
  F64,
};

namespace st_detail {

struct DtypeEntry {
  Dtype dtype;
  std::string_view name;
  std::size_t size;
};

inline constexpr DtypeEntry kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1},       {Dtype::U8, "U8", 1},           {Dtype::I8, "I8", 1},
    {Dtype::F8_E5M2, "F8_E5M2", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::I16, "I16", 2},
    {Dtype::U16, "U16", 2},         {Dtype::F16, "F16", 2},         {Dtype::BF16, "BF16", 2},
    {Dtype::I32, "I32", 4},         {Dtype::U32, "U32", 4},         {Dtype::F32, "F32", 4},
    {Dtype::U64, "U64", 8},         {Dtype::I64, "I64", 8},         {Dtype::F64, "F64", 8},
};

inline std::string known_dtype_list() {
  std::string s;
  for (const auto& e : kDtypes) {
    if (!s.empty()) s += ", ";
    s += e.name;
  }
  return s;
}

}  // namespace st_detail

/// The format's spelling of `d` ("F32", "BF16", ...).
constexpr std::string_view dtype_name(Dtype d) noexcept {
  for (const auto& e : st_detail::kDtypes)
    if (e.dtype == d) return e.name;
  return "?";
}

/// Bytes per element of `d`.
constexpr std::size_t dtype_size(Dtype d) noexcept {
  for (const auto& e : st_detail::kDtypes)
    if (e.dtype == d) return e.size;
  return 0;
}

/// The dtype spelled `name`, or nullopt if the format does not define it.
constexpr std::optional<Dtype> dtype_from_name(std::string_view name) noexcept {
  for (const auto& e : st_detail::kDtypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

inline std::ostream& operator<<(std::ostream& os, Dtype d) {
  return os << dtype_name(d);
}

/// Element types read() converts into.
template <class T>
concept SafeTensorsReadable =
    std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, std::int64_t>;

/// Element types the writer stores: float -> F32, double -> F64, int64 -> I64, int32 -> I32.
template <class T>
concept SafeTensorsWritable = SafeTensorsReadable<T> || std::same_as<T, std::int32_t>;

/// The dtype the writer stores T as.
template <SafeTensorsWritable T>
constexpr Dtype dtype_of() noexcept {
  if constexpr (std::same_as<T, float>)
    return Dtype::F32;
  else if constexpr (std::same_as<T, double>)
    return Dtype::F64;
  else if constexpr (std::same_as<T, std::int64_t>)
    return Dtype::I64;
  else
    return Dtype::I32;
}

// ---------------------------------------------------------------------------------------
// Tensor description
// ---------------------------------------------------------------------------------------

/// One tensor of a safetensors file. begin/end are byte offsets within the data section.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::size_t> shape;
  std::size_t begin = 0;
  std::size_t end = 0;

  /// Number of elements (1 for the scalar shape []).
  std::size_t numel() const noexcept {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
  }
  /// Number of bytes, end - begin.
  std::size_t nbytes() const noexcept { return end - begin; }
};

namespace st_detail {

inline std::string shape_str(const std::vector<std::size_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Product of the extents, or nullopt on overflow. A zero extent makes the product zero
/// whatever the other extents are.
inline std::optional<std::size_t> checked_numel(const std::vector<std::size_t>& shape) {
  if (std::find(shape.begin(), shape.end(), std::size_t{0}) != shape.end()) return std::size_t{0};
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (n > std::numeric_limits<std::size_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

/// a * b, or nullopt on overflow.
inline std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b) return std::nullopt;
  return a * b;
}

/// A short rendering of a JSON value for error messages.
inline std::string brief(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  constexpr std::size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

/// "a number", "an array", ... for error messages.
inline std::string json_kind(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a floating-point number";
    default:
      return "an unsupported JSON value";
  }
}

/// The value of `j` if it is a non-negative integer that fits std::size_t.
inline std::optional<std::size_t> as_size(const nlohmann::json& j) {
  std::uint64_t v = 0;
  if (j.is_number_unsigned()) {
    v = j.get<std::uint64_t>();
  } else if (j.is_number_integer()) {
    const std::int64_t s = j.get<std::int64_t>();
    if (s < 0) return std::nullopt;
    v = static_cast<std::uint64_t>(s);
  } else {
    return std::nullopt;
  }
  if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t))
    if (v > std::numeric_limits<std::size_t>::max()) return std::nullopt;
  return static_cast<std::size_t>(v);
}

inline std::string errno_text(int err) {
  return std::generic_category().message(err);
}

/// Throws CheckpointError "safetensors '<source>': <parts...>".
template <class... Parts>
[[noreturn]] void fail(const std::string& source, Parts&&... parts) {
  rosetta::detail::raise<CheckpointError>("safetensors '", source,
                                          "': ", std::forward<Parts>(parts)...);
}

/// Converts out.size() elements of type Src stored (unaligned) at `src` into `out`.
template <class Src, class T>
void convert_elements(const std::byte* src, std::span<T> out) {
  if constexpr (std::same_as<Src, T>) {
    if (!out.empty()) std::memcpy(out.data(), src, out.size_bytes());
  } else {
    for (std::size_t i = 0; i < out.size(); ++i) {
      Src v;
      std::memcpy(&v, src + i * sizeof(Src), sizeof(Src));
      out[i] = static_cast<T>(v);
    }
  }
}

}  // namespace st_detail

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// A validated safetensors file held in memory.
class SafeTensors {
 public:
  /// Reads and validates the whole file at `path`. Errors name the path.
  static SafeTensors load(const std::filesystem::path& path) {
    const std::string source = path.string();
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      st_detail::fail(source, "cannot read: it is a directory, expected a file");
    std::FILE* f = std::fopen(source.c_str(), "rb");
    if (!f) {
      const int err = errno;
      st_detail::fail(source, "cannot open for reading: ", st_detail::errno_text(err));
    }
    std::vector<std::byte> bytes;
    try {
      // Read the size the file system reports, then whatever may follow (a file that grew,
      // or one whose size is not known in advance).
      const auto hint = std::filesystem::file_size(path, ec);
      if (!ec && hint > 0) {
        bytes.resize(static_cast<std::size_t>(hint));
        bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
      }
      std::vector<std::byte> chunk(std::size_t{1} << 16);
      for (std::size_t got; (got = std::fread(chunk.data(), 1, chunk.size(), f)) > 0;)
        bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
    } catch (const std::bad_alloc&) {
      std::fclose(f);
      st_detail::fail(source, "cannot read: out of memory");
    }
    const bool read_error = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (read_error) st_detail::fail(source, "read error: ", st_detail::errno_text(err));
    return parse(std::move(bytes), source);
  }

  /// Validates a complete file image held in memory; `source_name` names it in errors.
  static SafeTensors parse(std::vector<std::byte> bytes, std::string source_name) {
    SafeTensors st;
    st.source_ = std::move(source_name);
    st.bytes_ = std::move(bytes);
    st.validate();
    return st;
  }

  /// The name errors use (the path for load()).
  const std::string& source() const noexcept { return source_; }

  /// The `__metadata__` object (empty if absent).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// Number of tensors.
  std::size_t size() const noexcept { return tensors_.size(); }

  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }

  /// Tensor names in the order of their data offsets.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  /// All tensors in the order of their data offsets.
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }

  /// The tensor called `name`; CheckpointError if there is none.
  const TensorInfo& info(std::string_view name) const {
    const auto it = index_.find(name);
    if (it == index_.end())
      rosetta::detail::raise<CheckpointError>("no tensor named '", name, "' in ", source_);
    return tensors_[it->second];
  }

  /// The raw little-endian bytes of tensor `name`.
  std::span<const std::byte> raw(std::string_view name) const {
    const TensorInfo& t = info(name);
    return std::span<const std::byte>(bytes_).subspan(data_start_ + t.begin, t.nbytes());
  }

  /// The elements of tensor `name` converted to T (see the conversion table at the top).
  template <SafeTensorsReadable T>
  std::vector<T> read(std::string_view name) const {
    const TensorInfo& t = info(name);
    check_readable<T>(t);
    std::vector<T> out(t.numel());
    convert(t, std::span<T>(out));
    return out;
  }

  /// Like read(), into caller memory that must hold exactly numel() elements.
  template <SafeTensorsReadable T>
  void read_into(std::string_view name, std::span<T> out) const {
    const TensorInfo& t = info(name);
    check_readable<T>(t);
    if (out.size() != t.numel())
      st_detail::fail(source_, "read_into: tensor '", t.name, "' with shape ",
                      st_detail::shape_str(t.shape), " has ", t.numel(),
                      " elements but the destination holds ", out.size());
    convert(t, out);
  }

 private:
  SafeTensors() = default;

  template <class T>
  static constexpr std::string_view type_name() {
    if constexpr (std::same_as<T, float>)
      return "float";
    else if constexpr (std::same_as<T, double>)
      return "double";
    else
      return "int64";
  }

  template <class T>
  void check_readable(const TensorInfo& t) const {
    switch (t.dtype) {
      case Dtype::F32:
      case Dtype::F64:
        if constexpr (std::same_as<T, std::int64_t>)
          st_detail::fail(source_, "tensor '", t.name, "' has dtype ", t.dtype,
                          ", which cannot be read as ", type_name<T>(),
                          " (floating-point values are not converted to integers)");
        return;
      case Dtype::I64:
      case Dtype::I32:
        return;
      default:
        st_detail::fail(source_, "dtype ", t.dtype, " of tensor '", t.name,
                        "' is not supported for reading (supported: F32, F64, I64, I32)");
    }
  }

  template <class T>
  void convert(const TensorInfo& t, std::span<T> out) const {
    const std::byte* src = bytes_.data() + data_start_ + t.begin;
    switch (t.dtype) {
      case Dtype::F32:
        if constexpr (!std::same_as<T, std::int64_t>) st_detail::convert_elements<float>(src, out);
        break;
      case Dtype::F64:
        if constexpr (!std::same_as<T, std::int64_t>) st_detail::convert_elements<double>(src, out);
        break;
      case Dtype::I64:
        st_detail::convert_elements<std::int64_t>(src, out);
        break;
      case Dtype::I32:
        st_detail::convert_elements<std::int32_t>(src, out);
        break;
      default:
        break;  // refused by check_readable
    }
  }

  template <class... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    st_detail::fail(source_, std::forward<Parts>(parts)...);
  }

  /// Parses the header, rejecting duplicate keys in any object.
  nlohmann::json parse_header(const char* first, const char* last) const {
    struct Level {
      std::string owner;  // top-level key whose entry this object belongs to ("" = header)
      std::set<std::string, std::less<>> keys;
    };
    std::vector<Level> levels;
    std::string last_key;
    auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                        nlohmann::json& parsed) -> bool {
      using E = nlohmann::json::parse_event_t;
      switch (event) {
        case E::object_start:
          levels.push_back({levels.empty() ? std::string()
                                           : (levels.size() == 1 ? last_key : levels.back().owner),
                            {}});
          break;
        case E::object_end:
          if (!levels.empty()) levels.pop_back();
          break;
        case E::key: {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!levels.empty()) {
            if (!levels.back().keys.insert(key).second) {
              if (levels.size() == 1 && key == "__metadata__")
                fail("the header has a duplicate key '__metadata__'");
              if (levels.size() == 1)
                fail("duplicate tensor name '", key, "' in the header (each name may appear once)");
              fail("duplicate key '", key, "' in the header entry '", levels.back().owner, "'");
            }
          }
          last_key = key;
          break;
        }
        default:
          break;
      }
      return true;
    };
    try {
      return nlohmann::json::parse(first, last, callback, /*allow_exceptions=*/true,
                                   /*ignore_comments=*/false);
    } catch (const nlohmann::json::exception& e) {
      fail("the header is not valid JSON: ", e.what());
    }
  }

  void validate() {
    const std::size_t file_size = bytes_.size();
    if (file_size < 8)
      fail("file is ", file_size,
           " bytes, shorter than the 8-byte header length prefix (a safetensors file needs at "
           "least 8 bytes)");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = (n << 8) | static_cast<std::uint64_t>(bytes_[static_cast<std::size_t>(i)]);
    const std::uint64_t available = file_size - 8;
    if (n > kMaxHeaderBytes)
      fail("header length ", n, " exceeds the format's limit of ", kMaxHeaderBytes, " bytes");
    if (n > available)
      fail("header length ", n, " exceeds the ", available,
           " bytes that follow the 8-byte prefix (file truncated or not a safetensors file)");
    const auto header_len = static_cast<std::size_t>(n);
    data_start_ = 8 + header_len;
    const std::size_t data_size = file_size - data_start_;

    const char* first = reinterpret_cast<const char*>(bytes_.data()) + 8;
    // nlohmann's lexer takes a NUL byte for the end of the input and would silently ignore
    // whatever follows; a raw NUL is never valid JSON, so reject it up front.
    if (const void* nul = std::memchr(first, 0, header_len))
      fail("the header is not valid JSON: it contains a NUL byte at header offset ",
           static_cast<const char*>(nul) - first);
    const nlohmann::json header = parse_header(first, first + header_len);
    if (!header.is_object())
      fail("the header is ", st_detail::json_kind(header), ", expected a JSON object");

    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        read_metadata(value);
        continue;
      }
      tensors_.push_back(read_entry(key, value, data_size));
    }

    // Contiguous, non-overlapping, covering the data section exactly.
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      if (a.begin != b.begin) return a.begin < b.begin;
      if (a.end != b.end) return a.end < b.end;
      return a.name < b.name;
    });
    std::size_t expected = 0;
    const TensorInfo* prev = nullptr;
    for (const auto& t : tensors_) {
      if (t.begin < expected)
        fail("tensor '", t.name, "' data_offsets [", t.begin, ", ", t.end, "] overlap tensor '",
             prev->name, "' data_offsets [", prev->begin, ", ", prev->end,
             "] (tensor byte ranges must not overlap)");
      if (t.begin > expected) {
        if (prev)
          fail("gap in the data section: bytes [", expected, ", ", t.begin, ") between tensor '",
               prev->name, "' and tensor '", t.name,
               "' belong to no tensor (tensors must be contiguous)");
        fail("gap in the data section: bytes [0, ", t.begin, ") before tensor '", t.name,
             "' belong to no tensor (the first tensor must start at offset 0)");
      }
      expected = t.end;
      prev = &t;
    }
    if (expected != data_size)
      fail("the data section has ", data_size, " bytes but the tensors cover only ", expected,
           " (trailing bytes [", expected, ", ", data_size, ") belong to no tensor)");

    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  void read_metadata(const nlohmann::json& value) {
    if (!value.is_object())
      fail("__metadata__ is ", st_detail::json_kind(value), " (", st_detail::brief(value),
           "), expected an object of string values");
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        fail("__metadata__ value of key '", k, "' is ", st_detail::json_kind(v), " (",
             st_detail::brief(v), "), expected a string");
      metadata_.emplace(k, v.get<std::string>());
    }
  }

  TensorInfo read_entry(const std::string& name, const nlohmann::json& value,
                        std::size_t data_size) const {
    if (!value.is_object())
      fail("header entry '", name, "' is ", st_detail::json_kind(value), " (",
           st_detail::brief(value), "), expected an object with dtype, shape and data_offsets");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!value.contains(key))
        fail("tensor '", name, "' has no \"", key, "\" (required: dtype, shape, data_offsets)");

    TensorInfo t;
    t.name = name;

    const auto& dtype = value.at("dtype");
    if (!dtype.is_string())
      fail("tensor '", name, "' dtype is ", st_detail::json_kind(dtype), " (",
           st_detail::brief(dtype), "), expected a string");
    const auto& dtype_str = dtype.get_ref<const std::string&>();
    const auto d = dtype_from_name(dtype_str);
    if (!d)
      fail("tensor '", name, "' has unknown dtype '", dtype_str,
           "' (known: ", st_detail::known_dtype_list(), ")");
    t.dtype = *d;

    const auto& shape = value.at("shape");
    if (!shape.is_array())
      fail("tensor '", name, "' shape is ", st_detail::json_kind(shape), " (",
           st_detail::brief(shape), "), expected an array of non-negative integers");
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const auto dim = st_detail::as_size(shape[i]);
      if (!dim)
        fail("tensor '", name, "' shape[", i, "] is ", st_detail::brief(shape[i]),
             ", expected a non-negative integer");
      t.shape.push_back(*dim);
    }

    const auto& offsets = value.at("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2)
      fail("tensor '", name, "' data_offsets is ", st_detail::brief(offsets),
           ", expected an array of exactly 2 non-negative integers [begin, end]");
    const auto begin = st_detail::as_size(offsets[0]);
    const auto end = st_detail::as_size(offsets[1]);
    if (!begin || !end)
      fail("tensor '", name, "' data_offsets is ", st_detail::brief(offsets),
           ", expected 2 non-negative integers [begin, end]");
    if (*begin > *end)
      fail("tensor '", name, "' data_offsets [", *begin, ", ", *end,
           "] has begin > end (required: begin <= end)");
    t.begin = *begin;
    t.end = *end;

    const auto numel = st_detail::checked_numel(t.shape);
    const auto nbytes = numel ? st_detail::checked_mul(*numel, dtype_size(t.dtype)) : std::nullopt;
    if (!nbytes)
      fail("tensor '", name, "' shape ", st_detail::shape_str(t.shape), " of dtype ", t.dtype,
           " overflows the byte count (size_t)");
    if (*nbytes != t.end - t.begin)
      fail("tensor '", name, "' shape ", st_detail::shape_str(t.shape), " of dtype ", t.dtype,
           " needs ", *nbytes, " bytes but data_offsets [", t.begin, ", ", t.end, "] span ",
           t.end - t.begin, " bytes");
    if (t.end > data_size)
      fail("tensor '", name, "' data_offsets [", t.begin, ", ", t.end,
           "] end beyond the data section of ", data_size, " bytes (offset must be <= ", data_size,
           ")");
    return t;
  }

  std::string source_;
  std::vector<std::byte> bytes_;  // the whole file
  std::size_t data_start_ = 0;    // 8 + header length
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;  // sorted by data offset
  std::map<std::string, std::size_t, std::less<>> index_;
};

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// Collects tensors and metadata and writes them as one safetensors file.
class SafeTensorsWriter {
 public:
  /// Sets (or replaces) a `__metadata__` entry.
  void set_metadata(std::string key, std::string value) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value of key '" + key + "'");
    metadata_[std::move(key)] = std::move(value);
  }

  /// Adds a tensor (copied). data.size() must equal the product of `shape` ({} = scalar).
  template <SafeTensorsWritable T>
  void add(std::string name, std::span<const T> data, std::vector<std::size_t> shape) {
    if (name == "__metadata__")
      rosetta::detail::raise<CheckpointError>(
          "SafeTensorsWriter::add: the name '__metadata__' is reserved by the format");
    check_utf8(name, "tensor name");
    if (names_.count(name))
      rosetta::detail::raise<CheckpointError>("SafeTensorsWriter::add: duplicate tensor name '",
                                              name, "' (each name may be added once)");
    const auto numel = st_detail::checked_numel(shape);
    if (!numel || *numel != data.size())
      rosetta::detail::raise<CheckpointError>(
          "SafeTensorsWriter::add: tensor '", name, "' has shape ", st_detail::shape_str(shape),
          " (", numel ? std::to_string(*numel) : std::string("overflowing"), " elements) but ",
          data.size(), " data elements were given");
    Entry e;
    e.dtype = dtype_of<T>();
    e.shape = std::move(shape);
    e.data.resize(data.size_bytes());
    if (!data.empty()) std::memcpy(e.data.data(), data.data(), data.size_bytes());
    names_.insert(name);
    e.name = std::move(name);
    entries_.push_back(std::move(e));
  }

  /// Convenience overload for contiguous ranges (std::vector, std::array, std::span, ...).
  template <std::ranges::contiguous_range R>
  requires std::ranges::sized_range<R> &&
      SafeTensorsWritable<std::remove_cv_t<std::ranges::range_value_t<R>>>
  void add(std::string name, const R& data, std::vector<std::size_t> shape) {
    using T = std::remove_cv_t<std::ranges::range_value_t<R>>;
    add<T>(std::move(name), std::span<const T>(std::ranges::data(data), std::ranges::size(data)),
           std::move(shape));
  }

  /// The complete file image.
  std::vector<std::byte> serialize() const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
      auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata_) meta[k] = v;
    }
    std::size_t offset = 0;
    for (const auto& e : entries_) {
      header[e.name] = {{"dtype", std::string(dtype_name(e.dtype))},
                        {"shape", e.shape},
                        {"data_offsets", {offset, offset + e.data.size()}}};
      offset += e.data.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    if (text.size() > kMaxHeaderBytes)
      rosetta::detail::raise<CheckpointError>("SafeTensorsWriter: the header would be ",
                                              text.size(), " bytes, above the format's limit of ",
                                              kMaxHeaderBytes);
    std::vector<std::byte> out(8 + text.size() + offset);
    std::uint64_t n = text.size();
    for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xFF);
    std::memcpy(out.data() + 8, text.data(), text.size());
    std::size_t pos = 8 + text.size();
    for (const auto& e : entries_) {
      if (!e.data.empty()) std::memcpy(out.data() + pos, e.data.data(), e.data.size());
      pos += e.data.size();
    }
    return out;
  }

  /// Writes the file atomically: a temporary file in the same directory is written,
  /// flushed and fsync'ed, then renamed over `path`. On failure the temporary file is
  /// removed, an existing `path` is left untouched, and CheckpointError names the path and
  /// the OS error.
  void save(const std::filesystem::path& path) const {
    const std::vector<std::byte> bytes = serialize();
    write_atomically(path, bytes);
  }

 private:
  struct Entry {
    std::string name;
    Dtype dtype = Dtype::F32;
    std::vector<std::size_t> shape;
    std::vector<std::byte> data;
  };

  static void check_utf8(const std::string& s, const std::string& what) {
    try {
      (void)nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception&) {
      rosetta::detail::raise<CheckpointError>("SafeTensorsWriter: ", what,
                                              " is not valid UTF-8 (JSON requires UTF-8)");
    }
  }

  [[noreturn]] static void save_error(const std::filesystem::path& path, std::string_view what,
                                      int err) {
    rosetta::detail::raise<CheckpointError>("cannot save safetensors '", path.string(), "': ", what,
                                            ": ", st_detail::errno_text(err));
  }

#if ROSETTA_SAFETENSORS_POSIX
  /// Closes fd (if >= 0), removes the temporary file and throws.
  [[noreturn]] static void abandon(const std::filesystem::path& path, const std::string& tmp,
                                   int fd, std::string_view what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    save_error(path, std::string(what) + " failed (temporary file '" + tmp + "', removed)", err);
  }
#endif

  static void write_atomically(const std::filesystem::path& path,
                               const std::vector<std::byte>& bytes) {
    static std::atomic<unsigned> counter{0};
    std::filesystem::path tmp = path;
#if ROSETTA_SAFETENSORS_POSIX
    tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    const std::string tmp_str = tmp.string();
    const int fd = ::open(tmp_str.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) save_error(path, "cannot create temporary file '" + tmp_str + "'", errno);
    const char* p = reinterpret_cast<const char*>(bytes.data());
    std::size_t left = bytes.size();
    while (left > 0) {
      const ::ssize_t w = ::write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) abandon(path, tmp_str, fd, "write", errno);
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    if (::fsync(fd) != 0) abandon(path, tmp_str, fd, "fsync", errno);
    if (::close(fd) != 0) abandon(path, tmp_str, -1, "close", errno);
    if (::rename(tmp_str.c_str(), path.string().c_str()) != 0)
      abandon(path, tmp_str, -1, "rename over the target", errno);
    // Make the rename itself durable; not every file system supports this, so best effort.
    std::filesystem::path dir = path.parent_path();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.string().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
#else
    tmp += ".tmp." + std::to_string(counter++);
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) save_error(path, "cannot create temporary file '" + tmp.string() + "'", errno);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      out.flush();
      if (!out) {
        const int err = errno;
        out.close();
        std::error_code ignored;
        std::filesystem::remove(tmp, ignored);
        save_error(path, "write to '" + tmp.string() + "' failed", err);
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      rosetta::detail::raise<CheckpointError>("cannot save safetensors '", path.string(),
                                              "': rename failed: ", ec.message());
    }
#endif
  }

  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::set<std::string> names_;
};

}  // namespace rosetta::io
