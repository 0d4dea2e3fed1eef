// Measured routing (issue 7): the routing-table parser and its validation, backend::Auto's
// lookup rule and that its routes are honoured (calls counted through Auto::Hook), the model
// on Policy<T, L, Auto> (bit-identical to the backend it routes to; within the parity
// tolerances of test_model against double/row/naive with the shipped mixed table), the
// atlas's auto_run against the naive reference, and the shipped default table.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <rosetta/atlas/auto.hpp>
#include <rosetta/backend/auto.hpp>
#include <rosetta/rosetta.hpp>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>
#include "model_check.hpp"

namespace {
using namespace rosetta;
using routing::Catalog;
using routing::GemmBackend;
using routing::RouteTable;

template <class B, class Tuple>
struct Contains;
template <class B, class... Bs>
struct Contains<B, std::tuple<Bs...>> : std::bool_constant<(std::same_as<B, Bs> || ...)> {};

static_assert(Backend<backend::Auto>);
static_assert(!Contains<backend::Auto, backend::Available>::value,
              "Auto is tested here, not through every typed test over Available");
static_assert(std::string_view(backend::Auto::name) == "auto");

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Every gemm backend compiled in, the fallback naive; strict.
Catalog all_gemm() {
  Catalog c;
  c.gemm.fill(true);
  c.gemm_fallback = GemmBackend::naive;
  return c;
}

/// Expects RouteTableError whose message starts with "<source>:<line>: " and contains `what`.
void expect_error(const std::string& text, const Catalog& c, std::size_t line,
                  const std::string& what) {
  SCOPED_TRACE(text);
  try {
    (void)RouteTable::parse(text, "t.table", c);
    ADD_FAILURE() << "no error (expected line " << line << ": " << what << ")";
  } catch (const RouteTableError& e) {
    const std::string msg = e.what();
    const std::string prefix = "t.table:" + std::to_string(line) + ": ";
    EXPECT_EQ(msg.rfind(prefix, 0), 0u)
        << "message \"" << msg << "\" does not start with \"" << prefix << "\"";
    EXPECT_NE(msg.find(what), std::string::npos)
        << "message \"" << msg << "\" does not mention \"" << what << "\"";
  }
}

std::string table(const std::string& body) {
  return "rosetta-auto-table 1\n" + body;
}

std::size_t bucket(const char* scalar, const char* layout, Op a, Op b) {
  return routing::gemm_bucket(std::string_view(scalar) == "double",
                              std::string_view(layout) == "col", a, b);
}

/// A table whose every gemm of every scalar, layout and op pair goes to `b` (one route per
/// bucket: every shape's nearest route).
std::string everything_to(std::string_view b) {
  std::string s = "rosetta-auto-table 1\n";
  for (const char* scalar : {"float", "double"})
    for (const char* layout : {"row", "col"})
      for (const char* a : {"N", "T"})
        for (const char* o : {"N", "T"})
          s += std::string("gemm ") + scalar + " " + layout + " " + a + " " + o + " 8 8 8 " +
               std::string(b) + "\n";
  return s;
}

// ---------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------

TEST(RouteTableParse, ValidTableWithCommentsBlankLinesAndCrlf) {
  const std::string text =
      "# a comment before the header\n"
      "\n"
      "rosetta-auto-table 1   # version\n"
      "atlas softmax 0 8191 hwy_static\n"
      "atlas softmax 8192 262143 eigen\r\n"
      "atlas softmax 262144 * naive\n"
      "atlas dot 0 * openblas   # trailing comment\n"
      "\t gemm float row N T 64 192 64 eigen\n"
      "gemm float row N T 2 2 2 naive\n"
      "gemm float row N T 16 1000 64 openblas\n"
      "gemm double col T N 64 64 64 blis\n";
  const RouteTable t = RouteTable::parse(text, "valid.table", all_gemm());
  EXPECT_EQ(t.source(), "valid.table");
  EXPECT_EQ(t.gemm_routes(), 4u);
  EXPECT_EQ(t.atlas_routes(), 4u);
  EXPECT_EQ(t.substituted(), 0u);
  EXPECT_EQ(t.fingerprint(), routing::detail::fnv1a(text));

  const auto fr_nt = bucket("float", "row", Op::N, Op::T);
  EXPECT_EQ(t.gemm(fr_nt, 64, 192, 64), GemmBackend::eigen);  // exact
  EXPECT_EQ(t.gemm(fr_nt, 2, 2, 2), GemmBackend::naive);
  EXPECT_EQ(t.gemm(fr_nt, 16, 1000, 64), GemmBackend::openblas);
  EXPECT_EQ(t.gemm_route(fr_nt, 64, 192, 64)->line, 8u);
  EXPECT_EQ(t.gemm(bucket("double", "col", Op::T, Op::N), 64, 64, 64), GemmBackend::blis);
  // no route for these ops: the fallback
  EXPECT_EQ(t.gemm(bucket("float", "row", Op::N, Op::N), 64, 192, 64), GemmBackend::naive);
  EXPECT_EQ(t.gemm_route(bucket("float", "col", Op::N, Op::T), 64, 192, 64), nullptr);

  using atlas::Backend;
  EXPECT_EQ(t.atlas("softmax", 0), Backend::hwy_static);
  EXPECT_EQ(t.atlas("softmax", 8191), Backend::hwy_static);
  EXPECT_EQ(t.atlas("softmax", 8192), Backend::eigen);
  EXPECT_EQ(t.atlas("softmax", 262143), Backend::eigen);
  EXPECT_EQ(t.atlas("softmax", 262144), Backend::naive);
  EXPECT_EQ(t.atlas("softmax", std::numeric_limits<std::size_t>::max()), Backend::naive);
  EXPECT_EQ(t.atlas("dot", 5), Backend::openblas);
  EXPECT_EQ(t.atlas("sum", 5), std::nullopt);
  EXPECT_EQ(t.atlas("softmaxx", 5), std::nullopt);
}

TEST(RouteTableParse, NearestRouteByLogOfTheProduct) {
  const RouteTable t = RouteTable::parse(table("gemm float row N N 8 8 8 naive\n"
                                               "gemm float row N N 64 64 64 eigen\n"
                                               "gemm float row N N 16 16 16 blis\n"
                                               "gemm float row N N 1 4096 64 openblas\n"),
                                         "t", all_gemm());
  const auto b = bucket("float", "row", Op::N, Op::N);
  EXPECT_EQ(t.gemm(b, 1, 1, 1), GemmBackend::naive);           // below the smallest
  EXPECT_EQ(t.gemm(b, 9, 9, 9), GemmBackend::naive);           // 729: nearer 512 than 4096
  EXPECT_EQ(t.gemm(b, 15, 16, 16), GemmBackend::blis);         // 3840: nearer 4096
  EXPECT_EQ(t.gemm(b, 1000, 1000, 1000), GemmBackend::eigen);  // above the largest
  // 64^3 = 1 * 4096 * 64: equal products; the tie goes to the shape nearer in each dimension
  EXPECT_EQ(t.gemm(b, 64, 64, 64), GemmBackend::eigen);
  EXPECT_EQ(t.gemm(b, 2, 2048, 64), GemmBackend::openblas);
  EXPECT_EQ(t.gemm(b, 60, 70, 62), GemmBackend::eigen);
  EXPECT_EQ(t.gemm(b, 8, 8, 64), GemmBackend::blis);  // the product of 16^3, no other entry
  // zero-sized gemms go to the fallback (the backend handles the empty case)
  EXPECT_EQ(t.gemm(b, 0, 64, 64), GemmBackend::naive);
}

// gemm() memoises nearest routes per thread: the memo must never answer for another table,
// including a later table built at the address of a destroyed one, nor for another bucket.
TEST(RouteTableParse, NearestRouteMemoNeverMixesTables) {
  const auto nn = bucket("float", "row", Op::N, Op::N), nt = bucket("float", "row", Op::N, Op::T);
  const RouteTable a =
      RouteTable::parse(table("gemm float row N N 8 8 8 naive\n"), "a", all_gemm());
  const RouteTable b = RouteTable::parse(
      table("gemm float row N N 8 8 8 eigen\ngemm float row N T 8 8 8 blis\n"), "b", all_gemm());
  for (int round = 0; round < 3; ++round) {  // repeated: the second lookup is the memo's
    EXPECT_EQ(a.gemm(nn, 9, 9, 9), GemmBackend::naive);
    EXPECT_EQ(b.gemm(nn, 9, 9, 9), GemmBackend::eigen);
    EXPECT_EQ(b.gemm(nt, 9, 9, 9), GemmBackend::blis);
    EXPECT_EQ(a.gemm(nt, 9, 9, 9), GemmBackend::naive);  // no N T entry in a: its fallback
  }
  const char* backends[] = {"naive", "eigen", "blis", "openblas"};
  for (const char* name : backends) {  // each table likely at the same stack address
    const RouteTable t = RouteTable::parse(
        table(std::string("gemm float row N N 8 8 8 ") + name + "\n"), name, all_gemm());
    EXPECT_EQ(routing::name(t.gemm(nn, 9, 9, 9)), name);
    EXPECT_EQ(routing::name(t.gemm(nn, 9, 9, 9)), name);
  }
  RouteTable c = RouteTable::parse(table("gemm float row N N 8 8 8 openblas\n"), "c", all_gemm());
  const RouteTable copy = c;
  EXPECT_EQ(c.gemm(nn, 9, 9, 9), GemmBackend::openblas);
  EXPECT_EQ(copy.gemm(nn, 9, 9, 9), GemmBackend::openblas);
  c = RouteTable::parse(table("gemm float row N N 8 8 8 blis\n"), "c2", all_gemm());
  EXPECT_EQ(c.gemm(nn, 9, 9, 9), GemmBackend::blis);  // reassigned: not the old answer
  EXPECT_EQ(copy.gemm(nn, 9, 9, 9), GemmBackend::openblas);
}

TEST(RouteTableParse, EmptyTableIsValidAndRoutesEverythingToTheFallback) {
  Catalog c = all_gemm();
  c.gemm_fallback = GemmBackend::eigen;
  const RouteTable t = RouteTable::parse("rosetta-auto-table 1\n", "empty", c);
  EXPECT_EQ(t.gemm_routes(), 0u);
  EXPECT_EQ(t.gemm(bucket("double", "col", Op::T, Op::T), 3, 4, 5), GemmBackend::eigen);
}

TEST(RouteTableParse, EveryInvalidCaseNamesTheLine) {
  const Catalog c = all_gemm();
  expect_error("", c, 1, "no header");
  expect_error("# only a comment\n\n", c, 3, "no header");
  expect_error("gemm float row N N 1 1 1 naive\n", c, 1, "expected the header");
  expect_error("rosetta-auto-table\n", c, 1, "the header is");
  expect_error("rosetta-auto-table 2\n", c, 1, "unsupported table version 2");
  expect_error("rosetta-auto-table x1\n", c, 1, "version 'x1' is not a decimal number");
  expect_error(table("route float row N N 1 1 1 naive\n"), c, 2, "unknown entry 'route'");
  expect_error(table("gemm float row N N 1 1 naive\n"), c, 2, "9 fields");
  expect_error(table("gemm float row N N 1 1 1 1 naive\n"), c, 2, "9 fields");
  expect_error(table("gemm half row N N 1 1 1 naive\n"), c, 2, "unknown scalar 'half'");
  expect_error(table("gemm float diag N N 1 1 1 naive\n"), c, 2, "unknown layout 'diag'");
  expect_error(table("gemm float row C N 1 1 1 naive\n"), c, 2, "unknown op 'C'");
  expect_error(table("gemm float row N t 1 1 1 naive\n"), c, 2, "unknown op 't'");
  expect_error(table("gemm float row N N 12x 1 1 naive\n"), c, 2, "M '12x' is not a decimal");
  expect_error(table("gemm float row N N 1 -3 1 naive\n"), c, 2, "N '-3' is not a decimal");
  expect_error(table("gemm float row N N 1 1 +3 naive\n"), c, 2, "K '+3' is not a decimal");
  expect_error(table("gemm float row N N 1 1 1.5 naive\n"), c, 2, "K '1.5' is not a decimal");
  expect_error(table("gemm float row N N 0 1 1 naive\n"), c, 2, "M 0 is below 1");
  expect_error(table("gemm float row N N 99999999999999999999999 1 1 naive\n"), c, 2,
               "out of range");
  expect_error(table("gemm float row N N 1 1 1 mkl\n"), c, 2, "unknown gemm backend 'mkl'");
  expect_error(table("gemm float row N N 1 1 1 hwy_static\n"), c, 2,
               "unknown gemm backend 'hwy_static'");
  expect_error(table("\ngemm float row N N 4 4 4 naive\ngemm float row N N 4 4 4 eigen\n"), c, 4,
               "duplicate gemm entry 4 x 4 x 4 for the same scalar, layout and ops (first on "
               "line 3)");
  expect_error(table("atlas softmax 0 100\n"), c, 2, "5 fields");
  expect_error(table("atlas soft-max 0 100 naive\n"), c, 2, "has a character other than");
  expect_error(table("atlas softmax 0 100 cuda\n"), c, 2, "unknown atlas backend 'cuda'");
  expect_error(table("atlas softmax 200 100 naive\n"), c, 2, "N_MIN 200 is above N_MAX 100");
  expect_error(table("atlas softmax 0 1e3 naive\n"), c, 2, "N_MAX '1e3' is not a decimal");
  expect_error(table("atlas softmax * 10 naive\n"), c, 2, "N_MIN '*' is not a decimal");
  expect_error(table("atlas softmax 0 100 naive\natlas softmax 100 200 eigen\n"), c, 3,
               "range 100..200 of kernel 'softmax' overlaps or precedes the range ending at 100 "
               "on line 2");
  expect_error(table("atlas softmax 500 * naive\natlas dot 0 * eigen\natlas softmax 0 499 eigen\n"),
               c, 4, "overlaps or precedes");
  // a valid line before the bad one does not hide it
  expect_error(table("gemm float row N N 1 1 1 naive\n# ok so far\ngemm float row N N 1 1\n"), c, 4,
               "9 fields");
}

TEST(RouteTableParse, BackendsThisBuildLacksAreErrorsOrSubstituted) {
  Catalog c = all_gemm();
  c.gemm[static_cast<std::size_t>(GemmBackend::blis)] = false;
  const std::string text = table("gemm float row N N 4 4 4 eigen\ngemm float row N N 8 8 8 blis\n");
  expect_error(text, c, 3,
               "gemm backend 'blis' is not compiled into this build (compiled in: "
               "naive, eigen, openblas, hwy)");
  c.substitute_missing = true;
  c.gemm_fallback = GemmBackend::openblas;
  const RouteTable t = RouteTable::parse(text, "t", c);
  EXPECT_EQ(t.substituted(), 1u);
  EXPECT_EQ(t.gemm(bucket("float", "row", Op::N, Op::N), 8, 8, 8), GemmBackend::openblas);
  EXPECT_EQ(t.gemm(bucket("float", "row", Op::N, Op::N), 4, 4, 4), GemmBackend::eigen);

  Catalog no_fallback = all_gemm();
  no_fallback.gemm[static_cast<std::size_t>(GemmBackend::naive)] = false;
  EXPECT_THROW((void)RouteTable::parse("rosetta-auto-table 1\n", "t", no_fallback),
               RouteTableError);
}

TEST(RouteTableParse, AtlasEntriesAreCheckedAgainstThisBuildsAtlas) {
  const Catalog c = atlas::route_catalog();
  expect_error(table("atlas no_such_kernel 0 * naive\n"), c, 2,
               "unknown atlas kernel 'no_such_kernel'");
  // prefix_sum has no Eigen implementation in any build
  expect_error(table("atlas prefix_sum 0 * eigen\n"), c, 2,
               "kernel 'prefix_sum' has no 'eigen' implementation in this build");
  Catalog lenient = c;
  lenient.substitute_missing = true;
  const RouteTable t = RouteTable::parse(table("atlas prefix_sum 0 * eigen\n"), "t", lenient);
  EXPECT_EQ(t.substituted(), 1u);
  EXPECT_EQ(t.atlas("prefix_sum", 10), std::nullopt);  // the fallback order decides
  // without the atlas catalog (the model side), kernel names are not checked
  EXPECT_NO_THROW((void)RouteTable::parse(table("atlas no_such_kernel 0 * naive\n"), "t",
                                          backend::Auto::catalog()));
}

// ---------------------------------------------------------------------------------------
// Loading: files, the environment, failures leave the active table unchanged
// ---------------------------------------------------------------------------------------

class TempFile {
 public:
  explicit TempFile(const std::string& text)
      : path_(std::filesystem::temp_directory_path() /
              ("rosetta_test_auto_" + std::to_string(::getpid()) + "_" +
               std::to_string(counter()++) + ".table")) {
    std::ofstream(path_) << text;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string path() const { return path_.string(); }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::filesystem::path path_;
};

TEST(AutoLoading, AFailedLoadLeavesTheActiveTableUnchanged) {
  const backend::Auto::Scope scope(
      RouteTable::parse(everything_to("naive"), "good", backend::Auto::catalog()));
  const RouteTable* before = &backend::Auto::routes();
  ASSERT_EQ(before->source(), "good");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {table("gemm float row N N 1 1 1 mkl\n"), "bad.table:2: unknown gemm backend"},
      {"rosetta-auto-table 9\n", "bad.table:1: unsupported table version 9"},
      {table("atlas x 5 1 naive\n"), "bad.table:2: N_MIN 5 is above N_MAX 1"},
  };
  for (const auto& [text, what] : bad) {
    try {
      backend::Auto::load_text(text, "bad.table");
      ADD_FAILURE() << "no error for " << text;
    } catch (const RouteTableError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    EXPECT_EQ(&backend::Auto::routes(), before);
    EXPECT_EQ(backend::Auto::routes().source(), "good");
  }
  // the same through a file, and a missing file
  const TempFile f(table("gemm float row N N 1 1 1 naive\ngemm float row N N 1 1 1 naive\n"));
  EXPECT_THROW(backend::Auto::load_file(f.path()), RouteTableError);
  try {
    backend::Auto::load_file("/nonexistent/rosetta.table");
    ADD_FAILURE() << "no error";
  } catch (const RouteTableError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/rosetta.table: cannot open"),
              std::string::npos);
  }
  EXPECT_EQ(&backend::Auto::routes(), before);
  // and through the atlas's strict loader
  const TempFile g(table("atlas no_such_kernel 0 * naive\n"));
  EXPECT_THROW(atlas::load_routes(g.path()), RouteTableError);
  EXPECT_EQ(&backend::Auto::routes(), before);
}

TEST(AutoLoading, ScopesNestAndRestore) {
  const RouteTable* outer = &backend::Auto::routes();
  {
    const backend::Auto::Scope a(RouteTable::parse(everything_to("naive"), "a", all_gemm()));
    EXPECT_EQ(backend::Auto::routes().source(), "a");
    {
      const backend::Auto::Scope b(RouteTable::parse(everything_to("naive"), "b", all_gemm()));
      EXPECT_EQ(backend::Auto::routes().source(), "b");
    }
    EXPECT_EQ(backend::Auto::routes().source(), "a");
  }
  EXPECT_EQ(&backend::Auto::routes(), outer);
}

TEST(AutoLoading, TheEnvironmentVariableNamesTheTable) {
  const backend::Auto::Scope keep{RouteTable(backend::Auto::routes())};  // restored at the end
  const char* old = std::getenv(backend::Auto::kEnvVar);
  const std::string saved = old ? old : "";
  const TempFile f(everything_to("naive"));
  ASSERT_EQ(::setenv(backend::Auto::kEnvVar, f.path().c_str(), 1), 0);
  EXPECT_EQ(backend::Auto::load_configured().source(), f.path());
  const TempFile bad(table("gemm float row N N 1 1 1 naive extra\n"));
  ASSERT_EQ(::setenv(backend::Auto::kEnvVar, bad.path().c_str(), 1), 0);
  try {
    backend::Auto::load_configured();
    ADD_FAILURE() << "no error";
  } catch (const RouteTableError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad.path() + ":2: ", 0), 0u) << e.what();
  }
  EXPECT_EQ(backend::Auto::routes().source(), f.path());  // unchanged
  ASSERT_EQ(::setenv(backend::Auto::kEnvVar, "", 1), 0);  // empty: the shipped default
  EXPECT_EQ(backend::Auto::load_configured().source(), backend::Auto::kDefaultSource);
  ASSERT_EQ(::unsetenv(backend::Auto::kEnvVar), 0);
  EXPECT_EQ(backend::Auto::load_configured().source(), backend::Auto::kDefaultSource);
  if (old) ::setenv(backend::Auto::kEnvVar, saved.c_str(), 1);
}

