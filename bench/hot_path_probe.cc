// hot_path_probe: a single thread runs a queue's fast paths with nobody waiting, so that
// bench/check_hot_path.sh can count, under strace and callgrind, the syscalls (expected: none
// past start-up) and the instructions per operation of each path. Not a timing benchmark.
//
//   hot_path_probe [ops] [fifo|shuffle]   (default 200000 fifo)
//     fifo:    FifoQueue<Mpmc> then FifoQueue<Spsc>
//     shuffle: ShuffleQueue (2 lanes, min_after_dequeue 0)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "engine/fifo_queue.h"
#include "engine/shuffle_queue.h"
#include <string_view>

namespace {

using conveyor::FifoQueue;
using conveyor::Status;

template <class Queue>
std::uint64_t run(Queue& q, std::size_t ops) {
  std::uint64_t sum = 0, v = 0;
  for (std::size_t i = 0; i < ops; ++i) {  // single enqueue + dequeue, blocking API, never waits
    if (q.enqueue(std::uint64_t{i}) != Status::kOk || q.dequeue(v) != Status::kOk) std::abort();
    sum += v;
  }
  std::vector<std::uint64_t> batch(32, 1), out;
  out.reserve(32);  // the only allocation: before the loop
  for (std::size_t i = 0; i < ops / 32; ++i) {  // enqueue_many + dequeue_many of 32
    if (q.enqueue_many(std::span(batch)).status != Status::kOk) std::abort();
    if (q.dequeue_many(32, out) != Status::kOk) std::abort();
    sum += out.size();
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t ops = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const std::string_view mode = argc > 2 ? argv[2] : "fifo";
  if (mode == "shuffle") {
    conveyor::ShuffleQueue<std::uint64_t> q(1024, 0, 1, "probe", 2);
    std::printf("checksum %llu\n", static_cast<unsigned long long>(run(q, ops)));
    return 0;
  }
  if (mode != "fifo") {
    std::fprintf(stderr, "hot_path_probe: mode must be fifo or shuffle, not '%s'\n", argv[2]);
    return 2;
  }
  FifoQueue<std::uint64_t, conveyor::Mpmc> mpmc(1024, "probe");
  FifoQueue<std::uint64_t, conveyor::Spsc> spsc(1024, "probe");
  const std::uint64_t a = run(mpmc, ops);
  const std::uint64_t b = run(spsc, ops);
  std::printf("checksum %llu %llu\n", static_cast<unsigned long long>(a),
              static_cast<unsigned long long>(b));
  return 0;
}
