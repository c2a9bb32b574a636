// ShuffleQueue under concurrency (SPEC.md B11): exactly once with parallel producers and
// consumers, random dequeue_up_to sizes, drain and cancel closes; labelled concurrency, so CI
// runs it under ThreadSanitizer too. Split from shuffle_queue_test.cc.
#include "engine/shuffle_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <deque>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_scale.h"

namespace conveyor {
namespace {

using U64 = std::uint64_t;
using Q = ShuffleQueue<U64>;

template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
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

}  // namespace
}  // namespace conveyor
