// Batching and input producers, typed: TF's tf.train.batch / batch_join / shuffle_batch /
// shuffle_batch_join, their maybe_* forms, limit_epochs and the input producers (SPEC.md E1-E15),
// for C++ users whose examples are values of a type T rather than tuples of tensors.
//
// Contract:
//  - A *source* is a callable returning the next example (a T). It ends the input by throwing
//    conveyor::Error of kind OutOfRange (what a drained queue's dequeue throws, see queue_error()),
//    which is the queue runner's "closed" kind: the last runner thread then closes the batch
//    queue (E13). Any other exception stops the pipeline through the coordinator (D6).
//    `many(source)` marks a source that returns std::vector<T>, a batch of examples enqueued
//    together (TF's enqueue_many=True; the vector may be empty, A8).
//  - batch() / shuffle_batch() run the source in `num_threads` runner threads (so with more than
//    one thread the source is called concurrently and must be thread-safe); batch_join() /
//    shuffle_batch_join() run one thread per source, each source keeping its own order (E9, E11).
//    The functions create the queue in the session (name "<name>/fifo_queue" or
//    "<name>/random_shuffle_queue", shared_name passed on: E15), register the enqueue ops and add
//    a QueueRunner to the session's collection: threads start with
//    session.start_queue_runners(&coord), as in TF.
//  - The returned Batches<Q> is the dequeue side: next() returns batch_size examples
//    (dequeue_many), or with allow_smaller_final_batch up to batch_size (dequeue_up_to), and
//    std::nullopt once the input is over (TF's OutOfRange): without allow_smaller_final_batch the
//    last incomplete batch is dropped (E13). Other failures throw conveyor::Error with TF's kind
//    (Cancelled after a cancel, DeadlineExceeded at the deadline).
//  - Gauges (E6, E10): fraction_full() is size / capacity for batch queues and
//    max(0, size - min_after_dequeue) / (capacity - min_after_dequeue) for shuffle queues, with
//    gauge_name() "<name>/fraction_of_<capacity>_full" or
//    "<name>/fraction_over_<min>_of_<capacity - min>_full".
//  - maybe_*(..., keep_input, ...) (E12): keep_input(example) decides per example whether it is
//    enqueued (for many() sources it filters the vector one by one).
//  - Argument errors are InvalidArgument naming the argument and the value (batch_size = 0,
//    capacity, num_threads, capacity <= min_after_dequeue, an empty source list "Expected at
//    least one tensor in batch_join()" as in E8).
//  - Input producers (E1-E5): limit_epochs(n) counts epochs; input_producer(items) makes a FIFO
//    queue fed one whole epoch per op run (shuffled afresh each epoch with `shuffle`) by ONE
//    runner thread; after num_epochs the runner closes it, consumers drain and then see the
//    close (E3). string_input_producer / range_input_producer / slice_input_producer are
//    input_producer over strings, 0..limit-1, and rows of equally long columns.
// Thread-safety: Batches may be used by several consumer threads; sources as said above.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/deadline.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/session.h"
#include "engine/status.h"
#include "engine/trace.h"

namespace conveyor {

// ---- sources ----

// Marks a source returning std::vector<T>: each run enqueues the whole vector (enqueue_many).
template <class Source>
struct Many {
  Source source;
};
template <class Source>
Many<std::decay_t<Source>> many(Source&& source) {
  return {std::forward<Source>(source)};
}

namespace internal {

template <class S>
struct SourceTraits {  // a plain source: one example per run
  using Example = std::decay_t<std::invoke_result_t<S&>>;
  static constexpr bool kMany = false;
};
template <class S>
struct SourceTraits<Many<S>> {  // many(): a vector of examples per run
  using Example = typename std::decay_t<std::invoke_result_t<S&>>::value_type;
  static constexpr bool kMany = true;
};

std::uint64_t fresh_seed();

// Fisher-Yates with our own index draw, so a seed gives the same permutation with every
// standard library (std::shuffle's algorithm is unspecified).
template <class T>
void permute(std::vector<T>& items, std::mt19937_64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(items[i - 1], items[j]);
  }
}

}  // namespace internal

// ---- E1: epochs ----

// Counts passes over the input: next() succeeds num_epochs times, then throws OutOfRange
// "Reached limit of <n>" (TF's count_up_to); without a limit it always succeeds. n <= 0 ->
// InvalidArgument. Thread-safe.
class EpochLimit {
 public:
  explicit EpochLimit(std::optional<std::int64_t> num_epochs);
  // Returns the epoch number (0-based) of this pass.
  std::int64_t next();
  std::optional<std::int64_t> num_epochs() const noexcept { return limit_; }

