// ShardLock: a small spin-then-park mutex for critical sections of a few dozen instructions
// (one ShuffleQueue shard's push_back or swap-remove).
//
// Contract: mutual exclusion; lock() acquires, unlock() releases, so everything written under
// the lock happens-before everything read under it by the next holder. Not recursive, not fair.
//
// Algorithm (Drepper, "Futexes Are Tricky", mutex 3; the spin phase after crossbeam's Backoff):
// word 0 = free, 1 = held, 2 = held and someone may sleep. lock(): CAS 0 -> 1; on failure spin
// (test-and-test-and-set with growing pauses, so waiters read the line shared instead of
// bouncing it) for about a futex round trip, then exchange(2) and sleep on the word while it
// reads 2.
// unlock(): exchange(0); if it read 2, wake one sleeper. An uncontended lock/unlock is one CAS
// and one exchange, no syscall. A waiter never spins unboundedly: on an oversubscribed machine
// the holder may be descheduled, and the waiter then sleeps until it is woken.
#pragma once

#include <atomic>
#include <cstdint>

#include "engine/deadline.h"
#include "engine/internal/backoff.h"
#include "engine/internal/futex.h"

namespace conveyor::internal {

class ShardLock {
 public:
  void lock() noexcept {
    std::uint32_t expected = kFree;
    // L1: acquire pairs with U1 in unlock(): the previous holder's writes are visible.
    if (word_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      return;
    }
    lock_slow();
  }

  void unlock() noexcept {
    // U1: release pairs with L1 / L2.
    if (word_.exchange(kFree, std::memory_order_release) == kSleepers) futex_wake(word_, 1);
  }

 private:
  static constexpr std::uint32_t kFree = 0;
  static constexpr std::uint32_t kHeld = 1;
  static constexpr std::uint32_t kSleepers = 2;
  // Spin rounds before sleeping: 2^0 + ... + 2^7 = 255 pauses, a few microseconds. No
  // sched_yield: on a machine busy with other processes a yield gives away a whole time slice,
  // while a futex sleeper is woken as soon as the holder unlocks.
  static constexpr std::uint32_t kSpinRounds = 8;

  [[gnu::noinline]] void lock_slow() noexcept {
    for (std::uint32_t round = 0; round < kSpinRounds; ++round) {
      // relaxed: only a hint whether to try the CAS (the CAS itself acquires).
      std::uint32_t expected = word_.load(std::memory_order_relaxed);
      if (expected == kFree &&
          word_.compare_exchange_weak(expected, kHeld, std::memory_order_acquire,  // L1
                                      std::memory_order_relaxed)) {
        return;
      }
      for (std::uint32_t i = 0; i < (1u << round); ++i) cpu_relax();
    }
    // L2: acquire pairs with U1. Marking the word 2 makes the holder's unlock wake us; we may
    // own the lock with 2 when nobody sleeps, which costs one spare wake, never a lost one.
    while (word_.exchange(kSleepers, std::memory_order_acquire) != kFree) {
      (void)futex_wait(word_, kSleepers, Deadline::never());
    }
  }

  std::atomic<std::uint32_t> word_{kFree};  // kFree | kHeld | kSleepers
};

}  // namespace conveyor::internal
