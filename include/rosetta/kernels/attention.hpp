// Causal multi-query / grouped-query attention through the backend's gemm: one (batch, head)
// at a time, or — one KV head, row-major — all heads of a sequence in one gemm (heads_as_rows).
//   Query head h reads KV head g = h / (n_heads / n_kv_heads).
//   S_bh = Q_bh K_g^T / sqrt(hd);  P_bh = softmax(S_bh with key j > query i + offset masked)
//   O_bh = P_bh V_g
#pragma once

#include <cmath>

#include "rosetta/kernels/common.hpp"
#include "rosetta/kernels/softmax.hpp"

namespace rosetta::kernels {

/// Sizes of one attention call. Queries are sq rows per sequence; keys/values are sk rows
/// per sequence, stored kv_rows apart (kv_rows = sk for training, the cache capacity when
/// decoding). Query i sits at key position i + (sk - sq): it sees keys 0 .. i + sk - sq.
struct AttentionDims {
  std::size_t batch, sq, sk, kv_rows, n_heads, n_kv_heads, head_dim;
  std::size_t group() const { return n_heads / n_kv_heads; }
};

/// With a single KV head every query head attends to the same keys: a sequence's queries of
/// all heads, row-major [sq, n_heads*hd] without padding, are the rows of one [sq*n_heads, hd]
/// matrix (row t*n_heads + h: query t of head h, hd apart) — one gemm for the scores of all
/// heads and one for their outputs, instead of one per head (the tiny model's 16 scores and
/// 16 outputs per forward were each a call of 0.3 us on 32 x 32 x 16). True when every view in
/// `views` (q, o, dO, dq) has rows of exactly n_heads*hd values.
template <class L, class... V>
bool heads_as_rows(const AttentionDims& d, const V&... views) {
  if constexpr (!L::is_row_major) return false;
  const std::size_t w = d.n_heads * d.head_dim;
  return d.n_kv_heads == 1 && ((views.ld() == w && views.cols() == w) && ...);
}

/// Sequence b's rows of x ([batch*sq, n_heads*hd], heads_as_rows) as [sq*n_heads, hd].
template <class T, class L>
MatrixView<T, L> heads_rows(MatrixView<T, L> x, const AttentionDims& d, std::size_t b) {
  return MatrixView<T, L>(x.data() + b * d.sq * x.ld(), d.sq * d.n_heads, d.head_dim, d.head_dim);
}

/// One block of queries against its keys and values: O = softmax(scale Q K^T, causal) V, the
/// probabilities in Pb. Row r of Q is query r / per (per = heads stacked per query,
/// heads_as_rows, else 1); that query sees the first n0 + r / per keys.
template <class B, class T, class L>
void attend(MatrixView<T, L> O, MatrixView<T, L> Pb, CMat<T, L> Q, CMat<T, L> K, CMat<T, L> V,
            T scale, std::size_t n0, std::size_t per) {
  B::gemm(Op::N, Op::T, scale, Q, K, T(0), Pb);  // scores
  softmax_rows_prefix(Pb, n0, 1, per);           // causal: later keys masked
  B::gemm(Op::N, Op::N, T(1), MatrixView<const T, L>(Pb), V, T(0), O);
}

/// attend's backward for one block (dS: scratch shaped as Pb; dQ overwritten, dK, dV added to).
template <class B, class T, class L>
void attend_backward(MatrixView<T, L> dQ, MatrixView<T, L> dK, MatrixView<T, L> dV,
                     MatrixView<T, L> dS, CMat<T, L> dO, CMat<T, L> Q, CMat<T, L> K, CMat<T, L> V,
                     CMat<T, L> Pb, T scale) {
  B::gemm(Op::N, Op::T, T(1), dO, V, T(0), dS);  // dP = dO V^T
  B::gemm(Op::T, Op::N, T(1), Pb, dO, T(1), dV);
  softmax_backward(dS, MatrixView<const T, L>(dS), Pb);  // dS in dP
  B::gemm(Op::N, Op::N, scale, MatrixView<const T, L>(dS), K, T(0), dQ);
  B::gemm(Op::T, Op::N, scale, MatrixView<const T, L>(dS), Q, T(1), dK);
}

/// q: [batch*sq, n_heads*hd] (after RoPE); k, v: [batch*kv_rows, n_kv*hd] (after RoPE);
/// P: [batch*n_heads*sq, sk] (probabilities, saved for backward: sequence b's rows from
/// b*n_heads*sq, ordered (head, query) — or (query, head) when heads_as_rows);
/// o: [batch*sq, n_heads*hd].
template <class B, class T, class L>
void attention_forward(MatrixView<T, L> o, MatrixView<T, L> P, CMat<T, L> q, CMat<T, L> k,
                       CMat<T, L> v, const AttentionDims& d) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const std::size_t n0 = d.sk - d.sq + 1, hd = d.head_dim;  // query i sees n0 + i keys
  if (heads_as_rows<L>(d, q, o)) {
    const std::size_t rows = d.sq * d.n_heads;
    for (std::size_t b = 0; b < d.batch; ++b)
      attend<B>(heads_rows(o, d, b), P.block(b * rows, 0, rows, d.sk), heads_rows(q, d, b),
                k.block(b * d.kv_rows, 0, d.sk, hd), v.block(b * d.kv_rows, 0, d.sk, hd), scale, n0,
                d.n_heads);
    return;
  }
  for (std::size_t b = 0; b < d.batch; ++b)
    for (std::size_t h = 0; h < d.n_heads; ++h) {
      const std::size_t g = h / d.group();
      attend<B>(o.block(b * d.sq, h * hd, d.sq, hd),
                P.block((b * d.n_heads + h) * d.sq, 0, d.sq, d.sk),
                q.block(b * d.sq, h * hd, d.sq, hd), k.block(b * d.kv_rows, g * hd, d.sk, hd),
                v.block(b * d.kv_rows, g * hd, d.sk, hd), scale, n0, 1);
    }
}

