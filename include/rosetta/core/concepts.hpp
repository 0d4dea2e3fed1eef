// The compile-time axes of the library as C++20 concepts.
#pragma once

#include <concepts>
#include <cstddef>
#include <type_traits>

namespace rosetta {

/// The scalar axis: the floating-point types every kernel and backend supports.
template <class T>
concept Scalar = std::same_as<T, float> || std::same_as<T, double>;

/// The layout axis: a tag type with compile-time strides (see layout.hpp).
template <class L>
concept Layout = requires(std::size_t n) {
  { L::is_row_major } -> std::convertible_to<bool>;
  { L::row_stride(n) } -> std::same_as<std::size_t>;
  { L::col_stride(n) } -> std::same_as<std::size_t>;
  { L::min_ld(n, n) } -> std::same_as<std::size_t>;
};

}  // namespace rosetta
