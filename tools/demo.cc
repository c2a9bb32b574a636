#include "tools/demo.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>
#include <vector>

#include "engine/coordinator.h"
#include "engine/fifo_queue.h"
#include "engine/status.h"
#include "engine/thread.h"

namespace conveyor::tools {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitWrong = 1;

// The embedded data: every producer sends each line in turn, over and over.
constexpr std::string_view kLines[] = {
    "The first queue opened before the sun came up.",
    "A producer stamped each record with its name and a number.",
    "Consumers took what they could carry and asked for more.",
    "Nothing was lost on the way from the reader to the trainer.",
    "Every batch kept the order in which its elements arrived.",
    "The ring had a head, a tail and no lock between them.",
    "A closed queue still handed out what it held.",
    "Then it answered out of range, and the loop ended cleanly.",
    "Two threads raced for the same slot; one of them won.",
    "The loser tried the next slot without waiting.",
    "A full queue made the producer sleep on a futex.",
    "The first dequeue woke it with a single system call.",
    "Nobody slept when there was nobody to wake.",
    "The coordinator watched the threads and joined them all.",
    "A stop request travelled to every runner in turn.",
    "Cache lines were padded so neighbours would not fight.",
    "Sequence numbers climbed without a gap.",
    "The bitmap had one bit for every record ever sent.",
    "At the end every bit was set exactly once.",
    "Shuffled batches mixed the examples like a deck of cards.",
    "The seed made the shuffle repeat when it had to.",
    "Input producers read the file names one epoch at a time.",
    "After the last epoch the runner closed the queue.",
    "Trainers pulled batches of sixty-four from the front.",
    "A smaller final batch carried the last few examples.",
    "The deadline passed and the wait returned timed out.",
    "The queue stayed usable after the timeout.",
    "Cancelling a close failed every pending enqueue.",
    "Pending dequeues were left to finish on their own.",
    "Elements a partial enqueue had pushed stayed in place.",
    "A second close reported that the queue was already closed.",
    "Memory orders were named and paired across functions.",
    "Release on the producer side met acquire on the consumer side.",
    "A relaxed load carried a comment saying why it was enough.",
    "The heavy fence ran rarely; the light one ran every time.",
    "Threads were pinned to cores the topology had found.",
    "NUMA nodes kept their memory close to their threads.",
    "The benchmark ran every queue in the same process.",
    "Checksums proved the benchmark moved real data.",
    "Context switches were counted beside the throughput.",
    "The sanitizer found no race in ten thousand runs.",
    "Tests cited the behaviour they pinned by its number.",
    "A counting type proved every element was destroyed.",
    "Capacity one was the hardest case and passed.",
    "The producer handed a value back when the push failed.",
    "Bulk meant all or nothing; burst meant up to n.",
    "Waiting came in three layers: spin, snooze and park.",
    "The event count let a waker skip the syscall.",
    "A blocked head request held the others behind it.",
    "Dequeue many took a contiguous run of the queue.",
    "Concurrent dequeuers split the stream without overlap.",
    "The padding queue filled short rows with zeros.",
    "Strings round-tripped through the queue unchanged.",
    "Shared names turned two queues into one.",
    "A mismatched capacity was rejected by name.",
    "The reader thread stopped when it saw the stop flag.",
    "Errors from user code reached the coordinator intact.",
    "The first error won; later ones were dropped.",
    "Join raised the recorded error after all threads ended.",
    "Clear stop reset the flag for the next run.",
    "Looper threads ran their target on a timer.",
    "The pipeline drained, and the trainer saw every example.",
    "Throughput was printed in items per second.",
    "Then the demo said yes, exactly once, and exited.",
};
constexpr std::size_t kLineCount = std::size(kLines);

constexpr std::size_t kEnqueueBatch = 64;
constexpr std::size_t kDequeueBatch = 64;



// One queue element: who sent it, its number in that producer's stream, and which line it carries.
struct Record {
  std::uint32_t producer;
  std::uint32_t line;
  std::uint64_t seq;
};

// What one consumer saw: a bit per (producer, seq), and the faults it found on its own.
struct ConsumerLog {
  std::vector<std::vector<std::uint64_t>> seen;  // [producer][seq / 64], bit seq % 64
  std::uint64_t received = 0;
  std::uint64_t text_bytes = 0;
  std::uint64_t duplicates = 0;    // a bit already set by this consumer
  std::uint64_t out_of_order = 0;  // seq not above the last one from the same producer
  std::uint64_t malformed = 0;     // producer or seq out of range, or the wrong line
};

std::uint64_t items_of(const DemoOptions& o, int producer) {
  const auto p = static_cast<std::uint64_t>(o.producers);
  const auto total = static_cast<std::uint64_t>(o.items);
  return total / p + (static_cast<std::uint64_t>(producer) < total % p ? 1 : 0);
}

}  // namespace

