// runner_bench: queue runners feeding a FifoQueue, with their threads pinned by a placement plan
// or left to the OS, interleaved in one process.
//
// One run (benchmark instance) of shape PxC, batch B and placement policy X:
//   - make_plan(Topology::this_machine(), {P producers, C consumers, 1 queue, X});
//   - a Session with that topology and plan makes one FifoQueue<std::uint64_t> (capacity 1024,
//     as queue_bench), so its ring comes from where the plan puts it (kCompact/kScatter: a
//     NumaResource on the consumers' node, constructed on the first consumer's PU; kNone: the
//     default aligned resource);
//   - P enqueue ops, registered with session.add_op, each enqueue one counter value per run
//     (B = 1) or enqueue_many B consecutive ones (B = 32); a QueueRunner of those ops is started
//     with create_threads(session, &coord, true): the session binds enqueue thread i to the
//     plan's producer PU i (kNone: no binding), and the close_on_stop thread waits for the stop;
//   - C plain consumer threads, bound to the plan's consumer PUs with bind_current_thread (kNone:
//     not bound), take N / C items each with dequeue (B = 1) or dequeue_many(B).
// The runners start first and fill the queue (they then sleep on its full side); the consumers
// wait on a gate. The measured window runs from opening that gate to the last consumer's join:
// steady-state feeding of a full queue, without thread creation or queue construction. Then the
// coordinator's request_stop() wakes the close_on_stop thread, whose cancel op closes the queue
// and fails the blocked enqueues (kCancelled); coord.join() waits for every runner thread. That
// stop is timed too (stop_ms), outside the window.
//
// Checksum: value = producer << 48 | seq, seq = 1, 2, 3, ... per producer. The queue is FIFO, so
// the N items consumed are, for each producer p, a prefix 1..n_p of its sequence: the run fails
// unless sum n_p = N, n_p <= what p enqueued, and per p the sum and the sum of squares (mod 2^64)
// of the seqs taken equal those of 1..n_p; each consumer also checks that the seqs it takes from
// one producer increase (per-producer FIFO). A watchdog (harness.h) cuts a stuck run.
//
// Interleaving: instances are registered (and so run) as: for rep: for shape: for variant, so
// the variants of one shape run back to back in the same vCPU placement; the variant order
// rotates by one each rep, so no variant always runs first. kScatter is registered only for a
// shape whose scatter plan puts some thread on another PU than the compact plan (on a one-node,
// one-package machine without SMT the two are identical; the JSON context says which were
// skipped).
//
// Counters (per run): items, items_per_second (N / window), cpu_s_per_Mitem (getrusage of the
// whole process over the window, all threads, per million items), cpu_util (that CPU time over
// the window: busy CPUs on average), vol_cs / invol_cs (ru_nvcsw / ru_nivcsw deltas),
// others_cpu_frac (other work's share of the machine, harness.h MachineCpu), rtt_before_ns /
// rtt_after_ns (PU 0 <-> PU 1 ping-pong median just before and after: make_perf.py tags runs
// near or far by it), stop_ms (request_stop to coord.join() returning), surplus (items the
// runners enqueued but nobody consumed: left in the queue or the prefill), pinned (1 when the
// plan binds threads).
//
// Flags (removed before Google Benchmark parses the rest; env fallbacks in brackets):
//   --items=N   items consumed per run, default 2^21 [CONVEYOR_RUNNER_ITEMS]
//   --reps=N    interleaved rounds, default 7 [CONVEYOR_RUNNER_REPS]
//   --stall_s=S cut a run after S s without a consumed item, default 5 [CONVEYOR_RUNNER_STALL_S]
//   --cap_s=S   cut a run after S s in all, default 120 [CONVEYOR_RUNNER_CAP_S]
#include <benchmark/benchmark.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alloc/cache_padded.h"
#include "bench/harness.h"
#include "engine/coordinator.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/session.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace conveyor::bench {
namespace {

struct Config {
  std::uint64_t items = std::uint64_t{1} << 21;
  int reps = 7;
  double stall_s = 5;
  double cap_s = 120;
};
Config g_config;
std::shared_ptr<const topology::Topology> g_topology;

constexpr std::int64_t kCapacity = 1024;  // queue_bench's capacity
constexpr int kMaxBatch = 32;
constexpr unsigned kMaxProducers = 8;
constexpr int kSeqBits = 48;  // value = producer << kSeqBits | seq
constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;
constexpr std::uint64_t kProgressStep = 4096;  // consumers publish progress this often
constexpr unsigned kProbeA = 0;
constexpr unsigned kProbeB = 1;
constexpr auto kPrefillWait = std::chrono::milliseconds(500);

struct Shape {
  std::string_view name;
  unsigned producers;
  unsigned consumers;
  int batch;
};

constexpr Shape kShapes[] = {
    {"1P1C", 1, 1, 1},
    {"2P2C", 2, 2, 1},
    {"4P4C", 4, 4, 1},  // 8 threads (plus close_on_stop) on the 2 PUs: oversubscribed
    {"1P1CBatch32", 1, 1, 32},
};

constexpr bool shapes_fit() {
  for (const Shape& s : kShapes) {
    if (s.producers < 1 || s.producers > kMaxProducers || s.consumers < 1) return false;
    if (s.batch < 1 || s.batch > kMaxBatch) return false;
  }
  return true;
}
static_assert(shapes_fit());

topology::Plan plan_for(const Shape& s, topology::Policy policy) {
  topology::PlanRequest req;
  req.producers = s.producers;
  req.consumers = s.consumers;
  req.queues = 1;
  req.policy = policy;
  return topology::make_plan(*g_topology, req);
}

// What an enqueue op keeps between runs of it. Only its runner thread writes it; the main thread
// reads it after coord.join() (the join orders the reads after the writes).
struct ProducerState {
  std::uint64_t next = 1;  // the next seq to enqueue; next - 1 have been enqueued
};

// What a consumer took, per producer.
struct ConsumerResult {
  std::array<std::uint64_t, kMaxProducers> count{};
  std::array<std::uint64_t, kMaxProducers> sum{};
  std::array<std::uint64_t, kMaxProducers> sum_sq{};  // mod 2^64
  std::uint64_t taken = 0;
  std::string error;  // placement failure, bad value, order violation, dequeue failure
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Records one item; false (with r.error set) on a value no producer sent or out of order.
inline bool take(ConsumerResult& r, std::array<std::uint64_t, kMaxProducers>& last,
                 unsigned producers, std::uint64_t v) {
  const auto p = static_cast<unsigned>(v >> kSeqBits);
  const std::uint64_t seq = v & kSeqMask;
  if (p >= producers || seq == 0) {
    r.error = "value " + std::to_string(v) + " was never sent";
    return false;
  }
  if (seq <= last[p]) {
    r.error = "producer " + std::to_string(p) + ": seq " + std::to_string(seq) + " after " +
              std::to_string(last[p]) + " (per-producer FIFO broken or duplicate)";
    return false;
  }
  last[p] = seq;
  r.count[p] += 1;
  r.sum[p] += seq;
  r.sum_sq[p] += seq * seq;
  return true;
}

void consume(FifoQueue<std::uint64_t>& q, const Shape& s, std::uint64_t share, Progress& progress,
             ConsumerResult& r) {
  std::array<std::uint64_t, kMaxProducers> last{};
  std::uint64_t got = 0;
  std::uint64_t reported = 0;
  if (s.batch == 1) {
    std::uint64_t v = 0;
    for (; got < share; ++got) {
      const Status st = q.dequeue(v);
      if (st != Status::kOk) {
        r.error = "dequeue: " + std::string(to_string(st));
        break;
      }
      if (!take(r, last, s.producers, v)) break;
      if (got - reported >= kProgressStep) {
        progress.add(got - reported);
        reported = got;
      }
    }
  } else {
    std::vector<std::uint64_t> buf;
    buf.reserve(static_cast<std::size_t>(s.batch));
    while (got < share) {
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>(s.batch, share - got));
      const Status st = q.dequeue_many(want, buf);
      if (st != Status::kOk) {
        r.error = "dequeue_many: " + std::string(to_string(st));
        break;
      }
      bool ok = true;
      for (const std::uint64_t v : buf) ok = ok && take(r, last, s.producers, v);
      if (!ok) break;
      got += buf.size();
      if (got - reported >= kProgressStep) {
        progress.add(got - reported);
        reported = got;
      }
    }
  }
  progress.add(got - reported);
  r.taken = got;
}

// The sum and sum of squares of 1..n, mod 2^64 (what a consumer's wrapping sums give): the
// divisions are exact on one factor each, so the products may wrap.
std::uint64_t prefix_sum(std::uint64_t n) {
  return n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2);
}
std::uint64_t prefix_sum_sq(std::uint64_t n) {  // n (n + 1) (2n + 1) / 6
  std::uint64_t a = n, b = n + 1, c = 2 * n + 1;
  (a % 2 == 0 ? a : b) /= 2;
  (a % 3 == 0 ? a : b % 3 == 0 ? b : c) /= 3;
  return a * b * c;
}

