// SpscRing<T>: the lock-free core of FifoQueue<T, Spsc>: one producer thread, one consumer
// thread at a time (close() and size_approx() from any thread).
//
// Algorithm: Lamport's single-producer single-consumer ring (Lamport, "Specifying concurrent
// program modules", TOPLAS 1983) with each side caching the other side's index, as in rigtorp's
// SPSCQueue and DPDK's rte_ring: the producer re-reads `head` only when its cached copy says
// full, the consumer re-reads `tail` only when its copy says empty. That removes most coherence
// misses on the indices (rigtorp measured about 20x fewer). The fast path has no read-modify-write.
//
// Closing without an RMW on the producer's path: the closer must know that no enqueue is still
// between its "not closed" check and its publication, or a consumer could see "closed and empty"
// and then an element. The producer marks itself busy (`in_op`) around each claim+publish and
// reads `state_` after a compiler-only fence; the closer sets kClosing, runs the heavy
// (membarrier) fence, then waits for `in_op == 0` before setting kClosed. This is the
// asymmetric Dekker pattern of asymmetric_fence.h.
//
// Poll pacing: a blocking call that finds the ring empty waits kPollPacing pauses (about
// 400 ns where a pause costs 25 ns, as on the AMD EPYC of PERF.md) before it reads `tail`
// again, and a blocked producer likewise for `head`. Each look pulls the other side's index line
// (and the slot line being filled) out of its cache, so a consumer polling faster than the
// producer can fill a cache line only slows the producer down; after the pause it takes what
// accumulated in one claim, at one coherence miss for the batch. This is the batching effect
// of the LMAX Disruptor's consumers (Thompson et al., "Disruptor", 2011) and the reason B-Queue
// (Wang et al., "B-Queue: Efficient and Practical Queuing for Fast Core-to-Core Communication",
// IJPP 2013) keeps its two sides apart. Cost: up to one pacing interval of extra latency on an
// element that arrives while its consumer waits. try_* calls never pace. Measured there
// (conveyor perf, pinned 1P1C, near): 8 pauses took spsc_pinned from ~98 to ~135 M/s and the
// blocking ping-pong p50 from 463 to 271 ns (the unpaced spin polled at once, then after 1, 2,
// 4... pauses, and caught a reply late); 16 pauses ~147 M/s at 463 ns, the latency before.
// 16 it is: throughput is what a pipeline queue is for, at no loss against the old latency.
//
// Prefetching ahead: every slot line crosses between the cores twice per lap, once to the
// consumer that reads it and once back as the producer's invalidation of that copy when it
// fills the slot again. A core copying 8-byte elements stalls on those transfers, not on
// instructions, and keeps only as many in flight as its current copy touches lines. So the
// producer asks, with PREFETCHW, for the lines up to kPrefetchLines ahead that are free by its
// cached head, and the consumer for the lines up to kPrefetchLines ahead that are published by
// its cached tail: push_bulk / pop_bulk for every line after their batch, push / pop once per
// line they enter. The next calls then find their lines arriving or arrived. Neither side
// touches a line the other may be writing, so no line is pulled away early: the rule behind
// FastForward's "temporal slipping" (Giacomoni et al., PPoPP 2008), keep each side on lines the
// other is not using, applied to prefetches. Measured in 1P1C pinned runs interleaved with the
// build before (conveyor-perf-worker, blocking calls): single elements near 111 -> 161 M/s, far
// 36 -> 62; batches of 32 near 591 -> 638, far 112 -> 198. 8 lines: 4 and 16 measured within
// a few per cent of it. Cost: 3 instructions per single element, 4 per bulk element.
//
// Layout: {tail}, {cached head, in_op}, {head}, {cached tail}, {state}, each alone on a
// CachePadded pair of lines; the static_asserts at the end prove each fits its pair.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "alloc/cache_padded.h"
#include "engine/internal/asymmetric_fence.h"
#include "engine/internal/backoff.h"
#include "engine/internal/event_count.h"
#include "engine/internal/prefetch.h"
#include "engine/internal/ring_common.h"

