// `conveyor demo`: producers -> one FifoQueue -> consumers on embedded text.
//
// Producers stamp records (producer, sequence, line of an embedded text) and push them in
// batches with enqueue_many into one bounded FifoQueue; consumers drain it with
// dequeue_up_to until the queue is closed and empty (kClosed, TF's OutOfRange); the last producer
// to finish closes the queue. A Coordinator runs the threads as TF's would: errors stop
// everyone, a close_on_stop thread cancels pending enqueues, join() rethrows the first error.
// Each consumer checks per-producer FIFO order on what it received and marks every (producer,
// sequence) in its own bitmap; after the join the bitmaps are merged to prove every record
// arrived exactly once (STYLE.md, "stamps every item with its producer").
#pragma once

#include <cstdint>

namespace conveyor::tools {

struct DemoOptions {
  std::int64_t items = 4'000'000;  // in total, split evenly over the producers
  int producers = 2;
  int consumers = 2;
  std::int64_t capacity = 1024;
};

// Runs the demo and prints its summary. Exit code: 0 when every record arrived exactly once and
// in per-producer order, else 1.
int run_demo(const DemoOptions& o);

}  // namespace conveyor::tools