// Empty when the consumed items are exactly per-producer prefixes adding up to n.
std::string check(const std::vector<CachePadded<ConsumerResult>>& consumers,
                  const std::vector<CachePadded<ProducerState>>& producers, std::uint64_t n) {
  for (const auto& c : consumers) {
    if (!c->error.empty()) return c->error;
  }
  std::uint64_t total = 0;
  for (std::size_t p = 0; p < producers.size(); ++p) {
    std::uint64_t count = 0, sum = 0, sum_sq = 0;
    for (const auto& c : consumers) {
      count += c->count[p];
      sum += c->sum[p];
      sum_sq += c->sum_sq[p];
    }
    const std::uint64_t sent = producers[p]->next - 1;
    if (count > sent || sum != prefix_sum(count) || sum_sq != prefix_sum_sq(count)) {
      return "checksum mismatch, producer " + std::to_string(p) + ": took " +
             std::to_string(count) + " of " + std::to_string(sent) + " sent, sum " +
             std::to_string(sum) + " (want " + std::to_string(prefix_sum(count)) + ")";
    }
    total += count;
  }
  if (total != n) {
    return "consumed " + std::to_string(total) + " items, want " + std::to_string(n);
  }
  return {};
}

void run_one(benchmark::State& state, const Shape& s, topology::Policy policy) {
  const std::uint64_t P = s.producers;
  const std::uint64_t C = s.consumers;
  const std::uint64_t unit = C * static_cast<std::uint64_t>(s.batch);
  const std::uint64_t n = std::max(unit, g_config.items - g_config.items % unit);
  const std::uint64_t share = n / C;

  for (auto _ : state) {
    const double rtt_before = probe_rtt_ns(*g_topology, kProbeA, kProbeB);
    const topology::Plan plan = plan_for(s, policy);
    Coordinator coord;
    std::vector<CachePadded<ProducerState>> producers(P);
    std::vector<CachePadded<ConsumerResult>> consumers(C);
    Progress progress;
    RunControl ctl;
    double wall_s = 0;
    Usage used;
    double others_cpu_frac = 0;
    double stop_ms = 0;
    std::uint64_t surplus = 0;
    std::string failure;
    Watchdog::Verdict verdict = Watchdog::Verdict::kFinished;
    std::vector<std::string> notes;
    {
      Session session(SessionOptions{g_topology, plan});
      const auto queue = session.fifo_queue<std::uint64_t>(kCapacity, "runner_bench");
      std::vector<std::string> op_names;
      for (std::uint64_t p = 0; p < P; ++p) {
        op_names.push_back("runner_bench_enqueue_" + std::to_string(p));
        ProducerState* st = &*producers[p];
        const std::uint64_t tag = p << kSeqBits;
        if (s.batch == 1) {
          session.add_op(op_names.back(), [q = queue.get(), st, tag] {
            std::uint64_t v = tag | st->next;
            const Status r = q->enqueue(std::move(v));
            if (r != Status::kOk) throw queue_error(r, QueueOp::kEnqueue, q->name());
            st->next += 1;
          });
        } else {
          session.add_op(op_names.back(), [q = queue.get(), st, tag, batch = s.batch] {
            std::array<std::uint64_t, kMaxBatch> buf;
            const auto k = static_cast<std::size_t>(batch);
            for (std::size_t j = 0; j < k; ++j) buf[j] = tag | (st->next + j);
            const BulkResult r = q->enqueue_many(std::span<std::uint64_t>(buf.data(), k));
            st->next += r.count;  // a cancelled enqueue_many keeps what it pushed (A23)
            if (r.status != Status::kOk) throw queue_error(r.status, QueueOp::kEnqueue, q->name());
          });
        }
      }
      QueueRunner runner("runner_bench", op_names);
      Watchdog watchdog(ctl, progress, g_config.stall_s, g_config.cap_s, [&] {
        coord.request_stop();
        (void)queue->close(CloseMode::kCancelPendingEnqueues);
      });
      // Runners first (create_threads may throw; no consumer thread exists yet): they fill the
      // queue, then sleep on its full side.
      const RunnerThreads threads = runner.create_threads(session, &coord, true);

      // Consumers: bound (if the plan says so), then wait on the gate.
      std::atomic<unsigned> ready{0};
      std::atomic<bool> go{false};
      std::vector<std::thread> pool;
      for (unsigned c = 0; c < C; ++c) {
        pool.emplace_back([&, c] {
          ConsumerResult& r = *consumers[c];
          try {
            if (const auto pu = plan.consumer(0, c).pu) {
              const topology::BindResult b = g_topology->bind_current_thread(*pu);
              if (!b.applied) r.error = "consumer " + std::to_string(c) + ": " + b.note;
            }
          } catch (const std::exception& e) {
            r.error = e.what();
          }
          ready.fetch_add(1, std::memory_order_release);  // release: pairs with main's acquire
          ready.notify_one();
          go.wait(false, std::memory_order_acquire);  // acquire: pairs with the release of go
          if (!r.error.empty()) return;
          consume(*queue, s, share, progress, r);
        });
      }
      for (unsigned r = ready.load(std::memory_order_acquire); r < C;
           r = ready.load(std::memory_order_acquire)) {
        ready.wait(r, std::memory_order_acquire);  // acquire: pairs with the consumers' add
      }
      const auto prefill_until = std::chrono::steady_clock::now() + kPrefillWait;
      while (queue->size_approx() < static_cast<std::size_t>(kCapacity) &&
             std::chrono::steady_clock::now() < prefill_until) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }

      const MachineCpu m0 = MachineCpu::now();
      const Usage u0 = Usage::now();
      const auto t0 = std::chrono::steady_clock::now();
      go.store(true, std::memory_order_release);  // release: pairs with the consumers' wait
      go.notify_all();
      for (auto& t : pool) t.join();
      const auto t1 = std::chrono::steady_clock::now();
      used = Usage::now() - u0;
      const MachineCpu m1 = MachineCpu::now();
      wall_s = std::chrono::duration<double>(t1 - t0).count();
      const double capacity = wall_s * static_cast<double>(std::max(1, m1.cpus));
      const double others = std::max(0.0, (m1.busy_s - m0.busy_s) - used.cpu_s);
      others_cpu_frac = capacity > 0 ? std::min(1.0, others / capacity) : 0.0;

      // Stop: close_on_stop cancels the queue, the runners' blocked enqueues fail, join.
      const auto s0 = std::chrono::steady_clock::now();
      coord.request_stop();
      try {
        coord.join({}, std::chrono::seconds(10));
      } catch (const std::exception& e) {
        failure = std::string("coordinator join: ") + e.what();
      }
      stop_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0)
                    .count();
      watchdog.finish();
      verdict = watchdog.verdict();
      if (failure.empty() && !queue->is_closed()) failure = "queue not closed after the stop";
      if (failure.empty() && runner.running_threads(session) != 0) {
        failure = "runner threads still counted as running after join";
      }
      notes = session.placement_notes();
    }  // ~Session joins what is left
    const double rtt_after = probe_rtt_ns(*g_topology, kProbeA, kProbeB);

    if (verdict != Watchdog::Verdict::kFinished) {
      const std::string msg =
          (verdict == Watchdog::Verdict::kStalled
               ? "no item consumed for " + num(g_config.stall_s) + " s"
               : "time cap " + num(g_config.cap_s) + " s hit") +
          "; consumed " + std::to_string(progress.load()) + " of " + std::to_string(n);
      state.SkipWithError(msg.c_str());
      break;
    }
    if (!failure.empty()) {
      state.SkipWithError(failure.c_str());
      break;
    }
    if (plan.binds() && !notes.empty()) {
      state.SkipWithError(("placement not applied: " + notes.front()).c_str());
      break;
    }
    if (const std::string e = check(consumers, producers, n); !e.empty()) {
      state.SkipWithError(e.c_str());
      break;
    }
    for (const auto& p : producers) surplus += p->next - 1;
    surplus -= n;

    state.SetIterationTime(wall_s);
    const auto items = static_cast<double>(n);
    state.counters["items"] = items;
    state.counters["items_per_second"] = benchmark::Counter(items, benchmark::Counter::kIsRate);
    state.counters["cpu_s_per_Mitem"] = used.cpu_s / (items / 1e6);
    state.counters["cpu_util"] = wall_s > 0 ? used.cpu_s / wall_s : 0;
    state.counters["vol_cs"] = static_cast<double>(used.vol_switches);
    state.counters["invol_cs"] = static_cast<double>(used.invol_switches);
    state.counters["others_cpu_frac"] = others_cpu_frac;
    state.counters["rtt_before_ns"] = rtt_before;
    state.counters["rtt_after_ns"] = rtt_after;
    state.counters["stop_ms"] = stop_ms;
    state.counters["surplus"] = static_cast<double>(surplus);
    state.counters["pinned"] = plan.binds() ? 1 : 0;
  }
}

