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

/// q: [batch*sq, n_heads*hd] (after RoPE); k, v: [batch*kv_rows, n_kv*hd] (after RoPE);
/// P: [batch*n_heads*sq, sk] (probabilities, saved for backward: sequence b's rows from
/// b*n_heads*sq, ordered (head, query) — or (query, head) when heads_as_rows);
/// o: [batch*sq, n_heads*hd].
template <class B, class T, class L>
void attention_forward(MatrixView<T, L> o, MatrixView<T, L> P, CMat<T, L> q, CMat<T, L> k,
                       CMat<T, L> v, const AttentionDims& d) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const std::size_t offset = d.sk - d.sq, hd = d.head_dim;
  if (heads_as_rows<L>(d, q, o)) {
    const std::size_t rows = d.sq * d.n_heads;
    for (std::size_t b = 0; b < d.batch; ++b) {
      auto K = k.block(b * d.kv_rows, 0, d.sk, hd);
      auto V = v.block(b * d.kv_rows, 0, d.sk, hd);
      auto Pb = P.block(b * rows, 0, rows, d.sk);
      B::gemm(Op::N, Op::T, scale, heads_rows(q, d, b), K, T(0), Pb);
      softmax_rows_prefix(Pb, offset + 1, 1, d.n_heads);  // row t*n_heads + h: query t
      B::gemm(Op::N, Op::N, T(1), MatrixView<const T, L>(Pb), V, T(0), heads_rows(o, d, b));
    }
    return;
  }
  for (std::size_t b = 0; b < d.batch; ++b)
    for (std::size_t h = 0; h < d.n_heads; ++h) {
      const std::size_t g = h / d.group();
      auto Q = q.block(b * d.sq, h * hd, d.sq, hd);
      auto K = k.block(b * d.kv_rows, g * hd, d.sk, hd);
      auto V = v.block(b * d.kv_rows, g * hd, d.sk, hd);
      auto Pb = P.block((b * d.n_heads + h) * d.sq, 0, d.sq, d.sk);
      B::gemm(Op::N, Op::T, scale, Q, K, T(0), Pb);  // scores [sq, sk]
      softmax_rows_prefix(Pb, offset + 1, 1);        // causal: row i sees keys 0..offset+i
      B::gemm(Op::N, Op::N, T(1), MatrixView<const T, L>(Pb), V, T(0),
              o.block(b * d.sq, h * hd, d.sq, hd));
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
    auto dS = dP.block(0, 0, rows, d.sk);
    for (std::size_t b = 0; b < d.batch; ++b) {
      auto K = k.block(b * d.kv_rows, 0, d.sk, hd);
      auto V = v.block(b * d.kv_rows, 0, d.sk, hd);
      auto Pb = P.block(b * rows, 0, rows, d.sk);
      auto Q = heads_rows(q, d, b), dO = heads_rows(d_o, d, b);
      B::gemm(Op::N, Op::T, T(1), dO, V, T(0), dS);  // dP = dO V^T
      B::gemm(Op::T, Op::N, T(1), Pb, dO, T(1), dv.block(b * d.kv_rows, 0, d.sk, hd));
      softmax_backward(dS, MatrixView<const T, L>(dS), Pb);  // dS in dP
      B::gemm(Op::N, Op::N, scale, MatrixView<const T, L>(dS), K, T(0), heads_rows(dq, d, b));
      B::gemm(Op::T, Op::N, scale, MatrixView<const T, L>(dS), Q, T(1),
              dk.block(b * d.kv_rows, 0, d.sk, hd));
    }
    return;
  }
  auto dS = dP.block(0, 0, d.sq, d.sk);
  for (std::size_t b = 0; b < d.batch; ++b)
    for (std::size_t h = 0; h < d.n_heads; ++h) {
      const std::size_t g = h / d.group();
      auto Q = q.block(b * d.sq, h * hd, d.sq, hd);
      auto K = k.block(b * d.kv_rows, g * hd, d.sk, hd);
      auto V = v.block(b * d.kv_rows, g * hd, d.sk, hd);
      auto Pb = P.block((b * d.n_heads + h) * d.sq, 0, d.sq, d.sk);
      auto dO = d_o.block(b * d.sq, h * hd, d.sq, hd);
      B::gemm(Op::N, Op::T, T(1), dO, V, T(0), dS);  // dP = dO V^T
      B::gemm(Op::T, Op::N, T(1), Pb, dO, T(1), dv.block(b * d.kv_rows, g * hd, d.sk, hd));
      softmax_backward(dS, MatrixView<const T, L>(dS), Pb);  // dS in dP
      B::gemm(Op::N, Op::N, scale, MatrixView<const T, L>(dS), K, T(0),
              dq.block(b * d.sq, h * hd, d.sq, hd));
      B::gemm(Op::T, Op::N, scale, MatrixView<const T, L>(dS), Q, T(1),
              dk.block(b * d.kv_rows, g * hd, d.sk, hd));
    }
}

}  // namespace rosetta::kernels
