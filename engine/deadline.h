// Deadline: the one timeout type of Conveyor (STYLE.md, "one Deadline type everywhere").
//
// An absolute point on the steady clock (CLOCK_MONOTONIC on Linux, which is what futex waits
// take), or "never". Relative timeouts are turned into a Deadline once, at the API boundary,
// so a wait that is retried after a spurious wake does not extend its own timeout.
#pragma once

#include <chrono>

namespace conveyor {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static constexpr Deadline never() noexcept { return Deadline(Clock::time_point::max()); }
  static Deadline at(Clock::time_point t) noexcept { return Deadline(t); }
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    if (d <= d.zero()) return Deadline(Clock::now());
    const auto now = Clock::now();
    const auto left = Clock::time_point::max() - now;
    // Compare in the caller's unit: converting `d` to nanoseconds first could overflow.
    if (d >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(left)) return never();
    return Deadline(now + std::chrono::duration_cast<Clock::duration>(d));
  }
  // Already passed: a blocking call with it behaves as its try_ form plus a timed_out status.
  static Deadline now() noexcept { return Deadline(Clock::now()); }

  constexpr bool is_never() const noexcept { return when_ == Clock::time_point::max(); }
  bool expired() const noexcept { return !is_never() && Clock::now() >= when_; }
  constexpr Clock::time_point when() const noexcept { return when_; }

 private:
  constexpr explicit Deadline(Clock::time_point t) noexcept : when_(t) {}
  Clock::time_point when_;
};

}  // namespace conveyor
