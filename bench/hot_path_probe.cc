// hot_path_probe: a single thread runs FifoQueue's fast paths with nobody waiting, so that
// bench/check_hot_path.sh can count, under strace and callgrind, the syscalls (expected: none
// past start-up) and the instructions per operation of each path. Not a timing benchmark.
//
//   hot_path_probe [ops]   (default 200000)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "engine/fifo_queue.h"

namespace {

using conveyor::FifoQueue;
using conveyor::Status;

template <class Policy>
std::uint64_t run(std::size_t ops) {
  FifoQueue<std::uint64_t, Policy> q(1024, "probe");
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
  const std::uint64_t a = run<conveyor::Mpmc>(ops);
  const std::uint64_t b = run<conveyor::Spsc>(ops);
  std::printf("checksum %llu %llu\n", static_cast<unsigned long long>(a),
              static_cast<unsigned long long>(b));
  return 0;
}