// ---------------------------------------------------------------------------------------
// Routing is honoured: calls counted per backend through Auto::Hook
// ---------------------------------------------------------------------------------------

template <class T, class L>
struct Counted {
  static inline std::map<GemmBackend, int> calls;
  template <GemmBackend Id, class B>
  static void gemm(Op a, Op b, T alpha, MatrixView<const T, L> A, MatrixView<const T, L> Bm, T beta,
                   MatrixView<T, L> C) {
    ++calls[Id];
    B::gemm(a, b, alpha, A, Bm, beta, C);
  }
};

/// Hooks every compiled backend of (T, L) with a counting wrapper around it.
template <class T, class L>
struct CountingHooks {
  using C = Counted<T, L>;
  using H = backend::Auto::Hook<T, L>;
  H naive{GemmBackend::naive, &C::template gemm<GemmBackend::naive, backend::Naive>};
#ifdef ROSETTA_HAS_EIGEN
  H eigen{GemmBackend::eigen, &C::template gemm<GemmBackend::eigen, backend::Eigen>};
#endif
#ifdef ROSETTA_HAS_BLIS
  H blis{GemmBackend::blis, &C::template gemm<GemmBackend::blis, backend::Blis>};
#endif
#ifdef ROSETTA_HAS_CBLAS
  H openblas{GemmBackend::openblas, &C::template gemm<GemmBackend::openblas, backend::Cblas>};
#endif
#ifdef ROSETTA_HAS_HWY
  H hwy{GemmBackend::hwy, &C::template gemm<GemmBackend::hwy, backend::HwyGemm>};
#endif
  CountingHooks() {
    C::calls.clear();
  }
};

