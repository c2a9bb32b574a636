// Fault injection at the seams (issue 7): allocation failure (ring storage, shuffle shards,
// tensor buffers), a refused thread binding, interrupted and spurious futex waits (injected and
// by real signals), an exception mid-batch in a runner op, truncated and corrupt reader files,
// a consumer that stops consuming. Each fault must leave the data intact (nothing lost or
// duplicated), surface as a clear error, and never hang a shutdown.
//
// Regression tests for defects this file found are named after the defect
// (FaultRegression.*). Every test that injects faults prints one line
// "fault summary: kind=<seam> injected=<n>" (tools/reliability.sh collects them).
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <memory_resource>
#include <new>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/coordinator.h"
#include "engine/element.h"
#include "engine/fifo_queue.h"
#include "engine/internal/futex.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/record_reader.h"
#include "engine/session.h"
#include "engine/shuffle_queue.h"
#include "engine/tensor.h"
#include "engine/tensor_queue.h"
#include "engine/thread.h"
#include "tests/schedule_harness.h"
#include "tests/test_errors.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;

void report(const char* kind, std::uint64_t injected) {
  std::printf("fault summary: kind=%s injected=%llu\n", kind,
              static_cast<unsigned long long>(injected));
}

// A memory resource that refuses on command: after fail_from(n), the n-th allocation from then
// on and every later one throw std::bad_alloc, until fail_never(). Counts live blocks and bytes
// so a test proves that a failed operation freed what it had allocated.
class FailingResource final : public std::pmr::memory_resource {
 public:
  void fail_from(std::uint64_t n) {
    // relaxed: configured by the test thread while no other thread allocates from it.
    countdown_.store(n, std::memory_order_relaxed);
  }
  void fail_never() { countdown_.store(0, std::memory_order_relaxed); }  // relaxed: as above
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  std::int64_t live_blocks() const { return live_blocks_.load(std::memory_order_relaxed); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    // relaxed (all counters): plain counts, read after the threads using them are joined.
    std::uint64_t c = countdown_.load(std::memory_order_relaxed);
    while (c > 1 && !countdown_.compare_exchange_weak(c, c - 1, std::memory_order_relaxed)) {
    }
    if (c == 1) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      throw std::bad_alloc();
    }
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    live_blocks_.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    live_blocks_.fetch_sub(1, std::memory_order_relaxed);
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }

  std::atomic<std::uint64_t> countdown_{0};  // 0: never fail; 1: fail now and on
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::int64_t> live_blocks_{0};
};

