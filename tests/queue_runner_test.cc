// Tests of QueueRunner, QueueRunnerDef and Session (SPEC.md section D, F2, A3).
//
// No sleeps as synchronisation and no timing assertions: runner threads hand over through
// queues, std::latch, or a Coordinator. A deadline only appears where a wait must give up
// (F2's "not fed before the timeout", join's grace period).
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "alloc/numa_resource.h"
#include "engine/coordinator.h"
#include "engine/internal/owner.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/queue_runner_def.h"
#include "engine/session.h"
#include "tests/test_errors.h"
#include "tests/test_scale.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;

using testutil::message_of;
using testutil::thrown_by;

using IntQueue = FifoQueue<int>;

// An op that enqueues values from `next` into `q`, throwing TF's error on failure.
template <class Next>
Session::Op enqueue_into(std::shared_ptr<IntQueue> q, Next next) {
  return [q = std::move(q), next]() mutable {
    const Status s = q->enqueue(next());
    if (s != Status::kOk) throw queue_error(s, QueueOp::kEnqueue, q->name());
  };
}

// An op that moves one element from `in` to `out` (OutOfRange once `in` is closed and empty).
Session::Op transfer(std::shared_ptr<IntQueue> in, std::shared_ptr<IntQueue> out) {
  return [in = std::move(in), out = std::move(out)] {
    int v = 0;
    Status s = in->dequeue(v);
    if (s != Status::kOk) throw queue_error(s, QueueOp::kDequeue, in->name(), 1, in->size_approx());
    s = out->enqueue(std::move(v));
    if (s != Status::kOk) throw queue_error(s, QueueOp::kEnqueue, out->name());
  };
}

// ---- D1, D2, F2 construction ----

TEST(QueueRunnerTest, D1_QueueAndEnqueueOpsAreRequired) {
  EXPECT_ERROR(QueueRunner("", {"op"}), ErrorKind::kInvalidArgument,
               "Must provide queue and enqueue_ops.");
  EXPECT_ERROR(QueueRunner("q", {}), ErrorKind::kInvalidArgument,
               "Must provide queue and enqueue_ops.");
  EXPECT_ERROR(QueueRunner("q", {""}), ErrorKind::kInvalidArgument, "enqueue_ops");
}

TEST(QueueRunnerTest, D1_DefaultsAreQueueCloseCancelAndOutOfRange) {
  const QueueRunner qr("q", {"q_enqueue"});
  EXPECT_EQ(qr.close_op(), "q_Close");
  EXPECT_EQ(qr.cancel_op(), "q_Close_1");
  EXPECT_EQ(qr.closed_error_kinds(), std::vector<ErrorKind>{ErrorKind::kOutOfRange});
  const QueueRunner given("q", {"e"}, "c", "x",
                          std::vector{ErrorKind::kOutOfRange, ErrorKind::kCancelled});
  EXPECT_EQ(given.close_op(), "c");
  EXPECT_EQ(given.cancel_op(), "x");
  EXPECT_EQ(given.closed_error_kinds().size(), 2u);
}

TEST(QueueRunnerTest, D1_GivenButEmptyClosedKindsIsInvalidArgument) {
  EXPECT_ERROR(QueueRunner("q", {"e"}, "", "", std::vector<ErrorKind>{}),
               ErrorKind::kInvalidArgument, "queue_closed_exception_types");
}

// D1 deviation (docs/deviations.md): a def and a queue together cannot be written at all.
static_assert(!std::is_constructible_v<QueueRunner, QueueRunnerDef, std::string>);
static_assert(!std::is_constructible_v<QueueRunner, QueueRunnerDef, std::string,
                                       std::vector<std::string>>);

TEST(QueueRunnerTest, F2_DefWithoutEnqueueOpsIsInvalidArgument) {
  QueueRunnerDef def;
  def.queue_name = "q";
  EXPECT_ERROR(QueueRunner{def}, ErrorKind::kInvalidArgument, "Empty enqueue ops to run.");
}

TEST(QueueRunnerTest, D2_NameIsTheQueueName) {
  EXPECT_EQ(QueueRunner("input_queue", {"e"}).name(), "input_queue");
}

// ---- D8: QueueRunnerDef in TensorFlow's wire format ----

// What TensorFlow's QueueRunnerDef.SerializeToString() writes for
//   queue_name: "fifo_queue" enqueue_op_name: ["fifo_queue_enqueue", "fifo_queue_enqueue_1"]
//   close_op_name: "fifo_queue_Close" cancel_op_name: "fifo_queue_Close_1"
//   queue_closed_exception_types: [OUT_OF_RANGE, CANCELLED]
// encoded by hand from queue_runner.proto: tag = field << 3 | wire type; strings are type 2
// (length-delimited); proto3 packs the repeated enum (field 5) as one length-delimited run.
std::string tf_serialized_def() {
  std::string b;
  auto field = [&b](int number, const std::string& s) {
    b += static_cast<char>(number << 3 | 2);
    b += static_cast<char>(s.size());
    b += s;
  };
  field(1, "fifo_queue");
  field(2, "fifo_queue_enqueue");
  field(2, "fifo_queue_enqueue_1");
  field(3, "fifo_queue_Close");
  field(4, "fifo_queue_Close_1");
  field(5, std::string{11, 1});  // packed varints: OUT_OF_RANGE = 11, CANCELLED = 1
  return b;
}

