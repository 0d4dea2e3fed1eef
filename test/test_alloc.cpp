// Steady state allocates nothing: after one warm-up call, Transformer::forward / loss /
// backward and Trainer::train_step perform zero heap allocations, also for a smaller batch.
//
// Two hooks count allocations made on the arming thread while armed:
//  - every replaceable global operator new / new[] (plain, aligned, nothrow), and
//  - the C allocator (malloc, calloc, realloc, aligned variants), which is what BLAS
//    libraries, libgomp and Eigen's aligned_malloc use: interposed here on glibc, or through
//    the sanitizer runtime's malloc hook when built with ASan / TSan (which own malloc).
// Each allocation found is reported with a backtrace of its call site (addresses resolve
// with `addr2line -Cfpe <binary> <offset>`, or link with -rdynamic).
//
// Measured when this test was written (tiny preset, Debian 12 libraries): rosetta itself
// never allocates (operator new count 0 everywhere), but the C allocator was called by
//  - Eigen: general_matrix_matrix_product heap-allocates its packing buffer whenever it
//    exceeds EIGEN_STACK_ALLOCATION_LIMIT (128 KB), e.g. the lm_head gemms (k or n = vocab)
//    (fixed since by tiling in backend/eigen.hpp);
//  - BLIS (the Debian libblis is the OpenMP build): every bli_?gemm opens an OpenMP
//    parallel region, and libgomp allocates a team (1568 bytes) per region with 1 thread
//    (fixed since: cmake/FindRosettaBLIS.cmake prefers the serial BLIS build);
//  - OpenBLAS 0.3.21: the SkylakeX small-matrix kernels (?gemm_small_kernel_*nn) malloc a
//    buffer per call; reached from the column-major policies' gemms (fixed since: the Cblas
//    backend routes N,N products through a transposed copy).
// These tests would fail again if any of that came back; nothing is excluded.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#if __has_include(<execinfo.h>)
#include <execinfo.h>
#define ROSETTA_ALLOC_BACKTRACE 1
#else
#define ROSETTA_ALLOC_BACKTRACE 0
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ROSETTA_ALLOC_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define ROSETTA_ALLOC_SANITIZER 1
#endif
#endif
#ifndef ROSETTA_ALLOC_SANITIZER
#define ROSETTA_ALLOC_SANITIZER 0
#endif

#if !ROSETTA_ALLOC_SANITIZER && defined(__GLIBC__)
#define ROSETTA_ALLOC_INTERPOSE_MALLOC 1
#else
#define ROSETTA_ALLOC_INTERPOSE_MALLOC 0
#endif

#include <atomic>

// ---------------------------------------------------------------------------------------
// The counter
// ---------------------------------------------------------------------------------------

