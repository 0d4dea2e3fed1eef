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
// Swapped (GemmSwapped, float with AVX-512): C = op(A) B^T with few rows of C (<= 64 tokens)
// against a weight B (N x K; the shapes: kSwap* below) is computed as C^T = B op(A)^T when the
// rows fill the vectors of C^T or leave a few to dot products (SwapPlan): B is then read in
// place as the broadcast operand and only op(A) is packed, instead of transposing all of B per
// call.
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
#include <cstdint>
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
/// B read in place is prefetched a panel ahead, like a panel to be packed, when it takes at
/// least this many bytes — more than L2 holds of it, so it comes from L3 or memory: training's
/// input gradients dY W on the small preset's 1 MiB weights (rows 1-4 KiB apart). Per shape
/// (1024 x 256 and 256 x 1024, 4-32 rows): 0.81-0.94x with weights cycled through 64 MB, but
/// 0.99-1.26x with one weight warm in L2, and `mem_train_step` (64-256 KiB weights) 2.4 %
/// slower when every B read in place was prefetched; so the tiny preset's weights are not.
inline constexpr std::size_t kDirectPrefetchBytes = 512 * 1024;
/// C = op(A) B^T runs swapped (GemmSwapped, SwapPlan) for at most this many rows of C, at least
/// kSwapMinCols columns and an inner dimension of at least kSwapMinK, when the rows fill their
/// vectors of C^T up to kSwapWaste lanes, or when the last M % lanes <= kDotRows rows can go to
/// dot products. Measured per shape on the model's products (M 1..64 against N x K of 1024 x
/// 256, 256 x 1024, 1000 x 256, 256 x 256, 1000 x 64, 256 x 64, weights in L3): 10-20 % faster
/// on those row counts, slower on the others (a partial vector of C^T costs a whole one) and
/// on the experts' 256 x 64 weights (the packing it saves is small there).
inline constexpr std::size_t kSwapRows = 64;
inline constexpr std::size_t kSwapMinCols = 128;
inline constexpr std::size_t kSwapMinK = 128;
/// ... or of at least kSwapWideMinK against at least kSwapWideCols columns (the tiny LM head,
/// 1000 x 64: 0.84-0.98x per product for 16-64 rows, where W1/W3's 256 x 64 lost 0-8 %;
/// `mem_train_step` -1.2 / -2.4 %, `dispatch_warm` -0.4 %, two sets of 8 interleaved rounds).
inline constexpr std::size_t kSwapWideMinK = 64;
inline constexpr std::size_t kSwapWideCols = 512;
inline constexpr std::size_t kSwapWaste = 3;
/// ... and up to kSwapWasteLongK lanes for an inner dimension of at least kSwapLongK (the small
/// preset's experts: 11, 25, 27 rows 0.82-0.92x per product, 24 rows 0.97-1.05x, 20 rows 1.0-1.1x;
/// measured again for kSwapFewRows below, 20 and 24 rows came out at 0.86-0.99x).
inline constexpr std::size_t kSwapLongK = 256;
inline constexpr std::size_t kSwapWasteLongK = 7;
/// ... and with any number of unused lanes for at most kSwapFewRows rows (one or two vectors
/// of C^T) against K >= kSwapLongK, unless the last M % lanes <= kSwapFewDots rows go to dot
/// products (1024 x 256 and 256 x 1024 weights cycled through 64 MB: a one- or two-vector
/// product costs about the same for any row count — streaming the weight — where the packed
/// path grows by row block and a dot-product row costs ~14 us per 1024 x 256: M = 3-8 0.70-0.96x,
/// 20-24 0.86-0.99x, 19 0.97x; 17-18 rows stay 16 + dots, 1.07-1.27x slower swapped whole).
/// At most kDotRows rows of op(A) = A are all dot products (since the dot products keep B in
/// registers and prefetch the next rows of B at their own pace; same weights: 3-4 rows
/// 0.84-0.96x from memory, 0.42-0.45x from L3; 5 rows 1.00x).
inline constexpr std::size_t kSwapFewRows = 32;
inline constexpr std::size_t kSwapFewDots = 2;
inline constexpr std::size_t kDotRows = 4;
/// ... and two and a half vectors (37-40 rows: the third a half vector, MicroKernel's HALF)
/// against K >= kSwapLongK, where the packed path ran: 0.90-0.98x per product (1024 x 256 and
/// 256 x 1024, weights from memory and from L3); 33-36 rows stay 32 + dots (1.04-1.16x as half
/// vectors), 53-56 packed (0.98-1.04x as 32 + a half panel: not taken).
inline constexpr std::size_t kSwapHalfRowsMin = 37, kSwapHalfRowsMax = 40;
/// ... and for at most kSwapFewRows rows whose last vector would hold lanes / 2 + 1..
/// kSwapHalfDots rows (9, 10, 25, 26 rows): a half vector and the 1-2 rows past it as dot
/// products, instead of a whole vector with 6-7 lanes unused: 0.76-0.96x per product (1024 x
/// 256 and 256 x 1024, from memory and from L3); with 3-4 dot rows (11, 12, 27, 28) 0.94-1.06x,
/// and for 41-42 rows 0.93-1.03x: not taken.
inline constexpr std::size_t kSwapHalfDots = 2;

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
/// The first two levels of a transpose of 8 registers a..h: 32-bit lanes of a,b / c,d / e,f /
/// g,h interleaved, then 64-bit lanes of those pairs, within each 128-bit block. u[j] (u[4 + j])
/// holds lane 4k + j of a..d (e..h) in block k, j < 4: a(4k+j) b(4k+j) c(4k+j) d(4k+j).
HWY_INLINE void Interleave8(const __m512 (&x)[8], __m512 (&u)[8]) {
  __m512 t[8];
  for (std::size_t r = 0; r < 8; r += 2) {  // t[r] = a0 b0 a1 b1 | .., t[r + 1] = a2 b2 a3 b3 | ..
    t[r] = _mm512_unpacklo_ps(x[r], x[r + 1]);
    t[r + 1] = _mm512_unpackhi_ps(x[r], x[r + 1]);
  }
  for (std::size_t r = 0; r < 8; r += 4)
    for (std::size_t h = 0; h < 2; ++h) {
      const __m512d p = _mm512_castps_pd(t[r + h]), q = _mm512_castps_pd(t[r + 2 + h]);
      u[r + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(p, q));
      u[r + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p, q));
    }
}

