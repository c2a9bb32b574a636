// Tests of Coordinator, Thread and LooperThread (SPEC.md section C, and F1).
//
// No sleeps as synchronisation and no timing assertions: threads hand over with std::latch or
// with a second Coordinator used as a "release" switch (wait_for_stop() / request_stop()).
// A deadline only appears where a wait must give up (grace periods, wait_for_stop(now)).
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/coordinator.h"
#include "engine/deadline.h"
#include "engine/looper_thread.h"
#include "engine/status.h"
#include "engine/thread.h"
#include "tests/test_errors.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_THREAD__)
constexpr int kStressRounds = 20;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kStressRounds = 20;
#else
constexpr int kStressRounds = 200;
#endif
#else
constexpr int kStressRounds = 200;
#endif

constexpr int kStressThreads = 4;

std::exception_ptr make_error(ErrorKind kind, const std::string& message) {
  return std::make_exception_ptr(Error(kind, message));
}

using testutil::message_of;
using testutil::thrown_by;

// ---------------------------------------------------------------------------------------------
// C1: clean-stop kinds.

TEST(CoordinatorTest, C1_DefaultCleanStopIsOutOfRange) {
  Coordinator coord;
  EXPECT_TRUE(coord.is_clean_stop(make_error(ErrorKind::kOutOfRange, "done")));
  EXPECT_FALSE(coord.is_clean_stop(make_error(ErrorKind::kCancelled, "x")));
  EXPECT_FALSE(coord.is_clean_stop(std::make_exception_ptr(std::runtime_error("x"))));
  coord.request_stop(make_error(ErrorKind::kOutOfRange, "done"));
  EXPECT_TRUE(coord.should_stop());
  EXPECT_EQ(coord.recorded_error(), nullptr);
}

TEST(CoordinatorTest, C1_GivenKindsReplaceTheDefault) {
  Coordinator coord({ErrorKind::kCancelled});
  EXPECT_TRUE(coord.is_clean_stop(make_error(ErrorKind::kCancelled, "x")));
  EXPECT_FALSE(coord.is_clean_stop(make_error(ErrorKind::kOutOfRange, "x")));
  coord.request_stop(make_error(ErrorKind::kOutOfRange, "now an error"));
  EXPECT_EQ(message_of(coord.recorded_error()), "now an error");
}

TEST(CoordinatorTest, C1_VectorAndEmptyLists) {
  Coordinator from_vector(std::vector<ErrorKind>{ErrorKind::kInternal, ErrorKind::kCancelled});
  EXPECT_TRUE(from_vector.is_clean_stop(make_error(ErrorKind::kInternal, "x")));
  EXPECT_TRUE(from_vector.is_clean_stop(make_error(ErrorKind::kCancelled, "x")));
  EXPECT_FALSE(from_vector.is_clean_stop(make_error(ErrorKind::kOutOfRange, "x")));

  Coordinator none(std::vector<ErrorKind>{});
  EXPECT_FALSE(none.is_clean_stop(make_error(ErrorKind::kOutOfRange, "x")));
  none.request_stop(make_error(ErrorKind::kOutOfRange, "recorded"));
  EXPECT_EQ(message_of(none.recorded_error()), "recorded");

  // kUnknown as a clean kind covers exceptions that are not conveyor::Error.
  Coordinator unknown({ErrorKind::kUnknown});
  EXPECT_TRUE(unknown.is_clean_stop(std::make_exception_ptr(std::logic_error("x"))));
}

// ---------------------------------------------------------------------------------------------
// C2, C3: should_stop, wait_for_stop.

TEST(CoordinatorTest, C2_ShouldStopFalseThenTrue) {
  Coordinator coord;
  EXPECT_FALSE(coord.should_stop());
  coord.request_stop();
  EXPECT_TRUE(coord.should_stop());
}

TEST(CoordinatorTest, C3_WaitForStopTimesOutWithoutStop) {
  Coordinator coord;
  EXPECT_FALSE(coord.wait_for_stop(Deadline::now()));
  EXPECT_FALSE(coord.wait_for_stop(Deadline::after(1ms)));
  EXPECT_FALSE(coord.wait_for_stop(Deadline::at(Deadline::Clock::time_point{})));  // far past
}

