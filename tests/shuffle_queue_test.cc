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

void fill(Q& q, U64 from, U64 n) {
  for (U64 i = from; i < from + n; ++i) {
    U64 v = i;
    ASSERT_EQ(q.enqueue(std::move(v)), Status::kOk);
  }
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
  for (; next < n; ++next) {
    U64 v = 0;
    EXPECT_EQ(q.dequeue(v), Status::kOk);
    out.push_back(v);
    U64 w = next;
    EXPECT_EQ(q.enqueue(std::move(w)), Status::kOk);
  }
  EXPECT_EQ(q.close(), Status::kOk);
  for (U64 v = 0; q.dequeue(v) == Status::kOk;) out.push_back(v);
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

// ---- B11: exactly once under concurrency ----------------------------------------------------

struct StressParams {
  unsigned producers;
  unsigned consumers;
  std::int64_t capacity;
  std::int64_t min_after_dequeue;
  int shards;
  bool cancel_mid_flight;  // else: drain close after the producers finish
};

void run_stress(const StressParams& p) {
  const U64 per_producer = 200 * testing::kScale;
  Q q(p.capacity, p.min_after_dequeue, 99, "stress", p.shards);
  std::vector<U64> accepted(p.producers, 0);
  std::vector<std::vector<U64>> got(p.consumers);
  std::atomic<U64> consumed{0};
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < p.producers; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(i + 1);
      U64 s = 0;
      while (s < per_producer) {
        const U64 k = std::min<U64>(rng() % 8 + 1, per_producer - s);
        std::vector<U64> batch;
        for (U64 j = 0; j < k; ++j) batch.push_back(U64{i} << 32 | (s + j));
        if (k == 1 || rng() % 2 == 0) {
          U64 v = batch[0];
          if (q.enqueue(std::move(v)) != Status::kOk) break;
          s += 1;
        } else {
          const BulkResult r = q.enqueue_many(batch);
          s += r.count;
          if (r.status != Status::kOk) break;
        }
      }
      accepted[i] = s;
    });
  }
  for (unsigned c = 0; c < p.consumers; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(1000 + c);
      std::vector<U64>& mine = got[c];
      std::vector<U64> out;
      bool closed = false;
      while (!closed) {
        const unsigned op = rng() % 3;
        const std::size_t k = rng() % 8 + 1;
        Status s;
        if (op == 0) {
          U64 v = 0;
          s = q.dequeue(v);
          if (s == Status::kOk) mine.push_back(v);
        } else {
          s = op == 1 ? q.dequeue_many(k, out) : q.dequeue_up_to(k, out);
          if (s == Status::kOk) {
            EXPECT_TRUE(op == 2 || out.size() == k);
            mine.insert(mine.end(), out.begin(), out.end());
          }
          if (s == Status::kClosed && op == 1) continue;  // too few for k: up_to takes them
        }
        if (s == Status::kOk) {
          consumed.fetch_add(1, std::memory_order_relaxed);
        } else {
          EXPECT_EQ(s, Status::kClosed);
          closed = true;
        }
      }
    });
  }
  if (p.cancel_mid_flight) {
    wait_until([&] { return consumed.load(std::memory_order_relaxed) >= 50 * testing::kScale; });
    EXPECT_EQ(q.close(CloseMode::kCancelPendingEnqueues), Status::kOk);
    for (auto& t : threads) t.join();
  } else {
    for (unsigned i = 0; i < p.producers; ++i) threads[i].join();
    EXPECT_EQ(q.close(), Status::kOk);
    for (std::size_t i = p.producers; i < threads.size(); ++i) threads[i].join();
  }
  // Every accepted value exactly once; nothing else.
  std::vector<U64> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  EXPECT_TRUE(std::adjacent_find(all.begin(), all.end()) == all.end()) << "duplicate";
  U64 total = 0;
  for (unsigned i = 0; i < p.producers; ++i) {
    if (!p.cancel_mid_flight) {
      EXPECT_EQ(accepted[i], per_producer);
    }
    total += accepted[i];
  }
  EXPECT_EQ(all.size(), total);
  for (const U64 v : all) {
    const U64 prod = v >> 32, seq = v & 0xffffffffu;
    ASSERT_LT(prod, p.producers);
    ASSERT_LT(seq, accepted[prod]) << "value never accepted";
  }
  EXPECT_EQ(q.size_approx(), 0u);
}

