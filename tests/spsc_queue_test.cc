// FifoQueue<T, Spsc> paths that the typed tests of fifo_queue_test.cc do not single out: the
// bulk copies of a trivially copyable T split at the ring's wrap (push_bulk / pop_bulk, and
// dequeue_many's one-copy take_run), and the paced waits of a blocking producer and consumer
// (SpscRing::kPollPacing) with nothing lost, nothing duplicated and FIFO order kept (A10, A11,
// A14, A15).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <thread>
#include <vector>

#include "engine/fifo_queue.h"
#include "tests/test_scale.h"

namespace conveyor {
namespace {

using U64 = std::uint64_t;
using SpscQueue = FifoQueue<U64, Spsc>;

// A14: dequeue_many of a run that straddles the wrap returns it in order; every capacity,
// power of two or not, and every offset of the run against the wrap.
TEST(SpscQueue, BulkRunsAcrossTheWrapKeepOrder) {
  for (const std::int64_t cap : {1, 2, 3, 7, 8, 13, 64}) {
    SpscQueue q(cap);
    U64 next_in = 0, next_out = 0;
    std::vector<U64> out;
    for (std::int64_t offset = 0; offset < 2 * cap + 1; ++offset) {
      for (std::int64_t n = 1; n <= cap; ++n) {
        std::vector<U64> in(static_cast<std::size_t>(n));
        std::iota(in.begin(), in.end(), next_in);
        next_in += static_cast<U64>(n);
        ASSERT_EQ(q.enqueue_many(std::span(in)).status, Status::kOk) << "cap " << cap;
        ASSERT_EQ(q.dequeue_many(static_cast<std::size_t>(n), out), Status::kOk);
        ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
        for (const U64 v : out) ASSERT_EQ(v, next_out++) << "cap " << cap << " n " << n;
      }
      U64 v = 0;  // move the wrap point by one
      ASSERT_EQ(q.enqueue(U64{next_in++}), Status::kOk);
      ASSERT_EQ(q.dequeue(v), Status::kOk);
      ASSERT_EQ(v, next_out++);
    }
  }
}

// A15: a dequeue_many larger than what is stored takes it piece by piece (the slow path's
// take_run) while the producer adds the rest, and still gets one contiguous run in order.
TEST(SpscQueue, DequeueManyLargerThanStoredCompletesInOrder) {
  constexpr std::int64_t kCap = 16;
  constexpr std::size_t kBatch = 40;  // larger than the capacity: pieces across several wraps
  const std::size_t rounds = 4 * testing::kScale;
  SpscQueue q(kCap);
  std::thread producer([&] {
    U64 next = 0;
    for (std::size_t i = 0; i < rounds * kBatch; ++i) {
      if (q.enqueue(U64{next++}) != Status::kOk) return;
    }
  });
  std::vector<U64> out;
  U64 want = 0;
  for (std::size_t r = 0; r < rounds; ++r) {
    ASSERT_EQ(q.dequeue_many(kBatch, out), Status::kOk);
    ASSERT_EQ(out.size(), kBatch);
    for (const U64 v : out) ASSERT_EQ(v, want++);
  }
  producer.join();
}

// A10, A11: one blocking producer and one blocking consumer, each mixing single calls, bursts
// and bulk calls, through a small ring so that both sides wait (paced) again and again. Every
// value arrives once, in order.
TEST(SpscQueue, PacedWaitsLoseNothingAndKeepOrder) {
  constexpr std::int64_t kCap = 8;
  const U64 total = 2000 * testing::kScale;
  SpscQueue q(kCap);
  std::thread producer([&] {
    U64 next = 0;
    std::vector<U64> buf;
    while (next < total) {
      const U64 n = std::min<U64>(1 + next % 11, total - next);
      if (next % 3 == 0) {
        buf.resize(static_cast<std::size_t>(n));
        std::iota(buf.begin(), buf.end(), next);
        if (q.enqueue_many(std::span(buf)).status != Status::kOk) return;
        next += n;
      } else if (next % 3 == 1) {
        buf.resize(static_cast<std::size_t>(n));
        std::iota(buf.begin(), buf.end(), next);
        const BulkResult r = q.try_enqueue_burst(std::span(buf));
        next += r.count;  // kFull with count 0: try again
      } else {
        if (q.enqueue(U64{next}) != Status::kOk) return;
        next += 1;
      }
    }
    (void)q.close();
  });
  U64 want = 0;
  std::vector<U64> out;
  std::vector<U64> burst(5);
  for (U64 k = 0;; ++k) {
    Status s;
    if (k % 3 == 0) {
      s = q.dequeue_up_to(1 + k % 7, out);
      if (s == Status::kOk) {
        for (const U64 v : out) ASSERT_EQ(v, want++);
      }
    } else if (k % 3 == 1) {
      const BulkResult r = q.try_dequeue_burst(std::span(burst));
      s = r.status == Status::kEmpty ? Status::kOk : r.status;
      for (std::size_t i = 0; i < r.count; ++i) ASSERT_EQ(burst[i], want++);
    } else {
      U64 v = 0;
      s = q.dequeue(v);
      if (s == Status::kOk) {
        ASSERT_EQ(v, want++);
      }
    }
    if (s == Status::kClosed) break;
    ASSERT_EQ(s, Status::kOk);
  }
  producer.join();
  EXPECT_EQ(want, total);
}

}  // namespace
}  // namespace conveyor