int run_demo(const DemoOptions& o) {
  using Queue = conveyor::FifoQueue<Record>;
  Queue queue(o.capacity, "demo");
  conveyor::Coordinator coord;  // clean stop: OutOfRange, as in TF

  std::vector<std::uint64_t> expected(static_cast<std::size_t>(o.producers));
  for (int p = 0; p < o.producers; ++p) expected[static_cast<std::size_t>(p)] = items_of(o, p);
  std::vector<ConsumerLog> logs(static_cast<std::size_t>(o.consumers));
  // Producers still running; the one that takes it to zero closes the queue.
  std::atomic<int> producers_left{o.producers};

  // A producer enqueues its records in batches, then, if it is the last one, closes the queue
  // (kDrain: consumers still get everything). A failed enqueue after a stop is the expected
  // Cancelled of a stopping pipeline (SPEC D7); any other failure stops everyone.
  auto produce = [&](int p) {
    struct LastOneCloses {
      Queue& queue;
      std::atomic<int>& left;
      ~LastOneCloses() {
        // acq_rel: the closing producer's close comes after every other producer's last enqueue.
        if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          (void)queue.close(conveyor::CloseMode::kDrain);
        }
      }
    } last_one_closes{queue, producers_left};
    const std::uint64_t count = expected[static_cast<std::size_t>(p)];
    std::vector<Record> batch;
    batch.reserve(kEnqueueBatch);
    for (std::uint64_t seq = 0; seq < count && !coord.should_stop();) {
      batch.clear();
      const std::uint64_t end = std::min<std::uint64_t>(count, seq + kEnqueueBatch);
      for (; seq < end; ++seq) {
        batch.push_back(Record{static_cast<std::uint32_t>(p),
                               static_cast<std::uint32_t>(seq % kLineCount), seq});
      }
      const conveyor::BulkResult r = queue.enqueue_many(std::span<Record>(batch));
      if (r.status == conveyor::Status::kOk) continue;
      if (coord.should_stop()) return;
      throw conveyor::Error(conveyor::ErrorKind::kInternal,
                            "producer " + std::to_string(p) + ": enqueue_many returned " +
                                std::string(conveyor::to_string(r.status)) + " after " +
                                std::to_string(r.count) + " of " + std::to_string(batch.size()) +
                                " records");
    }
  };

  // A consumer drains batches until the queue is closed and empty (kClosed: TF's OutOfRange,
  // which the coordinator treats as a clean stop), checking each record as it comes.
  auto consume = [&](int c) {
    ConsumerLog& log = logs[static_cast<std::size_t>(c)];
    log.seen.resize(expected.size());
    for (std::size_t p = 0; p < expected.size(); ++p) {
      log.seen[p].assign((expected[p] + 63) / 64, 0);
    }
    // The lowest sequence number this consumer may still see from each producer (FIFO order).
    std::vector<std::uint64_t> next_min(expected.size(), 0);
    std::vector<Record> out;
    out.reserve(kDequeueBatch);
    for (;;) {
      const conveyor::Status s = queue.dequeue_up_to(kDequeueBatch, out);
      if (s == conveyor::Status::kClosed) break;
      if (s != conveyor::Status::kOk) {
        throw conveyor::Error(conveyor::ErrorKind::kInternal,
                              "consumer " + std::to_string(c) + ": dequeue_up_to returned " +
                                  std::string(conveyor::to_string(s)));
      }
      for (const Record& r : out) {
        ++log.received;
        if (r.producer >= expected.size() || r.seq >= expected[r.producer] ||
            r.line != r.seq % kLineCount) {
          ++log.malformed;
          continue;
        }
        log.text_bytes += kLines[r.line].size();
        if (r.seq < next_min[r.producer]) ++log.out_of_order;
        next_min[r.producer] = std::max(next_min[r.producer], r.seq + 1);
        std::uint64_t& word = log.seen[r.producer][r.seq / 64];
        const std::uint64_t bit = std::uint64_t{1} << (r.seq % 64);
        if (word & bit) ++log.duplicates;
        word |= bit;
      }
    }
  };

  const auto start = std::chrono::steady_clock::now();
  std::vector<conveyor::Thread> threads;
  threads.reserve(static_cast<std::size_t>(o.producers + o.consumers + 1));
  auto start_thread = [&](std::string name, auto body) {
    threads.emplace_back(std::move(name), [&coord, body] { coord.stop_on_exception(body); });
    coord.register_thread(threads.back());
  };
  // TF's close_on_stop thread (SPEC D7): once a stop is requested, fail the pending enqueues so
  // that blocked producers return. A clean end also comes through here: the first consumer to
  // find the queue closed and drained requests the stop.
  start_thread("demo-close-on-stop", [&] {
    coord.wait_for_stop();
    (void)queue.close(conveyor::CloseMode::kCancelPendingEnqueues);
  });
  // If the OS refuses a thread, the stop lets the ones already running end, and join reports it.
  coord.stop_on_exception([&] {
    for (int c = 0; c < o.consumers; ++c) {
      start_thread("demo-consumer-" + std::to_string(c), [&, c] {
        consume(c);
        coord.request_stop();  // the queue is closed and drained: a clean stop
      });
    }
    for (int p = 0; p < o.producers; ++p) {
      start_thread("demo-producer-" + std::to_string(p), [&, p] { produce(p); });
    }
  });
  bool errors = false;
  try {
    coord.join();  // every registered thread; rethrows the first error a thread reported
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conveyor demo: %s\n", e.what());
    errors = true;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  threads.clear();  // reaps the OS threads

  // Merge the consumers' bitmaps: a bit set by two consumers is a duplicate, a bit set by none a
  // loss.
  std::uint64_t received = 0, text_bytes = 0, duplicates = 0, out_of_order = 0, malformed = 0;
  std::uint64_t lost = 0;
  for (const ConsumerLog& log : logs) {
    received += log.received;
    text_bytes += log.text_bytes;
    duplicates += log.duplicates;
    out_of_order += log.out_of_order;
    malformed += log.malformed;
  }
  for (std::size_t p = 0; p < expected.size(); ++p) {
    std::uint64_t delivered = 0;
    for (std::size_t w = 0; w < (expected[p] + 63) / 64; ++w) {
      std::uint64_t merged = 0;
      for (const ConsumerLog& log : logs) {
        duplicates += static_cast<std::uint64_t>(std::popcount(merged & log.seen[p][w]));
        merged |= log.seen[p][w];
      }
      delivered += static_cast<std::uint64_t>(std::popcount(merged));
    }
    lost += expected[p] - delivered;
  }

  std::uint64_t sent = 0;
  for (std::uint64_t e : expected) sent += e;
  const bool exact = !errors && lost == 0 && duplicates == 0 && malformed == 0 && received == sent;
  const bool ordered = out_of_order == 0;

  std::printf(
      "conveyor demo: %d producer(s) -> FifoQueue<Record>(capacity %lld) -> %d consumer(s)\n",
      o.producers, static_cast<long long>(o.capacity), o.consumers);
  std::printf("  text          %zu embedded lines, each sent about %llu times per producer\n",
              kLineCount, static_cast<unsigned long long>(expected[0] / kLineCount));
  std::printf("  items         %llu (%llu bytes of text)\n",
              static_cast<unsigned long long>(received),
              static_cast<unsigned long long>(text_bytes));
  std::printf("  seconds       %.3f\n", seconds);
  std::printf("  items/s       %.0f\n",
              seconds > 0 ? static_cast<double>(received) / seconds : 0.0);
  if (!exact) {
    std::printf("  lost %llu, duplicated %llu, malformed %llu\n",
                static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicates),
                static_cast<unsigned long long>(malformed));
  }
  std::printf("  per-producer order: %s\n", ordered ? "yes" : "no");
  std::printf("  exactly once: %s\n", exact ? "yes" : "no");
  return exact && ordered ? kExitOk : kExitWrong;
}

}  // namespace conveyor::tools
