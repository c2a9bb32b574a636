// Tests of the typed batching layer and input producers (engine/batching.h; SPEC.md E1-E15).
//
// Pipelines run for real: queue runner threads started by session.start_queue_runners(&coord),
// a consumer on the test thread, and the input's end (OutOfRange from a source) closing the
// batch queue. No sleeps; a deadline only where a wait must give up.
#include "engine/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "engine/coordinator.h"
#include "tests/test_errors.h"

namespace conveyor {
namespace {

using testutil::message_of;
using testutil::thrown_by;

// A source of 0, 1, ..., n-1, then OutOfRange (the input is over). Thread-safe.
struct Counter {
  std::shared_ptr<std::atomic<int>> next = std::make_shared<std::atomic<int>>(0);
  int n;
  int operator()() const {
    const int v = next->fetch_add(1);
    if (v >= n) throw Error(ErrorKind::kOutOfRange, "input over");
    return v;
  }
};

// Drains `batches` and returns every batch.
template <class B>
std::vector<std::vector<typename B::Example>> drain(B& batches) {
  std::vector<std::vector<typename B::Example>> all;
  while (auto b = batches.next()) all.push_back(std::move(*b));
  return all;
}

// ---- E1 ----

TEST(EpochsTest, E1_LimitEpochsGivesTheValueNTimesThenOutOfRange) {
  auto twice = limit_epochs(std::string("x"), 2);
  EXPECT_EQ(twice(), "x");
  EXPECT_EQ(twice(), "x");
  EXPECT_ERROR(twice(), ErrorKind::kOutOfRange, "Reached limit of 2");
  EXPECT_ERROR(limit_epochs(1, 0), ErrorKind::kInvalidArgument, "num_epochs = 0");
  EXPECT_ERROR(limit_epochs(1, -3), ErrorKind::kInvalidArgument, "num_epochs = -3");
  auto forever = limit_epochs(5, std::nullopt);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(forever(), 5);
}

// ---- E2-E5 ----

TEST(InputProducerTest, E2_E3_OneEpochPerRunThenClosed) {
  Session s;
  Coordinator coord;
  InputProducerOptions o;
  o.num_epochs = 3;
  o.seed = 7;
  o.capacity = 100;
  auto q = input_producer(s, std::vector<int>{1, 2, 3, 4, 5}, o);
  RunnerThreads threads = s.start_queue_runners(&coord);
  EXPECT_EQ(threads.size(), 2u);  // E2: ONE enqueue thread, plus close_on_stop
  std::vector<int> got;
  int v = 0;
  while (q->dequeue(v) == Status::kOk) got.push_back(v);  // E3: ends when the runner closes it
  ASSERT_EQ(got.size(), 15u);
  std::vector<std::vector<int>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<int> epoch(got.begin() + 5 * e, got.begin() + 5 * (e + 1));
    std::vector<int> sorted = epoch;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<int>{1, 2, 3, 4, 5}));  // each epoch is a permutation
    epochs.push_back(epoch);
  }
  // "A fresh permutation each epoch": with this seed not all three orders are the same.
  EXPECT_FALSE(epochs[0] == epochs[1] && epochs[1] == epochs[2]);
  EXPECT_TRUE(q->is_closed());
  coord.request_stop();
  coord.join();
}

TEST(InputProducerTest, E2_SameSeedSameOrderAndNoShuffleKeepsOrder) {
  auto run = [](std::optional<std::uint64_t> seed, bool shuffle) {
    Session s;
    Coordinator coord;
    InputProducerOptions o;
    o.num_epochs = 2;
    o.seed = seed;
    o.shuffle = shuffle;
    std::vector<int> items(20);
    std::iota(items.begin(), items.end(), 0);
    auto q = input_producer(s, items, o);
    RunnerThreads threads = s.start_queue_runners(&coord);
    std::vector<int> got;
    int v = 0;
    while (q->dequeue(v) == Status::kOk) got.push_back(v);
    coord.request_stop();
    coord.join();
    return got;
  };
  EXPECT_EQ(run(42, true), run(42, true));
  EXPECT_NE(run(42, true), run(43, true));
  std::vector<int> in_order(20);
  std::iota(in_order.begin(), in_order.end(), 0);
  std::vector<int> twice = in_order;
  twice.insert(twice.end(), in_order.begin(), in_order.end());
  EXPECT_EQ(run(std::nullopt, false), twice);
}

