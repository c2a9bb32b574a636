// The randomized schedule tester over every queue kind (issue 7; harness in
// tests/schedule_harness.h, which says what a run mixes and what it checks: conservation A9/A20/
// A23/B11, per-producer FIFO A10/A15, close A17-A24, deadlines A26, runners D5-D7, join C7).
//
// Seeds: kind k runs seeds k, k + 5, k + 10, ... (a seed picks its kind: seed % 5), so one seed
// names one run. Environment:
//   CONVEYOR_SCHEDULE_SEED=S   run only seed S (the repro command a failure prints)
//   CONVEYOR_SCHEDULE_RUNS=N   seeds per kind (default below: a few thousand in all in release,
//                              a bounded number under the sanitizers)
//   CONVEYOR_SCHEDULE_FIRST=F  start at seed F instead of 0 (a different slice of seeds)
// Each kind prints one line "schedule summary: ..." with its figures (tools/reliability.sh
// collects them).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/schedule_harness.h"

namespace conveyor::schedule {
namespace {

#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kDefaultRunsPerKind = 150;
#elif defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kDefaultRunsPerKind = 300;
#else
constexpr std::uint64_t kDefaultRunsPerKind = 600;
#endif

std::optional<std::uint64_t> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::strtoull(v, nullptr, 10);
}

std::string this_program() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "schedule_test";
}

class Schedule : public ::testing::TestWithParam<Kind> {};

TEST_P(Schedule, SeededRunsConserveOrderAndEnd) {
  const auto kind = static_cast<std::uint64_t>(GetParam());
  const std::string program = this_program();
  std::vector<std::uint64_t> seeds;
  if (const auto only = env_number("CONVEYOR_SCHEDULE_SEED")) {
    if (*only % kNumKinds != kind) GTEST_SKIP() << "seed " << *only << " is another kind's";
    seeds.push_back(*only);
  } else {
    const std::uint64_t runs = env_number("CONVEYOR_SCHEDULE_RUNS").value_or(kDefaultRunsPerKind);
    const std::uint64_t first = env_number("CONVEYOR_SCHEDULE_FIRST").value_or(0);
    const std::uint64_t base = first - first % kNumKinds + kind;
    for (std::uint64_t i = 0; i < runs; ++i) seeds.push_back(base + i * kNumKinds);
  }
  Tally total;
  for (const std::uint64_t seed : seeds) {
    const Result r = run_schedule(seed, program);
    total += r.tally;
    if (!r.ok()) {
      ADD_FAILURE() << "schedule FAILED: " << r.failure;
      if (total.failed_runs >= 3) break;
    }
  }
  std::printf(
      "schedule summary: kind=%s runs=%llu items_moved=%llu enqueued=%llu returned=%llu "
      "timeouts=%llu injected_throws=%llu lost=%llu duplicated=%llu phantom=%llu "
      "misordered=%llu hung=%llu failed_runs=%llu\n",
      std::string(to_string(GetParam())).c_str(), static_cast<unsigned long long>(total.runs),
      static_cast<unsigned long long>(total.dequeued),
      static_cast<unsigned long long>(total.enqueued),
      static_cast<unsigned long long>(total.returned),
      static_cast<unsigned long long>(total.timeouts),
      static_cast<unsigned long long>(total.injected_throws),
      static_cast<unsigned long long>(total.lost),
      static_cast<unsigned long long>(total.duplicated),
      static_cast<unsigned long long>(total.phantom),
      static_cast<unsigned long long>(total.misordered),
      static_cast<unsigned long long>(total.hung),
      static_cast<unsigned long long>(total.failed_runs));
  EXPECT_EQ(total.lost, 0u);
  EXPECT_EQ(total.duplicated, 0u);
  EXPECT_EQ(total.misordered, 0u);
  EXPECT_EQ(total.failed_runs, 0u);
  // The items moved must be what went in: every enqueued item dequeued once.
  EXPECT_EQ(total.dequeued, total.enqueued);
}

// Regression (found by this tester under TSan): tbbmalloc recycles a freed slab for another
// size class, so a scalar tensor's buffer can start in the middle of a freed enqueue_many
// buffer; alloc::scalable_resource() announced the free -> reuse edge only on the freed block's
// own address, and TSan reported the recycled memory as a race between two producers. It now
// syncs per page (alloc/scalable_resource.cc). These TensorQueue<FifoQueue> seeds showed it.
TEST(ScheduleRegression, TsanSeesTbbmallocPagesRecycledAcrossSizeClasses) {
  if (std::getenv("CONVEYOR_SCHEDULE_SEED") != nullptr) GTEST_SKIP() << "one seed asked for";
  const std::string program = this_program();
  for (std::uint64_t i = 0; i < 400; ++i) {
    const std::uint64_t seed = static_cast<std::uint64_t>(Kind::kTensorFifo) + i * kNumKinds;
    const Result r = run_schedule(seed, program);
    ASSERT_TRUE(r.ok()) << r.failure;
  }
}

// The plan is a pure function of the seed (the repro command depends on it).
TEST(SchedulePlan, SameSeedSamePlan) {
  for (std::uint64_t seed : {0ull, 1ull, 12345ull, 987654321ull}) {
    EXPECT_EQ(Plan::from_seed(seed).describe(), Plan::from_seed(seed).describe());
    EXPECT_EQ(Plan::from_seed(seed).kind, kind_of_seed(seed));
  }
}

