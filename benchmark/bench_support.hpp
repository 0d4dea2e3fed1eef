// Support for the rosetta-bench harness: clocks, statistics, allocation counting, resident
// set (/proc/self/status), machine information, the in-run peak probe and running one
// scenario (or rosetta-rss-probe) in a fresh child process.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
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
#include <thread>
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
/// The last-level (L3) cache in bytes, from sysfs (32 MiB when the system does not say); read
/// once.
inline std::size_t l3_cache_bytes() {
  static const std::size_t bytes = [] {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index3/size");
    std::size_t v = 0;
    char unit = 0;
    if (f >> v && v > 0) {
      f >> unit;
      return unit == 'M' ? v << 20 : unit == 'K' ? v << 10 : v;
    }
    return std::size_t{32} << 20;
  }();
  return bytes;
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
/// Pins the calling thread to logical core i (modulo the number of cores).
inline void pin_to_core(std::size_t i) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(i % std::max(1u, std::thread::hardware_concurrency())), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/// One timing of the FMA-throughput probe on the calling thread, in GFLOPS: 16 independent
/// chains of 16-lane FP32 fused multiply-adds (enough to cover FMA latency x pipes on current
/// x86 cores).
inline double fma_probe_once() {
  using v16 = float __attribute__((vector_size(64)));
  constexpr int kChains = 16;
  constexpr long kIters = 2'000'000;
  // Sixteen named accumulators, each an in/out register operand of an empty asm every
  // iteration, so they stay in registers (an array of them, subscripted, was kept in memory
  // by GCC in one build: 95 instead of 270 GFLOPS).
  const v16 a = v16{} + 0.999999f, b = v16{} + 1e-7f;
  v16 c0 = v16{} + 0.f, c1 = v16{} + 1.f, c2 = v16{} + 2.f, c3 = v16{} + 3.f;
  v16 c4 = v16{} + 4.f, c5 = v16{} + 5.f, c6 = v16{} + 6.f, c7 = v16{} + 7.f;
  v16 c8 = v16{} + 8.f, c9 = v16{} + 9.f, c10 = v16{} + 10.f, c11 = v16{} + 11.f;
  v16 c12 = v16{} + 12.f, c13 = v16{} + 13.f, c14 = v16{} + 14.f, c15 = v16{} + 15.f;
  const auto t0 = wall_ns();
  for (long i = 0; i < kIters; ++i) {
    c0 = c0 * a + b, c1 = c1 * a + b, c2 = c2 * a + b, c3 = c3 * a + b;
    c4 = c4 * a + b, c5 = c5 * a + b, c6 = c6 * a + b, c7 = c7 * a + b;
    c8 = c8 * a + b, c9 = c9 * a + b, c10 = c10 * a + b, c11 = c11 * a + b;
    c12 = c12 * a + b, c13 = c13 * a + b, c14 = c14 * a + b, c15 = c15 * a + b;
    asm volatile(""
                 : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7));
    asm volatile(""
                 : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13), "+v"(c14),
                   "+v"(c15));
  }
  const auto dt = wall_ns() - t0;
  const v16 sum =
      c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15;
  asm volatile("" ::"v"(sum));
  const double flops = 2.0 * 16 * kChains * static_cast<double>(kIters);
  return flops / static_cast<double>(dt);
}

/// Single-core FP32 FMA throughput in GFLOPS: fma_probe_once, best of 5.
inline double fma_peak_gflops() {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) best = std::max(best, fma_probe_once());
  return best;
}

/// The same probe on n threads at once, thread i pinned to logical core i (the calling
/// thread's affinity is restored afterwards): the summed GFLOPS of the best of 5 rounds, each
/// round started together behind a barrier. Divided by fma_peak_gflops it is the most any
/// n-thread scenario can scale on this machine (< n when logical cores share FMA units, e.g.
/// two vCPUs on one physical core).
inline double fma_peak_gflops_threads(std::size_t n) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  pthread_getaffinity_np(pthread_self(), sizeof saved, &saved);
  constexpr int kRounds = 5;
  std::vector<std::array<double, kRounds>> g(n);
  std::barrier sync(static_cast<std::ptrdiff_t>(n));
  auto work = [&](std::size_t i) {
    pin_to_core(i);
    for (int r = 0; r < kRounds; ++r) {
      sync.arrive_and_wait();
      g[i][static_cast<std::size_t>(r)] = fma_probe_once();
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < n; ++i) threads.emplace_back(work, i);
  work(0);
  for (auto& t : threads) t.join();
  pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
  double best = 0;
  for (int r = 0; r < kRounds; ++r) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += g[i][static_cast<std::size_t>(r)];
    best = std::max(best, sum);
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
