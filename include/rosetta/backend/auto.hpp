// backend::Auto: a Backend whose every gemm runs on the backend that a measured routing table
// (backend/auto_table.hpp) chooses for its scalar, layout, ops and shape.
//
//   using P = Policy<float, RowMajor, backend::Auto>;   // a policy like any other
//   Transformer<P> model(Config::tiny(), 42);
//
// The table is process-wide, loaded at the first Auto gemm (or routes() call): the file named
// by the environment variable ROSETTA_AUTO_TABLE if it is set and not empty, else the shipped
// default (backend/auto_default_table.hpp, written by rosetta-calibrate on the development
// machine). A table from a file is checked strictly: an entry naming a backend this build
// lacks is a RouteTableError. The shipped default must work in every build, so its entries
// that name a missing backend go to the fallback backend instead (fallback(): hwy, eigen,
// openblas, blis, naive, the first compiled in) and are counted in substituted() — and so do
// its gemm routes to BLIS and OpenBLAS on another CPU than the one it was measured on
// (default_catalog()).
// If ROSETTA_AUTO_TABLE names a file that does not load, every Auto gemm throws that
// RouteTableError until a valid table is loaded (nothing is silently ignored).
//
// Hot path: one atomic acquire load of the table pointer (a plain load on x86), a hash probe
// for (m, n, k) among the routes of that (scalar, layout, opA, opB), then the routed gemm:
// the fallback backend's gemm called directly (inlined as in a static policy), any other through
// a function pointer; no allocation, no lock. A shape without a route of its own takes the
// nearest one by log(m n k) (a logarithm and a binary search).
//
// Loading (load_file / load_text / use_default / Scope) parses into a new table first: a
// table that fails to load leaves the active one unchanged. Loaded tables are kept until the
// process exits (a thread may still be routing through the previous one), so load tables at
// start-up, not in a loop.
//
// Auto is deliberately not in backend::Available: every typed test over Available would be
// instantiated once more for a backend that only forwards to the others; test_auto tests it.
// Besides the backends of Available, Auto can route to backend::HwyGemm ("hwy", our own
// Highway gemm, backend/hwy_gemm.hpp) when ROSETTA_HAS_HWY is defined; that macro must then be
// the same in every translation unit of a program that includes this header (rosetta::all
// defines it whenever Highway was found), like ROSETTA_HAS_EIGEN and the others.
#pragma once

#include <array>
#include <atomic>
#include <concepts>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include "rosetta/backend/all.hpp"
#include "rosetta/backend/auto_default_table.hpp"
#include "rosetta/backend/auto_table.hpp"
#include "rosetta/backend/common.hpp"
#include "rosetta/backend/hwy_gemm.hpp"
#include "rosetta/dispatch/select.hpp"

namespace rosetta::backend {

namespace auto_detail {

template <class B, class T, class L>
void call(Op opA, Op opB, T alpha, MatrixView<const T, L> A, MatrixView<const T, L> Bm, T beta,
          MatrixView<T, L> C) {
  B::gemm(opA, opB, alpha, A, Bm, beta, C);
}

/// The gemm of routing backend i for (T, L), nullptr when this build lacks it.
template <class T, class L>
constexpr GemmFn<T, L> compiled_fn(routing::GemmBackend b) {
  switch (b) {
    case routing::GemmBackend::naive:
      return &call<Naive, T, L>;
#ifdef ROSETTA_HAS_EIGEN
    case routing::GemmBackend::eigen:
      return &call<Eigen, T, L>;
#endif
#ifdef ROSETTA_HAS_BLIS
    case routing::GemmBackend::blis:
      return &call<Blis, T, L>;
#endif
#ifdef ROSETTA_HAS_CBLAS
    case routing::GemmBackend::openblas:
      return &call<Cblas, T, L>;
#endif
#ifdef ROSETTA_HAS_HWY
    case routing::GemmBackend::hwy:
      return &call<HwyGemm, T, L>;
#endif
    default:
      return nullptr;
  }
}

/// This CPU as the routing table records it: CPUID's vendor, family and model ("AuthenticAMD
/// 25/17" on a Zen 4 EPYC); "" where CPUID is not available.
inline std::string cpu_id() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d) == 0) return {};
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return {};
  const unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
  const unsigned family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
  const unsigned model =
      base_family == 0xf || base_family == 0x6 ? base_model + (((a >> 16) & 0xf) << 4) : base_model;
  return std::string(vendor) + " " + std::to_string(family) + "/" + std::to_string(model);
#else
  return {};
#endif
}

