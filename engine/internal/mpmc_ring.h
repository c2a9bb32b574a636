// MpmcRing<T>: the lock-free core of FifoQueue<T, Mpmc>. Never blocks; FifoQueue adds waiting.
//
// Algorithm: Dmitry Vyukov's bounded MPMC queue (1024cores.net, "Bounded MPMC queue", 2010),
// extended with bulk claims and with state bits in the position words:
//  - Every slot has a sequence number. Slot i starts at seq = 2i. A producer owns position p when
//    slot(p).seq == 2p; it writes the payload and stores seq = 2p + 1. A consumer owns p when
//    seq == 2p + 1; it moves the payload out and stores seq = 2(p + capacity), free for the next
//    lap. (Vyukov uses p / p+1 / p+capacity; doubling keeps "full for p" and "free for p+1"
//    apart when the capacity is 1.)
//  - Producers claim positions by CAS on `tail_`, consumers by CAS on `head_`. A single-element
//    claim looks only at its slot's sequence (no read of the other side's word). A bulk claim of
//    k positions compares tail and head, then waits per slot, briefly, for a thread that claimed
//    the slot on the previous lap and has not yet published it.
//  - The high bits of both words carry state, so one CAS both claims and checks it:
//      tail_: [63] kHeld    a producer is mid-way through a partial enqueue_many
//             [62] kClosed  closed: no claim succeeds; the position bits are final
//             [61] kClosing close() requested: only registered producers may still claim
//      head_: [63] kHeld    a consumer is mid-way through a partial dequeue_many / up_to
//             [62] kStash   put-back elements wait at the front (FifoQueue's stash)
//      bits 0..60: the position (2^61 positions: centuries at a billion items a second).
//
// Invariants: head <= tail (positions); tail - head <= capacity; a claimed position is always
// filled (producer) or drained (consumer) by its claimer: claims are never abandoned, which is
// why a stale claim cannot lose an element.
//
// Progress: claims are lock-free. Publishing a claimed slot may wait for the thread that holds
// that slot from the previous lap (between its claim and its store: a few instructions); the
// wait spins, then yields the CPU so an oversubscribed machine runs that thread.
// Slots are not padded: four u64 slots share a line; padding would cost 128 B per element.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "alloc/cache_padded.h"
#include "engine/internal/backoff.h"
#include "engine/internal/event_count.h"
#include "engine/internal/ring_common.h"

namespace conveyor::internal {

template <class T>
class MpmcRing {
 public:
  // Every change a waiter waits for (claims, holds, close) is a seq_cst RMW on a position word,
  // and the snapshots below are seq_cst loads: FifoQueue's EventCounts need no fence.
  // Whether claim_pop() itself reports put-back elements (FifoQueue's stash) as kBlocked.
  static constexpr bool kStashFlaggedInClaims = true;
  static constexpr Protocol kWaitProtocol = Protocol::kAfterSeqCstRmw;

  static constexpr std::uint64_t kHeld = VyukovTail::kHeld;
  static constexpr std::uint64_t kClosed = VyukovTail::kClosed;    // tail_ only
  static constexpr std::uint64_t kClosing = VyukovTail::kClosing;  // tail_ only
  static constexpr std::uint64_t kStash = std::uint64_t{1} << 62;  // head_ only
  static constexpr std::uint64_t kPosMask = VyukovTail::kPosMask;

  MpmcRing(std::size_t capacity, std::pmr::memory_resource* memory)
      : index_(capacity), storage_(memory, capacity), slots_(storage_.get()) {
    for (std::size_t i = 0; i < capacity; ++i) {
      // relaxed: construction happens before the queue is shared with other threads.
      new (&slots_[i].seq) std::atomic<std::uint64_t>(2 * i);
    }
  }

  ~MpmcRing() {
    // The owner guarantees no concurrent operation; every position in [head, tail) is published.
    const std::uint64_t h = head_->load(std::memory_order_acquire) & kPosMask;
    const std::uint64_t t = tail_->load(std::memory_order_acquire) & kPosMask;
    for (std::uint64_t p = h; p != t; ++p) payload(slot(p))->~T();
    for (std::size_t i = 0; i < index_.capacity(); ++i) slots_[i].seq.~atomic();
  }

  MpmcRing(const MpmcRing&) = delete;
  MpmcRing& operator=(const MpmcRing&) = delete;

  std::pmr::memory_resource* memory() const noexcept { return storage_.memory(); }
  std::size_t capacity() const noexcept { return index_.capacity(); }

  // ---- producer side ----

