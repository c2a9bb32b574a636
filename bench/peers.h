// Peer queues for queue_bench, each behind the one adapter shape the harness drives.
//
// Adapter shape (Conveyor's adapters in conveyor_adapters.h follow it too):
//   static constexpr std::string_view kName;   // the <Queue> of BM_<Queue>_<Scenario>
//   static constexpr Threads kThreads;         // kSpsc: one producer and one consumer only
//   static constexpr Wait kWait;               // how a consumer waits on empty (see below)
//   static constexpr Burst kBurst;             // what the SpscBatch32 scenario calls
//   static constexpr Bound kBound;             // bounded to 1024, or allocating when full
//   explicit Adapter(const Shape&);            // capacity, producers, consumers
//   Producer(Adapter&): bool push(u64, const RunControl&);
//                       size_t push_burst(std::span<u64>, const RunControl&);  // >= 1, 0 = abort
//   Consumer(Adapter&): bool pop(u64&, const RunControl&);
//                       size_t pop_burst(std::span<u64>, const RunControl&);   // >= 1, 0 = abort
//   void wake_all();                           // watchdog: unblock every waiter after abort()
//   std::string after_run();                   // a post-run check; "" when fine
// push/pop return false only when the run was aborted. Producer/Consumer hold the per-thread
// state a queue wants (moodycamel tokens); they are built before the measured window.
//
// How each peer waits (the wait is part of what is measured):
//   - non-blocking peers (moodycamel ConcurrentQueue and ReaderWriterQueue, boost::lockfree):
//     try, a short spin of `pause`, then yield between tries (harness.h spin_then_yield);
//   - blocking peers use their own blocking calls: BlockingConcurrentQueue wait_dequeue (its
//     enqueue never blocks, so a bounded producer spins on try_enqueue), TBB push/pop, and the
//     TensorFlow-style mutex deque.
//
// Bounds: every queue holds 1024 u64 where the peer allows it.
//   - boost::lockfree::spsc_queue / queue: capacity<1024>, exact (each adds its own spare slot
//     or dummy node).
//   - tbb::concurrent_bounded_queue: set_capacity(1024), exact.
//   - moodycamel::ReaderWriterQueue(1023): try_enqueue never allocates. It keeps a spare slot
//     in a power-of-two ring, so 1023 gives one 1024-slot ring holding 1023 (1024 would give
//     four 512-slot blocks holding up to 2044).
//   - moodycamel::ConcurrentQueue / BlockingConcurrentQueue(1024): 32 preallocated blocks of 32,
//     try_enqueue never allocates, so at most 1024 in flight; but blocks belong to the producer
//     that took them, so with several producers one may hold blocks another needs (a bounded
//     moodycamel queue can starve a producer for good: it happens in Mpmc2P2C and Mpmc4P4C,
//     and the stall watchdog reports it as a livelock). An exact shared bound of 1024 across
//     several producers is impossible with moodycamel, so the multi-producer scenarios also run
//     MoodycamelCqUnbounded and MoodycamelBlockingUnbounded (enqueue, which allocates blocks as
//     needed): the way moodycamel is normally used, and the fair peer there.
//   - MutexDequeQueue: exact.
//   - xenium::vyukov_bounded_queue(1024): exact (a power of two, as it requires). The issue also
//     names xenium's nikolaev_bounded_queue: Debian's libxenium-dev (0.0.2) does not ship it, so
//     it is not measured.
#pragma once

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>
#include <readerwriterqueue/readerwriterqueue.h>
#include <tbb/concurrent_queue.h>
#include <xenium/vyukov_bounded_queue.hpp>

#include <boost/lockfree/policies.hpp>
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "bench/harness.h"
#include "bench/mutex_deque.h"

namespace conveyor::bench {

using Item = std::uint64_t;
inline constexpr std::size_t kCapacity = 1024;

// kSpsc: only 1P1C scenarios. kMpmc: every scenario. kMultiProducer: only scenarios with several
// producers (an unbounded stand-in for a bounded form that starves there).
enum class Threads : std::uint8_t { kSpsc, kMpmc, kMultiProducer };
// kSpin: try loop (spin_then_yield); kBlock: the queue's own blocking call on empty.
enum class Wait : std::uint8_t { kSpin, kBlock };
// kNone: no batch API (not in SpscBatch32); kTry: non-blocking burst; kBlocking: blocking bulk.
enum class Burst : std::uint8_t { kNone, kTry, kBlocking };
// kBounded: holds at most about 1024 (see "Bounds" above); kUnbounded: allocates when full.
enum class Bound : std::uint8_t { kBounded, kUnbounded };

struct Shape {
  std::size_t capacity = kCapacity;
  int producers = 1;
  int consumers = 1;
};

// The producer side of both moodycamel adapters (BlockingConcurrentQueue's enqueue never blocks,
// so its producers behave like ConcurrentQueue's): kBounded spins on try_enqueue into the
// preallocated slots, kUnbounded calls enqueue, which allocates.
template <class Queue, Bound kMode>
class MoodycamelProducer {
 public:
  explicit MoodycamelProducer(Queue& q) : q_(q), tok_(q) {}
  bool push(Item v, const RunControl& ctl) {
    if constexpr (kMode == Bound::kBounded) {
      return spin_then_yield(ctl, [&] { return q_.try_enqueue(tok_, v); });
    } else {
      return spin_then_yield(ctl, [&] { return q_.enqueue(tok_, v); });  // false: no memory
    }
  }
  // try_enqueue_bulk is all-or-nothing: retry the whole span.
  std::size_t push_burst(std::span<Item> items, const RunControl& ctl) {
    return spin_then_yield(ctl,
                           [&] { return q_.try_enqueue_bulk(tok_, items.data(), items.size()); })
               ? items.size()
               : 0;
  }