TEST(QueueRunnerDefTest, D8_ReadsWhatTensorFlowWrites) {
  const QueueRunnerDef def = QueueRunnerDef::from_wire(tf_serialized_def());
  EXPECT_EQ(def.queue_name, "fifo_queue");
  EXPECT_EQ(def.enqueue_op_names,
            (std::vector<std::string>{"fifo_queue_enqueue", "fifo_queue_enqueue_1"}));
  EXPECT_EQ(def.close_op_name, "fifo_queue_Close");
  EXPECT_EQ(def.cancel_op_name, "fifo_queue_Close_1");
  EXPECT_EQ(def.queue_closed_error_kinds,
            (std::vector{ErrorKind::kOutOfRange, ErrorKind::kCancelled}));
}

TEST(QueueRunnerDefTest, D8_WritesWhatTensorFlowReads) {
  // Byte for byte what TensorFlow writes (fields in number order, field 5 packed), so
  // TensorFlow's parser reads it back.
  const QueueRunner qr("fifo_queue", {"fifo_queue_enqueue", "fifo_queue_enqueue_1"}, "", "",
                       std::vector{ErrorKind::kOutOfRange, ErrorKind::kCancelled});
  EXPECT_EQ(qr.to_def().to_wire(), tf_serialized_def());
}

TEST(QueueRunnerDefTest, D8_RoundTripsThroughQueueRunner) {
  const QueueRunner qr("q", {"a", "b", "c"}, "close_it", "cancel_it",
                       std::vector{ErrorKind::kCancelled});
  const QueueRunner back = QueueRunner::from_def(QueueRunnerDef::from_wire(qr.to_def().to_wire()));
  EXPECT_EQ(back.to_def(), qr.to_def());
}

TEST(QueueRunnerDefTest, D8_UnpackedEnumAndUnknownFieldsAreRead) {
  std::string b = "\x0a\x01q\x12\x01" "e";
  b += "\x28\x01";          // field 5 unpacked (wire type 0): CANCELLED
  b += "\x30\x07";          // field 6, unknown to us: skipped
  b += "\x28\x0b";          // field 5 unpacked: OUT_OF_RANGE
  const QueueRunnerDef def = QueueRunnerDef::from_wire(b);
  EXPECT_EQ(def.queue_closed_error_kinds,
            (std::vector{ErrorKind::kCancelled, ErrorKind::kOutOfRange}));
}

TEST(QueueRunnerDefTest, D8_EmptyClosedTypesMeanOutOfRange) {
  const QueueRunnerDef def = QueueRunnerDef::from_wire(std::string("\x0a\x01q\x12\x01" "e"));
  EXPECT_EQ(def.queue_closed_error_kinds, std::vector{ErrorKind::kOutOfRange});
}

TEST(QueueRunnerDefTest, D8_CodesWithoutAKindAndGarbageAreInvalidArgument) {
  EXPECT_ERROR(QueueRunnerDef::from_wire(std::string("\x0a\x01q\x28\x05")),
               ErrorKind::kInvalidArgument, "NOT_FOUND");
  EXPECT_ERROR(QueueRunnerDef::from_wire(std::string("\x0a\x09q")), ErrorKind::kInvalidArgument,
               "not a serialized QueueRunnerDef");
}

TEST(QueueRunnerDefTest, D8_ErrorCodesAreTensorFlows) {
  EXPECT_EQ(to_tf_code(ErrorKind::kCancelled), 1);
  EXPECT_EQ(to_tf_code(ErrorKind::kInvalidArgument), 3);
  EXPECT_EQ(to_tf_code(ErrorKind::kDeadlineExceeded), 4);
  EXPECT_EQ(to_tf_code(ErrorKind::kFailedPrecondition), 9);
  EXPECT_EQ(to_tf_code(ErrorKind::kOutOfRange), 11);
  EXPECT_EQ(to_tf_code(ErrorKind::kInternal), 13);
  for (ErrorKind k : {ErrorKind::kCancelled, ErrorKind::kInvalidArgument,
                      ErrorKind::kDeadlineExceeded, ErrorKind::kOutOfRange,
                      ErrorKind::kFailedPrecondition, ErrorKind::kInternal, ErrorKind::kUnknown}) {
    EXPECT_EQ(from_tf_code(to_tf_code(k)), k);
  }
}

// ---- Session: ops and queues (A3) ----

