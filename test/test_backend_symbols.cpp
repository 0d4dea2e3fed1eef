// Each BLAS backend provably calls the library it names. libblis exports cblas_* and sgemm_
// just like OpenBLAS, so this binary links both and resolves, with dladdr, the entry point
// each backend actually calls to the shared object that defines it.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <rosetta/rosetta.hpp>
#include <string>

namespace {

std::string object_of(const void* fn) {
  Dl_info info{};
  if (!fn || dladdr(fn, &info) == 0 || !info.dli_fname) return "<unresolved>";
  char buf[4096];
  const char* real = realpath(info.dli_fname, buf);
  return real ? real : info.dli_fname;
}

bool contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

#ifdef ROSETTA_HAS_CBLAS
TEST(BackendSymbols, CblasCallsOpenBlas) {
  using rosetta::backend::Cblas;
  for (const void* fn : {Cblas::gemm_symbol<float>(), Cblas::gemm_symbol<double>()}) {
    const std::string lib = object_of(fn);
    EXPECT_TRUE(contains(lib, "openblas")) << "cblas gemm resolved to " << lib;
    EXPECT_FALSE(contains(lib, "blis")) << "cblas gemm resolved to " << lib;
  }
  EXPECT_TRUE(contains(Cblas::version(), "OpenBLAS")) << Cblas::version();
}
#endif

#ifdef ROSETTA_HAS_BLIS
TEST(BackendSymbols, BlisCallsBlis) {
  using rosetta::backend::Blis;
  for (const void* fn : {Blis::gemm_symbol<float>(), Blis::gemm_symbol<double>()}) {
    const std::string lib = object_of(fn);
    EXPECT_TRUE(contains(lib, "blis")) << "bli gemm resolved to " << lib;
  }
}
#endif

#if defined(ROSETTA_HAS_BLIS) && defined(ROSETTA_HAS_CBLAS)
// The trap the backends avoid: in this binary a plain call by name may land in either
// library. Whatever it resolves to, the Cblas backend's entry point must differ from BLIS's
// cblas_sgemm.
TEST(BackendSymbols, CblasEntryIsNotBlisExport) {
  void* blis = dlopen("libblis.so.4", RTLD_NOW | RTLD_NOLOAD);
  if (!blis) GTEST_SKIP() << "libblis.so.4 not loaded under that name";
  const void* blis_cblas = dlsym(blis, "cblas_sgemm");
  ASSERT_NE(blis_cblas, nullptr);
  EXPECT_NE(blis_cblas, rosetta::backend::Cblas::gemm_symbol<float>());
  dlclose(blis);
}
#endif

TEST(BackendSymbols, ThreadEnvironmentIsValidated) {
  setenv("ROSETTA_BLAS_THREADS", "two", 1);
  EXPECT_THROW(rosetta::backend::default_blas_threads(), rosetta::ValueError);
  setenv("ROSETTA_BLAS_THREADS", "2", 1);
  EXPECT_EQ(rosetta::backend::default_blas_threads(), 2);
  unsetenv("ROSETTA_BLAS_THREADS");
  EXPECT_EQ(rosetta::backend::default_blas_threads(), 1);
  EXPECT_THROW(rosetta::backend::set_blas_threads(0), rosetta::ValueError);
}

}  // namespace