template <class T, class L>
Tensor<T, L> filled(std::size_t r, std::size_t c, std::uint64_t seed) {
  Tensor<T, L> t({r, c});
  Rng rng(seed, 3);
  for (auto& x : t.flat()) x = static_cast<T>(rng.normal());
  return t;
}

TEST(AutoRouting, EachShapeRunsOnItsRoutedBackend) {
  using T = float;
  using L = RowMajor;
  const backend::Auto::Scope scope(
      RouteTable::parse(table("gemm float row N T 4 5 6 naive\n"
                              "gemm float row N T 32 32 32 openblas\n"
                              "gemm float row N N 4 5 6 eigen\n"),
                        "routes", backend::Auto::catalog(/*substitute_missing=*/true)));
  const CountingHooks<T, L> hooks;
  auto& calls = Counted<T, L>::calls;
  auto run = [](Op opB, std::size_t m, std::size_t n, std::size_t k) {
    auto A = filled<T, L>(m, k, 1);
    auto B = opB == Op::T ? filled<T, L>(n, k, 2) : filled<T, L>(k, n, 2);
    Tensor<T, L> C({m, n}), ref({m, n});
    backend::Auto::gemm(Op::N, opB, 1.0f, MatrixView<const T, L>(A.matrix()),
                        MatrixView<const T, L>(B.matrix()), 0.0f, C.matrix());
    backend::Naive::gemm(Op::N, opB, 1.0f, MatrixView<const T, L>(A.matrix()),
                         MatrixView<const T, L>(B.matrix()), 0.0f, ref.matrix());
    for (std::size_t i = 0; i < m * n; ++i)
      EXPECT_NEAR(C.flat()[i], ref.flat()[i], 1e-4f * (1 + std::fabs(ref.flat()[i])));
  };
  const auto route = [](Op opB, std::size_t m, std::size_t n, std::size_t k) {
    return backend::Auto::route<T, L>(Op::N, opB, m, n, k);
  };
  // Each call's expected backend (a route to a backend this build lacks was substituted).
  std::map<GemmBackend, int> expect;
  auto expect_route = [&](Op opB, std::size_t m, std::size_t n, std::size_t k) {
    ++expect[route(opB, m, n, k)];
    run(opB, m, n, k);
  };
  EXPECT_EQ(route(Op::T, 4, 5, 6), GemmBackend::naive);  // exact
  EXPECT_EQ(route(Op::T, 5, 5, 5), GemmBackend::naive);  // nearest
  expect_route(Op::T, 4, 5, 6);
  EXPECT_EQ(calls[GemmBackend::naive], 1);
  expect_route(Op::T, 5, 5, 5);
  EXPECT_EQ(calls[GemmBackend::naive], 2);
  expect_route(Op::T, 30, 33, 31);  // nearest: openblas
  expect_route(Op::N, 40, 50, 60);  // the only N,N route: eigen
#if defined(ROSETTA_HAS_CBLAS) && defined(ROSETTA_HAS_EIGEN)
  EXPECT_EQ(calls[GemmBackend::openblas], 1);
  EXPECT_EQ(calls[GemmBackend::eigen], 1);
#endif
  EXPECT_EQ(calls, expect);
  // Shape errors are reported under Auto's name.
  Tensor<T, L> a({2, 3}), b({4, 5}), c({2, 5});
  EXPECT_THROW(backend::Auto::gemm(Op::N, Op::N, 1.0f, MatrixView<const T, L>(a.matrix()),
                                   MatrixView<const T, L>(b.matrix()), 0.0f, c.matrix()),
               ShapeError);
}

