// Pieces shared by the ring layouts (mpmc_ring.h, spsc_ring.h, shuffle_lane.h).
#pragma once

#include <algorithm>
#include <atomic>
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

// The producers' word of a Vyukov ring (MpmcRing, ShuffleLane): the position in bits 0-60,
// state bits above it.
struct VyukovTail {
  static constexpr std::uint64_t kHeld = std::uint64_t{1} << 63;     // a partial bulk op holds it
  static constexpr std::uint64_t kClosed = std::uint64_t{1} << 62;   // no claim; position final
  static constexpr std::uint64_t kClosing = std::uint64_t{1} << 61;  // only registered claims
  static constexpr std::uint64_t kPosMask = (std::uint64_t{1} << 61) - 1;

  // Whether `who` may claim at all on tail word t: kOk to go on, else the verdict.
  static constexpr Claim admits(std::uint64_t t, Claimant who) noexcept {
    if ((t & kClosed) != 0) return Claim::kClosed;
    if ((t & kClosing) != 0 && who == Claimant::kAny) return Claim::kClosed;
    if ((t & kHeld) != 0 && who != Claimant::kHolder) return Claim::kBlocked;
    return Claim::kOk;
  }
};

// The producers' claim on a Vyukov bounded ring (Dmitry Vyukov, 1024cores.net, "Bounded MPMC
// queue", 2010), shared by MpmcRing and ShuffleLane. Slot sequence words: 2p free for position
// p, 2p+1 holding p's element. The claim is a seq_cst CAS on `tail`: the change sleeping
// consumers wait for (Protocol::kAfterSeqCstRmw); on x86 the same lock cmpxchg as a relaxed one.
//
// One position (the fast path, inlined): free when seq_at(pos) (an acquire load: A1, pairs with
// the consumer's release of the previous lap) reads 2 * pos; below it the ring is full; above
// it another producer took pos and our tail is stale.
template <class SeqAt>
[[gnu::always_inline]] inline ClaimResult vyukov_claim_one(std::atomic<std::uint64_t>& tail, Claimant who,
                             SeqAt seq_at) noexcept {
  // relaxed: the CAS below re-validates the whole word; the slot's seq carries the data edge.
  std::uint64_t t = tail.load(std::memory_order_relaxed);
  for (;;) {
    if (const Claim c = VyukovTail::admits(t, who); c != Claim::kOk) return {c};
    const std::uint64_t pos = t & VyukovTail::kPosMask;
    const auto lag = static_cast<std::int64_t>(seq_at(pos) - 2 * pos);
    if (lag < 0) return {Claim::kNone};  // the previous lap's element is still there: full
    if (lag > 0) {                       // another producer took pos: our t is stale
      t = tail.load(std::memory_order_relaxed);
      continue;
    }
    if (tail.compare_exchange_weak(t, t + 1, std::memory_order_seq_cst,
                                   std::memory_order_relaxed)) {
      return {Claim::kOk, pos, 1};
    }
  }
}

// Several positions (kept out of line: its cost is spread over the batch): the room between
// the tail and head() (the consumers' position, possibly stale: that only under-counts the
// room, and the caller's push re-checks every slot). A head older than pos - capacity (read
// before a fresher tail) says full too, instead of wrapping the room.
template <class Head>
[[gnu::noinline]] ClaimResult vyukov_claim_many(std::atomic<std::uint64_t>& tail,
                                                std::uint64_t capacity, std::size_t n,
                                                Amount amount, Claimant who, Head head) noexcept {
  std::uint64_t t = tail.load(std::memory_order_relaxed);  // relaxed: as above
  for (;;) {
    if (const Claim c = VyukovTail::admits(t, who); c != Claim::kOk) return {c};
    const std::uint64_t pos = t & VyukovTail::kPosMask;
    const std::uint64_t h = head();
    if (h > pos) {  // consumers passed our stale t
      t = tail.load(std::memory_order_relaxed);
      continue;
    }
    if (pos - h >= capacity) return {Claim::kNone};
    const std::uint64_t room = capacity - (pos - h);
    if (amount == Amount::kExactly && room < n) return {Claim::kNone};
    const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(room, n));
    if (tail.compare_exchange_weak(t, t + k, std::memory_order_seq_cst,
                                   std::memory_order_relaxed)) {
      return {Claim::kOk, pos, k};
    }
  }
}

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