TEST(CoordinatorTest, C3_WaitForStopTrueWhenAlreadyStopped) {
  Coordinator coord;
  coord.request_stop();
  EXPECT_TRUE(coord.wait_for_stop(Deadline::now()));
  EXPECT_TRUE(coord.wait_for_stop());
}

TEST(CoordinatorTest, C3_WaitForStopWakesEveryWaiter) {
  Coordinator coord;
  std::latch waiting(kStressThreads);
  std::atomic<int> woke{0};
  std::vector<Thread> waiters;
  for (int i = 0; i < kStressThreads; ++i) {
    waiters.emplace_back("waiter" + std::to_string(i), [&] {
      waiting.count_down();
      if (coord.wait_for_stop()) woke.fetch_add(1, std::memory_order_relaxed);
    });
  }
  waiting.wait();
  coord.request_stop();
  for (Thread& t : waiters) t.join();
  EXPECT_EQ(woke.load(std::memory_order_relaxed), kStressThreads);
}

// ---------------------------------------------------------------------------------------------
// C4, C5: what request_stop records.

TEST(CoordinatorTest, C4_FirstStopWinsBetweenTwoErrors) {
  Coordinator coord;
  coord.request_stop(make_error(ErrorKind::kInternal, "first"));
  coord.request_stop(make_error(ErrorKind::kCancelled, "second"));
  const std::exception_ptr e = thrown_by([&] { coord.join(); });
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(kind_of(e), ErrorKind::kInternal);
  EXPECT_EQ(message_of(e), "first");
}

TEST(CoordinatorTest, C4_PlainStopFirstMeansNothingRecorded) {
  Coordinator coord;
  coord.request_stop();
  coord.request_stop(make_error(ErrorKind::kInternal, "too late"));
  EXPECT_EQ(coord.recorded_error(), nullptr);
  EXPECT_NO_THROW(coord.join());
}

TEST(CoordinatorTest, C4_CleanStopFirstMeansNothingRecorded) {
  Coordinator coord;
  coord.request_stop(make_error(ErrorKind::kOutOfRange, "clean"));
  coord.request_stop(make_error(ErrorKind::kInternal, "too late"));
  EXPECT_EQ(coord.recorded_error(), nullptr);
  EXPECT_NO_THROW(coord.join());
}

TEST(CoordinatorTest, C4_FirstStopWinsUnderRace) {
  for (int round = 0; round < kStressRounds; ++round) {
    Coordinator coord;
    std::latch go(kStressThreads);
    std::vector<Thread> requesters;
    for (int i = 0; i < kStressThreads; ++i) {
      requesters.emplace_back("req" + std::to_string(i), [&coord, &go, i] {
        go.arrive_and_wait();
        // Readers of the slot race with the requests too.
        (void)coord.recorded_error();
        coord.request_stop(make_error(ErrorKind::kInternal, std::to_string(i)));
        (void)coord.should_stop();
      });
    }
    for (Thread& t : requesters) t.join();
    const std::exception_ptr recorded = coord.recorded_error();
    ASSERT_NE(recorded, nullptr);
    const std::string winner = message_of(recorded);
    EXPECT_EQ(winner.size(), 1u);
    // Every later look sees the same, single winner.
    EXPECT_EQ(message_of(coord.recorded_error()), winner);
    EXPECT_EQ(message_of(thrown_by([&] { coord.join(); })), winner);
  }
}

TEST(CoordinatorTest, C5_CleanStopErrorIsAPlainStop) {
  Coordinator coord;
  Thread worker("worker", [&] { coord.wait_for_stop(); });
  coord.request_stop(make_error(ErrorKind::kOutOfRange, "end of input"));
  EXPECT_TRUE(coord.should_stop());
  EXPECT_NO_THROW(coord.join({&worker}));
  EXPECT_NO_THROW(coord.raise_requested_exception());
}

// ---------------------------------------------------------------------------------------------
// C7, C8: join.

