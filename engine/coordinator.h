// Coordinator: tells a set of threads when to stop and reports why (TF's tf.train.Coordinator,
// SPEC.md section C).
//
// Contract:
//  - Every member may be called from any thread at any time, except that a Coordinator must
//    outlive the threads that use it.
//  - request_stop() is linearizable: its linearization point is the CAS that moves the state from
//    running to stopped. The first stop wins: an error is recorded only by the request that makes
//    that move, only if the error is not of a clean-stop kind (C4, C5). A later request_stop() is
//    a no-op (F1: TF Python's behaviour; TF C++ would return FailedPrecondition).
//  - should_stop() is one acquire load; wait_for_stop() sleeps on a futex. request_stop() never
//    waits (one CAS loop, one store, one futex_wake). No mutex or condition variable; the one
//    lock is the futex lock of the error slot (below), held for a copy or a reset, taken by
//    join(), raise_requested_exception(), recorded_error() and clear_stop() only.
//  - join() waits for threads (its arguments plus the registered ones) without requesting a stop
//    (C8), gives stragglers a grace period once a stop is requested, then raises the recorded
//    error, else FailedPrecondition "Coordinator stopped with threads still running: <names>"
//    (C7). After join, request_stop(non-clean error) rethrows that error at once (C9).
//    join without a stop and register_thread after a stop are allowed (F1, as in TF Python).
//    join() takes the registered threads when it starts; a thread registered while join() runs
//    is left for the next join() (TF Python silently forgets it).
//  - Exceptions travel as std::exception_ptr and are rethrown as they are (a conveyor::Error keeps
//    its kind; any other exception keeps its type and counts as ErrorKind::kUnknown).
//
// Algorithm: one 32-bit atomic `state_` holds the phase and a generation:
//     bits 31..2  generation, bumped by each clear_stop() of a stopped coordinator
//     bits  1..0  phase: 0 running, 1 stopped, 2 stopped + error slot held,
//                 3 stopped + error slot held + someone sleeping for the slot
//   request_stop: CAS running -> stopped (plain) or running -> held (with an error), write the
//   error slot, release the slot, then futex_wake the state word (wait_for_stop sleepers) and
//   notify lifecycle_events() (join sleepers).
//   wait_for_stop: futex_wait on the state word while it still holds the running value it first
//   read; any change of that word means a stop happened (even if clear_stop followed).
//   The error slot (a std::exception_ptr) is guarded by phases 2/3, a futex lock embedded in the
//   word (Drepper, "Futexes Are Tricky", mutex2): readers (join, raise_requested_exception) and
//   clear_stop() hold it for a copy or a reset. A request_stop() that meets a held slot is a
//   no-op, since the coordinator is stopped then, so the stop path never waits for the slot.
//   Registered threads sit on a push-only Treiber stack taken whole by join() (exchange), so
//   there is no ABA and no reclamation problem.
//
// Invariants: error_ is null while the phase is running. Only the holder of the slot (phase 2/3)
//   reads or writes error_. The generation changes only from a stopped phase.
//
// Memory ordering (tags used in coordinator.cc):
//   S1 the stop CAS in request_stop() (acq_rel). Acquire side: pairs with the S2 of the
//      clear_stop() that opened this generation, so its reset of error_ happens before our write.
//      Release side: pairs with S4.
//   S2 every release of the slot (request_stop, readers, clear_stop; release): pairs with S3,
//      the next acquire of the slot, and with S1.
//   S3 the acquire of the slot in lock_slot() (acquire CAS): pairs with S2, so the holder sees
//      the error_ the last holder left.
//   S4 should_stop()/wait_for_stop() loads (acquire): pair with S1/S2, so a thread that sees the
//      stop sees what the requester wrote before requesting it.
//   J1 joined_ store in join() (release): pairs with J2 in request_stop() (acquire).
//   R1 push CAS in register_thread() (release): pairs with R2, the exchange in join()
//      (acquire), so the node's fields are visible to join.
//
// References: tensorflow/python/training/coordinator.py; cc/training/coordinator.cc (the C++
// flavour we do not follow for F1); U. Drepper, "Futexes Are Tricky" (2011).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

#include "engine/deadline.h"
#include "engine/status.h"
#include "engine/thread.h"

