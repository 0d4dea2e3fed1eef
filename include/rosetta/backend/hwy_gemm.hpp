// backend::HwyGemm: our own gemm on Google Highway, with static dispatch: the code is compiled
// for whatever -march the including translation unit has (AVX-512 with -march=native on the
// development machine). Needs ROSETTA_HAS_HWY (link rosetta::hwy; rosetta::all links it when
// Highway is found). It is a routing target of backend::Auto ("hwy"), deliberately not in
// backend::Available (see backend/auto.hpp).
//
// Same contract as every backend (backend/common.hpp): C <- alpha op(A) op(B) + beta C, beta == 0
// makes C write-only, empty operands, any leading dimensions, both layouts.
//
// Blocking scheme (one thread, row-major; a ColMajor product is run as the row-major product
// C^T = op(B)^T op(A)^T, which reads the same memory with the operands and ops swapped):
//
//   for each block of kNc columns of C                       (j0)
//     for each block of kKc steps of the inner dimension     (p0)
//       for each panel q of NR = kNv vectors' worth of columns (kc x NR values, sized for L1)
//         pack op(B)[p0.., j0 + q NR..] into the panel: kc rows of NR contiguous values,
//         zero-padded past the last column, so the micro-kernel has no column tails and reads B
//         at unit stride; packing is where op(B) = B^T is transposed (8x8 blocks in 256-bit
//         registers, 4x4 / 2x2 in 128-bit ones). Packed just before use, the panel is still
//         in L1 (op(B) = B with few row blocks of C is read in place instead: kDirectRowBlocks).
//         for each block of kMr rows of C: the micro-kernel, which also prefetches a share of
//           the next panel's source, one cache line per inner step, and the C lines of the
//           next row block
//
//   micro-kernel: a kMr x NR block of C in kMr * kNv vector registers; per inner step p it
//   loads kNv vectors of the panel and broadcasts one element of op(A) per row
//   (acc[r][v] += a(r, p) * b(p, v)). op(A) is not packed: a broadcast reads any address, so
//   op(A) = A and op(A) = A^T are both read in place (two pointers, for rows 0-3 and 4-7,
//   indexed by 0, 1, 2 and 3 row strides and advanced by one step's stride). Then C <- alpha acc +
//   beta C for the first k-block, C += alpha acc for the others; columns past the end of C go
//   through a small stack buffer. Rows past the last whole block of kMr use a micro-kernel
//   instantiated for that many rows.
//
// The packed panels live in a thread_local buffer that only grows: no allocation per call in
// the steady state.
#pragma once

#ifdef ROSETTA_HAS_HWY

// Highway 1.0.3 refuses -march=native on AVX3_DL CPUs unless this is set (see hwy_static.hpp).
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1
#endif

#include <hwy/highway.h>
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "rosetta/backend/common.hpp"
#include "rosetta/core/aligned.hpp"

HWY_BEFORE_NAMESPACE();
namespace rosetta::backend::hwy_gemm::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// The blocking constants (see the top of this file). kMr x kNv is the register block:
/// kMr * kNv accumulators + kNv panel vectors + a broadcast fit the 32 AVX-512 registers.
/// kKc: inner steps per packed panel (kKc x kNv vectors of T, 32 KiB with AVX-512: one panel
/// stays in L1 while every row block of C runs over it). kNc: columns per packed block.
/// Chosen by timing 6x4, 8x2, 8x3, 4x4, 4x2, 6x2, 10x2 and 12x2 blocks and kKc 128/256/512 on
/// the model's shapes (64..512 rows, 64..1000 columns, inner 64..1024) on an AVX-512 CPU:
/// float 8 x 2 vectors (8 x 32 values), double 6 x 4 vectors (6 x 32 values).
/// op(B) = B is read in place, unpacked, when C has at most this many blocks of kMr rows.
inline constexpr std::size_t kDirectRowBlocks = 4;
/// ... and also when all of op(B) = B takes at most this many bytes (fits in L1).
inline constexpr std::size_t kDirectBytes = 32 * 1024;