 private:
  std::optional<std::int64_t> limit_;
  std::atomic<std::int64_t> used_{0};
};

// TF's limit_epochs(tensor, num_epochs): a source that returns `value` num_epochs times, then
// throws OutOfRange.
template <class T>
auto limit_epochs(T value, std::optional<std::int64_t> num_epochs) {
  return [value = std::move(value), limit = std::make_shared<EpochLimit>(num_epochs)] {
    limit->next();
    return value;
  };
}

// ---- E2-E5: input producers ----

struct InputProducerOptions {
  std::optional<std::int64_t> num_epochs;  // none: forever
  bool shuffle = true;
  std::optional<std::uint64_t> seed;  // none: a fresh seed
  std::int64_t capacity = 32;
  std::string shared_name;
  std::string name = "input_producer";
};

// An item of input_producer_with_epochs: the value and the (0-based) epoch it belongs to.
template <class T>
struct Epoch {
  T value;
  std::int64_t epoch = 0;
};

namespace internal {

// input_producer's body: `make(item, epoch)` turns an item into the queued element.
template <class T, class Element, class Make>
std::shared_ptr<FifoQueue<Element>> epoch_producer(Session& session, std::vector<T> items,
                                                   const InputProducerOptions& options, Make make) {
  if (items.empty()) {
    throw invalid_argument(options.name + " items", 0, "must not be empty");
  }
  auto queue = session.fifo_queue<Element>(options.capacity, options.name + "/fifo_queue",
                                           options.shared_name);
  auto limit = std::make_shared<EpochLimit>(options.num_epochs);
  auto rng = std::make_shared<std::mt19937_64>(options.seed ? *options.seed : fresh_seed());
  const std::string op = session.add_unique_op(
      options.name + "/EnqueueMany",
      [queue, items = std::move(items), limit, rng, shuffle = options.shuffle, make] {
        // OutOfRange after the last epoch: the runner closes the queue (E3).
        const std::int64_t epoch = limit->next();
        std::vector<T> order = items;
        if (shuffle) permute(order, *rng);  // one runner thread: rng is not shared
        std::vector<Element> elements;
        elements.reserve(order.size());
        for (T& item : order) elements.push_back(make(std::move(item), epoch));
        const BulkResult r = queue->enqueue_many(std::span<Element>(elements));
        if (r.status != Status::kOk) {
          throw queue_error(r.status, QueueOp::kEnqueue, queue->name());
        }
      });
  session.add_queue_runner(QueueRunner(queue->name(), {op}));
  return queue;
}

}  // namespace internal

// E2: a FIFO queue of the items, fed one epoch per run by one runner thread added to the
// session. An empty `items` -> InvalidArgument (nothing could ever be produced).
template <class T>
std::shared_ptr<FifoQueue<T>> input_producer(Session& session, std::vector<T> items,
                                             const InputProducerOptions& options = {}) {
  return internal::epoch_producer<T, T>(session, std::move(items), options,
                                        [](T item, std::int64_t) { return item; });
}

// As input_producer, each element tagged with its epoch, so a consumer can check "exactly once
// per epoch" (conveyor ingest does).
template <class T>
std::shared_ptr<FifoQueue<Epoch<T>>> input_producer_with_epochs(
    Session& session, std::vector<T> items, const InputProducerOptions& options = {}) {
  return internal::epoch_producer<T, Epoch<T>>(
      session, std::move(items), options,
      [](T item, std::int64_t epoch) { return Epoch<T>{std::move(item), epoch}; });
}

// E4: an empty list -> InvalidArgument "string_input_producer requires a non-null input tensor".
std::shared_ptr<FifoQueue<std::string>> string_input_producer(
    Session& session, std::vector<std::string> strings, const InputProducerOptions& options = {});

// E5: 0 .. limit-1; limit < 1 -> InvalidArgument.
std::shared_ptr<FifoQueue<std::int64_t>> range_input_producer(
    Session& session, std::int64_t limit, const InputProducerOptions& options = {});