/// Transposes a 16 x 8 block of floats into 8 rows of 16 (one 512-bit register each):
/// dst[c * ldd + r] = src[r * lds + c], r < 16, c < 8 — one whole panel vector per row of dst.
/// Row r and row r + 8 share a register (low and high 256 bits), then the 8 x 8 steps of
/// Transpose256 run on both halves at once and a two-table permute picks the 128-bit blocks:
/// 32 shuffles and 8 stores for 128 values, against 48 and 16 for two 8 x 8 blocks.
HWY_INLINE void Transpose16x8(const float* HWY_RESTRICT src, std::size_t lds,
                              float* HWY_RESTRICT dst, std::size_t ldd) {
  __m512 x[8], u[8];
  for (std::size_t r = 0; r < 8; ++r)  // rows r (low half) and r + 8 (high half)
    x[r] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(src + r * lds)),
                              _mm256_loadu_ps(src + (r + 8) * lds), 1);
  Interleave8(x, u);  // u[c] = a0 b0 c0 d0 | a4 .. d4 | i0 .. l0 | i4 .. l4 for c = 0, ..
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
/// src + r * ld, one line per call of Next() (a null src: nothing to prefetch). Into L2
/// (prefetcht1), not L1: a prefetch to L1 holds one of L1's few miss buffers until its line
/// arrives, and a weight streamed from memory needs more lines in flight than those allow —
/// on the Zen 4, 11 rows against a 1024 x 256 weight cycled through 64 MB took 131-137 us with
/// prefetcht0 and 80 us with prefetcht1 (the same as with the weight in L2: 78 us); with
/// the weight in cache both are the same. The kernels' own loads bring the lines on to L1.
template <class T>
struct PrefetchLines {
  const T* src = nullptr;
  std::size_t ld = 0, cols = 0, rows = 0, col = 0;
  HWY_INLINE void Next() {
    if (rows == 0) return;
    __builtin_prefetch(src + col, 0, 2);
    col += 64 / sizeof(T);
    if (col >= cols) col = 0, src += ld, --rows;
  }
};

/// Row r < 8 of a block addressed through two moving pointers — base0 for rows 0-3, base4 for
/// rows 4-7 — and the strides rs and rs3 = 3 rs: x86 addresses base + index * {4, 8}, four
/// registers, where a pointer per row took eight and the rest of the loop's state spilled into
/// vector registers (MicroKernel's op(A), DotTile's B). r is a constant once the loops unroll.
template <class T>
HWY_INLINE const T* RowOf(const T* base0, const T* base4, std::size_t rs, std::size_t rs3,
                          std::size_t r) {
  const T* base = r < 4 ? base0 : base4;
  switch (r & 3) {
    case 0:
      return base;
    case 1:
      return base + rs;
    case 2:
      return base + 2 * rs;
    default:
      return base + rs3;
  }
}

/// HALF: the last of the NV vectors is a half vector (lanes / 2 columns; the panel is still
/// NV whole vectors wide, and C gets whole vectors' columns but the last half vector's): for a
/// panel whose real columns end in the first half of its last vector. On the Zen 4 a 512-bit
/// FMA takes both 256-bit FMA pipes for a cycle, a 256-bit one only one of them — half the
/// cost for the columns that are there (GemmSwapped).
/// stream: C's whole vectors written with non-temporal stores (64-byte aligned; beta == 0),
/// and c_next not prefetched (GemmRowMajor, kStreamBytes).
/// ssq: when not null, the sum of the squares of the values stored into C is added to it
/// (summed in T per call — at most R x NV vectors a lane — then added as a double); not with
/// HALF (GemmSwapped's kernels, whose C^T goes to a scratch: GemmRowMajor sums C after them).
template <class T, std::size_t R, std::size_t NV, bool PF = false, bool HALF = false>
HWY_INLINE void MicroKernel(const T* HWY_RESTRICT a, std::size_t rs, std::size_t ps,
                            const T* HWY_RESTRICT panel, std::size_t pstride, std::size_t kc,
                            T* HWY_RESTRICT c, std::size_t ldc, std::size_t ncols, T alpha, T beta,
                            PrefetchLines<T>* pfl = nullptr, const T* c_next = nullptr,
                            bool stream = false, double* ssq = nullptr) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const std::size_t N = hn::Lanes(d);
  constexpr std::size_t NF = HALF ? NV - 1 : NV;  // whole vectors
  const hn::Half<decltype(d)> dh;
  using VH = hn::Vec<decltype(dh)>;
  V acc[R][NF > 0 ? NF : 1];
  VH acch[R];
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t v = 0; v < NF; ++v) acc[r][v] = hn::Zero(d);
    if constexpr (HALF) acch[r] = hn::Zero(dh);
  }
  // op(A)(r, p) through two moving pointers (RowOf)
  const T* a0 = a;
  const T* a4 = R > 4 ? a + 4 * rs : a;
  const std::size_t rs3 = 3 * rs;
  if (c_next != nullptr && !stream)  // the C lines of the next row block (see the caller)
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t v = 0; v < NV && v * N < ncols; ++v)
        __builtin_prefetch(c_next + r * ldc + v * N, 1, 3);
  for (std::size_t p = 0; p < kc; ++p, a0 += ps, a4 += ps, panel += pstride) {
    if constexpr (PF) pfl->Next();  // one line per step, spread over the kernel's FMAs
    V b[NF > 0 ? NF : 1];
    for (std::size_t v = 0; v < NF; ++v) b[v] = hn::LoadU(d, panel + v * N);
    VH bh;
    if constexpr (HALF) bh = hn::LoadU(dh, panel + NF * N);
    for (std::size_t r = 0; r < R; ++r) {
      const T ar = *RowOf(a0, a4, rs, rs3, r);
      if constexpr (NF > 0) {
        const V x = hn::Set(d, ar);
        for (std::size_t v = 0; v < NF; ++v) acc[r][v] = hn::MulAdd(x, b[v], acc[r][v]);
        if constexpr (HALF) acch[r] = hn::MulAdd(hn::LowerHalf(dh, x), bh, acch[r]);
      } else {
        acch[r] = hn::MulAdd(hn::Set(dh, ar), bh, acch[r]);
      }
    }
  }
  const V va = hn::Set(d, alpha), vb = hn::Set(d, beta);
  const bool read_c = beta != T(0);
  V sq = hn::Zero(d);  // squares of what is stored (ssq)
  T sq_tail = T(0);
  if constexpr (HALF) {  // the half vector's columns (ncols reaches past them: whole vectors)
    const std::size_t j = NF * N;
    const VH vah = hn::Set(dh, alpha), vbh = hn::Set(dh, beta);
    for (std::size_t r = 0; r < R && j + N / 2 <= ncols; ++r) {
      T* cr = c + r * ldc;
      VH x = hn::Mul(acch[r], vah);
      if (read_c) x = hn::MulAdd(hn::LoadU(dh, cr + j), vbh, x);
      hn::StoreU(x, dh, cr + j);
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    T* cr = c + r * ldc;
    for (std::size_t v = 0; v < NF; ++v) {
      const std::size_t j = v * N;
      if (j >= ncols) break;
      V x = hn::Mul(acc[r][v], va);
      if (j + N <= ncols) {
        if (read_c) x = hn::MulAdd(hn::LoadU(d, cr + j), vb, x);
        if (stream)
          hn::Stream(x, d, cr + j);
        else
          hn::StoreU(x, d, cr + j);
        if (ssq != nullptr) sq = hn::MulAdd(x, x, sq);
      } else {  // the last columns of C: through a stack buffer, never past the end of a row
        HWY_ALIGN T tmp[hn::MaxLanes(hn::ScalableTag<T>())];
        hn::Store(x, d, tmp);
        for (std::size_t jj = 0; jj < ncols - j; ++jj) {
          const T y = read_c ? tmp[jj] + beta * cr[j + jj] : tmp[jj];
          cr[j + jj] = y;
          if (ssq != nullptr) sq_tail += y * y;
        }
      }
    }
  }
  if (ssq != nullptr) *ssq += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, sq)) + sq_tail);
}

