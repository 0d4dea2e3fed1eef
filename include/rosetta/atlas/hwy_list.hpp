// The kernels the Highway backends implement, as an X-macro: X(name) for each kernel whose
// Highway implementation is k_<name> in hwy_kernels-inl.hpp. Used to register hwy_static
// (hwy_static.hpp) and to export hwy_dynamic (benchmark/atlas/hwy_dynamic.cpp).
#pragma once

// clang-format off
#define ROSETTA_ATLAS_HWY_KERNELS(X)                                                      \
  X(sum) X(max) X(min) X(l2norm) X(absmax) X(asum)                                        \
  X(add) X(mul) X(fma) X(clamp) X(abs) X(axpy) X(scale) X(copy)                           \
  X(exp) X(log) X(silu) X(gelu_tanh) X(mish)                                              \
  X(softmax) X(log_softmax) X(rmsnorm) X(layernorm) X(sdpa_causal) X(sdpa_flash)          \
  X(cross_entropy) X(mse) X(adamw) X(clip_global_norm)                                    \
  X(gemm) X(gemv) X(gemm_batched) X(outer)                                                \
  X(transpose) X(aos_to_soa) X(soa_to_aos) X(prefix_sum) X(dot) X(cosine)                 \
  X(rand_uniform) X(rand_normal) X(f32_to_bf16) X(bf16_to_f32) X(f32_to_int8) X(int8_to_f32)
// clang-format on