TEST(InputProducerTest, E4_StringInputProducerNeedsStrings) {
  Session s;
  EXPECT_ERROR(string_input_producer(s, {}), ErrorKind::kInvalidArgument,
               "string_input_producer requires a non-null input tensor");
  InputProducerOptions o;
  o.num_epochs = 1;
  o.shuffle = false;
  auto q = string_input_producer(s, {"a.txt", "b.txt"}, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::string f;
  ASSERT_EQ(q->dequeue(f), Status::kOk);
  EXPECT_EQ(f, "a.txt");
  ASSERT_EQ(q->dequeue(f), Status::kOk);
  EXPECT_EQ(f, "b.txt");
  EXPECT_EQ(q->dequeue(f), Status::kClosed);
  coord.request_stop();
  coord.join();
}

TEST(InputProducerTest, E5_RangeAndSliceInputProducers) {
  Session s;
  EXPECT_ERROR(range_input_producer(s, 0), ErrorKind::kInvalidArgument, "limit = 0");
  InputProducerOptions o;
  o.num_epochs = 1;
  o.shuffle = false;
  auto range = range_input_producer(s, 4, o);
  auto rows = slice_input_producer(s, o, std::vector<int>{1, 2, 3},
                                   std::vector<std::string>{"a", "b", "c"});
  EXPECT_ERROR(slice_input_producer(s, o, std::vector<int>{1, 2}, std::vector<int>{1}),
               ErrorKind::kInvalidArgument, "same number of rows");
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::vector<std::int64_t> r;
  ASSERT_EQ(range->dequeue_up_to(10, r), Status::kOk);  // closed after one epoch: up_to drains
  EXPECT_EQ(r, (std::vector<std::int64_t>{0, 1, 2, 3}));
  std::vector<std::tuple<int, std::string>> got;
  ASSERT_EQ(rows->dequeue_up_to(10, got), Status::kOk);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1], std::make_tuple(2, std::string("b")));
  coord.request_stop();
  coord.join();
}

// ---- E6-E13 ----

