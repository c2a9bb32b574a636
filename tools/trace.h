// `conveyor trace`: reads what engine/trace.h records and shows where a pipeline waits.
//
//   conveyor trace record [-o FILE] [--events N] -- <command> [args...]
//       runs the command with CONVEYOR_TRACE=FILE (any program linked with Conveyor)
//   conveyor trace report FILE [--json | --html OUT] [--top N]
//       per queue: time producers were blocked on full and consumers on empty (and who),
//       occupancy percentiles over time, wake latency percentiles; the top stalls with their
//       threads; per thread: busy / blocked / parked fractions, runner ops; coordinator events;
//       dropped events
//   conveyor trace export FILE --format perfetto [-o OUT]
//       Chrome trace event JSON (ui.perfetto.dev, chrome://tracing): one track per thread,
//       named as the thread, with blocked / parked / op / join spans (B/E), instants for close,
//       stop, first error and batches, and a counter track per queue for its occupancy
//
// Definitions used by the report:
//  - blocked: inside a queue operation that had to wait (engine/trace.h Side: full, empty, close
//    wait), from before it registers as a waiter until it is done, spinning or asleep.
//  - parked: asleep in the kernel (a futex wait), in a queue or elsewhere (join, stop wait).
//  - busy: the rest of the thread's observed lifetime (from its start, or the trace's start, to
//    its end, or the trace's end). busy + blocked-not-parked + parked = 100%.
//  - occupancy: time-weighted over the samples a queue's events carry (its size when an
//    operation starts and stops waiting, after each assembled batch, ShuffleQueue samples); each
//    sample holds until the queue's next one.
//  - wake latency: from the futex wake that ended a blocked thread's sleep (the last wake of the
//    same futex word before the sleeper returned) to the sleeper running again.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/trace.h"

namespace conveyor::tools::trace {

using conveyor::trace::Kind;
using conveyor::trace::Side;

struct Event {
  std::uint64_t ns = 0;  // since the trace started
  std::uint32_t thread = 0;
  std::uint32_t object = 0;
  Kind kind{};
  std::uint16_t aux = 0;
  std::uint64_t payload = 0;
};

struct ThreadInfo {
  std::uint32_t index = 0;
  long tid = 0;
  std::string name;
  std::uint64_t events = 0;
  std::uint64_t dropped = 0;
};

struct ObjectInfo {
  std::uint32_t id = 0;
  std::string kind;  // fifo_queue, shuffle_queue, runner, coordinator
  std::string name;
  std::int64_t capacity = 0;
};

struct Trace {
  std::string program;
  long pid = 0;
  std::string clock;
  std::uint64_t duration_ns = 0;
  std::uint64_t ring_events = 0;
  std::uint64_t dropped = 0;
  std::vector<ThreadInfo> threads;
  std::map<std::uint32_t, ObjectInfo> objects;
  std::vector<Event> events;  // each thread's events contiguous, in order

  const ThreadInfo* thread(std::uint32_t index) const;
  std::string thread_name(std::uint32_t index) const;  // "thread <tid>" when unnamed
  std::string object_name(std::uint32_t id) const;     // "#<id>" when unknown
};

// Reads a trace file. InvalidArgument naming the path and what is wrong (missing, not a trace,
// unknown version, truncated).
Trace read_trace(const std::string& path);

struct Percentiles {
  std::uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

struct Stall {
  std::uint32_t queue = 0;
  std::uint32_t thread = 0;
  Side side = Side::kFull;
  std::uint64_t begin_ns = 0;
  std::uint64_t duration_ns = 0;
};

struct QueueReport {
  std::uint32_t id = 0;
  std::string name;
  std::string kind;
  std::int64_t capacity = 0;
  std::uint64_t blocked_ns[4] = {};  // by Side (index 1 full, 2 empty, 3 close)
  std::uint64_t waits[4] = {};
  std::map<std::uint32_t, std::uint64_t> blocked_by_thread[4];  // thread -> ns, by Side
  Percentiles occupancy;     // elements, time-weighted
  std::vector<std::pair<std::uint64_t, std::uint64_t>> occupancy_samples;  // (ns, size), <= 2000
  Percentiles wake_latency;  // nanoseconds
  std::uint64_t batches = 0;
  std::uint64_t batched_elements = 0;
  std::vector<std::pair<std::uint64_t, bool>> closes;  // (ns, cancel pending enqueues)
};

struct ThreadReport {
  std::uint32_t index = 0;
  long tid = 0;
  std::string name;
  std::uint64_t lifetime_ns = 0;
  std::uint64_t busy_ns = 0;
  std::uint64_t blocked_ns = 0;  // in queue waits, not asleep
  std::uint64_t parked_ns = 0;   // asleep (futex), anywhere
  std::uint64_t ops = 0;
  std::uint64_t op_ns = 0;
  std::uint64_t failed_ops = 0;
  std::uint64_t events = 0;
  std::uint64_t dropped = 0;
};

struct CoordinatorReport {
  std::uint32_t id = 0;
  std::vector<std::pair<std::uint64_t, bool>> stops;  // (ns, with an error)
  std::optional<std::pair<std::uint64_t, ErrorKind>> first_error;
  std::uint64_t joins = 0;
  std::uint64_t join_ns = 0;
};

struct Report {
  std::string program;
  long pid = 0;
  std::uint64_t duration_ns = 0;
  std::uint64_t events = 0;
  std::uint64_t dropped = 0;
  std::vector<QueueReport> queues;  // most blocked first
  std::vector<Stall> top_stalls;    // longest first
  std::vector<ThreadReport> threads;
  std::vector<CoordinatorReport> coordinators;
};

// "full", "empty" or "close": a blocked span's side, as reports and exports name it.
std::string side_name(Side side);

// Reading and analysis: tools/trace.cc; the report's forms: trace_report.cc; export:
// trace_export.cc.
Report analyze(const Trace& trace, std::size_t top_stalls = 10);
std::string report_text(const Report& report, const Trace& trace);
nlohmann::ordered_json report_json(const Report& report, const Trace& trace);
// One self-contained HTML page: the text report's tables, an occupancy plot per queue (SVG) and
// a busy / blocked / parked bar per thread.
std::string report_html(const Report& report, const Trace& trace);
// Chrome trace event format ({"traceEvents": [...]}): every B has its E on the same thread
// (spans cut short by dropped events are closed at the thread's last event, ends whose begin
// was dropped are left out), timestamps in microseconds, non-decreasing per thread.
nlohmann::ordered_json export_perfetto(const Trace& trace);

// `conveyor trace record`: runs `command` with CONVEYOR_TRACE=path; returns its exit code
// (128 + signal if killed), or 1 if it wrote no trace. Prints a one-line summary to stderr.
int run_record(const std::string& path, std::size_t events_per_thread,
               const std::vector<std::string>& command);

}  // namespace conveyor::tools::trace
