// The smallest Conveyor program: one producer thread feeds a bounded FifoQueue<int>, the main
// thread drains it until the producer closes the queue, and checks that the sum is right.
#include <cstdint>
#include <cstdio>
#include <thread>

#include "engine/fifo_queue.h"
#include "engine/status.h"

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
  return sum == expected ? 0 : 1;
}