/// The micro-kernel for the last rows < R of a column panel: dispatches on their number.
template <class T, std::size_t R, std::size_t NV>
HWY_INLINE void MicroKernelRows(std::size_t rows, const T* a, std::size_t rs, std::size_t ps,
                                const T* panel, std::size_t pstride, std::size_t kc, T* c,
                                std::size_t ldc, std::size_t ncols, T alpha, T beta,
                                double* ssq = nullptr) {
  if constexpr (R > 0) {
    if (rows == R)
      MicroKernel<T, R, NV>(a, rs, ps, panel, pstride, kc, c, ldc, ncols, alpha, beta, nullptr,
                            nullptr, false, ssq);
    else
      MicroKernelRows<T, R - 1, NV>(rows, a, rs, ps, panel, pstride, kc, c, ldc, ncols, alpha, beta,
                                    ssq);
  }
}

/// GemmRowMajor's packed path splits its last MR + r rows into two blocks when r < this.
inline constexpr std::size_t kMinLastRows = 4;

/// C = op(A) B with op(B) = B read in place, at most one row block of C and B of at least
/// kDirectPrefetchBytes (in a model, an input gradient dX = dY W over a few tokens, the weight
/// coming from memory) runs with k-blocks of kFewRowsKc instead of Blocking's KC: the panels
/// then walk each 64-row slab of B across all its columns before the next. Per shape, float,
/// weight cycled through 64 MB: 7 x 1024 x 256 130 -> 53 us, 7 x 256 x 1024 86 -> 50 us, 4 x
/// 1024 x 256 106 -> 55 us, 1 x 1024 x 256 65 -> 46 us, 8 x 256 x 1000 66 -> 53 us (k-blocks of
/// 32: about the same; 16: 75 us, 8: 98 us for the first); from L3 (16 MB) 0.82-1.27x (7 x 1024
/// x 256 45 -> 57 us). Not for whole row blocks: 12 rows 0.78x but 16-32 rows 1.11-1.13x.
inline constexpr std::size_t kFewRowsKc = 64;

/// C = A^T B (op(A) = A^T, op(B) = B) with one k-block (K <= KC) and beta == 0 — in a model,
/// a weight gradient dY^T X, written once and read again only by the optimizer — goes to
/// memory with non-temporal stores when C takes at least this many bytes (more than fits L2
/// next to its operands): no read for ownership of each line of C, nothing evicted. Per
/// shape, C cycled through 64 MB (the small preset's gradients), two runs: 1024 x 256 x 5 /
/// x 8 and 256 x 1024 x 8 0.82-0.88 / 0.88-0.92 / 0.79-0.82x; x 16, x 24 the same; with C in
/// cache 0.99-1.05x.
inline constexpr std::size_t kStreamBytes = std::size_t{1} << 20;

/// The packed-panel buffer of this thread, grown when a call needs more (never shrunk).
template <class T>
T* PackBuffer(std::size_t n) {
  thread_local AlignedBuffer<T> buf;
  if (buf.size() < n) buf = AlignedBuffer<T>(n);
  return buf.data();
}