#ifdef ROSETTA_HAS_HWY
/// A route naming "hwy" runs backend::HwyGemm (our own Highway gemm, not in Available), for
/// both scalars and layouts; the result matches Naive.
template <class T, class L>
void expect_hwy_route(const char* scalar, const char* layout) {
  SCOPED_TRACE(std::string(scalar) + "/" + layout);
  const backend::Auto::Scope scope(RouteTable::parse(
      table(std::string("gemm ") + scalar + " " + layout + " N T 64 192 64 hwy\n" + "gemm " +
            scalar + " " + layout + " N T 8 8 8 naive\n"),
      "hwy-routes", backend::Auto::catalog()));
  EXPECT_EQ((backend::Auto::route<T, L>(Op::N, Op::T, 64, 192, 64)), GemmBackend::hwy);
  EXPECT_EQ((backend::Auto::route<T, L>(Op::N, Op::T, 60, 200, 70)), GemmBackend::hwy);  // nearest
  const CountingHooks<T, L> hooks;
  auto& calls = Counted<T, L>::calls;
  for (std::size_t m : {64, 60}) {
    const std::size_t n = m == 64 ? 192 : 200, k = m == 64 ? 64 : 70;
    auto A = filled<T, L>(m, k, 1);
    auto B = filled<T, L>(n, k, 2);
    Tensor<T, L> C({m, n}), ref({m, n});
    backend::Auto::gemm(Op::N, Op::T, T(1), MatrixView<const T, L>(A.matrix()),
                        MatrixView<const T, L>(B.matrix()), T(0), C.matrix());
    backend::Naive::gemm(Op::N, Op::T, T(1), MatrixView<const T, L>(A.matrix()),
                         MatrixView<const T, L>(B.matrix()), T(0), ref.matrix());
    for (std::size_t i = 0; i < m * n; ++i)
      EXPECT_NEAR(C.flat()[i], ref.flat()[i], T(1e-4) * (1 + std::fabs(ref.flat()[i])));
  }
  EXPECT_EQ(calls[GemmBackend::hwy], 2);
  EXPECT_EQ(calls.size(), 1u);
}

