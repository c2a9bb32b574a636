// FifoQueue behaviour tests. Each test names the SPEC.md behaviours it pins (A6 ... A26).
// Where a test needs another thread to be blocked first it waits for an observable state
// (size_approx(), waiting_producers_approx()), never for time.
#include "engine/fifo_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "engine/queue_errors.h"

namespace conveyor {
namespace {

using U64 = std::uint64_t;

template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

std::vector<U64> iota(U64 from, std::size_t n) {
  std::vector<U64> v(n);
  std::iota(v.begin(), v.end(), from);
  return v;
}

// Counts live objects, to prove no leak and no double destruction.
struct Counted {
  static inline std::atomic<long> live{0};
  U64 v = 0;
  Counted() noexcept { live.fetch_add(1, std::memory_order_relaxed); }
  explicit Counted(U64 x) noexcept : v(x) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted(Counted&& o) noexcept : v(o.v) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted& operator=(Counted&& o) noexcept {
    v = o.v;
    return *this;
  }
  ~Counted() { live.fetch_sub(1, std::memory_order_relaxed); }
};

template <class P>
class FifoQueueTest : public ::testing::Test {};
using Policies = ::testing::Types<Mpmc, Spsc>;
TYPED_TEST_SUITE(FifoQueueTest, Policies);

// A1/A2 (deviation: capacity must be >= 1, see docs/deviations.md).
TEST(FifoQueueArgs, BadCapacityIsInvalidArgumentNamingTheValue) {
  for (std::int64_t bad : {0, -1, -100}) {
    try {
      FifoQueue<U64> q(bad);
      FAIL() << "no error for capacity " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(e.message().find("capacity = " + std::to_string(bad)), std::string::npos)
          << e.message();
    }
  }
}

// A6, A11, A12: capacities 1..9 (powers of two and not) fill exactly to capacity, FIFO.
TYPED_TEST(FifoQueueTest, FillsToCapacityThenFullThenDrainsInOrder) {
  for (std::int64_t cap = 1; cap <= 9; ++cap) {
    FifoQueue<U64, TypeParam> q(cap);
    for (int lap = 0; lap < 3; ++lap) {  // wrap around several times
      for (std::int64_t i = 0; i < cap; ++i) ASSERT_EQ(q.try_enqueue(U64(lap * 100 + i)), Status::kOk);
      EXPECT_EQ(q.size_approx(), static_cast<std::size_t>(cap));
      U64 extra = 7;
      EXPECT_EQ(q.try_enqueue(std::move(extra)), Status::kFull);
      for (std::int64_t i = 0; i < cap; ++i) {
        U64 v = 0;
        ASSERT_EQ(q.try_dequeue(v), Status::kOk);
        EXPECT_EQ(v, U64(lap * 100 + i));
      }
      U64 v = 0;
      EXPECT_EQ(q.try_dequeue(v), Status::kEmpty);
      EXPECT_EQ(q.size_approx(), 0u);
    }
  }
}

// A failed push gives the value back: a move-only value is untouched.
TYPED_TEST(FifoQueueTest, FailedPushLeavesValueWithCaller) {
  FifoQueue<std::unique_ptr<int>, TypeParam> q(1);
  ASSERT_EQ(q.try_enqueue(std::make_unique<int>(1)), Status::kOk);
  auto p = std::make_unique<int>(2);
  EXPECT_EQ(q.try_enqueue(std::move(p)), Status::kFull);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 2);
  EXPECT_EQ(q.enqueue(std::move(p), Deadline::now()), Status::kTimedOut);  // A26
  ASSERT_NE(p, nullptr);
  q.close();
  EXPECT_EQ(q.try_enqueue(std::move(p)), Status::kClosed);
  ASSERT_NE(p, nullptr);
}

// A28 (typed layer): non-trivial values round-trip.
TYPED_TEST(FifoQueueTest, StringsRoundTrip) {
  FifoQueue<std::string, TypeParam> q(3);
  ASSERT_EQ(q.enqueue(std::string(1000, 'x')), Status::kOk);
  ASSERT_EQ(q.enqueue(std::string("")), Status::kOk);
  std::string a, b;
  ASSERT_EQ(q.dequeue(a), Status::kOk);
  ASSERT_EQ(q.dequeue(b), Status::kOk);
  EXPECT_EQ(a, std::string(1000, 'x'));
  EXPECT_EQ(b, "");
}

// A6: an enqueue on a full queue blocks until a dequeue frees a slot.
TYPED_TEST(FifoQueueTest, EnqueueBlocksWhileFullThenCompletes) {
  FifoQueue<U64, TypeParam> q(2);
  ASSERT_EQ(q.enqueue(1), Status::kOk);
  ASSERT_EQ(q.enqueue(2), Status::kOk);
  std::thread producer([&] { EXPECT_EQ(q.enqueue(3), Status::kOk); });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  EXPECT_EQ(q.size_approx(), 2u);
  std::vector<U64> got(3);
  for (auto& v : got) ASSERT_EQ(q.dequeue(v), Status::kOk);
  producer.join();
  EXPECT_EQ(got, (std::vector<U64>{1, 2, 3}));
}

// A8: enqueue_many of an empty batch succeeds at once, even on a closed queue.
TYPED_TEST(FifoQueueTest, EmptyEnqueueManySucceedsEvenWhenClosed) {
  FifoQueue<U64, TypeParam> q(2);
  std::vector<U64> none;
  EXPECT_EQ(q.enqueue_many(none).status, Status::kOk);
  q.close();
  const BulkResult r = q.enqueue_many(none);
  EXPECT_EQ(r.status, Status::kOk);
  EXPECT_EQ(r.count, 0u);
}

// A9, A12: enqueue_many larger than the free room pushes what fits, the size shows it, and the
// rest follows as dequeues make room; the batch may exceed the capacity.
TYPED_TEST(FifoQueueTest, EnqueueManyLargerThanCapacityPushesWhatFits) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> batch = iota(0, 10);
  std::thread producer([&] {
    const BulkResult r = q.enqueue_many(batch);
    EXPECT_EQ(r.status, Status::kOk);
    EXPECT_EQ(r.count, 10u);
  });
  wait_until([&] { return q.size_approx() == 5; });
  EXPECT_EQ(q.size_approx(), 5u);  // the unpushed rest is not counted (A12)
  std::vector<U64> got(10);
  for (auto& v : got) ASSERT_EQ(q.dequeue(v), Status::kOk);
  producer.join();
  EXPECT_EQ(got, iota(0, 10));
}

