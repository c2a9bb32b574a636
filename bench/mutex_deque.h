// MutexDequeQueue: the baseline Conveyor replaces. A bounded FIFO of one std::deque under one
// std::mutex, with blocking enqueue on full and blocking dequeue on empty, the way TensorFlow
// v1's FIFOQueue works (tensorflow/core/kernels/fifo_queue.cc, queue_base.cc): TF keeps the
// deque and lists of pending enqueue/dequeue "attempts" under one mutex, and every operation
// ends with FlushUnlocked(), which runs whichever pending attempts can now complete; a blocked
// caller sleeps on a Notification (a mutex + condition variable). Here the attempt lists are
// the waiter queues of two condition variables, which is the same behaviour for one-element
// operations: a caller sleeps until the state it needs exists, and each operation wakes one
// waiter of the other side.
//
// Contract: linearizable (everything happens under mu_), FIFO, bounded by `capacity`.
// cancel() is sticky: it fails every blocked and every later operation (the benchmark's abort).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

namespace conveyor::bench {

template <class T>
class MutexDequeQueue {
 public:
  explicit MutexDequeQueue(std::size_t capacity) : capacity_(capacity) {}

  // Blocks while full. False once cancelled.
  bool enqueue(T v) {
    {
      std::unique_lock lock(mu_);
      not_full_.wait(lock, [&] { return items_.size() < capacity_ || cancelled_; });
      if (cancelled_) return false;
      items_.push_back(std::move(v));
    }
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty. False once cancelled.
  bool dequeue(T& out) {
    {
      std::unique_lock lock(mu_);
      not_empty_.wait(lock, [&] { return !items_.empty() || cancelled_; });
      if (cancelled_) return false;
      out = std::move(items_.front());
      items_.pop_front();
    }
    not_full_.notify_one();
    return true;
  }

  void cancel() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_;   // enqueuers wait here for a free slot
  std::condition_variable not_empty_;  // dequeuers wait here for an element
  std::deque<T> items_;                // guarded by mu_
  bool cancelled_ = false;             // guarded by mu_
};

}  // namespace conveyor::bench
