// ShuffleQueue behaviour tests. Each test names the SPEC.md behaviour it pins (B1 ... B11, and
// the A behaviours B4 inherits). Where a test needs another thread to be blocked first it waits
// for an observable state (size_approx(), waiting_producers_approx()), never for time; a
// deadline appears only where a wait must give up (Deadline::after(1ms): "would block").
#include "engine/shuffle_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/internal/owner.h"
#include "engine/queue_errors.h"
#include "engine/session.h"
#include "tests/test_errors.h"
#include "tests/shuffle_test_util.h"
#include "tests/test_scale.h"

namespace conveyor {
namespace {

using U64 = std::uint64_t;
using Q = ShuffleQueue<U64>;
using std::chrono::milliseconds;
using testutil::message_of;
using testutil::thrown_by;

template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

Deadline soon() { return Deadline::after(milliseconds(1)); }

using testutil::fill;

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

// ---- B1 -------------------------------------------------------------------------------------

TEST(ShuffleQueueArgs, B1_BadArgumentsAreInvalidArgumentNamingTheValue) {
  auto kind = [](auto f) {
    const std::exception_ptr e = thrown_by(f);
    return e ? kind_of(e) : ErrorKind::kUnknown;
  };
  EXPECT_EQ(kind([] { Q q(0, 0); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(message_of(thrown_by([] { Q q(0, 0); })), "capacity = 0: must be >= 1");
  EXPECT_EQ(message_of(thrown_by([] { Q q(10, -1); })), "min_after_dequeue = -1: must be >= 0");
  EXPECT_EQ(kind([] { Q q(10, 10); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(message_of(thrown_by([] { Q q(10, 10); })), "min_after_dequeue 10 must be < capacity 10");
  EXPECT_EQ(message_of(thrown_by([] { Q q(10, 12); })), "min_after_dequeue 12 must be < capacity 10");
  EXPECT_EQ(kind([] { Q q(10, 0, 1, "q", 65); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind([] { Q q(10, 0, 1, "q", -1); }), ErrorKind::kInvalidArgument);
  Q ok(10, 9, 7, "ok", 3);
  EXPECT_EQ(ok.capacity(), 10u);
  EXPECT_EQ(ok.min_after_dequeue(), 9u);
  EXPECT_EQ(ok.shards(), 3u);
  EXPECT_EQ(ok.seed(), std::optional<U64>(7));
  EXPECT_EQ(ok.name(), "ok");
  Q dflt(10, 0);
  EXPECT_GE(dflt.shards(), 1u);
  EXPECT_LE(dflt.shards(), 8u);
  EXPECT_FALSE(dflt.seed().has_value());
}

// The capacity is split over the lanes and holds for the queue as a whole: one producer fills
// every lane (spilling past its home lane), then is refused until a dequeue frees a slot.
TEST(ShuffleQueueArgs, B1_CapacityHoldsGloballyAcrossLanes) {
  Q q(10, 0, 5, "q", 3);
  for (U64 i = 0; i < 10; ++i) {
    U64 v = i;
    ASSERT_EQ(q.try_enqueue(std::move(v)), Status::kOk) << i;
  }
  U64 extra = 10;
  EXPECT_EQ(q.try_enqueue(std::move(extra)), Status::kFull);
  EXPECT_EQ(extra, 10u);  // untouched
  EXPECT_EQ(q.size_approx(), 10u);
  U64 out = 0;
  ASSERT_EQ(q.try_dequeue(out), Status::kOk);
  EXPECT_EQ(q.try_enqueue(std::move(extra)), Status::kOk);
  U64 more = 11;
  EXPECT_EQ(q.try_enqueue(std::move(more)), Status::kFull);
  Q tiny(2, 0, 5, "tiny", 8);  // never more lanes than slots
  EXPECT_EQ(tiny.shards(), 2u);
}

// Consumers hand emptied slots back to producers in batches (one lane of 256 slots: batches of
// 32); room they hold back is still room: a try_enqueue or an enqueue with a deadline gets it at
// once, and the capacity still holds.
TEST(ShuffleQueueArgs, B1_RoomHeldBackByBatchedReleaseIsStillRoom) {
  Q q(256, 0, 5, "q", 1);
  fill(q, 0, 256);
  U64 extra = 256;
  EXPECT_EQ(q.try_enqueue(std::move(extra)), Status::kFull);
  U64 out = 0;
  ASSERT_EQ(q.try_dequeue(out), Status::kOk);
  EXPECT_EQ(q.size_approx(), 255u);
  EXPECT_EQ(q.try_enqueue(std::move(extra)), Status::kOk);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(q.try_dequeue(out), Status::kOk);
  EXPECT_EQ(q.size_approx(), 253u);
  for (U64 i = 0; i < 3; ++i) {
    U64 v = 300 + i;
    EXPECT_EQ(q.enqueue(std::move(v), soon()), Status::kOk) << i;
  }
  U64 over = 400;
  EXPECT_EQ(q.enqueue(std::move(over), soon()), Status::kTimedOut);
  EXPECT_EQ(over, 400u);
  EXPECT_EQ(q.size_approx(), 256u);
  // Bulk claims see the room too.
  std::vector<U64> taken;
  ASSERT_EQ(q.dequeue_many(5, taken), Status::kOk);
  std::vector<U64> five{500, 501, 502, 503, 504};
  EXPECT_EQ(q.enqueue_many(std::span<U64>(five), soon()).count, 5u);
  EXPECT_EQ(q.size_approx(), 256u);
}

// A producer asleep for room is woken by the first dequeue, though the slot it frees is below
// the release batch.
TEST(ShuffleQueueTest, B4_BlockedEnqueueWakesOnOneDequeueFromALargeLane_A6) {
  Q q(256, 0, 5, "q", 1);
  fill(q, 0, 256);
  std::thread producer([&] {
    U64 x = 256;
    EXPECT_EQ(q.enqueue(std::move(x)), Status::kOk);
  });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  U64 out = 0;
  EXPECT_EQ(q.dequeue(out), Status::kOk);
  producer.join();
  EXPECT_EQ(q.size_approx(), 256u);
}

// ---- B2, B3 ---------------------------------------------------------------------------------

// One thread: fill, a steady state of dequeue + enqueue, close, drain.
std::vector<U64> run_sequence(Q& q, U64 n) {
  std::vector<U64> out;
  U64 next = 0;
  while (next < n) {
    U64 v = next;
    if (q.try_enqueue(std::move(v)) != Status::kOk) break;
    ++next;
  }
  testutil::steady_state_then_drain(q, next, n, out);
  return out;
}

TEST(ShuffleQueueTest, B2_SameSeedSameOperationsSameOutput) {
  for (int shards : {1, 4}) {
    Q a(32, 8, 42, "a", shards);
    Q b(32, 8, 42, "b", shards);
    const std::vector<U64> oa = run_sequence(a, 500);
    std::vector<U64> ob;
    std::thread other([&] { ob = run_sequence(b, 500); });  // another thread, same order
    other.join();
    ASSERT_EQ(oa.size(), 500u);
    EXPECT_EQ(oa, ob) << "shards " << shards;
    std::vector<U64> sorted = oa;
    std::sort(sorted.begin(), sorted.end());
    for (U64 i = 0; i < 500; ++i) ASSERT_EQ(sorted[i], i);
  }
}

TEST(ShuffleQueueTest, B2_DifferentSeedsAndNoSeedGiveDifferentOrders) {
  Q a(32, 8, 1, "a", 4);
  Q b(32, 8, 2, "b", 4);
  Q c(32, 8, std::nullopt, "c", 4);
  Q d(32, 8, std::nullopt, "d", 4);
  const auto oa = run_sequence(a, 500);
  const auto ob = run_sequence(b, 500);
  const auto oc = run_sequence(c, 500);
  const auto od = run_sequence(d, 500);
  EXPECT_NE(oa, ob);
  EXPECT_NE(oc, od);  // equal with probability far below 1e-100
  std::vector<U64> fifo(500);
  std::iota(fifo.begin(), fifo.end(), 0);
  EXPECT_NE(oa, fifo);
}

// B3: with one lane the queue's draw is a uniform pick over the stored elements in position
// order: index = rand % size, the oldest element moves into the hole (shuffle_queue.h; TF moves
// the last one instead: docs/deviations.md B3). The stream is SplitMix64 seeded with
// shuffle_stream_seed(seed), drawn once per dequeued element.
TEST(ShuffleQueueTest, B3_OneShardIsAUniformPickElementForElement) {
  const U64 seed = 1234;
  Q q(16, 4, seed, "q", 1);
  std::vector<U64> got;
  std::thread t([&] { got = run_sequence(q, 200); });
  t.join();
  internal::SplitMix64 rng{internal::shuffle_stream_seed(seed)};
  std::deque<U64> buf;
  std::vector<U64> want;
  U64 next = 0;
  for (; next < 16; ++next) buf.push_back(next);
  auto pick = [&] {
    const std::size_t i = rng.next() % buf.size();
    want.push_back(buf[i]);
    buf[i] = buf.front();
    buf.pop_front();
  };
  for (; next < 200; ++next) {
    pick();
    buf.push_back(next);
  }
  while (!buf.empty()) pick();
  EXPECT_EQ(got, want);
}

// ---- B4 (A6, A8, A9, A17, A18, A23) ---------------------------------------------------------

TEST(ShuffleQueueTest, B4_EnqueueOnClosedQueueIsCancelled_A18) {
  Q q(4, 0, 1, "rsq");
  EXPECT_EQ(q.close(), Status::kOk);
  EXPECT_TRUE(q.is_closed());
  U64 v = 9;
  const Status s = q.enqueue(std::move(v));
  EXPECT_EQ(s, Status::kClosed);
  EXPECT_EQ(v, 9u);  // untouched
  const Error e = queue_error(s, QueueOp::kEnqueue, q.name(), 1, 0, "RandomShuffleQueue");
  EXPECT_EQ(e.kind(), ErrorKind::kCancelled);
  EXPECT_EQ(e.message(), "RandomShuffleQueue 'rsq' is closed.");
  U64 w = 1;
  EXPECT_EQ(q.try_enqueue(std::move(w)), Status::kClosed);
  std::vector<U64> many{1, 2};
  EXPECT_EQ(q.enqueue_many(many).status, Status::kClosed);
  EXPECT_EQ(q.enqueue_many(std::span<U64>()).status, Status::kOk);  // A8, even closed
  EXPECT_EQ(q.close(), Status::kClosed);                            // A22
}

TEST(ShuffleQueueTest, B4_EnqueueBlocksWhenFullUntilADequeue_A6) {
  Q q(2, 0, 1, "q", 2);
  fill(q, 0, 2);
  U64 v = 2;
  EXPECT_EQ(q.try_enqueue(std::move(v)), Status::kFull);
  EXPECT_EQ(q.enqueue(std::move(v), soon()), Status::kTimedOut);  // A26
  EXPECT_EQ(v, 2u);
  std::atomic<bool> done{false};
  std::thread producer([&] {
    U64 x = 2;
    EXPECT_EQ(q.enqueue(std::move(x)), Status::kOk);
    done.store(true);
  });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  EXPECT_FALSE(done.load());
  U64 out = 0;
  EXPECT_EQ(q.dequeue(out), Status::kOk);
  producer.join();
  EXPECT_EQ(q.size_approx(), 2u);
}

TEST(ShuffleQueueTest, B4_EnqueueManyPushesWhatFitsThenBlocks_A9) {
  Q q(5, 0, 1, "q", 3);
  std::vector<U64> items(10);
  std::iota(items.begin(), items.end(), 0);
  BulkResult r{Status::kTimedOut, 0};
  std::thread producer([&] { r = q.enqueue_many(items); });
  wait_until([&] { return q.waiting_producers_approx() == 1 && q.size_approx() == 5; });
  EXPECT_EQ(q.size_approx(), 5u);
  std::set<U64> got;
  for (int i = 0; i < 10; ++i) {
    U64 v = 0;
    ASSERT_EQ(q.dequeue(v), Status::kOk);
    got.insert(v);
  }
  producer.join();
  EXPECT_EQ(r.status, Status::kOk);
  EXPECT_EQ(r.count, 10u);
  EXPECT_EQ(got.size(), 10u);
}

TEST(ShuffleQueueTest, B4_DrainCloseWaitsBehindBlockedEnqueue_A17) {
  Q q(1, 0, 1, "q");
  fill(q, 0, 1);
  std::thread producer([&] {
    U64 v = 1;
    EXPECT_EQ(q.enqueue(std::move(v)), Status::kOk);
  });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  Status closed = Status::kTimedOut;
  std::thread closer([&] { closed = q.close(); });
  // A new enqueue after the close was requested fails even though the queue is not closed yet.
  wait_until([&] {
    U64 x = 7;
    return q.try_enqueue(std::move(x)) == Status::kClosed;
  });
  EXPECT_FALSE(q.is_closed());  // A24: the blocked enqueue comes first
  U64 v = 0;
  EXPECT_EQ(q.dequeue(v), Status::kOk);
  producer.join();
  closer.join();
  EXPECT_EQ(closed, Status::kOk);
  EXPECT_TRUE(q.is_closed());
  EXPECT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(v, 1u);
  EXPECT_EQ(q.dequeue(v), Status::kClosed);
}

TEST(ShuffleQueueTest, B4_CancelFailsBlockedEnqueuesKeepingWhatWentIn_A23) {
  Q q(3, 0, 1, "q", 2);
  std::vector<U64> items{0, 1, 2, 3, 4};
  BulkResult r{Status::kOk, 0};
  std::thread producer([&] { r = q.enqueue_many(items); });
  wait_until([&] { return q.waiting_producers_approx() == 1; });
  EXPECT_EQ(q.close(CloseMode::kCancelPendingEnqueues), Status::kOk);
  producer.join();
  EXPECT_EQ(r.status, Status::kCancelled);
  EXPECT_EQ(r.count, 3u);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_up_to(10, out), Status::kOk);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(q.dequeue_up_to(10, out), Status::kClosed);
}

// ---- B5 -------------------------------------------------------------------------------------

TEST(ShuffleQueueTest, B5_DequeueNeverTakesSizeBelowMinAfterDequeue) {
  Q q(10, 2, 1, "q", 3);
  fill(q, 0, 4);
  U64 v = 0;
  EXPECT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(q.size_approx(), 2u);
  EXPECT_EQ(q.try_dequeue(v), Status::kEmpty);
  EXPECT_EQ(q.dequeue(v, soon()), Status::kTimedOut);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_up_to(1, out, soon()), Status::kTimedOut);
  EXPECT_EQ(q.size_approx(), 2u);
  fill(q, 4, 1);
  EXPECT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(q.size_approx(), 2u);
}

TEST(ShuffleQueueTest, B5_DequeueManyTakesOneAtATimeAboveTheFloor) {
  Q q(10, 2, 1, "q", 2);
  fill(q, 0, 4);
  std::vector<U64> out;
  Status s = Status::kTimedOut;
  std::thread consumer([&] { s = q.dequeue_many(3, out); });
  // It takes the 2 elements above the floor, then waits for a third.
  wait_until([&] { return q.size_approx() == 2; });
  U64 v = 0;
  EXPECT_EQ(q.try_dequeue(v), Status::kEmpty);  // the side is held (and at the floor)
  fill(q, 4, 1);
  consumer.join();
  EXPECT_EQ(s, Status::kOk);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(q.size_approx(), 2u);
  EXPECT_EQ(q.dequeue_many(0, out), Status::kOk);  // A13
  EXPECT_TRUE(out.empty());
}

// ---- B6, B7, B8: TF's examples --------------------------------------------------------------

TEST(ShuffleQueueTest, B6_AfterCloseMinAfterDequeueNoLongerApplies) {
  Q q(10, 2, 1, "q", 4);
  fill(q, 0, 4);
  std::set<U64> got;
  U64 v = 0;
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(q.dequeue(v), Status::kOk);
    got.insert(v);
  }
  EXPECT_EQ(q.dequeue(v, soon()), Status::kTimedOut);  // blocks at the floor
  // A dequeue blocked at the close wakes and succeeds.
  Status blocked = Status::kTimedOut;
  U64 blocked_v = 0;
  std::thread waiter([&] { blocked = q.dequeue(blocked_v); });
  EXPECT_EQ(q.close(), Status::kOk);
  waiter.join();
  EXPECT_EQ(blocked, Status::kOk);
  got.insert(blocked_v);
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  got.insert(v);
  EXPECT_EQ(q.dequeue(v), Status::kClosed);
  EXPECT_EQ(got, (std::set<U64>{0, 1, 2, 3}));
  const Error e = queue_error(Status::kClosed, QueueOp::kDequeue, q.name(), 1, 0,
                              "RandomShuffleQueue");
  EXPECT_EQ(e.kind(), ErrorKind::kOutOfRange);
}

TEST(ShuffleQueueTest, B7_DequeueManyOnClosedQueueWithTooFewPutsBack) {
  Q q(10, 2, 1, "q", 3);
  fill(q, 0, 4);
  // Blocked with elements in hand at the close: they go back.
  std::vector<U64> held;
  Status s = Status::kOk;
  std::thread consumer([&] { s = q.dequeue_many(5, held); });
  wait_until([&] { return q.size_approx() == 2; });  // took the 2 above the floor
  EXPECT_EQ(q.close(), Status::kOk);
  consumer.join();
  EXPECT_EQ(s, Status::kClosed);
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(q.size_approx(), 4u);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_many(5, out), Status::kClosed);
  EXPECT_EQ(q.size_approx(), 4u);
  EXPECT_EQ(q.dequeue_many(4, out), Status::kOk);
  std::sort(out.begin(), out.end());
  EXPECT_EQ(out, (std::vector<U64>{0, 1, 2, 3}));
  EXPECT_EQ(q.dequeue_many(1, out), Status::kClosed);
}

TEST(ShuffleQueueTest, B8_DequeueUpToAfterCloseReturnsWhatIsLeft) {
  Q q(10, 2, 1, "q", 2);
  fill(q, 0, 4);
  EXPECT_EQ(q.close(), Status::kOk);
  std::vector<U64> a, b, c;
  EXPECT_EQ(q.dequeue_up_to(3, a), Status::kOk);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(q.dequeue_up_to(3, b), Status::kOk);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(q.dequeue_up_to(3, c), Status::kClosed);
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, (std::vector<U64>{0, 1, 2, 3}));
}

TEST(ShuffleQueueTest, B8_DequeueUpToBlockedAtCloseReturnsTheRemainder) {
  Q q(10, 0, 1, "q", 2);
  fill(q, 0, 2);
  std::vector<U64> out;
  Status s = Status::kTimedOut;
  std::thread consumer([&] { s = q.dequeue_up_to(5, out); });
  wait_until([&] { return q.size_approx() == 0; });
  EXPECT_EQ(q.close(), Status::kOk);
  consumer.join();
  EXPECT_EQ(s, Status::kOk);
  EXPECT_EQ(out.size(), 2u);
}

// ---- A25, A26 -------------------------------------------------------------------------------

TEST(ShuffleQueueTest, A26_TimedOutDequeueManyPutsBackAndQueueStaysUsable) {
  Q q(10, 1, 1, "q", 2);
  fill(q, 0, 3);
  std::vector<U64> out;
  EXPECT_EQ(q.dequeue_many(4, out, soon()), Status::kTimedOut);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(q.size_approx(), 3u);
  EXPECT_FALSE(q.is_closed());
  EXPECT_EQ(q.dequeue_many(2, out), Status::kOk);
  EXPECT_EQ(q.size_approx(), 1u);
}

TEST(ShuffleQueueTest, A25_OwnerTeardownCancelsBlockedOperationsNotTheQueue) {
  Q q(2, 0, 1, "q", 2);
  std::atomic<bool> owner_closed{false};
  Status deq = Status::kOk, enq = Status::kOk;
  std::thread consumer([&] {
    internal::OwnerScope scope(&owner_closed);
    U64 v = 0;
    deq = q.dequeue(v);  // empty: blocks (or sees the teardown before it sleeps)
  });
  owner_closed.store(true, std::memory_order_seq_cst);
  q.interrupt_waiters();
  consumer.join();
  EXPECT_EQ(deq, Status::kCancelled);
  fill(q, 0, 2);
  std::thread producer([&] {
    internal::OwnerScope scope(&owner_closed);
    U64 v = 9;
    enq = q.enqueue(std::move(v));  // full
  });
  producer.join();
  EXPECT_EQ(enq, Status::kCancelled);
  EXPECT_FALSE(q.is_closed());
  EXPECT_EQ(q.size_approx(), 2u);
  U64 v = 0;
  EXPECT_EQ(q.dequeue(v), Status::kOk);  // a thread without that owner is not affected
}

TEST(ShuffleQueueTest, A25_CancelledDequeueManyReturnsItsElements) {
  Q q(10, 0, 1, "q", 2);
  fill(q, 0, 2);
  std::atomic<bool> owner_closed{false};
  Status s = Status::kOk;
  std::vector<U64> held;
  std::thread consumer([&] {
    internal::OwnerScope scope(&owner_closed);
    s = q.dequeue_many(5, held);
  });
  wait_until([&] { return q.size_approx() == 0; });
  owner_closed.store(true, std::memory_order_seq_cst);
  q.interrupt_waiters();
  consumer.join();
  EXPECT_EQ(s, Status::kCancelled);
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(q.size_approx(), 2u);
  EXPECT_FALSE(q.is_closed());
}

TEST(ShuffleQueueTest, CountedElementsAreNeitherLeakedNorDoubleDestroyed) {
  {
    ShuffleQueue<Counted> q(8, 2, 3, "q", 3);
    for (U64 i = 0; i < 8; ++i) ASSERT_EQ(q.enqueue(Counted(i)), Status::kOk);
    Counted c;
    ASSERT_EQ(q.dequeue(c), Status::kOk);
    std::vector<Counted> out;
    ASSERT_EQ(q.dequeue_many(3, out), Status::kOk);
    ASSERT_EQ(q.close(), Status::kOk);
    ASSERT_EQ(q.dequeue_many(9, out), Status::kClosed);  // put back
    EXPECT_EQ(q.size_approx(), 4u);
  }
  EXPECT_EQ(Counted::live.load(), 0);
}

// ---- B10: Session ---------------------------------------------------------------------------

TEST(ShuffleQueueSession, B10_SharedNameMismatchesAreInvalidArgument) {
  Session s;
  auto q = s.shuffle_queue<U64>(10, 2, 5, "sq", "shared");
  EXPECT_EQ(s.shuffle_queue<U64>(10, 2, 5, "sq", "shared"), q);
  EXPECT_EQ(s.shuffle_queue<U64>(10, 2, std::nullopt, "sq", "shared"), q);  // no seed: any
  auto msg = [&](auto f) {
    const std::exception_ptr e = thrown_by(f);
    EXPECT_TRUE(e);
    EXPECT_EQ(kind_of(e), ErrorKind::kInvalidArgument);
    return message_of(e);
  };
  EXPECT_NE(msg([&] { s.shuffle_queue<U64>(11, 2, 5, "sq", "shared"); }).find("capacity"),
            std::string::npos);
  EXPECT_EQ(msg([&] { s.shuffle_queue<U64>(10, 3, 5, "sq", "shared"); }),
            "Shared queue 'shared' has min_after_dequeue 2 but requested min_after_dequeue was 3");
  EXPECT_EQ(msg([&] { s.shuffle_queue<U64>(10, 2, 6, "sq", "shared"); }),
            "Shared queue 'shared' has seed 5 but requested seed was 6");
  EXPECT_NE(msg([&] { s.shuffle_queue<int>(10, 2, 5, "sq", "shared"); }).find("component types"),
            std::string::npos);
  EXPECT_NE(msg([&] { s.fifo_queue<U64>(10, "fq", "shared"); }).find("RandomShuffleQueue"),
            std::string::npos);
  auto unseeded = s.shuffle_queue<U64>(10, 2, std::nullopt, "u", "unseeded");
  EXPECT_NE(msg([&] { s.shuffle_queue<U64>(10, 2, 1, "u", "unseeded"); }).find("seed none"),
            std::string::npos);
  // B1 through the session; nothing registered by a failed construction.
  EXPECT_EQ(msg([&] { s.shuffle_queue<U64>(10, 10, 1, "bad"); }),
            "min_after_dequeue 10 must be < capacity 10");
  EXPECT_FALSE(s.has_op("bad_Close"));
}

TEST(ShuffleQueueSession, B10_DefaultCloseOpsAreRegistered) {
  Session s;
  auto q = s.shuffle_queue<U64>(4, 0, 1, "rsq");
  auto q2 = s.shuffle_queue<U64>(4, 0, 1, "rsq");  // private: TF's "_1" name
  EXPECT_NE(q, q2);
  EXPECT_EQ(q2->name(), "rsq_1");
  ASSERT_TRUE(s.has_op("rsq_Close"));
  ASSERT_TRUE(s.has_op("rsq_Close_1"));
  s.run("rsq_Close");
  EXPECT_TRUE(q->is_closed());
  const std::exception_ptr again = thrown_by([&] { s.run("rsq_Close"); });
  EXPECT_EQ(kind_of(again), ErrorKind::kCancelled);  // A22
  s.run("rsq_1_Close_1");
  EXPECT_TRUE(q2->is_closed());
}

}  // namespace
}  // namespace conveyor
