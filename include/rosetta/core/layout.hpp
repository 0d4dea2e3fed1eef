// Layout tags: where element (i, j) of a rows x cols matrix with leading dimension ld lives.
// A layout is data (strides), not code: every kernel indexes through the tag, so the same
// kernel serves both layouts and BLAS receives the strides it needs.
#pragma once

#include <algorithm>
#include <cstddef>

namespace rosetta {

/// C order: rows are contiguous; element (i, j) at i * ld + j, ld >= cols.
struct RowMajor {
  static constexpr bool is_row_major = true;
  static constexpr const char* name = "row";
  static constexpr std::size_t row_stride(std::size_t ld) noexcept { return ld; }
  static constexpr std::size_t col_stride(std::size_t /*ld*/) noexcept { return 1; }
  static constexpr std::size_t min_ld(std::size_t /*rows*/, std::size_t cols) noexcept {
    return std::max<std::size_t>(1, cols);
  }
};

/// Fortran order: columns are contiguous; element (i, j) at i + j * ld, ld >= rows.
struct ColMajor {
  static constexpr bool is_row_major = false;
  static constexpr const char* name = "col";
  static constexpr std::size_t row_stride(std::size_t /*ld*/) noexcept { return 1; }
  static constexpr std::size_t col_stride(std::size_t ld) noexcept { return ld; }
  static constexpr std::size_t min_ld(std::size_t rows, std::size_t /*cols*/) noexcept {
    return std::max<std::size_t>(1, rows);
  }
};

}  // namespace rosetta
