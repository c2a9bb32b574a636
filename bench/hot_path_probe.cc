// hot_path_probe: a single thread runs a queue's fast paths with nobody waiting, so that
// bench/check_hot_path.sh can count, under strace and callgrind, the syscalls (expected: none
// past start-up) and the instructions per operation of each path. Not a timing benchmark.
//
//   hot_path_probe [ops] [fifo|spsc|spsc_try|shuffle] [both|single|bulk]   (default 200000 fifo both)
//     fifo:     FifoQueue<Mpmc> then FifoQueue<Spsc>
//     spsc:     FifoQueue<Spsc> alone (blocking API, as fifo)
//     spsc_try: FifoQueue<Spsc>, try_enqueue / try_dequeue and the burst calls of 32 (what
//               `conveyor perf` drives for ConveyorSpsc)
//     shuffle: ShuffleQueue (2 lanes, min_after_dequeue 0)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "engine/fifo_queue.h"
#include "engine/shuffle_queue.h"

namespace {

using conveyor::FifoQueue;

// Which loops run: single-element operations, bulk-32 ones, or both (the default).
bool g_single = true;
bool g_bulk = true;
using conveyor::Status;

template <class Queue>
std::uint64_t run(Queue& q, std::size_t ops) {
  std::uint64_t sum = 0, v = 0;
  for (std::size_t i = 0; g_single && i < ops; ++i) {  // single enqueue + dequeue, blocking, never waits
    if (q.enqueue(std::uint64_t{i}) != Status::kOk || q.dequeue(v) != Status::kOk) std::abort();
    sum += v;
  }
  std::vector<std::uint64_t> batch(32, 1), out;
  out.reserve(32);  // the only allocation: before the loop
  for (std::size_t i = 0; g_bulk && i < ops / 32; ++i) {  // enqueue_many + dequeue_many of 32
    if (q.enqueue_many(std::span(batch)).status != Status::kOk) std::abort();
    if (q.dequeue_many(32, out) != Status::kOk) std::abort();
    sum += out.size();
  }
  return sum;
}

// The non-blocking API, as the bench adapter ConveyorSpsc calls it.
template <class Queue>
std::uint64_t run_try(Queue& q, std::size_t ops) {
  std::uint64_t sum = 0, v = 0;
  for (std::size_t i = 0; g_single && i < ops; ++i) {
    if (q.try_enqueue(std::uint64_t{i}) != Status::kOk || q.try_dequeue(v) != Status::kOk) {
      std::abort();
    }
    sum += v;
  }
  std::vector<std::uint64_t> batch(32, 1), out(32);
  for (std::size_t i = 0; g_bulk && i < ops / 32; ++i) {
    if (q.try_enqueue_burst(std::span(batch)).count != 32) std::abort();
    if (q.try_dequeue_burst(std::span(out)).count != 32) std::abort();
    sum += out[31];
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t ops = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const std::string_view mode = argc > 2 ? argv[2] : "fifo";
  const std::string_view paths = argc > 3 ? argv[3] : "both";
  if (paths != "both" && paths != "single" && paths != "bulk") {
    std::fprintf(stderr, "hot_path_probe: paths must be both, single or bulk, not '%s'\n", argv[3]);
    return 2;
  }
  g_single = paths != "bulk";
  g_bulk = paths != "single";
  if (mode == "shuffle") {
    conveyor::ShuffleQueue<std::uint64_t> q(1024, 0, 1, "probe", 2);
    std::printf("checksum %llu\n", static_cast<unsigned long long>(run(q, ops)));
    return 0;
  }
  if (mode == "spsc" || mode == "spsc_try") {
    FifoQueue<std::uint64_t, conveyor::Spsc> spsc(1024, "probe");
    const std::uint64_t a = mode == "spsc" ? run(spsc, ops) : run_try(spsc, ops);
    std::printf("checksum %llu\n", static_cast<unsigned long long>(a));
    return 0;
  }
  if (mode != "fifo") {
    std::fprintf(stderr, "hot_path_probe: mode must be fifo, spsc, spsc_try or shuffle, not '%s'\n",
                 argv[2]);
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