 private:
  Queue& q_;
  moodycamel::ProducerToken tok_;
};

// ---------------------------------------------------------------------------------------------
// moodycamel::ConcurrentQueue with producer and consumer tokens, try_ calls only.
// kBounded: try_enqueue into the 1024 preallocated slots. kUnbounded: enqueue, which allocates
// blocks as needed (moodycamel's usual mode); run only with several producers, where the
// bounded form can starve a producer (see the header).
template <Bound kMode>
class MoodycamelCqT {
 public:
  static constexpr std::string_view kName =
      kMode == Bound::kBounded ? "MoodycamelCq" : "MoodycamelCqUnbounded";
  static constexpr Threads kThreads =
      kMode == Bound::kBounded ? Threads::kMpmc : Threads::kMultiProducer;
  static constexpr Wait kWait = Wait::kSpin;
  static constexpr Burst kBurst = kMode == Bound::kBounded ? Burst::kTry : Burst::kNone;
  static constexpr Bound kBound = kMode;

  explicit MoodycamelCqT(const Shape& s) : q_(s.capacity) {}

  class Producer : public MoodycamelProducer<moodycamel::ConcurrentQueue<Item>, kMode> {
   public:
    explicit Producer(MoodycamelCqT& a)
        : MoodycamelProducer<moodycamel::ConcurrentQueue<Item>, kMode>(a.q_) {}
  };

  class Consumer {
   public:
    explicit Consumer(MoodycamelCqT& a) : q_(a.q_), tok_(a.q_) {}
    bool pop(Item& v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.try_dequeue(tok_, v); });
    }
    std::size_t pop_burst(std::span<Item> out, const RunControl& ctl) {
      std::size_t n = 0;
      spin_then_yield(ctl,
                      [&] { return (n = q_.try_dequeue_bulk(tok_, out.data(), out.size())) != 0; });
      return n;
    }

   private:
    moodycamel::ConcurrentQueue<Item>& q_;
    moodycamel::ConsumerToken tok_;
  };

  void wake_all() {}  // nobody blocks
  std::string after_run() { return {}; }

 private:
  moodycamel::ConcurrentQueue<Item> q_;
};
using MoodycamelCq = MoodycamelCqT<Bound::kBounded>;
using MoodycamelCqUnbounded = MoodycamelCqT<Bound::kUnbounded>;

// ---------------------------------------------------------------------------------------------
// moodycamel::BlockingConcurrentQueue: consumers block in wait_dequeue. Its enqueue never
// blocks: kBounded producers spin on try_enqueue; kUnbounded producers call enqueue (allocates).
template <Bound kMode>
class MoodycamelBlockingT {
 public:
  static constexpr std::string_view kName =
      kMode == Bound::kBounded ? "MoodycamelBlocking" : "MoodycamelBlockingUnbounded";
  static constexpr Threads kThreads =
      kMode == Bound::kBounded ? Threads::kMpmc : Threads::kMultiProducer;
  static constexpr Wait kWait = Wait::kBlock;
  static constexpr Burst kBurst = kMode == Bound::kBounded ? Burst::kBlocking : Burst::kNone;
  static constexpr Bound kBound = kMode;

  explicit MoodycamelBlockingT(const Shape& s) : q_(s.capacity), consumers_(s.consumers) {}

  class Producer : public MoodycamelProducer<moodycamel::BlockingConcurrentQueue<Item>, kMode> {
   public:
    explicit Producer(MoodycamelBlockingT& a)
        : MoodycamelProducer<moodycamel::BlockingConcurrentQueue<Item>, kMode>(a.q_) {}
  };

