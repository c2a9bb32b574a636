// EventCount: the top layer of waiting. A waiter sleeps until "something changed"; a notifier
// that finds nobody asleep pays a compiler barrier and one relaxed load, no syscall, no RMW.
//
// Protocol (after Dmitry Vyukov's eventcount and folly's EventCount, with asymmetric fences):
//
//   waiter                                   notifier
//   key = prepare_wait()   // W1: waiters++  (change the condition: store)
//                          //     heavy fence  notify()  // N1: light fence, load waiters
//   if (condition) { cancel_wait(key); done }  if waiters != 0: epoch++ and waiters = 0
//   wait(key, deadline)    // futex on epoch                (one CAS), futex_wake
//
// W1/N1 form a store->load Dekker pair: either the notifier sees the waiter registered, or the
// waiter's re-check sees the notifier's change. How the pair is ordered is the Protocol:
//  - kAfterPlainStore: the notifier's change is a plain store (SPSC publication). The heavy
//    fence (membarrier) on the rare waiting side lets the hot notifying side use only a compiler
//    barrier (asymmetric_fence.h).
//  - kAfterSeqCstRmw: the notifier's change is a seq_cst read-modify-write (an MPMC claim CAS),
//    and the waiter's re-check uses seq_cst loads. Both sides are then in the single total
//    order of seq_cst operations, so no fence at all is needed: the notifier's seq_cst load of
//    the waiter count is a plain load on x86. This avoids membarrier's IPIs on the waiting side.
// If the notifier bumps the epoch between prepare_wait and wait, the futex sees a changed value
// and returns at once, so no wake is lost. Count and epoch share one 64-bit word so that the
// waking notifier can take the waiters it wakes out of the count in the same RMW (notify_slow).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>

#include "engine/deadline.h"
#include "engine/internal/asymmetric_fence.h"
#include "engine/internal/futex.h"

namespace conveyor::internal {

enum class Protocol : std::uint8_t { kAfterPlainStore, kAfterSeqCstRmw };

template <Protocol kProtocol>
class BasicEventCount {
 public:
  using Key = std::uint32_t;

  // W1: pairs with N1 in notify(). Returns the key to pass to wait() / cancel_wait().
  Key prepare_wait() noexcept {
    const std::uint64_t s = state_.fetch_add(1, std::memory_order_seq_cst);  // waiters + 1
    if constexpr (kProtocol == Protocol::kAfterPlainStore) heavy_fence();
    return epoch_of(s);
  }

  // The waiter found its condition true (or gave up) after prepare_wait(key).
  void cancel_wait(Key key) noexcept { leave(key); }

  WaitResult wait(Key key, Deadline deadline) noexcept {
    const WaitResult r = futex_wait(epoch_word(), key, deadline);
    leave(key);
    return r;
  }

  // N1: pairs with W1. Call after the change that waiters wait for.
  void notify_all() noexcept {
    if constexpr (kProtocol == Protocol::kAfterPlainStore) {
      light_fence();
      // relaxed: ordered after the caller's change by the fence above (see the protocol).
      if (waiters_of(state_.load(std::memory_order_relaxed)) != 0) notify_slow();
    } else {
      // seq_cst: after the caller's seq_cst RMW in the total order (see the protocol).
      if (waiters_of(state_.load(std::memory_order_seq_cst)) != 0) notify_slow();
    }
  }

  // Wakes every registered waiter. The waking notifier also removes them from the count (one
  // RMW: new epoch, no waiters), so the notifications that follow before they have even run
  // see nobody and make no syscall: one futex_wake per batch of sleepers, not one per
  // notification (a woken thread may wait milliseconds for a CPU on a busy machine). Nobody
  // registered: nothing to do (a thread that registers later re-checks its condition first).
  void notify_slow() noexcept {
    // relaxed: the CAS below re-validates the word.
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    do {
      if (waiters_of(s) == 0) return;
      // acq_rel: a woken waiter's re-check sees the change made before this notification.
    } while (!state_.compare_exchange_weak(s, next_epoch(s), std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
    futex_wake(epoch_word(), kWakeAll);
  }

  bool has_waiters() const noexcept {
    // relaxed: a hint for callers deciding whether to notify; never used for correctness.
    return waiters_of(state_.load(std::memory_order_relaxed)) != 0;
  }

 private:
  static_assert(std::endian::native == std::endian::little,
                "the futex word is the high half of state_");

  static constexpr std::uint32_t waiters_of(std::uint64_t s) noexcept {
    return static_cast<std::uint32_t>(s);
  }
  static constexpr Key epoch_of(std::uint64_t s) noexcept {
    return static_cast<Key>(s >> 32);
  }
  static constexpr std::uint64_t next_epoch(std::uint64_t s) noexcept {
    return static_cast<std::uint64_t>(epoch_of(s) + 1u) << 32;  // waiters 0
  }

  // A waiter registered under epoch `key` leaves the count, unless a notifier already took it
  // out (the epoch moved on).
  void leave(Key key) noexcept {
    // relaxed: only the count matters; a notifier that still sees us pays one spare wake.
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    while (epoch_of(s) == key && waiters_of(s) != 0) {
      if (state_.compare_exchange_weak(s, s - 1, std::memory_order_relaxed)) return;
    }
  }

  // The futex sleeps on the epoch, the high 32 bits of state_ (the kernel reads that word).
  const std::atomic<std::uint32_t>& epoch_word() const noexcept {
    return *reinterpret_cast<const std::atomic<std::uint32_t>*>(
        reinterpret_cast<const unsigned char*>(&state_) + sizeof(std::uint32_t));
  }

  // Low 32 bits: threads between prepare_wait and leaving (wait / cancel_wait) that no
  // notifier has taken out yet. High 32 bits: the epoch, bumped by every waking notification.
  std::atomic<std::uint64_t> state_{0};
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
};

// The default: notifiers whose change is a plain store.
using EventCount = BasicEventCount<Protocol::kAfterPlainStore>;

}  // namespace conveyor::internal