// A10 (MPMC): concurrent enqueue_many runs are each contiguous in the queue.
TEST(FifoQueueMpmc, ConcurrentEnqueueManyRunsAreContiguous) {
  constexpr std::size_t kRun = 37, kRuns = 40;
  FifoQueue<U64> q(8);  // much smaller than a run: every run makes partial progress
  std::vector<std::thread> producers;
  for (U64 p = 0; p < 3; ++p) {
    producers.emplace_back([&, p] {
      for (U64 r = 0; r < kRuns; ++r) {
        std::vector<U64> run = iota((p * kRuns + r) * kRun, kRun);
        ASSERT_EQ(q.enqueue_many(run).status, Status::kOk);
      }
    });
  }
  std::vector<U64> got(3 * kRuns * kRun);
  for (auto& v : got) ASSERT_EQ(q.dequeue(v), Status::kOk);
  for (auto& t : producers) t.join();
  for (std::size_t i = 0; i < got.size(); i += kRun) {
    ASSERT_EQ(got[i] % kRun, 0u) << "run boundary at " << i;
    for (std::size_t j = 1; j < kRun; ++j) ASSERT_EQ(got[i + j], got[i] + j) << "at " << i + j;
  }
}

// A11, A26: a dequeue on an empty open queue blocks; with a deadline it fails with timed_out and
// the queue stays usable.
TYPED_TEST(FifoQueueTest, DequeueDeadlineOnEmptyQueue) {
  FifoQueue<U64, TypeParam> q(4);
  U64 v = 0;
  EXPECT_EQ(q.dequeue(v, Deadline::after(std::chrono::milliseconds(1))), Status::kTimedOut);
  const Error e = queue_error(Status::kTimedOut, QueueOp::kDequeue, q.name());
  EXPECT_EQ(e.kind(), ErrorKind::kDeadlineExceeded);
  ASSERT_EQ(q.enqueue(5), Status::kOk);
  ASSERT_EQ(q.dequeue(v, Deadline::after(std::chrono::milliseconds(1))), Status::kOk);
  EXPECT_EQ(v, 5u);
}