TEST(AutoRouting, AHwyRouteRunsHwyGemm) {
  EXPECT_TRUE(backend::Auto::catalog().gemm[static_cast<std::size_t>(GemmBackend::hwy)]);
  expect_hwy_route<float, RowMajor>("float", "row");
  expect_hwy_route<double, RowMajor>("double", "row");
  expect_hwy_route<float, ColMajor>("float", "col");
  expect_hwy_route<double, ColMajor>("double", "col");
}
#endif

// ---------------------------------------------------------------------------------------
// The model on Policy<T, L, Auto>
// ---------------------------------------------------------------------------------------

constexpr std::uint64_t kSeed = 20240611;

Config reduced_config() {
  Config c = Config::tiny();
  c.vocab_size = 97;
  c.max_seq_len = 64;
  return c;
}

using test::Batch;
using test::random_batch;

/// Logits, losses, every gradient and the parameters after one AdamW step, widened to double
/// (exactly), matrices row-major whatever the layout.
struct Snapshot {
  std::vector<double> logits;
  std::array<double, 3> losses{};
  std::vector<std::vector<double>> grads;
  std::vector<double> stepped;
};

template <class T, class L>
std::vector<double> row_major(MatrixView<const T, L> m) {
  std::vector<double> out;
  for (std::size_t i = 0; i < m.rows(); ++i)
    for (std::size_t j = 0; j < m.cols(); ++j) out.push_back(static_cast<double>(m(i, j)));
  return out;
}