  class Consumer {
   public:
    explicit Consumer(MoodycamelBlockingT& a) : q_(a.q_), tok_(a.q_) {}
    // wake_all() sends sentinels; a consumer that wakes after abort() drops what it got.
    bool pop(Item& v, const RunControl& ctl) {
      q_.wait_dequeue(tok_, v);
      return !ctl.aborted();
    }
    std::size_t pop_burst(std::span<Item> out, const RunControl& ctl) {
      const std::size_t n = q_.wait_dequeue_bulk(tok_, out.data(), out.size());
      return ctl.aborted() ? 0 : n;
    }

   private:
    moodycamel::BlockingConcurrentQueue<Item>& q_;
    moodycamel::ConsumerToken tok_;
  };

  // One sentinel per consumer (enqueue may allocate: we are past the cap, speed is moot).
  void wake_all() {
    for (int i = 0; i < consumers_; ++i) (void)q_.enqueue(Item{0});
  }
  std::string after_run() { return {}; }

 private:
  moodycamel::BlockingConcurrentQueue<Item> q_;
  int consumers_;
};
using MoodycamelBlocking = MoodycamelBlockingT<Bound::kBounded>;
using MoodycamelBlockingUnbounded = MoodycamelBlockingT<Bound::kUnbounded>;

// ---------------------------------------------------------------------------------------------
// moodycamel::ReaderWriterQueue: SPSC only, try_ calls (try_enqueue never allocates).
class MoodycamelRwq {
 public:
  static constexpr std::string_view kName = "MoodycamelRwq";
  static constexpr Threads kThreads = Threads::kSpsc;
  static constexpr Wait kWait = Wait::kSpin;
  static constexpr Burst kBurst = Burst::kNone;
  static constexpr Bound kBound = Bound::kBounded;

  explicit MoodycamelRwq(const Shape& s) : q_(s.capacity - 1) {}  // see "Bounds" above

  class Producer {
   public:
    explicit Producer(MoodycamelRwq& a) : q_(a.q_) {}
    bool push(Item v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.try_enqueue(v); });
    }
    std::size_t push_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    moodycamel::ReaderWriterQueue<Item>& q_;
  };

  class Consumer {
   public:
    explicit Consumer(MoodycamelRwq& a) : q_(a.q_) {}
    bool pop(Item& v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.try_dequeue(v); });
    }
    std::size_t pop_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    moodycamel::ReaderWriterQueue<Item>& q_;
  };

  void wake_all() {}
  std::string after_run() { return {}; }

 private:
  moodycamel::ReaderWriterQueue<Item> q_;
};

// ---------------------------------------------------------------------------------------------
// boost::lockfree::spsc_queue, compile-time capacity 1024; bulk push/pop for batches.
class BoostSpsc {
 public:
  static constexpr std::string_view kName = "BoostSpsc";
  static constexpr Threads kThreads = Threads::kSpsc;
  static constexpr Wait kWait = Wait::kSpin;
  static constexpr Burst kBurst = Burst::kTry;
  static constexpr Bound kBound = Bound::kBounded;

  explicit BoostSpsc(const Shape&) {}

  using Queue = boost::lockfree::spsc_queue<Item, boost::lockfree::capacity<kCapacity>>;

  class Producer {
   public:
    explicit Producer(BoostSpsc& a) : q_(a.q_) {}
    bool push(Item v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.push(v); });
    }
    // push(const T*, n) pushes as many as fit and returns how many.
    std::size_t push_burst(std::span<Item> items, const RunControl& ctl) {
      std::size_t n = 0;
      spin_then_yield(ctl, [&] { return (n = q_.push(items.data(), items.size())) != 0; });
      return n;
    }

   private:
    Queue& q_;
  };

  class Consumer {
   public:
    explicit Consumer(BoostSpsc& a) : q_(a.q_) {}
    bool pop(Item& v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.pop(v); });
    }
    std::size_t pop_burst(std::span<Item> out, const RunControl& ctl) {
      std::size_t n = 0;
      spin_then_yield(ctl, [&] { return (n = q_.pop(out.data(), out.size())) != 0; });
      return n;
    }

   private:
    Queue& q_;
  };

  void wake_all() {}
  std::string after_run() { return {}; }

 private:
  Queue q_;
};

// ---------------------------------------------------------------------------------------------
// boost::lockfree::queue (MPMC, Michael-Scott over a fixed node pool of 1024).
class BoostQueue {
 public:
  static constexpr std::string_view kName = "BoostQueue";
  static constexpr Threads kThreads = Threads::kMpmc;
  static constexpr Wait kWait = Wait::kSpin;
  static constexpr Burst kBurst = Burst::kNone;
  static constexpr Bound kBound = Bound::kBounded;

  explicit BoostQueue(const Shape&) {}

  using Queue = boost::lockfree::queue<Item, boost::lockfree::capacity<kCapacity>>;