template <class T>
struct Blocking;
template <>
struct Blocking<float> {
  static constexpr std::size_t kMr = 8, kNv = 2, kKc = 256, kNc = 1024;
};
template <>
struct Blocking<double> {
  static constexpr std::size_t kMr = 6, kNv = 4, kKc = 128, kNc = 1024;
};

// ---- packing op(B) --------------------------------------------------------------------------

#if HWY_TARGET != HWY_SCALAR  // (HWY_SCALAR, e.g. plain -march=x86-64: scalar packing below)
/// Transposes a lanes x lanes block (4 x 4 floats or 2 x 2 doubles, one 128-bit register
/// per row): dst[c * ldd + r] = src[r * lds + c].
template <class T>
HWY_INLINE void Transpose128(const T* HWY_RESTRICT src, std::size_t lds, T* HWY_RESTRICT dst,
                             std::size_t ldd) {
  const hn::Full128<T> d;
  if constexpr (sizeof(T) == 4) {
    const auto r0 = hn::LoadU(d, src), r1 = hn::LoadU(d, src + lds);
    const auto r2 = hn::LoadU(d, src + 2 * lds), r3 = hn::LoadU(d, src + 3 * lds);
    const auto t0 = hn::InterleaveLower(d, r0, r1);                 // a0 b0 a1 b1
    const auto t1 = hn::InterleaveLower(d, r2, r3);                 // c0 d0 c1 d1
    const auto t2 = hn::InterleaveUpper(d, r0, r1);                 // a2 b2 a3 b3
    const auto t3 = hn::InterleaveUpper(d, r2, r3);                 // c2 d2 c3 d3
    hn::StoreU(hn::ConcatLowerLower(d, t1, t0), d, dst);            // a0 b0 c0 d0
    hn::StoreU(hn::ConcatUpperUpper(d, t1, t0), d, dst + ldd);      // a1 b1 c1 d1
    hn::StoreU(hn::ConcatLowerLower(d, t3, t2), d, dst + 2 * ldd);  // a2 b2 c2 d2
    hn::StoreU(hn::ConcatUpperUpper(d, t3, t2), d, dst + 3 * ldd);  // a3 b3 c3 d3
  } else {
    const auto r0 = hn::LoadU(d, src), r1 = hn::LoadU(d, src + lds);
    hn::StoreU(hn::InterleaveLower(d, r0, r1), d, dst);        // a0 b0
    hn::StoreU(hn::InterleaveUpper(d, r0, r1), d, dst + ldd);  // a1 b1
  }
}