// A13: dequeue_many / up_to of 0 return an empty batch at once, open or closed, empty or not.
TYPED_TEST(FifoQueueTest, DequeueZeroReturnsAtOnce) {
  FifoQueue<U64, TypeParam> q(4);
  std::vector<U64> out{9};
  EXPECT_EQ(q.dequeue_many(0, out), Status::kOk);
  EXPECT_TRUE(out.empty());
  q.close();
  EXPECT_EQ(q.dequeue_up_to(0, out), Status::kOk);
  EXPECT_EQ(q.dequeue_many(0, out), Status::kOk);
}

// A14: dequeue_many(n) returns n elements in FIFO order.
TYPED_TEST(FifoQueueTest, DequeueManyInFifoOrder) {
  FifoQueue<U64, TypeParam> q(10);
  std::vector<U64> in = iota(0, 10);
  ASSERT_EQ(q.enqueue_many(in).status, Status::kOk);
  std::vector<U64> out;
  ASSERT_EQ(q.dequeue_many(4, out), Status::kOk);
  EXPECT_EQ(out, iota(0, 4));
  ASSERT_EQ(q.dequeue_many(6, out), Status::kOk);
  EXPECT_EQ(out, iota(4, 6));
}

// A15: with fewer than n present the dequeue_many takes what exists and keeps waiting; n may
// exceed the capacity.
TYPED_TEST(FifoQueueTest, DequeueManyLargerThanCapacityWaitsForAll) {
  FifoQueue<U64, TypeParam> q(3);
  std::vector<U64> out;
  std::thread consumer([&] { EXPECT_EQ(q.dequeue_many(10, out), Status::kOk); });
  for (U64 i = 0; i < 10; ++i) ASSERT_EQ(q.enqueue(U64{i}), Status::kOk);
  consumer.join();
  EXPECT_EQ(out, iota(0, 10));
}

// A12, A15: elements held by a pending dequeue_many are not counted in the size.
TYPED_TEST(FifoQueueTest, PartialDequeueManyIsNotCountedInSize) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> first = iota(0, 3);
  ASSERT_EQ(q.enqueue_many(first).status, Status::kOk);
  std::vector<U64> out;
  std::thread consumer([&] { EXPECT_EQ(q.dequeue_many(5, out), Status::kOk); });
  wait_until([&] { return q.size_approx() == 0; });
  std::vector<U64> rest = iota(3, 2);
  ASSERT_EQ(q.enqueue_many(rest).status, Status::kOk);
  consumer.join();
  EXPECT_EQ(out, iota(0, 5));
}

