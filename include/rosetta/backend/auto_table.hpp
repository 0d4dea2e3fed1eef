// Routing tables: which backend runs which gemm shape (backend::Auto, backend/auto.hpp) and
// which atlas kernel at which size (atlas::auto_run, atlas/auto.hpp), as measured on one
// machine by rosetta-calibrate (benchmark/rosetta_calibrate.cpp).
//
// Text format, one entry per line; '#' starts a comment, blank lines are ignored:
//
//   rosetta-auto-table 1                       the version header: the first line that is
//                                              not blank or a comment
//   atlas KERNEL N_MIN N_MAX BACKEND           atlas kernel KERNEL at sizes N_MIN <= n <= N_MAX
//                                              ('*': no upper bound) runs on BACKEND (naive
//                                              eigen openblas blis hwy_static hwy_dynamic)
//   gemm SCALAR LAYOUT OPA OPB M N K BACKEND   C = alpha op(A) op(B) + beta C with op(A) M x K,
//                                              op(B) K x N (SCALAR float|double, LAYOUT
//                                              row|col, OPA/OPB N|T) runs on BACKEND (naive
//                                              eigen blis openblas hwy)
//
// Lookup. gemm: the entry with the same scalar, layout, ops and (M, N, K); else the nearest
// entry with the same scalar, layout and ops by |log(m n k) - log(M N K)| (ties: the smaller
// |log m/M| + |log n/N| + |log k/K|, then the smaller (M, N, K)); else (no entry for those
// ops) the table's fallback backend. atlas: the range of KERNEL that holds n, else none (the
// caller falls back, see atlas/auto.hpp).
//
// Validation when parsing, each failure a RouteTableError "<source>:<line>: <what>": the
// header and its version, the number of fields, every name (directive, scalar, layout, op,
// backend; kernel names when the Catalog knows the atlas), numbers (decimal digits only,
// M, N, K >= 1, N_MIN <= N_MAX), duplicate gemm entries, ranges of one kernel that are not
// sorted or overlap, and backends the Catalog says this build lacks: an error, or, with
// Catalog::substitute_missing (the shipped default table), the entry is routed to the
// fallback instead and counted in substituted().
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "rosetta/atlas/core.hpp"
#include "rosetta/core/errors.hpp"
#include "rosetta/core/policy.hpp"

namespace rosetta::routing {

inline constexpr std::string_view kMagic = "rosetta-auto-table";
inline constexpr int kVersion = 1;

// ---- gemm backends a route can name (their B::name) ------------------------------------------
// hwy: backend::HwyGemm (backend/hwy_gemm.hpp), our own Highway gemm; a routing target only
// (not in backend::Available).
enum class GemmBackend : std::uint8_t { naive, eigen, blis, openblas, hwy };
inline constexpr std::size_t kNumGemmBackends = 5;
inline constexpr std::array<std::string_view, kNumGemmBackends> kGemmBackendNames = {
    "naive", "eigen", "blis", "openblas", "hwy"};

constexpr std::string_view name(GemmBackend b) {
  return kGemmBackendNames[static_cast<std::size_t>(b)];
}
inline std::optional<GemmBackend> gemm_backend_from_name(std::string_view s) {
  for (std::size_t i = 0; i < kNumGemmBackends; ++i)
    if (kGemmBackendNames[i] == s) return static_cast<GemmBackend>(i);
  return std::nullopt;
}

/// Gemm routes are grouped by (scalar, layout, opA, opB): 16 buckets.
inline constexpr std::size_t kNumGemmBuckets = 16;
constexpr std::size_t gemm_bucket(bool is_double, bool col_major, Op a, Op b) {
  return (is_double ? 8u : 0u) + (col_major ? 4u : 0u) + (a == Op::T ? 2u : 0u) +
         (b == Op::T ? 1u : 0u);
}

/// What a table is checked against: the backends of this build.
struct Catalog {
  std::array<bool, kNumGemmBackends> gemm{};       ///< gemm backends compiled in
  GemmBackend gemm_fallback = GemmBackend::naive;  ///< gemms without a route (must be compiled in)
  /// The atlas side, when the caller knows it (atlas/auto.hpp): which atlas backends are
  /// compiled in, and kernel_has(kernel, b): -1 no such kernel, 0 it lacks b, 1 it has b.
  bool check_atlas = false;
  std::array<bool, atlas::kNumBackends> atlas{};
  int (*kernel_has)(std::string_view kernel, atlas::Backend) = nullptr;
  /// An entry naming a backend this build lacks: an error (false), or routed to the fallback
  /// and counted (true; for the shipped default table).
  bool substitute_missing = false;
};

struct GemmRoute {
  std::size_t m = 0, n = 0, k = 0;
  GemmBackend backend = GemmBackend::naive;
  std::size_t line = 0;
  double log_mnk = 0, log_m = 0, log_n = 0, log_k = 0;
};

struct AtlasRoute {
  std::string kernel;
  std::size_t lo = 0, hi = 0;
  std::optional<atlas::Backend> backend;  ///< nullopt: substituted (the caller's fallback)
  std::size_t line = 0;
};

class RouteTable {
 public:
  /// An empty table: every gemm goes to `fallback`, no atlas routes.
  explicit RouteTable(GemmBackend fallback = GemmBackend::naive, std::string source = "empty")
      : source_(std::move(source)), fallback_(fallback), id_(next_id()) {}