namespace conveyor::internal {

template <class T>
class SpscRing {
 public:
  // Publication is a plain store: waiters pair with it through asymmetric fences.
  // Whether claim_pop() itself reports put-back elements (FifoQueue's stash) as kBlocked.
  static constexpr bool kStashFlaggedInClaims = false;
  static constexpr Protocol kWaitProtocol = Protocol::kAfterPlainStore;
  // Pauses (cpu_relax) a blocking call that found the ring empty (full) spends before it first
  // looks at `tail` (`head`) again; FifoQueue's await()/spin_until() read it. See "Poll
  // pacing" above.
  static constexpr std::uint32_t kPollPacing = 16;
  // How far ahead, in lines of slots, each side prefetches. See "Prefetching ahead" above.
  static constexpr std::uint64_t kPrefetchLines = 8;

  static constexpr std::uint32_t kClosing = 1u << 0;
  static constexpr std::uint32_t kClosed = 1u << 1;
  static constexpr std::uint32_t kCancel = 1u << 2;

  SpscRing(std::size_t capacity, std::pmr::memory_resource* memory)
      : index_(capacity), storage_(memory, capacity), slots_(storage_.get()) {}

  ~SpscRing() {
    const std::uint64_t h = cons_->head.load(std::memory_order_acquire);
    const std::uint64_t t = prod_->tail.load(std::memory_order_acquire);
    for (std::uint64_t p = h; p != t; ++p) payload(slot(p))->~T();
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::pmr::memory_resource* memory() const noexcept { return storage_.memory(); }
  std::size_t capacity() const noexcept { return index_.capacity(); }

  // ---- producer side (the producer thread only) ----

  ClaimResult claim_push(std::size_t n, Amount amount, Claimant who) noexcept {
    ProducerLocal& p = *prod_local_;
    // relaxed: ordered before the state_ load by the fence below (closer's side: heavy fence).
    p.in_op.store(1, std::memory_order_relaxed);
    light_fence();
    // acquire: pairs with the release in begin_close(); relaxed would do for the bits alone.
    const std::uint32_t st = state_->load(std::memory_order_acquire);
    if ((st & kClosed) || ((st & kClosing) && (who == Claimant::kAny || (st & kCancel)))) {
      end_op();
      return {Claim::kClosed};
    }
    // relaxed: only this thread writes tail.
    const std::uint64_t pos = prod_->tail.load(std::memory_order_relaxed);
    std::uint64_t room = capacity() - (pos - p.cached_head);
    if (room < n) {
      // A1: pairs with R2 in publish_pop(); the consumer has moved those payloads out.
      p.cached_head = cons_->head.load(std::memory_order_acquire);
      room = capacity() - (pos - p.cached_head);
    }
    if (room == 0 || (amount == Amount::kExactly && room < n)) {
      end_op();
      return {Claim::kNone};
    }
    return {Claim::kOk, pos, static_cast<std::size_t>(std::min<std::uint64_t>(room, n))};
  }

  void push(std::uint64_t pos, T&& value) noexcept {
    // Entering a line: ask for the one kPrefetchLines ahead if it is free by the cached head.
    const std::uint64_t ahead = pos + kAheadItems;
    if (pos % kLineItems == 0 && ahead < prod_local_->cached_head + capacity()) {
      prefetch_write(&slot(ahead));
    }
    new (payload(slot(pos))) T(std::move(value));
  }

  // Fills `n` claimed positions from `items`, in at most two contiguous pieces (the ring wraps
  // once at most), so trivially copyable elements move as one memcpy per piece.
  void push_bulk(std::uint64_t pos, T* items, std::size_t n) noexcept {
    const std::size_t i = index_(pos);
    const std::size_t first = std::min(n, capacity() - i);
    construct_from(slots_ + i, items, first);
    construct_from(slots_, items + first, n - first);
    // The lines the next bulk call will fill: free by the cached head (which under-counts).
    prefetch_lines(pos + n, std::min(prod_local_->cached_head + capacity(), pos + n + kAheadItems),
                   Access::kWrite);
  }

  void publish_push(std::uint64_t end) noexcept {
    // R1: pairs with A2 in claim_pop(); publishes the payloads before `end`.
    prod_->tail.store(end, std::memory_order_release);
    end_op();
  }

  // ---- consumer side (the consumer thread only) ----

  ClaimResult claim_pop(std::size_t n, Amount amount, Claimant /*who*/) noexcept {
    ConsumerLocal& c = *cons_local_;
    // relaxed: only this thread writes head.
    const std::uint64_t pos = cons_->head.load(std::memory_order_relaxed);
    std::uint64_t avail = c.cached_tail - pos;
    if (avail < n) {
      // A2: pairs with R1 in publish_push().
      c.cached_tail = prod_->tail.load(std::memory_order_acquire);
      avail = c.cached_tail - pos;
    }
    if (avail == 0) {
      // acquire: pairs with R3 in finish_close(); after kClosed the tail is final.
      if (!(state_->load(std::memory_order_acquire) & kClosed)) return {Claim::kNone};
      c.cached_tail = prod_->tail.load(std::memory_order_acquire);
      if (c.cached_tail == pos) return {Claim::kClosed};
      avail = c.cached_tail - pos;
    }
    if (amount == Amount::kExactly && avail < n) return {Claim::kNone};
    return {Claim::kOk, pos, static_cast<std::size_t>(std::min<std::uint64_t>(avail, n))};
  }

  T pop(std::uint64_t pos) noexcept {
    // Entering a line: ask for the one kPrefetchLines ahead if it is published by the cached tail.
    const std::uint64_t ahead = pos + kAheadItems;
    if (pos % kLineItems == 0 && ahead < cons_local_->cached_tail) prefetch_read(&slot(ahead));
    T* p = payload(slot(pos));
    T value(std::move(*p));
    p->~T();
    return value;
  }

  // Drains `n` claimed positions into out[0..n) (move-assigned), as push_bulk in two pieces.
  void pop_bulk(std::uint64_t pos, T* out, std::size_t n) noexcept {
    const std::size_t i = index_(pos);
    const std::size_t first = std::min(n, capacity() - i);
    // The published lines the next bulk call will drain, asked for before this batch's copy.
    prefetch_lines(pos + n, std::min(cons_local_->cached_tail, pos + n + kAheadItems),
                   Access::kRead);
    assign_from(out, slots_ + i, first);
    assign_from(out + first, slots_, n - first);
  }

  void publish_pop(std::uint64_t end) noexcept {
    // R2: pairs with A1 in claim_push(); the slots before `end` are free.
    cons_->head.store(end, std::memory_order_release);
  }

  // ---- state ----

  // One producer and one consumer: a side is never contended, so holding it is free.
  bool try_hold_producers() noexcept { return !closed(); }
  void release_producers() noexcept {}
  bool producers_held() const noexcept { return false; }
  bool try_hold_consumers() noexcept { return true; }
  void release_consumers() noexcept {}
  bool consumers_held() const noexcept { return false; }
  void set_stash_flag(bool) noexcept {}  // the single consumer checks the stash itself

  bool begin_close(bool cancel) noexcept {
    const std::uint32_t bits = cancel ? (kClosing | kCancel) : kClosing;
    // seq_cst: pairs with the registration of blocked producers in FifoQueue.
    const std::uint32_t old = state_->fetch_or(bits, std::memory_order_seq_cst);
    if (cancel) finish_close();
    return !(old & (kClosing | kClosed));
  }

  void finish_close() noexcept {
    // Heavy side of the in_op handshake: after it, a producer that has not yet read state_ sees
    // kClosing; one that read it earlier has in_op == 1 until it has published.
    heavy_fence();
    Backoff backoff;
    // acquire: pairs with the release in end_op(); its tail store is visible.
    while (prod_local_->in_op.load(std::memory_order_acquire) != 0) backoff.snooze();
    // R3: pairs with the acquire in claim_pop(); the tail is final.
    state_->fetch_or(kClosed, std::memory_order_seq_cst);
  }

  bool closing() const noexcept {
    return state_->load(std::memory_order_seq_cst) & (kClosing | kClosed);
  }
  bool closed() const noexcept { return state_->load(std::memory_order_acquire) & kClosed; }
  bool cancelled_for_registered() const noexcept {
    return state_->load(std::memory_order_acquire) & kCancel;
  }

  // Hints for spinning waiters (see MpmcRing): true means "worth retrying".
  bool poll_data() const noexcept {
    // relaxed: hints; the retry re-validates with acquire loads.
    return prod_->tail.load(std::memory_order_relaxed) !=
           cons_->head.load(std::memory_order_relaxed);
  }
  bool poll_room() const noexcept {
    // relaxed: hints, as above.
    return prod_->tail.load(std::memory_order_relaxed) -
               cons_->head.load(std::memory_order_relaxed) <
           capacity();
  }

  // How many elements / free slots there seem to be (hints for spinning: may be stale).
  std::uint64_t poll_stored() const noexcept {
    // relaxed: hints; head first so the difference cannot wrap.
    const std::uint64_t h = cons_->head.load(std::memory_order_relaxed);
    return prod_->tail.load(std::memory_order_relaxed) - h;
  }
  std::uint64_t poll_free() const noexcept { return capacity() - poll_stored(); }

  std::uint64_t tail_pos() const noexcept { return prod_->tail.load(std::memory_order_acquire); }
  std::uint64_t head_pos() const noexcept { return cons_->head.load(std::memory_order_acquire); }

 private:
  struct Slot {
    alignas(T) unsigned char storage[sizeof(T)];
  };
  static_assert(sizeof(Slot) == sizeof(T), "slots are laid out as a T[] (push_bulk's memcpy)");
  // The shared index and the side's private state sit on different line pairs (as in rigtorp's
  // SPSCQueue): the other side reads `tail` / `head` often, and each such read would otherwise
  // make the owner's next write to its cached index or `in_op` a coherence miss.
  struct Producer {
    std::atomic<std::uint64_t> tail{0};   // next position to fill; written by the producer
  };
  struct ProducerLocal {
    std::uint64_t cached_head = 0;        // producer's copy of head (may be stale: under-counts)
    std::atomic<std::uint32_t> in_op{0};  // 1 while a claim is not yet published or abandoned
  };
  struct Consumer {
    std::atomic<std::uint64_t> head{0};   // next position to drain; written by the consumer
  };
  struct ConsumerLocal {
    std::uint64_t cached_tail = 0;        // consumer's copy of tail (may be stale: under-counts)
  };

  void end_op() noexcept {
    // release: pairs with the acquire in finish_close().
    prod_local_->in_op.store(0, std::memory_order_release);
  }

  // "Prefetching ahead" above: the slots of [from, to), one hint per line.
  // always_inline: see prefetch.h (GCC deletes calls to a function made only of prefetches).
  static constexpr std::uint64_t kLineItems = sizeof(T) >= 64 ? 1 : 64 / sizeof(T);
  static constexpr std::uint64_t kAheadItems = kPrefetchLines * kLineItems;
  enum class Access : std::uint8_t { kRead, kWrite };
  [[gnu::always_inline]] void prefetch_lines(std::uint64_t from, std::uint64_t to,
                                             Access access) const noexcept {
    for (std::uint64_t p = from; p < to; p += kLineItems) {
      if (access == Access::kWrite) {
        prefetch_write(&slot(p));
      } else {
        prefetch_read(&slot(p));
      }
    }
  }

  static T* payload(Slot& s) noexcept { return std::launder(reinterpret_cast<T*>(s.storage)); }

  static void construct_from(Slot* dst, T* src, std::size_t n) noexcept {
    if constexpr (std::is_trivially_copyable_v<T>) {
      if (n != 0) std::memcpy(static_cast<void*>(dst), src, n * sizeof(T));
    } else {
      for (std::size_t k = 0; k < n; ++k) new (payload(dst[k])) T(std::move(src[k]));
    }
  }

  static void assign_from(T* out, Slot* src, std::size_t n) noexcept {
    if constexpr (std::is_trivially_copyable_v<T>) {
      if (n != 0) std::memcpy(static_cast<void*>(out), src, n * sizeof(T));
    } else {
      for (std::size_t k = 0; k < n; ++k) {
        T* p = payload(src[k]);
        out[k] = std::move(*p);
        p->~T();
      }
    }
  }
  Slot& slot(std::uint64_t pos) const noexcept { return slots_[index_(pos)]; }

  const SlotIndex index_;  // read-only configuration
  SlotArray<Slot> storage_;  // freed after the destructor body destroyed the elements
  Slot* const slots_;       // storage_.get(), cached beside index_
  CachePadded<Producer> prod_;
  CachePadded<ProducerLocal> prod_local_;
  CachePadded<Consumer> cons_;
  CachePadded<ConsumerLocal> cons_local_;
  CachePadded<std::atomic<std::uint32_t>> state_{0};  // kClosing | kClosed | kCancel

  // Each side's words fit in, and own, one 128-byte pair of lines: the producer's writes never
  // invalidate the consumer's line and the other way round.
  static_assert(sizeof(CachePadded<Producer>) == kCachePairBytes);
  static_assert(sizeof(CachePadded<ProducerLocal>) == kCachePairBytes);
  static_assert(sizeof(CachePadded<Consumer>) == kCachePairBytes);
  static_assert(sizeof(CachePadded<ConsumerLocal>) == kCachePairBytes);
};

}  // namespace conveyor::internal
