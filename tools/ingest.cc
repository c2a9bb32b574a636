#include "tools/ingest.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/batching.h"
#include "engine/coordinator.h"
#include "engine/dataset.h"
#include "engine/queue_errors.h"
#include "engine/record_reader.h"
#include "engine/session.h"
#include "engine/trace.h"

namespace conveyor::tools {
namespace {

using Clock = std::chrono::steady_clock;

// The default dataset: 8 TFRecord files of 16384 self-checking records (about 35 MB).
DatasetSpec default_spec() {
  DatasetSpec spec;
  spec.files = 8;
  spec.records_per_file = 16384;
  spec.max_payload = 512;
  return spec;
}

std::filesystem::path default_data_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "conveyor" / "dataset";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".cache" / "conveyor" / "dataset";
  }
  return std::filesystem::temp_directory_path() / "conveyor-dataset";
}

// One example as the consumer sees it: which record of which file, in which epoch.
struct Example {
  std::uint32_t file = 0;       // index in the file list
  std::uint64_t offset = 0;     // of the record in its file
  std::uint64_t id = 0;         // the dataset's record id (dataset mode)
  std::uint32_t bytes = 0;      // record size
  std::int32_t epoch = 0;
};

struct FileTask {
  std::uint32_t index = 0;
  std::string path;
};

// What the reader threads saw, to check the consumer against: records read per epoch.
struct ReadCounts {
  std::atomic<std::uint64_t> records{0};
  std::atomic<std::uint64_t> bytes{0};
};

// A reader thread's source: records of the files it takes from the filename queue, one file at
// a time; OutOfRange once that queue is closed and drained (the runner's "closed" kind).
class ReaderSource {
 public:
  ReaderSource(std::shared_ptr<FifoQueue<Epoch<FileTask>>> files, bool checked_records,
               std::shared_ptr<ReadCounts> counts)
      : files_(std::move(files)), checked_(checked_records), counts_(std::move(counts)) {}

  Example operator()() {
    for (;;) {
      if (reader_) {
        std::optional<Record> record = reader_->next();  // DataLoss on a corrupt record
        if (record) return example_of(*record);
        reader_.reset();
        text_.reset();
      } else if (text_) {
        std::optional<Record> record = text_->next();
        if (record) return example_of(*record);
        text_.reset();
      }
      Epoch<FileTask> task;
      const Status s = files_->dequeue(task);
      if (s == Status::kClosed) throw Error(ErrorKind::kOutOfRange, "no more files to read");
      if (s != Status::kOk) throw queue_error(s, QueueOp::kDequeue, files_->name());
      current_ = std::move(task);
      if (current_.value.path.ends_with(".txt")) {
        text_.emplace(current_.value.path);
      } else {
        reader_.emplace(current_.value.path);
      }
    }
  }

 private:
  Example example_of(const Record& record) {
    Example e;
    e.file = current_.value.index;
    e.offset = record.offset;
    e.bytes = static_cast<std::uint32_t>(record.data.size());
    e.epoch = static_cast<std::int32_t>(current_.epoch);
    if (checked_) {
      const ParsedRecord parsed = parse_record(record.data);
      if (!parsed.ok) {
        throw Error(ErrorKind::kDataLoss, "record at offset " + std::to_string(record.offset) +
                                              " in file '" + current_.value.path +
                                              "' fails its checksum");
      }
      e.id = parsed.id;
    }
    // relaxed: report counters, read after the pipeline is joined.
    counts_->records.fetch_add(1, std::memory_order_relaxed);
    counts_->bytes.fetch_add(record.data.size(), std::memory_order_relaxed);
    return e;
  }

  std::shared_ptr<FifoQueue<Epoch<FileTask>>> files_;
  bool checked_;
  std::shared_ptr<ReadCounts> counts_;
  Epoch<FileTask> current_;
  std::optional<TFRecordReader> reader_;
  std::optional<TextLineReader> text_;
};

// Exactly once per epoch: every (epoch, record) seen once. Dataset mode knows the record ids
// (0 .. records-1) and so also proves that none is missing; other files are keyed by (file,
// offset) and checked against what the readers read.
class ExactlyOnce {
 public:
  ExactlyOnce(std::optional<std::uint64_t> records, std::int64_t epochs)
      : records_(records), epochs_(epochs) {
    if (records_) seen_.assign(*records_ * static_cast<std::uint64_t>(epochs_), 0);
  }

  void add(const Example& e) {
    if (e.epoch < 0 || e.epoch >= epochs_) {
      duplicates_or_strays_ += 1;
      return;
    }
    if (records_) {
      if (e.id >= *records_) {
        duplicates_or_strays_ += 1;
        return;
      }
      std::uint8_t& slot = seen_[static_cast<std::uint64_t>(e.epoch) * *records_ + e.id];
      if (slot != 0) duplicates_or_strays_ += 1;
      slot = 1;
    } else {
      const auto key = std::make_tuple(e.epoch, e.file, e.offset);
      if (!keys_.emplace(key, 1).second) duplicates_or_strays_ += 1;
    }
    received_ += 1;
  }

