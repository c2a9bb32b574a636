// `conveyor perf`: the performance harness. Sweeps scenarios x queues x thread counts x
// placements x batch sizes x element sizes, one fresh worker process per measurement
// (tools/perf_worker.cc, `conveyor-perf-worker`), peers interleaved with Conveyor: within one
// configuration, rep k runs every queue once, in an order rotated by k (A B C, B C A, ...), so
// drift on a noisy machine hits all queues alike; and rep k of every configuration runs before
// rep k + 1 of any, so each configuration's reps spread over the whole run.
//
// Every measurement probes the PU 0 <-> PU 1 round trip before and after (bench/harness.h) and
// is tagged near (both < 250 ns), far (both >= 250 ns) or mixed; ratios are computed only
// between measurements of one tag. A measurement that stalls (no item consumed for stall_s) or
// passes its time cap is cut and reported with status "livelock" or "time_cap"; a worker that
// dies or hangs is killed and reported "crashed"; a wrong checksum is status "checksum".
//
// The trace scenario (issue 6) measures what tracing (engine/trace.h) costs the pipeline
// scenario's job: `conveyor ingest` over the default dataset, run three ways interleaved per rep,
// each in a fresh process: ConveyorIngestNoTrace in conveyor-perf-worker-notrace (every trace
// point compiled out), ConveyorIngest (compiled in, off: the default) and ConveyorIngestTraced
// (recording, as `conveyor ingest --trace FILE` does, into a temporary file deleted after).
// Each worker first runs one untimed epoch (warms the page cache, counts the dataset), then
// enough epochs for spec.items records. Records carry `tracing` (compiled_out, off, on) and, when
// on, the events recorded and dropped. It runs kTraceRepsFactor x --reps repetitions: its target
// is a difference of a few per cent, which 5 samples of a noisy machine cannot resolve (two
// 5-rep runs an hour apart measured +1.7% and +7.0% for the same build).
//
// Output: a progress bar (stderr, on a terminal), a summary on stdout, and with --json FILE one
// document {"header": {...}, "records": [...]}, one record per measurement with the fields the
// issue lists (record_json()), latency fields null where not measured.
//
// This header holds what the driver (perf.cc), the worker and the tests share: options, the
// measurement spec the driver hands a worker, the record a worker hands back, and the tagging.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace conveyor::tools::perf {

// Scenario names, in the order they run.
inline constexpr std::string_view kScenarios[] = {
    "spsc_pinned", "mpmc", "bulk", "pingpong", "oversub", "shuffle", "pipeline", "element_size", "trace"};
inline constexpr std::string_view kPlacements[] = {"none", "compact", "scatter"};
inline constexpr int kBulkBatches[] = {8, 32, 256};
inline constexpr std::size_t kElementSizes[] = {8, 64, 512, 4096};  // what the worker can run
inline constexpr double kNearRttNs = 250;  // below: near; at or above: far
inline constexpr int kTraceRepsFactor = 3;

// The trace scenario's queues: tracing compiled out, compiled in but off, on.
inline constexpr std::string_view kTraceQueues[] = {"ConveyorIngestNoTrace", "ConveyorIngest",
                                                    "ConveyorIngestTraced"};

// A bad option value: the message names the flag and the value. `conveyor perf` exits 2.
class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct Options {
  bool quick = false;
  std::vector<int> threads;              // producers = consumers per mpmc / shuffle run
  std::vector<std::string> placements;   // mpmc, oversub, shuffle: none, compact, scatter
  std::vector<std::string> queues;       // empty: every queue
  std::vector<std::string> scenarios;    // empty: every scenario
  int reps = 0;                          // 0: 3 with --quick, else 5
  std::uint64_t items = 0;               // 0: per scenario default (smaller with --quick)
  std::vector<std::size_t> element_sizes;  // element_size scenario; empty: all of kElementSizes
  std::string json;                      // write the document here
  std::string worker;                    // worker executable; empty: next to conveyor
  std::string notrace_worker;            // trace scenario, tracing compiled out; empty: the
                                         // worker's path + "-notrace" when it exists
  double cap_s = 0;                      // per measurement; 0: 60 s
  double stall_s = 0;                    // 0: 5 s
  bool progress = true;
  bool fault_drop_item = false;          // test only: every consumer-side checksum must fail
};

// Adds the perf options to `cmd` (CLI11 checks numbers; validate() checks names).
void add_options(CLI::App& cmd, Options& o);

// Checks names and fills defaults for a machine of `cores` PUs. Throws UsageError.
void validate(Options& o, unsigned cores);

// One measurement, as the driver hands it to a worker (--spec JSON).
struct Spec {
  std::string scenario;
  std::string queue;
  int producers = 1;
  int consumers = 1;
  int batch = 1;
  std::string placement = "none";  // none, compact, scatter, or pinned (PU 0 / PU 1)
  std::size_t element_bytes = 8;
  int rep = 0;
  std::uint64_t items = 0;
  double cap_s = 60;
  double stall_s = 5;
  bool fault_drop_item = false;
};
nlohmann::json to_json(const Spec& s);
Spec spec_from_json(const nlohmann::json& j);  // throws nlohmann::json::exception

// What one measurement found.
struct Record {
  Spec spec;
  std::string status = "ok";  // ok, livelock, time_cap, checksum, error, crashed, skipped
  std::string error;
  std::uint64_t items = 0;  // moved (round trips for pingpong, records for pipeline)
  double seconds = 0;
  double cpu_seconds = 0;
  long voluntary_cs = 0;
  long involuntary_cs = 0;
  std::optional<double> p50_ns, p99_ns, p999_ns;  // pingpong only
  double rtt_before_ns = -1;
  double rtt_after_ns = -1;
  bool checksum_ok = false;
  long peak_rss_kb = 0;
  double others_cpu_frac = 0;
  std::optional<double> bytes_per_second;  // element_size only
  double process_seconds = 0;  // the worker process's whole life (start-up, probes, run)
  std::string wait;   // spin or block: how the queue waits
  std::string bound;  // bounded or unbounded
  std::string tracing;  // the worker's trace points: compiled_out, off, or on (recording)
  std::optional<std::uint64_t> trace_events, trace_dropped;  // when on: written, overwritten

  double items_per_second() const { return seconds > 0 ? static_cast<double>(items) / seconds : 0; }
  std::string tag() const;
};

// The record schema, then the extra fields (status, error, tag, peak_rss_kb, ...).
nlohmann::ordered_json record_json(const Record& r);
Record record_from_json(const nlohmann::json& j);

// near / far / mixed, or unknown when a probe failed (-1).
std::string rtt_tag(double before_ns, double after_ns);

// A queue the worker knows, and the scenarios it can run (`conveyor-perf-worker --list`).
struct QueueInfo {
  std::string name;
  std::string wait;   // spin, block
  std::string bound;  // bounded, unbounded
  bool multi_producer_only = false;  // needs >= 2 producers (an unbounded stand-in)
  std::vector<std::string> scenarios;
  bool is_conveyor() const { return name.rfind("Conveyor", 0) == 0; }
};
std::vector<QueueInfo> queues_from_json(const nlohmann::json& j);

// Every measurement of a run, in the order it runs (interleaved, see the top).
std::vector<Spec> make_plan(const Options& o, const std::vector<QueueInfo>& queues,
                            unsigned cores);

// Runs `conveyor perf`; returns the exit code (0 all checksums ok, 1 something failed).
int run(const Options& o, const std::string& command_line);

}  // namespace conveyor::tools::perf