template <class F>
bool throws_bad_alloc(F&& f) {
  try {
    f();
  } catch (const std::bad_alloc&) {
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Ring storage

template <class P>
void ring_storage_refused() {
  FailingResource memory;
  memory.fail_from(1);
  EXPECT_TRUE(throws_bad_alloc([&] { FifoQueue<int, P> q(64, "q", &memory); }));
  EXPECT_EQ(memory.live_blocks(), 0);
  memory.fail_never();
  FifoQueue<int, P> q(64, "q", &memory);  // the same resource works again
  ASSERT_EQ(q.enqueue(7), Status::kOk);
  int v = 0;
  ASSERT_EQ(q.dequeue(v), Status::kOk);
  EXPECT_EQ(v, 7);
  report(std::is_same_v<P, Mpmc> ? "ring_storage_mpmc" : "ring_storage_spsc",
         memory.failures());
}

TEST(FaultRingStorage, FifoMpmcConstructorRethrowsBadAllocAndLeaksNothing) {
  ring_storage_refused<Mpmc>();
}
TEST(FaultRingStorage, FifoSpscConstructorRethrowsBadAllocAndLeaksNothing) {
  ring_storage_refused<Spsc>();
}

TEST(FaultRingStorage, ShuffleQueueShardAllocationFailureLeaksNothing) {
  FailingResource memory;
  std::uint64_t injected = 0;
  for (std::uint64_t at = 1; at <= 6; ++at) {  // each of the first shard allocations in turn
    memory.fail_from(at);
    try {
      ShuffleQueue<int> q(64, 0, 1, "q", 4, &memory);
      memory.fail_never();
      ASSERT_EQ(q.enqueue(1), Status::kOk);  // built before the failure point: still works
    } catch (const std::bad_alloc&) {
      ++injected;
    }
    memory.fail_never();
    EXPECT_EQ(memory.live_blocks(), 0) << "failing allocation " << at;
  }
  EXPECT_GT(injected, 0u);
  report("shuffle_shard_storage", memory.failures());
}

// ---------------------------------------------------------------------------------------------
// Tensor buffers

QueueSpec scalar_spec(DType d = DType::kInt64) { return QueueSpec{{d}, {Shape{}}}; }

Element scalar(std::int64_t v) {
  Element e;
  e.components.push_back(Tensor::scalar<std::int64_t>(v));
  return e;
}

std::vector<std::int64_t> values_of(const Element& batch) {
  const auto f = batch[0].flat<std::int64_t>();
  return {f.begin(), f.end()};
}

TEST(FaultTensorBuffers, TensorConstructorFailureLeaksNothing) {
  FailingResource memory;
  memory.fail_from(1);
  EXPECT_TRUE(throws_bad_alloc([&] { Tensor t(DType::kFloat32, Shape{16, 16}, &memory); }));
  EXPECT_TRUE(throws_bad_alloc([&] { Tensor t(DType::kString, Shape{4}, &memory); }));
  memory.fail_never();
  Tensor source = Tensor::from<std::string>(Shape{2}, {"a", "long enough to leave the SSO buf"});
  memory.fail_from(1);
  EXPECT_TRUE(throws_bad_alloc([&] { Tensor copy(source, &memory); }));
  EXPECT_EQ(memory.live_blocks(), 0);
  report("tensor_buffer", memory.failures());
}

// enqueue_many splits the batch (allocating every row) before it pushes anything.
TEST(FaultTensorBuffers, EnqueueManySplitFailureLeavesQueueAndBatchUntouched) {
  FailingResource memory;
  TensorQueue<> q(scalar_spec(), 16, "q", &memory);
  Element batch;
  batch.components.push_back(Tensor::from<std::int64_t>(Shape{4}, {10, 11, 12, 13}));
  const Element copy = batch;
  for (std::uint64_t at = 1; at <= 4; ++at) {
    memory.fail_from(at);
    EXPECT_TRUE(throws_bad_alloc([&] { q.enqueue_many(batch); })) << at;
    EXPECT_EQ(q.size_approx(), 0u);
    EXPECT_EQ(batch, copy);
  }
  memory.fail_never();
  q.enqueue_many(batch);
  EXPECT_EQ(values_of(q.dequeue_many(4)), (std::vector<std::int64_t>{10, 11, 12, 13}));
  EXPECT_EQ(memory.live_blocks(), 0);
  report("tensor_split", memory.failures());
}

// Regression: TensorQueue::dequeue_many took the elements out of the queue and then allocated
// the stacked batch; when that allocation failed the elements were gone. The batch is now
// allocated first (as TF's DequeueMany does), so the failure leaves the queue as it was.
template <class Q>
void batch_allocation_failure_loses_nothing(std::shared_ptr<Q> inner) {
  FailingResource memory;
  TensorQueue<Q> q(scalar_spec(), inner, &memory);
  for (std::int64_t i = 0; i < 5; ++i) q.enqueue(scalar(i));
  memory.fail_from(1);
  // Deadline::now(): before the fix the first call lost 3 elements and the second would have
  // waited for a third one forever.
  EXPECT_TRUE(throws_bad_alloc([&] { (void)q.dequeue_many(3, Deadline::now()); }));
  EXPECT_TRUE(throws_bad_alloc([&] { (void)q.dequeue_up_to(3, Deadline::now()); }));
  EXPECT_EQ(q.size_approx(), 5u);
  q.close();
  EXPECT_TRUE(throws_bad_alloc([&] { (void)q.dequeue_up_to(10); }));  // the final short batch
  EXPECT_EQ(q.size_approx(), 5u);
  memory.fail_never();
  std::vector<std::int64_t> got = values_of(q.dequeue_up_to(10));  // 5 of 10 rows: truncated
  EXPECT_EQ(q.size_approx(), 0u);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  report("tensor_batch", memory.failures());
}

TEST(FaultRegression, TensorQueueLostDataOnBatchAllocationFailure) {
  batch_allocation_failure_loses_nothing(std::make_shared<FifoQueue<Element>>(8, "q"));
}
TEST(FaultRegression, TensorShuffleQueueLostDataOnBatchAllocationFailure) {
  batch_allocation_failure_loses_nothing(
      std::make_shared<ShuffleQueue<Element>>(8, 0, 3, "q"));
}

// The batch allocated ahead and truncated: strings are moved in and the unused rows freed.
TEST(FaultTensorBuffers, ShortFinalBatchOfStringsKeepsItsRows) {
  TensorQueue<> q(QueueSpec{{DType::kString}, {Shape{2}}}, 8, "q");
  Element e;
  e.components.push_back(Tensor::from<std::string>(Shape{2}, {"x", std::string(40, 'y')}));
  q.enqueue(Element(e));
  q.close();
  const Element batch = q.dequeue_up_to(6);
  EXPECT_EQ(batch[0].shape(), (Shape{1, 2}));
  EXPECT_EQ(batch[0].flat<std::string>()[1], std::string(40, 'y'));
}

TEST(FaultTensorBuffers, StackFailureLeavesItsElementsIntact) {
  FailingResource memory;
  QueueSpec spec{{DType::kString, DType::kString}, {Shape{}, Shape{}}};
  std::vector<Element> elements(2);
  for (Element& e : elements) {
    e.components.push_back(Tensor::scalar<std::string>(std::string(30, 'a')));
    e.components.push_back(Tensor::scalar<std::string>(std::string(30, 'b')));
  }
  const std::vector<Element> copy = elements;
  memory.fail_from(2);  // the second component's batch tensor
  EXPECT_TRUE(throws_bad_alloc([&] { (void)stack(std::span<Element>(elements), spec, &memory); }));
  EXPECT_EQ(elements, copy);  // nothing was moved out before every allocation succeeded
  EXPECT_EQ(memory.live_blocks(), 0);
  report("tensor_stack", memory.failures());
}

// ---------------------------------------------------------------------------------------------
// Thread binding refused by the OS

// Makes sched_setaffinity fail with EPERM for this process from now on (a seccomp filter; only
// ever installed in a death-test child). False if the kernel refuses the filter.
bool refuse_thread_binding() {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_setaffinity, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
                            filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// Regression: Session built each planned queue on a thread bound to its consumer's PU and let
// a refused binding escape, so queue creation threw. A refusal is now a placement note, as it
// already was for runner threads; the queue is built unbound and works.
TEST(FaultRegression, RefusedPlacementBindingThrewDuringSessionQueueCreation) {
  auto topo = std::make_shared<topology::Topology>(topology::Topology::this_machine());
  topology::PlanRequest request;
  request.policy = topology::Policy::kNumaLocal;
  const topology::Plan plan = topology::make_plan(*topo, request);
  if (!plan.queues().at(0).numa_node || !plan.consumer(0, 0).pu) {
    GTEST_SKIP() << "the plan binds nothing on this machine";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (!refuse_thread_binding()) {
          std::fprintf(stderr, "seccomp unavailable\n");
          std::_Exit(0);
        }
        Session session(SessionOptions{topo, plan});
        std::shared_ptr<FifoQueue<int>> q;
        try {
          q = session.fifo_queue<int>(4, "q");
        } catch (const std::exception& e) {
          std::fprintf(stderr, "queue creation threw: %s\n", e.what());
          std::_Exit(1);
        }
        session.add_op("put", [q] {
          if (q->enqueue(1) != Status::kOk) throw Error(ErrorKind::kOutOfRange, "closed");
          (void)q->close();
        });
        QueueRunner runner(q->name(), {"put"});
        RunnerThreads threads = runner.create_threads(session, nullptr, true);
        int v = 0;
        if (q->dequeue(v) != Status::kOk || v != 1) std::_Exit(2);
        if (!threads.wait_done(Deadline::after(60s))) std::_Exit(3);
        std::string notes;
        for (const std::string& n : session.placement_notes()) notes += n + "\n";
        std::fprintf(stderr, "notes:\n%s", notes.c_str());
        const bool queue_note = notes.find("queue 'q'") != std::string::npos;
        const bool runner_note = notes.find("QueueRunnerThread-q-put") != std::string::npos;
        std::_Exit(queue_note && runner_note ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "");
  report("binding_refused", 2);
}

// ---------------------------------------------------------------------------------------------
// Futex waits interrupted (EINTR) and woken spuriously

std::atomic<std::uint64_t> futex_faults{0};

// Every other wait of a thread returns at once: interrupted, then spuriously woken, in turn.
std::optional<internal::WaitResult> flaky_futex() noexcept {
  thread_local std::uint32_t n = 0;
  ++n;
  if (n % 2 == 0) return std::nullopt;
  futex_faults.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
  return n % 4 == 1 ? internal::WaitResult::kInterrupted : internal::WaitResult::kAwoken;
}

struct FutexFaultScope {
  FutexFaultScope() { internal::set_futex_fault_hook(&flaky_futex); }
  ~FutexFaultScope() { internal::set_futex_fault_hook(nullptr); }
};

TEST(FaultFutex, SchedulesPassWithInterruptedAndSpuriousWaits) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr std::uint64_t kSeeds = 100;
#else
  constexpr std::uint64_t kSeeds = 300;
#endif
  futex_faults.store(0, std::memory_order_relaxed);
  FutexFaultScope scope;
  schedule::Tally total;
  for (std::uint64_t seed = 1'000'000; seed < 1'000'000 + kSeeds; ++seed) {
    const schedule::Result r = schedule::run_schedule(seed, "fault_test (futex faults on)");
    total += r.tally;
    ASSERT_TRUE(r.ok()) << r.failure;
  }
  EXPECT_EQ(total.lost + total.duplicated + total.misordered, 0u);
  EXPECT_GT(futex_faults.load(), 0u);
  report("futex_eintr_spurious", futex_faults.load());
}

TEST(FaultFutex, TimedWaitsStillTimeOutAndSucceedUnderFaults) {
  FutexFaultScope scope;
  Coordinator coord;
  EXPECT_FALSE(coord.wait_for_stop(Deadline::after(5ms)));
  FifoQueue<int> q(1);
  int v = 0;
  EXPECT_EQ(q.dequeue(v, Deadline::after(5ms)), Status::kTimedOut);
  Thread t("stopper", [&coord] { coord.request_stop(); });
  EXPECT_TRUE(coord.wait_for_stop());
  EXPECT_TRUE(t.wait_done());
}

extern "C" void ignore_signal(int) {}

// Real signals without SA_RESTART: every futex wait of the blocked threads returns EINTR.
TEST(FaultFutex, RealSignalsDoNotBreakBlockedOperations) {
  struct sigaction sa {};
  sa.sa_handler = ignore_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  FifoQueue<int> q(1);
  Coordinator coord;
  std::atomic<int> got{-1};
  std::atomic<bool> stop_seen{false};
  std::thread consumer([&] {
    int v = 0;
    if (q.dequeue(v) == Status::kOk) got.store(v);
  });
  std::thread waiter([&] { stop_seen.store(coord.wait_for_stop()); });
  std::uint64_t sent = 0;
  for (int i = 0; i < 200; ++i) {  // the threads are blocked (or about to be): interrupt them
    pthread_kill(consumer.native_handle(), SIGUSR1);
    pthread_kill(waiter.native_handle(), SIGUSR1);
    sent += 2;
    std::this_thread::yield();
  }
  EXPECT_EQ(got.load(), -1);  // a signal is no element
  EXPECT_FALSE(stop_seen.load());
  ASSERT_EQ(q.enqueue(42), Status::kOk);
  coord.request_stop();
  consumer.join();
  waiter.join();
  EXPECT_EQ(got.load(), 42);
  EXPECT_TRUE(stop_seen.load());
  sigaction(SIGUSR1, &old, nullptr);
  report("signal_eintr", sent);
}

// ---------------------------------------------------------------------------------------------
// A runner op that throws in the middle of a batch

TEST(FaultRunner, ExceptionMidBatchStopsEveryoneAndLosesNothing) {
  Session session;
  auto q = session.fifo_queue<int>(4, "q");
  std::atomic<int> next{0};
  std::atomic<int> pushed{0};
  // Each op run pushes a batch of 3 as single enqueues; the run that reaches value 20 throws
  // after the first of its batch went in.
  session.add_op("batch", [&] {
    for (int i = 0; i < 3; ++i) {
      const int v = next.fetch_add(1);
      if (v == 20) throw std::runtime_error("injected fault at 20");
      const Status s = q->enqueue(int(v));
      if (s != Status::kOk) throw queue_error(s, QueueOp::kEnqueue, q->name());
      pushed.fetch_add(1);
    }
  });
  Coordinator coord;
  QueueRunner runner(q->name(), {"batch", "batch"});
  RunnerThreads threads = runner.create_threads(session, &coord, true);
  std::set<int> got;
  int v = 0;
  for (;;) {
    const Status s = q->dequeue(v);
    if (s == Status::kClosed) break;  // close_on_stop cancelled the queue after the fault
    ASSERT_EQ(s, Status::kOk);
    EXPECT_TRUE(got.insert(v).second) << "duplicate " << v;
  }
  const auto e = testutil::thrown_by([&] { coord.join({}, 30s); });
  EXPECT_EQ(testutil::message_of(e), "injected fault at 20");
  EXPECT_TRUE(threads.wait_done(Deadline::after(60s)));
  EXPECT_EQ(static_cast<int>(got.size()), pushed.load());  // every pushed value, once
  EXPECT_EQ(got.count(20), 0u);
  report("runner_throw", 1);
}

// ---------------------------------------------------------------------------------------------
// Truncated and corrupt reader files

class FaultReader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("conveyor_fault_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::filesystem::path dir_;
};

// Reads every record; returns them and the error that ended the read ("" at a clean end).
template <class Reader>
std::pair<std::vector<std::string>, std::string> read_all(const std::string& path) {
  Reader r(path, 16);  // a small buffer: refills happen inside records
  std::vector<std::string> out;
  try {
    while (auto rec = r.next()) out.push_back(rec->data);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kDataLoss) << e.what();
    return {out, e.message()};
  }
  return {out, ""};
}

TEST_F(FaultReader, TruncatedTFRecordAtEveryByteGivesTheWholeRecordsThenDataLoss) {
  const std::vector<std::string> records = {"alpha", "", std::string(100, 'b'), "gamma"};
  std::string file;
  std::vector<std::size_t> ends;  // where each record's frame ends
  for (const std::string& r : records) {
    file += tfrecord_frame(r);
    ends.push_back(file.size());
  }
  std::uint64_t cuts = 0;
  for (std::size_t len = 0; len <= file.size(); ++len) {
    const auto [got, error] =
        read_all<TFRecordReader>(write("t.tfrecord", file.substr(0, len)));
    std::size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= len) ++whole;
    ASSERT_EQ(got, std::vector<std::string>(records.begin(), records.begin() + whole)) << len;
    const bool at_boundary = len == 0 || (whole > 0 && ends[whole - 1] == len);
    if (at_boundary) {
      EXPECT_EQ(error, "") << len;
    } else {
      EXPECT_NE(error.find("truncated record"), std::string::npos) << len << ": " << error;
      ++cuts;
    }
  }
  report("reader_truncated_tfrecord", cuts);
}

TEST_F(FaultReader, CorruptByteAnywhereInATFRecordFileIsDataLossAfterTheIntactRecords) {
  const std::vector<std::string> records = {"one", "two two", std::string(40, 'z')};
  std::string file;
  std::vector<std::size_t> starts;
  for (const std::string& r : records) {
    starts.push_back(file.size());
    file += tfrecord_frame(r);
  }
  std::uint64_t flips = 0;
  for (std::size_t at = 0; at < file.size(); ++at) {
    std::string bad = file;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    const auto [got, error] = read_all<TFRecordReader>(write("c.tfrecord", bad));
    std::size_t hit = 0;  // the record whose frame holds the flipped byte
    while (hit + 1 < starts.size() && starts[hit + 1] <= at) ++hit;
    EXPECT_EQ(got, std::vector<std::string>(records.begin(), records.begin() + hit)) << at;
    // A flipped length byte may point past the end (truncated) or fail its CRC (corrupted).
    EXPECT_TRUE(error.find("corrupted record at " + std::to_string(starts[hit])) !=
                    std::string::npos ||
                error.find("truncated record at " + std::to_string(starts[hit])) !=
                    std::string::npos)
        << at << ": " << error;
    ++flips;
  }
  report("reader_corrupt_tfrecord", flips);
}

TEST_F(FaultReader, TruncatedTextFileGivesWholeLinesThenAPrefixOfTheNext) {
  const std::string file = "first line\nsecond\n\nfourth line is longer than the buffer\n";
  std::uint64_t cuts = 0;
  for (std::size_t len = 0; len <= file.size(); ++len) {
    const auto [got, error] = read_all<TextLineReader>(write("t.txt", file.substr(0, len)));
    EXPECT_EQ(error, "");
    std::string joined;
    for (std::size_t i = 0; i < got.size(); ++i) joined += got[i] + (i + 1 < got.size() ? "\n" : "");
    // What was read is the file cut at len (its last "\n" dropped): nothing invented, no loss.
    std::string expect = file.substr(0, len);
    if (!expect.empty() && expect.back() == '\n') expect.pop_back();
    EXPECT_EQ(joined, expect) << len;
    ++cuts;
  }
  report("reader_truncated_text", cuts);
}

// ---------------------------------------------------------------------------------------------
// A consumer that stops consuming

TEST(FaultConsumer, StoppedConsumerDoesNotHangShutdownAndLosesNothing) {
  Session session;
  auto q = session.fifo_queue<int>(4, "q");
  std::atomic<int> next{0};
  std::atomic<int> pushed{0};
  session.add_op("put", [&] {
    const int v = next.fetch_add(1);
    const Status s = q->enqueue(int(v));
    if (s != Status::kOk) throw queue_error(s, QueueOp::kEnqueue, q->name());
    pushed.fetch_add(1);
  });
  Coordinator coord;
  QueueRunner runner(q->name(), {"put", "put", "put"});
  RunnerThreads threads = runner.create_threads(session, &coord, true);
  std::set<int> got;
  int v = 0;
  for (int i = 0; i < 10; ++i) {  // consume a little, then stop consuming
    ASSERT_EQ(q->dequeue(v), Status::kOk);
    got.insert(v);
  }
  // The producers are now blocked on a full queue (or about to be). Stop: close_on_stop
  // cancels their enqueues, join returns within the grace period without an error.
  coord.request_stop();
  EXPECT_NO_THROW(coord.join({}, 30s));
  EXPECT_TRUE(threads.wait_done(Deadline::after(60s)));
  EXPECT_TRUE(q->is_closed());
  while (q->dequeue(v) == Status::kOk) EXPECT_TRUE(got.insert(v).second);  // drain the rest
  EXPECT_EQ(static_cast<int>(got.size()), pushed.load());
  report("consumer_stopped", 1);
}

// The same consumer stopping, with the session torn down instead of a coordinator (A25).
TEST(FaultConsumer, SessionCloseReleasesProducersBlockedOnAStoppedConsumer) {
  auto session = std::make_unique<Session>();
  auto q = session->fifo_queue<int>(2, "q");
  std::atomic<int> pushed{0};
  session->add_op("put", [&] {
    const Status s = q->enqueue(1);
    if (s != Status::kOk) throw queue_error(s, QueueOp::kEnqueue, q->name());
    pushed.fetch_add(1);
  });
  QueueRunner runner(q->name(), {"put", "put"});
  RunnerThreads threads = runner.create_threads(*session, nullptr, true);
  int v = 0;
  ASSERT_EQ(q->dequeue(v), Status::kOk);
  session.reset();  // closes: blocked enqueues fail with Cancelled, threads joined
  EXPECT_TRUE(threads.wait_done(Deadline::now()));
  EXPECT_FALSE(q->is_closed());  // A25: the queue is not closed by the teardown
  EXPECT_EQ(static_cast<int>(q->size_approx()) + 1, pushed.load());
  report("consumer_stopped_session_close", 1);
}

}  // namespace
}  // namespace conveyor