TEST(SessionTest, OpsAreFoundByNameAndNamesAreUnique) {
  Session s;
  int runs = 0;
  s.add_op("count", [&runs] { ++runs; });
  s.run("count");
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(s.has_op("count"));
  EXPECT_ERROR(s.add_op("count", [] {}), ErrorKind::kInvalidArgument, "already registered");
  EXPECT_ERROR(s.add_op("", [] {}), ErrorKind::kInvalidArgument, "op name");
  EXPECT_ERROR(s.add_op("empty", Session::Op()), ErrorKind::kInvalidArgument, "callable");
  EXPECT_ERROR(s.op("nope"), ErrorKind::kInvalidArgument, "'nope'");
}

TEST(SessionTest, A3_SharedNameOpensOneQueue) {
  Session s;
  auto a = s.fifo_queue<int>(10, "a", "shared");
  auto b = s.fifo_queue<int>(10, "b", "shared");
  EXPECT_EQ(a, b);
  ASSERT_EQ(a->enqueue(7), Status::kOk);
  EXPECT_EQ(b->size_approx(), 1u);
  auto c = s.fifo_queue<int>(10, "a");  // private; its name gets TF's suffix
  EXPECT_NE(c, a);
  EXPECT_EQ(c->name(), "a_1");
  EXPECT_EQ(c->size_approx(), 0u);
}

TEST(SessionTest, A3_SharedNameMismatchIsInvalidArgument) {
  Session s;
  auto q = s.fifo_queue<int>(10, "q", "shared");
  ASSERT_EQ(q->enqueue(1), Status::kOk);
  EXPECT_ERROR(s.fifo_queue<int>(11, "q", "shared"), ErrorKind::kInvalidArgument, "capacity");
  EXPECT_ERROR(s.fifo_queue<double>(10, "q", "shared"), ErrorKind::kInvalidArgument,
               "component types");
  EXPECT_ERROR((s.fifo_queue<int, Spsc>(10, "q", "shared")), ErrorKind::kInvalidArgument,
               "does not match type");
  EXPECT_EQ(q->size_approx(), 1u);  // the shared queue is untouched
}

TEST(SessionTest, QueuesGetTheDefaultCloseOps) {
  Session s;
  auto q = s.fifo_queue<int>(4, "q");
  ASSERT_EQ(q->enqueue(1), Status::kOk);
  s.run("q_Close");
  EXPECT_TRUE(q->is_closed());
  int v = 0;
  EXPECT_EQ(q->dequeue(v), Status::kOk);  // a plain close keeps what is queued
  EXPECT_EQ(v, 1);
  EXPECT_ERROR(s.fifo_queue<int>(0, "bad"), ErrorKind::kInvalidArgument, "capacity = 0");
  EXPECT_FALSE(s.has_op("bad_Close"));  // a failed creation registers nothing
}

// ---- D3 ----

TEST(QueueRunnerTest, D3_OneThreadPerOpPlusCloseOnStopNamedAfterQueueAndOp) {
  Session s;
  auto q = s.fifo_queue<int>(4, "q");
  s.add_op("q_enqueue", enqueue_into(q, [] { return 1; }));
  s.add_op("q_enqueue_1", enqueue_into(q, [] { return 2; }));
  const QueueRunner qr("q", {"q_enqueue", "q_enqueue_1"});
  Coordinator coord;
  RunnerThreads threads = qr.create_threads(s, &coord, /*start=*/true);
  ASSERT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.handles()[0].name(), "QueueRunnerThread-q-q_enqueue");
  EXPECT_EQ(threads.handles()[1].name(), "QueueRunnerThread-q-q_enqueue_1");
  EXPECT_EQ(threads.handles()[2].name(), "QueueRunnerThread-q-close_on_stop");
  coord.request_stop();
  coord.join();  // registered with coord: join waits for all three
  for (const auto& h : threads.handles()) EXPECT_TRUE(h.done());
  EXPECT_TRUE(q->is_closed());  // D7: the cancel op ran
}

TEST(QueueRunnerTest, D3_NoNewThreadsWhileThisSessionCountsSomeAsRunning) {
  Session s;
  Session other;
  for (Session* session : {&s, &other}) {
    session->add_op("noop", [] {});
    session->add_op("q_Close", [] {});
  }
  const QueueRunner qr("q", {"noop"});
  RunnerThreads first = qr.create_threads(s, nullptr, /*start=*/false);
  EXPECT_EQ(first.size(), 1u);
  EXPECT_EQ(qr.running_threads(s), 1);  // counted at creation, though not started
  EXPECT_TRUE(qr.create_threads(s).empty());
  EXPECT_EQ(qr.create_threads(other).size(), 1u);  // counts are per session
}