/// Differentiates the forward (training: sq == sk == kv_rows):
///   dP = dO V^T;  dV += P^T dO;  dS = P * (dP - rowsum(dP * P));
///   dQ = scale dS K (overwritten);  dK += scale dS^T Q.
/// dq: [T, n_heads*hd] (overwritten), dk, dv: [T, n_kv*hd] (accumulated; zero them first),
/// dP: scratch of at least [sq * group, sk] (P's row order: attention_forward).
template <class B, class T, class L>
void attention_backward(MatrixView<T, L> dq, MatrixView<T, L> dk, MatrixView<T, L> dv,
                        MatrixView<T, L> dP, CMat<T, L> d_o, CMat<T, L> q, CMat<T, L> k,
                        CMat<T, L> v, CMat<T, L> P, const AttentionDims& d) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const std::size_t hd = d.head_dim;
  if (heads_as_rows<L>(d, q, d_o, dq)) {  // as the forward: all heads of a sequence at once
    const std::size_t rows = d.sq * d.n_heads;
    for (std::size_t b = 0; b < d.batch; ++b)
      attend_backward<B>(heads_rows(dq, d, b), dk.block(b * d.kv_rows, 0, d.sk, hd),
                         dv.block(b * d.kv_rows, 0, d.sk, hd), dP.block(0, 0, rows, d.sk),
                         heads_rows(d_o, d, b), heads_rows(q, d, b),
                         k.block(b * d.kv_rows, 0, d.sk, hd), v.block(b * d.kv_rows, 0, d.sk, hd),
                         P.block(b * rows, 0, rows, d.sk), scale);
    return;
  }
  for (std::size_t b = 0; b < d.batch; ++b)
    for (std::size_t h = 0; h < d.n_heads; ++h) {
      const std::size_t g = h / d.group();
      attend_backward<B>(
          dq.block(b * d.sq, h * hd, d.sq, hd), dk.block(b * d.kv_rows, g * hd, d.sk, hd),
          dv.block(b * d.kv_rows, g * hd, d.sk, hd), dP.block(0, 0, d.sq, d.sk),
          d_o.block(b * d.sq, h * hd, d.sq, hd), q.block(b * d.sq, h * hd, d.sq, hd),
          k.block(b * d.kv_rows, g * hd, d.sk, hd), v.block(b * d.kv_rows, g * hd, d.sk, hd),
          P.block((b * d.n_heads + h) * d.sq, 0, d.sq, d.sk), scale);
    }
}

}  // namespace rosetta::kernels
