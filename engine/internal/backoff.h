// Backoff: the middle layer of waiting, after crossbeam-utils' Backoff.
//
//  - spin():   after a failed CAS on a contended word; a few `pause`s, growing.
//  - snooze(): while waiting on another thread's progress; pauses, then sched_yield so that an
//              oversubscribed machine runs the thread we wait for.
//  - should_park(): the bounded spin (about 2 us on current x86) is over; block on a futex.
// A Backoff is a local value; it never sleeps on its own.
#pragma once

#include <sched.h>

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace conveyor::internal {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class Backoff {
 public:
  void spin() noexcept {
    for (std::uint32_t i = 0; i < (1u << (step_ < kSpinLimit ? step_ : kSpinLimit)); ++i) {
      cpu_relax();
    }
    if (step_ <= kSpinLimit) ++step_;
  }

  void snooze() noexcept {
    if (step_ <= kSpinLimit) {
      for (std::uint32_t i = 0; i < (1u << step_); ++i) cpu_relax();
    } else {
      sched_yield();
    }
    if (step_ <= kYieldLimit) ++step_;
  }

  // True once spinning has cost about as much as a futex round trip.
  bool should_park() const noexcept { return step_ > kYieldLimit; }
  void reset() noexcept { step_ = 0; }

 private:
  // 2^0 + ... + 2^6 = 127 pauses (~1-4 us depending on the CPU's pause latency), then a few
  // yields before parking.
  static constexpr std::uint32_t kSpinLimit = 6;
  static constexpr std::uint32_t kYieldLimit = 9;
  std::uint32_t step_ = 0;
};

}  // namespace conveyor::internal
