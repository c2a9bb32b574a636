// Conveyor's queues behind queue_bench's adapter shape (described in peers.h).
//
//   Conveyor              FifoQueue<u64, Mpmc>; blocking enqueue/dequeue (spin ~2 us, yield,
//                         then futex); batches: enqueue_many, and try_dequeue_burst with a
//                         blocking dequeue() when empty (up to n, at least one).
//   ConveyorSpsc          FifoQueue<u64, Spsc>; try_enqueue/try_dequeue in the same
//                         spin-then-yield loop as the non-blocking peers; batches:
//                         try_enqueue_burst / try_dequeue_burst.
//   ConveyorSpscBlocking  FifoQueue<u64, Spsc>; blocking calls, as Conveyor.
//
// wake_all() (the watchdog's abort) is close(kCancelPendingEnqueues): blocked enqueues fail
// with kCancelled, blocked dequeues see closed-and-empty. after_run() checks that a plain
// close() of the drained queue works: kOk, then every operation reports kClosed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "bench/harness.h"
#include "bench/peers.h"
#include "engine/fifo_queue.h"

namespace conveyor::bench {

enum class ConveyorWait : std::uint8_t { kBlocking, kTrySpin };

template <class Policy, ConveyorWait kHow>
class ConveyorAdapter {
 public:
  static constexpr std::string_view kName = std::is_same_v<Policy, Mpmc> ? "Conveyor"
                                            : kHow == ConveyorWait::kBlocking
                                                ? "ConveyorSpscBlocking"
                                                : "ConveyorSpsc";
  static constexpr Threads kThreads =
      std::is_same_v<Policy, Mpmc> ? Threads::kMpmc : Threads::kSpsc;
  static constexpr Wait kWait = kHow == ConveyorWait::kBlocking ? Wait::kBlock : Wait::kSpin;
  static constexpr Burst kBurst = kHow == ConveyorWait::kBlocking ? Burst::kBlocking : Burst::kTry;
  static constexpr Bound kBound = Bound::kBounded;

  using Queue = FifoQueue<Item, Policy>;

  explicit ConveyorAdapter(const Shape& s)
      : q_(static_cast<std::int64_t>(s.capacity), std::string(kName)) {}

  class Producer {
   public:
    explicit Producer(ConveyorAdapter& a) : q_(a.q_) {}

    bool push(Item v, const RunControl& ctl) {
      if constexpr (kHow == ConveyorWait::kBlocking) {
        return q_.enqueue(std::move(v)) == Status::kOk;
      } else {
        return spin_then_yield(ctl, [&] { return q_.try_enqueue(Item{v}) == Status::kOk; });
      }
    }

    // Blocking: enqueue_many pushes the whole span (or fails on the abort's close).
    std::size_t push_burst(std::span<Item> items, const RunControl& ctl) {
      if constexpr (kHow == ConveyorWait::kBlocking) {
        const BulkResult r = q_.enqueue_many(items);
        return r.status == Status::kOk ? r.count : 0;
      } else {
        std::size_t n = 0;
        spin_then_yield(ctl, [&] { return (n = q_.try_enqueue_burst(items).count) != 0; });
        return n;
      }
    }

   private:
    Queue& q_;
  };

  class Consumer {
   public:
    explicit Consumer(ConveyorAdapter& a) : q_(a.q_) {}

    bool pop(Item& v, const RunControl& ctl) {
      if constexpr (kHow == ConveyorWait::kBlocking) {
        return q_.dequeue(v) == Status::kOk;
      } else {
        return spin_then_yield(ctl, [&] { return q_.try_dequeue(v) == Status::kOk; });
      }
    }

    // Blocking: up to out.size(), at least one, as MoodycamelBlocking's wait_dequeue_bulk:
    // what is there (try_dequeue_burst), else a blocking dequeue() of the first element and a
    // burst of what followed it. (Until 2026-12 this was dequeue_many of exactly out.size()
    // into a vector and a copy out of it: TF's exact-n semantics, which the harness does not
    // ask for, at the price of two extra copies per batch.)
    std::size_t pop_burst(std::span<Item> out, const RunControl& ctl) {
      if constexpr (kHow == ConveyorWait::kBlocking) {
        const BulkResult r = q_.try_dequeue_burst(out);
        if (r.count != 0) return r.count;
        if (r.status == Status::kClosed || q_.dequeue(out[0]) != Status::kOk) return 0;
        return 1 + q_.try_dequeue_burst(out.subspan(1)).count;
      } else {
        std::size_t n = 0;
        spin_then_yield(ctl, [&] { return (n = q_.try_dequeue_burst(out).count) != 0; });
        return n;
      }
    }

   private:
    Queue& q_;
  };

  void wake_all() { (void)q_.close(CloseMode::kCancelPendingEnqueues); }

  std::string after_run() {
    if (const Status s = q_.close(CloseMode::kDrain); s != Status::kOk) {
      return "close(kDrain) of the drained queue returned " + std::string(to_string(s));
    }
    Item v = 0;
    if (const Status s = q_.try_dequeue(v); s != Status::kClosed) {
      return "try_dequeue after close returned " + std::string(to_string(s));
    }
    if (const Status s = q_.dequeue(v); s != Status::kClosed) {
      return "dequeue after close returned " + std::string(to_string(s));
    }
    if (const Status s = q_.enqueue(Item{1}); s != Status::kClosed) {
      return "enqueue after close returned " + std::string(to_string(s));
    }
    return {};
  }

 private:
  Queue q_;
};

using ConveyorMpmcBlocking = ConveyorAdapter<Mpmc, ConveyorWait::kBlocking>;
using ConveyorSpscTry = ConveyorAdapter<Spsc, ConveyorWait::kTrySpin>;
using ConveyorSpscBlocking = ConveyorAdapter<Spsc, ConveyorWait::kBlocking>;

}  // namespace conveyor::bench