TEST(QueueRunnerTest, D3_AfterTheThreadsEndNewOnesAreCreated) {
  Session s;
  auto in = s.fifo_queue<int>(4, "in");
  auto out = s.fifo_queue<int>(4, "out");
  s.add_op("move", transfer(in, out));
  const QueueRunner qr("out", {"move"});
  in->close();
  RunnerThreads t1 = qr.create_threads(s, nullptr, true);
  ASSERT_TRUE(t1.wait_done());
  EXPECT_EQ(qr.running_threads(s), 0);
  EXPECT_EQ(qr.create_threads(s, nullptr, true).size(), 1u);
}

TEST(QueueRunnerTest, D3_MissingOpIsInvalidArgumentAndLeavesNoCount) {
  Session s;
  s.add_op("e", [] {});
  const QueueRunner qr("q", {"e", "missing"});
  EXPECT_ERROR(qr.create_threads(s), ErrorKind::kInvalidArgument, "'missing'");
  EXPECT_EQ(qr.running_threads(s), 0);
  const QueueRunner no_close("q", {"e"});  // q_Close is not registered: no queue q here
  EXPECT_ERROR(no_close.create_threads(s), ErrorKind::kInvalidArgument, "'q_Close'");
}

// ---- D4, D5 ----

TEST(QueueRunnerTest, D4_StopEndsEnqueueThreadsWithoutClosingTheQueue) {
  Session s;
  auto q = s.fifo_queue<int>(1000000, "q");
  std::latch ran(2);
  std::atomic<int> cancels{0};
  std::atomic<bool> counted{false};
  s.add_op("e", [&] {
    if (!counted.exchange(true)) ran.count_down();
    (void)q->try_enqueue(1);
  });
  s.add_op("cancel", [&cancels] { ++cancels; });  // records instead of closing
  const QueueRunner qr("q", {"e"}, "q_Close", "cancel");
  Coordinator coord;
  RunnerThreads threads = qr.create_threads(s, &coord, true);
  ran.arrive_and_wait();
  coord.request_stop();
  coord.join();
  EXPECT_FALSE(q->is_closed());
  EXPECT_EQ(cancels.load(), 1);  // D7's close_on_stop ran the (recording) cancel op once
  EXPECT_EQ(qr.running_threads(s), 0);
}

TEST(QueueRunnerTest, D5_LastThreadToSeeTheClosedInputClosesTheQueueOnce) {
  Session s;
  auto in = s.fifo_queue<int>(100, "in");
  auto out = s.fifo_queue<int>(100, "out");
  std::atomic<int> closes{0};
  s.add_op("move", transfer(in, out));
  s.add_op("move_1", transfer(in, out));
  s.add_op("move_2", transfer(in, out));
  s.add_op("close_out", [&] {
    ++closes;
    (void)out->close();
  });
  for (int i = 0; i < 50; ++i) ASSERT_EQ(in->enqueue(int{i}), Status::kOk);
  ASSERT_EQ(in->close(), Status::kOk);
  const QueueRunner qr("out", {"move", "move_1", "move_2"}, "close_out");
  Coordinator coord;
  RunnerThreads threads = qr.create_threads(s, &coord, true);
  // Every element arrives, then out is closed by the last runner: dequeue_many(all) works and
  // the next dequeue sees the close.
  std::vector<int> got;
  ASSERT_EQ(out->dequeue_many(50, got), Status::kOk);
  int v = 0;
  EXPECT_EQ(out->dequeue(v), Status::kClosed);
  EXPECT_EQ(closes.load(), 1);
  EXPECT_EQ(std::set<int>(got.begin(), got.end()).size(), 50u);
  EXPECT_FALSE(coord.should_stop());  // nothing recorded, no stop
  EXPECT_EQ(coord.recorded_error(), nullptr);
  coord.request_stop();
  coord.join();
}

// ---- D6, F2 error callbacks ----

TEST(QueueRunnerTest, D6_WithACoordinatorTheErrorStopsItAndJoinRaisesIt) {
  Session s;
  auto q = s.fifo_queue<int>(4, "q");
  s.add_op("bad", [] { throw Error(ErrorKind::kInvalidArgument, "bad record"); });
  QueueRunner qr("q", {"bad"});
  std::atomic<int> callbacks{0};
  qr.add_error_callback([&callbacks](const std::exception_ptr& e) {
    if (kind_of(e) == ErrorKind::kInvalidArgument) ++callbacks;
  });
  Coordinator coord;
  RunnerThreads threads = qr.create_threads(s, &coord, true);
  EXPECT_ERROR(coord.join(), ErrorKind::kInvalidArgument, "bad record");
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_TRUE(qr.exceptions_raised().empty());  // reported to the coordinator, not kept
}

