// Checks the backend targets of an installed rosetta package without using rosetta's
// own headers: each rosetta::<backend> target must provide working headers, libraries
// and the ROSETTA_HAS_* / ROSETTA_CBLAS_LIBRARY definitions.
#if defined(ROSETTA_HAS_CBLAS)
// OpenBLAS's cblas.h first: BLIS's blis.h defines the same CBLAS_H include guard.
#include <cblas.h>
#ifndef OPENBLAS_VERSION
#error "<cblas.h> is not OpenBLAS's header: the include path is wrong"
#endif
#include <dlfcn.h>
#include <climits>
#include <cstdlib>
#endif
#if defined(ROSETTA_HAS_BLIS)
#include <blis.h>
#endif
#if defined(ROSETTA_HAS_EIGEN)
#include <Eigen/Core>
#endif

#include <cstdio>
#include <cstring>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("[%s] %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

// Row-major 2x2 operands shared by all checks: c = a * b = {19, 22, 43, 50}.
const float a[4] = {1, 2, 3, 4};
const float b[4] = {5, 6, 7, 8};

bool is_expected(const float* c) {
  return c[0] == 19.0f && c[1] == 22.0f && c[2] == 43.0f && c[3] == 50.0f;
}

}  // namespace

int main() {
  int backends = 0;
#if defined(ROSETTA_HAS_EIGEN)
  {
    ++backends;
    Eigen::Matrix<float, 2, 2, Eigen::RowMajor> ma, mb, mc;
    ma << a[0], a[1], a[2], a[3];
    mb << b[0], b[1], b[2], b[3];
    mc = ma * mb;
    check(is_expected(mc.data()), "eigen: 2x2 product");
  }
#endif
#if defined(ROSETTA_HAS_BLIS)
  {
    ++backends;
    float c[4] = {0, 0, 0, 0};
    float alpha = 1.0f, beta = 0.0f;
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, 2, 2, 2, &alpha, const_cast<float*>(a), 2, 1,
              const_cast<float*>(b), 2, 1, &beta, c, 2, 1);
    std::printf("blis version: %s\n", bli_info_get_version_str());
    check(is_expected(c), "blis: bli_sgemm 2x2 product");
  }
#endif
#if defined(ROSETTA_HAS_CBLAS)
  {
    ++backends;
    std::printf("ROSETTA_CBLAS_LIBRARY: %s\n", ROSETTA_CBLAS_LIBRARY);
    void* handle = dlopen(ROSETTA_CBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    check(handle != nullptr, "cblas: dlopen(ROSETTA_CBLAS_LIBRARY)");
    if (handle != nullptr) {
      using sgemm_fn = decltype(&cblas_sgemm);
      auto sgemm = reinterpret_cast<sgemm_fn>(dlsym(handle, "cblas_sgemm"));
      check(sgemm != nullptr, "cblas: dlsym(cblas_sgemm)");
      check(dlsym(handle, "openblas_get_config") != nullptr, "cblas: library is OpenBLAS");
      Dl_info info{};
      char real[PATH_MAX];
      bool same_file = sgemm != nullptr && dladdr(reinterpret_cast<void*>(sgemm), &info) != 0 &&
                       realpath(info.dli_fname, real) != nullptr &&
                       std::strcmp(real, ROSETTA_CBLAS_LIBRARY) == 0;
      check(same_file, "cblas: cblas_sgemm resolves into ROSETTA_CBLAS_LIBRARY");
      if (sgemm != nullptr) {
        float c[4] = {0, 0, 0, 0};
        sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
        check(is_expected(c), "cblas: OpenBLAS cblas_sgemm 2x2 product");
      }
    }
  }
#endif
  std::printf("%d backend(s) checked, %d failure(s)\n", backends, failures);
  return failures == 0 ? 0 : 1;
}