// ---- the swapped product: C^T = B op(A)^T ----------------------------------------------------

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
/// Lane j of the result = the sum of the lanes of v[j], j < 16: pairs of vectors interleaved
/// and added (32-bit, then 64-bit lanes: each 128-bit block then holds the block sums of four
/// vectors), then blocks paired twice — 45 shuffles and adds for 16 sums.
HWY_INLINE __m512 ReduceSum16(const __m512 (&v)[16]) {
  __m512 s[8], q[4];
  for (std::size_t i = 0; i < 8; ++i)
    s[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                         _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (std::size_t i = 0; i < 4; ++i) {
    const __m512d x = _mm512_castps_pd(s[2 * i]), y = _mm512_castps_pd(s[2 * i + 1]);
    q[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  auto fold = [](__m512 x, __m512 y) HWY_ATTR {  // blocks (x0+x1, x2+x3, y0+y1, y2+y3)
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  return fold(fold(q[0], q[1]), fold(q[2], q[3]));
}
#endif

/// Rows of B per DotTile: the float row block of GemmSwapped.
inline constexpr std::size_t kDotCols = Blocking<float>::kMr;

/// c[x * cx + w * cw] <- sum_p a[x * lda + p] b[w * ldb + p] + beta * c[..], x < RX, w < nw <=
/// kDotCols, p < kc (beta == 0: c is not read): a few rows of A against rows of B, both read
/// in place along p — dot products, no packing. GemmSwapped's last rows of C. next: 4 rows of
/// B, ldb apart, or kDotCols (next8), prefetched at the same p as the step that reads b (or none).
template <class T, std::size_t RX>
HWY_INLINE void DotTile(const T* HWY_RESTRICT a, std::size_t lda, const T* HWY_RESTRICT b,
                        std::size_t ldb, std::size_t kc, std::size_t nw, T* HWY_RESTRICT c,
                        std::size_t cx, std::size_t cw, T beta, const T* next = nullptr,
                        bool next8 = true) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const std::size_t N = hn::Lanes(d);
  constexpr std::size_t RW = kDotCols;
  const bool read_c = beta != T(0);
  if (nw < RW) {  // the last rows of B: one dot product at a time
    for (std::size_t x = 0; x < RX; ++x)
      for (std::size_t w = 0; w < nw; ++w) {
        V acc = hn::Zero(d);
        std::size_t p = 0;
        for (; p + N <= kc; p += N)
          acc = hn::MulAdd(hn::LoadU(d, a + x * lda + p), hn::LoadU(d, b + w * ldb + p), acc);
        T sum = hn::GetLane(hn::SumOfLanes(d, acc));
        for (; p < kc; ++p) sum += a[x * lda + p] * b[w * ldb + p];
        T& o = c[x * cx + w * cw];
        o = read_c ? sum + beta * o : sum;
      }
    return;
  }
  V acc[RX][RW];
  for (std::size_t x = 0; x < RX; ++x)
    for (std::size_t w = 0; w < RW; ++w) acc[x][w] = hn::Zero(d);
  // rows of B through two moving pointers (RowOf)
  const T* b0 = b;
  const T* b4 = b + 4 * ldb;
  const T* a0 = a;
  const std::size_t rs3 = 3 * ldb;
  auto row = [&](std::size_t w) HWY_ATTR { return RowOf(b0, b4, ldb, rs3, w); };
  std::size_t p = 0;
  for (; p + N <= kc; p += N, a0 += N, b0 += N, b4 += N) {
    if (next != nullptr) {
      const T* n0 = next + p;
      const T* n4 = n0 + 4 * ldb;
      for (std::size_t w = 0; w < 4; ++w) __builtin_prefetch(RowOf(n0, n4, ldb, rs3, w), 0, 2);
      if (next8)
        for (std::size_t w = 4; w < RW; ++w) __builtin_prefetch(RowOf(n0, n4, ldb, rs3, w), 0, 2);
    }
    V bv[RW];
    for (std::size_t w = 0; w < RW; ++w) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
      // Kept in a register: GCC folded the load into each row's FMA instead, RX loads of B
      // per vector and load-bound (2 rows against 1024 x 256: 15.4 -> 11.6 us with B in L3,
      // 47-48 -> 38-43 us from memory; 34-35 rows, 3 of them here: 0.92-0.94x). The barrier
      // is on a plain local: on the array element, GCC kept bv in memory as well, eight
      // stores to the stack per step (16 rows as dots against 256 x 256: 17.2 -> 14.1 us).
      auto raw = hn::LoadU(d, row(w)).raw;
      if constexpr (RX > 1) asm("" : "+v"(raw));
      bv[w] = V{raw};
#else
      bv[w] = hn::LoadU(d, row(w));
#endif
    }
    for (std::size_t x = 0; x < RX; ++x) {
      const V av = hn::LoadU(d, a0 + x * lda);
      for (std::size_t w = 0; w < RW; ++w) acc[x][w] = hn::MulAdd(av, bv[w], acc[x][w]);
    }
  }
  if (p < kc) {  // the last partial vector: lanes past kc load 0
    const auto m = hn::FirstN(d, kc - p);
    V bv[RW];
    for (std::size_t w = 0; w < RW; ++w) bv[w] = hn::MaskedLoad(m, d, row(w));
    for (std::size_t x = 0; x < RX; ++x) {
      const V av = hn::MaskedLoad(m, d, a0 + x * lda);
      for (std::size_t w = 0; w < RW; ++w) acc[x][w] = hn::MulAdd(av, bv[w], acc[x][w]);
    }
  }
  HWY_ALIGN T out[RX * RW];
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if constexpr (sizeof(T) == 4 && RW == 8 && RX <= 2) {
    __m512 v[16];
    for (std::size_t j = 0; j < 16; ++j)
      v[j] = j / RW < RX ? acc[j / RW][j % RW].raw : _mm512_setzero_ps();
    HWY_ALIGN float all[16];
    _mm512_store_ps(all, ReduceSum16(v));
    std::memcpy(out, all, sizeof(out));
  } else
#endif
  {
    for (std::size_t x = 0; x < RX; ++x)
      for (std::size_t w = 0; w < RW; ++w)
        out[x * RW + w] = hn::GetLane(hn::SumOfLanes(d, acc[x][w]));
  }
  for (std::size_t x = 0; x < RX; ++x)
    for (std::size_t w = 0; w < RW; ++w) {
      T& o = c[x * cx + w * cw];
      o = read_c ? out[x * RW + w] + beta * o : out[x * RW + w];
    }
}

/// Transposes S (rows x cols, lds) into C: C[m * ldc + j] <- alpha S[j * lds + m] + beta
/// C[m * ldc + j] (beta == 0: C is not read) — GemmSwapped's C^T written out, 16 x 8 blocks
/// (AVX-512) that end in whole 16-value segments of the rows of C.
template <class T>
HWY_INLINE void TransposeOut(const T* HWY_RESTRICT S, std::size_t lds, std::size_t rows,
                             std::size_t cols, T* HWY_RESTRICT C, std::size_t ldc, T alpha,
                             T beta) {
  const bool read_c = beta != T(0);
  auto one = [&](std::size_t m, std::size_t jj) {
    T& c = C[m * ldc + jj];
    c = read_c ? alpha * S[jj * lds + m] + beta * c : alpha * S[jj * lds + m];
  };
  std::size_t m = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if constexpr (sizeof(T) == 4) {
    // Eight rows of C at a time, left to right: rows of C a power of two apart (ldc = 1024:
    // 4 KiB) share L1 sets, and writing a column strip down all rows thrashed them.
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    HWY_ALIGN float tmp[8 * 16];
    for (; m + 8 <= cols; m += 8) {
      std::size_t j = 0;
      for (; j + 16 <= rows; j += 16) {
        Transpose16x8(S + j * lds + m, lds, tmp, 16);
        for (std::size_t r = 0; r < 8; ++r) {
          float* c = C + (m + r) * ldc + j;
          __m512 x = _mm512_mul_ps(_mm512_load_ps(tmp + 16 * r), va);
          if (read_c) x = _mm512_fmadd_ps(_mm512_loadu_ps(c), vb, x);
          _mm512_storeu_ps(c, x);
        }
      }
      for (std::size_t r = m; r < m + 8; ++r)
        for (std::size_t jj = j; jj < rows; ++jj) one(r, jj);
    }
  }
#endif
  for (; m < cols; ++m)
    for (std::size_t jj = 0; jj < rows; ++jj) one(m, jj);
}

/// GemmSwapped's C^T for one row block of B written into C while it is in L1: S holds `rows`
/// (<= 8) rows of `cols` values (lds apart) and C[m * ldc + r] <- alpha S[r * lds + m] + beta
/// C[m * ldc + r] (beta == 0: C is not read). Eight rows as 8 x 16 transposes (AVX-512: two
/// unpack levels and a two-table permute, 24 shuffles per 128 values, each register then
/// holding two rows of C of 8 values); other counts and the last cols % 16 by TransposeOut.
template <class T>
HWY_INLINE void TransposeBlockOut(const T* HWY_RESTRICT S, std::size_t lds, std::size_t rows,
                                  std::size_t cols, T* HWY_RESTRICT C, std::size_t ldc, T alpha,
                                  T beta) {
  std::size_t m = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if constexpr (sizeof(T) == 4) {
    if (rows == 8) {
      const bool read_c = beta != T(0);
      const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
      // output register j, 128-bit block k: rows a..d then e..h of column 4k + j of S
      const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
      const __m512i hi =
          _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
      for (; m + 16 <= cols; m += 16) {
        __m512 x[8], u[8];
        for (std::size_t r = 0; r < 8; ++r) x[r] = _mm512_loadu_ps(S + r * lds + m);
        Interleave8(x, u);  // u[j] (u[4 + j]): a..d (e..h) of columns 4k + j
        for (std::size_t j = 0; j < 4; ++j) {
          const __m512 pair[2] = {_mm512_permutex2var_ps(u[j], lo, u[4 + j]),
                                  _mm512_permutex2var_ps(u[j], hi, u[4 + j])};
          for (std::size_t q = 0; q < 2; ++q) {  // rows m + 8q + j and m + 8q + 4 + j of C
            float* c0 = C + (m + 8 * q + j) * ldc;
            float* c1 = C + (m + 8 * q + 4 + j) * ldc;
            __m512 x = _mm512_mul_ps(pair[q], va);
            if (read_c) {
              const __m512 old = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(c0)),
                                                    _mm256_loadu_ps(c1), 1);
              x = _mm512_fmadd_ps(old, vb, x);
            }
            _mm256_storeu_ps(c0, _mm512_castps512_ps256(x));
            _mm256_storeu_ps(c1, _mm512_extractf32x8_ps(x, 1));
          }
        }
      }
    }
  }
#endif
  if (m < cols)  // the rest one value at a time (TransposeOut does that for fewer than 16 rows)
    TransposeOut(S + m, lds, rows, cols - m, C + m * ldc, ldc, alpha, beta);
}