// A15 (MPMC): concurrent dequeuers split the sequence into contiguous runs, no overlap, no loss.
TEST(FifoQueueMpmc, ConcurrentDequeueManyGetsContiguousRuns) {
  constexpr std::size_t kBatch = 13, kBatchesPerConsumer = 60, kConsumers = 3;
  constexpr std::size_t kTotal = kBatch * kBatchesPerConsumer * kConsumers;
  FifoQueue<U64> q(8);
  std::vector<std::vector<U64>> batches(kConsumers * kBatchesPerConsumer);
  std::vector<std::thread> consumers;
  for (std::size_t c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      for (std::size_t b = 0; b < kBatchesPerConsumer; ++b) {
        ASSERT_EQ(q.dequeue_many(kBatch, batches[c * kBatchesPerConsumer + b]), Status::kOk);
      }
    });
  }
  for (U64 i = 0; i < kTotal; ++i) ASSERT_EQ(q.enqueue(U64{i}), Status::kOk);
  for (auto& t : consumers) t.join();
  std::vector<bool> seen(kTotal, false);
  for (const auto& b : batches) {
    ASSERT_EQ(b.size(), kBatch);
    for (std::size_t j = 0; j < kBatch; ++j) {
      ASSERT_EQ(b[j], b[0] + j) << "batch not contiguous";
      ASSERT_FALSE(seen[b[j]]) << "duplicate " << b[j];
      seen[b[j]] = true;
    }
  }
}

// A16: on an open queue dequeue_up_to waits for n, like dequeue_many; at its deadline the
// elements it took go back to the front (A20, A26).
TYPED_TEST(FifoQueueTest, DequeueUpToOnOpenQueueWaitsForN) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> two = iota(0, 2);
  ASSERT_EQ(q.enqueue_many(two).status, Status::kOk);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_up_to(3, out, Deadline::after(std::chrono::milliseconds(2))),
            Status::kTimedOut);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(q.size_approx(), 2u);
  ASSERT_EQ(q.enqueue(2), Status::kOk);
  ASSERT_EQ(q.dequeue_up_to(3, out), Status::kOk);
  EXPECT_EQ(out, iota(0, 3));
}

// A17, A24: a plain close waits behind an enqueue blocked before it; that enqueue succeeds, the
// queue becomes closed after it, and its element can still be dequeued.
TYPED_TEST(FifoQueueTest, DrainCloseWaitsBehindBlockedEnqueue) {
  FifoQueue<U64, TypeParam> q(1);
  ASSERT_EQ(q.enqueue(1), Status::kOk);
  std::thread producer([&] { EXPECT_EQ(q.enqueue(2), Status::kOk); });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  std::atomic<bool> close_returned{false};
  std::thread closer([&] {
    EXPECT_EQ(q.close(), Status::kOk);
    close_returned.store(true);
  });
  EXPECT_FALSE(q.is_closed());  // the blocked enqueue still holds the close back (A24)
  U64 v = 0;
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(v, 1u);
  producer.join();
  closer.join();
  EXPECT_TRUE(q.is_closed());
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(v, 2u);
  EXPECT_EQ(q.dequeue(v), Status::kClosed);
}

// A18: enqueue on a closed queue fails: Cancelled "FIFOQueue '<name>' is closed."
TYPED_TEST(FifoQueueTest, EnqueueOnClosedQueue) {
  FifoQueue<U64, TypeParam> q(4, "feed");
  ASSERT_EQ(q.close(), Status::kOk);
  EXPECT_EQ(q.enqueue(1), Status::kClosed);
  EXPECT_EQ(q.try_enqueue(1), Status::kClosed);
  std::vector<U64> batch = iota(0, 3);
  EXPECT_EQ(q.enqueue_many(batch).status, Status::kClosed);
  const Error e = queue_error(Status::kClosed, QueueOp::kEnqueue, q.name());
  EXPECT_EQ(e.kind(), ErrorKind::kCancelled);
  EXPECT_EQ(e.message(), "FIFOQueue 'feed' is closed.");
}

