#include "engine/batching.h"

#include <numeric>

namespace conveyor {
namespace internal {

std::uint64_t fresh_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

void check_batch_options(const BatchOptions& options, const char* function) {
  const std::string f(function);
  if (options.batch_size < 1) throw invalid_argument(f + " batch_size", 0, "must be >= 1");
  if (options.capacity < 1) {
    throw invalid_argument(f + " capacity", options.capacity, "must be >= 1");
  }
  if (options.num_threads < 1) {
    throw invalid_argument(f + " num_threads", options.num_threads, "must be >= 1");
  }
}

}  // namespace internal

EpochLimit::EpochLimit(std::optional<std::int64_t> num_epochs) : limit_(num_epochs) {
  if (limit_ && *limit_ <= 0) {  // TF: "num_epochs must be > 0 not %d."
    throw invalid_argument("num_epochs", *limit_, "must be > 0");
  }
}

std::int64_t EpochLimit::next() {
  // relaxed: a counter; the epoch's items are published by the queue, not by this count.
  const std::int64_t epoch = used_.fetch_add(1, std::memory_order_relaxed);
  if (limit_ && epoch >= *limit_) {
    throw Error(ErrorKind::kOutOfRange, "Reached limit of " + std::to_string(*limit_));
  }
  return epoch;
}

std::shared_ptr<FifoQueue<std::string>> string_input_producer(Session& session,
                                                              std::vector<std::string> strings,
                                                              const InputProducerOptions& options) {
  if (strings.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "string_input_producer requires a non-null input tensor");
  }
  return input_producer(session, std::move(strings), options);
}

std::shared_ptr<FifoQueue<std::int64_t>> range_input_producer(Session& session, std::int64_t limit,
                                                              const InputProducerOptions& options) {
  if (limit < 1) throw invalid_argument("range_input_producer limit", limit, "must be >= 1");
  std::vector<std::int64_t> items(static_cast<std::size_t>(limit));
  std::iota(items.begin(), items.end(), std::int64_t{0});
  InputProducerOptions o = options;
  if (o.name == "input_producer") o.name = "range_input_producer";
  return input_producer(session, std::move(items), o);
}

}  // namespace conveyor