  /// Parses and validates `text`; errors name `source` and the line.
  static RouteTable parse(std::string_view text, std::string source, const Catalog& catalog);
  /// Reads and parses the file at `path`.
  static RouteTable load_file(const std::string& path, const Catalog& catalog) {
    std::ifstream f(path, std::ios::binary);
    if (!f) rosetta::detail::raise<RouteTableError>(path, ": cannot open the routing table");
    std::ostringstream ss;
    ss << f.rdbuf();
    return parse(ss.str(), path, catalog);
  }

  /// The backend for a gemm of bucket `bucket` (gemm_bucket) and shape m x n x k (op(A) is
  /// m x k): no allocation, no locking; a hash probe for a listed shape, O(log entries) for
  /// the nearest one.
  /// A shape without an entry of its own (e.g. an MoE expert's row count) is looked up in a
  /// small per-thread memo first: the nearest search costs a few logarithms (~50 ns), and a
  /// model issues the same unlisted shapes step after step.
  GemmBackend gemm(std::size_t bucket, std::size_t m, std::size_t n, std::size_t k) const noexcept {
    if (by_shape_[bucket].empty() || m == 0 || n == 0 || k == 0) return fallback_;
    if (const GemmRoute* r = exact(bucket, m, n, k)) return r->backend;
    struct Memo {
      std::uint64_t table = 0;  // id_ of the table (0: empty slot; ids start at 1)
      std::size_t bucket = 0, m = 0, n = 0, k = 0;
      GemmBackend backend = GemmBackend::naive;
    };
    thread_local std::array<Memo, 64> memo{};
    Memo& e = memo[(hash(m, n, k) ^ bucket) & 63];
    if (e.table == id_ && e.bucket == bucket && e.m == m && e.n == n && e.k == k) return e.backend;
    const GemmBackend b = nearest(bucket, m, n, k)->backend;
    e = Memo{id_, bucket, m, n, k, b};
    return b;
  }
  /// The entry that decides a gemm (exact or nearest), or nullptr (the fallback decides).
  const GemmRoute* gemm_route(std::size_t bucket, std::size_t m, std::size_t n,
                              std::size_t k) const noexcept {
    if (by_shape_[bucket].empty() || m == 0 || n == 0 || k == 0) return nullptr;
    if (const GemmRoute* r = exact(bucket, m, n, k)) return r;
    return nearest(bucket, m, n, k);
  }
  /// The routed backend of atlas kernel `kernel` at size n; nullopt when no range holds n or
  /// the entry was substituted.
  std::optional<atlas::Backend> atlas(std::string_view kernel, std::size_t n) const noexcept {
    const AtlasRoute* r = atlas_route(kernel, n);
    return r ? r->backend : std::nullopt;
  }
  const AtlasRoute* atlas_route(std::string_view kernel, std::size_t n) const noexcept {
    auto it = std::lower_bound(atlas_.begin(), atlas_.end(), std::make_pair(kernel, n),
                               [](const AtlasRoute& r, auto q) {
                                 return std::string_view(r.kernel) < q.first ||
                                        (std::string_view(r.kernel) == q.first && r.hi < q.second);
                               });
    if (it != atlas_.end() && it->kernel == kernel && it->lo <= n && n <= it->hi) return &*it;
    return nullptr;
  }

