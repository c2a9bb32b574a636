// LooperThread: a Thread that calls a function repeatedly until its Coordinator stops
// (TF's tf.train.LooperThread, SPEC.md C14).
//
// Contract:
//  - start() launches the thread and registers it with the coordinator, so coord.join() waits
//    for it (C12). An unstarted looper is not alive: join() has nothing to wait for, as in TF
//    where join() skips threads that were never started.
//  - The thread runs start_loop(); then run_loop() while !coord.should_stop(): back-to-back when
//    no interval is given, otherwise on a fixed-rate timer (the n-th run is due at
//    start + n * interval; between runs it sleeps in coord.wait_for_stop(next due time), so a
//    stop ends the sleep at once); then stop_loop(). The whole is wrapped in
//    coord.stop_on_exception(): an exception from any hook requests a stop with that error and
//    ends the thread (stop_loop() is then skipped, as in TF).
//  - run_loop() calls the target by default; subclasses may override the three hooks instead.
//  - Lifetime: the destructor waits for the thread (it does not request a stop). A subclass that
//    overrides hooks must call join() in its own destructor, because its members die before
//    ~LooperThread runs. The coordinator must outlive the looper's thread.
//
// Algorithm: nothing beyond the loop above; all waiting is Coordinator::wait_for_stop (a futex),
// never a sleep. No atomics of its own.
//
// References: tensorflow/python/training/coordinator.py (class LooperThread).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/coordinator.h"
#include "engine/thread.h"

namespace conveyor {

class LooperThread {
 public:
  using Target = std::function<void()>;
  // No interval: run_loop() back-to-back.
  static constexpr std::optional<std::chrono::nanoseconds> kBackToBack = std::nullopt;

  // Does not start the thread (see start()). A negative interval -> InvalidArgument.
  LooperThread(Coordinator& coord, std::optional<std::chrono::nanoseconds> interval,
               Target target = {}, std::string name = "LooperThread");
  virtual ~LooperThread();
  LooperThread(const LooperThread&) = delete;
  LooperThread& operator=(const LooperThread&) = delete;

  // Starts the thread and registers it with the coordinator. A second start() ->
  // FailedPrecondition.
  void start();
  // Waits for the thread to end (no-op if never started or already joined).
  void join();
  const Thread& thread() const noexcept { return thread_; }
  const std::string& name() const noexcept { return name_; }

  // Creates a looper calling `target`, starts it and returns it (TF's LooperThread.loop). The
  // returned object owns the thread: keep it until coord.join() has returned.
  static std::unique_ptr<LooperThread> loop(Coordinator& coord,
                                            std::optional<std::chrono::nanoseconds> interval,
                                            Target target, std::string name = "LooperThread");

 protected:
  virtual void start_loop() {}
  virtual void run_loop();  // calls the target, if any
  virtual void stop_loop() {}
  Coordinator& coordinator() const noexcept { return coord_; }

 private:
  void run();

  Coordinator& coord_;
  const std::optional<std::chrono::nanoseconds> interval_;
  const Target target_;
  const std::string name_;
  Thread thread_;  // empty until start()
};

}  // namespace conveyor
