// Support for the rosetta-bench harness: clocks, statistics, allocation counting, resident
// set (/proc/self/status), machine information, the in-run peak probe and running one
// scenario (or rosetta-rss-probe) in a fresh child process.
#pragma once

#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rosetta::bench {

using json = nlohmann::json;

// ---- allocation counting (global operator new is replaced in rosetta_bench.cpp) ----------
struct AllocCounter {
  std::atomic<std::uint64_t> bytes{0}, count{0};
  void add(std::size_t n) {
    bytes.fetch_add(n, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
  }
};
inline AllocCounter& alloc_counter() {
  static AllocCounter c;
  return c;
}

// ---- clocks -----------------------------------------------------------------------------
inline std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
/// Process CPU time (user + system, all threads).
inline std::int64_t cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
/// A "kB" field of /proc/self/status in bytes (key without the colon, e.g. "VmRSS",
/// "RssAnon", "RssFile"), or nullopt if the kernel does not report it.
inline std::optional<std::int64_t> proc_status_bytes(std::string_view key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':')
      return std::stoll(line.substr(key.size() + 1)) * 1024;  // kB
  return std::nullopt;
}
/// The compiler family this file was built with ("gcc", "clang" or "unknown").
inline std::string compiler_id() {
#if defined(__clang__)
  return "clang";
#elif defined(__GNUC__)
  return "gcc";
#else
  return "unknown";
#endif
}

/// Peak resident set of this process image: VmHWM of /proc/self/status. Not
/// getrusage().ru_maxrss: Linux carries that over exec from the address space the process
/// came from, so a child spawned by a 20 MB parent would never report less than 20 MB.
inline std::int64_t peak_rss_bytes() {
  if (auto hwm = proc_status_bytes("VmHWM")) return *hwm;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::int64_t>(ru.ru_maxrss) * 1024;  // fallback (KiB)
}
/// The resident set right now, split as /proc/self/status reports it: RssAnon (heap,
/// stacks, other anonymous mappings) and RssFile (pages of the binary and shared libraries).
struct RssSplit {
  std::optional<std::int64_t> anon, file;
};
inline RssSplit rss_split() {
  return {proc_status_bytes("RssAnon"), proc_status_bytes("RssFile")};
}

// ---- statistics -------------------------------------------------------------------------
/// Quantile q in [0, 1] of v by linear interpolation between order statistics.
template <class V>
double quantile(std::vector<V> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  const double f = pos - static_cast<double>(lo);
  return static_cast<double>(v[lo]) * (1 - f) + static_cast<double>(v[hi]) * f;
}
inline json summarize(const std::vector<std::int64_t>& t) {
  json s;
  double sum = 0;
  for (auto x : t) sum += static_cast<double>(x);
  s["median_ns"] = std::llround(quantile(t, 0.5));
  s["mean_ns"] = t.empty() ? 0 : std::llround(sum / static_cast<double>(t.size()));
  s["p95_ns"] = std::llround(quantile(t, 0.95));
  s["min_ns"] = t.empty() ? 0 : *std::min_element(t.begin(), t.end());
  s["max_ns"] = t.empty() ? 0 : *std::max_element(t.begin(), t.end());
  s["iqr_ns"] = std::llround(quantile(t, 0.75) - quantile(t, 0.25));
  return s;
}

// ---- numerical health of an output --------------------------------------------------------
struct Health {
  std::uint64_t nan = 0, inf = 0;
  double max_abs = 0;
  template <class T>
  void scan(const T* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const double x = static_cast<double>(p[i]);
      if (std::isnan(x))
        ++nan;
      else if (std::isinf(x))
        ++inf;
      else
        max_abs = std::max(max_abs, std::fabs(x));
    }
  }
};

// ---- machine information ------------------------------------------------------------------
inline std::string cpuinfo_field(const std::string& key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) {
      const auto c = line.find(':');
      if (c != std::string::npos) return line.substr(c + 2);
    }
  return "unknown";
}
inline std::string os_string() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}
inline std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "unknown" : out;
}
inline std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// ---- peak probe -----------------------------------------------------------------------------
/// Single-core FP32 FMA throughput in GFLOPS: 16 independent chains of 16-lane fused
/// multiply-adds (enough to cover FMA latency × pipes on current x86 cores); best of 5.
inline double fma_peak_gflops() {
  using v16 = float __attribute__((vector_size(64)));
  constexpr int kChains = 16;
  constexpr long kIters = 2'000'000;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    v16 acc[kChains];
    v16 a, b;
    for (int l = 0; l < 16; ++l) {
      a[l] = 0.999999f;
      b[l] = 1e-7f;
    }
    for (int c = 0; c < kChains; ++c)
      for (int l = 0; l < 16; ++l) acc[c][l] = static_cast<float>(c + l);
    const auto t0 = wall_ns();
    for (long i = 0; i < kIters; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
      asm volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
    }
    const auto dt = wall_ns() - t0;
    float sink = 0;
    for (int c = 0; c < kChains; ++c) sink += acc[c][0];
    asm volatile("" ::"x"(sink));
    const double flops = 2.0 * 16 * kChains * static_cast<double>(kIters);
    best = std::max(best, flops / static_cast<double>(dt));
  }
  return best;
}

// ---- running one scenario in a fresh process ------------------------------------------------
/// Runs the program exe (default: this program again) with argv args as a child process
/// and returns its standard output; throws if it cannot be started.
inline std::string run_child(const std::vector<std::string>& args, int& status,
                             const std::string& exe = "/proc/self/exe") {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe() failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::runtime_error("posix_spawn of " + exe + " failed");
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  ::waitpid(pid, &status, 0);
  return out;
}

}  // namespace rosetta::bench