/// GemmSwapped's micro-kernel for one panel against `rows` rows of B: MR rows prefetching
/// `lines` (the next row block of B) on the way, or the last rows < MR. A function of its own,
/// so that the prefetch state lives in registers (inlined into GemmSwapped's loops, GCC kept it
/// in memory and spilled the kernels' loop state: 1.5-2x slower).
template <class T, std::size_t MR, std::size_t V, bool HALF = false>
HWY_NOINLINE void SwappedBlock(std::size_t rows, const T* b, std::size_t ldb, const T* panel,
                               std::size_t nr, std::size_t kc, T* s, std::size_t lds, T beta,
                               PrefetchLines<T> lines) {
  const std::size_t w = V * hn::Lanes(hn::ScalableTag<T>());  // whole vectors into the scratch
  if (rows == MR) {
    MicroKernel<T, MR, V, true, HALF>(b, ldb, 1, panel, nr, kc, s, lds, w, T(1), beta, &lines);
    while (lines.rows) lines.Next();
  } else {
    MicroKernelRows<T, MR - 1, V>(rows, b, ldb, 1, panel, nr, kc, s, lds, w, T(1), beta);
  }
}

/// GemmSwapped's `rows` last columns of C^T (rows of A from a) against nw <= kDotCols rows of
/// B, as dot products into the scratch (s[x + w * lds]). next: the next row block of B (kDotCols
/// rows), when no panel kernel prefetched it, or null: by the first tile, or half each by the
/// first two, each line at the step that reads the same p of this block (issued in one burst
/// before the tiles, 1-2 rows against 1024 x 256 from memory took 1.2-1.4x as long; all by the
/// first of two tiles, 3-4 rows, 1.05-1.15x).
template <class T>
HWY_NOINLINE void DotRows(std::size_t rows, const T* a, std::size_t lda, const T* b,
                          std::size_t ldb, std::size_t kc, std::size_t nw, T* s, std::size_t lds,
                          T beta, const T* next) {
  const bool one_tile = rows <= 2;
  std::size_t x = 0;
  auto next_of = [&](std::size_t tile) -> const T* {
    if (next == nullptr || tile > 1) return nullptr;
    return tile == 0 ? next : next + 4 * ldb;
  };
  for (; x + 2 <= rows; x += 2)
    DotTile<T, 2>(a + x * lda, lda, b, ldb, kc, nw, s + x, 1, lds, beta, next_of(x / 2), one_tile);
  if (x < rows)
    DotTile<T, 1>(a + x * lda, lda, b, ldb, kc, nw, s + x, 1, lds, beta, next_of(x / 2), one_tile);
}

