// conveyor-perf-worker: runs ONE measurement of `conveyor perf` in a fresh process, so no run
// inherits another's heap, page cache state, thread-local caches or leftover threads.
//
//   conveyor-perf-worker --list                 the queues and the scenarios each can run (JSON)
//   conveyor-perf-worker --spec JSON --out FILE one measurement (tools/perf.h Spec) -> FILE
//
// The queues are bench/'s adapters (peers.h, conveyor_adapters.h) and the throughput loop is
// bench/throughput.h, the same code queue_bench measures. Per scenario:
//   spsc_pinned   1 producer on PU 0, 1 consumer on PU 1, one item per call
//   mpmc, oversub P producers, C consumers, placed by topology::make_plan (none: unpinned)
//   bulk          as spsc_pinned, batches of spec.batch through push_burst / pop_burst
//   pingpong      two queues between PU 0 and PU 1; each round trip timed into a LogHistogram
//   shuffle       ShuffleQueue vs the TF-style mutex shuffle queue (bench/mutex_shuffle.h),
//                 P producers, C consumers, capacity 1024, min_after_dequeue 256
//   pipeline      the ingest pipeline (tools/ingest.h) over its default dataset, one epoch,
//                 spec.producers reader threads
//   element_size  1P1C pinned, payloads of element_bytes (8 B .. 4 KiB) copied in and out
//   trace         the pipeline's job, one untimed epoch then >= spec.items records, with
//                 tracing off (ConveyorIngest), on (ConveyorIngestTraced) or, in the worker
//                 built with CONVEYOR_TRACING=0 (conveyor-perf-worker-notrace), compiled out
//                 (ConveyorIngestNoTrace)
// Every measurement: PU 0 <-> PU 1 round trip before and after, process CPU and context
// switches over the gated window, peak RSS of this process, checksum of what was received.
// Exit code 0 when the record was written (whatever it says), 2 on a bad spec.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/conveyor_adapters.h"
#include "bench/harness.h"
#include "bench/mutex_deque.h"
#include "bench/mutex_shuffle.h"
#include "bench/peers.h"
#include "bench/throughput.h"
#include "engine/fifo_queue.h"
#include "engine/shuffle_queue.h"
#include "engine/trace.h"
#include "tools/ingest.h"
#include "tools/log_histogram.h"
#include "tools/perf.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace conveyor::tools::perf {
namespace {

using bench::Item;
using bench::RunControl;
using bench::Watchdog;
using bench::Window;

constexpr unsigned kPuA = 0;  // producer / ping side of the pinned scenarios
constexpr unsigned kPuB = 1;  // consumer / pong side

const topology::Topology& topo() {
  static const topology::Topology t;
  return t;
}

double probe() { return bench::probe_rtt_ns(topo(), kPuA, kPuB); }

bool pinnable() { return topo().num_pus() > kPuB; }

// PU of each thread (producers first, then consumers) for `spec.placement`.
std::vector<std::optional<unsigned>> placement_pus(const Spec& spec) {
  const auto threads = static_cast<std::size_t>(spec.producers + spec.consumers);
  std::vector<std::optional<unsigned>> pus;
  if (spec.placement == "pinned") {
    if (!pinnable()) return pus;
    pus.assign(static_cast<std::size_t>(spec.producers), kPuA);
    pus.resize(threads, kPuB);
    return pus;
  }
  topology::PlanRequest req;
  req.producers = static_cast<unsigned>(spec.producers);
  req.consumers = static_cast<unsigned>(spec.consumers);
  req.policy = topology::parse_policy(spec.placement);
  const topology::Plan plan = topology::make_plan(topo(), req);
  if (!plan.binds()) return pus;
  for (const auto& t : plan.threads()) pus.push_back(t.pu);
  return pus;
}

void fill_window(Record& r, const Window& w) {
  r.seconds = w.wall_s;
  r.cpu_seconds = w.usage.cpu_s;
  r.voluntary_cs = w.usage.vol_switches;
  r.involuntary_cs = w.usage.invol_switches;
  r.others_cpu_frac = w.others_cpu_frac;
}

void fill_verdict(Record& r, Watchdog::Verdict v, double stall_s, double cap_s,
                  std::uint64_t taken, std::uint64_t wanted) {
  if (v == Watchdog::Verdict::kStalled) {
    r.status = "livelock";
    r.error = "no item consumed for " + std::to_string(stall_s) + " s; consumed " +
              std::to_string(taken) + " of " + std::to_string(wanted);
  } else if (v == Watchdog::Verdict::kCapped) {
    r.status = "time_cap";
    r.error = "time cap " + std::to_string(cap_s) + " s hit; consumed " + std::to_string(taken) +
              " of " + std::to_string(wanted);
  }
}

// ---- throughput: spsc_pinned, mpmc, oversub, bulk -------------------------------------------

template <class Q>
Record run_throughput(const Spec& spec) {
  bench::ThroughputSpec t;
  t.producers = spec.producers;
  t.consumers = spec.consumers;
  t.batch = spec.batch;
  t.items = spec.items;
  t.pus = placement_pus(spec);
  t.stall_s = spec.stall_s;
  t.cap_s = spec.cap_s;
  t.drop_one = spec.fault_drop_item;
  Record r;
  r.rtt_before_ns = probe();
  const bench::ThroughputResult out = bench::run_throughput<Q>(t, topo());
  r.rtt_after_ns = probe();
  fill_window(r, out.window);
  r.items = out.wanted;
  r.checksum_ok = out.checksum_ok && out.verdict == Watchdog::Verdict::kFinished;
  fill_verdict(r, out.verdict, spec.stall_s, spec.cap_s, out.taken, out.wanted);
  if (r.status == "ok" && !out.error.empty()) {
    r.status = out.checksum_ok ? "error" : "checksum";
    r.error = out.error;
  }
  return r;
}

// ---- pingpong: round-trip latency -----------------------------------------------------------

template <class Q>
Record run_pingpong(const Spec& spec) {
  const std::uint64_t rounds = std::max<std::uint64_t>(1, spec.items);
  Q there(bench::Shape{bench::kCapacity, 1, 1});
  Q back(bench::Shape{bench::kCapacity, 1, 1});
  RunControl ctl;
  bench::Progress progress;
  LogHistogram hist;
  std::uint64_t done = 0;
  std::uint64_t wrong = 0;
  std::array<std::string, 2> errors;
  Record r;
  r.rtt_before_ns = probe();
  Watchdog watchdog(ctl, progress, spec.stall_s, spec.cap_s, [&] {
    there.wake_all();
    back.wake_all();
  });
  const Window w = bench::run_gated(2, [&](int i, auto& ready, auto& go) {
    if (pinnable()) bench::pin_or_record(topo(), i == 0 ? kPuA : kPuB, errors[static_cast<std::size_t>(i)]);
    if (i == 0) {  // ping: sends k, expects k + 1
      typename Q::Producer tx(there);
      typename Q::Consumer rx(back);
      auto local = std::make_unique<LogHistogram>();  // off the shared stack lines
      std::uint64_t ok_rounds = 0, bad = 0;
      bench::arrive_and_wait(ready, go);
      for (std::uint64_t k = 1; k <= rounds; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        if (!tx.push(k, ctl)) break;
        Item v = 0;
        if (!rx.pop(v, ctl)) break;
        const auto t1 = std::chrono::steady_clock::now();
        local->record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
        // Test-only fault: the first reply counts as lost.
        if (v != k + 1 || (spec.fault_drop_item && k == 1)) bad += 1;
        ok_rounds += 1;
        progress.add(1);  // outside the timed round trip; the watchdog sees every one
      }
      hist.merge(*local);
      done = ok_rounds;
      wrong = bad;
    } else {  // pong: returns v + 1
      typename Q::Consumer rx(there);
      typename Q::Producer tx(back);
      bench::arrive_and_wait(ready, go);
      for (std::uint64_t k = 1; k <= rounds; ++k) {
        Item v = 0;
        if (!rx.pop(v, ctl)) break;
        if (!tx.push(v + 1, ctl)) break;
      }
    }
  });
  watchdog.finish();
  r.rtt_after_ns = probe();
  fill_window(r, w);
  r.items = done;
  r.checksum_ok = done == rounds && wrong == 0;
  r.p50_ns = static_cast<double>(hist.percentile(0.50));
  r.p99_ns = static_cast<double>(hist.percentile(0.99));
  r.p999_ns = static_cast<double>(hist.percentile(0.999));
  fill_verdict(r, watchdog.verdict(), spec.stall_s, spec.cap_s, done, rounds);
  for (const auto& e : errors) {
    if (!e.empty() && r.status == "ok") {
      r.status = "error";
      r.error = "placement failed: " + e;
    }
  }
  if (r.status == "ok" && !r.checksum_ok) {
    r.status = "checksum";
    r.error = std::to_string(wrong) + " of " + std::to_string(done) + " round trips came back wrong";
  }
  return r;
}

// ---- shuffle: ShuffleQueue vs the TF-style mutex shuffle queue ------------------------------

constexpr std::int64_t kShuffleCapacity = 1024;
constexpr std::int64_t kShuffleMin = 256;

struct ConveyorShuffleSide {
  static constexpr std::string_view kName = "ConveyorShuffle";
  ShuffleQueue<std::uint64_t> q{kShuffleCapacity, kShuffleMin, 1, "perf"};
  bool enqueue(std::uint64_t v) { return q.enqueue(std::move(v)) == Status::kOk; }
  bool dequeue(std::uint64_t& v) { return q.dequeue(v) == Status::kOk; }
  void close() { (void)q.close(); }
  void cancel() { (void)q.close(CloseMode::kCancelPendingEnqueues); }
};

struct MutexShuffleSide {
  static constexpr std::string_view kName = "TFMutexShuffle";
  bench::MutexShuffleQueue<std::uint64_t> q{kShuffleCapacity, kShuffleMin, 1};
  bool enqueue(std::uint64_t v) { return q.enqueue(v); }
  bool dequeue(std::uint64_t& v) { return q.dequeue(v); }
  void close() { q.close(); }
  void cancel() { q.cancel(); }
};

template <class Side>
Record run_shuffle(const Spec& spec) {
  const int P = spec.producers;
  const int C = spec.consumers;
  const auto per = std::max<std::uint64_t>(1, spec.items / static_cast<std::uint64_t>(P));
  const std::uint64_t n = per * static_cast<std::uint64_t>(P);
  const auto pus = placement_pus(spec);
  Side side;
  RunControl ctl;
  bench::Progress progress;
  std::atomic<int> producers_left{P};
  std::vector<CachePadded<bench::WorkerResult>> results(static_cast<std::size_t>(P + C));
  Record r;
  r.rtt_before_ns = probe();
  Watchdog watchdog(ctl, progress, spec.stall_s, spec.cap_s, [&] { side.cancel(); });
  const Window w = bench::run_gated(P + C, [&](int i, auto& ready, auto& go) {
    bench::WorkerResult& res = *results[static_cast<std::size_t>(i)];
    if (static_cast<std::size_t>(i) < pus.size()) bench::pin_or_record(topo(), pus[static_cast<std::size_t>(i)], res.error);
    bench::arrive_and_wait(ready, go);
    if (i < P) {
      const auto stride = static_cast<std::uint64_t>(P);
      for (std::uint64_t k = 0; k < per; ++k) {
        if (!side.enqueue(static_cast<std::uint64_t>(i) + 1 + k * stride)) break;
      }
      // acq_rel: the last producer out closes after every producer's enqueues.
      if (producers_left.fetch_sub(1, std::memory_order_acq_rel) == 1) side.close();
    } else {
      std::uint64_t v = 0;
      bool drop = spec.fault_drop_item && i == P;
      std::uint64_t since = 0;
      while (side.dequeue(v)) {
        res.count += 1;
        if (drop) {
          drop = false;
        } else {
          res.sum += v;
          res.sum_sq += v * v;
        }
        if (++since == bench::kProgressStep) {
          progress.add(since);
          since = 0;
        }
      }
      progress.add(since);
    }
  });
  watchdog.finish();
  r.rtt_after_ns = probe();
  fill_window(r, w);
  std::uint64_t taken = 0, sum = 0, sum_sq = 0;
  for (int c = P; c < P + C; ++c) {
    taken += results[static_cast<std::size_t>(c)]->count;
    sum += results[static_cast<std::size_t>(c)]->sum;
    sum_sq += results[static_cast<std::size_t>(c)]->sum_sq;
  }
  r.items = n;
  r.checksum_ok = taken == n && sum == bench::sum_to(n) && sum_sq == bench::sum_sq_to(n);
  fill_verdict(r, watchdog.verdict(), spec.stall_s, spec.cap_s, taken, n);
  if (r.status == "ok" && !r.checksum_ok) {
    r.status = "checksum";
    r.error = "consumed " + std::to_string(taken) + " of " + std::to_string(n) +
              " or a value lost or duplicated";
  }
  return r;
}

// ---- pipeline and trace: the ingest job -----------------------------------------------------

// A temporary file's path (the file exists, empty); removed by the destructor.
struct TempFile {
  std::string path;
  explicit TempFile(const char* stem) {
    std::string t = std::string("/tmp/") + stem + "-XXXXXX";
    const int fd = mkstemp(t.data());
    if (fd < 0) throw std::runtime_error("cannot create a temporary file");
    close(fd);
    path = t;
  }
  ~TempFile() { std::remove(path.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

// One `conveyor ingest` run of `epochs` epochs over the default dataset, spec.producers reader
// threads. traced: recording into a temporary trace file (deleted after), started before and
// written after the measured window, as `conveyor ingest --trace FILE` does.
Record run_ingest_job(const Spec& spec, std::int64_t epochs, bool traced) {
  Record r;
  TempFile summary("conveyor-perf-ingest");
  IngestOptions o;
  o.epochs = epochs;
  o.readers = spec.producers;
  o.progress = false;
  o.json = summary.path;
  std::optional<TempFile> trace_file;
  r.rtt_before_ns = probe();
#if CONVEYOR_TRACING
  if (traced) {
    trace_file.emplace("conveyor-perf-trace");
    conveyor::trace::Options trace_options;
    trace_options.path = trace_file->path;
    trace_options.events_per_thread = std::size_t{1} << 19;  // as `conveyor ingest --trace`
    conveyor::trace::start(trace_options);
  }
#else
  if (traced) throw std::invalid_argument("this worker has tracing compiled out");
#endif
  const bench::Usage u0 = bench::Usage::now();
  const auto t0 = std::chrono::steady_clock::now();
  int code = 1;
  try {
    code = run_ingest(o);
  } catch (...) {
#if CONVEYOR_TRACING
    if (traced) (void)conveyor::trace::stop();
#endif
    throw;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bench::Usage used = bench::Usage::now() - u0;
#if CONVEYOR_TRACING
  if (traced) {
    const conveyor::trace::Summary written = conveyor::trace::stop();
    r.trace_events = written.events;
    r.trace_dropped = written.dropped;
  }
#endif
  r.rtt_after_ns = probe();
  nlohmann::json doc;
  try {
    std::ifstream in(summary.path);
    doc = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    r.status = "error";
    r.error = std::string("ingest summary unreadable: ") + e.what();
  }
  r.cpu_seconds = used.cpu_s;  // includes the dataset check and the readers' startup
  r.voluntary_cs = used.vol_switches;
  r.involuntary_cs = used.invol_switches;
  if (r.status == "ok") {
    r.items = doc.value("records", std::uint64_t{0});
    r.seconds = doc.value("seconds", wall);  // the pipeline's own window: first to last batch
    r.checksum_ok = code == 0 && doc.value("exactly_once", false) && !spec.fault_drop_item;
    if (!r.checksum_ok) {
      r.status = "checksum";
      r.error = spec.fault_drop_item ? "fault injected" : "not exactly once: " + doc.value("error", std::string());
    }
  }
  return r;
}

Record run_pipeline(const Spec& spec) { return run_ingest_job(spec, 1, false); }

// trace: one untimed epoch first (warms the page cache for every variant alike and counts the
// dataset's records), then enough epochs for spec.items records.
Record run_trace(const Spec& spec) {
  Spec warm = spec;
  warm.fault_drop_item = false;
  const Record first = run_ingest_job(warm, 1, false);
  if (first.status != "ok" || first.items == 0) {
    Record r = first;
    if (r.status == "ok") r.status = "error";
    r.error = "warm-up epoch failed: " + first.error;
    return r;
  }
  const auto epochs = static_cast<std::int64_t>((spec.items + first.items - 1) / first.items);
  return run_ingest_job(spec, std::max<std::int64_t>(1, epochs),
                        spec.queue == kTraceQueues[2]);
}

// ---- element_size: payload copies -----------------------------------------------------------

template <std::size_t N>
struct Blob {
  static_assert(N % 8 == 0 && N >= 8);
  std::array<std::uint64_t, N / 8> w;
};

// A minimal adapter per queue for Blob<N> (bench/peers.h's adapters move u64 only).
template <class T>
struct ConveyorSpscBlob {
  FifoQueue<T, Spsc> q{static_cast<std::int64_t>(bench::kCapacity), "perf"};
  bool push(const T& v, const RunControl& ctl) {
    return bench::spin_then_yield(ctl, [&] { return q.try_enqueue(T(v)) == Status::kOk; });
  }
  bool pop(T& v, const RunControl& ctl) {
    return bench::spin_then_yield(ctl, [&] { return q.try_dequeue(v) == Status::kOk; });
  }
  void wake_all() { (void)q.close(CloseMode::kCancelPendingEnqueues); }
};
template <class T>
struct ConveyorBlob {
  FifoQueue<T, Mpmc> q{static_cast<std::int64_t>(bench::kCapacity), "perf"};
  bool push(const T& v, const RunControl&) { return q.enqueue(T(v)) == Status::kOk; }
  bool pop(T& v, const RunControl&) { return q.dequeue(v) == Status::kOk; }
  void wake_all() { (void)q.close(CloseMode::kCancelPendingEnqueues); }
};
template <class T>
struct BoostSpscBlob {
  boost::lockfree::spsc_queue<T, boost::lockfree::capacity<bench::kCapacity>> q;
  bool push(const T& v, const RunControl& ctl) {
    return bench::spin_then_yield(ctl, [&] { return q.push(v); });
  }
  bool pop(T& v, const RunControl& ctl) {
    return bench::spin_then_yield(ctl, [&] { return q.pop(v); });
  }
  void wake_all() {}
};
template <class T>
struct RwqBlob {
  moodycamel::ReaderWriterQueue<T> q{bench::kCapacity - 1};
  bool push(const T& v, const RunControl& ctl) {
    return bench::spin_then_yield(ctl, [&] { return q.try_enqueue(v); });
  }
  bool pop(T& v, const RunControl& ctl) {
    return bench::spin_then_yield(ctl, [&] { return q.try_dequeue(v); });
  }
  void wake_all() {}
};
template <class T>
struct MutexDequeBlob {
  bench::MutexDequeQueue<T> q{bench::kCapacity};
  bool push(const T& v, const RunControl&) { return q.enqueue(v); }
  bool pop(T& v, const RunControl&) { return q.dequeue(v); }
  void wake_all() { q.cancel(); }
};

constexpr std::string_view kBlobQueues[] = {"Conveyor", "ConveyorSpsc", "BoostSpsc",
                                            "MoodycamelRwq", "MutexDeque"};
const char* blob_wait(std::string_view q) {
  return q == "Conveyor" || q == "MutexDeque" ? "block" : "spin";
}

template <class Q, std::size_t N>
Record run_blob(const Spec& spec) {
  using T = Blob<N>;
  const std::uint64_t n = std::max<std::uint64_t>(1, spec.items);
  auto queue = std::make_unique<Q>();
  RunControl ctl;
  bench::Progress progress;
  std::array<std::string, 2> errors;
  std::uint64_t taken = 0, sum = 0, sum_sq = 0, torn = 0;
  Record r;
  r.rtt_before_ns = probe();
  Watchdog watchdog(ctl, progress, spec.stall_s, spec.cap_s, [&] { queue->wake_all(); });
  const Window w = bench::run_gated(2, [&](int i, auto& ready, auto& go) {
    if (pinnable()) bench::pin_or_record(topo(), i == 0 ? kPuA : kPuB, errors[static_cast<std::size_t>(i)]);
    T b;
    b.w.fill(0x5a5a5a5a5a5a5a5aULL);
    bench::arrive_and_wait(ready, go);
    if (i == 0) {
      for (std::uint64_t k = 1; k <= n; ++k) {
        b.w.front() = k;
        b.w.back() = k;
        if (!queue->push(b, ctl)) break;
      }
    } else {
      // Locals, stored once at the end: the shared results must not share a line with what
      // the producer reads while it runs.
      bool drop = spec.fault_drop_item;
      std::uint64_t since = 0, got = 0, s1 = 0, s2 = 0, bad = 0;
      for (; got < n; ++got) {
        if (!queue->pop(b, ctl)) break;
        if (b.w.back() != b.w.front()) bad += 1;
        if (drop) {
          drop = false;
        } else {
          s1 += b.w.front();
          s2 += b.w.front() * b.w.front();
        }
        if (++since == bench::kProgressStep) {
          progress.add(since);
          since = 0;
        }
      }
      progress.add(since);
      taken = got;
      sum = s1;
      sum_sq = s2;
      torn = bad;
    }
  });
  watchdog.finish();
  r.rtt_after_ns = probe();
  fill_window(r, w);
  r.items = n;
  r.checksum_ok = taken == n && torn == 0 && sum == bench::sum_to(n) && sum_sq == bench::sum_sq_to(n);
  r.bytes_per_second = r.seconds > 0 ? static_cast<double>(n * N) / r.seconds : 0;
  fill_verdict(r, watchdog.verdict(), spec.stall_s, spec.cap_s, taken, n);
  for (const auto& e : errors) {
    if (!e.empty() && r.status == "ok") {
      r.status = "error";
      r.error = "placement failed: " + e;
    }
  }
  if (r.status == "ok" && !r.checksum_ok) {
    r.status = "checksum";
    r.error = "consumed " + std::to_string(taken) + " of " + std::to_string(n) + ", " +
              std::to_string(torn) + " torn, or a value lost or duplicated";
  }
  return r;
}

template <std::size_t N>
Record run_blob_queue(const Spec& spec) {
  using T = Blob<N>;
  const std::string& q = spec.queue;
  if (q == "Conveyor") return run_blob<ConveyorBlob<T>, N>(spec);
  if (q == "ConveyorSpsc") return run_blob<ConveyorSpscBlob<T>, N>(spec);
  if (q == "BoostSpsc") return run_blob<BoostSpscBlob<T>, N>(spec);
  if (q == "MoodycamelRwq") return run_blob<RwqBlob<T>, N>(spec);
  if (q == "MutexDeque") return run_blob<MutexDequeBlob<T>, N>(spec);
  throw std::invalid_argument("element_size: unknown queue '" + q + "'");
}

Record run_element_size(const Spec& spec) {
  switch (spec.element_bytes) {
    case 8: return run_blob_queue<8>(spec);
    case 64: return run_blob_queue<64>(spec);
    case 512: return run_blob_queue<512>(spec);
    case 4096: return run_blob_queue<4096>(spec);
    default:
      throw std::invalid_argument("element_size: element_bytes = " +
                                  std::to_string(spec.element_bytes) +
                                  ": expected one of 8, 64, 512, 4096");
  }
}

// ---- the queue table ------------------------------------------------------------------------

struct QueueEntry {
  QueueInfo info;
  Record (*throughput)(const Spec&);
  Record (*pingpong)(const Spec&);
};

template <class Q>
QueueEntry entry() {
  QueueEntry e;
  e.info.name = std::string(Q::kName);
  e.info.wait = Q::kWait == bench::Wait::kSpin ? "spin" : "block";
  e.info.bound = Q::kBound == bench::Bound::kBounded ? "bounded" : "unbounded";
  e.info.multi_producer_only = Q::kThreads == bench::Threads::kMultiProducer;
  if (Q::kThreads != bench::Threads::kMultiProducer) {
    e.info.scenarios.push_back("spsc_pinned");
    e.info.scenarios.push_back("pingpong");
  }
  if (Q::kThreads != bench::Threads::kSpsc) {
    e.info.scenarios.push_back("mpmc");
    e.info.scenarios.push_back("oversub");
  }
  if (Q::kBurst != bench::Burst::kNone) e.info.scenarios.push_back("bulk");
  for (std::string_view b : kBlobQueues) {
    if (b == Q::kName) e.info.scenarios.push_back("element_size");
  }
  e.throughput = &run_throughput<Q>;
  e.pingpong = &run_pingpong<Q>;
  return e;
}

const std::vector<QueueEntry>& table() {
  static const std::vector<QueueEntry> t = {
      entry<bench::ConveyorMpmcBlocking>(),  entry<bench::ConveyorSpscTry>(),
      entry<bench::ConveyorSpscBlocking>(),  entry<bench::MoodycamelCq>(),
      entry<bench::MoodycamelCqUnbounded>(), entry<bench::MoodycamelBlocking>(),
      entry<bench::MoodycamelBlockingUnbounded>(), entry<bench::MoodycamelRwq>(),
      entry<bench::BoostSpsc>(),             entry<bench::BoostQueue>(),
      entry<bench::TbbBounded>(),            entry<bench::MutexDeque>(),
      entry<bench::XeniumVyukov>(),
  };
  return t;
}

nlohmann::json list_json() {
  nlohmann::json queues = nlohmann::json::array();
  auto add = [&](const QueueInfo& i) {
    queues.push_back({{"name", i.name},
                      {"wait", i.wait},
                      {"bound", i.bound},
                      {"multi_producer_only", i.multi_producer_only},
                      {"scenarios", i.scenarios}});
  };
  for (const QueueEntry& e : table()) add(e.info);
  add({"ConveyorShuffle", "block", "bounded", false, {"shuffle"}});
  add({"TFMutexShuffle", "block", "bounded", false, {"shuffle"}});
  // trace: tracing compiled in (off, and on) here; compiled out in conveyor-perf-worker-notrace.
#if CONVEYOR_TRACING
  add({"ConveyorIngest", "block", "bounded", false, {"pipeline", "trace"}});
  add({std::string(kTraceQueues[2]), "block", "bounded", false, {"trace"}});
#else
  add({"ConveyorIngest", "block", "bounded", false, {"pipeline"}});
  add({std::string(kTraceQueues[0]), "block", "bounded", false, {"trace"}});
#endif
  return {{"queues", queues}};
}

Record run_spec(const Spec& spec) {
  Record r;
  if (spec.scenario == "shuffle") {
    if (spec.queue == "ConveyorShuffle") r = run_shuffle<ConveyorShuffleSide>(spec);
    else if (spec.queue == "TFMutexShuffle") r = run_shuffle<MutexShuffleSide>(spec);
    else throw std::invalid_argument("shuffle: unknown queue '" + spec.queue + "'");
    r.wait = "block";
    r.bound = "bounded";
  } else if (spec.scenario == "pipeline") {
    r = run_pipeline(spec);
    r.wait = "block";
    r.bound = "bounded";
  } else if (spec.scenario == "trace") {
    // CONVEYOR_TRACE in the environment (engine/trace.h) would trace the "off" variant too.
    if (conveyor::trace::enabled()) {
      throw std::invalid_argument("trace: tracing is already on in the worker (" +
                                  std::string(conveyor::trace::kTraceEnvVar) +
                                  " in the environment?); the trace scenario needs it off");
    }
    const bool compiled_in = CONVEYOR_TRACING != 0;
    if (spec.queue != (compiled_in ? kTraceQueues[1] : kTraceQueues[0]) &&
        !(compiled_in && spec.queue == kTraceQueues[2])) {
      throw std::invalid_argument("trace: queue '" + spec.queue + "' is not run by this worker "
                                  "(tracing compiled " + (compiled_in ? "in" : "out") + ")");
    }
    r = run_trace(spec);
    r.wait = "block";
    r.bound = "bounded";
  } else if (spec.scenario == "element_size") {
    r = run_element_size(spec);
    r.wait = blob_wait(spec.queue);
    r.bound = "bounded";
  } else {
    const auto it = std::find_if(table().begin(), table().end(),
                                 [&](const QueueEntry& e) { return e.info.name == spec.queue; });
    if (it == table().end()) throw std::invalid_argument("unknown queue '" + spec.queue + "'");
    if (spec.scenario == "pingpong") {
      r = it->pingpong(spec);
    } else if (spec.scenario == "spsc_pinned" || spec.scenario == "mpmc" ||
               spec.scenario == "oversub" || spec.scenario == "bulk") {
      r = it->throughput(spec);
    } else {
      throw std::invalid_argument("unknown scenario '" + spec.scenario + "'");
    }
    r.wait = it->info.wait;
    r.bound = it->info.bound;
  }
  r.spec = spec;
  r.tracing = CONVEYOR_TRACING == 0                            ? "compiled_out"
              : r.trace_events || conveyor::trace::enabled() ? "on"
                                                             : "off";
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  r.peak_rss_kb = ru.ru_maxrss;
  return r;
}

}  // namespace
}  // namespace conveyor::tools::perf

int main(int argc, char** argv) {
  using namespace conveyor::tools::perf;
  std::string spec_text;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--list") {
      std::printf("%s\n", list_json().dump(2).c_str());
      return 0;
    }
    if ((a == "--spec" || a == "--out") && i + 1 < argc) {
      (a == "--spec" ? spec_text : out_path) = argv[++i];
    } else {
      std::fprintf(stderr, "conveyor-perf-worker: unexpected argument '%s'\n"
                   "usage: conveyor-perf-worker --list | --spec JSON --out FILE\n", argv[i]);
      return 2;
    }
  }
  if (spec_text.empty() || out_path.empty()) {
    std::fprintf(stderr, "usage: conveyor-perf-worker --list | --spec JSON --out FILE\n");
    return 2;
  }
  Spec spec;
  try {
    spec = spec_from_json(nlohmann::json::parse(spec_text));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conveyor-perf-worker: --spec: %s\n", e.what());
    return 2;
  }
  Record r;
  try {
    r = run_spec(spec);
  } catch (const std::exception& e) {
    r.spec = spec;
    r.status = "error";
    r.error = e.what();
  }
  std::ofstream out(out_path);
  out << record_json(r).dump() << "\n";
  out.close();
  if (!out) {
    std::fprintf(stderr, "conveyor-perf-worker: cannot write %s\n", out_path.c_str());
    return 2;
  }
  return 0;
}