  // Vyukov's claim (ring_common.h); A1 there pairs with R2 in pop().
  ClaimResult claim_push(std::size_t n, Amount amount, Claimant who) noexcept {
    if (n == 1) return vyukov_claim_one(*tail_, who, [this](std::uint64_t pos) {
        return slot(pos).seq.load(std::memory_order_acquire);
      });
    // relaxed: a stale head only under-counts the room; push() re-checks each slot.
    return vyukov_claim_many(*tail_, capacity(), n, amount, who, [this] {
      return head_->load(std::memory_order_relaxed) & kPosMask;
    });
  }

  // Fills a claimed position. Waits (briefly) if the previous lap's consumer has claimed the slot
  // but not yet moved its payload out.
  void push(std::uint64_t pos, T&& value) noexcept {
    Slot& s = slot(pos);
    Backoff backoff;
    // A1': pairs with R2 in pop(), as A1.
    while (s.seq.load(std::memory_order_acquire) != 2 * pos) backoff.snooze();
    new (payload(s)) T(std::move(value));
    // R1: pairs with A2 in pop() and A3 in claim_pop(); publishes the payload.
    s.seq.store(2 * pos + 1, std::memory_order_release);
  }

  // Fills `n` claimed positions in order (each slot still published on its own: R1).
  void push_bulk(std::uint64_t pos, T* items, std::size_t n) noexcept {
    for (std::size_t k = 0; k < n; ++k) push(pos + k, std::move(items[k]));
  }

  void publish_push(std::uint64_t /*end*/) noexcept {}  // per-slot publication: nothing left

  // ---- consumer side ----