TEST(ShuffleQueueStress, B11_ExactlyOnce_4P2C_DrainAtEnd) { run_stress({4, 2, 64, 16, 4, false}); }
TEST(ShuffleQueueStress, B11_ExactlyOnce_2P3C_MinZero_TinyCapacity) {
  run_stress({2, 3, 4, 0, 2, false});
}
TEST(ShuffleQueueStress, B11_ExactlyOnce_3P3C_CancelMidFlight) {
  run_stress({3, 3, 32, 8, 3, true});
}
TEST(ShuffleQueueStress, B11_ExactlyOnce_Oversubscribed_8P8C) {
  run_stress({8, 8, 16, 4, 3, false});
}
TEST(ShuffleQueueStress, B11_ExactlyOnce_Oversubscribed_6P6C_CancelMidFlight) {
  run_stress({6, 6, 24, 10, 8, true});
}
// Lanes large enough that emptied slots go back to producers in batches (ShuffleLane).
TEST(ShuffleQueueStress, B11_ExactlyOnce_2P2C_BatchedRelease) {
  run_stress({2, 2, 512, 128, 2, false});
}
TEST(ShuffleQueueStress, B11_ExactlyOnce_4P3C_BatchedRelease_CancelMidFlight) {
  run_stress({4, 3, 256, 32, 2, true});
}

// ---- B3: shuffle quality vs TF's single-buffer rule -----------------------------------------
//
// Trial (one seed): capacity 16, min_after_dequeue 8, a stream of 64 elements. Fill: four
// threads, one after another, enqueue 4 elements each (so with 4 lanes every lane holds 4);
// steady state: the main thread dequeues one and enqueues the next (into its home lane while it
// has room, else the next lane with room: a lopsided layout on purpose); close; drain. The reference does the same
// operations on one buffer with TF's rule (uniform pick, last into the slot) and an mt19937_64.
// Samples: one per trial and tracked element (elements 0, 15, 40), so samples are independent
// across trials: the displacement (output position - input position) and the output position.
// Verdicts: a two-sample Kolmogorov-Smirnov test of displacements and a 2 x k chi-square test of
// homogeneity of output positions (k equal-frequency bins of the pooled sample, k <= 8), both
// at alpha = 1e-3 per test. With 3 tracked elements x 2 tests the family-wise false-alarm rate
// of a correct queue is < 0.6%; the seeds are fixed, so the verdict is deterministic (the same
// in every build and under TSan): it cannot flake. kTrials = 1500 per side gives the KS test
// a critical D of about 0.071 and detects a bias such as picking only among the older half
// (NegativeControlIsRejected proves the tests have that power).
constexpr int kTrials = 1500;
constexpr U64 kStream = 64;
constexpr std::int64_t kCap = 16, kMin = 8;
const std::vector<U64> kTracked = {0, 15, 40};

std::vector<U64> queue_trial(U64 seed, int shards) {
  Q q(kCap, kMin, seed, "quality", shards);
  for (U64 t = 0; t < 4; ++t) {
    std::thread([&q, t] { fill(q, 4 * t, 4); }).join();
  }
  std::vector<U64> out;
  for (U64 next = kCap; next < kStream; ++next) {
    U64 v = 0;
    EXPECT_EQ(q.dequeue(v), Status::kOk);
    out.push_back(v);
    U64 w = next;
    EXPECT_EQ(q.enqueue(std::move(w)), Status::kOk);
  }
  EXPECT_EQ(q.close(), Status::kOk);
  for (U64 v = 0; q.dequeue(v) == Status::kOk;) out.push_back(v);
  return out;
}

// TF's rule on one buffer; `older_half_only` is the negative control (a biased pick).
std::vector<U64> reference_trial(U64 seed, bool older_half_only = false) {
  std::mt19937_64 rng(seed);
  std::vector<U64> buf, out;
  auto pick = [&] {
    std::size_t i = rng() % buf.size();
    if (older_half_only) {
      std::vector<std::size_t> order(buf.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](auto a, auto b) { return buf[a] < buf[b]; });
      i = order[rng() % ((buf.size() + 1) / 2)];
    }
    out.push_back(buf[i]);
    buf[i] = buf.back();
    buf.pop_back();
  };
  U64 next = 0;
  for (; next < static_cast<U64>(kCap); ++next) buf.push_back(next);
  for (; next < kStream; ++next) {
    pick();
    buf.push_back(next);
  }
  while (!buf.empty()) pick();
  return out;
}

// Kolmogorov's limiting distribution: P(sqrt(ne) D > lambda).
double ks_p_value(double d, double n, double m) {
  const double ne = n * m / (n + m);
  const double lambda = (std::sqrt(ne) + 0.12 + 0.11 / std::sqrt(ne)) * d;
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    sum += (k % 2 == 1 ? 2.0 : -2.0) * std::exp(-2.0 * k * k * lambda * lambda);
  }
  return std::clamp(sum, 0.0, 1.0);
}

