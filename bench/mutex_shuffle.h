// MutexShuffleQueue: the baseline ShuffleQueue replaces. TensorFlow v1's RandomShuffleQueue
// (tensorflow/core/kernels/random_shuffle_queue_op.cc, queue_base.cc) keeps one buffer under
// one mutex; a dequeue runs when size > min_after_dequeue (any size > 0 after the close),
// picks index = rand % size, returns that element and moves the last into its slot; blocked
// callers sleep (TF: a Notification, i.e. a mutex + condition variable). Here the pending
// attempt lists are the waiter queues of two condition variables, which is the same behaviour
// for one-element operations; every operation wakes one waiter of the other side.
//
// Contract: linearizable (everything under mu_), bounded by `capacity`. close() lets consumers
// drain (without the floor); cancel() fails every blocked and later operation (the benchmark's
// abort).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace conveyor::bench {

template <class T>
class MutexShuffleQueue {
 public:
  MutexShuffleQueue(std::size_t capacity, std::size_t min_after_dequeue, std::uint64_t seed)
      : capacity_(capacity), min_(min_after_dequeue), rng_(seed) {
    items_.reserve(capacity);
  }

  // Blocks while full. False once closed or cancelled.
  bool enqueue(T v) {
    {
      std::unique_lock lock(mu_);
      not_full_.wait(lock, [&] { return items_.size() < capacity_ || closed_; });
      if (closed_) return false;
      items_.push_back(std::move(v));
    }
    not_empty_.notify_one();
    return true;
  }

  // Blocks while size <= min_after_dequeue (open) or empty (closed). False when closed and
  // empty, or cancelled.
  bool dequeue(T& out) {
    {
      std::unique_lock lock(mu_);
      not_empty_.wait(lock, [&] {
        return items_.size() > (closed_ ? 0 : min_) || (closed_ && items_.empty()) || cancelled_;
      });
      if (cancelled_ || items_.empty()) return false;
      const std::size_t i = next() % items_.size();  // TF's pick
      out = std::move(items_[i]);
      items_[i] = std::move(items_.back());
      items_.pop_back();
    }
    not_full_.notify_one();
    return true;
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  void cancel() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      cancelled_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  std::uint64_t next() {  // SplitMix64, as ShuffleQueue (so the RNG costs the same)
    std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  const std::size_t capacity_;
  const std::size_t min_;
  std::mutex mu_;
  std::condition_variable not_full_;   // enqueuers wait here for a free slot
  std::condition_variable not_empty_;  // dequeuers wait here for an element above the floor
  std::vector<T> items_;               // guarded by mu_
  std::uint64_t rng_;                  // guarded by mu_
  bool closed_ = false;                // guarded by mu_
  bool cancelled_ = false;             // guarded by mu_
};

}  // namespace conveyor::bench
