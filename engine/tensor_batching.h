// Batching over tensors: TF's tf.train.batch / batch_join / shuffle_batch / shuffle_batch_join
// and maybe_batch for tuples of tensors (SPEC.md E6-E13), on the typed batching layer
// (engine/batching.h) and TensorQueue (engine/tensor_queue.h).
//
// Contract:
//  - `TensorInput` is what TF reads from the input tensors at graph-build time: their dtypes,
//    static shapes (kUnknownDim where unknown, Shape::unknown_rank() when the rank is unknown)
//    and, for dict inputs, their names. The queue's shapes come from infer_shapes() (E7):
//    explicit options.shapes win; otherwise the inputs' shapes, without dimension 0 with
//    EnqueueMode::kMany; unknown rank, or not fully defined without Padding::kDynamic ->
//    InvalidArgument. No component -> InvalidArgument "Expected at least one tensor in
//    batch()" (E8, with the function's name).
//  - A source returns the next Element (or NamedElement for named inputs) and throws
//    OutOfRange when the input is over, as in engine/batching.h. Each run's element is checked
//    against the queue's spec before it is enqueued (A5, A7): a mismatch is InvalidArgument,
//    which stops the pipeline through the coordinator.
//  - TensorBatches::next() returns one stacked Element: component i has shape
//    [batch, ...shape_i] (padded to the batch maximum with Padding::kDynamic, A31), or nullopt
//    once the input is over (E13); next_named() returns it as a dict (E8: dict inputs come
//    back as dicts).
//  - maybe_*: the source returns {element, keep_input}; keep_input is a scalar bool tensor
//    (enqueue the element or skip it) or, only with EnqueueMode::kMany, a vector bool tensor of
//    the batch's length filtering examples one by one; any other shape or dtype ->
//    InvalidArgument (E12).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/batching.h"
#include "engine/element.h"
#include "engine/shuffle_queue.h"
#include "engine/tensor.h"
#include "engine/tensor_queue.h"

namespace conveyor {

struct TensorInput {
  std::vector<DType> dtypes;
  std::vector<Shape> shapes;       // the inputs' static shapes, one per dtype
  std::vector<std::string> names;  // empty: positional inputs
};

struct TensorBatchOptions : BatchOptions {
  EnqueueMode enqueue_mode = EnqueueMode::kOne;  // TF enqueue_many
  std::vector<Shape> shapes;                     // explicit queue shapes (E7)
  Padding padding = Padding::kNone;              // TF dynamic_pad
};

struct TensorShuffleBatchOptions : TensorBatchOptions {
  std::int64_t min_after_dequeue = 0;
  std::optional<std::uint64_t> seed;
  TensorShuffleBatchOptions() { name = "shuffle_batch"; }
};

template <class Q>
class TensorBatches {
 public:
  TensorBatches(std::shared_ptr<TensorQueue<Q>> queue, std::size_t batch_size,
                bool allow_smaller_final_batch, std::int64_t gauge_floor, std::string gauge_name)
      : queue_(std::move(queue)),
        batch_size_(static_cast<std::int64_t>(batch_size)),
        allow_smaller_(allow_smaller_final_batch),
        gauge_floor_(gauge_floor),
        gauge_name_(std::move(gauge_name)) {}

  std::optional<Element> next(Deadline deadline = Deadline::never()) {
    try {
      return allow_smaller_ ? queue_->dequeue_up_to(batch_size_, deadline)
                            : queue_->dequeue_many(batch_size_, deadline);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kOutOfRange) return std::nullopt;  // the input is over
      throw;
    }
  }
  std::optional<NamedElement> next_named(Deadline deadline = Deadline::never()) {
    std::optional<Element> batch = next(deadline);
    if (!batch) return std::nullopt;
    return queue_->spec().to_named(std::move(*batch));
  }

  double fraction_full() const noexcept {
    const double over = static_cast<double>(queue_->size_approx()) -
                        static_cast<double>(gauge_floor_);
    const double room = static_cast<double>(queue_->queue().capacity()) -
                        static_cast<double>(gauge_floor_);
    return over <= 0 ? 0.0 : over / room;
  }
  const std::string& gauge_name() const noexcept { return gauge_name_; }
  TensorQueue<Q>& queue() noexcept { return *queue_; }

 private:
  std::shared_ptr<TensorQueue<Q>> queue_;
  std::int64_t batch_size_;
  bool allow_smaller_;
  std::int64_t gauge_floor_;
  std::string gauge_name_;
};

