// The BLAS backends of the atlas, for the kernels that map onto BLAS level 1/2/3 (plus
// OpenBLAS's ?omatcopy and BLIS's ?copym for the transpose):
//   l2norm (nrm2), absmax (i?amax), asum, axpy, scale (scal), copy, dot, cosine (dot + 2
//   nrm2), clip_global_norm (nrm2, then copy + scal / scal2v), gemv, gemm, gemm_batched (one
//   gemm call per 16 x 16 matrix), outer (ger), transpose.
//
// openblas: entry points taken with dlsym() from the OpenBLAS shared object named by
//   ROSETTA_CBLAS_LIBRARY (rosetta::cblas), exactly as backend/cblas.hpp does, so libblis's
//   cblas_* exports can never capture the calls. Needs ROSETTA_HAS_CBLAS.
// blis: BLIS's typed API (bli_s*), whose symbols exist only in libblis. Needs ROSETTA_HAS_BLIS.
// Both are pinned to default_blas_threads() (1 unless ROSETTA_BLAS_THREADS says otherwise)
// at first use.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <string>

#include "rosetta/atlas/core.hpp"
#include "rosetta/atlas/naive.hpp"
#include "rosetta/backend/threads.hpp"

#ifdef ROSETTA_HAS_CBLAS
#include <dlfcn.h>

#include <stdexcept>
#include <string>
#ifndef ROSETTA_CBLAS_LIBRARY
#define ROSETTA_CBLAS_LIBRARY "libopenblas.so.0"
#endif
#endif

#ifdef ROSETTA_HAS_BLIS
#include <blis.h>
#endif

namespace rosetta::atlas {

#ifdef ROSETTA_HAS_CBLAS
namespace openblas_impl {

// CBLAS ABI constants and the entry points used (OpenBLAS with 32-bit integers).
inline constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
struct Table {
  float (*sdot)(int, const float*, int, const float*, int);
  float (*snrm2)(int, const float*, int);
  float (*sasum)(int, const float*, int);
  std::size_t (*isamax)(int, const float*, int);
  void (*saxpy)(int, float, const float*, int, float*, int);
  void (*sscal)(int, float, float*, int);
  void (*scopy)(int, const float*, int, float*, int);
  void (*sgemv)(int, int, int, int, float, const float*, int, const float*, int, float, float*,
                int);
  void (*sger)(int, int, int, float, const float*, int, const float*, int, float*, int);
  void (*sgemm)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                float*, int);
  void (*somatcopy)(int, int, int, int, float, const float*, int, float*, int);
  void (*set_threads)(int);
  char* (*get_config)();
};

inline const Table& table() {
  static const Table t = [] {
    void* h = ::dlopen(ROSETTA_CBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!h) throw std::runtime_error(std::string("atlas: cannot load ") + ROSETTA_CBLAS_LIBRARY);
    auto sym = [h](const char* s) {
      void* p = ::dlsym(h, s);
      if (!p) throw std::runtime_error(std::string("atlas: OpenBLAS has no ") + s);
      return p;
    };
    Table r{};
    r.sdot = reinterpret_cast<decltype(r.sdot)>(sym("cblas_sdot"));
    r.snrm2 = reinterpret_cast<decltype(r.snrm2)>(sym("cblas_snrm2"));
    r.sasum = reinterpret_cast<decltype(r.sasum)>(sym("cblas_sasum"));
    r.isamax = reinterpret_cast<decltype(r.isamax)>(sym("cblas_isamax"));
    r.saxpy = reinterpret_cast<decltype(r.saxpy)>(sym("cblas_saxpy"));
    r.sscal = reinterpret_cast<decltype(r.sscal)>(sym("cblas_sscal"));
    r.scopy = reinterpret_cast<decltype(r.scopy)>(sym("cblas_scopy"));
    r.sgemv = reinterpret_cast<decltype(r.sgemv)>(sym("cblas_sgemv"));
    r.sger = reinterpret_cast<decltype(r.sger)>(sym("cblas_sger"));
    r.sgemm = reinterpret_cast<decltype(r.sgemm)>(sym("cblas_sgemm"));
    r.somatcopy = reinterpret_cast<decltype(r.somatcopy)>(sym("cblas_somatcopy"));
    r.set_threads = reinterpret_cast<decltype(r.set_threads)>(sym("openblas_set_num_threads"));
    r.get_config = reinterpret_cast<decltype(r.get_config)>(sym("openblas_get_config"));
    r.set_threads(backend::default_blas_threads());
    return r;
  }();
  return t;
}
inline int i(std::size_t n) {
  return static_cast<int>(n);
}

}  // namespace openblas_impl

