// Futex: the bottom layer of Conveyor's waiting (STYLE.md, "Waiting").
//
//   futex_wait(word, expected, deadline) sleeps while `word == expected`;
//   futex_wake(word, n) wakes up to n sleepers on `word`.
//
// Process-private futexes (FUTEX_PRIVATE_FLAG) on a 32-bit atomic. The deadline is absolute on
// CLOCK_MONOTONIC (FUTEX_WAIT_BITSET takes an absolute time), so retries never stretch it.
// Callers always re-check their condition after any result: wakes may be spurious.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "engine/deadline.h"

namespace conveyor::internal {

enum class WaitResult : std::uint8_t {
  kAwoken,        // woken by futex_wake (or spuriously: re-check the condition)
  kValueChanged,  // the word no longer held `expected` when the kernel looked
  kInterrupted,   // a signal interrupted the wait (EINTR)
  kTimedOut,      // the deadline passed
};

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "futex needs a lock-free 32-bit atomic with no extra state");

WaitResult futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      Deadline deadline) noexcept;
void futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept;

inline constexpr int kWakeAll = 0x7fffffff;

// Fault injection for tests (tests/fault_test.cc): while a hook is installed, futex_wait asks it
// before each sleep; a result other than nullopt is returned at once instead of sleeping, as a
// signal (kInterrupted) or a spurious wake (kAwoken) would. Every caller must cope with both.
// Off (the default) it costs one relaxed load of a null pointer on a path about to make a
// syscall. Process-wide; install it while no other test relies on the real behaviour.
using FutexFaultHook = std::optional<WaitResult> (*)() noexcept;
void set_futex_fault_hook(FutexFaultHook hook) noexcept;

}  // namespace conveyor::internal