// A19: on a closed queue dequeues succeed while elements remain, then fail with OutOfRange.
TYPED_TEST(FifoQueueTest, DequeueOnClosedQueueDrainsThenFails) {
  FifoQueue<U64, TypeParam> q(4, "feed");
  ASSERT_EQ(q.enqueue(1), Status::kOk);
  ASSERT_EQ(q.close(), Status::kOk);
  U64 v = 0;
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(q.dequeue(v), Status::kClosed);
  EXPECT_EQ(q.try_dequeue(v), Status::kClosed);
  const Error e = queue_error(Status::kClosed, QueueOp::kDequeue, q.name(), 1, q.size_approx());
  EXPECT_EQ(e.kind(), ErrorKind::kOutOfRange);
  EXPECT_EQ(e.message(),
            "FIFOQueue 'feed' is closed and has insufficient elements (requested 1, current size 0)");
}

// A19: dequeues blocked at the close wake and fail the same way.
TYPED_TEST(FifoQueueTest, BlockedDequeueWakesAtClose) {
  FifoQueue<U64, TypeParam> q(4);
  std::thread consumer([&] {
    U64 v = 0;
    EXPECT_EQ(q.dequeue(v), Status::kClosed);
  });
  ASSERT_EQ(q.close(), Status::kOk);
  consumer.join();
}

// A20: closed with fewer left than a dequeue_many needs: OutOfRange, the elements go back to the
// FRONT in order, and they can still be dequeued.
TYPED_TEST(FifoQueueTest, DequeueManyOnClosedPutsElementsBackAtFront) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> three = iota(10, 3);
  ASSERT_EQ(q.enqueue_many(three).status, Status::kOk);
  ASSERT_EQ(q.close(), Status::kOk);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_many(4, out), Status::kClosed);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(q.size_approx(), 3u);
  U64 v = 0;
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(v, 10u);
  ASSERT_EQ(q.dequeue_many(2, out), Status::kOk);
  EXPECT_EQ(out, iota(11, 2));
}

// A20 with a blocked dequeue_many: what it took while waiting goes back in front of elements that
// arrived later... none can arrive after close, so: back in front, in order, then OutOfRange.
TYPED_TEST(FifoQueueTest, BlockedDequeueManyPutsBackAtClose) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> out;
  std::thread consumer([&] { EXPECT_EQ(q.dequeue_many(5, out), Status::kClosed); });
  std::vector<U64> three = iota(0, 3);
  ASSERT_EQ(q.enqueue_many(three).status, Status::kOk);
  wait_until([&] { return q.size_approx() == 0; });  // the consumer holds all three
  ASSERT_EQ(q.close(), Status::kOk);
  consumer.join();
  EXPECT_TRUE(out.empty());
  std::vector<U64> rest;
  ASSERT_EQ(q.dequeue_up_to(5, rest), Status::kOk);
  EXPECT_EQ(rest, iota(0, 3));
}

// A20, A26 on an open queue: a timed-out dequeue_many puts back in front of later elements.
TYPED_TEST(FifoQueueTest, TimedOutDequeueManyPutsBackInFrontOfLaterElements) {
  FifoQueue<U64, TypeParam> q(4);
  std::vector<U64> two = iota(0, 2);
  ASSERT_EQ(q.enqueue_many(two).status, Status::kOk);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_many(3, out, Deadline::now()), Status::kTimedOut);
  ASSERT_EQ(q.enqueue(2), Status::kOk);
  ASSERT_EQ(q.enqueue(3), Status::kOk);
  ASSERT_EQ(q.enqueue(4), Status::kOk);  // size 5 > capacity 4 is allowed after a put-back
  std::vector<U64> all;
  ASSERT_EQ(q.dequeue_many(5, all), Status::kOk);
  EXPECT_EQ(all, iota(0, 5));
}

// A21: closed, dequeue_up_to(n) returns min(n, remaining) >= 1 at once, then OutOfRange.
TYPED_TEST(FifoQueueTest, DequeueUpToOnClosedReturnsRemainder) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> three = iota(0, 3);
  ASSERT_EQ(q.enqueue_many(three).status, Status::kOk);
  ASSERT_EQ(q.close(), Status::kOk);
  std::vector<U64> out;
  ASSERT_EQ(q.dequeue_up_to(2, out), Status::kOk);
  EXPECT_EQ(out, iota(0, 2));
  ASSERT_EQ(q.dequeue_up_to(5, out), Status::kOk);
  EXPECT_EQ(out, iota(2, 1));
  EXPECT_EQ(q.dequeue_up_to(5, out), Status::kClosed);
  EXPECT_TRUE(out.empty());
}