/// GemmSwapped writes C^T into C per row block (instead of per chunk) up to this inner dimension.
inline constexpr std::size_t kByBlockMaxK = 64;

/// Values of GemmSwapped's scratch C^T per chunk of columns of C.
inline constexpr std::size_t kSwapChunkValues = 16384;

/// Row-major C (M x N, ldc) <- alpha op(A) B^T + beta C with B (N x K, ldb) read in place,
/// computed as C^T = B op(A)^T: B is the micro-kernel's broadcast operand (rows of B are what
/// rows of op(A) are in GemmRowMajor, read in place) and op(A)^T is packed into panels — for a
/// few rows of C against a weight, a copy of op(A) (M x K) instead of a transpose of all of B
/// (N x K) per call. The last dr rows of C (M % lanes <= kDotRows) are dot products instead, so
/// that the panels hold whole vectors. Register blocks go to a scratch C^T (a chunk of columns
/// of C at a time, plain vector stores), written into C per row block (TransposeBlockOut) or
/// per chunk (TransposeOut); stores transposed straight from the registers cost 10-30 % on some
/// shapes (rows of C 4 KiB apart).
/// Loops: chunks of columns of C; k-blocks of KC; row blocks of MR rows of B, each run against
/// every panel while its rows are in L1 (the next block's rows prefetched during the first),
/// then against the dot-product rows.
template <class T, std::size_t MR = Blocking<T>::kMr, std::size_t NV = Blocking<T>::kNv,
          std::size_t KC = Blocking<T>::kKc>
HWY_NOINLINE void GemmSwapped(Op opA, std::size_t M, std::size_t N, std::size_t K, T alpha,
                              const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta,
                              T* C, std::size_t ldc, std::size_t dr) {
  const std::size_t lanes = hn::Lanes(hn::ScalableTag<T>());
  const std::size_t nr = NV * lanes;
  const std::size_t Mp = M - dr;  // columns of C^T in panels; the last dr as dot products
  const std::size_t panels = (Mp + nr - 1) / nr;
  const std::size_t lds = panels * nr + dr;  // scratch row: a column of C (whole panels + dots)
  const std::size_t chunk = std::max(MR, kSwapChunkValues / lds / MR * MR);
  // the panels of op(A)^T for one k-block (kc x Mp), then the scratch: sized for the most rows
  // this path takes (kSwapRows, whatever the panel width), so that more tokens per expert later
  // in training do not grow the buffer (an allocation); only the k-block length (at most KC)
  // varies between calls
  const std::size_t most = std::max(panels * nr, (kSwapRows + lanes - 1) / lanes * lanes);
  T* ap = PackBuffer<T>(std::min(K, KC) * most + kSwapChunkValues);
  T* S = ap + std::min(K, KC) * most;
  // op(A)^T is K x M: A^T of the M x K matrix A (opA = N), or A itself (K x M) for opA = T.
  const Op opP = opA == Op::N ? Op::T : Op::N;
  // With a short K (the tiny LM head, 1000 x 64), each row block's C^T written into C right
  // after its kernels, from L1 (TransposeBlockOut): the chunk's write-out (TransposeOut, from
  // L2) was 15 % of the product. 16-64 rows: 0.92-0.97x, `dispatch_warm` -1.5 %. Not with a
  // long K, where the stores compete with the weight's stream (the small LM head, 1000 x 256:
  // 1.13x in the model, N x 1024: 1.02-1.05x), nor with rows of C a multiple of 4 KiB apart:
  // the 16 rows one 8 x 16 transpose writes share an L1 set (1024 x 256: 1.03-1.29x).
  const bool by_block = K <= kByBlockMaxK && ldc * sizeof(T) % 4096 != 0;
  for (std::size_t n0 = 0; n0 < N; n0 += chunk) {
    const std::size_t nc = std::min(chunk, N - n0);
    for (std::size_t p0 = 0; p0 < K; p0 += KC) {
      const std::size_t kc = std::min(KC, K - p0);
      // packed once when there is one k-block, else per k-block of every chunk
      if (Mp > 0 && (n0 == 0 || K > KC)) PackB(opP, A, lda, p0, kc, 0, Mp, nr, ap);
      const T b0 = p0 == 0 ? T(0) : T(1);  // later k-blocks accumulate into the scratch
      const T* b = B + n0 * ldb + p0;
      for (std::size_t i = 0; i < nc; i += MR) {
        const std::size_t rows = std::min(MR, nc - i);
        PrefetchLines<T> next;  // the next row block's rows of B, during the first kernel
        if (n0 + i + 2 * MR <= N) {
          next.src = b + (i + MR) * ldb;
          next.ld = ldb, next.rows = MR, next.cols = kc;
        }
        for (std::size_t q = 0; q < panels; ++q, next.rows = 0) {
          // a panel of at most one vector of real columns: the one-vector kernel, half the FMAs
          auto* block =
              NV > 1 && Mp - q * nr <= lanes ? &SwappedBlock<T, MR, 1> : &SwappedBlock<T, MR, NV>;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
          // real columns ending in the first half of the last vector: that one as a half vector
          if (const std::size_t real = std::min(nr, Mp - q * nr);
              real % lanes != 0 && real % lanes <= lanes / 2) {
            const std::size_t whole = real / lanes;
            if (whole == 0)
              block = &SwappedBlock<T, MR, 1, true>;
            else if (whole == 1 && NV >= 2)
              block = &SwappedBlock<T, MR, 2, true>;
            else if (whole == 2 && NV == 3)
              block = &SwappedBlock<T, MR, 3, true>;
          }
#endif
          block(rows, b + i * ldb, ldb, ap + q * kc * nr, nr, kc, S + i * lds + q * nr, lds, b0,
                next);
        }
        // no panels: the dot products prefetch the next row block (a whole one) themselves
        const T* dot_next = next.rows == MR && MR == kDotCols ? next.src : nullptr;
        if (dot_next == nullptr)
          while (next.rows) next.Next();
        if (dr > 0)
          DotRows<T>(dr, A + Mp * lda + p0, lda, b + i * ldb, ldb, kc, rows, S + i * lds + Mp, lds,
                     b0, dot_next);
        if (by_block && p0 + kc == K)
          TransposeBlockOut(S + i * lds, lds, rows, M, C + n0 + i, ldc, alpha, beta);
      }
    }
    if (!by_block) TransposeOut(S, lds, nc, M, C + n0, ldc, alpha, beta);
  }
}