TEST(QueueRunnerTest, D6_WithoutACoordinatorTheErrorIsKeptAndRaisedInTheThread) {
  Session s;
  s.add_op("bad", [] { throw Error(ErrorKind::kInternal, "disk on fire"); });
  s.add_op("q_Close", [] {});
  const QueueRunner qr("q", {"bad"});
  RunnerThreads threads = qr.create_threads(s, nullptr, true);
  ASSERT_EQ(threads.size(), 1u);  // no close_on_stop without a coordinator
  ASSERT_TRUE(threads.wait_done());
  const auto raised = qr.exceptions_raised();
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(message_of(raised[0]), "disk on fire");
  EXPECT_EQ(message_of(threads.handles()[0].exception()), "disk on fire");
  // create_threads starts a fresh list (TF clears exceptions_raised).
  RunnerThreads again = qr.create_threads(s, nullptr, false);
  EXPECT_TRUE(qr.exceptions_raised().empty());
}

TEST(QueueRunnerTest, D6_NonConveyorExceptionsAreUnknownErrors) {
  Session s;
  s.add_op("bad", [] { throw std::runtime_error("plain"); });
  s.add_op("q_Close", [] {});
  const QueueRunner qr("q", {"bad"});
  RunnerThreads threads = qr.create_threads(s, nullptr, true);
  ASSERT_TRUE(threads.wait_done());
  ASSERT_EQ(qr.exceptions_raised().size(), 1u);
  EXPECT_EQ(kind_of(qr.exceptions_raised()[0]), ErrorKind::kUnknown);
}

// ---- D7 ----

TEST(QueueRunnerTest, D7_StopCancelsBlockedEnqueuesAndJoinEndsWithoutError) {
  Session s;
  auto q = s.fifo_queue<int>(2, "q");
  std::atomic<int> blocked_after{0};
  s.add_op("e", enqueue_into(q, [&blocked_after] { return ++blocked_after; }));
  s.add_op("e_1", enqueue_into(q, [&blocked_after] { return ++blocked_after; }));
  const QueueRunner qr("q", {"e", "e_1"});
  Coordinator coord;
  RunnerThreads threads = qr.create_threads(s, &coord, true);
  // Fill: the queue holds 2 and both runners then block (or are about to).
  while (q->size_approx() < 2) std::this_thread::yield();
  coord.request_stop();
  coord.join({}, std::chrono::seconds(60));  // Cancelled is not recorded: stop came first
  EXPECT_EQ(coord.recorded_error(), nullptr);
  EXPECT_TRUE(q->is_closed());
  std::vector<int> left;
  EXPECT_EQ(q->dequeue_up_to(10, left), Status::kOk);
  EXPECT_EQ(left.size(), 2u);  // cancel keeps what was enqueued
}

// ---- D9 ----

TEST(QueueRunnerTest, D9_StartQueueRunnersStartsEveryCollectedRunner) {
  Session s;
  auto a = s.fifo_queue<int>(1, "a");
  auto b = s.fifo_queue<int>(1, "b");
  s.add_op("a_e", enqueue_into(a, [] { return 1; }));
  s.add_op("b_e", enqueue_into(b, [] { return 2; }));
  s.add_op("b_e_1", enqueue_into(b, [] { return 3; }));
  s.add_queue_runner(QueueRunner("a", {"a_e"}));
  s.add_queue_runner(QueueRunner("b", {"b_e", "b_e_1"}));
  EXPECT_EQ(s.queue_runners().size(), 2u);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  EXPECT_EQ(threads.size(), 5u);  // 1 + 2 enqueue threads, 2 close_on_stop threads
  int v = 0;
  EXPECT_EQ(a->dequeue(v), Status::kOk);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(b->dequeue(v), Status::kOk);
  coord.request_stop();
  coord.join();
  EXPECT_TRUE(threads.wait_done());
}

// ---- F2: start with a wait ----

TEST(QueueRunnerTest, F2_StartWaitsForEveryOpsFirstRun) {
  Session s;
  auto q = s.fifo_queue<int>(100, "q");
  s.add_op("e", enqueue_into(q, [] { return 1; }));
  const QueueRunner qr("q", {"e"});
  Coordinator coord;
  RunnerThreads threads = qr.start(s, &coord, std::chrono::hours(1));
  EXPECT_GE(q->size_approx(), 1u);  // the first run finished before start() returned
  coord.request_stop();
  coord.join();
}

TEST(QueueRunnerTest, F2_QueuesNotFedBeforeTheTimeoutIsDeadlineExceeded) {
  Session s;
  auto q = s.fifo_queue<int>(1, "q");
  ASSERT_EQ(q->enqueue(0), Status::kOk);  // full: the first run blocks until cancelled
  s.add_op("e", enqueue_into(q, [] { return 1; }));
  const QueueRunner qr("q", {"e"});
  Coordinator coord;
  EXPECT_ERROR(qr.start(s, &coord, 1ms), ErrorKind::kDeadlineExceeded,
               "Queues not fed before the timeout");
  coord.request_stop();  // the cancel op releases the blocked run
  coord.join();
}

TEST(QueueRunnerTest, F2_AFailedFirstRunIsRaisedByStart) {
  Session s;
  s.add_op("bad", [] { throw Error(ErrorKind::kInvalidArgument, "first run failed"); });
  s.add_op("q_Close", [] {});
  const QueueRunner qr("q", {"bad"});
  EXPECT_ERROR(qr.start(s, nullptr, std::chrono::hours(1)), ErrorKind::kInvalidArgument,
               "first run failed");
}