  ClaimResult claim_pop(std::size_t n, Amount amount, Claimant who) noexcept {
    // relaxed: re-validated by the CAS; payloads are acquired through slot seq (A2).
    std::uint64_t h = head_->load(std::memory_order_relaxed);
    for (;;) {
      if ((h & (kHeld | kStash)) && who != Claimant::kHolder) return {Claim::kBlocked};
      const std::uint64_t pos = h & kPosMask;
      std::size_t k = 1;
      if (n == 1) {
        // A3: pairs with R1 in push(); the element at `pos` is published.
        const std::uint64_t seq = slot(pos).seq.load(std::memory_order_acquire);
        const auto lag = static_cast<std::int64_t>(seq - (2 * pos + 1));
        if (lag < 0) return empty_or_closed(pos);
        if (lag > 0) {  // another consumer took `pos`
          h = head_->load(std::memory_order_relaxed);
          continue;
        }
      } else {
        // acquire: pairs with the closer's release in finish_close(): kClosed => final position.
        const std::uint64_t t = tail_->load(std::memory_order_acquire);
        const std::uint64_t tpos = t & kPosMask;
        if (pos > tpos) {
          h = head_->load(std::memory_order_relaxed);
          continue;
        }
        const std::uint64_t avail = tpos - pos;
        if (avail == 0) return (t & kClosed) ? ClaimResult{Claim::kClosed} : ClaimResult{Claim::kNone};
        if (amount == Amount::kExactly && avail < n) return {Claim::kNone};
        k = static_cast<std::size_t>(std::min<std::uint64_t>(avail, n));
      }
      // seq_cst: as in claim_push(); blocked producers wait for it.
      if (head_->compare_exchange_weak(h, h + k, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        return {Claim::kOk, pos, k};
      }
    }
  }

  // Drains a claimed position. Waits (briefly) if its producer has claimed but not yet published.
  T pop(std::uint64_t pos) noexcept {
    Slot& s = slot(pos);
    Backoff backoff;
    // A2: pairs with R1 in push().
    while (s.seq.load(std::memory_order_acquire) != 2 * pos + 1) backoff.snooze();
    T* p = payload(s);
    T value(std::move(*p));
    p->~T();
    // R2: pairs with A1 in claim_push() / push(); the slot is free for the next lap.
    s.seq.store(2 * (pos + capacity()), std::memory_order_release);
    return value;
  }

  void pop_bulk(std::uint64_t pos, T* out, std::size_t n) noexcept {
    for (std::size_t k = 0; k < n; ++k) out[k] = pop(pos + k);
  }

  void publish_pop(std::uint64_t /*end*/) noexcept {}

  // ---- state ----

  // The side's hold: one operation at a time makes partial progress on a side, so that its run
  // of positions is contiguous (SPEC A10, A15).
  bool try_hold_producers() noexcept { return try_set(*tail_, kHeld, kClosed); }
  // seq_cst here and below: changes and snapshots that waiters depend on (kWaitProtocol).
  void release_producers() noexcept { tail_->fetch_and(~kHeld, std::memory_order_seq_cst); }
  bool producers_held() const noexcept {
    return tail_->load(std::memory_order_seq_cst) & kHeld;
  }
  bool try_hold_consumers() noexcept { return try_set(*head_, kHeld, 0); }
  void release_consumers() noexcept { head_->fetch_and(~kHeld, std::memory_order_seq_cst); }
  bool consumers_held() const noexcept {
    return head_->load(std::memory_order_seq_cst) & kHeld;
  }
  // Only the consumers' holder changes kStash.
  void set_stash_flag(bool on) noexcept {
    if (on) {
      head_->fetch_or(kStash, std::memory_order_seq_cst);
    } else {
      head_->fetch_and(~kStash, std::memory_order_seq_cst);
    }
  }

  // close(): returns false if a close was already requested. seq_cst: pairs with the registration
  // of blocked producers in FifoQueue (store->load on both sides).
  bool begin_close(bool cancel) noexcept {
    const std::uint64_t bits = cancel ? (kClosing | kClosed) : kClosing;
    const std::uint64_t old = tail_->fetch_or(bits, std::memory_order_seq_cst);
    return !(old & (kClosing | kClosed));
  }
  // R3: pairs with the acquire loads of tail_ in claim_pop() / closed(); the position is final.
  void finish_close() noexcept { tail_->fetch_or(kClosed, std::memory_order_seq_cst); }
  bool closing() const noexcept {
    return tail_->load(std::memory_order_seq_cst) & (kClosing | kClosed);
  }
  bool closed() const noexcept { return tail_->load(std::memory_order_seq_cst) & kClosed; }
  // A close(cancel) happened while registered producers were pending: in this ring a plain close
  // never sets kClosed while one is registered, so kClosed seen by a registered producer means
  // cancel.
  bool cancelled_for_registered() const noexcept { return closed(); }

  // Hints for spinning waiters: look at the next slot only, not at the other side's word, so a
  // spinning consumer does not pull the producers' line away from them (and the other way
  // round). True means "worth retrying"; never used to decide to sleep.
  bool poll_data() const noexcept {
    // relaxed: a hint; the retry re-validates everything.
    const std::uint64_t pos = head_->load(std::memory_order_relaxed) & kPosMask;
    return slot(pos).seq.load(std::memory_order_relaxed) >= 2 * pos + 1;
  }
  bool poll_room() const noexcept {
    // relaxed: a hint, as above.
    const std::uint64_t pos = tail_->load(std::memory_order_relaxed) & kPosMask;
    return slot(pos).seq.load(std::memory_order_relaxed) >= 2 * pos;
  }

  // How many elements / free slots there seem to be (hints for spinning: may be stale).
  std::uint64_t poll_stored() const noexcept {
    // relaxed: hints; head first so the difference cannot wrap.
    const std::uint64_t h = head_->load(std::memory_order_relaxed) & kPosMask;
    return (tail_->load(std::memory_order_relaxed) & kPosMask) - h;
  }
  std::uint64_t poll_free() const noexcept { return capacity() - poll_stored(); }

  // Snapshots for waiting predicates and size_approx(); may be stale by the time they return.
  std::uint64_t tail_pos() const noexcept {
    return tail_->load(std::memory_order_seq_cst) & kPosMask;
  }
  std::uint64_t head_pos() const noexcept {
    return head_->load(std::memory_order_seq_cst) & kPosMask;
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> seq;  // 2p: free for position p; 2p+1: holds position p's element
    alignas(T) unsigned char storage[sizeof(T)];
  };

  static T* payload(Slot& s) noexcept { return std::launder(reinterpret_cast<T*>(s.storage)); }
  Slot& slot(std::uint64_t pos) const noexcept { return slots_[index_(pos)]; }

  ClaimResult empty_or_closed(std::uint64_t pos) const noexcept {
    // acquire: pairs with R3; a closed tail's position is final.
    const std::uint64_t t = tail_->load(std::memory_order_acquire);
    if ((t & kClosed) && (t & kPosMask) == pos) return {Claim::kClosed};
    return {Claim::kNone};
  }

  static bool try_set(std::atomic<std::uint64_t>& word, std::uint64_t bit,
                      std::uint64_t refuse_if) noexcept {
    std::uint64_t w = word.load(std::memory_order_relaxed);
    for (;;) {
      if (w & (bit | refuse_if)) return false;
      // seq_cst (acquire at least): pairs with the release in release_*(), so the previous
      // holder's stash writes are visible; seq_cst for kWaitProtocol.
      if (word.compare_exchange_weak(w, w | bit, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
        return true;
      }
    }
  }

  const SlotIndex index_;  // read-only configuration
  SlotArray<Slot> storage_;  // freed after the destructor body destroyed the elements
  Slot* const slots_;       // storage_.get(), cached beside index_
  CachePadded<std::atomic<std::uint64_t>> tail_{0};  // producers' position + state bits
  CachePadded<std::atomic<std::uint64_t>> head_{0};  // consumers' position + state bits

  static_assert(sizeof(CachePadded<std::atomic<std::uint64_t>>) == kCachePairBytes,
                "tail_ and head_ each own a 128-byte pair of lines");
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
};

}  // namespace conveyor::internal