template <class P>
Snapshot snapshot(const Batch& b) {
  using T = typename P::scalar;
  using L = typename P::layout;
  const Config cfg = reduced_config();
  Transformer<P> model(cfg, kSeed);
  auto ws = model.make_workspace();
  Snapshot s;
  s.logits = row_major(model.forward(b.tokens(), ws));
  const Losses<T> l = model.loss(ws, b.targets);
  s.losses = {static_cast<double>(l.ce), static_cast<double>(l.aux), static_cast<double>(l.total)};
  ParamSet<T, L> grads(cfg);
  grads.zero();
  model.backward(ws, b.targets, grads);
  for (const auto& np : grads.named())
    s.grads.push_back(row_major(MatrixView<const T, L>(np.view)));
  Trainer<P> trainer(model, TrainConfig{});
  trainer.train_step(b.tokens(), b.targets);
  for (T x : model.params().flat()) s.stepped.push_back(static_cast<double>(x));
  return s;
}

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

using test::rel_err;

template <class T, class L>
struct TL {
  using scalar = T;
  using layout = L;
};
template <class P>
class AutoModel : public ::testing::Test {};
using AutoPolicies = ::testing::Types<TL<float, RowMajor>, TL<double, RowMajor>,
                                      TL<float, ColMajor>, TL<double, ColMajor>>;
struct TLName {
  template <class P>
  static std::string GetName(int) {
    return std::string(std::same_as<typename P::scalar, float> ? "float" : "double") + "_" +
           P::layout::name;
  }
};
TYPED_TEST_SUITE(AutoModel, AutoPolicies, TLName);

/// With every gemm routed to B, Policy<T, L, Auto> computes bit for bit what
/// Policy<T, L, B> computes (the same B::gemm, called through a pointer), and every gemm
/// really goes to B.
template <class T, class L, class B>
void expect_routed_model_equals(const Batch& b) {
  SCOPED_TRACE(B::name);
  const backend::Auto::Scope scope(
      RouteTable::parse(everything_to(B::name), B::name, backend::Auto::catalog()));
  const Snapshot want = snapshot<Policy<T, L, B>>(b);
  const CountingHooks<T, L> hooks;
  const Snapshot got = snapshot<Policy<T, L, backend::Auto>>(b);
  const auto& calls = Counted<T, L>::calls;
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(routing::name(calls.begin()->first), std::string_view(B::name));
  EXPECT_GT(calls.begin()->second, 50);
  EXPECT_TRUE(bit_equal(got.logits, want.logits)) << "logits";
  EXPECT_EQ(got.losses, want.losses);
  ASSERT_EQ(got.grads.size(), want.grads.size());
  for (std::size_t i = 0; i < got.grads.size(); ++i)
    EXPECT_TRUE(bit_equal(got.grads[i], want.grads[i])) << "gradient " << i;
  EXPECT_TRUE(bit_equal(got.stepped, want.stepped)) << "parameters after a step";
}

template <class T, class L, class... Bs>
void expect_routed_model_equals_each(const Batch& b, std::tuple<Bs...>) {
  (expect_routed_model_equals<T, L, Bs>(b), ...);
}

TYPED_TEST(AutoModel, EverythingRoutedToOneBackendIsBitIdenticalToIt) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  const Batch b = random_batch(2, 8, reduced_config().vocab_size, 1);
  expect_routed_model_equals_each<T, L>(b, backend::Available{});
}

/// The shipped (mixed) table and a table mixing every backend: within test_model's parity
/// tolerances of Policy<double, RowMajor, Naive>.
TYPED_TEST(AutoModel, MixedRoutesMatchDoubleRowNaive) {
  using T = typename TypeParam::scalar;
  using L = typename TypeParam::layout;
  constexpr bool is_double = std::is_same_v<T, double>;
  const double tol_out = is_double ? 1e-12 : 1e-4;
  const double tol_grad = is_double ? 1e-12 : 1e-3;
  const Batch b = random_batch(3, 11, reduced_config().vocab_size, 2);
  const Snapshot ref = snapshot<Policy<double, RowMajor, backend::Naive>>(b);
  // Every backend compiled in, each taking a band of sizes.
  std::string mixed = "rosetta-auto-table 1\n";
  auto names = available_backends();
#ifdef ROSETTA_HAS_HWY
  names.insert(names.begin() + 1, "hwy");  // a routing target beside the backends of Available
#endif
  for (const char* scalar : {"float", "double"})
    for (const char* layout : {"row", "col"})
      for (const char* a : {"N", "T"})
        for (const char* o : {"N", "T"})
          for (std::size_t i = 0; i < 6; ++i) {
            const std::size_t s = std::size_t{2} << (2 * i);  // 2, 8, 32, ...
            mixed += std::string("gemm ") + scalar + " " + layout + " " + a + " " + o + " " +
                     std::to_string(s) + " 16 16 " + names[i % names.size()] + "\n";
          }
  const std::vector<std::pair<std::string, std::string>> tables = {
      {mixed, "mixed"}, {std::string(backend::Auto::default_text()), "default"}};
  for (const auto& [text, source] : tables) {
    SCOPED_TRACE(source);
    const backend::Auto::Scope scope(
        RouteTable::parse(text, source, backend::Auto::catalog(/*substitute_missing=*/true)));
    const CountingHooks<T, L> hooks;
    const Snapshot got = snapshot<Policy<T, L, backend::Auto>>(b);
    std::string used;
    for (const auto& [bk, n] : Counted<T, L>::calls)
      used += std::string(routing::name(bk)) + " " + std::to_string(n) + "  ";
    if (source == "mixed") {
      const std::size_t want = std::min<std::size_t>(3, names.size());
      const std::size_t used_backends = Counted<T, L>::calls.size();
      EXPECT_GE(used_backends, want);
    }
    EXPECT_LE(rel_err(got.logits, ref.logits), tol_out) << "logits";
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_LE(rel_err({got.losses[i]}, {ref.losses[i]}), tol_out) << "loss " << i;
    ASSERT_EQ(got.grads.size(), ref.grads.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.grads.size(); ++i) {
      const double e = rel_err(got.grads[i], ref.grads[i]);
      EXPECT_LE(e, tol_grad) << "gradient " << i;
      worst = std::max(worst, e);
    }
    std::printf("[auto] %s/%s %-7s: logits %.2e, worst gradient %.2e; calls: %s\n",
                is_double ? "double" : "float", L::name, source.c_str(),
                rel_err(got.logits, ref.logits), worst, used.c_str());
  }
}