// ---- thread names ----

TEST(QueueRunnerTest, KernelNamesFitAndKeepTheOpsDistinguishingTail) {
  EXPECT_EQ(runner_kernel_name("images", "images_enqueue_3"), "QR-images-eue_3");
  EXPECT_EQ(runner_kernel_name("q", "enqueue"), "QR-q-enqueue");
  EXPECT_EQ(runner_kernel_name("input_producer", "input_producer/enqueue_many"),
            "QR-input-e_many");
  for (const char* queue : {"", "q", "a_very_long_queue_name_indeed", "\xc3\xa9\xc3\xa9\xc3\xa9"}) {
    for (const char* op : {"e", "enqueue_op_number_12", "\xe2\x82\xac\xe2\x82\xac"}) {
      const std::string k = runner_kernel_name(queue, op);
      EXPECT_LE(k.size(), Thread::kMaxKernelNameBytes) << k;
      EXPECT_EQ(k.rfind("QR-", 0), 0u) << k;
    }
  }
}

TEST(QueueRunnerTest, RunnerThreadsCarryTheirKernelName) {
  Session s;
  auto q = s.fifo_queue<int>(4, "images");
  std::string seen;
  std::latch done(1);
  s.add_op("images_enqueue_3", [&] {
    char buf[16] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    seen = buf;
    done.count_down();
    throw Error(ErrorKind::kOutOfRange, "done");  // a closed kind: the thread ends quietly
  });
  const QueueRunner qr("images", {"images_enqueue_3"});
  RunnerThreads threads = qr.create_threads(s, nullptr, true);
  done.wait();
  ASSERT_TRUE(threads.wait_done());
  EXPECT_EQ(seen, "QR-images-eue_3");
}

// ---- Session::close ----

TEST(SessionTest, A25_CloseNeverRunsUnstartedThreadsAndCancelsBlockedOnes) {
  std::atomic<int> runs{0};
  Session s;
  auto q = s.fifo_queue<int>(1, "q");
  ASSERT_EQ(q->enqueue(7), Status::kOk);
  s.add_op("blocks", enqueue_into(q, [] { return 1; }));  // q is full: blocks
  s.add_op("counts", [&runs] { ++runs; });
  s.add_op("c_Close", [] {});
  const QueueRunner blocking("q", {"blocks"});
  const QueueRunner unstarted("c", {"counts"});
  RunnerThreads b = blocking.create_threads(s, nullptr, true);
  RunnerThreads u = unstarted.create_threads(s, nullptr, false);
  // Wait until the runner is blocked (registered as a waiting producer), not merely started:
  // a runner that sees the close before its first run ends quietly (D4).
  while (q->waiting_producers_approx() == 0) std::this_thread::yield();
  s.close();  // cancels the blocked enqueue, abandons "counts", joins both
  EXPECT_TRUE(b.wait_done(Deadline::now()));
  EXPECT_TRUE(u.wait_done(Deadline::now()));
  EXPECT_EQ(runs.load(), 0);
  // The blocked enqueue failed with TF's Cancelled (no coordinator: kept by the runner) ...
  const auto raised = blocking.exceptions_raised();
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(kind_of(raised[0]), ErrorKind::kCancelled);
  EXPECT_EQ(message_of(raised[0]), "Enqueue operation was cancelled");
  // ... and the queue is neither closed nor changed: it still works.
  EXPECT_FALSE(q->is_closed());
  int v = 0;
  ASSERT_EQ(q->dequeue(v), Status::kOk);
  EXPECT_EQ(v, 7);
  EXPECT_EQ(q->enqueue(8), Status::kOk);
  EXPECT_ERROR(blocking.create_threads(s), ErrorKind::kFailedPrecondition, "session is closed");
}

TEST(SessionTest, A25_ARunBlockedInDequeueManyIsCancelledAndPutsBack) {
  Session s;
  auto q = s.fifo_queue<int>(8, "q");
  ASSERT_EQ(q->enqueue(0), Status::kOk);
  ASSERT_EQ(q->enqueue(1), Status::kOk);
  s.add_op("take5", [q] {
    std::vector<int> out;
    const Status st = q->dequeue_many(5, out);
    if (st != Status::kOk) throw queue_error(st, QueueOp::kDequeue, q->name(), 5, q->size_approx());
  });
  std::exception_ptr error;
  std::thread caller([&] { error = thrown_by([&] { s.run("take5"); }); });
  // The partial dequeue_many holds both elements (size() does not count them, A12) ...
  while (q->size_approx() != 0) std::this_thread::yield();
  s.close();  // ... until the session's teardown cancels it
  caller.join();
  ASSERT_TRUE(error);
  EXPECT_EQ(kind_of(error), ErrorKind::kCancelled) << message_of(error);
  EXPECT_EQ(message_of(error), "Dequeue operation was cancelled");
  EXPECT_FALSE(q->is_closed());
  std::vector<int> back;
  ASSERT_EQ(q->dequeue_many(2, back), Status::kOk);
  EXPECT_EQ(back, (std::vector<int>{0, 1}));  // put back at the front, in order
  // After close(), a run that would block fails at once.
  EXPECT_ERROR(s.run("take5"), ErrorKind::kCancelled, "Dequeue operation was cancelled");
}