namespace internal {

// E12: keep_input applied to one run's element; false: nothing to enqueue.
bool apply_keep_input(const Tensor& keep, EnqueueMode mode, Element& element);

QueueSpec tensor_batch_spec(const TensorInput& input, const TensorBatchOptions& options,
                            const char* function);

template <bool kMaybe, class Q, class Source>
Session::Op tensor_enqueue_op(std::shared_ptr<TensorQueue<Q>> queue, Source source,
                              EnqueueMode mode) {
  auto shared = std::make_shared<Source>(std::move(source));
  return [queue = std::move(queue), shared, mode] {
    auto push = [&](auto&& element) {
      if (mode == EnqueueMode::kMany) {
        queue->enqueue_many(std::move(element));
      } else {
        queue->enqueue(std::move(element));
      }
    };
    if constexpr (kMaybe) {
      auto [element, keep] = (*shared)();
      Element positional;
      if constexpr (std::is_same_v<std::decay_t<decltype(element)>, NamedElement>) {
        positional = queue->spec().to_positional(std::move(element));
      } else {
        positional = std::move(element);
      }
      if (apply_keep_input(keep, mode, positional)) push(std::move(positional));
    } else {
      push((*shared)());
    }
  };
}

template <bool kMaybe, class Q, class Source>
TensorBatches<Q> tensor_wire(Session& session, std::shared_ptr<Q> typed, QueueSpec spec,
                             std::vector<Source> sources, int threads_per_source,
                             const TensorBatchOptions& options, std::int64_t gauge_floor,
                             std::string gauge) {
  auto queue = std::make_shared<TensorQueue<Q>>(std::move(spec), std::move(typed));
  std::vector<std::string> ops;
  for (Source& source : sources) {
    const std::string op = session.add_unique_op(
        options.name + "/enqueue",
        tensor_enqueue_op<kMaybe>(queue, std::move(source), options.enqueue_mode));
    for (int t = 0; t < threads_per_source; ++t) ops.push_back(op);
  }
  session.add_queue_runner(QueueRunner(std::string(queue->name()), std::move(ops)));
  return TensorBatches<Q>(std::move(queue), options.batch_size, options.allow_smaller_final_batch,
                          gauge_floor, std::move(gauge));
}

template <bool kMaybe, class Source>
auto tensor_batch_impl(Session& session, std::vector<Source> sources, int threads_per_source,
                       const TensorInput& input, const TensorBatchOptions& options,
                       const char* function) {
  QueueSpec spec = tensor_batch_spec(input, options, function);
  if (sources.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("Expected at least one tensor in ") + function + "()");
  }
  const char* kind = options.padding == Padding::kDynamic ? "/padding_fifo_queue" : "/fifo_queue";
  auto typed =
      session.fifo_queue<Element>(options.capacity, options.name + kind, options.shared_name);
  std::string gauge = options.name + "/fraction_of_" + std::to_string(options.capacity) + "_full";
  return tensor_wire<kMaybe>(session, std::move(typed), std::move(spec), std::move(sources),
                            threads_per_source, options, 0, std::move(gauge));
}

template <bool kMaybe, class Source>
auto tensor_shuffle_batch_impl(Session& session, std::vector<Source> sources,
                               int threads_per_source, const TensorInput& input,
                               const TensorShuffleBatchOptions& options, const char* function) {
  QueueSpec spec = tensor_batch_spec(input, options, function);
  if (options.capacity <= options.min_after_dequeue) {  // E10
    throw invalid_argument(std::string(function) + " capacity", options.capacity,
                           "must be > min_after_dequeue = " +
                               std::to_string(options.min_after_dequeue));
  }
  if (sources.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("Expected at least one tensor in ") + function + "()");
  }
  auto typed = session.shuffle_queue<Element>(options.capacity, options.min_after_dequeue,
                                              options.seed, options.name + "/random_shuffle_queue",
                                              options.shared_name);
  std::string gauge = options.name + "/fraction_over_" +
                      std::to_string(options.min_after_dequeue) + "_of_" +
                      std::to_string(options.capacity - options.min_after_dequeue) + "_full";
  return tensor_wire<kMaybe>(session, std::move(typed), std::move(spec), std::move(sources),
                            threads_per_source, options, options.min_after_dequeue,
                            std::move(gauge));
}

}  // namespace internal

// E6.
template <class Source>
auto batch_tensors(Session& session, Source source, const TensorInput& input,
                   const TensorBatchOptions& options = {}) {
  return internal::tensor_batch_impl<false>(session, std::vector<Source>{std::move(source)},
                                            options.num_threads, input, options, "batch");
}
// E9.
template <class Source>
auto batch_join_tensors(Session& session, std::vector<Source> sources, const TensorInput& input,
                        const TensorBatchOptions& options = {}) {
  return internal::tensor_batch_impl<false>(session, std::move(sources), 1, input, options,
                                            "batch_join");
}
// E10.
template <class Source>
auto shuffle_batch_tensors(Session& session, Source source, const TensorInput& input,
                           const TensorShuffleBatchOptions& options) {
  return internal::tensor_shuffle_batch_impl<false>(
      session, std::vector<Source>{std::move(source)}, options.num_threads, input, options,
      "shuffle_batch");
}
// E11.
template <class Source>
auto shuffle_batch_join_tensors(Session& session, std::vector<Source> sources,
                                const TensorInput& input,
                                const TensorShuffleBatchOptions& options) {
  return internal::tensor_shuffle_batch_impl<false>(session, std::move(sources), 1, input,
                                                    options, "shuffle_batch_join");
}
// E12: the source returns {element, keep_input}.
template <class Source>
auto maybe_batch_tensors(Session& session, Source source, const TensorInput& input,
                         const TensorBatchOptions& options = {}) {
  return internal::tensor_batch_impl<true>(session, std::vector<Source>{std::move(source)},
                                           options.num_threads, input, options, "maybe_batch");
}
template <class Source>
auto maybe_shuffle_batch_tensors(Session& session, Source source, const TensorInput& input,
                                 const TensorShuffleBatchOptions& options) {
  return internal::tensor_shuffle_batch_impl<true>(
      session, std::vector<Source>{std::move(source)}, options.num_threads, input, options,
      "maybe_shuffle_batch");
}

}  // namespace conveyor