TEST(CoordinatorTest, C7_JoinRaisesTheRecordedError) {
  Coordinator coord;
  Thread failing("failing", [&] {
    coord.stop_on_exception([] { throw Error(ErrorKind::kInvalidArgument, "bad feed"); });
  });
  Thread waiting("waiting", [&] { coord.wait_for_stop(); });
  const std::exception_ptr e = thrown_by([&] { coord.join({&failing, &waiting}); });
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(kind_of(e), ErrorKind::kInvalidArgument);
  EXPECT_EQ(message_of(e), "bad feed");
  EXPECT_TRUE(coord.joined());
}

TEST(CoordinatorTest, C7_JoinKeepsTheExceptionType) {
  Coordinator coord;
  coord.request_stop(std::make_exception_ptr(std::out_of_range("plain std error")));
  EXPECT_THROW(coord.join(), std::out_of_range);
}

TEST(CoordinatorTest, C7_GracePeriodThenFailedPreconditionNamingStragglers) {
  Coordinator coord;
  Coordinator release;  // used as a switch: the straggler runs until release.request_stop()
  std::latch started(1);
  Thread straggler("straggler", [&] {
    started.count_down();
    release.wait_for_stop();
  });
  Thread quick("quick", [] {});
  started.wait();
  ASSERT_TRUE(quick.wait_done());  // finished threads are not stragglers
  coord.request_stop();
  const std::exception_ptr e = thrown_by([&] { coord.join({&straggler, &quick}, 1ms); });
  // Release only after join has returned, so that the straggler is still alive during the grace.
  release.request_stop();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(kind_of(e), ErrorKind::kFailedPrecondition);
  EXPECT_EQ(message_of(e), "Coordinator stopped with threads still running: straggler");
  EXPECT_TRUE(coord.joined());
  straggler.join();
  quick.join();
}

TEST(CoordinatorTest, C7_GracePeriodLetsStoppingThreadsFinish) {
  // The workers only start to finish once the stop is seen, so join's first wait ends with them
  // alive; a (practically endless) grace period then waits for them: no straggler, no error.
  Coordinator coord;
  std::vector<Thread> workers;
  for (int i = 0; i < kStressThreads; ++i) {
    workers.emplace_back("stopping" + std::to_string(i), [&] {
      coord.wait_for_stop();
      std::vector<int> cleanup(1000, 1);  // some work after the stop
      (void)cleanup;
    });
  }
  coord.request_stop();
  std::vector<const Thread*> ptrs;
  for (const Thread& t : workers) ptrs.push_back(&t);
  EXPECT_NO_THROW(coord.join(ptrs, std::chrono::hours(1)));
  for (const Thread& t : workers) EXPECT_TRUE(t.done());
}

TEST(CoordinatorTest, C7_ZeroAndNegativeGracePeriodsDoNotWait) {
  Coordinator coord;
  Coordinator release;
  Thread straggler("straggler", [&] { release.wait_for_stop(); });
  coord.request_stop();
  EXPECT_THROW(coord.join({&straggler}, 0ns), Error);
  coord.clear_stop();
  coord.request_stop();
  EXPECT_THROW(coord.join({&straggler}, -1s), Error);
  release.request_stop();
}

TEST(CoordinatorTest, C7_IgnoreLiveThreads) {
  Coordinator coord;
  Coordinator release;
  Thread straggler("straggler", [&] { release.wait_for_stop(); });
  coord.request_stop();
  EXPECT_NO_THROW(coord.join({&straggler}, 0ns, LiveThreads::kIgnore));
  EXPECT_TRUE(coord.joined());
  EXPECT_FALSE(straggler.done());  // nobody released it yet
  release.request_stop();
  straggler.join();
  EXPECT_TRUE(straggler.done());
}

TEST(CoordinatorTest, C7_RecordedErrorBeatsStragglers) {
  Coordinator coord;
  Coordinator release;
  Thread straggler("straggler", [&] { release.wait_for_stop(); });
  coord.request_stop(make_error(ErrorKind::kCancelled, "the cause"));
  const std::exception_ptr e = thrown_by([&] { coord.join({&straggler}, 0ns); });
  release.request_stop();
  EXPECT_EQ(kind_of(e), ErrorKind::kCancelled);
  EXPECT_EQ(message_of(e), "the cause");
}

