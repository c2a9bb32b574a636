// QueueRunner: threads that keep running a queue's enqueue ops (TF's tf.train.QueueRunner,
// SPEC.md section D, and F2 of TF's C++ QueueRunner).
//
// Contract:
//  - Built from names (D1): the queue's name, one or more enqueue op names, optional close and
//    cancel op names (default "<queue>_Close" and "<queue>_Close_1": what a Session registers for
//    each queue it makes, i.e. close() and close(cancel)), and the error kinds that mean "the
//    queue was closed" (default {OutOfRange}; given but empty -> InvalidArgument). No queue or no
//    enqueue op -> InvalidArgument "Must provide queue and enqueue_ops."; from a def with no
//    enqueue op -> InvalidArgument "Empty enqueue ops to run." (F2). A def and a queue together
//    cannot be written: the constructors take one or the other (docs/deviations.md, D1).
//  - A QueueRunner is a handle: copies share one state (thread counts, exceptions raised, error
//    callbacks), as Python references to one runner do.
//  - create_threads(session, coord, start) (D3): if this session still counts threads of this
//    runner as running, returns none. Else one thread per enqueue op, named
//    "QueueRunnerThread-<queue>-<op>", plus with a coordinator
//    "QueueRunnerThread-<queue>-close_on_stop"; all registered with the coordinator; the count
//    is set at creation even if the threads are never started. Ops are resolved in the session
//    then (InvalidArgument naming a missing op, before any thread exists). The session owns the
//    threads; the result holds their handles and starts them (start = true, or start()).
//  - An enqueue thread (D4-D6): before each run, exits if the coordinator says stop (or the
//    session is closing). An error of a closed kind lowers the count and ends the thread; the
//    last thread of the session runs the close op (its errors ignored). Any other error: every
//    error callback is called with it; then with a coordinator, request_stop(error); without,
//    appended to exceptions_raised() and rethrown (the thread's Handle::exception() has it).
//  - The close_on_stop thread (D7) waits for the stop (or the session closing), then runs the
//    cancel op (errors ignored), which fails blocked enqueues with Cancelled.
//  - start(session, coord, wait_for) (F2): creates and starts the threads, then waits until each
//    enqueue op has finished its first run (or its thread ended): DeadlineExceeded "Queues not
//    fed before the timeout" if not in time; the error of a first run, if it was not a closed
//    kind, is rethrown.
//  - Kernel thread names are limited to 15 bytes, too short for "QueueRunnerThread-" (18):
//    the kernel name is runner_kernel_name(queue, op), e.g. "QR-images-eue_3"; the full name
//    stays in Thread::name() and in the coordinator's messages.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/coordinator.h"
#include "engine/queue_runner_def.h"
#include "engine/status.h"
#include "engine/thread.h"

namespace conveyor {

class Session;

namespace internal {
// A one-shot gate runner threads wait at before their first op: opened by start(), or
// abandoned by Session::close() (the thread then exits without running). A futex word.
struct FirstRuns;

class StartGate {
 public:
  void open() noexcept;
  void abandon() noexcept;  // no effect once open
  bool wait() const noexcept;  // true: opened; false: abandoned
 private:
  static constexpr std::uint32_t kShut = 0, kOpen = 1, kAbandoned = 2;
  std::atomic<std::uint32_t> state_{kShut};
};
}  // namespace internal

// The threads one create_threads() (or start_queue_runners()) made.
class RunnerThreads {
 public:
  const std::vector<Thread::Handle>& handles() const noexcept { return handles_; }
  std::size_t size() const noexcept { return handles_.size(); }
  bool empty() const noexcept { return handles_.empty(); }
  // Starts the threads (TF: t.start() for each). Idempotent.
  void start() noexcept;
  // True when every thread has finished before `deadline`.
  bool wait_done(Deadline deadline = Deadline::never()) const noexcept;
  void append(RunnerThreads&& other);

 private:
  friend class QueueRunner;
  std::vector<Thread::Handle> handles_;
  std::vector<std::shared_ptr<internal::StartGate>> gates_;
};

class QueueRunner {
 public:
  using ErrorCallback = std::function<void(const std::exception_ptr&)>;

  QueueRunner(std::string queue_name, std::vector<std::string> enqueue_ops,
              std::string close_op = {}, std::string cancel_op = {},
              std::optional<std::vector<ErrorKind>> closed_error_kinds = std::nullopt);
  explicit QueueRunner(const QueueRunnerDef& def);

  // D2: the queue's name.
  const std::string& name() const noexcept;
  const std::vector<std::string>& enqueue_ops() const noexcept;
  const std::string& close_op() const noexcept;
  const std::string& cancel_op() const noexcept;
  const std::vector<ErrorKind>& closed_error_kinds() const noexcept;

  // D8.
  QueueRunnerDef to_def() const;
  static QueueRunner from_def(const QueueRunnerDef& def) { return QueueRunner(def); }

  // D6: errors of threads run without a coordinator since the last create_threads().
  std::vector<std::exception_ptr> exceptions_raised() const;
  // F2: called (from the runner thread) with every error that is not a closed kind.
  void add_error_callback(ErrorCallback callback);

  // D3. `coord` may be null; it must outlive the threads.
  RunnerThreads create_threads(Session& session, Coordinator* coord = nullptr,
                               bool start = false) const;
  // F2.
  RunnerThreads start(Session& session, Coordinator* coord,
                      std::chrono::nanoseconds wait_for) const;

  // Threads of this runner the session still counts as running (D3, D5).
  int running_threads(const Session& session) const;

 private:
  struct State;
  RunnerThreads make_threads(Session& session, Coordinator* coord, bool start,
                             std::shared_ptr<internal::FirstRuns> first) const;
  std::shared_ptr<State> state_;
};

// The kernel name of a runner thread: "QR-" + the queue name's head + "-" + the op name's tail
// (the op's distinguishing suffix, e.g. "_3"), in at most 15 bytes. An op name starting with
// the queue's name loses that prefix first.
std::string runner_kernel_name(const std::string& queue, const std::string& op);

}  // namespace conveyor