/// Auto's fallback backend (shapes without a route, ties in calibration, default-table entries
/// naming a backend this build lacks) as a type: our Highway gemm where it is compiled in (the
/// fastest single backend on the model's shapes here, see docs/decisions.md), else
/// default_backend()'s order: Eigen, OpenBLAS, BLIS, Naive. Auto::gemm calls it directly
/// (inlined, like a static policy would) when a gemm is routed to it.
#if defined(ROSETTA_HAS_HWY)
using Preferred = HwyGemm;
#elif defined(ROSETTA_HAS_EIGEN)
using Preferred = Eigen;
#elif defined(ROSETTA_HAS_CBLAS)
using Preferred = Cblas;
#elif defined(ROSETTA_HAS_BLIS)
using Preferred = Blis;
#else
using Preferred = Naive;
#endif

/// One gemm per routing backend for (T, L). Atomic only so that a test can intercept one
/// (Auto::Hook); read with relaxed loads (plain loads on x86).
template <class T, class L>
struct Fns {
  using F = GemmFn<T, L>;
  static inline std::array<std::atomic<F>, routing::kNumGemmBackends> fns{
      {{compiled_fn<T, L>(routing::GemmBackend::naive)},
       {compiled_fn<T, L>(routing::GemmBackend::eigen)},
       {compiled_fn<T, L>(routing::GemmBackend::blis)},
       {compiled_fn<T, L>(routing::GemmBackend::openblas)},
       {compiled_fn<T, L>(routing::GemmBackend::hwy)}}};
};

}  // namespace auto_detail

