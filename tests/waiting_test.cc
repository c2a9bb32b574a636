// The waiting layers: Deadline, futex, EventCount, and the asymmetric fences underneath.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/deadline.h"
#include "engine/internal/asymmetric_fence.h"
#include "engine/internal/event_count.h"
#include "engine/internal/futex.h"

namespace conveyor::internal {
namespace {

TEST(Deadline, NeverAndExpired) {
  EXPECT_TRUE(Deadline::never().is_never());
  EXPECT_FALSE(Deadline::never().expired());
  EXPECT_TRUE(Deadline::after(std::chrono::nanoseconds(-5)).expired());
  EXPECT_TRUE(Deadline::after(std::chrono::hours(24 * 365 * 1000)).is_never() ||
              !Deadline::after(std::chrono::hours(24 * 365 * 1000)).expired());
}

TEST(Futex, ValueChangedReturnsAtOnce) {
  std::atomic<std::uint32_t> word{1};
  EXPECT_EQ(futex_wait(word, 0, Deadline::never()), WaitResult::kValueChanged);
}

TEST(Futex, PastDeadlineTimesOut) {
  std::atomic<std::uint32_t> word{0};
  EXPECT_EQ(futex_wait(word, 0, Deadline::now()), WaitResult::kTimedOut);
}

// Every notification after prepare_wait() is seen: the waiter either finds the condition true or
// is woken. 2000 handshakes through one EventCount, a lost wake would hang the test.
TEST(EventCount, NoLostWakeups) {
  EventCount ev;
  std::atomic<std::uint32_t> turn{0};
  constexpr std::uint32_t kRounds = 2000;
  // Takes every other turn, starting at `first`: waits for it, then hands the next one over.
  auto play = [&](std::uint32_t first) {
    for (std::uint32_t i = first; i < kRounds; i += 2) {
      for (;;) {
        if (turn.load(std::memory_order_acquire) == i) break;
        const auto key = ev.prepare_wait();
        if (turn.load(std::memory_order_acquire) == i) {
          ev.cancel_wait(key);
          break;
        }
        ev.wait(key, Deadline::never());
      }
      turn.store(i + 1, std::memory_order_release);
      ev.notify_all();
    }
  };
  std::thread other(play, 1);
  play(0);
  other.join();
  EXPECT_EQ(turn.load(), kRounds);
  EXPECT_FALSE(ev.has_waiters());
}

// The waking notifier takes the waiters it wakes out of the count: the notifications after it
// find nobody and make no syscall, and a waiter that leaves afterwards (cancel_wait or the end
// of wait) does not take the count below zero.
TEST(EventCount, AWakeRemovesTheWaitersItWakes) {
  BasicEventCount<Protocol::kAfterSeqCstRmw> ev;
  const auto a = ev.prepare_wait();
  const auto b = ev.prepare_wait();
  EXPECT_EQ(a, b);
  EXPECT_TRUE(ev.has_waiters());
  ev.notify_all();
  EXPECT_FALSE(ev.has_waiters());  // before either waiter has run
  ev.cancel_wait(a);
  EXPECT_EQ(ev.wait(b, Deadline::never()), WaitResult::kValueChanged);  // the epoch moved on
  EXPECT_FALSE(ev.has_waiters());
  const auto c = ev.prepare_wait();  // a new epoch: counted again
  EXPECT_NE(c, a);
  EXPECT_TRUE(ev.has_waiters());
  ev.cancel_wait(c);
  EXPECT_FALSE(ev.has_waiters());
  // A waiter whose wait times out leaves the count itself.
  const auto d = ev.prepare_wait();
  EXPECT_EQ(ev.wait(d, Deadline::now()), WaitResult::kTimedOut);
  EXPECT_FALSE(ev.has_waiters());
}

TEST(AsymmetricFence, HeavyFenceReturns) {
  // Either membarrier is registered or both sides use seq_cst fences; both must return.
  heavy_fence();
  light_fence();
  SUCCEED() << "membarrier: " << (asymmetric_fences_available() ? "yes" : "no");
}

}  // namespace
}  // namespace conveyor::internal
