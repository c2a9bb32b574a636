// EventCount: the top layer of waiting. A waiter sleeps until "something changed"; a notifier
// that finds nobody asleep pays a compiler barrier and one relaxed load, no syscall, no RMW.
//
// Protocol (after Dmitry Vyukov's eventcount and folly's EventCount, with asymmetric fences):
//
//   waiter                                   notifier
//   key = prepare_wait()   // W1: waiters++  (change the condition: store)
//                          //     heavy fence  notify()  // N1: light fence, load waiters
//   if (condition) { cancel_wait(); done }     if waiters != 0: epoch++, futex_wake
//   wait(key, deadline)    // futex on epoch
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
// If the notifier bumps `epoch_` between prepare_wait and wait, the futex sees a changed value and
// returns at once, so no wake is lost.
#pragma once

#include <atomic>
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

  // W1: pairs with N1 in notify(). Returns the key to pass to wait().
  Key prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    if constexpr (kProtocol == Protocol::kAfterPlainStore) heavy_fence();
    return epoch_.load(std::memory_order_acquire);
  }

  void cancel_wait() noexcept {
    // relaxed: only the count matters; a notifier that still sees us pays one spare wake.
    waiters_.fetch_sub(1, std::memory_order_relaxed);
  }

  WaitResult wait(Key key, Deadline deadline) noexcept {
    const WaitResult r = futex_wait(epoch_, key, deadline);
    // relaxed: as in cancel_wait().
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return r;
  }

  // N1: pairs with W1. Call after the change that waiters wait for.
  void notify_all() noexcept {
    if constexpr (kProtocol == Protocol::kAfterPlainStore) {
      light_fence();
      // relaxed: ordered after the caller's change by the fence above (see the protocol).
      if (waiters_.load(std::memory_order_relaxed) != 0) notify_slow();
    } else {
      // seq_cst: after the caller's seq_cst RMW in the total order (see the protocol).
      if (waiters_.load(std::memory_order_seq_cst) != 0) notify_slow();
    }
  }

  // Unconditional wake, for rare events (close, cancel) where the cost does not matter.
  void notify_slow() noexcept {
    // release: a woken waiter's acquire load in prepare_wait() sees the change before the bump.
    epoch_.fetch_add(1, std::memory_order_release);
    futex_wake(epoch_, kWakeAll);
  }

  bool has_waiters() const noexcept {
    // relaxed: a hint for callers deciding whether to notify; never used for correctness.
    return waiters_.load(std::memory_order_relaxed) != 0;
  }

 private:
  std::atomic<std::uint32_t> epoch_{0};    // bumped by every notification that found waiters
  std::atomic<std::uint32_t> waiters_{0};  // threads between prepare_wait and the end of wait
};

// The default: notifiers whose change is a plain store.
using EventCount = BasicEventCount<Protocol::kAfterPlainStore>;

}  // namespace conveyor::internal
