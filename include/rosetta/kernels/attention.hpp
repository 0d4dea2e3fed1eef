// Causal multi-query / grouped-query attention, one (batch, head) at a time through the
// backend's gemm.
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

/// q: [batch*sq, n_heads*hd] (after RoPE); k, v: [batch*kv_rows, n_kv*hd] (after RoPE);
/// P: [batch*n_heads*sq, sk] (probabilities, saved for backward); o: [batch*sq, n_heads*hd].
template <class B, class T, class L>
void attention_forward(MatrixView<T, L> o, MatrixView<T, L> P, CMat<T, L> q, CMat<T, L> k,
                       CMat<T, L> v, const AttentionDims& d) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const std::size_t offset = d.sk - d.sq, hd = d.head_dim;
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
/// dP_scratch: [sq, sk] scratch.
template <class B, class T, class L>
void attention_backward(MatrixView<T, L> dq, MatrixView<T, L> dk, MatrixView<T, L> dv,
                        MatrixView<T, L> dP, CMat<T, L> d_o, CMat<T, L> q, CMat<T, L> k,
                        CMat<T, L> v, CMat<T, L> P, const AttentionDims& d) {
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  const std::size_t hd = d.head_dim;
  for (std::size_t b = 0; b < d.batch; ++b)
    for (std::size_t h = 0; h < d.n_heads; ++h) {
      const std::size_t g = h / d.group();
      auto Q = q.block(b * d.sq, h * hd, d.sq, hd);
      auto K = k.block(b * d.kv_rows, g * hd, d.sk, hd);
      auto V = v.block(b * d.kv_rows, g * hd, d.sk, hd);
      auto Pb = P.block((b * d.n_heads + h) * d.sq, 0, d.sq, d.sk);
      auto dO = d_o.block(b * d.sq, h * hd, d.sq, hd);
      B::gemm(Op::N, Op::T, T(1), dO, V, T(0), dP);  // dP = dO V^T
      B::gemm(Op::T, Op::N, T(1), Pb, dO, T(1), dv.block(b * d.kv_rows, g * hd, d.sk, hd));
      softmax_backward(dP, MatrixView<const T, L>(dP), Pb);  // dS in dP
      B::gemm(Op::N, Op::N, scale, MatrixView<const T, L>(dP), K, T(0),
              dq.block(b * d.sq, h * hd, d.sq, hd));
      B::gemm(Op::T, Op::N, scale, MatrixView<const T, L>(dP), Q, T(1),
              dk.block(b * d.kv_rows, g * hd, d.sk, hd));
    }
}

}  // namespace rosetta::kernels
