// ShuffleQueue's trace points (engine/trace.h; issue 6's "shuffle reservoir occupancy" and
// blocked spans): a producer that stalls on purpose on a small reservoir is reported as the
// stall on that queue, of kind shuffle_queue, with a blocked time inside bounds derived from
// the test's own sleeps, and batch dequeues record the reservoir's occupancy.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/shuffle_queue.h"
#include "engine/status.h"
#include "engine/thread.h"
#include "engine/trace.h"
#include "tools/trace.h"

namespace {

using conveyor::ShuffleQueue;
using conveyor::Status;
using conveyor::Thread;
namespace trace = conveyor::trace;
namespace ttrace = conveyor::tools::trace;
using Clock = std::chrono::steady_clock;

TEST(ShuffleTraceTest, StalledProducerAndReservoirOccupancyAreReported) {
  // Built with -DCONVEYOR_TRACING=OFF there are no trace points to test.
  if (!CONVEYOR_TRACING) GTEST_SKIP() << "tracing is compiled out";
  constexpr int kRounds = 4;
  constexpr auto kSleep = std::chrono::milliseconds(20);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("conveyor-shuffle-trace-" + std::to_string(::getpid())))
                               .string();
  trace::Options options;
  options.path = path;
  trace::start(options);
  const auto t0 = Clock::now();
  {
    ShuffleQueue<int> queue(2, 0, 7, "reservoir", 1);
    Thread producer("stall-producer", [&] {
      for (int i = 0; i < kRounds + 2; ++i) ASSERT_EQ(queue.enqueue(int{i}), Status::kOk);
    });
    for (int r = 0; r < kRounds; ++r) {
      // The stall itself (what the trace must show), not a synchronisation: the producer is
      // known to be blocked once it has registered as a waiter.
      while (queue.waiting_producers_approx() == 0) std::this_thread::yield();
      std::this_thread::sleep_for(kSleep);
      int v = -1;
      ASSERT_EQ(queue.dequeue(v), Status::kOk);
    }
    producer.join();
    std::vector<int> rest;
    ASSERT_EQ(queue.dequeue_many(2, rest), Status::kOk);  // a batch: records the occupancy
  }
  const auto elapsed = Clock::now() - t0;
  (void)trace::stop();
  const ttrace::Trace t = ttrace::read_trace(path);
  std::remove(path.c_str());
  const ttrace::Report r = ttrace::analyze(t, 3);

  const ttrace::QueueReport* q = nullptr;
  for (const ttrace::QueueReport& each : r.queues) {
    if (each.name == "reservoir") q = &each;
  }
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->kind, "shuffle_queue");
  EXPECT_EQ(q->capacity, 2);
  const auto full = static_cast<std::size_t>(trace::Side::kFull);
  EXPECT_EQ(q->waits[full], static_cast<std::uint64_t>(kRounds));
  EXPECT_GE(q->blocked_ns[full],
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(kRounds * kSleep).count()));
  EXPECT_LE(q->blocked_ns[full],
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()));
  ASSERT_EQ(q->blocked_by_thread[full].size(), 1u);
  EXPECT_EQ(t.thread_name(q->blocked_by_thread[full].begin()->first), "stall-producer");
  EXPECT_GT(q->occupancy.count, 0u);
  EXPECT_LE(q->occupancy.max, 2.0);
  ASSERT_FALSE(r.top_stalls.empty());
  EXPECT_EQ(t.object_name(r.top_stalls.front().queue), "reservoir");
}

}  // namespace
