// ShuffleLane<T>: one producer lane of a ShuffleQueue (engine/shuffle_queue.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <utility>

#include "alloc/cache_padded.h"
#include "engine/internal/backoff.h"
#include "engine/internal/ring_common.h"

namespace conveyor::internal {

// One producer lane of a ShuffleQueue (engine/shuffle_queue.h has the algorithm): a Vyukov
// bounded ring (1024cores.net, "Bounded MPMC queue", 2010) of `capacity` slots on the producer
// side. Producers use claim() and push(); everything else belongs to the holder of the
// queue's consumer lock, which keeps the lane's stored elements one contiguous run from head
// (take_at() moves the oldest element into the hole) so that producers see an ordinary ring.
template <class T>
class ShuffleLane {
 public:
  // The tail word: bit 62 kClosed (no claim succeeds; the position is final), bit 61
  // kClosing (close() requested: only registered producers may claim), bits 0-60 the position.
  static constexpr std::uint64_t kClosed = std::uint64_t{1} << 62;
  static constexpr std::uint64_t kClosing = std::uint64_t{1} << 61;
  static constexpr std::uint64_t kPosMask = (std::uint64_t{1} << 61) - 1;

  ShuffleLane(std::size_t capacity, std::pmr::memory_resource* memory)
      : index_(capacity), storage_(memory, capacity), slots_(storage_.get()) {
    for (std::size_t i = 0; i < capacity; ++i) {
      // Construction happens before the queue is shared with other threads.
      new (&slots_[i].seq) std::atomic<std::uint64_t>(2 * i);
    }
  }
  ~ShuffleLane() {
    // No concurrent operation; every claimed position is published.
    const std::uint64_t t = tail_pos_relaxed();
    for (std::uint64_t p = view_->head; p != t; ++p) payload(slot(p))->~T();
    for (std::size_t i = 0; i < capacity(); ++i) slots_[i].seq.~atomic();
  }
  ShuffleLane(const ShuffleLane&) = delete;
  ShuffleLane& operator=(const ShuffleLane&) = delete;

  std::size_t capacity() const noexcept { return index_.capacity(); }

  // ---- producers ----