/// Trainer's gradient norm over Auto (the shipped table: most weight gradients on HwyGemm,
/// their sums of squares taken in its kernels; the rest through another backend's gemm and a
/// pass over C): the norm of the step's gradients, every linear weight gradient recorded.
TYPED_TEST(AutoModel, StepNormIsTheNormOfTheStepsGradients) {
  using P = Policy<typename TypeParam::scalar, typename TypeParam::layout, backend::Auto>;
  test::expect_step_norm_is_the_gradient_norm<P>(reduced_config(), 50);
}

// ---------------------------------------------------------------------------------------
// The atlas: auto_run against the naive reference
// ---------------------------------------------------------------------------------------

/// Worst |x - ref| / ((abs + rel |ref|) g) over the kernel's float outputs.
double worst_ratio(const atlas::Kernel& k, const atlas::Buffers& got, const atlas::Buffers& ref) {
  const double g = k.tol.grows ? std::sqrt(static_cast<double>(got.shape.reduce)) : 1.0;
  double worst = 0;
  auto cmp = [&](const atlas::AVec<float>& x, const atlas::AVec<float>& r) {
    if (x.size() != r.size()) return std::numeric_limits<double>::infinity();
    double w = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double err = std::fabs(static_cast<double>(x[i]) - r[i]);
      const double allowed = (k.tol.abs + k.tol.rel * std::fabs(static_cast<double>(r[i]))) * g;
      if (err > 0) w = std::max(w, allowed > 0 ? err / allowed : 1e300);
    }
    return w;
  };
  if (k.outputs & atlas::kOutA) worst = std::max(worst, cmp(got.a, ref.a));
  if (k.outputs & atlas::kOutB) worst = std::max(worst, cmp(got.b, ref.b));
  if (k.outputs & atlas::kOutC) worst = std::max(worst, cmp(got.c, ref.c));
  if (k.outputs & atlas::kOutD) worst = std::max(worst, cmp(got.d, ref.d));
  if (k.outputs & atlas::kOutE) worst = std::max(worst, cmp(got.e, ref.e));
  for (auto [bit, i] : {std::pair{atlas::kOutS0, 0}, std::pair{atlas::kOutS1, 1}})
    if (k.outputs & bit) {
      const atlas::AVec<float> x{got.s[static_cast<std::size_t>(i)]},
          r{ref.s[static_cast<std::size_t>(i)]};
      worst = std::max(worst, cmp(x, r));
    }
  return worst;
}

TEST(AtlasAuto, RoutedKernelsMatchNaive) {
  using atlas::Backend;
  const auto& reg = atlas::registry();
  // Routes for this build: the first non-naive backend each kernel has, two ranges each.
  std::string text = "rosetta-auto-table 1\n";
  const char* kernels[] = {"softmax", "gemm", "dot", "rmsnorm", "axpy", "sdpa_causal", "sum"};
  std::map<std::string, std::pair<Backend, Backend>> want;
  for (const char* name : kernels) {
    const atlas::Kernel* k = reg.find(name);
    ASSERT_NE(k, nullptr) << name;
    Backend small = Backend::naive, large = Backend::naive;
    for (Backend b : atlas::available_backends())
      if (b != Backend::naive && k->has(b)) {
        if (small == Backend::naive)
          small = b;
        else
          large = b;
      }
    want[name] = {small, large};
    text += std::string("atlas ") + name + " 0 4095 " + std::string(atlas::name(small)) + "\n";
    text += std::string("atlas ") + name + " 4096 * " + std::string(atlas::name(large)) + "\n";
  }
  const backend::Auto::Scope scope(RouteTable::parse(text, "atlas-test", atlas::route_catalog()));
  for (const char* name : kernels) {
    const atlas::Kernel& k = *reg.find(name);
    for (std::size_t n : {std::size_t{1000}, std::size_t{70001}}) {
      SCOPED_TRACE(std::string(name) + " n=" + std::to_string(n));
      const Backend expect = n < 4096 ? want[name].first : want[name].second;
      EXPECT_EQ(atlas::auto_backend(k, n), expect);
      atlas::Buffers got = k.make(n, 7), ref = k.make(n, 7);
      atlas::auto_run(k, got);
      k.run[atlas::index(Backend::naive)](ref);
      EXPECT_LE(worst_ratio(k, got, ref), 1.0);
    }
  }
  // Not in the table: the first of kAutoFallbackOrder the kernel has.
  const atlas::Kernel& mse = *reg.find("mse");
  Backend first = Backend::naive;
  for (Backend b : atlas::kAutoFallbackOrder)
    if (mse.has(b)) {
      first = b;
      break;
    }
  EXPECT_EQ(atlas::auto_backend(mse, 1000), first);
}

TEST(AtlasAuto, ARouteToAMissingImplementationFallsBack) {
  using atlas::Backend;
  // Loaded without the atlas catalog (as backend::Auto's first use does): prefix_sum has no
  // Eigen implementation, so auto_resolve must not call a null function.
  const backend::Auto::Scope scope(
      RouteTable::parse(table("atlas prefix_sum 0 * eigen\n"), "t", backend::Auto::catalog()));
  const atlas::Kernel& k = *atlas::registry().find("prefix_sum");
  const Backend b = atlas::auto_backend(k, 100);
  EXPECT_NE(b, Backend::eigen);
  EXPECT_TRUE(k.has(b));
  atlas::Buffers got = k.make(100, 3), ref = k.make(100, 3);
  atlas::auto_run(k, got);
  k.run[atlas::index(Backend::naive)](ref);
  EXPECT_LE(worst_ratio(k, got, ref), 1.0);
}

// ---------------------------------------------------------------------------------------
// The shipped default table
// ---------------------------------------------------------------------------------------