TEST(BatchTest, E6_E13_FullBatchesThenTheIncompleteOneIsDropped) {
  Session s;
  BatchOptions o;
  o.batch_size = 4;
  o.capacity = 8;
  auto batches = batch(s, Counter{.n = 10}, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  const auto all = drain(batches);
  ASSERT_EQ(all.size(), 2u);  // 10 examples: 4 + 4, the last 2 dropped (dequeue_many)
  EXPECT_EQ(all[0], (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(all[1], (std::vector<int>{4, 5, 6, 7}));
  coord.request_stop();
  coord.join();
}

TEST(BatchTest, E13_AllowSmallerFinalBatchReturnsTheRest) {
  Session s;
  BatchOptions o;
  o.batch_size = 4;
  o.allow_smaller_final_batch = true;
  auto batches = batch(s, Counter{.n = 10}, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  const auto all = drain(batches);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2], (std::vector<int>{8, 9}));
  EXPECT_FALSE(batches.next().has_value());  // stays over
  coord.request_stop();
  coord.join();
}

TEST(BatchTest, E6_NumThreadsRunnersAndTheGauge) {
  Session s;
  BatchOptions o;
  o.batch_size = 5;
  o.num_threads = 3;
  o.capacity = 20;
  o.allow_smaller_final_batch = true;
  auto batches = batch(s, Counter{.n = 1000}, o);
  EXPECT_EQ(batches.gauge_name(), "batch/fraction_of_20_full");
  EXPECT_EQ(batches.queue()->name(), "batch/fifo_queue");
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  EXPECT_EQ(threads.size(), 4u);  // 3 enqueue threads + close_on_stop
  while (batches.queue()->size_approx() < 20) std::this_thread::yield();  // full: runners block
  EXPECT_DOUBLE_EQ(batches.fraction_full(), 1.0);
  std::set<int> seen;
  for (const auto& b : drain(batches)) seen.insert(b.begin(), b.end());
  EXPECT_EQ(seen.size(), 1000u);  // every example once, whatever thread enqueued it
  coord.request_stop();
  coord.join();
}

TEST(BatchTest, E6_ArgumentsAreChecked) {
  Session s;
  BatchOptions o;
  o.batch_size = 0;
  EXPECT_ERROR(batch(s, Counter{.n = 1}, o), ErrorKind::kInvalidArgument, "batch_size = 0");
  o.batch_size = 1;
  o.capacity = 0;
  EXPECT_ERROR(batch(s, Counter{.n = 1}, o), ErrorKind::kInvalidArgument, "capacity = 0");
  o.capacity = 1;
  o.num_threads = 0;
  EXPECT_ERROR(batch(s, Counter{.n = 1}, o), ErrorKind::kInvalidArgument, "num_threads = 0");
}

TEST(BatchTest, E8_BatchJoinNeedsSources) {
  Session s;
  EXPECT_ERROR(batch_join(s, std::vector<Counter>{}), ErrorKind::kInvalidArgument,
               "Expected at least one tensor in batch_join()");
}

TEST(BatchTest, E9_BatchJoinKeepsEachSourcesOrder) {
  Session s;
  std::vector<std::function<std::pair<int, int>()>> sources;
  for (int src = 0; src < 3; ++src) {
    sources.push_back([src, c = Counter{.n = 200}] { return std::make_pair(src, c()); });
  }
  BatchOptions o;
  o.batch_size = 7;
  o.allow_smaller_final_batch = true;
  auto batches = batch_join(s, sources, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  EXPECT_EQ(threads.size(), 4u);  // one enqueue thread per source + close_on_stop
  std::map<int, std::vector<int>> per_source;
  for (const auto& b : drain(batches)) {
    for (const auto& [src, v] : b) per_source[src].push_back(v);
  }
  for (int src = 0; src < 3; ++src) {
    std::vector<int> expected(200);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(per_source[src], expected) << "source " << src;
  }
  coord.request_stop();
  coord.join();
}

TEST(BatchTest, E12_MaybeBatchKeepsOnlyWhatKeepInputAccepts) {
  Session s;
  BatchOptions o;
  o.batch_size = 100;
  o.allow_smaller_final_batch = true;
  auto even = maybe_batch(s, Counter{.n = 50}, [](int v) { return v % 2 == 0; }, o);
  // With many(): the vector is filtered example by example.
  auto chunks = std::make_shared<std::atomic<int>>(0);
  auto multiples_of_3 = maybe_batch(
      s,
      many([chunks] {
        const int c = chunks->fetch_add(1);
        if (c >= 3) throw Error(ErrorKind::kOutOfRange, "over");
        return std::vector<int>{10 * c, 10 * c + 1, 10 * c + 2, 10 * c + 3};
      }),
      [](int v) { return v % 3 == 0; }, [] {
        BatchOptions m;
        m.name = "filtered";
        m.batch_size = 100;
        m.allow_smaller_final_batch = true;
        return m;
      }());
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  auto a = drain(even);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].size(), 25u);
  EXPECT_TRUE(std::all_of(a[0].begin(), a[0].end(), [](int v) { return v % 2 == 0; }));
  auto b = drain(multiples_of_3);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0], (std::vector<int>{0, 3, 12, 21}));
  coord.request_stop();
  coord.join();
}

TEST(BatchTest, E15_SharedNameReachesTheQueue) {
  Session s;
  BatchOptions o;
  o.shared_name = "shared_batches";
  auto a = batch(s, Counter{.n = 1}, o);
  o.name = "other";
  auto b = batch(s, Counter{.n = 1}, o);
  EXPECT_EQ(a.queue(), b.queue());
}