/// OpenBLAS's configuration string ("OpenBLAS 0.3.21 DYNAMIC_ARCH ... SkylakeX ...").
inline std::string openblas_config() {
  return openblas_impl::table().get_config();
}

inline void register_openblas(Registry& r) {
  using namespace openblas_impl;
  using B = Buffers;
  constexpr auto O = Backend::openblas;
  table();  // load now: a missing symbol is an error at registration, not in a timing loop
  r.impl("l2norm", O, [](B& b) { b.s[0] = table().snrm2(i(b.shape.len), b.a.data(), 1); });
  r.impl("absmax", O,
         [](B& b) { b.s[0] = std::fabs(b.a[table().isamax(i(b.shape.len), b.a.data(), 1)]); });
  r.impl("asum", O, [](B& b) { b.s[0] = table().sasum(i(b.shape.len), b.a.data(), 1); });
  r.impl("axpy", O,
         [](B& b) { table().saxpy(i(b.shape.len), b.p[0], b.a.data(), 1, b.b.data(), 1); });
  r.impl("scale", O, [](B& b) { table().sscal(i(b.shape.len), b.p[0], b.a.data(), 1); });
  r.impl("copy", O, [](B& b) { table().scopy(i(b.shape.len), b.a.data(), 1, b.b.data(), 1); });
  r.impl("dot", O,
         [](B& b) { b.s[0] = table().sdot(i(b.shape.len), b.a.data(), 1, b.b.data(), 1); });
  r.impl("cosine", O, [](B& b) {
    const int n = i(b.shape.len);
    const auto& t = table();
    b.s[0] = t.sdot(n, b.a.data(), 1, b.b.data(), 1) /
             (t.snrm2(n, b.a.data(), 1) * t.snrm2(n, b.b.data(), 1));
  });
  r.impl("clip_global_norm", O, [](B& b) {
    const int n = i(b.shape.len);
    const auto& t = table();
    const float norm = t.snrm2(n, b.a.data(), 1);
    t.scopy(n, b.a.data(), 1, b.b.data(), 1);
    t.sscal(n, clip_scale(norm, b.p[0]), b.b.data(), 1);
    b.s[0] = norm;
  });
  r.impl("gemv", O, [](B& b) {
    const auto& s = b.shape;
    table().sgemv(kRowMajor, kNoTrans, i(s.rows), i(s.cols), 1.0f, b.a.data(), i(s.cols),
                  b.b.data(), 1, 0.0f, b.c.data(), 1);
  });
  r.impl("gemm", O, [](B& b) {
    const auto& s = b.shape;
    table().sgemm(kRowMajor, kNoTrans, kNoTrans, i(s.rows), i(s.cols), i(s.inner), 1.0f, b.a.data(),
                  i(s.inner), b.b.data(), i(s.cols), 0.0f, b.c.data(), i(s.cols));
  });
  r.impl("gemm_batched", O, [](B& b) {
    const auto& t = table();
    for (std::size_t m = 0; m < b.shape.batch; ++m)
      t.sgemm(kRowMajor, kNoTrans, kNoTrans, 16, 16, 16, 1.0f, b.a.data() + m * 256, 16,
              b.b.data() + m * 256, 16, 0.0f, b.c.data() + m * 256, 16);
  });
  r.impl("outer", O, [](B& b) {
    const auto& s = b.shape;
    table().sger(kRowMajor, i(s.rows), i(s.cols), b.p[0], b.b.data(), 1, b.c.data(), 1, b.a.data(),
                 i(s.cols));
  });
  r.impl("transpose", O, [](B& b) {
    const auto& s = b.shape;
    table().somatcopy(kRowMajor, kTrans, i(s.rows), i(s.cols), 1.0f, b.a.data(), i(s.cols),
                      b.b.data(), i(s.rows));
  });
}
#endif  // ROSETTA_HAS_CBLAS

#ifdef ROSETTA_HAS_BLIS
namespace blis_impl {

inline void init() {
  static std::once_flag once;
  std::call_once(once, [] { bli_thread_set_num_threads(backend::default_blas_threads()); });
}
inline dim_t dm(std::size_t n) {
  return static_cast<dim_t>(n);
}
inline inc_t in(std::size_t n) {
  return static_cast<inc_t>(n);
}
// BLIS 0.9 takes non-const pointers for inputs too.
inline float* p(const float* x) {
  return const_cast<float*>(x);
}

}  // namespace blis_impl

