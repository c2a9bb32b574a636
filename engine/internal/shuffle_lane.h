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
//
// Lazy release (after B-Queue's batched slot hand-back: Wang et al., "B-Queue: Efficient and
// Practical Queuing for Fast Core-to-Core Communication", IJPP 2013, and MCRingBuffer's lazy
// index updates: Lee et al., ANCS 2009): take_at() empties a slot but does not hand it back to
// producers; release() hands back every emptied slot at once (their sequence words, then
// head_pub). So while the lane is full and its producer polls for room, the consumer writes the
// lines producers read once per batch, not once per element. The queue decides when to release
// (release_due(), a waiting producer, a producer asking): see ShuffleQueue.
template <class T>
class ShuffleLane {
 public:
  // The tail word: bit 62 kClosed (no claim succeeds; the position is final), bit 61
  // kClosing (close() requested: only registered producers may claim), bits 0-60 the position.
  static constexpr std::uint64_t kClosed = VyukovTail::kClosed;
  static constexpr std::uint64_t kClosing = VyukovTail::kClosing;
  static constexpr std::uint64_t kPosMask = VyukovTail::kPosMask;

  ShuffleLane(std::size_t capacity, std::pmr::memory_resource* memory)
      : index_(capacity),
        release_batch_(std::clamp<std::size_t>(capacity / kReleaseDivisor, 1, kMaxReleaseBatch)),
        storage_(memory, capacity),
        slots_(storage_.get()) {
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

  // Claims up to n free positions (A9: what fits): Vyukov's claim (ring_common.h); A1 there
  // pairs with R2 in release(). kNone: full; kClosed: closed (or closing, for an unregistered
  // producer).
  ClaimResult claim(std::size_t n, Claimant who) noexcept {
    if (n == 1) return vyukov_claim_one(*tail_, who, [this](std::uint64_t pos) {
        return slot(pos).seq.load(std::memory_order_acquire);
      });
    // acquire: pairs with R3 in release().
    return vyukov_claim_many(*tail_, capacity(), n, Amount::kUpTo, who, [this] {
      return head_pub_->load(std::memory_order_acquire);
    });
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
    const std::uint64_t before = v.published;
    while (v.published - v.head < capacity()) {
      // A2: pairs with R1 in push().
      if (slot(v.published).seq.load(std::memory_order_acquire) != 2 * v.published + 1) break;
      ++v.published;
    }
    if (v.published != before) {
      // relaxed: a starting point for the predicates' scans, never trusted below head_now.
      v.published_hint.store(v.published, std::memory_order_relaxed);
    }
    return static_cast<std::size_t>(v.published - v.head);
  }

  // Removes the element at offset `i` of the published prefix; the oldest element fills the
  // hole so that the prefix stays contiguous from head. The emptied slot (the old head) stays
  // the consumer side's until release().
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
    ++v.head;
    return value;
  }

  // After take_at() calls: publishes head for size snapshots and the consumers' waiting
  // predicates (not for producers: their room comes from release()).
  void publish_taken() noexcept {
    // H2: release, as R3; read by published() and stored() (a stale value over-counts).
    view_->head_now.store(view_->head, std::memory_order_release);
  }

  // Emptied slots not yet handed back to producers.
  std::size_t unreleased() const noexcept { return static_cast<std::size_t>(view_->head - view_->released); }
  bool release_due() const noexcept { return unreleased() >= release_batch_; }

  // Hands every emptied slot back to producers. Returns how many.
  std::size_t release() noexcept {
    View& v = *view_;
    const std::uint64_t from = v.released;
    for (std::uint64_t p = from; p != v.head; ++p) {
      // R2: pairs with A1 in claim() and A1' in push(); the slot is free for the next lap.
      slot(p).seq.store(2 * (p + capacity()), std::memory_order_release);
    }
    v.released = v.head;
    // R3: pairs with the acquire in claim() and the producers' waiting predicate.
    head_pub_->store(v.head, std::memory_order_release);
    return static_cast<std::size_t>(v.head - from);
  }

  // Closed lanes only: true when every claimed position was taken.
  bool empty_final() const noexcept { return (tail_word() & kPosMask) == view_->head; }

  // ---- snapshots for waiting predicates (any thread) ----

  // Published, not yet taken: head_now, then the sequence words from the consumer side's
  // published prefix on (seq_cst loads: the waiting predicate of consumers). Emptied slots not
  // yet released still hold their old sequence word, so a stale head_now can over-count for a
  // moment (a spurious wake-up), never under-count (a lost one).
  std::uint64_t published() const noexcept {
    const View& v = *view_;
    const std::uint64_t h = v.head_now.load(std::memory_order_seq_cst);
    // relaxed: a hint; below head_now (stale) we scan from head_now.
    std::uint64_t p = std::max(h, v.published_hint.load(std::memory_order_relaxed));
    while (p - h < capacity() && slot(p).seq.load(std::memory_order_seq_cst) == 2 * p + 1) ++p;
    return p - h;
  }

  // Claimed, not yet taken: the lane's size (head_now first: it never passes the tail).
  std::uint64_t stored() const noexcept {
    const std::uint64_t h = view_->head_now.load(std::memory_order_seq_cst);
    return (tail_->load(std::memory_order_seq_cst) & kPosMask) - h;
  }

  // Room producers can claim now (emptied slots count once released).
  bool has_room() const noexcept {
    const std::uint64_t h = head_pub_->load(std::memory_order_seq_cst);
    return (tail_->load(std::memory_order_seq_cst) & kPosMask) - h < capacity();
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> seq;  // 2p: free for position p; 2p+1: holds p's element
    alignas(T) unsigned char storage[sizeof(T)];
  };
  // The consumer side's view of the lane, on its own lines (written by the lock holder; read
  // by waiting consumers and size snapshots, not polled by producers).
  struct View {
    std::uint64_t head = 0;       // oldest stored position
    std::uint64_t published = 0;  // [head, published) seen published
    std::uint64_t released = 0;   // [released, head): emptied, not yet handed to producers
    std::atomic<std::uint64_t> head_now{0};        // head, for predicates and snapshots
    std::atomic<std::uint64_t> published_hint{0};  // published, for predicates
  };
  // Emptied slots are handed back in batches of capacity / 8, at most 32 (1 for lanes of up
  // to 15 slots: small queues behave as without batching).
  static constexpr std::size_t kReleaseDivisor = 8;
  static constexpr std::size_t kMaxReleaseBatch = 32;

  static T* payload(Slot& s) noexcept { return std::launder(reinterpret_cast<T*>(s.storage)); }
  Slot& slot(std::uint64_t pos) const noexcept { return slots_[index_(pos)]; }
  std::uint64_t tail_pos_relaxed() const noexcept {
    return tail_->load(std::memory_order_relaxed) & kPosMask;  // relaxed: quiescent
  }

  const SlotIndex index_;
  const std::size_t release_batch_;
  SlotArray<Slot> storage_;  // freed after the destructor body
  Slot* const slots_;
  CachePadded<std::atomic<std::uint64_t>> tail_{std::uint64_t{0}};  // producers' word
  // released, for producers (bulk claims and their waiting predicate): written once per batch.
  CachePadded<std::atomic<std::uint64_t>> head_pub_{std::uint64_t{0}};
  CachePadded<View> view_;
};

}  // namespace conveyor::internal