  class Producer {
   public:
    explicit Producer(BoostQueue& a) : q_(a.q_) {}
    bool push(Item v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.bounded_push(v); });
    }
    std::size_t push_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    Queue& q_;
  };

  class Consumer {
   public:
    explicit Consumer(BoostQueue& a) : q_(a.q_) {}
    bool pop(Item& v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.pop(v); });
    }
    std::size_t pop_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    Queue& q_;
  };

  void wake_all() {}
  std::string after_run() { return {}; }

 private:
  Queue q_;
};

// ---------------------------------------------------------------------------------------------
// tbb::concurrent_bounded_queue: blocking push (full) and pop (empty).
class TbbBounded {
 public:
  static constexpr std::string_view kName = "TbbBounded";
  static constexpr Threads kThreads = Threads::kMpmc;
  static constexpr Wait kWait = Wait::kBlock;
  static constexpr Burst kBurst = Burst::kNone;
  static constexpr Bound kBound = Bound::kBounded;

  explicit TbbBounded(const Shape& s) { q_.set_capacity(static_cast<std::ptrdiff_t>(s.capacity)); }

  // abort() makes the threads blocked at that moment throw tbb::user_abort; it is not sticky,
  // so the watchdog repeats it and every call checks the flag first.
  class Producer {
   public:
    explicit Producer(TbbBounded& a) : q_(a.q_) {}
    bool push(Item v, const RunControl& ctl) {
      if (ctl.aborted()) return false;
      try {
        q_.push(v);
        return true;
      } catch (const tbb::user_abort&) {
        return false;
      }
    }
    std::size_t push_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    tbb::concurrent_bounded_queue<Item>& q_;
  };

  class Consumer {
   public:
    explicit Consumer(TbbBounded& a) : q_(a.q_) {}
    bool pop(Item& v, const RunControl& ctl) {
      if (ctl.aborted()) return false;
      try {
        q_.pop(v);
        return true;
      } catch (const tbb::user_abort&) {
        return false;
      }
    }
    std::size_t pop_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    tbb::concurrent_bounded_queue<Item>& q_;
  };

  void wake_all() { q_.abort(); }
  std::string after_run() { return {}; }

 private:
  tbb::concurrent_bounded_queue<Item> q_;
};

// ---------------------------------------------------------------------------------------------
// The TensorFlow-style mutex + condition variable deque (mutex_deque.h).
class MutexDeque {
 public:
  static constexpr std::string_view kName = "MutexDeque";
  static constexpr Threads kThreads = Threads::kMpmc;
  static constexpr Wait kWait = Wait::kBlock;
  static constexpr Burst kBurst = Burst::kNone;
  static constexpr Bound kBound = Bound::kBounded;

  explicit MutexDeque(const Shape& s) : q_(s.capacity) {}

  class Producer {
   public:
    explicit Producer(MutexDeque& a) : q_(a.q_) {}
    bool push(Item v, const RunControl&) { return q_.enqueue(v); }
    std::size_t push_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    MutexDequeQueue<Item>& q_;
  };

  class Consumer {
   public:
    explicit Consumer(MutexDeque& a) : q_(a.q_) {}
    bool pop(Item& v, const RunControl&) { return q_.dequeue(v); }
    std::size_t pop_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    MutexDequeQueue<Item>& q_;
  };

  void wake_all() { q_.cancel(); }
  std::string after_run() { return {}; }

 private:
  MutexDequeQueue<Item> q_;
};

// ---------------------------------------------------------------------------------------------
// xenium::vyukov_bounded_queue (Vyukov's bounded MPMC array queue), try_push / try_pop.
class XeniumVyukov {
 public:
  static constexpr std::string_view kName = "XeniumVyukov";
  static constexpr Threads kThreads = Threads::kMpmc;
  static constexpr Wait kWait = Wait::kSpin;
  static constexpr Burst kBurst = Burst::kNone;
  static constexpr Bound kBound = Bound::kBounded;

  explicit XeniumVyukov(const Shape& s) : q_(s.capacity) {}

  using Queue = xenium::vyukov_bounded_queue<Item>;

  class Producer {
   public:
    explicit Producer(XeniumVyukov& a) : q_(a.q_) {}
    bool push(Item v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.try_push(v); });
    }
    std::size_t push_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    Queue& q_;
  };

  class Consumer {
   public:
    explicit Consumer(XeniumVyukov& a) : q_(a.q_) {}
    bool pop(Item& v, const RunControl& ctl) {
      return spin_then_yield(ctl, [&] { return q_.try_pop(v); });
    }
    std::size_t pop_burst(std::span<Item>, const RunControl&) { return 0; }

   private:
    Queue& q_;
  };

  void wake_all() {}
  std::string after_run() { return {}; }

 private:
  Queue q_;
};

}  // namespace conveyor::bench