TEST(SessionTest, A25_OperationsOutsideTheSessionAreNotCancelled) {
  auto s = std::make_unique<Session>();
  auto q = s->fifo_queue<int>(1, "q");
  ASSERT_EQ(q->enqueue(1), Status::kOk);
  std::atomic<bool> started{false};
  Status st = Status::kOk;
  std::thread outsider([&] {  // a plain thread, not on the session's behalf
    started = true;
    st = q->enqueue(2);
  });
  while (!started) std::this_thread::yield();
  s->close();  // wakes the outsider, which re-checks and goes back to sleep
  int v = 0;
  ASSERT_EQ(q->dequeue(v), Status::kOk);  // room: the outsider's enqueue completes
  outsider.join();
  EXPECT_EQ(st, Status::kOk);
  ASSERT_EQ(q->dequeue(v), Status::kOk);
  EXPECT_EQ(v, 2);
}

template <class Policy>
void owner_cancels_blocked_enqueue() {
  FifoQueue<int, Policy> q(1, "q");
  ASSERT_EQ(q.enqueue(1), Status::kOk);
  std::atomic<bool> owner_gone{false};
  std::atomic<bool> started{false};
  Status st = Status::kOk;
  std::thread producer([&] {
    internal::OwnerScope scope(&owner_gone);
    started = true;
    st = q.enqueue(2);
  });
  while (!started) std::this_thread::yield();
  owner_gone.store(true, std::memory_order_seq_cst);
  q.interrupt_waiters();
  producer.join();
  EXPECT_EQ(st, Status::kCancelled);
  EXPECT_EQ(q.size_approx(), 1u);
  EXPECT_FALSE(q.is_closed());
}

TEST(SessionTest, A25_OwnerScopeCancelsBlockedEnqueuesOfBothPolicies) {
  owner_cancels_blocked_enqueue<Mpmc>();
  owner_cancels_blocked_enqueue<Spsc>();
}

// ---- placement: runner threads and queue memory where the plan says ----

TEST(SessionPlacementTest, RunnerThreadsRunOnTheirPlannedPusOnThisMachine) {
  auto topo = std::make_shared<topology::Topology>(topology::Topology::this_machine());
  topology::PlanRequest request;
  request.producers = topo->num_pus();
  request.policy = topology::Policy::kCompact;
  Session s(SessionOptions{topo, topology::make_plan(*topo, request)});
  const topology::Plan& plan = *s.plan();
  ASSERT_TRUE(plan.binds());
  auto q = s.fifo_queue<int>(16, "q");
  std::vector<std::string> ops;
  std::vector<std::optional<unsigned>> seen(request.producers);
  for (unsigned i = 0; i < request.producers; ++i) {
    ops.push_back("q_enqueue_" + std::to_string(i));
    // Bound before the first run: the strict affinity mask means it can only be running there.
    s.add_op(ops.back(), [&seen, topo, i] {
      seen[i] = topo->current_pu();
      throw Error(ErrorKind::kOutOfRange, "one run is enough");
    });
  }
  const QueueRunner qr("q", ops, "", "", std::nullopt);
  RunnerThreads threads = qr.create_threads(s, nullptr, true);
  ASSERT_TRUE(threads.wait_done());
  for (unsigned i = 0; i < request.producers; ++i) {
    ASSERT_TRUE(seen[i].has_value()) << "thread " << i;
    EXPECT_EQ(seen[i], plan.producer(0, i).pu) << "thread " << i;
  }
  EXPECT_TRUE(s.placement_notes().empty());
  // The ring lives on the queue's planned node, from a NumaResource bound there.
  const auto* memory = dynamic_cast<const alloc::NumaResource*>(q->memory());
  ASSERT_NE(memory, nullptr);
  EXPECT_EQ(memory->node(), plan.queues()[0].numa_node);
  EXPECT_TRUE(memory->membind_applied());
}