double ks_statistic(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / a.size() - static_cast<double>(j) / b.size()));
  }
  return d;
}

// Chi-square of homogeneity over equal-frequency bins of the pooled sample; returns whether it
// rejects at alpha = 1e-3.
bool chi_square_rejects(const std::vector<double>& a, const std::vector<double>& b,
                        double* stat_out) {
  std::vector<double> pooled = a;
  pooled.insert(pooled.end(), b.begin(), b.end());
  std::sort(pooled.begin(), pooled.end());
  std::vector<double> cuts;  // upper bounds (exclusive) of the bins
  for (int k = 1; k < 8; ++k) {
    const double c = pooled[pooled.size() * k / 8];
    if (cuts.empty() || c > cuts.back()) cuts.push_back(c);
  }
  const std::size_t bins = cuts.size() + 1;
  std::vector<double> ca(bins, 0), cb(bins, 0);
  auto bin = [&](double x) {
    return static_cast<std::size_t>(std::upper_bound(cuts.begin(), cuts.end(), x) -
                                    cuts.begin());
  };
  for (double x : a) ca[bin(x)] += 1;
  for (double x : b) cb[bin(x)] += 1;
  double stat = 0;
  std::size_t used = 0;
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  for (std::size_t k = 0; k < bins; ++k) {
    const double col = ca[k] + cb[k];
    if (col == 0) continue;
    ++used;
    const double ea = col * na / (na + nb), eb = col * nb / (na + nb);
    stat += (ca[k] - ea) * (ca[k] - ea) / ea + (cb[k] - eb) * (cb[k] - eb) / eb;
  }
  // Critical values at alpha = 1e-3 for df = 1..7.
  constexpr double kCritical[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};
  *stat_out = stat;
  return used >= 2 && stat > kCritical[used - 1];
}

struct Samples {
  std::vector<std::vector<double>> displacement, position;  // per tracked element
};

template <class Trial>
Samples collect(Trial trial) {
  Samples s;
  s.displacement.resize(kTracked.size());
  s.position.resize(kTracked.size());
  for (int t = 0; t < kTrials; ++t) {
    const std::vector<U64> out = trial(static_cast<U64>(t));
    std::vector<double> pos(kStream);
    for (std::size_t i = 0; i < out.size(); ++i) pos[out[i]] = static_cast<double>(i);
    for (std::size_t k = 0; k < kTracked.size(); ++k) {
      s.position[k].push_back(pos[kTracked[k]]);
      s.displacement[k].push_back(pos[kTracked[k]] - static_cast<double>(kTracked[k]));
    }
  }
  return s;
}

// Verdict of both tests for every tracked element: true when none rejects.
bool same_distribution(const Samples& a, const Samples& b, std::string* report) {
  bool same = true;
  for (std::size_t k = 0; k < kTracked.size(); ++k) {
    const double d = ks_statistic(a.displacement[k], b.displacement[k]);
    const double p = ks_p_value(d, kTrials, kTrials);
    double chi = 0;
    const bool chi_rejects = chi_square_rejects(a.position[k], b.position[k], &chi);
    *report += "element " + std::to_string(kTracked[k]) + ": KS D=" + std::to_string(d) +
               " p=" + std::to_string(p) + ", chi2=" + std::to_string(chi) + "\n";
    if (p < 1e-3 || chi_rejects) same = false;
  }
  return same;
}

TEST(ShuffleQuality, B3_ShardedQueueMatchesTFsSingleBufferRule) {
  const Samples ref =
      collect([](U64 t) { return reference_trial(0x5eed0000 + 1000003 * t); });
  for (int shards : {4, 3}) {
    const Samples sharded = collect([shards](U64 t) { return queue_trial(77 + t, shards); });
    std::string report;
    EXPECT_TRUE(same_distribution(sharded, ref, &report)) << "shards " << shards << "\n"
                                                          << report;
  }
}

TEST(ShuffleQuality, B3_NegativeControlIsRejected) {
  const Samples ref =
      collect([](U64 t) { return reference_trial(0x5eed0000 + 1000003 * t); });
  const Samples biased = collect([](U64 t) { return reference_trial(0xbad0000 + 7 * t, true); });
  std::string report;
  EXPECT_FALSE(same_distribution(biased, ref, &report)) << report;
}

}  // namespace
}  // namespace conveyor