#if HWY_CAP_GE256
/// Transposes an 8 x 8 block of floats (one 256-bit register per row):
/// dst[c * ldd + r] = src[r * lds + c]. Interleaves 32-bit lanes, then 64-bit lanes (both
/// within 128-bit blocks), then combines 128-bit halves: 40 operations for 64 values, against
/// 64 for four 4 x 4 blocks.
HWY_INLINE void Transpose256(const float* HWY_RESTRICT src, std::size_t lds,
                             float* HWY_RESTRICT dst, std::size_t ldd) {
  const hn::Full256<float> d;
  const hn::Repartition<double, decltype(d)> dd;
  using V = hn::Vec<decltype(d)>;
  V t[8], u[8];
  for (std::size_t r = 0; r < 8; r += 2) {  // rows a..h: t[r] = a0 b0 a1 b1 | a4 b4 a5 b5
    const V x = hn::LoadU(d, src + r * lds), y = hn::LoadU(d, src + (r + 1) * lds);
    t[r] = hn::InterleaveLower(d, x, y);
    t[r + 1] = hn::InterleaveUpper(d, x, y);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (std::size_t r = 0; r < 8; r += 4)  // u[r] = a0 b0 c0 d0 | a4 b4 c4 d4, u[r+1] = a1.. | a5..
    for (std::size_t h = 0; h < 2; ++h) {
      const auto x = hn::BitCast(dd, t[r + h]), y = hn::BitCast(dd, t[r + 2 + h]);
      u[r + 2 * h] = hn::BitCast(d, hn::InterleaveLower(dd, x, y));
      u[r + 2 * h + 1] = hn::BitCast(d, hn::InterleaveUpper(dd, x, y));
    }
  for (std::size_t c = 0; c < 4; ++c) {  // column c: a..d from u[c], e..h from u[4 + c]
    hn::StoreU(hn::ConcatLowerLower(d, u[4 + c], u[c]), d, dst + c * ldd);
    hn::StoreU(hn::ConcatUpperUpper(d, u[4 + c], u[c]), d, dst + (c + 4) * ldd);
  }
}
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
/// Transposes a 16 x 8 block of floats into 8 rows of 16 (one 512-bit register each):
/// dst[c * ldd + r] = src[r * lds + c], r < 16, c < 8 — one whole panel vector per row of dst.
/// Row r and row r + 8 share a register (low and high 256 bits), then the 8 x 8 steps of
/// Transpose256 run on both halves at once and a two-table permute picks the 128-bit blocks:
/// 32 shuffles and 8 stores for 128 values, against 48 and 16 for two 8 x 8 blocks.
HWY_INLINE void Transpose16x8(const float* HWY_RESTRICT src, std::size_t lds,
                              float* HWY_RESTRICT dst, std::size_t ldd) {
  __m512 t[8], u[8];
  for (std::size_t r = 0; r < 8; r += 2) {  // t[r] = a0 b0 a1 b1 | a4 b4 a5 b5 | i0 j0 i1 j1 | ..
    const __m512 x = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(src + r * lds)),
                                        _mm256_loadu_ps(src + (r + 8) * lds), 1);
    const __m512 y =
        _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(src + (r + 1) * lds)),
                           _mm256_loadu_ps(src + (r + 9) * lds), 1);
    t[r] = _mm512_unpacklo_ps(x, y);
    t[r + 1] = _mm512_unpackhi_ps(x, y);
  }
  for (std::size_t r = 0; r < 8; r += 4)  // u[r] = a0 b0 c0 d0 | a4 .. d4 | i0 .. l0 | i4 .. l4
    for (std::size_t h = 0; h < 2; ++h) {
      const __m512d x = _mm512_castps_pd(t[r + h]), y = _mm512_castps_pd(t[r + 2 + h]);
      u[r + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
      u[r + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
    }
  // column c: blocks 0 and 2 of u[c] (a..d, i..l) and of u[4 + c] (e..h, m..p); c + 4: 1 and 3
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (std::size_t c = 0; c < 4; ++c) {
    _mm512_storeu_ps(dst + c * ldd, _mm512_permutex2var_ps(u[c], lo, u[4 + c]));
    _mm512_storeu_ps(dst + (c + 4) * ldd, _mm512_permutex2var_ps(u[c], hi, u[4 + c]));
  }
}
#endif

#endif

/// Packs op(B)(p0 + p, j0 + j), p < kc, j < nc, into panels of nr columns:
/// bp[q * kc * nr + p * nr + jj] = op(B)(p0 + p, j0 + q * nr + jj), zero where j >= nc.
/// op(B) = B: B is K x N, row p at B + p * ldb. op(B) = B^T: B is N x K, column j of op(B) is
/// row j of B (contiguous in p), so each panel is a transpose.
template <class T>
HWY_INLINE void PackB(Op opB, const T* HWY_RESTRICT B, std::size_t ldb, std::size_t p0,
                      std::size_t kc, std::size_t j0, std::size_t nc, std::size_t nr,
                      T* HWY_RESTRICT bp) {
  for (std::size_t q = 0; q * nr < nc; ++q) {
    const std::size_t jq = j0 + q * nr, w = std::min(nr, nc - q * nr);
    T* panel = bp + q * kc * nr;
    if (opB == Op::N) {
#if HWY_TARGET != HWY_SCALAR
      if (w == nr) {  // whole panel rows: vector copies (memcpy calls of nr values cost 2x)
        const hn::ScalableTag<T> d;
        const std::size_t N = hn::Lanes(d);
        for (std::size_t p = 0; p < kc; ++p)
          for (std::size_t v = 0; v < nr; v += N)
            hn::StoreU(hn::LoadU(d, B + (p0 + p) * ldb + jq + v), d, panel + p * nr + v);
        continue;
      }
#endif
      for (std::size_t p = 0; p < kc; ++p) {
        std::memcpy(panel + p * nr, B + (p0 + p) * ldb + jq, w * sizeof(T));
        std::fill(panel + p * nr + w, panel + (p + 1) * nr, T(0));
      }
      continue;
    }
    if (w < nr)
      for (std::size_t p = 0; p < kc; ++p)
        std::fill(panel + p * nr + w, panel + (p + 1) * nr, T(0));
    const T* src = B + jq * ldb + p0;  // src[j * ldb + p] = op(B)(p0 + p, jq + j)
#if HWY_TARGET != HWY_SCALAR
    std::size_t j = 0;
    // Columns j.. in groups of `cols` (rows of B), `steps` values of p per transposed block,
    // the last p < kc one at a time; each block size takes what the wider ones left.
    auto in_blocks = [&](std::size_t cols, std::size_t steps, auto&& transpose) {
      for (; j + cols <= w; j += cols) {
        std::size_t p = 0;
        for (; p + steps <= kc; p += steps) transpose(src + j * ldb + p, panel + p * nr + j);
        for (; p < kc; ++p)
          for (std::size_t jj = j; jj < j + cols; ++jj) panel[p * nr + jj] = src[jj * ldb + p];
      }
    };
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    if constexpr (sizeof(T) == 4)
      in_blocks(16, 8, [&](const T* s, T* d) { Transpose16x8(s, ldb, d, nr); });
#endif
#if HWY_CAP_GE256
    if constexpr (sizeof(T) == 4)
      in_blocks(8, 8, [&](const T* s, T* d) { Transpose256(s, ldb, d, nr); });
#endif
    constexpr std::size_t t = 16 / sizeof(T);  // the transposed block: t x t
    in_blocks(t, t, [&](const T* s, T* d) { Transpose128(s, ldb, d, nr); });
    for (; j < w; ++j)
      for (std::size_t p = 0; p < kc; ++p) panel[p * nr + j] = src[j * ldb + p];
#else
    for (std::size_t j = 0; j < w; ++j)
      for (std::size_t p = 0; p < kc; ++p) panel[p * nr + j] = src[j * ldb + p];
#endif
  }
}

// ---- the micro-kernel -----------------------------------------------------------------------

/// C[0..R) x [0..ncols) <- alpha * (op(A) rows x packed panel) + beta * C (beta == 0: C is not
/// read). op(A)(r, p) = a[r * rs + p * ps]; the panel holds kc rows of kNv vectors.
/// Cache lines to prefetch while a micro-kernel runs: `rows` rows of `cols` values, row r at
/// src + r * ld, one line per call of Next() (a null src: nothing to prefetch).
template <class T>
struct PrefetchLines {
  const T* src = nullptr;
  std::size_t ld = 0, cols = 0, rows = 0, col = 0;
  HWY_INLINE void Next() {
    if (rows == 0) return;
    __builtin_prefetch(src + col, 0, 3);
    col += 64 / sizeof(T);
    if (col >= cols) col = 0, src += ld, --rows;
  }
};

template <class T, std::size_t R, std::size_t NV, bool PF = false>
HWY_INLINE void MicroKernel(const T* HWY_RESTRICT a, std::size_t rs, std::size_t ps,
                            const T* HWY_RESTRICT panel, std::size_t pstride, std::size_t kc,
                            T* HWY_RESTRICT c, std::size_t ldc, std::size_t ncols, T alpha, T beta,
                            PrefetchLines<T>* pfl = nullptr, const T* c_next = nullptr) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const std::size_t N = hn::Lanes(d);
  V acc[R][NV];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  // op(A)(r, p) through two moving pointers (rows 0-3 and 4-7) and the strides rs, 2 rs, 3 rs:
  // x86 addresses base + index * {4, 8} — four registers, where a pointer per row took eight
  // and the rest of the loop's state spilled into vector registers.
  const T* a0 = a;
  const T* a4 = R > 4 ? a + 4 * rs : a;
  const std::size_t rs3 = 3 * rs;
  auto at = [&](std::size_t r) HWY_ATTR -> T {  // r is a constant once the loops unroll
    const T* base = r < 4 ? a0 : a4;
    switch (r & 3) {
      case 0:
        return base[0];
      case 1:
        return base[rs];
      case 2:
        return base[2 * rs];
      default:
        return base[rs3];
    }
  };
  if (c_next != nullptr)  // the C lines of the next row block (see the caller)
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t v = 0; v < NV && v * N < ncols; ++v)
        __builtin_prefetch(c_next + r * ldc + v * N, 1, 3);
  for (std::size_t p = 0; p < kc; ++p, a0 += ps, a4 += ps, panel += pstride) {
    if constexpr (PF) pfl->Next();  // one line per step, spread over the kernel's FMAs
    V b[NV];
    for (std::size_t v = 0; v < NV; ++v) b[v] = hn::LoadU(d, panel + v * N);
    for (std::size_t r = 0; r < R; ++r) {
      const V x = hn::Set(d, at(r));
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(x, b[v], acc[r][v]);
    }
  }
  const V va = hn::Set(d, alpha), vb = hn::Set(d, beta);
  const bool read_c = beta != T(0);
  for (std::size_t r = 0; r < R; ++r) {
    T* cr = c + r * ldc;
    for (std::size_t v = 0; v < NV; ++v) {
      const std::size_t j = v * N;
      if (j >= ncols) break;
      V x = hn::Mul(acc[r][v], va);
      if (j + N <= ncols) {
        if (read_c) x = hn::MulAdd(hn::LoadU(d, cr + j), vb, x);
        hn::StoreU(x, d, cr + j);
      } else {  // the last columns of C: through a stack buffer, never past the end of a row
        HWY_ALIGN T tmp[hn::MaxLanes(hn::ScalableTag<T>())];
        hn::Store(x, d, tmp);
        for (std::size_t jj = 0; jj < ncols - j; ++jj)
          cr[j + jj] = read_c ? tmp[jj] + beta * cr[j + jj] : tmp[jj];
      }
    }
  }
}