TEST(SessionPlacementTest, OnASyntheticMachineThePlanIsShownNotApplied) {
  auto topo = std::make_shared<topology::Topology>(
      topology::Topology::synthetic("pack:2 numa:2 core:2 pu:2"));
  topology::PlanRequest request;
  request.producers = 2;
  request.queues = 2;
  request.policy = topology::Policy::kNumaLocal;
  Session s(SessionOptions{topo, topology::make_plan(*topo, request)});
  const topology::Plan& plan = *s.plan();
  EXPECT_FALSE(plan.binds());
  auto a = s.fifo_queue<int>(4, "a");
  auto b = s.fifo_queue<int>(4, "b");
  // Queues take the plan's slots in order of creation; runner threads their producers' PUs.
  EXPECT_EQ(s.runner_pu("a", 0), plan.producer(0, 0).pu);
  EXPECT_EQ(s.runner_pu("a", 1), plan.producer(0, 1).pu);
  EXPECT_EQ(s.runner_pu("a", 2), plan.producer(0, 0).pu);  // more ops than producers: wrap
  EXPECT_EQ(s.runner_pu("b", 0), plan.producer(1, 0).pu);
  EXPECT_NE(plan.producer(0, 0).numa_node, plan.producer(1, 0).numa_node);
  std::atomic<int> runs{0};
  s.add_op("a_e", [&runs] {
    ++runs;
    throw Error(ErrorKind::kOutOfRange, "done");
  });
  const QueueRunner qr("a", {"a_e"});
  RunnerThreads threads = qr.create_threads(s, nullptr, true);
  ASSERT_TRUE(threads.wait_done());
  EXPECT_EQ(runs.load(), 1);  // the thread ran, unbound
  const std::vector<std::string> notes = s.placement_notes();
  ASSERT_EQ(notes.size(), 3u);  // two queues' memory, one runner thread
  EXPECT_NE(notes[0].find("queue 'a': memory on NUMA node"), std::string::npos) << notes[0];
  EXPECT_NE(notes[2].find("QueueRunnerThread-a-a_e"), std::string::npos) << notes[2];
  EXPECT_NE(notes[2].find("not applied"), std::string::npos) << notes[2];
  EXPECT_EQ(dynamic_cast<const alloc::NumaResource*>(a->memory()), nullptr);
}

TEST(SessionPlacementTest, APlanWithoutItsTopologyIsInvalidArgument) {
  auto topo = topology::Topology::synthetic("core:2 pu:1");
  SessionOptions options;
  options.plan = topology::make_plan(topo, topology::PlanRequest{});
  EXPECT_ERROR(Session{options}, ErrorKind::kInvalidArgument, "SessionOptions::plan");
}

// ---- stress: many runners, random errors, random stop ----

TEST(QueueRunnerStressTest, JoinEndsWithinGraceAndRaisesTheRecordedError) {
  const int rounds = static_cast<int>(4 * testing::kScale);
  std::mt19937 rng(20261123);
  for (int round = 0; round < rounds; ++round) {
    Session s;
    Coordinator coord;
    const int runners = 1 + static_cast<int>(rng() % 4);
    const int ops = 1 + static_cast<int>(rng() % 3);
    std::vector<std::shared_ptr<IntQueue>> queues;
    std::atomic<int> thrown{0};
    for (int r = 0; r < runners; ++r) {
      const std::string name = "q" + std::to_string(r);
      auto q = s.fifo_queue<int>(1 + static_cast<std::int64_t>(rng() % 8), name);
      queues.push_back(q);
      std::vector<std::string> names;
      for (int o = 0; o < ops; ++o) {
        const std::string op = name + "_enqueue_" + std::to_string(o);
        // Each op fails after a random number of runs, with an error naming itself.
        const int fail_after = static_cast<int>(rng() % 64);
        s.add_op(op, [q, op, fail_after, runs = 0, &thrown]() mutable {
          if (fail_after < 48 && ++runs > fail_after) {
            ++thrown;
            throw Error(ErrorKind::kInternal, op);
          }
          const Status st = q->enqueue(1);
          if (st != Status::kOk) throw queue_error(st, QueueOp::kEnqueue, q->name());
        });
        names.push_back(op);
      }
      s.add_queue_runner(QueueRunner(name, names));
    }
    RunnerThreads threads = s.start_queue_runners(&coord);
    // A consumer drains for a random number of elements, then requests the stop (unless an
    // op's error stopped everything first).
    const int drain = static_cast<int>(rng() % 200);
    for (int i = 0; i < drain && !coord.should_stop(); ++i) {
      int v = 0;
      for (auto& q : queues) (void)q->try_dequeue(v);
    }
    coord.request_stop();
    const std::exception_ptr raised = thrown_by([&] { coord.join({}, std::chrono::seconds(60)); });
    // Nobody left running (join would say so with FailedPrecondition), and what join raised is
    // the recorded first error: one an op threw (never a Cancelled from the cancel ops).
    ASSERT_TRUE(threads.wait_done(Deadline::now()));
    EXPECT_EQ(raised, coord.recorded_error());
    if (raised) {
      EXPECT_EQ(kind_of(raised), ErrorKind::kInternal) << message_of(raised);
      EXPECT_GT(thrown.load(), 0);
      EXPECT_EQ(message_of(raised).find("_enqueue_"), 2u) << message_of(raised);
    }
  }
}

}  // namespace
}  // namespace conveyor