TEST(BatchTest, ASourceErrorStopsThePipelineAndJoinRaisesIt) {
  Session s;
  BatchOptions o;
  o.batch_size = 2;
  auto batches = batch(
      s, [c = Counter{.n = 1000}] {
        const int v = c();
        if (v == 5) throw Error(ErrorKind::kInternal, "corrupt record 5");
        return v;
      },
      o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  // The stop cancels the queue (close_on_stop); batches already queued are still delivered.
  std::vector<int> got;
  for (;;) {
    std::optional<std::vector<int>> b;
    const std::exception_ptr e = thrown_by([&] { b = batches.next(); });
    if (e || !b) break;
    got.insert(got.end(), b->begin(), b->end());
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));  // nothing already enqueued is lost
  EXPECT_ERROR(coord.join(), ErrorKind::kInternal, "corrupt record 5");
}

// ---- E10, E11: shuffle batching ----

TEST(ShuffleBatchTest, E10_CapacityMustExceedMinAfterDequeueAndTheGaugeIsNamed) {
  Session s;
  ShuffleBatchOptions o;
  o.capacity = 10;
  o.min_after_dequeue = 10;
  EXPECT_ERROR(shuffle_batch(s, Counter{.n = 1}, o), ErrorKind::kInvalidArgument,
               "min_after_dequeue = 10");
  o.min_after_dequeue = 4;
  auto batches = shuffle_batch(s, Counter{.n = 1}, o);
  EXPECT_EQ(batches.gauge_name(), "shuffle_batch/fraction_over_4_of_6_full");
  EXPECT_EQ(batches.queue()->name(), "shuffle_batch/random_shuffle_queue");
  EXPECT_EQ(batches.fraction_full(), 0.0);
}

TEST(ShuffleBatchTest, E10_E13_EveryExampleOnceShuffledThenTheRest) {
  Session s;
  ShuffleBatchOptions o;
  o.batch_size = 10;
  o.capacity = 200;
  o.min_after_dequeue = 100;
  o.num_threads = 2;
  o.seed = 3;
  o.allow_smaller_final_batch = true;
  auto batches = shuffle_batch(s, Counter{.n = 1005}, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::vector<int> got;
  std::size_t last_size = 0;
  for (const auto& b : drain(batches)) {
    got.insert(got.end(), b.begin(), b.end());
    last_size = b.size();
  }
  EXPECT_EQ(last_size, 5u);  // E13: the smaller final batch
  std::vector<int> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> all(1005);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);  // exactly once
  EXPECT_NE(got, all);     // and not in input order
  coord.request_stop();
  coord.join();
}

TEST(ShuffleBatchTest, E11_ShuffleBatchJoinRunsOneThreadPerSource) {
  Session s;
  std::vector<Counter> sources(3, Counter{.n = 0});
  for (int i = 0; i < 3; ++i) sources[static_cast<std::size_t>(i)] = Counter{.n = 100 * (i + 1)};
  ShuffleBatchOptions o;
  o.batch_size = 8;
  o.capacity = 64;
  o.min_after_dequeue = 16;
  o.allow_smaller_final_batch = true;
  o.name = "joined";
  auto batches = shuffle_batch_join(s, sources, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  EXPECT_EQ(threads.size(), 4u);  // 3 sources + close_on_stop
  std::map<int, int> count;
  for (const auto& b : drain(batches)) {
    for (int v : b) ++count[v];
  }
  // Source i yields 0 .. 100(i+1)-1: value v arrives once per source that has it.
  for (int v = 0; v < 300; ++v) EXPECT_EQ(count[v], v < 100 ? 3 : v < 200 ? 2 : 1) << v;
  coord.request_stop();
  coord.join();
}

TEST(ShuffleBatchTest, E12_MaybeShuffleBatchFilters) {
  Session s;
  ShuffleBatchOptions o;
  o.batch_size = 1000;
  o.capacity = 100;
  o.min_after_dequeue = 10;
  o.allow_smaller_final_batch = true;
  auto batches = maybe_shuffle_batch(s, Counter{.n = 300}, [](int v) { return v % 3 == 0; }, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::size_t n = 0;
  for (const auto& b : drain(batches)) {
    for (int v : b) EXPECT_EQ(v % 3, 0);
    n += b.size();
  }
  EXPECT_EQ(n, 100u);
  coord.request_stop();
  coord.join();
}

}  // namespace
}  // namespace conveyor