/// The micro-kernel for the last rows < R of a column panel: dispatches on their number.
template <class T, std::size_t R, std::size_t NV>
HWY_INLINE void MicroKernelRows(std::size_t rows, const T* a, std::size_t rs, std::size_t ps,
                                const T* panel, std::size_t pstride, std::size_t kc, T* c,
                                std::size_t ldc, std::size_t ncols, T alpha, T beta) {
  if constexpr (R > 0) {
    if (rows == R)
      MicroKernel<T, R, NV>(a, rs, ps, panel, pstride, kc, c, ldc, ncols, alpha, beta);
    else
      MicroKernelRows<T, R - 1, NV>(rows, a, rs, ps, panel, pstride, kc, c, ldc, ncols, alpha,
                                    beta);
  }
}

/// The packed-panel buffer of this thread, grown when a call needs more (never shrunk).
template <class T>
T* PackBuffer(std::size_t n) {
  thread_local AlignedBuffer<T> buf;
  if (buf.size() < n) buf = AlignedBuffer<T>(n);
  return buf.data();
}

/// Row-major C (M x N, ldc) <- alpha op(A) op(B) + beta C; M, N, K >= 1. op(A) = A: A is
/// M x K (lda); op(A) = A^T: A is K x M. Likewise B. Blocking: see the top of this file.
template <class T, std::size_t MR = Blocking<T>::kMr, std::size_t NV = Blocking<T>::kNv,
          std::size_t KC = Blocking<T>::kKc, std::size_t NC = Blocking<T>::kNc>