// E5: one row (a tuple of the i-th entries) per element; columns of different lengths or no
// rows -> InvalidArgument.
template <class... Columns>
auto slice_input_producer(Session& session, const InputProducerOptions& options,
                          const std::vector<Columns>&... columns) {
  static_assert(sizeof...(Columns) >= 1, "slice_input_producer needs at least one column");
  const std::size_t rows = std::get<0>(std::forward_as_tuple(columns...)).size();
  if (((columns.size() != rows) || ...)) {
    throw invalid_argument("slice_input_producer columns", static_cast<long long>(rows),
                           "all columns must have the same number of rows");
  }
  std::vector<std::tuple<Columns...>> items;
  items.reserve(rows);
  for (std::size_t i = 0; i < rows; ++i) items.emplace_back(columns[i]...);
  InputProducerOptions o = options;
  if (o.name == "input_producer") o.name = "slice_input_producer";
  return input_producer(session, std::move(items), o);
}

// ---- E6-E13: batching ----

// Where a batching pipeline waits, for reports (conveyor ingest). Filled when given in
// BatchOptions::stats: producer_blocked_ns = time enqueue ops spent in enqueues that had to wait
// (a single enqueue is tried first and timed only if the queue was full; an enqueue_many is
// timed when the queue could not take it whole); consumer_wait_ns = time next() spent in its
// dequeue (waiting for examples, plus moving them). Clocks are read only on those paths.
struct PipelineStats {
  std::atomic<std::int64_t> producer_blocked_ns{0};
  std::atomic<std::int64_t> consumer_wait_ns{0};
  std::atomic<std::uint64_t> queued{0};    // enqueued by the enqueue ops (after keep_input)
  std::atomic<std::uint64_t> examples{0};  // dequeued by next()
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> fill_samples{0};
  std::atomic<std::uint64_t> fill_sum_ppm{0};  // fraction_full() at each next(), in ppm
};

struct BatchOptions {
  std::shared_ptr<PipelineStats> stats;  // optional
  std::size_t batch_size = 32;
  int num_threads = 1;
  std::int64_t capacity = 32;
  bool allow_smaller_final_batch = false;
  std::string shared_name;
  std::string name = "batch";
};

// The dequeue side of a batching pipeline.
template <class Q>
class Batches {
 public:
  using Example = typename Q::value_type;

  Batches(std::shared_ptr<Q> queue, std::size_t batch_size, bool allow_smaller_final_batch,
          std::int64_t gauge_floor, std::string gauge_name,
          std::shared_ptr<PipelineStats> stats = nullptr)
      : stats_(std::move(stats)),
        queue_(std::move(queue)),
        batch_size_(batch_size),
        allow_smaller_(allow_smaller_final_batch),
        gauge_floor_(gauge_floor),
        gauge_name_(std::move(gauge_name)) {
    if constexpr (requires(const Q& q) { q.trace_id(); }) {
      queue_trace_id_ = queue_->trace_id();
    } else {  // a queue that does not name itself in traces: named here, for the batch events
      queue_trace_name_ = std::make_shared<const trace::Registration>("queue", queue_->name());
      queue_trace_id_ = queue_trace_name_->id();
    }
  }

  // The next batch; nullopt once the input is over (see the contract).
  std::optional<std::vector<Example>> next(Deadline deadline = Deadline::never()) {
    std::vector<Example> out;
    const auto t0 = stats_ ? Deadline::Clock::now() : Deadline::Clock::time_point();
    if (stats_) {
      stats_->fill_sum_ppm.fetch_add(static_cast<std::uint64_t>(fraction_full() * 1e6),
                                     std::memory_order_relaxed);
      stats_->fill_samples.fetch_add(1, std::memory_order_relaxed);
    }
    const Status s = allow_smaller_ ? queue_->dequeue_up_to(batch_size_, out, deadline)
                                    : queue_->dequeue_many(batch_size_, out, deadline);
    if (stats_) {
      // relaxed: report counters, read after the pipeline is joined.
      stats_->consumer_wait_ns.fetch_add(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Deadline::Clock::now() - t0)
              .count(),
          std::memory_order_relaxed);
      if (s == Status::kOk) {
        stats_->examples.fetch_add(out.size(), std::memory_order_relaxed);
        stats_->batches.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (s == Status::kOk) {
      trace::batch(queue_trace_id_, out.size());
      trace::occupancy(queue_trace_id_, queue_->size_approx());
      return out;
    }
    if (s == Status::kClosed) return std::nullopt;
    throw queue_error(s, QueueOp::kDequeue, queue_->name(), batch_size_, queue_->size_approx());
  }

  // E6 / E10 gauges.
  double fraction_full() const noexcept {
    const double over =
        static_cast<double>(queue_->size_approx()) - static_cast<double>(gauge_floor_);
    const double room = static_cast<double>(queue_->capacity()) - static_cast<double>(gauge_floor_);
    return over <= 0 ? 0.0 : over / room;
  }
  const std::string& gauge_name() const noexcept { return gauge_name_; }

  const std::shared_ptr<Q>& queue() const noexcept { return queue_; }
  std::size_t batch_size() const noexcept { return batch_size_; }

 private:

  std::shared_ptr<PipelineStats> stats_;
  std::shared_ptr<Q> queue_;
  std::size_t batch_size_;
  bool allow_smaller_;
  std::int64_t gauge_floor_;  // 0, or min_after_dequeue for a shuffle queue
  std::string gauge_name_;
  // The queue's id in traces (engine/trace.h): its own trace_id(), or one registered here.
  std::shared_ptr<const trace::Registration> queue_trace_name_;
  std::uint32_t queue_trace_id_ = 0;
};

namespace internal {

void check_batch_options(const BatchOptions& options, const char* function);

// The enqueue op of one source: runs it, filters with keep (if any), enqueues.
// Adds the time since t0 to `counter` (report counters: relaxed).
inline void add_elapsed(std::atomic<std::int64_t>& counter, Deadline::Clock::time_point t0) {
  counter.fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Deadline::Clock::now() - t0).count(),
      std::memory_order_relaxed);
}