// Over a few hundred seeds every ending, both producer styles and deadlines all occur, and
// shuffle queues large enough for batched slot release (lanes of 16 slots and more).
TEST(SchedulePlan, SeedsCoverEveryEnding) {
  std::vector<int> endings(5, 0);
  int runners = 0, deadlines = 0, large_shuffles = 0;
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    const Plan p = Plan::from_seed(seed);
    ++endings[static_cast<std::size_t>(p.ending)];
    runners += p.runners ? 1 : 0;
    deadlines += p.deadline_percent > 0 ? 1 : 0;
    const bool shuffle = p.kind == Kind::kShuffle || p.kind == Kind::kTensorShuffle;
    large_shuffles += shuffle && p.capacity >= 32 ? 1 : 0;
  }
  for (int n : endings) EXPECT_GT(n, 0);
  EXPECT_GT(runners, 0);
  EXPECT_GT(deadlines, 0);
  EXPECT_GT(large_shuffles, 0);
}

// The checker itself: each fabricated defect is reported (a checker that cannot fail proves
// nothing).
struct FakeRun {
  detail::Run run;
  FakeRun(Kind kind, int producers, std::uint32_t items) {
    run.plan.kind = kind;
    run.plan.producers = producers;
    run.plan.items = items;
    auto q = std::make_shared<FifoQueue<detail::Token>>(4);
    EXPECT_EQ(q->close(), Status::kOk);
    run.queue = std::make_unique<detail::TypedAdapter<FifoQueue<detail::Token>>>(q);
    run.producer_logs.resize(static_cast<std::size_t>(producers));
    for (auto& log : run.producer_logs) log.fate.assign(items, detail::Fate::kIn);
    run.consumer_logs.resize(2);
  }
  std::string check(Tally& t) { return detail::check(run, t); }
};

TEST(ScheduleChecker, PassesACleanRun) {
  FakeRun f(Kind::kFifoMpmc, 1, 3);
  f.run.consumer_logs[0].received = {detail::token(0, 0), detail::token(0, 2)};
  f.run.consumer_logs[1].received = {detail::token(0, 1)};
  Tally t;
  EXPECT_EQ(f.check(t), "");
  EXPECT_EQ(t.dequeued, 3u);
}

TEST(ScheduleChecker, ReportsALostItem) {
  FakeRun f(Kind::kFifoMpmc, 1, 2);
  f.run.consumer_logs[0].received = {detail::token(0, 0)};
  Tally t;
  EXPECT_NE(f.check(t).find("lost: producer 0 item 1"), std::string::npos);
  EXPECT_EQ(t.lost, 1u);
}

TEST(ScheduleChecker, ReportsADuplicate) {
  FakeRun f(Kind::kShuffle, 1, 1);
  f.run.consumer_logs[0].received = {detail::token(0, 0)};
  f.run.consumer_logs[1].received = {detail::token(0, 0)};
  Tally t;
  EXPECT_NE(f.check(t).find("duplicated"), std::string::npos);
  EXPECT_EQ(t.duplicated, 1u);
}

TEST(ScheduleChecker, ReportsAnItemDequeuedAlthoughRefused) {
  FakeRun f(Kind::kFifoMpmc, 1, 1);
  f.run.producer_logs[0].fate[0] = detail::Fate::kNotIn;
  f.run.consumer_logs[0].received = {detail::token(0, 0)};
  Tally t;
  EXPECT_NE(f.check(t).find("refused"), std::string::npos);
}

TEST(ScheduleChecker, ReportsPerProducerDisorderOnFifoKindsOnly) {
  for (Kind kind : {Kind::kFifoMpmc, Kind::kShuffle}) {
    FakeRun f(kind, 2, 2);
    f.run.consumer_logs[0].received = {detail::token(0, 1), detail::token(1, 0),
                                       detail::token(0, 0), detail::token(1, 1)};
    Tally t;
    const std::string problems = f.check(t);
    EXPECT_EQ(t.misordered, is_fifo(kind) ? 1u : 0u) << problems;
  }
}

TEST(ScheduleChecker, AFailedTensorEnqueueManyMustDeliverAPrefix) {
  FakeRun f(Kind::kTensorFifo, 1, 3);
  f.run.producer_logs[0].fate.assign(3, detail::Fate::kMaybe);
  f.run.producer_logs[0].maybe_batches.emplace_back(0, 3);
  f.run.consumer_logs[0].received = {detail::token(0, 0), detail::token(0, 2)};
  Tally t;
  EXPECT_NE(f.check(t).find("not an earlier row"), std::string::npos);
}

TEST(ScheduleChecker, ReportsElementsLeftInTheQueue) {
  FakeRun f(Kind::kFifoMpmc, 1, 1);
  auto q = std::make_shared<FifoQueue<detail::Token>>(4);
  ASSERT_EQ(q->enqueue(detail::token(0, 0)), Status::kOk);
  f.run.queue = std::make_unique<detail::TypedAdapter<FifoQueue<detail::Token>>>(q);
  Tally t;
  const std::string problems = f.check(t);
  EXPECT_NE(problems.find("left in the queue"), std::string::npos);
  EXPECT_NE(problems.find("not closed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(EveryKind, Schedule,
                         ::testing::Values(Kind::kFifoMpmc, Kind::kFifoSpsc, Kind::kShuffle,
                                           Kind::kTensorFifo, Kind::kTensorShuffle),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           switch (info.param) {
                             case Kind::kFifoMpmc: return std::string("FifoMpmc");
                             case Kind::kFifoSpsc: return std::string("FifoSpsc");
                             case Kind::kShuffle: return std::string("Shuffle");
                             case Kind::kTensorFifo: return std::string("TensorFifo");
                             case Kind::kTensorShuffle: return std::string("TensorShuffle");
                           }
                           return std::string("Unknown");
                         });

}  // namespace
}  // namespace conveyor::schedule
