// 64-byte aligned, owning, fixed-size buffer (one cache line; a full AVX-512 vector).
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <span>
#include <utility>

namespace rosetta {

inline constexpr std::size_t kAlignment = 64;

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  /// n value-initialised (zeroed) elements.
  explicit AlignedBuffer(std::size_t n) : size_(n) {
    if (n == 0) return;
    data_ = static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kAlignment}));
    std::fill_n(data_, n, T{});
  }
  AlignedBuffer(const AlignedBuffer& o) : AlignedBuffer(o.size_) {
    std::copy_n(o.data_, size_, data_);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer o) noexcept {
    swap(o);
    return *this;
  }
  ~AlignedBuffer() { release(); }

  void swap(AlignedBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<T> span() noexcept { return {data_, size_}; }
  std::span<const T> span() const noexcept { return {data_, size_}; }

 private:
  void release() noexcept {
    if (data_) ::operator delete (data_, std::align_val_t{kAlignment});
    data_ = nullptr;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace rosetta
