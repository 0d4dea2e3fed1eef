// Non-owning matrix view: a pointer, a shape and a leading dimension in layout L.
// T may be const-qualified; a MatrixView<T, L> converts to MatrixView<const T, L>.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>

#include "rosetta/core/concepts.hpp"
#include "rosetta/core/config.hpp"
#include "rosetta/core/errors.hpp"

namespace rosetta {

template <class T, Layout L>
class MatrixView {
 public:
  using element_type = T;
  using value_type = std::remove_const_t<T>;
  using layout = L;

  constexpr MatrixView() = default;

  /// A densely packed rows x cols matrix (ld = L::min_ld(rows, cols)).
  constexpr MatrixView(T* data, std::size_t rows, std::size_t cols)
      : data_(data), rows_(rows), cols_(cols), ld_(L::min_ld(rows, cols)) {}

  /// A rows x cols matrix with an explicit leading dimension (the stride between rows for
  /// RowMajor, between columns for ColMajor). Throws ShapeError if ld is too small.
  MatrixView(T* data, std::size_t rows, std::size_t cols, std::size_t ld)
      : data_(data), rows_(rows), cols_(cols), ld_(ld) {
    if (ld < L::min_ld(rows, cols))
      detail::raise<ShapeError>("MatrixView: leading dimension ld=", ld, " is too small for a ",
                                rows, "x", cols, " ", L::name,
                                "-major matrix (need ld >= ", L::min_ld(rows, cols), ")");
  }

  /// Read-only view of the same data.
  constexpr operator MatrixView<const T, L>() const noexcept requires(!std::is_const_v<T>) {
    return MatrixView<const T, L>::unchecked(data_, rows_, cols_, ld_);
  }

  /// Builds a view without validating ld (callers that derived ld themselves).
  static constexpr MatrixView unchecked(T* data, std::size_t rows, std::size_t cols,
                                        std::size_t ld) noexcept {
    MatrixView v;
    v.data_ = data;
    v.rows_ = rows;
    v.cols_ = cols;
    v.ld_ = ld;
    return v;
  }

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t rows() const noexcept { return rows_; }
  constexpr std::size_t cols() const noexcept { return cols_; }
  constexpr std::size_t ld() const noexcept { return ld_; }
  constexpr std::size_t size() const noexcept { return rows_ * cols_; }
  constexpr bool empty() const noexcept { return rows_ == 0 || cols_ == 0; }
  constexpr std::size_t row_stride() const noexcept { return L::row_stride(ld_); }
  constexpr std::size_t col_stride() const noexcept { return L::col_stride(ld_); }
  /// True when the elements occupy one gap-free span of rows*cols.
  constexpr bool contiguous() const noexcept { return empty() || ld_ == L::min_ld(rows_, cols_); }

  /// Element (i, j); bounds-checked when ROSETTA_CHECKED.
  constexpr T& operator()(std::size_t i, std::size_t j) const {
#if ROSETTA_CHECKED
    if (i >= rows_ || j >= cols_)
      detail::raise<IndexError>("MatrixView: index (", i, ", ", j, ") outside a ", rows_, "x",
                                cols_, " matrix");
#endif
    return data_[i * row_stride() + j * col_stride()];
  }

  /// The sub-matrix of nr x nc elements starting at (r0, c0); shares ld.
  MatrixView block(std::size_t r0, std::size_t c0, std::size_t nr, std::size_t nc) const {
    if (r0 + nr > rows_ || c0 + nc > cols_)
      detail::raise<ShapeError>("MatrixView::block: [", r0, ", ", r0 + nr, ") x [", c0, ", ",
                                c0 + nc, ") is outside a ", rows_, "x", cols_, " matrix");
    T* p = (nr == 0 || nc == 0) ? data_ : data_ + r0 * row_stride() + c0 * col_stride();
    return unchecked(p, nr, nc, ld_);
  }
  MatrixView rows(std::size_t r0, std::size_t nr) const {
    return block(r0, 0, nr, cols_);
  }
  MatrixView cols(std::size_t c0, std::size_t nc) const {
    return block(0, c0, rows_, nc);
  }

  /// All elements as one span; only for contiguous views.
  std::span<T> flat() const {
    if (!contiguous())
      detail::raise<ShapeError>("MatrixView::flat: view with ld=", ld_, " over a ", rows_, "x",
                                cols_, " matrix is not contiguous");
    return {data_, rows_ * cols_};
  }

 private:
  T* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::size_t ld_ = 1;
};

template <class T, Layout L>
using ConstMatrixView = MatrixView<const T, L>;

}  // namespace rosetta
