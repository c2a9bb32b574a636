// Owner cancellation (SPEC.md A25): "a blocked operation whose owner is torn down fails with
// Cancelled; the queue is not closed by it".
//
// An owner (a Session) is a flag that becomes true, once, when it is torn down. A thread that
// runs operations on the owner's behalf (its runner threads, Session::run) installs an
// OwnerScope for that flag. Every blocking queue operation checks it where it checks its
// deadline, just before sleeping and after every wake-up, so it costs nothing on a fast path
// (a blocking call that need not wait never reads it). A blocked operation of a torn-down owner
// ends as if its deadline had passed (what it took is put back, what it pushed stays) and
// reports kCancelled.
// The owner wakes the sleepers it wants to reach (FifoQueue::interrupt_waiters) after setting
// its flag; the ordering is the EventCount's: a wake bumps the futex word with release after the
// flag's store, and a waiter reads that word with acquire before its check.
#pragma once

#include <atomic>

namespace conveyor::internal {

// True when the calling thread runs under an OwnerScope whose flag is set.
bool owner_cancelled() noexcept;

// Installs `flag` as the calling thread's owner until destroyed (scopes nest; the innermost
// counts). Not copyable; must be destroyed on the thread that made it.
class OwnerScope {
 public:
  explicit OwnerScope(const std::atomic<bool>* flag) noexcept;
  ~OwnerScope();
  OwnerScope(const OwnerScope&) = delete;
  OwnerScope& operator=(const OwnerScope&) = delete;

 private:
  const std::atomic<bool>* const previous_;
};

}  // namespace conveyor::internal