  const std::string& source() const noexcept { return source_; }
  /// FNV-1a (64 bit) of the table text: which table was used, independent of its path.
  std::uint64_t fingerprint() const noexcept { return fingerprint_; }
  GemmBackend fallback() const noexcept { return fallback_; }
  std::size_t gemm_routes() const noexcept {
    std::size_t n = 0;
    for (const auto& v : by_shape_) n += v.size();
    return n;
  }
  std::size_t atlas_routes() const noexcept { return atlas_.size(); }
  /// Entries that named a backend this build lacks and go to the fallback instead.
  std::size_t substituted() const noexcept { return substituted_; }
  std::span<const GemmRoute> gemm_entries(std::size_t bucket) const { return by_shape_[bucket]; }
  std::span<const AtlasRoute> atlas_entries() const { return atlas_; }

 private:
  static std::size_t hash(std::size_t m, std::size_t n, std::size_t k) noexcept {
    std::uint64_t x =
        m * 0x9E3779B97F4A7C15ull ^ n * 0xC2B2AE3D27D4EB4Full ^ k * 0x165667B19E3779F9ull;
    return static_cast<std::size_t>(x ^ (x >> 29));
  }

  /// Distinct per table built (copies share it: same entries); never 0.
  static std::uint64_t next_id() noexcept {
    static std::atomic<std::uint64_t> n{0};
    return n.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  /// The entry listed for exactly (m, n, k), or nullptr. Open addressing, load factor <= 1/2:
  /// a listed shape is found in ~1 probe, without the unpredictable branches of a binary search.
  const GemmRoute* exact(std::size_t bucket, std::size_t m, std::size_t n,
                         std::size_t k) const noexcept {
    const auto& v = by_shape_[bucket];
    const auto& h = hash_[bucket];
    const std::size_t mask = h.size() - 1;
    for (std::size_t i = hash(m, n, k) & mask;; i = (i + 1) & mask) {
      const std::uint32_t slot = h[i];
      if (slot == 0) return nullptr;
      const GemmRoute& r = v[slot - 1];
      if (r.m == m && r.n == n && r.k == k) return &r;
    }
  }

  const GemmRoute* nearest(std::size_t bucket, std::size_t m, std::size_t n,
                           std::size_t k) const noexcept {
    const auto& v = by_shape_[bucket];
    const auto& idx = by_log_[bucket];
    const double q =
        std::log(static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
    const std::size_t p = static_cast<std::size_t>(
        std::lower_bound(idx.begin(), idx.end(), q,
                         [&](std::uint32_t i, double x) { return v[i].log_mnk < x; }) -
        idx.begin());
    const double inf = std::numeric_limits<double>::infinity();
    const double dl = p > 0 ? q - v[idx[p - 1]].log_mnk : inf;
    const double dr = p < idx.size() ? v[idx[p]].log_mnk - q : inf;
    const double d = std::min(dl, dr);
    // The candidates: the run of equal log(M N K) on the nearer side(s). Usually one.
    std::size_t lo = p, hi = p;
    if (dl == d)
      while (lo > 0 && v[idx[lo - 1]].log_mnk == v[idx[p - 1]].log_mnk) --lo;
    if (dr == d)
      while (hi < idx.size() && v[idx[hi]].log_mnk == v[idx[p]].log_mnk) ++hi;
    if (hi - lo == 1) return &v[idx[lo]];
    const double lm = std::log(static_cast<double>(m)), ln = std::log(static_cast<double>(n)),
                 lk = std::log(static_cast<double>(k));
    std::uint32_t best = 0;
    double best_d2 = inf;
    for (std::size_t j = lo; j < hi; ++j) {
      const std::uint32_t i = idx[j];
      const GemmRoute& r = v[i];
      const double d2 = std::fabs(lm - r.log_m) + std::fabs(ln - r.log_n) + std::fabs(lk - r.log_k);
      if (d2 < best_d2 || (d2 == best_d2 && i < best)) best_d2 = d2, best = i;
    }
    return &v[best];
  }

  std::array<std::vector<GemmRoute>, kNumGemmBuckets> by_shape_;    // sorted by (m, n, k)
  std::array<std::vector<std::uint32_t>, kNumGemmBuckets> by_log_;  // by (log mnk, m, n, k)
  std::array<std::vector<std::uint32_t>, kNumGemmBuckets> hash_;    // 1 + index, 0: empty
  std::vector<AtlasRoute> atlas_;                                   // sorted by (kernel, lo)
  std::string source_;
  std::uint64_t fingerprint_ = 0;
  GemmBackend fallback_ = GemmBackend::naive;
  std::size_t substituted_ = 0;
  std::uint64_t id_ = 0;  // keys gemm()'s per-thread memo of nearest routes
};

namespace detail {

inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

inline std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <std::size_t N>
std::string join(const std::array<std::string_view, N>& names, const bool* keep = nullptr) {
  std::string s;
  for (std::size_t i = 0; i < N; ++i)
    if (!keep || keep[i]) s += (s.empty() ? "" : ", ") + std::string(names[i]);
  return s.empty() ? "none" : s;
}

}  // namespace detail

inline RouteTable RouteTable::parse(std::string_view text, std::string source,
                                    const Catalog& catalog) {
  auto fail = [&](std::size_t line, auto&&... parts) {
    rosetta::detail::raise<RouteTableError>(source, ":", line, ": ", parts...);
  };
  if (!catalog.gemm[static_cast<std::size_t>(catalog.gemm_fallback)])
    rosetta::detail::raise<RouteTableError>(source, ": the fallback backend '",
                                            name(catalog.gemm_fallback), "' is not compiled in");
  RouteTable t(catalog.gemm_fallback, source);
  t.fingerprint_ = detail::fnv1a(text);
  auto number = [&](std::size_t line, std::string_view field, std::string_view what,
                    std::size_t min) {
    std::size_t v = 0;
    const auto* end = field.data() + field.size();
    const auto r = std::from_chars(field.data(), end, v);
    if (r.ec == std::errc::result_out_of_range) fail(line, what, " '", field, "' is out of range");
    if (r.ec != std::errc() || r.ptr != end || field.empty())
      fail(line, what, " '", field, "' is not a decimal number");
    if (v < min) fail(line, what, " ", v, " is below ", min);
    return v;
  };
  bool header = false;
  std::map<std::string, std::pair<std::size_t, std::size_t>, std::less<>> last_range;  // hi, line
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos <= text.size();) {
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    const auto f = detail::split_fields(line.substr(0, line.find('\r')));
    if (f.empty()) continue;
    if (!header) {
      if (f[0] != kMagic)
        fail(line_no, "expected the header '", kMagic, " ", kVersion, "' first, got '", f[0], "'");
      if (f.size() != 2) fail(line_no, "the header is '", kMagic, " VERSION'");
      const auto v = number(line_no, f[1], "version", 0);
      if (v != static_cast<std::size_t>(kVersion))
        fail(line_no, "unsupported table version ", v, " (this build reads version ", kVersion,
             ")");
      header = true;
      continue;
    }
    if (f[0] == "gemm") {
      if (f.size() != 9)
        fail(line_no, "a gemm entry has 9 fields 'gemm SCALAR LAYOUT OPA OPB M N K BACKEND', got ",
             f.size());
      if (f[1] != "float" && f[1] != "double")
        fail(line_no, "unknown scalar '", f[1], "' (allowed: float, double)");
      if (f[2] != "row" && f[2] != "col")
        fail(line_no, "unknown layout '", f[2], "' (allowed: row, col)");
      for (std::size_t i : {3u, 4u})
        if (f[i] != "N" && f[i] != "T") fail(line_no, "unknown op '", f[i], "' (allowed: N, T)");
      GemmRoute r;
      r.m = number(line_no, f[5], "M", 1);
      r.n = number(line_no, f[6], "N", 1);
      r.k = number(line_no, f[7], "K", 1);
      const auto b = gemm_backend_from_name(f[8]);
      if (!b)
        fail(line_no, "unknown gemm backend '", f[8],
             "' (allowed: ", detail::join(kGemmBackendNames), ")");
      r.backend = *b;
      if (!catalog.gemm[static_cast<std::size_t>(*b)]) {
        if (!catalog.substitute_missing)
          fail(line_no, "gemm backend '", f[8], "' is not compiled into this build (compiled in: ",
               detail::join(kGemmBackendNames, catalog.gemm.data()), ")");
        r.backend = catalog.gemm_fallback;
        ++t.substituted_;
      }
      r.line = line_no;
      r.log_m = std::log(static_cast<double>(r.m));
      r.log_n = std::log(static_cast<double>(r.n));
      r.log_k = std::log(static_cast<double>(r.k));
      r.log_mnk =
          std::log(static_cast<double>(r.m) * static_cast<double>(r.n) * static_cast<double>(r.k));
      t.by_shape_[gemm_bucket(f[1] == "double", f[2] == "col", f[3] == "T" ? Op::T : Op::N,
                              f[4] == "T" ? Op::T : Op::N)]
          .push_back(r);
    } else if (f[0] == "atlas") {
      if (f.size() != 5)
        fail(line_no, "an atlas entry has 5 fields 'atlas KERNEL N_MIN N_MAX BACKEND', got ",
             f.size());
      AtlasRoute r;
      r.kernel = std::string(f[1]);
      for (char c : f[1])
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
          fail(line_no, "kernel name '", f[1], "' has a character other than [A-Za-z0-9_]");
      r.lo = number(line_no, f[2], "N_MIN", 0);
      r.hi =
          f[3] == "*" ? std::numeric_limits<std::size_t>::max() : number(line_no, f[3], "N_MAX", 0);
      if (r.lo > r.hi) fail(line_no, "N_MIN ", r.lo, " is above N_MAX ", r.hi);
      const auto b = atlas::backend_from_name(f[4]);
      if (!b)
        fail(line_no, "unknown atlas backend '", f[4],
             "' (allowed: ", detail::join(atlas::kBackendNames), ")");
      r.backend = *b;
      if (catalog.kernel_has && catalog.kernel_has(f[1], *b) < 0)
        fail(line_no, "unknown atlas kernel '", f[1], "'");
      std::string missing;
      if (catalog.check_atlas && !catalog.atlas[atlas::index(*b)])
        missing = "atlas backend '" + std::string(f[4]) + "' is not compiled into this build";
      else if (catalog.kernel_has && catalog.kernel_has(f[1], *b) == 0)
        missing = "kernel '" + std::string(f[1]) + "' has no '" + std::string(f[4]) +
                  "' implementation in this build";
      if (!missing.empty()) {
        if (!catalog.substitute_missing) fail(line_no, missing);
        r.backend.reset();
        ++t.substituted_;
      }
      auto [it, fresh] = last_range.try_emplace(r.kernel, r.hi, line_no);
      if (!fresh) {
        if (r.lo <= it->second.first)
          fail(line_no, "range ", r.lo, "..", f[3], " of kernel '", f[1],
               "' overlaps or precedes the range ending at ", it->second.first, " on line ",
               it->second.second, " (ranges of a kernel must be sorted and disjoint)");
        it->second = {r.hi, line_no};
      }
      r.line = line_no;
      t.atlas_.push_back(std::move(r));
    } else {
      fail(line_no, "unknown entry '", f[0], "' (allowed: gemm, atlas)");
    }
  }
  if (!header)
    rosetta::detail::raise<RouteTableError>(source, ":", line_no, ": no header '", kMagic, " ",
                                            kVersion, "' (empty table)");
  for (std::size_t b = 0; b < kNumGemmBuckets; ++b) {
    auto& v = t.by_shape_[b];
    std::stable_sort(v.begin(), v.end(), [](const GemmRoute& x, const GemmRoute& y) {
      return std::tie(x.m, x.n, x.k) < std::tie(y.m, y.n, y.k);
    });
    for (std::size_t i = 1; i < v.size(); ++i)
      if (std::tie(v[i].m, v[i].n, v[i].k) == std::tie(v[i - 1].m, v[i - 1].n, v[i - 1].k)) {
        const auto& [first, second] =
            v[i].line < v[i - 1].line ? std::tie(v[i], v[i - 1]) : std::tie(v[i - 1], v[i]);
        fail(second.line, "duplicate gemm entry ", second.m, " x ", second.n, " x ", second.k,
             " for the same scalar, layout and ops (first on line ", first.line, ")");
      }
    auto& h = t.hash_[b];
    h.assign(std::bit_ceil(2 * v.size() + 1), 0);
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::size_t j = hash(v[i].m, v[i].n, v[i].k) & (h.size() - 1);
      while (h[j] != 0) j = (j + 1) & (h.size() - 1);
      h[j] = static_cast<std::uint32_t>(i + 1);
    }
    auto& idx = t.by_log_[b];
    idx.resize(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) idx[i] = static_cast<std::uint32_t>(i);
    // v is sorted by (m, n, k): a stable sort by log(m n k) keeps that order within a tie.
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::uint32_t x, std::uint32_t y) { return v[x].log_mnk < v[y].log_mnk; });
  }
  std::stable_sort(t.atlas_.begin(), t.atlas_.end(), [](const AtlasRoute& x, const AtlasRoute& y) {
    return std::tie(x.kernel, x.lo) < std::tie(y.kernel, y.lo);
  });
  return t;
}

}  // namespace rosetta::routing
