// Thread: a named std::thread that says when its body has finished, with a deadline.
//
// Contract:
//  - The body starts at construction (like std::thread). Its name becomes the kernel thread name
//    (pthread_setname_np, cut to 15 bytes on a UTF-8 boundary) before the body runs; name()
//    keeps the full name.
//  - An exception escaping the body never reaches std::terminate: it is caught and kept, and
//    exception() returns it once the body is done.
//  - done() / wait_done(deadline) tell whether the body has finished (returned or thrown), and
//    its captured state has been destroyed. That is what Coordinator::join waits for; reaping the
//    OS thread (join()) stays with the owner.
//  - Ownership: a Thread owns its OS thread and is move-only. Destroying or move-assigning over a
//    joinable Thread joins it first (std::jthread's rule, not std::thread's terminate). A
//    Handle is a copyable, shared view of the completion state (name, done, exception); it
//    stays valid after the Thread is moved or destroyed, so a Coordinator keeps Handles, never
//    Thread pointers.
//
// Algorithm: the completion state (name, `done_` futex word, exception) lives in a shared block
// owned jointly by the Thread, its Handles and the running body. When the body ends the thread
// stores the exception, publishes done_ = 1 (release), wakes wait_done() sleepers on that word,
// and notifies lifecycle_events() so that a Coordinator::join waiting on "some thread finished
// or a stop was requested" re-checks.
//
// Memory ordering: D1 (the release store of done_ in the finishing thread) pairs with D2 (every
// acquire load of done_): a caller that sees done() also sees everything the body wrote and the
// kept exception.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "engine/deadline.h"
#include "engine/internal/event_count.h"

namespace conveyor {

namespace internal {
// One process-wide event count, notified whenever a Thread finishes and whenever a Coordinator
// stop is requested. Coordinator::join waits on it for "a thread finished or a stop came"
// (two conditions a single futex word cannot express per coordinator, since a Thread does not
// know which coordinators watch it). Both events are rare; a spurious wake only costs a re-check.
EventCount& lifecycle_events() noexcept;
}  // namespace internal

class Thread {
  struct State;

 public:
  // Shared view of a Thread's completion state. Empty (default) handles are not valid().
  class Handle {
   public:
    Handle() noexcept = default;
    bool valid() const noexcept { return state_ != nullptr; }
    const std::string& name() const noexcept;
    // True once the body has returned or thrown. D2 (acquire): pairs with D1.
    bool done() const noexcept;
    // Waits until done() or the deadline passes; returns done().
    bool wait_done(Deadline deadline = Deadline::never()) const noexcept;
    // The exception that escaped the body; null while running or if the body returned.
    std::exception_ptr exception() const noexcept;
    friend bool operator==(const Handle&, const Handle&) noexcept = default;

   private:
    friend class Thread;
    explicit Handle(std::shared_ptr<const State> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<const State> state_;
  };

  // Not a thread: joinable() is false, done() is true.
  Thread() noexcept = default;

  // Starts `body()` on a new thread named `name`. Throws std::system_error if the OS refuses.
  template <class F>
    requires std::is_invocable_v<std::decay_t<F>&>
  Thread(std::string name, F&& body) : Thread(std::move(name), std::string(), std::forward<F>(body)) {}

  // As above, with the kernel name chosen by the caller (cut to kMaxKernelNameBytes) instead of
  // the first bytes of `name`: for names whose distinguishing part is not at the front.
  template <class F>
    requires std::is_invocable_v<std::decay_t<F>&>
  Thread(std::string name, std::string kernel, F&& body)
      : state_(make_state(std::move(name), std::move(kernel))) {
    os_thread_ = std::thread(
        [state = state_, fn = std::decay_t<F>(std::forward<F>(body))]() mutable {
          begin(*state);
          std::exception_ptr error;
          try {
            // Moved into a local so that the body's captures are destroyed before done_ is set:
            // whoever waits for done() may then free what they referred to.
            std::decay_t<F> local(std::move(fn));
            local();
          } catch (...) {
            error = std::current_exception();
          }
          finish(*state, std::move(error));
        });
  }

  Thread(Thread&&) noexcept = default;
  Thread& operator=(Thread&& other) noexcept(false);  // joins *this first if joinable
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;
  ~Thread();  // joins if joinable

  // The full name given at construction ("" for an empty Thread).
  const std::string& name() const noexcept;
  bool done() const noexcept { return !state_ || handle().done(); }
  bool wait_done(Deadline deadline = Deadline::never()) const noexcept {
    return !state_ || handle().wait_done(deadline);
  }
  std::exception_ptr exception() const noexcept {
    return state_ ? handle().exception() : nullptr;
  }
  // Empty Handle for an empty Thread.
  Handle handle() const noexcept { return Handle(state_); }

  bool joinable() const noexcept { return os_thread_.joinable(); }
  // Waits for the OS thread to end. No-op if not joinable; std::system_error on a self-join.
  void join();
  std::thread::id get_id() const noexcept { return os_thread_.get_id(); }
  std::thread::native_handle_type native_handle() { return os_thread_.native_handle(); }

  // The kernel's limit: 16 bytes with the terminating NUL.
  static constexpr std::size_t kMaxKernelNameBytes = 15;
  // `name` cut to at most kMaxKernelNameBytes bytes without splitting a UTF-8 sequence.
  static std::string kernel_name(const std::string& name);

 private:
  static std::shared_ptr<State> make_state(std::string name, std::string kernel);
  static void begin(const State& s) noexcept;                     // sets the kernel name
  static void finish(State& s, std::exception_ptr error) noexcept;  // D1, wakes, notifies

  std::shared_ptr<State> state_;  // null for an empty Thread
  std::thread os_thread_;
};

}  // namespace conveyor