/// How GemmRowMajor runs C = op(A) B^T for a B (N x K) larger than op(A) (M x K): 0 — not
/// swapped; otherwise 1 + the rows of C done as dot products by GemmSwapped. Swapped when
/// the columns of C^T fill their vectors (at most kSwapWaste lanes unused in the last one,
/// kSwapWasteLongK for K >= kSwapLongK, any number for one or two vectors unless the last
/// M % lanes <= kSwapFewDots or all M <= kDotRows rows can be dots), or the last few
/// (M % lanes <= kDotRows, op(A) = A) go to dot products instead, or, for at most
/// kSwapFewRows rows, the last 1-2 past a half vector (kSwapHalfDots); measured on the model's
/// shapes (the constants above), other M ran faster through the packed path. Float with 16 lanes
/// (AVX-512) only, what was measured; double and narrower vectors keep the packed path.
template <class T>
std::size_t SwapPlan(Op opA, Op opB, std::size_t M, std::size_t N, std::size_t K) {
  if constexpr (sizeof(T) != 4) return 0;
  const std::size_t lanes = hn::Lanes(hn::ScalableTag<T>());
  if (lanes != 16 || opB != Op::T || M > kSwapRows || N < kSwapMinCols) return 0;
  if (K < kSwapMinK && !(K >= kSwapWideMinK && N >= kSwapWideCols)) return 0;
  const std::size_t r = M % lanes;
  const bool long_k = K >= kSwapLongK;
  if (long_k && opA == Op::N && M <= kSwapFewRows && r > lanes / 2 &&
      r <= lanes / 2 + kSwapHalfDots)
    return 1 + (r - lanes / 2);  // a half vector and dot products
  if (r == 0 || lanes - r <= (long_k ? kSwapWasteLongK : kSwapWaste)) return 1;
  const bool dots_only = opA == Op::N && M <= kDotRows;  // every row a dot product
  if (long_k && M <= kSwapFewRows && r > kSwapFewDots && !dots_only) return 1;  // partial vector
  if (long_k && M >= kSwapHalfRowsMin && M <= kSwapHalfRowsMax) return 1;       // 2.5 vectors
  if (opA == Op::N && r <= kDotRows && K >= kSwapMinK) return 1 + r;            // K = 64: slower
  return 0;
}

/// Row-major C (M x N, ldc) <- alpha op(A) op(B) + beta C; M, N, K >= 1. op(A) = A: A is
/// M x K (lda); op(A) = A^T: A is K x M. Likewise B. Blocking: see the top of this file.
/// SSQ: the sum of the squares of C's elements after the call is added to *ssq — by the
/// kernels of the last k-block as they store C, or (the swapped products, which write C from a
/// scratch) by a pass over C afterwards. A template flag, so that the plain gemm's kernels
/// carry none of it (with a run-time pointer only, kernel_matmul's 64^3 ran 1.034x as long).
template <class T, std::size_t MR = Blocking<T>::kMr, std::size_t NV = Blocking<T>::kNv,
          std::size_t KC = Blocking<T>::kKc, std::size_t NC = Blocking<T>::kNc, bool SSQ = false>