template <class Q, class Source, class Keep>
Session::Op enqueue_op(std::shared_ptr<Q> queue, Source source, Keep keep,
                       std::shared_ptr<PipelineStats> stats) {
  using Traits = SourceTraits<Source>;
  using T = typename Traits::Example;
  // One source shared by every copy of the op (each runner thread holds a copy of the op), so
  // a stateful source is one stream, not one per thread.
  auto shared = std::make_shared<Source>(std::move(source));
  return [queue = std::move(queue), shared, keep = std::move(keep), stats = std::move(stats)] {
    Source& source = *shared;
    if constexpr (Traits::kMany) {
      std::vector<T> examples = source.source();
      if constexpr (!std::is_same_v<Keep, std::nullptr_t>) {
        std::erase_if(examples, [&keep](const T& e) { return !keep(e); });
      }
      const bool may_wait = stats && queue->size_approx() + examples.size() > queue->capacity();
      const auto t0 = may_wait ? Deadline::Clock::now() : Deadline::Clock::time_point();
      const BulkResult r = queue->enqueue_many(std::span<T>(examples));
      if (may_wait) add_elapsed(stats->producer_blocked_ns, t0);
      if (stats) stats->queued.fetch_add(r.count, std::memory_order_relaxed);
      if (r.status != Status::kOk) throw queue_error(r.status, QueueOp::kEnqueue, queue->name());
    } else {
      T example = source();
      if constexpr (!std::is_same_v<Keep, std::nullptr_t>) {
        if (!keep(example)) return;
      }
      Status s = stats ? queue->try_enqueue(std::move(example)) : Status::kFull;
      if (s == Status::kFull) {  // try_enqueue left `example` with us
        const auto t0 = stats ? Deadline::Clock::now() : Deadline::Clock::time_point();
        s = queue->enqueue(std::move(example));
        if (stats) add_elapsed(stats->producer_blocked_ns, t0);
      }
      if (s != Status::kOk) throw queue_error(s, QueueOp::kEnqueue, queue->name());
      if (stats) stats->queued.fetch_add(1, std::memory_order_relaxed);
    }
  };
}

// Registers one op per (source, thread) and the runner; returns the Batches.
template <class Q, class Source, class Keep>
Batches<Q> wire(Session& session, std::shared_ptr<Q> queue, std::vector<Source> sources,
                int threads_per_source, Keep keep, const BatchOptions& options,
                std::int64_t gauge_floor, std::string gauge_name) {
  std::vector<std::string> ops;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const std::string op = session.add_unique_op(options.name + "/enqueue",
                                                 enqueue_op(queue, std::move(sources[i]), keep,
                                                            options.stats));
    for (int t = 0; t < threads_per_source; ++t) ops.push_back(op);
  }
  session.add_queue_runner(QueueRunner(queue->name(), std::move(ops)));
  return Batches<Q>(std::move(queue), options.batch_size, options.allow_smaller_final_batch,
                    gauge_floor, std::move(gauge_name), options.stats);
}

