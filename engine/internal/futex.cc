#include "engine/internal/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

#include "engine/trace.h"

namespace conveyor::internal {

namespace {

long futex_call(const std::atomic<std::uint32_t>& word, int op, std::uint32_t val,
                const timespec* ts, std::uint32_t bitset) noexcept {
  // The kernel reads the word itself; the cast drops const only for the syscall's signature.
  auto* addr = const_cast<std::uint32_t*>(reinterpret_cast<const std::uint32_t*>(&word));
  return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, ts, nullptr, bitset);
}

// relaxed: the hook is installed before the waits it should affect start (test setup).
std::atomic<FutexFaultHook> fault_hook{nullptr};

}  // namespace

void set_futex_fault_hook(FutexFaultHook hook) noexcept {
  fault_hook.store(hook, std::memory_order_relaxed);  // relaxed: see above
}

WaitResult futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      Deadline deadline) noexcept {
  if (const FutexFaultHook hook = fault_hook.load(std::memory_order_relaxed)) {  // relaxed: above
    if (const std::optional<WaitResult> injected = hook()) return *injected;
  }
  timespec ts{};
  const timespec* tsp = nullptr;
  if (!deadline.is_never()) {
    // steady_clock is CLOCK_MONOTONIC on Linux with libstdc++; FUTEX_WAIT_BITSET takes an
    // absolute time on that clock.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        deadline.when().time_since_epoch())
                        .count();
    if (ns <= 0) return WaitResult::kTimedOut;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  trace::park(&word);
  const long r = futex_call(word, FUTEX_WAIT_BITSET, expected, tsp, FUTEX_BITSET_MATCH_ANY);
  WaitResult result = WaitResult::kAwoken;
  if (r != 0) {
    switch (errno) {
      case EAGAIN: result = WaitResult::kValueChanged; break;
      case EINTR: result = WaitResult::kInterrupted; break;
      case ETIMEDOUT: result = WaitResult::kTimedOut; break;
      default: break;  // treated as spurious (kAwoken): the caller re-checks
    }
  }
  trace::unpark(&word, static_cast<int>(result));
  return result;
}

void futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept {
  const long woken = futex_call(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
  if (woken > 0) trace::wake(&word, woken);
}

}  // namespace conveyor::internal