TEST(CoordinatorTest, C7_StragglerNamesInOrderWithoutDuplicates) {
  Coordinator coord;
  Coordinator release;
  Thread a("a", [&] { release.wait_for_stop(); });
  Thread b("b", [&] { release.wait_for_stop(); });
  Thread c("c", [&] { release.wait_for_stop(); });
  coord.register_thread(b);
  coord.register_thread(c);
  coord.register_thread(b);  // registered twice, and also given: named once
  coord.request_stop();
  const std::exception_ptr e = thrown_by([&] { coord.join({&a, &b}, 0ns); });
  release.request_stop();
  EXPECT_EQ(message_of(e), "Coordinator stopped with threads still running: a b c");
}

TEST(CoordinatorTest, C7_StopWhileJoiningEndsTheFirstWait) {
  Coordinator coord;
  std::latch joining(1);
  // The worker only ends on a stop; another thread requests it while join() sleeps.
  Thread worker("worker", [&] { coord.wait_for_stop(); });
  Thread stopper("stopper", [&] {
    joining.wait();
    coord.request_stop(make_error(ErrorKind::kInternal, "from stopper"));
  });
  joining.count_down();
  EXPECT_EQ(message_of(thrown_by([&] { coord.join({&worker}); })), "from stopper");
  stopper.join();
}

TEST(CoordinatorTest, C7_BadArguments) {
  Coordinator coord;
  Thread empty;
  EXPECT_EQ(kind_of(thrown_by([&] { coord.join({nullptr}); })), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of(thrown_by([&] { coord.join({&empty}); })), ErrorKind::kInvalidArgument);
  EXPECT_FALSE(coord.joined());
}

TEST(CoordinatorTest, C8_JoinWithoutStopWaitsForThreadsAndDoesNotStop) {
  Coordinator coord;
  std::atomic<int> finished{0};
  std::vector<Thread> workers;
  for (int i = 0; i < kStressThreads; ++i) {
    workers.emplace_back("w" + std::to_string(i), [&] {
      finished.fetch_add(1, std::memory_order_relaxed);
    });
  }
  std::vector<const Thread*> ptrs;
  for (const Thread& t : workers) ptrs.push_back(&t);
  EXPECT_NO_THROW(coord.join(ptrs));
  EXPECT_FALSE(coord.should_stop());
  EXPECT_TRUE(coord.joined());
  for (const Thread& t : workers) EXPECT_TRUE(t.done());
  EXPECT_EQ(finished.load(std::memory_order_relaxed), kStressThreads);
}

TEST(CoordinatorTest, C8_JoinWithNoThreadsReturns) {
  Coordinator coord;
  EXPECT_NO_THROW(coord.join());
  EXPECT_FALSE(coord.should_stop());
}

// ---------------------------------------------------------------------------------------------
// C9, C10, C13.

TEST(CoordinatorTest, C9_AfterJoinAnErrorIsRaisedAtOnce) {
  Coordinator coord;
  coord.join();
  const std::exception_ptr sent = make_error(ErrorKind::kInternal, "late");
  const std::exception_ptr got = thrown_by([&] { coord.request_stop(sent); });
  EXPECT_EQ(got, sent);  // the very same exception object
  // It was raised, not recorded, and did not stop the coordinator (as in TF).
  EXPECT_FALSE(coord.should_stop());
  EXPECT_EQ(coord.recorded_error(), nullptr);
}

TEST(CoordinatorTest, C9_AfterJoinCleanAndPlainStopsDoNotRaise) {
  Coordinator coord;
  coord.join();
  EXPECT_NO_THROW(coord.request_stop(make_error(ErrorKind::kOutOfRange, "clean")));
  EXPECT_TRUE(coord.should_stop());
  EXPECT_NO_THROW(coord.request_stop());
}

TEST(CoordinatorTest, C9_StopOnExceptionAfterJoinLetsTheErrorOut) {
  Coordinator coord;
  coord.join();
  EXPECT_THROW(coord.stop_on_exception([] { throw Error(ErrorKind::kInternal, "x"); }), Error);
}

