// The smallest Conveyor programs: (1) one producer thread feeds a bounded FifoQueue<int>, the main
// thread drains it until the producer closes the queue, and checks that the sum is right;
// (2) the same through a Session: two queue runner threads run an enqueue op until it reports
// OutOfRange, the last one closes the queue; the runner's QueueRunnerDef round-trips through
// TensorFlow's wire format. Built by tools/test.sh against the installed package and through
// add_subdirectory, so it checks what a consumer links (hwloc, TBB, protobuf).
#include <cstdint>
#include <cstdio>
#include <thread>

#include <atomic>

#include "engine/coordinator.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/session.h"
#include "engine/status.h"

namespace {

bool runner_pipeline() {
  constexpr int kCount = 10000;
  conveyor::Session session;
  auto queue = session.fifo_queue<int>(64, "runner_numbers");
  std::atomic<int> next{1};
  session.add_op("produce", [&] {
    const int value = next.fetch_add(1);
    if (value > kCount) throw conveyor::Error(conveyor::ErrorKind::kOutOfRange, "input done");
    const conveyor::Status s = queue->enqueue(int{value});
    if (s != conveyor::Status::kOk) {
      throw conveyor::queue_error(s, conveyor::QueueOp::kEnqueue, queue->name());
    }
  });
  const conveyor::QueueRunner runner("runner_numbers", {"produce", "produce"});
  const conveyor::QueueRunner back = conveyor::QueueRunner::from_def(
      conveyor::QueueRunnerDef::from_wire(runner.to_def().to_wire()));
  conveyor::Coordinator coord;
  conveyor::RunnerThreads threads = back.create_threads(session, &coord, /*start=*/true);
  std::int64_t sum = 0;
  int value = 0;
  while (queue->dequeue(value) == conveyor::Status::kOk) sum += value;  // until q_Close ran
  coord.request_stop();
  coord.join();
  const std::int64_t expected = std::int64_t{kCount} * (kCount + 1) / 2;
  std::printf("runner sum %lld (expected %lld): %s\n", static_cast<long long>(sum),
              static_cast<long long>(expected), sum == expected ? "ok" : "WRONG");
  return sum == expected;
}

}  // namespace

int main() {
  constexpr int kCount = 100000;
  conveyor::FifoQueue<int> queue(/*capacity=*/256, "numbers");

  std::thread producer([&queue] {
    for (int i = 1; i <= kCount; ++i) {
      int value = i;
      // Blocks while the queue is full; fails only if someone else closes the queue.
      if (queue.enqueue(std::move(value)) != conveyor::Status::kOk) return;
    }
    (void)queue.close();  // kDrain: the consumer still gets everything enqueued before it
  });

  std::int64_t sum = 0;
  int value = 0;
  // dequeue blocks while the queue is empty and open; kClosed once it is closed and drained.
  while (queue.dequeue(value) == conveyor::Status::kOk) sum += value;
  producer.join();

  const std::int64_t expected = std::int64_t{kCount} * (kCount + 1) / 2;
  std::printf("sum %lld (expected %lld): %s\n", static_cast<long long>(sum),
              static_cast<long long>(expected), sum == expected ? "ok" : "WRONG");
  return sum == expected && runner_pipeline() ? 0 : 1;
}