// A21: a dequeue_up_to blocked at the close wakes and returns the remainder.
TYPED_TEST(FifoQueueTest, BlockedDequeueUpToReturnsRemainderAtClose) {
  FifoQueue<U64, TypeParam> q(5);
  std::vector<U64> out;
  std::thread consumer([&] { EXPECT_EQ(q.dequeue_up_to(5, out), Status::kOk); });
  std::vector<U64> two = iota(0, 2);
  ASSERT_EQ(q.enqueue_many(two).status, Status::kOk);
  ASSERT_EQ(q.close(), Status::kOk);
  consumer.join();
  EXPECT_EQ(out, iota(0, 2));
}

// A22: a second plain close fails with Cancelled "already closed"; close(cancel) never errors.
TYPED_TEST(FifoQueueTest, SecondCloseIsAlreadyClosed) {
  FifoQueue<U64, TypeParam> q(2, "feed");
  ASSERT_EQ(q.close(), Status::kOk);
  EXPECT_EQ(q.close(), Status::kClosed);
  const Error e = queue_error(Status::kClosed, QueueOp::kClose, q.name());
  EXPECT_EQ(e.kind(), ErrorKind::kCancelled);
  EXPECT_EQ(e.message(), "Queue 'feed' is already closed.");
  EXPECT_EQ(q.close(CloseMode::kCancelPendingEnqueues), Status::kOk);
  EXPECT_EQ(q.close(CloseMode::kCancelPendingEnqueues), Status::kOk);
}

// A23: close(cancel) closes at once, fails every pending enqueue with Cancelled, keeps what a
// partial enqueue_many pushed, and leaves pending dequeues to resolve as A19-A21.
TYPED_TEST(FifoQueueTest, CancelFailsPendingEnqueueKeepsPushedPart) {
  FifoQueue<U64, TypeParam> q(3);
  std::vector<U64> batch = iota(0, 5);
  BulkResult r{Status::kOk, 0};
  std::thread producer([&] { r = q.enqueue_many(batch); });
  wait_until([&] { return q.size_approx() == 3 && q.waiting_producers_approx() == 1; });
  EXPECT_EQ(q.close(CloseMode::kCancelPendingEnqueues), Status::kOk);
  producer.join();
  EXPECT_EQ(r.status, Status::kCancelled);
  EXPECT_EQ(r.count, 3u);
  EXPECT_EQ(batch[3], 3u);  // the unpushed rest is untouched
  EXPECT_TRUE(q.is_closed());
  std::vector<U64> out;
  ASSERT_EQ(q.dequeue_up_to(10, out), Status::kOk);
  EXPECT_EQ(out, iota(0, 3));
  const Error e = queue_error(Status::kCancelled, QueueOp::kEnqueue, q.name());
  EXPECT_EQ(e.message(), "Enqueue operation was cancelled");
}

// A23: a plain close waiting behind a blocked enqueue is failed with Cancelled by close(cancel).
TYPED_TEST(FifoQueueTest, CancelFailsWaitingDrainClose) {
  FifoQueue<U64, TypeParam> q(1);
  ASSERT_EQ(q.enqueue(1), Status::kOk);
  Status enq = Status::kOk, drain = Status::kOk;
  std::thread producer([&] { enq = q.enqueue(2); });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  std::thread closer([&] { drain = q.close(); });
  EXPECT_EQ(q.close(CloseMode::kCancelPendingEnqueues), Status::kOk);
  producer.join();
  closer.join();
  EXPECT_EQ(enq, Status::kCancelled);
  // The drain close either saw the cancel (Cancelled) or lost the race to register as a close
  // (already closed); both are Cancelled in TF terms.
  EXPECT_TRUE(drain == Status::kCancelled || drain == Status::kClosed) << to_string(drain);
  U64 v = 0;
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(v, 1u);
  EXPECT_EQ(q.dequeue(v), Status::kClosed);
}