template <class Source, class Keep>
auto batch_impl(Session& session, std::vector<Source> sources, int threads_per_source, Keep keep,
                const BatchOptions& options, const char* function) {
  using T = typename SourceTraits<Source>::Example;
  check_batch_options(options, function);
  if (sources.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("Expected at least one tensor in ") + function + "()");
  }
  auto queue =
      session.fifo_queue<T>(options.capacity, options.name + "/fifo_queue", options.shared_name);
  std::string gauge = options.name + "/fraction_of_" + std::to_string(options.capacity) + "_full";
  return wire(session, std::move(queue), std::move(sources), threads_per_source, std::move(keep),
              options, 0, std::move(gauge));
}

}  // namespace internal

// E6: num_threads runner threads run `source`.
template <class Source>
auto batch(Session& session, Source source, const BatchOptions& options = {}) {
  return internal::batch_impl(session, std::vector<Source>{std::move(source)},
                              options.num_threads, nullptr, options, "batch");
}

// E9: one runner thread per source (options.num_threads is ignored, as in TF).
template <class Source>
auto batch_join(Session& session, std::vector<Source> sources, const BatchOptions& options = {}) {
  return internal::batch_impl(session, std::move(sources), 1, nullptr, options, "batch_join");
}

// E12.
template <class Source, class Keep>
auto maybe_batch(Session& session, Source source, Keep keep_input,
                 const BatchOptions& options = {}) {
  return internal::batch_impl(session, std::vector<Source>{std::move(source)},
                              options.num_threads, std::move(keep_input), options, "maybe_batch");
}
template <class Source, class Keep>
auto maybe_batch_join(Session& session, std::vector<Source> sources, Keep keep_input,
                      const BatchOptions& options = {}) {
  return internal::batch_impl(session, std::move(sources), 1, std::move(keep_input), options,
                              "maybe_batch_join");
}

// ---- E10, E11: shuffle batching ----

struct ShuffleBatchOptions : BatchOptions {
  std::int64_t min_after_dequeue = 0;
  std::optional<std::uint64_t> seed;  // none: nondeterministic
  ShuffleBatchOptions() { name = "shuffle_batch"; }
};

namespace internal {

template <class Source, class Keep>
auto shuffle_batch_impl(Session& session, std::vector<Source> sources, int threads_per_source,
                        Keep keep, const ShuffleBatchOptions& options, const char* function) {
  using T = typename SourceTraits<Source>::Example;
  check_batch_options(options, function);
  if (options.capacity <= options.min_after_dequeue) {  // E10
    throw invalid_argument(std::string(function) + " capacity", options.capacity,
                           "must be > min_after_dequeue = " +
                               std::to_string(options.min_after_dequeue));
  }
  if (sources.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("Expected at least one tensor in ") + function + "()");
  }
  auto queue = session.shuffle_queue<T>(options.capacity, options.min_after_dequeue, options.seed,
                                        options.name + "/random_shuffle_queue",
                                        options.shared_name);
  std::string gauge = options.name + "/fraction_over_" + std::to_string(options.min_after_dequeue) +
                      "_of_" + std::to_string(options.capacity - options.min_after_dequeue) +
                      "_full";
  return wire(session, std::move(queue), std::move(sources), threads_per_source, std::move(keep),
              options, options.min_after_dequeue, std::move(gauge));
}

}  // namespace internal

// E10: num_threads runner threads run `source` into a shuffle queue.
template <class Source>
auto shuffle_batch(Session& session, Source source, const ShuffleBatchOptions& options) {
  return internal::shuffle_batch_impl(session, std::vector<Source>{std::move(source)},
                                      options.num_threads, nullptr, options, "shuffle_batch");
}

// E11: one runner thread per source.
template <class Source>
auto shuffle_batch_join(Session& session, std::vector<Source> sources,
                        const ShuffleBatchOptions& options) {
  return internal::shuffle_batch_impl(session, std::move(sources), 1, nullptr, options,
                                      "shuffle_batch_join");
}

// E12.
template <class Source, class Keep>
auto maybe_shuffle_batch(Session& session, Source source, Keep keep_input,
                         const ShuffleBatchOptions& options) {
  return internal::shuffle_batch_impl(session, std::vector<Source>{std::move(source)},
                                      options.num_threads, std::move(keep_input), options,
                                      "maybe_shuffle_batch");
}
template <class Source, class Keep>
auto maybe_shuffle_batch_join(Session& session, std::vector<Source> sources, Keep keep_input,
                              const ShuffleBatchOptions& options) {
  return internal::shuffle_batch_impl(session, std::move(sources), 1, std::move(keep_input),
                                      options, "maybe_shuffle_batch_join");
}

}  // namespace conveyor