HWY_NOINLINE void GemmRowMajor(Op opA, Op opB, std::size_t M, std::size_t N, std::size_t K, T alpha,
                               const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta,
                               T* C, std::size_t ldc, double* ssq = nullptr) {
  if constexpr (!SSQ) ssq = nullptr;
  const std::size_t nr = NV * hn::Lanes(hn::ScalableTag<T>());
  if (const std::size_t plan = SwapPlan<T>(opA, opB, M, N, K); plan > 0) {
    if (ssq != nullptr) {  // the swapped path (the plain instantiation), then a pass over C
      GemmRowMajor<T, MR, NV, KC, NC>(opA, opB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      for (std::size_t i = 0; i < M; ++i) *ssq += sum_squares(std::span<const T>(C + i * ldc, N));
      return;
    }
    // Three vectors of C^T and no dot-product rows: one panel of three vectors (an 8 x 3
    // register block, 24 accumulators) instead of a two-vector and a one-vector panel — one
    // pass over each row block of B instead of two, 24 FMAs per 8 broadcasts instead of 16 + 8
    // (41-48 rows against 1024 x 256, 256 x 1024, 512 x 128, 256 x 256: 0.89-0.94x per
    // product; 1000 x 64 the same; with dot-product rows after it, 49-52 rows, 0.88-1.17x: not
    // taken). kSwapRows bounds the panels' buffer either way (GemmSwapped).
    if constexpr (NV == 2) {
      const std::size_t lanes = nr / NV;
      if (plan == 1 && M > 2 * lanes && M <= 3 * lanes) {
        GemmSwapped<T, MR, 3, KC>(opA, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0);
        return;
      }
    }
    GemmSwapped<T, MR, NV, KC>(opA, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, plan - 1);
    return;
  }
  if constexpr (sizeof(T) == 4 && KC > kFewRowsKc) {  // measured for float
    if (opB == Op::N && M <= MR && K > kFewRowsKc && K * N * sizeof(T) >= kDirectPrefetchBytes) {
      GemmRowMajor<T, MR, NV, kFewRowsKc, NC, SSQ>(opA, opB, M, N, K, alpha, A, lda, B, ldb, beta,
                                                   C, ldc, ssq);
      return;
    }
  }
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
  const bool stream = opA == Op::T && opB == Op::N && K <= KC && beta == T(0) &&
                      M * N * sizeof(T) >= kStreamBytes &&
                      reinterpret_cast<std::uintptr_t>(C) % 64 == 0 && ldc * sizeof(T) % 64 == 0;
  for (std::size_t j0 = 0; j0 < N; j0 += nc_max) {
    const std::size_t nc = std::min(nc_max, N - j0);
    for (std::size_t p0 = 0; p0 < K; p0 += KC) {
      const std::size_t kc = std::min(KC, K - p0);
      const T b0 = p0 == 0 ? beta : T(1);  // later k-blocks accumulate
      const T* a = A + p0 * ps;
      double* const sq = p0 + kc == K ? ssq : nullptr;  // C final after the last k-block
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
        // Prefetch the source of the next panel (to be packed, or a large B read in place)
        // while the row blocks compute on this one: a share of its cache lines per row block,
        // one line per inner step of the micro-kernel (B cold in cache — weights larger than
        // L2 — ran at ~110 instead of ~180 GFLOPS with no prefetch; issuing each block's share
        // in one burst before it, 3.65 ms for scale_forward_256 against 3.0 ms spread over the
        // steps).
        std::size_t jn = j0 + (q + 1) * nr, pn = p0, kn = kc, wn = 0;
        if (jn < j0 + nc) {
          wn = std::min(nr, j0 + nc - jn);
        } else if (p0 + KC < K) {
          jn = j0, pn = p0 + KC, kn = std::min(KC, K - pn), wn = std::min(nr, nc);
        } else if (j0 + nc_max < N) {
          jn = j0 + nc_max, pn = 0, kn = std::min(KC, K), wn = std::min(nr, N - jn);
        }
        // No next panel: nothing to prefetch (its source would point outside B). B read in
        // place: the next panel's rows of B, when B is large (kDirectPrefetchBytes).
        const bool pf =
            wn > 0 && (!direct || (opB == Op::N && K * N * sizeof(T) >= kDirectPrefetchBytes));
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
          // a constant null without SSQ (the lambda is compiled apart: a captured pointer
          // would keep the sums' code in the plain kernels)
          double* const ksq = SSQ ? sq : nullptr;
          for (; i + MR <= M; i += MR) {
            // A last block of 1-3 rows would hold 2-6 accumulators, too few chains for the
            // FMA latency: the last MR + 1..3 rows run as two blocks of about half instead,
            // after at least one whole block (which prefetches the next panel on its way).
            if (const std::size_t rest = M - i - MR; i > 0 && rest > 0 && rest < kMinLastRows)
              break;
            if (pf) {  // this block's share of the lines; what the steps left, issued after
              PrefetchLines<T> lines = next;
              lines.rows = std::min(share, next.rows);
              next.rows -= lines.rows, next.src += lines.rows * ldb;
              MicroKernel<T, MR, V, true>(a + i * rs, rs, ps, panel, pstride, kc, c + i * ldc, ldc,
                                          ncols, alpha, b0, &lines, c_next(i), stream, ksq);
              while (lines.rows) lines.Next();
            } else {
              MicroKernel<T, MR, V>(a + i * rs, rs, ps, panel, pstride, kc, c + i * ldc, ldc, ncols,
                                    alpha, b0, nullptr, c_next(i), stream, ksq);
            }
          }
          while (next.rows) next.Next();  // the rest before the last rows' kernel
          if (M - i > MR) {               // MR + 1..3 rows: the first of two blocks
            const std::size_t r1 = (M - i + 1) / 2;
            MicroKernelRows<T, MR - 1, V>(r1, a + i * rs, rs, ps, panel, pstride, kc, c + i * ldc,
                                          ldc, ncols, alpha, b0, ksq);
            i += r1;
          }
          if (i < M)
            MicroKernelRows<T, MR - 1, V>(M - i, a + i * rs, rs, ps, panel, pstride, kc,
                                          c + i * ldc, ldc, ncols, alpha, b0, ksq);
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
#if HWY_ARCH_X86
  if (stream) _mm_sfence();  // the non-temporal stores ordered before what follows
#endif
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

  /// C <- alpha * op(A) * op(B), returning the sum of the squares of C's elements, summed by
  /// the micro-kernels as they store C (see backend::gemm_sumsq).
  template <class TA, class TB, class T, Layout L>
  requires std::same_as<std::remove_const_t<TA>, T> && std::same_as<std::remove_const_t<TB>, T>
  static double gemm_sumsq(Op opA, Op opB, scalar_arg<T> alpha, MatrixView<TA, L> A,
                           MatrixView<TB, L> B, MatrixView<T, L> C) {
    const auto d = detail::check_gemm("HwyGemm::gemm_sumsq", opA, opB, A, B, C);
    if (detail::gemm_trivial(d, T(0), C)) return 0.0;
    namespace hg = hwy_gemm::HWY_NAMESPACE;
    using Bl = hg::Blocking<T>;
    constexpr auto gemm = &hg::GemmRowMajor<T, Bl::kMr, Bl::kNv, Bl::kKc, Bl::kNc, true>;
    double s = 0.0;
    if constexpr (L::is_row_major)
      gemm(opA, opB, d.m, d.n, d.k, alpha, A.data(), A.ld(), B.data(), B.ld(), T(0), C.data(),
           C.ld(), &s);
    else
      gemm(opB, opA, d.n, d.m, d.k, alpha, B.data(), B.ld(), A.data(), A.ld(), T(0), C.data(),
           C.ld(), &s);
    return s;
  }
};

}  // namespace rosetta::backend

#endif  // ROSETTA_HAS_HWY