HWY_NOINLINE void GemmRowMajor(Op opA, Op opB, std::size_t M, std::size_t N, std::size_t K, T alpha,
                               const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta,
                               T* C, std::size_t ldc) {
  const std::size_t nr = NV * hn::Lanes(hn::ScalableTag<T>());
  const std::size_t rs = opA == Op::N ? lda : 1, ps = opA == Op::N ? 1 : lda;
  const std::size_t nc_max = std::min(N, (NC + nr - 1) / nr * nr);
  T* bp = PackBuffer<T>(std::min(K, KC) * nr);  // one panel
  // op(B) = B read in place (rows of B are contiguous; only a partial last panel is packed)
  // when packing does not pay: few rows of C (each panel used by at most kDirectRowBlocks row
  // blocks — packing would copy all of B to use it a few times; with B cold in memory, the
  // weights in a training step, the copy cost more than the strided reads), or all of B fits
  // in L1 (kDirectBytes) so the strided reads hit L1 anyway (64^3: 2.49 -> 2.17 us). Up to
  // 4 row blocks: 32x256x64 5.1 -> 4.4 us, 32x64x256 4.7 -> 4.0 us (B in L2), and no slower
  // with 24 cold 1 MiB weights (dx = dy W of the small preset); 2 blocks before.
  const bool direct =
      opB == Op::N && (M <= kDirectRowBlocks * MR || K * N * sizeof(T) <= kDirectBytes);
  for (std::size_t j0 = 0; j0 < N; j0 += nc_max) {
    const std::size_t nc = std::min(nc_max, N - j0);
    for (std::size_t p0 = 0; p0 < K; p0 += KC) {
      const std::size_t kc = std::min(KC, K - p0);
      const T b0 = p0 == 0 ? beta : T(1);  // later k-blocks accumulate
      const T* a = A + p0 * ps;
      for (std::size_t q = 0; q * nr < nc; ++q) {
        const std::size_t ncols = std::min(nr, nc - q * nr);
        // Each panel is packed just before the row blocks that use it, so it is still in L1
        // when they read it (packing all panels of a block first sent them through L2/L3 when
        // op(B) is larger than L2: the weights of the small preset, 1 MiB each).
        const T* panel = bp;
        std::size_t pstride = nr;
        if (direct && ncols == nr) {
          panel = B + p0 * ldb + j0 + q * nr;
          pstride = ldb;
        } else {
          PackB(opB, B, ldb, p0, kc, j0 + q * nr, ncols, nr, bp);
        }
        T* c = C + j0 + q * nr;
        std::size_t i = 0;
        // Prefetch the source of the next panel to be packed while the row blocks compute on
        // this one: a share of its cache lines per row block, one line per inner step of the
        // micro-kernel (B cold in cache — weights larger than L2 — ran at ~110 instead of ~180
        // GFLOPS with no prefetch; issuing each block's share in one burst before it, 3.65 ms
        // for scale_forward_256 against 3.0 ms spread over the steps).
        std::size_t jn = j0 + (q + 1) * nr, pn = p0, kn = kc, wn = 0;
        if (jn < j0 + nc) {
          wn = std::min(nr, j0 + nc - jn);
        } else if (p0 + KC < K) {
          jn = j0, pn = p0 + KC, kn = std::min(KC, K - pn), wn = std::min(nr, nc);
        } else if (j0 + nc_max < N) {
          jn = j0 + nc_max, pn = 0, kn = std::min(KC, K), wn = std::min(nr, N - jn);
        }
        // No next panel to pack: nothing to prefetch (its source would point outside B).
        const bool pf = !direct && wn > 0;
        PrefetchLines<T> next;  // the next panel's source: rows of cols values, ldb apart
        std::size_t share = 0;
        if (pf) {
          next.src = opB == Op::T ? B + jn * ldb + pn : B + pn * ldb + jn;
          next.ld = ldb;
          next.rows = opB == Op::T ? wn : kn;
          next.cols = opB == Op::T ? kn : wn;
          const std::size_t blocks = (M + MR - 1) / MR;
          share = (next.rows + blocks - 1) / blocks;
        }
        // Each kernel prefetches (for writing) the C lines of the next whole row block: with C
        // cold in memory and a short inner dimension — weight gradients over a few tokens — the
        // loads of C (beta != 0) at the end of each kernel stalled on memory (scale_train_256
        // 15.9 -> 10.0 ms; issued from the caller before each kernel: ~11 ms), and so did the
        // stores once the gradients were written with beta = 0 instead (13.2 -> 11.3 ms).
        auto c_next = [&](std::size_t i0) -> const T* {
          return i0 + 2 * MR <= M ? c + (i0 + MR) * ldc : nullptr;
        };
        auto row_blocks = [&]<std::size_t V>() {
          for (; i + MR <= M; i += MR) {
            if (pf) {  // this block's share of the lines; what the steps left, issued after
              PrefetchLines<T> lines = next;
              lines.rows = std::min(share, next.rows);
              next.rows -= lines.rows, next.src += lines.rows * ldb;
              MicroKernel<T, MR, V, true>(a + i * rs, rs, ps, panel, pstride, kc, c + i * ldc, ldc,
                                          ncols, alpha, b0, &lines, c_next(i));
              while (lines.rows) lines.Next();
            } else {
              MicroKernel<T, MR, V>(a + i * rs, rs, ps, panel, pstride, kc, c + i * ldc, ldc, ncols,
                                    alpha, b0, nullptr, c_next(i));
            }
          }
          while (next.rows) next.Next();  // the rest before the last rows' kernel
          if (i < M)
            MicroKernelRows<T, MR - 1, V>(M - i, a + i * rs, rs, ps, panel, pstride, kc,
                                          c + i * ldc, ldc, ncols, alpha, b0);
        };
        // A panel of at most one vector of real columns (narrow C: the router's 4 columns, a
        // head's 16, K and V of the tiny preset) runs a one-vector kernel: half the FMAs.
        if (NV > 1 && ncols <= nr / NV)
          row_blocks.template operator()<1>();
        else
          row_blocks.template operator()<NV>();
      }
    }
  }
}

}  // namespace rosetta::backend::hwy_gemm::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

namespace rosetta::backend {

struct HwyGemm {
  static constexpr const char* name = "hwy";

  /// C <- alpha * op(A) * op(B) + beta * C  (see backend/common.hpp for the edge cases).
  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static void gemm(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A, MatrixView<TB, L> B,
                   scalar_arg<T> beta, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("HwyGemm::gemm", opA, opB, A, B, C);
    if (detail::gemm_trivial(d, beta, C)) return;
    namespace hg = hwy_gemm::HWY_NAMESPACE;
    if constexpr (L::is_row_major)
      hg::GemmRowMajor<T>(opA, opB, d.m, d.n, d.k, alpha, A.data(), A.ld(), B.data(), B.ld(), beta,
                          C.data(), C.ld());
    else  // column-major C is row-major C^T = op(B)^T op(A)^T over the same memory
      hg::GemmRowMajor<T>(opB, opA, d.n, d.m, d.k, alpha, B.data(), B.ld(), A.data(), A.ld(), beta,
                          C.data(), C.ld());
  }
};

}  // namespace rosetta::backend

#endif  // ROSETTA_HAS_HWY