namespace alloc_hook {

constexpr int kMaxTraces = 6;
constexpr int kDepth = 48;

struct Trace {
  const char* kind;
  std::size_t bytes;
  int depth;
  void* frames[kDepth];
};

// Counting is per thread: the thread that arms the counter is the one running the measured
// calls. rosetta does not start threads, and every BLAS library is pinned to one thread (the
// call runs on the caller's thread), so each allocation the calls cause happens there.
// Allocations by other threads in the same window (e.g. an OpenBLAS worker thread still
// starting up after the warm-up loaded the library: its start allocates under ASan) are
// counted separately and printed, but are not attributed to the calls.
std::atomic<bool> armed{false};
thread_local bool armed_here = false;
std::atomic<long> count_cpp{0};    // global operator new
std::atomic<long> count_c{0};      // malloc and friends (not via operator new)
std::atomic<long> count_other{0};  // any allocation on another thread
std::atomic<int> n_traces{0};
Trace traces[kMaxTraces];
// Set while the hook itself runs (or while operator new calls malloc), so nested
// allocations are neither counted twice nor recursed into. Volatile: the compiler assumes
// the builtin malloc reads no user memory and would drop the store made before calling it.
thread_local volatile bool busy = false;

/// Counts one allocation and keeps the backtrace of the first few distinct call sites.
inline void record(const char* kind, std::size_t bytes, bool cpp) noexcept {
  if (!armed.load(std::memory_order_relaxed) || busy) return;
  if (!armed_here) {
    count_other.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  busy = true;
  (cpp ? count_cpp : count_c).fetch_add(1, std::memory_order_relaxed);
#if ROSETTA_ALLOC_BACKTRACE
  Trace t;
  t.kind = kind;
  t.bytes = bytes;
  t.depth = ::backtrace(t.frames, kDepth);
  const int n = n_traces.load(std::memory_order_relaxed);
  bool known = false;
  for (int i = 0; i < n && !known; ++i) {
    // same call site: the same return addresses below the hook
    bool same = traces[i].depth == t.depth;
    for (int f = 1; same && f < t.depth && f < 8; ++f) same = traces[i].frames[f] == t.frames[f];
    known = same;
  }
  if (!known && n < kMaxTraces) {
    traces[n] = t;
    n_traces.store(n + 1, std::memory_order_relaxed);
  }
#else
  (void)kind;
  (void)bytes;
#endif
  busy = false;
}

struct Counts {
  long cpp = 0, c = 0;
  long total() const { return cpp + c; }
};

/// Prints the recorded call sites to stderr (after disarming; writes without allocating).
inline void print_traces(const char* what, const Counts& n) {
  std::fprintf(stderr,
               "\n%ld heap allocation(s) during %s (%ld operator new, %ld C allocator); "
               "%d distinct call site(s):\n",
               n.total(), what, n.cpp, n.c, n_traces.load());
  for (int i = 0; i < n_traces.load(); ++i) {
    const Trace& t = traces[i];
    std::fprintf(stderr, "--- call site %d: %s of %zu bytes\n", i + 1, t.kind, t.bytes);
    std::fflush(stderr);
#if ROSETTA_ALLOC_BACKTRACE
    ::backtrace_symbols_fd(const_cast<void* const*>(t.frames), t.depth, 2);
#endif
  }
  std::fflush(stderr);
}

/// Runs f with the counters armed; returns the allocations it made.
template <class F>
Counts allocations_in(const char* what, F&& f, bool report = true) {
  struct Disarm {
    ~Disarm() {
      armed.store(false);
      armed_here = false;
    }
  } disarm;
  count_cpp.store(0);
  count_c.store(0);
  count_other.store(0);
  n_traces.store(0);
  armed_here = true;
  armed.store(true);
  f();
  armed.store(false);
  armed_here = false;
  const Counts n{count_cpp.load(), count_c.load()};
  if (n.total() > 0 && report) print_traces(what, n);
  if (const long other = count_other.load(); other > 0 && report)
    std::fprintf(stderr, "(note: %ld allocation(s) on other threads during %s, not counted)\n",
                 other, what);
  return n;
}

/// Loads the unwinder before anything is armed (its first use may allocate).
const int kWarmBacktrace = [] {
#if ROSETTA_ALLOC_BACKTRACE
  void* frames[4];
  return ::backtrace(frames, 4);
#else
  return 0;
#endif
}();

}  // namespace alloc_hook

// ---------------------------------------------------------------------------------------
// The C allocator
// ---------------------------------------------------------------------------------------

#if ROSETTA_ALLOC_INTERPOSE_MALLOC
// glibc's own entry points; the definitions below interpose the public names for the whole
// process (libblis, OpenBLAS and libstdc++ included) and forward to them.
extern "C" {
void* __libc_malloc(std::size_t) noexcept;
void* __libc_calloc(std::size_t, std::size_t) noexcept;
void* __libc_realloc(void*, std::size_t) noexcept;
void* __libc_memalign(std::size_t, std::size_t) noexcept;
void __libc_free(void*) noexcept;

void* malloc(std::size_t n) noexcept {
  alloc_hook::record("malloc", n, false);
  return __libc_malloc(n);
}
void free(void* p) noexcept {
  __libc_free(p);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  alloc_hook::record("calloc", n * size, false);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) noexcept {
  alloc_hook::record("realloc", n, false);
  return __libc_realloc(p, n);
}
void* reallocarray(void* p, std::size_t n, std::size_t size) noexcept {
  if (size != 0 && n > SIZE_MAX / size) {
    errno = ENOMEM;
    return nullptr;
  }
  alloc_hook::record("reallocarray", n * size, false);
  return __libc_realloc(p, n * size);
}
void* memalign(std::size_t align, std::size_t n) noexcept {
  alloc_hook::record("memalign", n, false);
  return __libc_memalign(align, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) noexcept {
  alloc_hook::record("aligned_alloc", n, false);
  return __libc_memalign(align, n);
}
void* valloc(std::size_t n) noexcept {
  alloc_hook::record("valloc", n, false);
  return __libc_memalign(4096, n);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) noexcept {
  if (align == 0 || align % sizeof(void*) != 0 || (align & (align - 1)) != 0) return EINVAL;
  alloc_hook::record("posix_memalign", n, false);
  void* p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"
#elif ROSETTA_ALLOC_SANITIZER
// The sanitizer runtime owns malloc; it calls these hooks on every allocation.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*))
    __attribute__((weak));
namespace alloc_hook {
const bool kSanitizerHooks = [] {
  if (!__sanitizer_install_malloc_and_free_hooks) return false;
  return __sanitizer_install_malloc_and_free_hooks(
             [](const volatile void*, std::size_t n) {
               record("malloc (sanitizer hook)", n, false);
             },
             [](const volatile void*) {}) != 0;
}();
}  // namespace alloc_hook
#endif

namespace alloc_hook {
/// Whether C-allocator calls are counted in this build (operator new always is).
constexpr bool counts_malloc() {
#if ROSETTA_ALLOC_INTERPOSE_MALLOC
  return true;
#elif ROSETTA_ALLOC_SANITIZER
  return true;  // if the runtime accepted the hook; see kSanitizerHooks
#else
  return false;
#endif
}
}  // namespace alloc_hook

// ---------------------------------------------------------------------------------------
// Global operator new / delete
// ---------------------------------------------------------------------------------------

namespace alloc_hook {
inline void* raw_alloc(std::size_t n) noexcept {
  busy = true;  // the malloc below is this same allocation
  void* p = std::malloc(n ? n : 1);
  busy = false;
  return p;
}
inline void* raw_aligned(std::size_t n, std::align_val_t al) noexcept {
  auto a = static_cast<std::size_t>(al);
  if (a < sizeof(void*)) a = sizeof(void*);
  busy = true;
  void* p = nullptr;
  if (posix_memalign(&p, a, n ? n : 1) != 0) p = nullptr;
  busy = false;
  return p;
}
inline void* counted(std::size_t n, const char* kind) {
  record(kind, n, true);
  if (void* p = raw_alloc(n)) return p;
  throw std::bad_alloc();
}
inline void* counted(std::size_t n, std::align_val_t al, const char* kind) {
  record(kind, n, true);
  if (void* p = raw_aligned(n, al)) return p;
  throw std::bad_alloc();
}
}  // namespace alloc_hook

void* operator new(std::size_t n) {
  return alloc_hook::counted(n, "operator new");
}
void* operator new[](std::size_t n) {
  return alloc_hook::counted(n, "operator new[]");
}
void* operator new(std::size_t n, std::align_val_t al) {
  return alloc_hook::counted(n, al, "operator new (aligned)");
}
void* operator new[](std::size_t n, std::align_val_t al) {
  return alloc_hook::counted(n, al, "operator new[] (aligned)");
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  alloc_hook::record("operator new (nothrow)", n, true);
  return alloc_hook::raw_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  alloc_hook::record("operator new[] (nothrow)", n, true);
  return alloc_hook::raw_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  alloc_hook::record("operator new (aligned, nothrow)", n, true);
  return alloc_hook::raw_aligned(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  alloc_hook::record("operator new[] (aligned, nothrow)", n, true);
  return alloc_hook::raw_aligned(n, al);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model_check.hpp"
#include "policies.hpp"

namespace {
using namespace rosetta;
using alloc_hook::allocations_in;

void* volatile g_sink = nullptr;  // keeps the allocations of the hook test observable

TEST(AllocHook, CountsEveryOperatorNew) {
  struct alignas(128) Wide {
    char c[128];
  };
  const auto n = allocations_in(
      "hook self-test",
      [] {
        g_sink = new int(1);
        delete static_cast<int*>(g_sink);
        g_sink = new int[3];
        delete[] static_cast<int*>(g_sink);
        g_sink = new Wide;
        delete static_cast<Wide*>(g_sink);
        g_sink = new Wide[2];
        delete[] static_cast<Wide*>(g_sink);
        g_sink = new (std::nothrow) int(2);
        delete static_cast<int*>(g_sink);
        g_sink = new (std::nothrow) Wide[2];
        delete[] static_cast<Wide*>(g_sink);
        g_sink = ::operator new(10);
        ::operator delete(g_sink);
        g_sink = ::operator new (256, std::align_val_t{64});
        ::operator delete (g_sink, std::align_val_t{64});
        std::vector<double> v(10);
        g_sink = v.data();
      },
      false);
  EXPECT_EQ(n.cpp, 9);
  EXPECT_EQ(n.c, 0);  // operator new's own malloc is not counted twice
}

TEST(AllocHook, CountsTheCAllocator) {
#if ROSETTA_ALLOC_SANITIZER && !ROSETTA_ALLOC_INTERPOSE_MALLOC
  if (!alloc_hook::kSanitizerHooks) GTEST_SKIP() << "the sanitizer runtime refused the hook";
#endif
  if (!alloc_hook::counts_malloc()) GTEST_SKIP() << "malloc is not counted in this build";
  const auto n = allocations_in(
      "C allocator self-test",
      [] {
        g_sink = std::malloc(24);
        std::free(g_sink);
        g_sink = std::calloc(3, 8);
        std::free(g_sink);
        void* p = nullptr;
        if (posix_memalign(&p, 64, 100) == 0) g_sink = p;
        std::free(g_sink);
        g_sink = std::aligned_alloc(64, 128);
        std::free(g_sink);
      },
      false);
  EXPECT_EQ(n.c, 4);
  EXPECT_EQ(n.cpp, 0);
}

using test::Batch;
using test::random_batch;

/// Zero in both counters, with a message saying which allocator was used.
void expect_none(const alloc_hook::Counts& n, const std::string& policy, const char* phase) {
  EXPECT_EQ(n.cpp, 0) << policy << ": " << phase
                      << " called global operator new in steady state (call sites on stderr)";
  EXPECT_EQ(n.c, 0) << policy << ": " << phase
                    << " called the C allocator (malloc/memalign) in steady state; this comes "
                       "from below rosetta (BLAS, OpenMP or Eigen internals: call sites on "
                       "stderr)";
}

template <class P>
class ZeroAlloc : public ::testing::Test {
 protected:
  // The tiny preset itself: its vocabulary of 1000 reaches the BLAS libraries' blocking
  // (packing) paths that a toy size would not.
  const Config cfg = Config::tiny();
  // The warm-up batch, then: as large, fewer tokens, shorter sequences with more rows.
  const Batch warm = random_batch(2, 16, cfg.vocab_size, 1);
  const std::vector<Batch> steady = {
      random_batch(2, 16, cfg.vocab_size, 2), random_batch(1, 5, cfg.vocab_size, 3),
      random_batch(4, 8, cfg.vocab_size, 4), random_batch(2, 16, cfg.vocab_size, 5)};
};
TYPED_TEST_SUITE(ZeroAlloc, test::Policies, test::PolicyName);

TYPED_TEST(ZeroAlloc, ForwardAndLoss) {
  const Transformer<TypeParam> model(this->cfg, 1);
  auto ws = model.make_workspace();
  model.forward(this->warm.tokens(), ws);
  (void)model.loss(ws, this->warm.targets);
  const auto n = allocations_in("forward + loss", [&] {
    for (int r = 0; r < 2; ++r)
      for (const Batch& b : this->steady) {
        model.forward(b.tokens(), ws);
        (void)model.loss(ws, b.targets);
      }
  });
  expect_none(n, TypeParam::name(), "forward + loss");
}

TYPED_TEST(ZeroAlloc, ForwardLossBackward) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  const Transformer<TypeParam> model(this->cfg, 1);
  auto ws = model.make_workspace();
  ParamSet<T, L> grads(this->cfg);
  model.forward(this->warm.tokens(), ws);
  (void)model.loss(ws, this->warm.targets);
  model.backward(ws, this->warm.targets, grads);
  const auto n = allocations_in("forward + loss + backward", [&] {
    for (int r = 0; r < 2; ++r)
      for (const Batch& b : this->steady) {
        model.forward(b.tokens(), ws);
        (void)model.loss(ws, b.targets);
        grads.zero();
        model.backward(ws, b.targets, grads);
      }
  });
  expect_none(n, TypeParam::name(), "forward + loss + backward");
}

TYPED_TEST(ZeroAlloc, TrainStep) {
  Transformer<TypeParam> model(this->cfg, 1);
  Trainer<TypeParam> trainer(model, TrainConfig{});
  trainer.train_step(this->warm.tokens(), this->warm.targets);
  const auto n = allocations_in("Trainer::train_step", [&] {
    for (int r = 0; r < 2; ++r)
      for (const Batch& b : this->steady) trainer.train_step(b.tokens(), b.targets);
  });
  expect_none(n, TypeParam::name(), "Trainer::train_step");
  EXPECT_EQ(trainer.step(), 9u);
}

// Incremental decoding: once a Generator has sized its KV cache, workspace and sampler
// buffers, a whole generation (prefill + one forward per token + sampling) allocates nothing.
TYPED_TEST(ZeroAlloc, GenerationPerToken) {
  const Transformer<TypeParam> model(this->cfg, 1);
  const std::size_t max_len = std::min<std::size_t>(24, this->cfg.max_seq_len);
  Generator<TypeParam> gen(model, max_len);
  const std::vector<std::int32_t> prompt{1, 2, 3};
  const TopP strategy(0.9, 0.8);
  gen.run(prompt, max_len, strategy, 1);  // warm-up: first BLAS calls, thread-local buffers
  const auto n = allocations_in("Generator::run", [&] {
    for (std::uint64_t seed = 2; seed < 5; ++seed) gen.run(prompt, max_len, strategy, seed);
    gen.run(prompt, max_len, Greedy{}, 0);
  });
  expect_none(n, TypeParam::name(), "Generator::run (KV cache)");
  EXPECT_EQ(gen.run(prompt, max_len, Greedy{}, 0).size(), max_len);
}

// Positive control: growing the workspace beyond the warm-up does allocate, and the hook
// sees it (so a zero above is a measurement, not a blind spot).
TYPED_TEST(ZeroAlloc, GrowingTheWorkspaceIsSeen) {
  const Transformer<TypeParam> model(this->cfg, 1);
  auto ws = model.make_workspace();
  model.forward(this->warm.tokens(), ws);
  const Batch bigger = random_batch(4, 32, this->cfg.vocab_size, 9);
  const auto n = allocations_in(
      "forward on a larger batch", [&] { model.forward(bigger.tokens(), ws); }, false);
  EXPECT_GT(n.cpp, 0);
}

}  // namespace
