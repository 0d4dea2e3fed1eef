// Owning, 64-byte aligned tensor of rank 1 to 3 in layout L.
// Strides follow the layout: RowMajor is C order (last index fastest), ColMajor is Fortran
// order (first index fastest). Rank-2 tensors hand out MatrixViews for the kernels.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <span>

#include "rosetta/core/aligned.hpp"
#include "rosetta/core/concepts.hpp"
#include "rosetta/core/config.hpp"
#include "rosetta/core/errors.hpp"
#include "rosetta/core/layout.hpp"
#include "rosetta/core/view.hpp"

namespace rosetta {

/// Up to three extents.
class Shape {
 public:
  static constexpr std::size_t kMaxRank = 3;
  Shape() = default;
  Shape(std::initializer_list<std::size_t> dims) {
    if (dims.size() < 1 || dims.size() > kMaxRank)
      detail::raise<ShapeError>("Shape: rank ", dims.size(), " is not supported (allowed 1..",
                                kMaxRank, ")");
    for (std::size_t d : dims) dims_[rank_++] = d;
  }
  std::size_t rank() const noexcept { return rank_; }
  std::size_t operator[](std::size_t i) const {
    if (i >= rank_)
      detail::raise<IndexError>("Shape: dimension ", i, " of a rank-", rank_, " shape");
    return dims_[i];
  }
  std::size_t numel() const noexcept {
    std::size_t n = rank_ ? 1 : 0;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  std::string str() const {
    std::string s = "[";
    for (std::size_t i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + "]";
  }

 private:
  std::array<std::size_t, kMaxRank> dims_{};
  std::size_t rank_ = 0;
};

template <Scalar T, Layout L = RowMajor>
class Tensor {
 public:
  using value_type = T;
  using layout = L;

  Tensor() = default;
  explicit Tensor(Shape shape) : shape_(shape), buf_(checked_numel(shape)) { compute_strides(); }
  Tensor(std::initializer_list<std::size_t> dims) : Tensor(Shape(dims)) {}

  const Shape& shape() const noexcept { return shape_; }
  std::size_t rank() const noexcept { return shape_.rank(); }
  std::size_t dim(std::size_t i) const { return shape_[i]; }
  std::size_t size() const noexcept { return buf_.size(); }
  T* data() noexcept { return buf_.data(); }
  const T* data() const noexcept { return buf_.data(); }
  std::span<T> flat() noexcept { return buf_.span(); }
  std::span<const T> flat() const noexcept { return buf_.span(); }

  T& operator()(std::size_t i) { return buf_.data()[offset({i})]; }
  const T& operator()(std::size_t i) const { return buf_.data()[offset({i})]; }
  T& operator()(std::size_t i, std::size_t j) { return buf_.data()[offset({i, j})]; }
  const T& operator()(std::size_t i, std::size_t j) const { return buf_.data()[offset({i, j})]; }
  T& operator()(std::size_t i, std::size_t j, std::size_t k) {
    return buf_.data()[offset({i, j, k})];
  }
  const T& operator()(std::size_t i, std::size_t j, std::size_t k) const {
    return buf_.data()[offset({i, j, k})];
  }

  /// The rank-2 tensor as a dense MatrixView; ShapeError for other ranks.
  MatrixView<T, L> matrix() { return MatrixView<T, L>(data(), rows_for_view(), shape_[1]); }
  MatrixView<const T, L> matrix() const {
    return MatrixView<const T, L>(data(), rows_for_view(), shape_[1]);
  }

 private:
  static std::size_t checked_numel(const Shape& s) {
    if (s.rank() == 0)
      detail::raise<ShapeError>("Tensor: shape has rank 0 (allowed 1..", Shape::kMaxRank, ")");
    return s.numel();
  }

  std::size_t rows_for_view() const {
    if (rank() != 2)
      detail::raise<ShapeError>("Tensor::matrix: tensor of shape ", shape_.str(), " has rank ",
                                rank(), ", a matrix view needs rank 2");
    return shape_[0];
  }

  void compute_strides() {
    const std::size_t r = shape_.rank();
    std::size_t s = 1;
    if constexpr (L::is_row_major) {
      for (std::size_t d = r; d-- > 0;) strides_[d] = s, s *= shape_[d];
    } else {
      for (std::size_t d = 0; d < r; ++d) strides_[d] = s, s *= shape_[d];
    }
  }

  std::size_t offset(std::initializer_list<std::size_t> idx) const {
#if ROSETTA_CHECKED
    if (idx.size() != rank())
      detail::raise<IndexError>("Tensor: ", idx.size(), " indices for a tensor of rank ", rank());
#endif
    std::size_t off = 0, d = 0;
    for (std::size_t i : idx) {
#if ROSETTA_CHECKED
      if (i >= shape_[d])
        detail::raise<IndexError>("Tensor: index ", i, " in dimension ", d, " is outside shape ",
                                  shape_.str());
#endif
      off += i * strides_[d++];
    }
    return off;
  }

  Shape shape_;
  std::array<std::size_t, Shape::kMaxRank> strides_{};
  AlignedBuffer<T> buf_;
};

}  // namespace rosetta