TEST(CoordinatorTest, C10_ClearStopResetsFlagErrorAndJoined) {
  Coordinator coord;
  coord.request_stop(make_error(ErrorKind::kInternal, "first run"));
  EXPECT_THROW(coord.join(), Error);
  EXPECT_TRUE(coord.joined());
  coord.clear_stop();
  EXPECT_FALSE(coord.should_stop());
  EXPECT_FALSE(coord.joined());
  EXPECT_EQ(coord.recorded_error(), nullptr);
  EXPECT_FALSE(coord.wait_for_stop(Deadline::now()));
  // A new run records again, and C9 no longer applies.
  coord.request_stop(make_error(ErrorKind::kCancelled, "second run"));
  EXPECT_EQ(message_of(coord.recorded_error()), "second run");
  coord.clear_stop();
  coord.clear_stop();  // on a running coordinator: harmless
  EXPECT_FALSE(coord.should_stop());
}

TEST(CoordinatorTest, C10_StopClearCyclesUnderRace) {
  // Requesters, readers and a clearer race; TSan checks the slot discipline, and the final
  // state must be consistent: stopped with some error, or running with none.
  Coordinator coord;
  std::latch go(kStressThreads + 1);
  std::vector<Thread> threads;
  for (int i = 0; i < kStressThreads; ++i) {
    threads.emplace_back("racer" + std::to_string(i), [&coord, &go, i] {
      go.arrive_and_wait();
      for (int r = 0; r < kStressRounds; ++r) {
        coord.request_stop(make_error(ErrorKind::kInternal, std::to_string(i)));
        (void)coord.recorded_error();
        (void)coord.wait_for_stop(Deadline::now());
      }
    });
  }
  go.arrive_and_wait();
  for (int r = 0; r < kStressRounds; ++r) coord.clear_stop();
  for (Thread& t : threads) t.join();
  if (coord.should_stop()) {
    EXPECT_NE(coord.recorded_error(), nullptr);
  } else {
    EXPECT_EQ(coord.recorded_error(), nullptr);
  }
}

TEST(CoordinatorTest, C13_RaiseRequestedExceptionAndJoined) {
  Coordinator coord;
  EXPECT_NO_THROW(coord.raise_requested_exception());
  EXPECT_FALSE(coord.joined());
  coord.request_stop(make_error(ErrorKind::kDeadlineExceeded, "slow"));
  const std::exception_ptr e = thrown_by([&] { coord.raise_requested_exception(); });
  EXPECT_EQ(kind_of(e), ErrorKind::kDeadlineExceeded);
  EXPECT_FALSE(coord.joined());
  EXPECT_THROW(coord.join(), Error);
  EXPECT_TRUE(coord.joined());
}

// ---------------------------------------------------------------------------------------------
// C11: stop_on_exception.

TEST(CoordinatorTest, C11_StopOnExceptionRecordsAndSwallows) {
  Coordinator coord;
  bool ok = true;
  EXPECT_NO_THROW(ok = coord.stop_on_exception([] { throw Error(ErrorKind::kCancelled, "c"); }));
  EXPECT_FALSE(ok);
  EXPECT_TRUE(coord.should_stop());
  EXPECT_EQ(kind_of(coord.recorded_error()), ErrorKind::kCancelled);
}

TEST(CoordinatorTest, C11_StopOnExceptionAnyExceptionType) {
  Coordinator coord;
  EXPECT_NO_THROW(coord.stop_on_exception([] { throw 42; }));
  EXPECT_TRUE(coord.should_stop());
  EXPECT_EQ(kind_of(coord.recorded_error()), ErrorKind::kUnknown);
  EXPECT_THROW(coord.join(), int);
}

TEST(CoordinatorTest, C11_StopOnExceptionNormalAndCleanBodies) {
  Coordinator coord;
  int ran = 0;
  EXPECT_TRUE(coord.stop_on_exception([&] { ran += 1; }));
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(coord.should_stop());
  EXPECT_FALSE(coord.stop_on_exception([] { throw Error(ErrorKind::kOutOfRange, "eof"); }));
  EXPECT_TRUE(coord.should_stop());
  EXPECT_EQ(coord.recorded_error(), nullptr);
}

