// CachePadded<T>: a value alone on its own pair of cache lines.
//
// 128 bytes, not 64: on x86-64 the L2 adjacent-line prefetcher fetches 64-byte lines in pairs,
// so two hot words 64 bytes apart still interfere (Intel optimisation manual, "spatial
// prefetcher"; crossbeam-utils CachePadded uses 128 for the same reason). We do not use
// std::hardware_destructive_interference_size in headers: GCC warns that its value may differ
// between translation units compiled with different -mtune (STYLE.md, "Padding").
#pragma once

#include <cstddef>
#include <utility>

namespace conveyor {

inline constexpr std::size_t kCachePairBytes = 128;

template <class T>
struct alignas(kCachePairBytes) CachePadded {
  T value;

  CachePadded() = default;
  template <class... Args>
  explicit CachePadded(Args&&... args) : value(std::forward<Args>(args)...) {}

  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
  const T* operator->() const noexcept { return &value; }
};

static_assert(sizeof(CachePadded<char>) == kCachePairBytes);
static_assert(alignof(CachePadded<char>) == kCachePairBytes);

}  // namespace conveyor
