// queue_bench: Conveyor's FifoQueue against peer queues, one harness, one process, interleaved.
//
// Benchmarks are named BM_<Queue>_<Scenario>/p:<producers>/c:<consumers>/batch:<n>/rep:<k>.
// Scenarios:
//   Spsc1P1C      1 producer on PU 0, 1 consumer on PU 1 (pinned through topology/topology.h).
//   Mpmc2P2C      2 producers, 2 consumers, unpinned.
//   Mpmc4P4C      4 producers, 4 consumers, unpinned (oversubscribed on a 2-PU machine).
//   SpscBatch32   as Spsc1P1C, moving batches of 32 (queues without a batch API are absent).
//   IdleConsumer  pinned as Spsc1P1C; the producer sends one item every 50 ms for --idle_s
//                 seconds; reports the consumer thread's CPU fraction and the wake latency
//                 (enqueue to the consumer holding the item), median and p90.
// Every throughput run moves --items distinct values (producer p sends p+1, p+1+P, p+1+2P...);
// consumers know their share (items / consumers) and sum what they take; the run fails
// (SkipWithError) unless the sum and count match. A run in which no item is consumed for
// --stall_s (a livelock, a starved producer, a lost wake-up), or that passes --cap_s, is cut by
// a watchdog and reported as such, never left to hang; later reps of that queue and scenario
// are then skipped with the reason (each would only burn another stall).
//
// Interleaving. Google Benchmark runs all repetitions of one benchmark before the next, which
// lets machine drift (other tenants, frequency, migration of vCPUs) masquerade as a difference
// between queues. So each (queue, scenario) is registered --reps times, as separate instances
// .../rep:k each run once (Iterations(1)), in the order: scenario by scenario; within a
// scenario rep 0 of every queue, then rep 1 of every queue, ...; and the queue order rotates by
// one each rep (A B C, B C A, C A B, ...) so no queue always runs first after a scenario change.
// --benchmark_repetitions still works on top (each instance then repeats back to back);
// make_perf.py pools every run of a (queue, scenario) and takes medians.
//
// Timing. UseManualTime: the reported time is the wall time from releasing the threads (all
// created, pinned and holding their tokens, waiting on a futex gate) to the last join, so thread
// creation, queue construction and the round-trip probes stay outside it; it is still real
// (wall-clock) time, never the main thread's CPU time.
// Counters: items_per_second (rate over that time), cpu_s_per_Mitem (getrusage(RUSAGE_SELF)
// delta over the window, all threads), vol_cs / invol_cs (ru_nvcsw / ru_nivcsw deltas), items,
// rtt_before_ns / rtt_after_ns (median PU 0 <-> PU 1 round trip of an atomic ping-pong, measured
// just before and just after the run; make_perf.py tags runs near or far by it),
// others_cpu_frac (the machine's busy time from /proc/stat, steal included, minus ours, over
// the window's CPU capacity: how much other work shared the machine; 10 ms ticks, so coarse on
// short runs), and for IdleConsumer consumer_cpu_frac, wake_latency_med_us, wake_latency_p90_us.
//
// Flags (removed before Google Benchmark parses the rest; env fallbacks in brackets):
//   --items=N   items per throughput run, default 2^22 [CONVEYOR_BENCH_ITEMS]
//   --reps=N    interleaved instances per (queue, scenario), default 7 (so that make_perf.py
//               still has 5 with one placement tag if the vCPUs move) [CONVEYOR_BENCH_REPS]
//   --stall_s=S cut a run after S seconds without a consumed item, default 5
//               [CONVEYOR_BENCH_STALL_S]
//   --cap_s=S   cut a run after S seconds in all, default 300 [CONVEYOR_BENCH_CAP_S]
//   --idle_s=S  IdleConsumer duration, default 1 [CONVEYOR_BENCH_IDLE_S]
//   --spin_tries=N  tries (each followed by one pause) before the non-blocking queues' wait
//               loop starts yielding, default 64 (harness.h spin_then_yield)
#include <benchmark/benchmark.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alloc/cache_padded.h"
#include "bench/conveyor_adapters.h"
#include "bench/harness.h"
#include "bench/peers.h"
#include "bench/throughput.h"
#include "topology/topology.h"