struct Auto {
  static constexpr const char* name = "auto";
  /// The environment variable naming the table file loaded at first use.
  static constexpr const char* kEnvVar = "ROSETTA_AUTO_TABLE";
  /// source() of the shipped default table.
  static constexpr const char* kDefaultSource =
      "built-in default (rosetta/backend/auto_default_table.hpp)";

  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("Auto::gemm", opA, opB, A, B, C);
    const routing::GemmBackend b = route<T, L>(opA, opB, d.m, d.n, d.k);
    const GemmFn<T, L> fn =
        auto_detail::Fns<T, L>::fns[static_cast<std::size_t>(b)].load(std::memory_order_relaxed);
    // The fallback backend (most routes) is called directly, so it is inlined with this call
    // site's constant ops, alpha and beta as in Policy<T, L, Eigen>; the others through the
    // pointer (an Auto::Hook replaces the pointer, so a hooked backend is never inlined).
    if (fn == &auto_detail::call<auto_detail::Preferred, T, L>)
      auto_detail::Preferred::gemm(opA, opB, alpha, A, B, beta, C);
    else
      fn(opA, opB, alpha, MatrixView<const T, L>(A), MatrixView<const T, L>(B), beta, C);
  }

  /// backend::gemm_sumsq on the routed backend: the fallback's own (HwyGemm sums in its
  /// kernels) when the product is routed to it, else that backend's gemm and sum_squares(C).
  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static double gemm_sumsq(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A,
                           MatrixView<TB, L> B, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("Auto::gemm_sumsq", opA, opB, A, B, C);
    const routing::GemmBackend b = route<T, L>(opA, opB, d.m, d.n, d.k);
    const GemmFn<T, L> fn =
        auto_detail::Fns<T, L>::fns[static_cast<std::size_t>(b)].load(std::memory_order_relaxed);
    if (fn == &auto_detail::call<auto_detail::Preferred, T, L>)
      return backend::gemm_sumsq<auto_detail::Preferred>(opA, opB, alpha, A, B, C);
    fn(opA, opB, alpha, MatrixView<const T, L>(A), MatrixView<const T, L>(B), T(0), C);
    return sum_squares(MatrixView<const T, L>(C));
  }

  /// The backend a gemm of scalar T, layout L, ops and shape (op(A) m x k, op(B) k x n) runs on.
  template <class T, Layout L>
  static routing::GemmBackend route(Op opA, Op opB, std::size_t m, std::size_t n, std::size_t k) {
    static_assert(std::same_as<T, float> || std::same_as<T, double>);
    return routes().gemm(routing::gemm_bucket(std::same_as<T, double>, !L::is_row_major, opA, opB),
                         m, n, k);
  }

  /// The active table (loaded at first use, see the top of this file).
  static const routing::RouteTable& routes() {
    if (const routing::RouteTable* t = current_.load(std::memory_order_acquire)) [[likely]]
      return *t;
    return initialise();
  }

  /// The backend of gemms without a route (auto_detail::Preferred: hwy, else eigen, openblas,
  /// blis, naive, the first compiled in).
  static routing::GemmBackend fallback() {
    return *routing::gemm_backend_from_name(auto_detail::Preferred::name);
  }

  /// What this build has: the gemm backends compiled in and the fallback (fallback()).
  /// The atlas side is not known here (atlas/auto.hpp's route_catalog() adds it).
  static routing::Catalog catalog(bool substitute_missing = false) {
    routing::Catalog c;
    for (std::size_t i = 0; i < routing::kNumGemmBackends; ++i)
      c.gemm[i] = auto_detail::compiled_fn<float, RowMajor>(static_cast<routing::GemmBackend>(i)) !=
                  nullptr;
    c.gemm_fallback = fallback();
    c.substitute_missing = substitute_missing;
    return c;
  }

  /// The catalog the shipped default table is read with: catalog(true), and BLIS and
  /// OpenBLAS as missing (their gemm routes to the fallback) on another CPU than the one the
  /// table was measured on (detail::kAutoDefaultCpu, cpu_id()): a route to a library is a
  /// measurement of the kernels it picks for that CPU — BLIS 0.9 runs its generic C kernels on
  /// a CPU it does not know (a Zen 5: 3x slower than on the Zen 4 it runs as zen3), OpenBLAS's
  /// DYNAMIC_ARCH picks a core per CPU (Cooperlake, Haswell, ...). Our own kernels and Eigen
  /// are compiled for the build machine and keep their routes.
  static routing::Catalog default_catalog() { return default_catalog(auto_detail::cpu_id()); }
  /// As above, for a given CPU (cpu_id()'s form; for tests).
  static routing::Catalog default_catalog(std::string_view cpu) {
    routing::Catalog c = catalog(true);
    if (cpu != detail::kAutoDefaultCpu) {
      c.gemm[static_cast<std::size_t>(routing::GemmBackend::blis)] = false;
      c.gemm[static_cast<std::size_t>(routing::GemmBackend::openblas)] = false;
    }
    return c;
  }

  /// The shipped default table's text.
  static std::string_view default_text() noexcept { return detail::kAutoDefaultTable; }

  /// Makes t the active table for every thread; returns it (kept until the process exits).
  static const routing::RouteTable& install(routing::RouteTable t) {
    std::lock_guard lock(mutex());
    return install_locked(std::move(t));
  }
  /// Parses, validates (strictly) and installs the table in `path`; on error the active table
  /// is unchanged.
  static const routing::RouteTable& load_file(const std::string& path) {
    return install(routing::RouteTable::load_file(path, catalog()));
  }
  /// As load_file, from text (errors name `source`).
  static const routing::RouteTable& load_text(std::string_view text, std::string source) {
    return install(routing::RouteTable::parse(text, std::move(source), catalog()));
  }
  /// Installs the shipped default table (missing backends substituted).
  static const routing::RouteTable& use_default() {
    return install(routing::RouteTable::parse(default_text(), kDefaultSource, default_catalog()));
  }

  /// Loads what the first use loads (ROSETTA_AUTO_TABLE's file if set, else the shipped
  /// default) again, e.g. after changing the variable; on error the active table is unchanged.
  static const routing::RouteTable& load_configured() { return install(configured()); }

  /// Makes a table active for the scope's lifetime, then restores the previous one.
  class Scope {
   public:
    explicit Scope(routing::RouteTable t) {
      std::lock_guard lock(mutex());
      previous_ = current_.load(std::memory_order_acquire);  // nullptr: not loaded yet
      install_locked(std::move(t));
    }
    ~Scope() { current_.store(previous_, std::memory_order_release); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const routing::RouteTable* previous_ = nullptr;
  };

  /// For tests: replaces the gemm that Auto calls for routing backend b with fn for the
  /// hook's lifetime (for scalar T and layout L). Not for concurrent use with other hooks.
  template <class T, class L>
  class Hook {
   public:
    Hook(routing::GemmBackend b, GemmFn<T, L> fn)
        : b_(b), previous_(auto_detail::Fns<T, L>::fns[static_cast<std::size_t>(b)].exchange(fn)) {}
    ~Hook() { auto_detail::Fns<T, L>::fns[static_cast<std::size_t>(b_)].store(previous_); }
    Hook(const Hook&) = delete;
    Hook& operator=(const Hook&) = delete;

   private:
    routing::GemmBackend b_;
    GemmFn<T, L> previous_;
  };

 private:
  static const routing::RouteTable& initialise() {
    std::lock_guard lock(mutex());
    if (const routing::RouteTable* t = current_.load(std::memory_order_acquire)) return *t;
    return install_locked(configured());  // throws (and stays unloaded) while it fails
  }
  /// The table of the first use: ROSETTA_AUTO_TABLE's file (strict) or the shipped default.
  static routing::RouteTable configured() {
    const char* env = std::getenv(kEnvVar);
    if (env && *env) return routing::RouteTable::load_file(env, catalog());
    return routing::RouteTable::parse(default_text(), kDefaultSource, default_catalog());
  }
  static const routing::RouteTable& install_locked(routing::RouteTable t) {
    store().push_back(std::make_unique<const routing::RouteTable>(std::move(t)));
    current_.store(store().back().get(), std::memory_order_release);
    return *store().back();
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<const routing::RouteTable>>& store() {
    static std::vector<std::unique_ptr<const routing::RouteTable>> s;
    return s;
  }

  static constinit inline std::atomic<const routing::RouteTable*> current_{nullptr};
};

static_assert(Backend<Auto>);

}  // namespace rosetta::backend
