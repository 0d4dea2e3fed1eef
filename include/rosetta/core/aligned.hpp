// 64-byte aligned, owning, fixed-size buffer (one cache line; a full AVX-512 vector). Buffers
// of at least kHugeMinBytes are aligned to 2 MiB and, on Linux, advised as transparent huge
// pages (see AlignedBuffer).
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <span>
#include <utility>

#if defined(__linux__) && !defined(ROSETTA_NO_HUGEPAGES)
#include <sys/mman.h>
#endif

namespace rosetta {

inline constexpr std::size_t kAlignment = 64;
/// A transparent huge page (x86-64), and the size from which a buffer starts at one.
inline constexpr std::size_t kHugePage = std::size_t{2} << 20;
inline constexpr std::size_t kHugeMinBytes = std::size_t{4} << 20;

/// Advice only: a kernel without THP, or another OS, keeps its pages.
inline void advise_huge_pages([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) {
#if defined(__linux__) && !defined(ROSETTA_NO_HUGEPAGES) && defined(MADV_HUGEPAGE)
  ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
}

/// Buffers of kHugeMinBytes or more (the small preset's parameters, gradients and moments, 26 MB
/// each; nothing of the tiny preset's) start on a 2 MiB boundary, and their whole 2 MiB pages
/// are advised as transparent huge pages (madvise(MADV_HUGEPAGE), before the zeroing touches
/// them: the kernel's default here is THP on madvise only). Streaming 28 MB of weights from
/// memory per forward, 4 KiB pages cost TLB misses the prefetches cannot hide:
/// scale_forward_256 0.96x, scale_train_256 0.94x (interleaved runs). The pages are all
/// touched by the zeroing anyway, so the resident set does not grow. -DROSETTA_NO_HUGEPAGES
/// turns the advice off (the alignment stays).
template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  /// n value-initialised (zeroed) elements.
  explicit AlignedBuffer(std::size_t n) : size_(n) {
    if (n == 0) return;
    data_ = static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignment()}));
    if (alignment() == kHugePage) advise_huge_pages(data_, n * sizeof(T) / kHugePage * kHugePage);
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
    if (data_) ::operator delete (data_, std::align_val_t{alignment()});
    data_ = nullptr;
  }
  /// From the size alone, so that the deallocation passes the alignment of the allocation.
  std::size_t alignment() const noexcept {
    return size_ * sizeof(T) >= kHugeMinBytes ? kHugePage : kAlignment;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace rosetta
