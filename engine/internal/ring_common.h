// Pieces shared by the two ring layouts (mpmc_ring.h, spsc_ring.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <new>

#include "alloc/cache_padded.h"

namespace conveyor::internal {

// What a claim on one side of a ring found.
enum class Claim : std::uint8_t {
  kOk,       // `count` positions from `pos` belong to the caller: it must fill / drain them all
  kNone,     // full (producer side) or empty (consumer side)
  kClosed,   // producer side: closed (or closing, for an unregistered producer);
             // consumer side: closed and every element taken
  kBlocked,  // another operation holds this side (a partial enqueue_many / dequeue_many), or
             // put-back elements wait at the front: the caller must go through the slow path
};

struct ClaimResult {
  Claim claim;
  std::uint64_t pos = 0;
  std::size_t count = 0;
};

// Who is claiming. Behaviour is chosen by this enum, not by rows of bools (STYLE.md).
enum class Claimant : std::uint8_t {
  kAny,         // a fast-path operation: stops at a held side and at a closing queue
  kRegistered,  // a blocked producer registered before close(): may claim while closing
  kHolder,      // the side's holder (implies registered): may claim while the side is held
};

// How many positions a claim may take.
enum class Amount : std::uint8_t {
  kUpTo,     // burst: between 1 and n
  kExactly,  // bulk: n or nothing
};

// Slot storage: an array of `count` Slots aligned to a cache-line pair, not constructed, from
// the ring's memory resource (alloc/: aligned_resource() by default, a NumaResource to put it
// on its consumers' node). Freed with the same resource, size and alignment.
template <class Slot>
class SlotArray {
 public:
  SlotArray(std::pmr::memory_resource* memory, std::size_t count)
      : memory_(memory), count_(count), slots_(allocate(memory, count)) {}
  ~SlotArray() { memory_->deallocate(slots_, sizeof(Slot) * count_, kCachePairBytes); }
  SlotArray(const SlotArray&) = delete;
  SlotArray& operator=(const SlotArray&) = delete;

  Slot* get() const noexcept { return slots_; }
  std::pmr::memory_resource* memory() const noexcept { return memory_; }

 private:
  static Slot* allocate(std::pmr::memory_resource* memory, std::size_t count) {
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(Slot)) {
      throw std::bad_array_new_length();  // sizeof(Slot) * count would wrap
    }
    return static_cast<Slot*>(memory->allocate(sizeof(Slot) * count, kCachePairBytes));
  }

  std::pmr::memory_resource* const memory_;
  const std::size_t count_;
  Slot* const slots_;
};

// pos -> slot index. Capacity is any value >= 1; a power of two uses a mask, anything else a
// division (one predictable branch; the division costs less than the coherence miss that
// every cross-thread operation pays anyway).
class SlotIndex {
 public:
  explicit SlotIndex(std::size_t capacity) noexcept
      : capacity_(capacity), mask_((capacity & (capacity - 1)) == 0 ? capacity - 1 : 0) {}
  std::size_t operator()(std::uint64_t pos) const noexcept {
    return (mask_ != 0 || capacity_ == 1) ? static_cast<std::size_t>(pos & mask_)
                                          : static_cast<std::size_t>(pos % capacity_);
  }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::size_t capacity_;
  std::uint64_t mask_;  // capacity - 1 when capacity is a power of two, else 0
};

}  // namespace conveyor::internal