namespace conveyor {

// What join() does with threads still alive after the grace period (TF: ignore_live_threads).
enum class LiveThreads : std::uint8_t {
  kRaise,   // throw FailedPrecondition naming them (TF's default)
  kIgnore,  // return normally; they keep running and their owners still join them
};

class Coordinator {
 public:
  // C1: clean-stop kinds default to {OutOfRange}; kinds given replace the default (an empty
  // list means every error is recorded). ErrorKind::kUnknown here would make every exception
  // that is not a conveyor::Error a clean stop.
  Coordinator();
  explicit Coordinator(std::initializer_list<ErrorKind> clean_stop_kinds);
  explicit Coordinator(const std::vector<ErrorKind>& clean_stop_kinds);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // C2: true once a stop has been requested (and until clear_stop()).
  bool should_stop() const noexcept;

  // C3: true when a stop is or was requested before `deadline`, false when it passed first.
  bool wait_for_stop(Deadline deadline = Deadline::never()) const noexcept;

  // C4/C5/C9: see the contract above. Null or a clean-stop kind -> a plain stop.
  void request_stop(std::exception_ptr error = nullptr);

  // C10: resets the stop flag, the recorded error and joined().
  void clear_stop() noexcept;

  // C11: runs body(); an exception escaping it becomes request_stop(it) and is swallowed
  // (returns false). As in TF, after join() a non-clean error is rethrown by request_stop (C9)
  // and so leaves this function.
  template <class F>
  bool stop_on_exception(F&& body) {
    try {
      std::invoke(std::forward<F>(body));
      return true;
    } catch (...) {
      request_stop(std::current_exception());
      return false;
    }
  }

  // C12: join() will also wait for `thread`. Allowed at any time, also after a stop (F1).
  // The coordinator keeps a Handle (shared completion state), not the Thread: the Thread may be
  // moved or destroyed meanwhile. Throws InvalidArgument for an empty Thread.
  void register_thread(const Thread& thread);
  void register_thread(Thread::Handle handle);

  // C7/C8: waits for `threads` and the registered threads (taken off the registry, so a later
  // join does not wait for them again) until all are done or a stop is requested; if some are
  // alive then, waits for them up to `stop_grace_period`; then rethrows the recorded error, else
  // throws FailedPrecondition naming the live threads unless `live_threads` is kIgnore. Does not
  // request a stop and does not reap OS threads (their owners do, e.g. ~Thread).
  // Null pointers or empty Threads in `threads` -> InvalidArgument.
  void join(const std::vector<const Thread*>& threads = {},
            std::chrono::nanoseconds stop_grace_period = std::chrono::seconds(120),
            LiveThreads live_threads = LiveThreads::kRaise);

  // C13: rethrows the recorded error, if any.
  void raise_requested_exception() const;
  // The recorded error (null if none): what join() and raise_requested_exception() rethrow.
  std::exception_ptr recorded_error() const noexcept;
  // C13: true once join() has finished (until clear_stop()).
  bool joined() const noexcept;

  // True if `error` is null or of a clean-stop kind.
  bool is_clean_stop(const std::exception_ptr& error) const noexcept;

 private:
  struct RegisteredThread {
    Thread::Handle handle;
    RegisteredThread* next;
  };

  // The embedded slot lock (phases 2/3). lock_slot() returns the stopped word it locked from,
  // or the running word it found (nothing to lock then); unlock_slot() stores `to`.
  std::uint32_t lock_slot() const noexcept;
  void unlock_slot(std::uint32_t to) const noexcept;

  // Read-only after construction: bit (1 << kind) set for each clean-stop kind.
  const std::uint32_t clean_stop_mask_;
  // Generation and phase (see the layout above); also the futex word of wait_for_stop() and of
  // the slot lock. mutable: readers of the slot take the lock from const members.
  mutable std::atomic<std::uint32_t> state_{0};
  // The recorded error; guarded by the slot lock (phases 2/3), null while running.
  mutable std::exception_ptr error_;
  // C9/C13: set by join() when it finishes, reset by clear_stop().
  std::atomic<bool> joined_{false};
  // Head of the push-only stack of registered threads (newest first).
  std::atomic<RegisteredThread*> registered_{nullptr};
  // Names this coordinator in traces (engine/trace.h); read-only.
  const std::uint32_t trace_id_;
};

}  // namespace conveyor