// A26: a timed-out enqueue_many keeps what it pushed and the queue stays usable.
TYPED_TEST(FifoQueueTest, TimedOutEnqueueManyKeepsPushedPart) {
  FifoQueue<U64, TypeParam> q(2);
  std::vector<U64> batch = iota(0, 4);
  const BulkResult r = q.enqueue_many(batch, Deadline::after(std::chrono::milliseconds(1)));
  EXPECT_EQ(r.status, Status::kTimedOut);
  EXPECT_EQ(r.count, 2u);
  std::vector<U64> out;
  ASSERT_EQ(q.dequeue_many(2, out), Status::kOk);
  EXPECT_EQ(out, iota(0, 2));
  std::span<U64> rest(batch.data() + r.count, batch.size() - r.count);
  ASSERT_EQ(q.enqueue_many(rest).status, Status::kOk);
  ASSERT_EQ(q.dequeue_many(2, out), Status::kOk);
  EXPECT_EQ(out, iota(2, 2));
}

// Bursts: up to n, never waiting.
TYPED_TEST(FifoQueueTest, BurstsMoveWhatFits) {
  FifoQueue<U64, TypeParam> q(4);
  std::vector<U64> in = iota(0, 6);
  BulkResult r = q.try_enqueue_burst(in);
  EXPECT_EQ(r.status, Status::kFull);
  EXPECT_EQ(r.count, 4u);
  std::vector<U64> out(6);
  r = q.try_dequeue_burst(out);
  EXPECT_EQ(r.status, Status::kOk);
  ASSERT_EQ(r.count, 4u);
  out.resize(4);
  EXPECT_EQ(out, iota(0, 4));
  q.close();
  std::vector<U64> more(2);
  EXPECT_EQ(q.try_dequeue_burst(more).status, Status::kClosed);
}

// No leak, no double destruction: ring and stash contents are destroyed with the queue.
TYPED_TEST(FifoQueueTest, DestroysRemainingElementsExactlyOnce) {
  Counted::live.store(0);
  {
    FifoQueue<Counted, TypeParam> q(4);
    for (U64 i = 0; i < 3; ++i) ASSERT_EQ(q.enqueue(Counted(i)), Status::kOk);
    std::vector<Counted> out;
    ASSERT_EQ(q.dequeue_many(1, out), Status::kOk);
    out.clear();
    q.close();
    ASSERT_EQ(q.dequeue_many(5, out), Status::kClosed);  // 2 elements go to the stash
    EXPECT_EQ(Counted::live.load(), 2);
    Counted c;
    ASSERT_EQ(q.dequeue(c), Status::kOk);  // 1 left in the stash
    EXPECT_EQ(c.v, 1u);
  }
  EXPECT_EQ(Counted::live.load(), 0);
  {
    FifoQueue<Counted, TypeParam> q(3);
    for (int lap = 0; lap < 5; ++lap) {  // wrap the ring with a non-power-of-two capacity
      ASSERT_EQ(q.enqueue(Counted(1)), Status::kOk);
      ASSERT_EQ(q.enqueue(Counted(2)), Status::kOk);
      Counted c;
      ASSERT_EQ(q.dequeue(c), Status::kOk);
      ASSERT_EQ(q.dequeue(c), Status::kOk);
    }
    ASSERT_EQ(q.enqueue(Counted(3)), Status::kOk);  // destroyed with the queue
    ASSERT_EQ(q.enqueue(Counted(4)), Status::kOk);
  }
  EXPECT_EQ(Counted::live.load(), 0);
}

}  // namespace
}  // namespace conveyor