/// "0.9.0 (zen3)": BLIS's version and the kernel set it chose for this CPU.
inline std::string blis_version() {
  return std::string(bli_info_get_version_str()) + " (" + bli_arch_string(bli_arch_query_id()) +
         ")";
}

inline void register_blis(Registry& r) {
  using namespace blis_impl;
  using B = Buffers;
  constexpr auto L = Backend::blis;
  init();
  r.impl("l2norm", L, [](B& b) { bli_snormfv(dm(b.shape.len), b.a.data(), 1, &b.s[0]); });
  r.impl("absmax", L, [](B& b) {
    dim_t idx = 0;
    bli_samaxv(dm(b.shape.len), b.a.data(), 1, &idx);
    b.s[0] = std::fabs(b.a[static_cast<std::size_t>(idx)]);
  });
  r.impl("asum", L, [](B& b) { bli_sasumv(dm(b.shape.len), b.a.data(), 1, &b.s[0]); });
  r.impl("axpy", L, [](B& b) {
    bli_saxpyv(BLIS_NO_CONJUGATE, dm(b.shape.len), &b.p[0], b.a.data(), 1, b.b.data(), 1);
  });
  r.impl("scale", L,
         [](B& b) { bli_sscalv(BLIS_NO_CONJUGATE, dm(b.shape.len), &b.p[0], b.a.data(), 1); });
  r.impl("copy", L, [](B& b) {
    bli_scopyv(BLIS_NO_CONJUGATE, dm(b.shape.len), b.a.data(), 1, b.b.data(), 1);
  });
  r.impl("dot", L, [](B& b) {
    bli_sdotv(BLIS_NO_CONJUGATE, BLIS_NO_CONJUGATE, dm(b.shape.len), b.a.data(), 1, b.b.data(), 1,
              &b.s[0]);
  });
  r.impl("cosine", L, [](B& b) {
    const dim_t n = dm(b.shape.len);
    float ab = 0, na = 0, nb = 0;
    bli_sdotv(BLIS_NO_CONJUGATE, BLIS_NO_CONJUGATE, n, b.a.data(), 1, b.b.data(), 1, &ab);
    bli_snormfv(n, b.a.data(), 1, &na);
    bli_snormfv(n, b.b.data(), 1, &nb);
    b.s[0] = ab / (na * nb);
  });
  r.impl("clip_global_norm", L, [](B& b) {
    const dim_t n = dm(b.shape.len);
    float norm = 0;
    bli_snormfv(n, b.a.data(), 1, &norm);
    float k = clip_scale(norm, b.p[0]);
    bli_sscal2v(BLIS_NO_CONJUGATE, n, &k, b.a.data(), 1, b.b.data(), 1);  // b = k a
    b.s[0] = norm;
  });
  r.impl("gemv", L, [](B& b) {
    const auto& s = b.shape;
    float one = 1, zero = 0;
    bli_sgemv(BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, dm(s.rows), dm(s.cols), &one, b.a.data(),
              in(s.cols), 1, b.b.data(), 1, &zero, b.c.data(), 1);
  });
  r.impl("gemm", L, [](B& b) {
    const auto& s = b.shape;
    float one = 1, zero = 0;
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, dm(s.rows), dm(s.cols), dm(s.inner), &one,
              b.a.data(), in(s.inner), 1, b.b.data(), in(s.cols), 1, &zero, b.c.data(), in(s.cols),
              1);
  });
  r.impl("gemm_batched", L, [](B& b) {
    float one = 1, zero = 0;
    for (std::size_t m = 0; m < b.shape.batch; ++m)
      bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, 16, 16, 16, &one, b.a.data() + m * 256, 16, 1,
                b.b.data() + m * 256, 16, 1, &zero, b.c.data() + m * 256, 16, 1);
  });
  r.impl("outer", L, [](B& b) {
    const auto& s = b.shape;
    bli_sger(BLIS_NO_CONJUGATE, BLIS_NO_CONJUGATE, dm(s.rows), dm(s.cols), &b.p[0], b.b.data(), 1,
             b.c.data(), 1, b.a.data(), in(s.cols), 1);
  });
  r.impl("transpose", L, [](B& b) {
    // B (cols x rows, row-major) = A^T: read A through swapped strides (row stride 1,
    // column stride = A's row length).
    const auto& s = b.shape;
    bli_scopym(0, BLIS_NONUNIT_DIAG, BLIS_DENSE, BLIS_NO_TRANSPOSE, dm(s.cols), dm(s.rows),
               p(b.a.data()), 1, in(s.cols), b.b.data(), in(s.rows), 1);
  });
}
#endif  // ROSETTA_HAS_BLIS

}  // namespace rosetta::atlas