/// How many gemm / atlas entries of a table's text `pred` accepts (pred gets each entry's
/// fields, its comment cut off).
template <class Pred>
std::size_t count_entries(std::string_view text, Pred pred) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    const auto line = text.substr(pos, eol - pos);
    const auto f = routing::detail::split_fields(line.substr(0, line.find('#')));
    if (!f.empty() && (f[0] == "gemm" || f[0] == "atlas") && pred(f)) ++n;
    pos = eol + 1;
  }
  return n;
}

bool all_backends_compiled() {
  const Catalog c = atlas::route_catalog();
  for (bool b : c.gemm)
    if (!b) return false;
  for (bool b : c.atlas)
    if (!b) return false;
  return true;
}

TEST(DefaultTable, ParsesAndValidates) {
  const std::string_view text = backend::Auto::default_text();
  // Lenient, with this build's atlas: valid in every build.
  const RouteTable lenient =
      RouteTable::parse(text, backend::Auto::kDefaultSource, atlas::route_catalog(true));
  EXPECT_GT(lenient.gemm_routes(), 0u);
  EXPECT_GT(lenient.atlas_routes(), 0u);
  for (std::size_t b : {bucket("float", "row", Op::N, Op::T), bucket("double", "row", Op::N, Op::T),
                        bucket("float", "col", Op::N, Op::T)})
    EXPECT_FALSE(lenient.gemm_entries(b).empty()) << "bucket " << b;
  // Every kernel of the atlas has routes that cover every size.
  for (const auto& k : atlas::registry().kernels())
    for (std::size_t n : {std::size_t{0}, std::size_t{1000}, std::size_t{1} << 30})
      EXPECT_NE(lenient.atlas_route(k.name, n), nullptr) << k.name << " n=" << n;
  if (all_backends_compiled()) {
    // Strict in a build with every backend (the machine it was calibrated on has them all).
    const RouteTable strict = RouteTable::parse(text, "default", atlas::route_catalog());
    EXPECT_EQ(strict.substituted(), 0u);
    EXPECT_EQ(strict.gemm_routes(), lenient.gemm_routes());
  }
  // What the first use loads (unless ROSETTA_AUTO_TABLE is set).
  if (!std::getenv(backend::Auto::kEnvVar)) {
    const RouteTable& active = backend::Auto::load_configured();
    EXPECT_EQ(active.source(), backend::Auto::kDefaultSource);
    EXPECT_EQ(active.fingerprint(), routing::detail::fnv1a(text));
  }
}

TEST(DefaultTable, ValidInABuildMissingBackends) {
  // As if only naive and Eigen (gemm) and naive (atlas) were compiled in: entries naming
  // the others go to the fallback instead of failing.
  Catalog c = backend::Auto::catalog(/*substitute_missing=*/true);
  c.gemm.fill(false);
  c.gemm[static_cast<std::size_t>(GemmBackend::naive)] = true;
  c.gemm[static_cast<std::size_t>(GemmBackend::eigen)] = true;
  c.gemm_fallback = GemmBackend::eigen;
  c.check_atlas = true;
  c.atlas.fill(false);
  c.atlas[atlas::index(atlas::Backend::naive)] = true;
  const std::string_view text = backend::Auto::default_text();
  const RouteTable t = RouteTable::parse(text, "default", c);
  const std::size_t expect = count_entries(text, [](const auto& f) {
    return f.back() != "naive" && !(f[0] == "gemm" && f.back() == "eigen");
  });
  EXPECT_EQ(t.substituted(), expect);
  for (std::size_t b = 0; b < routing::kNumGemmBuckets; ++b)
    for (const auto& r : t.gemm_entries(b))
      EXPECT_TRUE(r.backend == GemmBackend::naive || r.backend == GemmBackend::eigen);
  c.substitute_missing = false;
  if (expect > 0) {
    EXPECT_THROW((void)RouteTable::parse(text, "default", c), RouteTableError);
  }
}

// The default table's routes to BLIS and OpenBLAS hold on the CPU it was measured on
// (kAutoDefaultCpu): on another one they go to the fallback, the rest unchanged.
TEST(DefaultTable, RoutesToLibrariesOnAnotherCpuGoToTheFallback) {
  const std::string_view text = backend::Auto::default_text();
  const auto gemm_to = [&](std::string_view backend) {
    return count_entries(text,
                         [&](const auto& f) { return f[0] == "gemm" && f.back() == backend; });
  };
  const std::size_t to_blis = gemm_to("blis"), to_openblas = gemm_to("openblas");
  const Catalog built = backend::Auto::catalog(/*substitute_missing=*/true);
  const bool has_blis = built.gemm[static_cast<std::size_t>(GemmBackend::blis)];
  const bool has_openblas = built.gemm[static_cast<std::size_t>(GemmBackend::openblas)];
  const RouteTable as_built = RouteTable::parse(text, "default", built);
  const RouteTable same = RouteTable::parse(
      text, "default", backend::Auto::default_catalog(backend::detail::kAutoDefaultCpu));
  EXPECT_EQ(same.substituted(), as_built.substituted());
  const RouteTable other =
      RouteTable::parse(text, "default", backend::Auto::default_catalog("AuthenticAMD 26/2"));
  EXPECT_EQ(other.substituted(),
            as_built.substituted() + (has_blis ? to_blis : 0) + (has_openblas ? to_openblas : 0));
  EXPECT_EQ(other.gemm_routes(), as_built.gemm_routes());
#if defined(__x86_64__)
  const std::string cpu = backend::auto_detail::cpu_id();  // "VENDOR FAMILY/MODEL"
  EXPECT_NE(cpu.find(' '), std::string::npos) << cpu;
  EXPECT_NE(cpu.find('/'), std::string::npos) << cpu;
#endif
  for (std::size_t b = 0; b < routing::kNumGemmBuckets; ++b)
    for (const auto& r : other.gemm_entries(b))
      EXPECT_TRUE(r.backend != GemmBackend::blis && r.backend != GemmBackend::openblas);
}

}  // namespace