// ---- registration ---------------------------------------------------------------------------

std::string pus_of(const topology::Plan& plan) {
  std::string out;
  for (const topology::ThreadPlacement& t : plan.threads()) {
    out += t.role == topology::Role::kProducer ? "P" : "C";
    out += std::to_string(t.index) + "@" + (t.pu ? std::to_string(*t.pu) : std::string("-"));
    out += " ";
  }
  if (!out.empty()) out.pop_back();
  return out;
}

bool same_pus(const topology::Plan& a, const topology::Plan& b) {
  if (a.threads().size() != b.threads().size()) return false;
  for (std::size_t i = 0; i < a.threads().size(); ++i) {
    if (a.threads()[i].pu != b.threads()[i].pu) return false;
  }
  return true;
}

// Registers every instance in run order, and records in the JSON context each shape's variants
// and plans ("conveyor_runner_plans": "<shape>/<policy>=P0@0 C0@1 ...;") and the skipped ones.
void register_all() {
  std::string plans;
  std::string skipped;
  std::string shapes;
  std::vector<std::vector<topology::Policy>> variants;
  for (const Shape& s : kShapes) {
    shapes += std::string(s.name) + "=" + std::to_string(s.producers) + "," +
              std::to_string(s.consumers) + "," + std::to_string(s.batch) + ";";
    std::vector<topology::Policy> v = {topology::Policy::kNone, topology::Policy::kCompact};
    const topology::Plan compact = plan_for(s, topology::Policy::kCompact);
    const topology::Plan scatter = plan_for(s, topology::Policy::kScatter);
    if (same_pus(compact, scatter)) {
      skipped += std::string(s.name) + "/scatter=same PUs as compact;";
    } else {
      v.push_back(topology::Policy::kScatter);
    }
    for (const topology::Policy p : v) {
      const topology::Plan plan = plan_for(s, p);
      plans += std::string(s.name) + "/" + std::string(to_string(p)) + "=" + pus_of(plan);
      for (std::string note : plan.notes()) {
        std::replace(note.begin(), note.end(), ';', ',');  // ';' separates the entries
        plans += " (" + note + ")";
      }
      plans += ";";
    }
    variants.push_back(std::move(v));
  }
  for (int rep = 0; rep < g_config.reps; ++rep) {
    for (std::size_t si = 0; si < std::size(kShapes); ++si) {
      const Shape& s = kShapes[si];
      const auto& v = variants[si];
      for (std::size_t j = 0; j < v.size(); ++j) {
        const topology::Policy policy = v[(j + static_cast<std::size_t>(rep)) % v.size()];
        const std::string name =
            "BM_Runners_" + std::string(s.name) + "_" + std::string(to_string(policy));
        benchmark::RegisterBenchmark(name.c_str(),
                                     [&s, policy](benchmark::State& st) { run_one(st, s, policy); })
            ->Args({static_cast<long>(s.producers), static_cast<long>(s.consumers), s.batch, rep})
            ->ArgNames({"p", "c", "batch", "rep"})
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::AddCustomContext("conveyor_runner_shapes", shapes);
  benchmark::AddCustomContext("conveyor_runner_plans", plans);
  benchmark::AddCustomContext("conveyor_runner_skipped", skipped);
}

// ---- flags and context ----------------------------------------------------------------------

void parse_flags(int& argc, char** argv) {
  parse_common_flags(argc, argv, "CONVEYOR_RUNNER", g_config, [](std::string_view) { return false; });
}

void add_context(const std::string& command) {
  benchmark::AddCustomContext("conveyor_command", command);
  benchmark::AddCustomContext("conveyor_items", std::to_string(g_config.items));
  benchmark::AddCustomContext("conveyor_reps", std::to_string(g_config.reps));
  benchmark::AddCustomContext("conveyor_stall_s", num(g_config.stall_s));
  benchmark::AddCustomContext("conveyor_cap_s", num(g_config.cap_s));
  benchmark::AddCustomContext("conveyor_capacity", std::to_string(kCapacity));
  benchmark::AddCustomContext("conveyor_pus", std::to_string(g_topology->num_pus()));
  benchmark::AddCustomContext("conveyor_cores", std::to_string(g_topology->num_cores()));
  benchmark::AddCustomContext("conveyor_numa_nodes", std::to_string(g_topology->num_numa_nodes()));
  add_build_context();
}

}  // namespace
}  // namespace conveyor::bench

int main(int argc, char** argv) {
  using namespace conveyor::bench;
  const std::string command = command_line(argc, argv);  // before parse_flags()
  parse_flags(argc, argv);
  g_topology = std::make_shared<const conveyor::topology::Topology>(
      conveyor::topology::Topology::this_machine());
  if (g_topology->num_pus() < 2) {
    std::fprintf(stderr, "runner_bench: needs at least 2 PUs (has %u)\n", g_topology->num_pus());
    return 1;
  }
  add_context(command);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