// ---------------------------------------------------------------------------------------------
// C12: register_thread.

TEST(CoordinatorTest, C12_JoinAlsoJoinsRegisteredThreads) {
  Coordinator coord;
  std::atomic<bool> ran{false};
  Thread worker("registered", [&] {
    coord.wait_for_stop();
    ran.store(true, std::memory_order_relaxed);
  });
  coord.register_thread(worker);
  coord.request_stop();
  EXPECT_NO_THROW(coord.join());
  EXPECT_TRUE(worker.done());
  EXPECT_TRUE(ran.load(std::memory_order_relaxed));
}

TEST(CoordinatorTest, C12_RegisteredStragglerIsNamedAndThenForgotten) {
  Coordinator coord;
  Coordinator release;
  Thread straggler("reg-straggler", [&] { release.wait_for_stop(); });
  coord.register_thread(straggler);
  coord.request_stop();
  EXPECT_EQ(message_of(thrown_by([&] { coord.join({}, 0ns); })),
            "Coordinator stopped with threads still running: reg-straggler");
  // join took it off the registry: the next join does not wait for it.
  coord.clear_stop();
  coord.request_stop();
  EXPECT_NO_THROW(coord.join({}, 0ns));
  release.request_stop();
}

TEST(CoordinatorTest, C12_HandleOutlivesAMovedOrDestroyedThread) {
  Coordinator coord;
  {
    Thread t("short-lived", [] {});
    coord.register_thread(t);
    Thread moved = std::move(t);
  }  // joined and destroyed; the coordinator keeps the handle
  EXPECT_NO_THROW(coord.join());
}