  // `queued`: examples the enqueue ops put in the shuffle queue; `read`: records the readers
  // read (all epochs). Complete and exactly once: read == queued == received, no duplicate, and
  // in dataset mode every id of every epoch.
  bool verdict(std::uint64_t queued, std::uint64_t read, bool completed) const {
    if (duplicates_or_strays_ != 0 || received_ != queued) return false;
    if (!completed || read != queued) return false;  // stopped early: epochs are incomplete
    if (records_) return received_ == *records_ * static_cast<std::uint64_t>(epochs_);
    return true;
  }
  std::uint64_t received() const noexcept { return received_; }
  std::uint64_t duplicates_or_strays() const noexcept { return duplicates_or_strays_; }

 private:
  std::optional<std::uint64_t> records_;
  std::int64_t epochs_;
  std::vector<std::uint8_t> seen_;
  std::map<std::tuple<std::int32_t, std::uint32_t, std::uint64_t>, int> keys_;
  std::uint64_t received_ = 0;
  std::uint64_t duplicates_or_strays_ = 0;
};

class Progress {
 public:
  Progress(bool enabled, std::uint64_t expected)
      : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1), expected_(expected) {}

  void update(std::uint64_t done, double seconds) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const auto every = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
    if (now - last_ < every) return;
    last_ = now;
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    if (tty_) {
      const double f = expected_ ? std::min(1.0, static_cast<double>(done) / expected_) : 0.0;
      const int width = 30;
      const int filled = static_cast<int>(f * width);
      std::fprintf(stderr, "\r[%s%s] %5.1f%%  %" PRIu64 " records  %.2f M records/s ",
                   std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), 100 * f,
                   done, rate / 1e6);
      drawn_ = true;
    } else {
      std::fprintf(stderr, "ingest: %" PRIu64 " records, %.2f M records/s\n", done, rate / 1e6);
    }
  }
  void finish() {
    if (drawn_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  bool tty_;
  std::uint64_t expected_;
  Clock::time_point last_{};
  bool drawn_ = false;
};

std::string error_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

int run_ingest(const IngestOptions& o) {
  // ---- the files ----
  std::vector<std::string> paths = o.files;
  std::optional<std::uint64_t> dataset_records;
  if (paths.empty()) {
    const std::filesystem::path dir =
        o.data_dir.empty() ? default_data_dir() : std::filesystem::path(o.data_dir);
    const Dataset data = generate_dataset(dir, default_spec());
    for (const auto& p : data.files) paths.push_back(p.string());
    dataset_records = data.records;
    std::fprintf(stderr, "ingest: default dataset in %s (%zu files, %" PRIu64 " records, %.1f MB%s)\n",
                 dir.string().c_str(), data.files.size(), data.records,
                 static_cast<double>(data.bytes) / 1e6, data.generated ? ", generated now" : "");
  }
  for (const std::string& p : paths) {
    if (!std::filesystem::exists(p)) {
      throw invalid_argument("--files", "'" + p + "'", "no such file");
    }
  }
  std::vector<FileTask> tasks;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    tasks.push_back(FileTask{static_cast<std::uint32_t>(i), paths[i]});
  }

  // ---- the pipeline ----
  // Traced from before the queues exist to after the threads are joined.
  struct TraceScope {
    bool on = false;
    ~TraceScope() {
      if (!on) return;
      try {
        (void)conveyor::trace::stop();  // an error path: the trace is still written
      } catch (const std::exception& e) {
        std::fprintf(stderr, "conveyor ingest: trace not written: %s\n", e.what());
      }
    }
  } trace_scope;
  if (!o.trace.empty()) {
    conveyor::trace::Options trace_options;
    trace_options.path = o.trace;
    // A default run (2 epochs) records about 300k events per reader thread: no drops.
    trace_options.events_per_thread = std::size_t{1} << 19;
    conveyor::trace::start(trace_options);
    trace_scope.on = true;
  }
  Session session;
  InputProducerOptions files_options;
  files_options.num_epochs = o.epochs;
  files_options.shuffle = true;
  files_options.seed = o.seed;
  files_options.name = "string_input_producer";
  auto files = input_producer_with_epochs(session, std::move(tasks), files_options);

  auto counts = std::make_shared<ReadCounts>();
  std::vector<ReaderSource> readers;
  for (int i = 0; i < o.readers; ++i) {
    readers.emplace_back(files, dataset_records.has_value(), counts);
  }
  auto stats = std::make_shared<PipelineStats>();
  ShuffleBatchOptions batch_options;
  batch_options.stats = stats;
  batch_options.batch_size = static_cast<std::size_t>(o.batch_size);
  batch_options.capacity = o.capacity;
  batch_options.min_after_dequeue = o.min_after_dequeue;
  batch_options.seed = o.seed;
  batch_options.allow_smaller_final_batch = true;
  batch_options.name = "shuffle_batch_join";
  auto batches = shuffle_batch_join(session, std::move(readers), batch_options);

  ExactlyOnce check(dataset_records, o.epochs);
  const std::uint64_t expected =
      dataset_records ? *dataset_records * static_cast<std::uint64_t>(o.epochs) : 0;
  Progress progress(o.progress, expected);

  Coordinator coord;
  const auto t0 = Clock::now();
  RunnerThreads threads = session.start_queue_runners(&coord);
  std::uint64_t batch_count = 0;
  std::exception_ptr consumer_error;
  try {
    while (auto batch = batches.next()) {
      batch_count += 1;
      for (const Example& e : *batch) check.add(e);
      progress.update(check.received(),
                      std::chrono::duration<double>(Clock::now() - t0).count());
    }
  } catch (...) {
    consumer_error = std::current_exception();  // e.g. Cancelled: the stop came mid-batch
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  progress.finish();
  coord.request_stop();
  std::exception_ptr pipeline_error;
  try {
    coord.join();
  } catch (...) {
    pipeline_error = std::current_exception();
  }
  session.close();
  if (trace_scope.on) {
    trace_scope.on = false;
    const conveyor::trace::Summary s = conveyor::trace::stop();
    std::fprintf(stderr,
                 "ingest: trace written to %s: %" PRIu64 " events from %zu threads, %" PRIu64
                 " dropped; see `conveyor trace report %s`\n",
                 s.path.c_str(), s.events, s.threads, s.dropped, s.path.c_str());
  }

  const std::uint64_t read = counts->records.load();
  const bool completed = !pipeline_error && !consumer_error;
  const std::uint64_t queued = stats->queued.load();
  const bool exactly_once = check.verdict(queued, read, completed);
  const double records = static_cast<double>(check.received());
  const double mb = static_cast<double>(counts->bytes.load()) / 1e6;
  const double fill = stats->fill_samples.load() == 0
                          ? 0.0
                          : static_cast<double>(stats->fill_sum_ppm.load()) / 1e6 /
                                static_cast<double>(stats->fill_samples.load());
  const double producer_blocked = static_cast<double>(stats->producer_blocked_ns.load()) / 1e9;
  const double consumer_wait = static_cast<double>(stats->consumer_wait_ns.load()) / 1e9;

  std::printf("files: %zu x %" PRId64 " epochs, %d readers, batch %" PRId64 ", capacity %" PRId64
              ", min_after_dequeue %" PRId64 ", seed %" PRIu64 "\n",
              paths.size(), o.epochs, o.readers, o.batch_size, o.capacity, o.min_after_dequeue,
              o.seed);
  std::printf("records: %.0f in %.3f s = %.2f M records/s, %.0f batches/s, %.1f MB/s\n", records,
              seconds, records / seconds / 1e6, static_cast<double>(batch_count) / seconds,
              mb / seconds);
  std::printf("blocked: producers on full %.3f s (over %d reader threads), consumer waiting %.3f s; "
              "shuffle queue fill above min_after_dequeue %.0f%%\n",
              producer_blocked, o.readers, consumer_wait, 100 * fill);
  std::printf("exactly once per epoch: %s (%" PRIu64 " read, %" PRIu64 " queued, %.0f received, %" PRIu64
              " duplicated or stray)\n",
              exactly_once ? "yes" : "NO", read, queued, records, check.duplicates_or_strays());
  if (pipeline_error) {
    std::fprintf(stderr, "conveyor ingest: pipeline stopped: %s\n",
                 error_text(pipeline_error).c_str());
    std::fprintf(stderr,
                 "conveyor ingest: %s every example queued before the stop was consumed (%" PRIu64
                 " of %" PRIu64 ", in %" PRIu64 " batches)\n",
                 check.received() == queued ? "ok:" : "LOST:", check.received(), queued,
                 batch_count);
  } else if (consumer_error) {
    std::fprintf(stderr, "conveyor ingest: %s\n", error_text(consumer_error).c_str());
  }

  if (!o.json.empty()) {
    nlohmann::ordered_json doc = {
        {"records", check.received()},
        {"batches", batch_count},
        {"seconds", seconds},
        {"records_per_second", records / seconds},
        {"batches_per_second", static_cast<double>(batch_count) / seconds},
        {"megabytes_per_second", mb / seconds},
        {"exactly_once", exactly_once},
        {"read", read},
        {"queued", queued},
        {"producer_blocked_seconds", producer_blocked},
        {"consumer_wait_seconds", consumer_wait},
        {"queue_fill", fill},
        {"files", paths.size()},
        {"epochs", o.epochs},
        {"readers", o.readers},
        {"batch_size", o.batch_size},
        {"capacity", o.capacity},
        {"min_after_dequeue", o.min_after_dequeue},
        {"seed", o.seed},
        {"error", pipeline_error ? error_text(pipeline_error) : ""},
    };
    std::ofstream out(o.json);
    out << doc.dump(2) << "\n";
    if (!out) throw invalid_argument("--json", "'" + o.json + "'", "cannot be written");
  }
  return exactly_once && !pipeline_error && !consumer_error ? 0 : 1;
}

}  // namespace conveyor::tools