  // Claims up to n free positions (A9: what fits). kNone: full; kClosed: closed (or
  // closing, for an unregistered producer).
  ClaimResult claim(std::size_t n, Claimant who) noexcept {
    // relaxed: the CAS below re-validates the whole word; the slot's seq carries the data.
    std::uint64_t t = tail_->load(std::memory_order_relaxed);
    for (;;) {
      if ((t & kClosed) != 0) return {Claim::kClosed};
      if ((t & kClosing) != 0 && who == Claimant::kAny) {
        return {Claim::kClosed};
      }
      const std::uint64_t pos = t & kPosMask;
      std::size_t k = 1;
      if (n == 1) {
        // A1: pairs with R2 in take_at(): the consumer has moved the previous lap out.
        const std::uint64_t seq = slot(pos).seq.load(std::memory_order_acquire);
        const auto lag = static_cast<std::int64_t>(seq - 2 * pos);
        if (lag < 0) return {Claim::kNone};  // full
        if (lag > 0) {                                  // another producer took pos
          t = tail_->load(std::memory_order_relaxed);
          continue;
        }
      } else {
        // acquire: pairs with R3 in publish_head(); a stale head only under-counts room,
        // and push() re-checks every slot.
        const std::uint64_t h = view_->head_pub.load(std::memory_order_acquire);
        if (h > pos) {  // consumers passed our stale t
          t = tail_->load(std::memory_order_relaxed);
          continue;
        }
        // A head older than pos - capacity (read before a fresher tail) says full too.
        if (pos - h >= capacity()) return {Claim::kNone};
        const std::uint64_t room = capacity() - (pos - h);
        k = static_cast<std::size_t>(std::min<std::uint64_t>(room, n));
      }
      // E1: seq_cst, the change sleeping consumers wait for (kAfterSeqCstRmw).
      if (tail_->compare_exchange_weak(t, t + k, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        return {Claim::kOk, pos, k};
      }
    }
  }

  // Fills a claimed position. Waits (briefly) if the consumer has not yet freed the slot's
  // previous lap (only after a bulk claim made from a fresh head_pub).
  void push(std::uint64_t pos, T&& value) noexcept {
    Slot& s = slot(pos);
    Backoff backoff;
    // A1': as A1.
    while (s.seq.load(std::memory_order_acquire) != 2 * pos) backoff.snooze();
    new (payload(s)) T(std::move(value));
    // R1: pairs with A2 in refresh() and the predicates' loads; publishes the payload. A
    // seq_cst RMW: the change sleeping consumers wait for (kAfterSeqCstRmw); on x86 an xchg
    // on a line this thread already owns.
    (void)s.seq.exchange(2 * pos + 1, std::memory_order_seq_cst);
  }

  // fetch_or of state bits into the tail (close). Returns the old word.
  std::uint64_t shut(std::uint64_t bits) noexcept {
    return tail_->fetch_or(bits, std::memory_order_seq_cst);
  }
  std::uint64_t tail_word() const noexcept { return tail_->load(std::memory_order_seq_cst); }

  // ---- consumer side (holder of the consumer lock) ----

  // Extends the published prefix; returns the number of stored elements the consumer sees.
  std::size_t refresh() noexcept {
    View& v = *view_;
    while (v.published - v.head < capacity()) {
      // A2: pairs with R1 in push().
      if (slot(v.published).seq.load(std::memory_order_acquire) != 2 * v.published + 1) break;
      ++v.published;
    }
    // relaxed: a starting point for the predicates' scans, never trusted past head_pub.
    v.published_hint.store(v.published, std::memory_order_relaxed);
    return static_cast<std::size_t>(v.published - v.head);
  }

  // Removes the element at offset `i` of the published prefix; the oldest element fills the
  // hole so that the prefix stays contiguous from head.
  T take_at(std::size_t i) noexcept {
    View& v = *view_;
    T* hole = payload(slot(v.head + i));
    T value(std::move(*hole));
    if (i != 0) {
      T* oldest = payload(slot(v.head));
      *hole = std::move(*oldest);
      hole = oldest;
    }
    hole->~T();
    // R2: pairs with A1 in claim(); the slot is free for the next lap.
    slot(v.head).seq.store(2 * (v.head + capacity()), std::memory_order_release);
    ++v.head;
    return value;
  }

  // R3: pairs with the acquire in claim() and the producers' waiting predicate.
  void publish_head() noexcept { view_->head_pub.store(view_->head, std::memory_order_release); }

  // Closed lanes only: true when every claimed position was taken.
  bool empty_final() const noexcept { return (tail_word() & kPosMask) == view_->head; }

  // ---- snapshots for waiting predicates (any thread) ----

  // Published, not yet taken: head_pub, then the sequence words from the consumer side's
  // published prefix on (seq_cst loads: the waiting predicate of consumers).
  std::uint64_t published() const noexcept {
    const View& v = *view_;
    const std::uint64_t h = v.head_pub.load(std::memory_order_seq_cst);
    // relaxed: a hint; below head_pub (stale) we scan from head_pub.
    std::uint64_t p = std::max(h, v.published_hint.load(std::memory_order_relaxed));
    while (p - h < capacity() && slot(p).seq.load(std::memory_order_seq_cst) == 2 * p + 1) ++p;
    return p - h;
  }

  // Claimed, not yet taken (head_pub first: it never passes the tail, so no wrap).
  std::uint64_t claimed() const noexcept {
    const std::uint64_t h = view_->head_pub.load(std::memory_order_seq_cst);
    return (tail_->load(std::memory_order_seq_cst) & kPosMask) - h;
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> seq;  // 2p: free for position p; 2p+1: holds p's element
    alignas(T) unsigned char storage[sizeof(T)];
  };
  // The consumer side's view of the lane, on its own lines (written by the lock holder).
  struct View {
    std::uint64_t head = 0;       // oldest stored position
    std::uint64_t published = 0;  // [head, published) seen published
    std::atomic<std::uint64_t> head_pub{0};  // head, for producers and predicates
    std::atomic<std::uint64_t> published_hint{0};  // published, for predicates
  };

  static T* payload(Slot& s) noexcept { return std::launder(reinterpret_cast<T*>(s.storage)); }
  Slot& slot(std::uint64_t pos) const noexcept { return slots_[index_(pos)]; }
  std::uint64_t tail_pos_relaxed() const noexcept {
    return tail_->load(std::memory_order_relaxed) & kPosMask;  // relaxed: quiescent
  }

  const SlotIndex index_;
  SlotArray<Slot> storage_;  // freed after the destructor body
  Slot* const slots_;
  CachePadded<std::atomic<std::uint64_t>> tail_{std::uint64_t{0}};  // producers' word
  CachePadded<View> view_;
};

}  // namespace conveyor::internal