TEST(CoordinatorTest, C12_RegisterEmptyThreadIsInvalid) {
  Coordinator coord;
  Thread empty;
  EXPECT_EQ(kind_of(thrown_by([&] { coord.register_thread(empty); })),
            ErrorKind::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// F1: the TF Python behaviour (the C++ flavour would return FailedPrecondition).

TEST(CoordinatorTest, F1_SecondRequestStopIsANoOp) {
  Coordinator coord;
  coord.request_stop();
  EXPECT_NO_THROW(coord.request_stop());
  EXPECT_NO_THROW(coord.request_stop(make_error(ErrorKind::kInternal, "ignored")));
  EXPECT_TRUE(coord.should_stop());
  EXPECT_EQ(coord.recorded_error(), nullptr);
}

TEST(CoordinatorTest, F1_RegisterAfterStopIsAllowed) {
  Coordinator coord;
  coord.request_stop();
  Thread late("late", [] {});
  EXPECT_NO_THROW(coord.register_thread(late));
  EXPECT_NO_THROW(coord.join());
}

// (F1 "join without stop just waits for the threads" is C8_JoinWithoutStop... above.)

// ---------------------------------------------------------------------------------------------
// Thread.

std::string current_kernel_name() {
  char buf[64] = {};
  EXPECT_EQ(pthread_getname_np(pthread_self(), buf, sizeof buf), 0);
  return buf;
}

TEST(ThreadTest, NameIsTheKernelThreadName) {
  std::string inside;
  Thread t("conv-worker", [&] { inside = current_kernel_name(); });
  t.join();
  EXPECT_EQ(inside, "conv-worker");
  EXPECT_EQ(t.name(), "conv-worker");
}

TEST(ThreadTest, NameVisibleFromOutside) {
  std::latch started(1);
  Coordinator release;
  Thread t("outside-view", [&] {
    started.count_down();
    release.wait_for_stop();
  });
  started.wait();  // the name is set before the body runs
  char buf[64] = {};
  EXPECT_EQ(pthread_getname_np(t.native_handle(), buf, sizeof buf), 0);
  EXPECT_STREQ(buf, "outside-view");
  release.request_stop();
  t.join();
}

TEST(ThreadTest, LongNamesAreCutTo15Bytes) {
  std::string inside;
  Thread t("a-very-long-thread-name", [&] { inside = current_kernel_name(); });
  t.join();
  EXPECT_EQ(inside, "a-very-long-thr");
  EXPECT_EQ(t.name(), "a-very-long-thread-name");  // the full name is kept
  // No UTF-8 character is cut in half: "é" is two bytes at positions 14-15.
  EXPECT_EQ(Thread::kernel_name("abcdefghijklmn\xc3\xa9xyz"), "abcdefghijklmn");
  EXPECT_EQ(Thread::kernel_name("short"), "short");
}

TEST(ThreadTest, ExceptionsAreCapturedNotTerminate) {
  Thread std_error("throws", [] { throw std::runtime_error("boom"); });
  Thread odd("throws-int", [] { throw 7; });
  Thread fine("fine", [] {});
  std_error.join();
  odd.join();
  fine.join();
  ASSERT_NE(std_error.exception(), nullptr);
  EXPECT_THROW(std::rethrow_exception(std_error.exception()), std::runtime_error);
  ASSERT_NE(odd.exception(), nullptr);
  EXPECT_THROW(std::rethrow_exception(odd.exception()), int);
  EXPECT_EQ(fine.exception(), nullptr);
}

TEST(ThreadTest, WaitDoneWithDeadline) {
  Coordinator release;
  Thread t("held", [&] { release.wait_for_stop(); });
  EXPECT_FALSE(t.wait_done(Deadline::now()));
  EXPECT_FALSE(t.wait_done(Deadline::after(1ms)));
  EXPECT_FALSE(t.done());
  Thread::Handle h = t.handle();
  release.request_stop();
  EXPECT_TRUE(h.wait_done());
  EXPECT_TRUE(t.done());
  EXPECT_TRUE(t.joinable());  // done is not reaped: join() still to do
  t.join();
  EXPECT_FALSE(t.joinable());
  t.join();  // idempotent
}

TEST(ThreadTest, DoneMeansTheBodyAndItsCapturesAreGone) {
  auto resource = std::make_shared<int>(1);
  std::weak_ptr<int> watch = resource;
  Thread t("captures", [r = std::move(resource)] { (void)*r; });
  ASSERT_TRUE(t.wait_done());
  EXPECT_TRUE(watch.expired());
  t.join();
}

TEST(ThreadTest, MoveAndEmpty) {
  Thread empty;
  EXPECT_FALSE(empty.joinable());
  EXPECT_TRUE(empty.done());
  EXPECT_TRUE(empty.wait_done(Deadline::now()));
  EXPECT_EQ(empty.name(), "");
  EXPECT_EQ(empty.exception(), nullptr);
  EXPECT_FALSE(empty.handle().valid());

  std::atomic<int> ran{0};
  Thread a("first", [&] { ran.fetch_add(1, std::memory_order_relaxed); });
  Thread b = std::move(a);
  EXPECT_EQ(b.name(), "first");
  EXPECT_FALSE(a.joinable());  // NOLINT(bugprone-use-after-move): moved-from is empty
  b = Thread("second", [&] { ran.fetch_add(1, std::memory_order_relaxed); });  // joins "first"
  EXPECT_EQ(b.name(), "second");
  b.join();
  EXPECT_EQ(ran.load(std::memory_order_relaxed), 2);
}

TEST(ThreadTest, DestructorJoins) {
  std::atomic<bool> ran{false};
  { Thread t("scoped", [&] { ran.store(true, std::memory_order_relaxed); }); }
  EXPECT_TRUE(ran.load(std::memory_order_relaxed));
}

// ---------------------------------------------------------------------------------------------
// C14: LooperThread.

TEST(LooperThreadTest, C14_BackToBackUntilStop) {
  Coordinator coord;
  std::atomic<int> runs{0};
  auto looper = LooperThread::loop(coord, LooperThread::kBackToBack, [&] {
    if (runs.fetch_add(1, std::memory_order_relaxed) + 1 == 100) coord.request_stop();
  });
  EXPECT_NO_THROW(coord.join());  // registered: join waits for it
  EXPECT_TRUE(looper->thread().done());
  EXPECT_EQ(runs.load(std::memory_order_relaxed), 100);
}

TEST(LooperThreadTest, C14_WithIntervalRunsOnTheTimer) {
  Coordinator coord;
  std::atomic<int> runs{0};
  auto looper = LooperThread::loop(
      coord, 1ms,
      [&] {
        if (runs.fetch_add(1, std::memory_order_relaxed) + 1 == 3) coord.request_stop();
      },
      "timer-looper");
  EXPECT_NO_THROW(coord.join());
  EXPECT_EQ(runs.load(std::memory_order_relaxed), 3);
  EXPECT_EQ(looper->name(), "timer-looper");
}

TEST(LooperThreadTest, C14_StopEndsTheTimerWait) {
  // A huge interval: the first run is at once, then the looper sleeps in wait_for_stop() until
  // the stop, which must wake it (not a sleep).
  Coordinator coord;
  std::latch first_run(1);
  std::atomic<int> runs{0};
  auto looper = LooperThread::loop(coord, std::chrono::hours(24), [&] {
    if (runs.fetch_add(1, std::memory_order_relaxed) == 0) first_run.count_down();
  });
  first_run.wait();
  coord.request_stop();
  EXPECT_NO_THROW(coord.join());
  EXPECT_EQ(runs.load(std::memory_order_relaxed), 1);
}

class HookLooper : public LooperThread {
 public:
  HookLooper(Coordinator& coord, std::optional<std::chrono::nanoseconds> interval, bool fail)
      : LooperThread(coord, interval, {}, "hooks"), fail_(fail) {}
  ~HookLooper() override { join(); }  // as the contract asks of subclasses

  std::string log;  // written by the looper thread only; read after join

 protected:
  void start_loop() override { log += "start "; }
  void run_loop() override {
    log += "run ";
    if (fail_) throw Error(ErrorKind::kInternal, "run_loop failed");
    coordinator().request_stop();
  }
  void stop_loop() override { log += "stop"; }

 private:
  const bool fail_;
};

TEST(LooperThreadTest, C14_HooksInOrder) {
  for (const auto interval : {LooperThread::kBackToBack,
                              std::optional<std::chrono::nanoseconds>(0ns)}) {
    Coordinator coord;
    HookLooper looper(coord, interval, /*fail=*/false);
    looper.start();
    EXPECT_NO_THROW(coord.join());
    looper.join();
    EXPECT_EQ(looper.log, "start run stop");
  }
}

TEST(LooperThreadTest, C14_WrappedInStopOnException) {
  Coordinator coord;
  HookLooper looper(coord, LooperThread::kBackToBack, /*fail=*/true);
  looper.start();
  const std::exception_ptr e = thrown_by([&] { coord.join(); });
  looper.join();
  EXPECT_EQ(message_of(e), "run_loop failed");
  EXPECT_EQ(looper.log, "start run ");  // stop_loop skipped, as in TF
  EXPECT_EQ(looper.thread().exception(), nullptr);  // swallowed by stop_on_exception
}

TEST(LooperThreadTest, C14_StoppedBeforeStartRunsNoTarget) {
  Coordinator coord;
  coord.request_stop();
  std::atomic<int> runs{0};
  auto back_to_back = LooperThread::loop(coord, LooperThread::kBackToBack,
                                         [&] { runs.fetch_add(1, std::memory_order_relaxed); });
  auto timed = LooperThread::loop(coord, 1ms,
                                  [&] { runs.fetch_add(1, std::memory_order_relaxed); });
  EXPECT_NO_THROW(coord.join());
  EXPECT_EQ(runs.load(std::memory_order_relaxed), 0);
}

TEST(LooperThreadTest, C14_BadArguments) {
  Coordinator coord;
  EXPECT_EQ(kind_of(thrown_by([&] { LooperThread l(coord, -1ms, [] {}); })),
            ErrorKind::kInvalidArgument);
  LooperThread once(coord, LooperThread::kBackToBack, [&] { coord.request_stop(); });
  once.start();
  EXPECT_EQ(kind_of(thrown_by([&] { once.start(); })), ErrorKind::kFailedPrecondition);
  coord.join();
}

TEST(LooperThreadTest, C14_UnstartedLooperDoesNotBlockJoin) {
  Coordinator coord;
  LooperThread idle(coord, LooperThread::kBackToBack, [] {});
  EXPECT_NO_THROW(coord.join());
}

}  // namespace
}  // namespace conveyor