namespace conveyor::bench {
namespace {

struct Config {
  std::uint64_t items = std::uint64_t{1} << 22;
  int reps = 7;
  double stall_s = 5;
  double cap_s = 300;
  double idle_s = 1;
};
Config g_config;
const topology::Topology* g_topology = nullptr;

constexpr auto kIdlePeriod = std::chrono::milliseconds(50);
constexpr unsigned kProducerPu = 0;
constexpr unsigned kConsumerPu = 1;

enum class Placement : std::uint8_t { kPinned, kUnpinned };
enum class Kind : std::uint8_t { kThroughput, kIdle };

struct Scenario {
  std::string_view name;
  int producers;
  int consumers;
  int batch;
  Placement placement;
  Kind kind;
};

constexpr Scenario kScenarios[] = {
    {"Spsc1P1C", 1, 1, 1, Placement::kPinned, Kind::kThroughput},
    {"Mpmc2P2C", 2, 2, 1, Placement::kUnpinned, Kind::kThroughput},
    {"Mpmc4P4C", 4, 4, 1, Placement::kUnpinned, Kind::kThroughput},
    {"SpscBatch32", 1, 1, 32, Placement::kPinned, Kind::kThroughput},
    {"IdleConsumer", 1, 1, 1, Placement::kPinned, Kind::kIdle},
};

constexpr bool batches_fit() {
  for (const Scenario& sc : kScenarios) {
    if (sc.batch < 1 || sc.batch > kMaxBatch) return false;
  }
  return true;
}
static_assert(batches_fit());

void pin_or_record(const Scenario& sc, unsigned pu, WorkerResult& r) {
  if (sc.placement != Placement::kPinned) return;
  conveyor::bench::pin_or_record(*g_topology, pu, r.error);
}

void set_probe_counters(benchmark::State& state, double before, double after) {
  state.counters["rtt_before_ns"] = before;
  state.counters["rtt_after_ns"] = after;
}

double probe() { return probe_rtt_ns(*g_topology, kProducerPu, kConsumerPu); }

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// "<queue>_<scenario>" pairs a watchdog cut once: their later reps are not run (each would only
// burn another stall) and are reported as skipped, with the reason.
std::set<std::string> g_capped;

std::string pair_key(std::string_view queue, const Scenario& sc) {
  return std::string(queue) + "_" + std::string(sc.name);
}

bool skipped_after_cap(benchmark::State& state, std::string_view queue, const Scenario& sc) {
  if (g_capped.count(pair_key(queue, sc)) == 0) return false;
  state.SkipWithError("not run: an earlier rep of this queue and scenario was cut");
  return true;
}

// True (and the run reported as failed) when the watchdog cut it.
bool report_cut(benchmark::State& state, std::string_view queue, const Scenario& sc,
                Watchdog::Verdict verdict, std::uint64_t taken, std::uint64_t wanted) {
  if (verdict == Watchdog::Verdict::kFinished) return false;
  g_capped.insert(pair_key(queue, sc));
  const std::string what =
      verdict == Watchdog::Verdict::kStalled
          ? "livelock or hang: no item consumed for " + num(g_config.stall_s) + " s"
          : "time cap " + num(g_config.cap_s) + " s hit";
  const std::string msg =
      what + "; consumed " + std::to_string(taken) + " of " + std::to_string(wanted);
  state.SkipWithError(msg.c_str());
  return true;
}

std::string first_error(const std::vector<CachePadded<WorkerResult>>& results) {
  for (const auto& r : results) {
    if (!r->error.empty()) return r->error;
  }
  return {};
}

// ---- throughput scenarios -------------------------------------------------------------------

template <class Q>
void run_throughput(benchmark::State& state, const Scenario& sc) {
  if (skipped_after_cap(state, Q::kName, sc)) return;
  ThroughputSpec spec;
  spec.producers = sc.producers;
  spec.consumers = sc.consumers;
  spec.batch = sc.batch;
  spec.items = g_config.items;
  spec.stall_s = g_config.stall_s;
  spec.cap_s = g_config.cap_s;
  if (sc.placement == Placement::kPinned) {
    spec.pus.assign(static_cast<std::size_t>(sc.producers), kProducerPu);
    spec.pus.resize(static_cast<std::size_t>(sc.producers + sc.consumers), kConsumerPu);
  }

  for (auto _ : state) {
    const double rtt_before = probe();
    const ThroughputResult r = run_throughput<Q>(spec, *g_topology);
    const double rtt_after = probe();
    if (r.error.rfind("placement failed", 0) == 0) {
      state.SkipWithError(r.error.c_str());
      break;
    }
    if (report_cut(state, Q::kName, sc, r.verdict, r.taken, r.wanted)) break;
    if (!r.error.empty()) {
      state.SkipWithError(r.error.c_str());
      break;
    }
    const Window& w = r.window;
    state.SetIterationTime(w.wall_s);
    const double items = static_cast<double>(r.wanted);
    state.counters["items"] = items;
    state.counters["items_per_second"] = benchmark::Counter(items, benchmark::Counter::kIsRate);
    state.counters["cpu_s_per_Mitem"] = w.usage.cpu_s / (items / 1e6);
    state.counters["vol_cs"] = static_cast<double>(w.usage.vol_switches);
    state.counters["invol_cs"] = static_cast<double>(w.usage.invol_switches);
    state.counters["others_cpu_frac"] = w.others_cpu_frac;
    set_probe_counters(state, rtt_before, rtt_after);
  }
}

// ---- idle consumer --------------------------------------------------------------------------

template <class Q>
void run_idle(benchmark::State& state, const Scenario& sc) {
  const auto sends = static_cast<std::uint64_t>(std::max<long long>(
      1, std::llround(g_config.idle_s / std::chrono::duration<double>(kIdlePeriod).count())));
  if (skipped_after_cap(state, Q::kName, sc)) return;

  for (auto _ : state) {
    const double rtt_before = probe();
    Q queue(Shape{kCapacity, 1, 1});
    RunControl ctl;
    std::vector<CachePadded<WorkerResult>> results(2);
    // sent_at[v]: when the producer enqueued item v. Written before the enqueue, read after the
    // dequeue: the queue's own ordering makes it visible.
    std::vector<std::chrono::steady_clock::time_point> sent_at(sends + 1);
    std::vector<double> latency_us;
    latency_us.reserve(sends);
    double consumer_cpu_frac = 0;
    Progress progress;
    Watchdog watchdog(ctl, progress, g_config.stall_s, g_config.cap_s, [&] { queue.wake_all(); });

    const Window w = run_gated(2, [&](int i, auto& ready, auto& go) {
      WorkerResult& r = *results[static_cast<std::size_t>(i)];
      if (i == 0) {
        pin_or_record(sc, kProducerPu, r);
        typename Q::Producer h(queue);
        arrive_and_wait(ready, go);
        const auto start = std::chrono::steady_clock::now();
        for (std::uint64_t v = 1; v <= sends; ++v) {
          std::this_thread::sleep_until(start + v * kIdlePeriod);
          sent_at[v] = std::chrono::steady_clock::now();
          if (!h.push(v, ctl)) break;
          r.count += 1;
        }
      } else {
        pin_or_record(sc, kConsumerPu, r);
        typename Q::Consumer h(queue);
        arrive_and_wait(ready, go);
        const double cpu0 = thread_cpu_s();
        const auto wall0 = std::chrono::steady_clock::now();
        Item v = 0;
        for (std::uint64_t k = 0; k < sends; ++k) {
          if (!h.pop(v, ctl)) break;
          const auto now = std::chrono::steady_clock::now();
          latency_us.push_back(std::chrono::duration<double, std::micro>(now - sent_at[v]).count());
          r.sum += v;
          r.count += 1;
          progress.add(1);
        }
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
        consumer_cpu_frac = wall > 0 ? (thread_cpu_s() - cpu0) / wall : 0;
      }
    });
    watchdog.finish();
    const double rtt_after = probe();

    if (const std::string e = first_error(results); !e.empty()) {
      state.SkipWithError(("placement failed: " + e).c_str());
      break;
    }
    if (report_cut(state, Q::kName, sc, watchdog.verdict(), results[1]->count, sends)) break;
    if (results[1]->count != sends || results[1]->sum != sends * (sends + 1) / 2) {
      state.SkipWithError("checksum mismatch in IdleConsumer");
      break;
    }
    if (const std::string e = queue.after_run(); !e.empty()) {
      state.SkipWithError(("close check failed: " + e).c_str());
      break;
    }
    state.SetIterationTime(w.wall_s);
    std::vector<double> sorted = latency_us;
    std::sort(sorted.begin(), sorted.end());
    state.counters["items"] = static_cast<double>(sends);
    state.counters["consumer_cpu_frac"] = consumer_cpu_frac;
    state.counters["wake_latency_med_us"] = sorted[sorted.size() / 2];
    state.counters["wake_latency_p90_us"] = sorted[(sorted.size() * 9) / 10];
    state.counters["cpu_s"] = w.usage.cpu_s;
    state.counters["vol_cs"] = static_cast<double>(w.usage.vol_switches);
    state.counters["invol_cs"] = static_cast<double>(w.usage.invol_switches);
    state.counters["others_cpu_frac"] = w.others_cpu_frac;
    set_probe_counters(state, rtt_before, rtt_after);
  }
}

// ---- registration ---------------------------------------------------------------------------

using RunFn = void (*)(benchmark::State&, const Scenario&);

struct Entry {
  std::string_view queue;
  RunFn run;
  Wait wait;
  Bound bound;
};

template <class Q>
void add_if_supported(std::vector<Entry>& out, const Scenario& sc) {
  const bool one_to_one = sc.producers == 1 && sc.consumers == 1;
  if (Q::kThreads == Threads::kSpsc && !one_to_one) return;
  if (Q::kThreads == Threads::kMultiProducer && sc.producers < 2) return;
  if (sc.batch > 1 && Q::kBurst == Burst::kNone) return;
  out.push_back(
      {Q::kName, sc.kind == Kind::kIdle ? &run_idle<Q> : &run_throughput<Q>, Q::kWait, Q::kBound});
}

template <class... Qs>
std::vector<Entry> entries(const Scenario& sc) {
  std::vector<Entry> out;
  (add_if_supported<Qs>(out, sc), ...);
  return out;
}

// Registers every benchmark, and records in the JSON context how each queue waits and whether
// it is bounded ("conveyor_queue_kinds": "Name=spin|block/bounded|unbounded;...") and which
// scenarios are pinned ("conveyor_scenarios"), so make_perf.py needs no list of its own.
void register_all() {
  std::map<std::string, std::string> kinds;
  std::string scenarios;
  for (const Scenario& sc : kScenarios) {
    scenarios += std::string(sc.name) + "=" +
                 (sc.placement == Placement::kPinned ? "pinned" : "unpinned") + ";";
    const std::vector<Entry> queues =
        entries<ConveyorMpmcBlocking, ConveyorSpscTry, ConveyorSpscBlocking, MoodycamelCq,
                MoodycamelCqUnbounded, MoodycamelBlocking, MoodycamelBlockingUnbounded,
                MoodycamelRwq, BoostSpsc, BoostQueue, TbbBounded, MutexDeque>(sc);
    const std::size_t n = queues.size();
    for (int rep = 0; rep < g_config.reps; ++rep) {
      for (std::size_t j = 0; j < n; ++j) {
        const Entry& e = queues[(j + static_cast<std::size_t>(rep)) % n];
        kinds[std::string(e.queue)] = std::string(e.wait == Wait::kSpin ? "spin" : "block") + "/" +
                                      (e.bound == Bound::kBounded ? "bounded" : "unbounded");
        const std::string name = "BM_" + std::string(e.queue) + "_" + std::string(sc.name);
        benchmark::RegisterBenchmark(name.c_str(),
                                     [run = e.run, &sc](benchmark::State& s) { run(s, sc); })
            ->Args({sc.producers, sc.consumers, sc.batch, rep})
            ->ArgNames({"p", "c", "batch", "rep"})
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  std::string kind_list;
  for (const auto& [queue, kind] : kinds) kind_list += queue + "=" + kind + ";";
  benchmark::AddCustomContext("conveyor_queue_kinds", kind_list);
  benchmark::AddCustomContext("conveyor_scenarios", scenarios);
}

// ---- flags and context ----------------------------------------------------------------------

// Reads our flags (and their env fallbacks), removing the flags from argv.
void parse_flags(int& argc, char** argv) {
  number_from_env("CONVEYOR_BENCH_IDLE_S", g_config.idle_s);
  parse_common_flags(argc, argv, "CONVEYOR_BENCH", g_config, [](std::string_view a) {
    if (const char* v = flag_value(a, "spin_tries")) {
      spin_tries = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    } else if (const char* v = flag_value(a, "idle_s")) {
      g_config.idle_s = std::strtod(v, nullptr);
    } else {
      return false;
    }
    return true;
  });
}

void add_context(const std::string& command) {
  benchmark::AddCustomContext("conveyor_command", command);
  benchmark::AddCustomContext("conveyor_items", std::to_string(g_config.items));
  benchmark::AddCustomContext("conveyor_reps", std::to_string(g_config.reps));
  benchmark::AddCustomContext("conveyor_stall_s", num(g_config.stall_s));
  benchmark::AddCustomContext("conveyor_spin_tries", std::to_string(spin_tries));
  benchmark::AddCustomContext("conveyor_cap_s", num(g_config.cap_s));
  benchmark::AddCustomContext("conveyor_idle_s", num(g_config.idle_s));
  benchmark::AddCustomContext("conveyor_capacity", std::to_string(kCapacity));
  benchmark::AddCustomContext("conveyor_pus", std::to_string(g_topology->num_pus()));
  if (g_topology->num_pus() > kConsumerPu) {
    benchmark::AddCustomContext("conveyor_pinned_os_cpus",
                                std::to_string(g_topology->os_index(kProducerPu)) + "," +
                                    std::to_string(g_topology->os_index(kConsumerPu)));
  }
  add_build_context();
}

}  // namespace
}  // namespace conveyor::bench

int main(int argc, char** argv) {
  using namespace conveyor::bench;
  const std::string command = command_line(argc, argv);  // before parse_flags()
  parse_flags(argc, argv);
  conveyor::topology::Topology topology;
  g_topology = &topology;
  add_context(command);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
