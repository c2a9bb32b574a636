// shuffle_bench: ShuffleQueue<std::uint64_t> against a TF-style mutex + condition-variable
// shuffle queue (bench/mutex_shuffle.h: one buffer, one mutex, TF's pick), interleaved in one
// process.
//
// One run (benchmark instance) of shape PxC and variant V: a queue of capacity 1024 and
// min_after_dequeue 256; P producer threads enqueue N / P items each (one enqueue per item),
// C consumer threads dequeue until the queue reports closed; the main thread joins the
// producers, closes the queue (drain) and joins the consumers. The window runs from the start
// gate to the last consumer's join: producer/consumer contention on the shuffle queue, the
// close and the drain. Threads are not pinned (the OS places them).
//
// Checksum: value = producer << 48 | seq, seq = 1 .. N/P. The run fails unless the consumers
// took N items in all and, per producer, the count, sum and sum of squares (mod 2^64) of the
// seqs taken equal those of 1 .. N/P: no item lost or duplicated. A watchdog (harness.h) cuts a
// stuck run.
//
// Interleaving: instances run as: for rep: for shape: for variant (the variant order rotates
// each rep), so both variants of a shape run back to back in the same vCPU placement. Each run
// carries its PU 0 <-> PU 1 round trip just before and after (make_perf.py tags runs near/far).
//
// Counters: items, items_per_second, cpu_s_per_Mitem (getrusage, whole process, per million
// items), vol_cs / invol_cs, others_cpu_frac, rtt_before_ns / rtt_after_ns, shards.
//
// Flags (env fallbacks in brackets): --items=N (default 2^20) [CONVEYOR_SHUFFLE_ITEMS],
// --reps=N (default 7) [CONVEYOR_SHUFFLE_REPS], --stall_s=S (5), --cap_s=S (120).
#include <benchmark/benchmark.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alloc/cache_padded.h"
#include "bench/harness.h"
#include "bench/mutex_shuffle.h"
#include "engine/shuffle_queue.h"
#include "topology/topology.h"

namespace conveyor::bench {
namespace {

struct Config {
  std::uint64_t items = std::uint64_t{1} << 20;
  int reps = 7;
  double stall_s = 5;
  double cap_s = 120;
};
Config g_config;
std::shared_ptr<const topology::Topology> g_topology;

constexpr std::int64_t kCapacity = 1024;
constexpr std::int64_t kMinAfterDequeue = 256;
constexpr unsigned kMaxProducers = 8;
constexpr int kSeqBits = 48;
constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;
constexpr std::uint64_t kProgressStep = 4096;

struct Shape {
  std::string_view name;
  unsigned producers;
  unsigned consumers;
};
constexpr Shape kShapes[] = {{"1P1C", 1, 1}, {"2P1C", 2, 1}, {"2P2C", 2, 2}, {"4P2C", 4, 2}};

enum class Variant : std::uint8_t { kConveyor, kMutex };
std::string_view variant_name(Variant v) { return v == Variant::kConveyor ? "Conveyor" : "TFMutex"; }

struct ConsumerResult {
  std::array<std::uint64_t, kMaxProducers> count{};
  std::array<std::uint64_t, kMaxProducers> sum{};
  std::array<std::uint64_t, kMaxProducers> sum_sq{};
  std::string error;
};

std::uint64_t prefix_sum(std::uint64_t n) {
  return n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2);
}
std::uint64_t prefix_sum_sq(std::uint64_t n) {
  std::uint64_t a = n, b = n + 1, c = 2 * n + 1;
  (a % 2 == 0 ? a : b) /= 2;
  (a % 3 == 0 ? a : b % 3 == 0 ? b : c) /= 3;
  return a * b * c;
}

// The two queues behind one interface for the run loop.
struct ConveyorSide {
  ShuffleQueue<std::uint64_t> q{kCapacity, kMinAfterDequeue, 1, "shuffle_bench"};
  bool enqueue(std::uint64_t v) { return q.enqueue(std::move(v)) == Status::kOk; }
  bool dequeue(std::uint64_t& v) { return q.dequeue(v) == Status::kOk; }
  void close() { (void)q.close(); }
  void cancel() { (void)q.close(CloseMode::kCancelPendingEnqueues); }
  std::size_t shards() const { return q.shards(); }
};
struct MutexSide {
  MutexShuffleQueue<std::uint64_t> q{kCapacity, kMinAfterDequeue, 1};
  bool enqueue(std::uint64_t v) { return q.enqueue(v); }
  bool dequeue(std::uint64_t& v) { return q.dequeue(v); }
  void close() { q.close(); }
  void cancel() { q.cancel(); }
  std::size_t shards() const { return 1; }
};

template <class Side>
void run_variant(benchmark::State& state, const Shape& s) {
  const std::uint64_t P = s.producers, C = s.consumers;
  const std::uint64_t per = std::max<std::uint64_t>(1, g_config.items / P);
  const std::uint64_t n = per * P;
  for (auto _ : state) {
    const double rtt_before = probe_rtt_ns(*g_topology, 0, 1);
    auto side = std::make_unique<Side>();
    std::vector<CachePadded<ConsumerResult>> results(C);
    Progress progress;
    RunControl ctl;
    std::atomic<bool> go{false};
    std::vector<std::thread> producers, consumers;
    double wall_s = 0;
    Usage used;
    double others = 0;
    Watchdog::Verdict verdict;
    {
      Watchdog watchdog(ctl, progress, g_config.stall_s, g_config.cap_s, [&] { side->cancel(); });
      for (std::uint64_t p = 0; p < P; ++p) {
        producers.emplace_back([&, p] {
          go.wait(false, std::memory_order_acquire);  // acquire: pairs with the release of go
          for (std::uint64_t seq = 1; seq <= per; ++seq) {
            if (!side->enqueue(p << kSeqBits | seq)) return;
          }
        });
      }
      for (std::uint64_t c = 0; c < C; ++c) {
        consumers.emplace_back([&, c] {
          ConsumerResult& r = *results[c];
          go.wait(false, std::memory_order_acquire);  // acquire: as above
          std::uint64_t v = 0, got = 0, reported = 0;
          while (side->dequeue(v)) {
            const std::uint64_t p = v >> kSeqBits, seq = v & kSeqMask;
            if (p >= P || seq == 0 || seq > per) {
              r.error = "value " + std::to_string(v) + " was never sent";
              break;
            }
            r.count[p] += 1;
            r.sum[p] += seq;
            r.sum_sq[p] += seq * seq;
            if (++got - reported >= kProgressStep) {
              progress.add(got - reported);
              reported = got;
            }
          }
          progress.add(got - reported);
        });
      }
      const MachineCpu m0 = MachineCpu::now();
      const Usage u0 = Usage::now();
      const auto t0 = std::chrono::steady_clock::now();
      go.store(true, std::memory_order_release);  // release: pairs with the threads' wait
      go.notify_all();
      for (auto& t : producers) t.join();
      side->close();
      for (auto& t : consumers) t.join();
      const auto t1 = std::chrono::steady_clock::now();
      used = Usage::now() - u0;
      const MachineCpu m1 = MachineCpu::now();
      wall_s = std::chrono::duration<double>(t1 - t0).count();
      const double capacity = wall_s * static_cast<double>(std::max(1, m1.cpus));
      const double theirs = std::max(0.0, (m1.busy_s - m0.busy_s) - used.cpu_s);
      others = capacity > 0 ? std::min(1.0, theirs / capacity) : 0.0;
      watchdog.finish();
      verdict = watchdog.verdict();
    }
    const double rtt_after = probe_rtt_ns(*g_topology, 0, 1);
    if (verdict != Watchdog::Verdict::kFinished) {
      state.SkipWithError("run cut by the watchdog (stalled or past its cap)");
      break;
    }
    std::string error;
    std::uint64_t total = 0;
    for (const auto& r : results) {
      if (error.empty() && !r->error.empty()) error = r->error;
    }
    for (std::uint64_t p = 0; p < P && error.empty(); ++p) {
      std::uint64_t count = 0, sum = 0, sum_sq = 0;
      for (const auto& r : results) {
        count += r->count[p];
        sum += r->sum[p];
        sum_sq += r->sum_sq[p];
      }
      if (count != per || sum != prefix_sum(per) || sum_sq != prefix_sum_sq(per)) {
        error = "checksum mismatch, producer " + std::to_string(p) + ": took " +
                std::to_string(count) + " of " + std::to_string(per);
      }
      total += count;
    }
    if (error.empty() && total != n) error = "consumed " + std::to_string(total);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    state.SetIterationTime(wall_s);
    const auto items = static_cast<double>(n);
    state.counters["items"] = items;
    state.counters["items_per_second"] = benchmark::Counter(items, benchmark::Counter::kIsRate);
    state.counters["cpu_s_per_Mitem"] = used.cpu_s / (items / 1e6);
    state.counters["vol_cs"] = static_cast<double>(used.vol_switches);
    state.counters["invol_cs"] = static_cast<double>(used.invol_switches);
    state.counters["others_cpu_frac"] = others;
    state.counters["rtt_before_ns"] = rtt_before;
    state.counters["rtt_after_ns"] = rtt_after;
    state.counters["shards"] = static_cast<double>(side->shards());
  }
}

void register_all() {
  std::string shapes;
  for (const Shape& s : kShapes) {
    shapes += std::string(s.name) + "=" + std::to_string(s.producers) + "," +
              std::to_string(s.consumers) + ";";
  }
  constexpr Variant kVariants[] = {Variant::kConveyor, Variant::kMutex};
  for (int rep = 0; rep < g_config.reps; ++rep) {
    for (const Shape& s : kShapes) {
      for (std::size_t j = 0; j < 2; ++j) {
        const Variant v = kVariants[(j + static_cast<std::size_t>(rep)) % 2];
        const std::string name =
            "BM_Shuffle_" + std::string(s.name) + "_" + std::string(variant_name(v));
        benchmark::RegisterBenchmark(name.c_str(),
                                     [&s, v](benchmark::State& st) {
                                       if (v == Variant::kConveyor) {
                                         run_variant<ConveyorSide>(st, s);
                                       } else {
                                         run_variant<MutexSide>(st, s);
                                       }
                                     })
            ->Args({static_cast<long>(s.producers), static_cast<long>(s.consumers), rep})
            ->ArgNames({"p", "c", "rep"})
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::AddCustomContext("conveyor_shuffle_shapes", shapes);
}

void parse_flags(int& argc, char** argv) {
  parse_common_flags(argc, argv, "CONVEYOR_SHUFFLE", g_config, [](std::string_view) { return false; });
}

void add_context(const std::string& command) {
  benchmark::AddCustomContext("conveyor_command", command);
  benchmark::AddCustomContext("conveyor_items", std::to_string(g_config.items));
  benchmark::AddCustomContext("conveyor_reps", std::to_string(g_config.reps));
  benchmark::AddCustomContext("conveyor_capacity", std::to_string(kCapacity));
  benchmark::AddCustomContext("conveyor_min_after_dequeue", std::to_string(kMinAfterDequeue));
  benchmark::AddCustomContext("conveyor_pus", std::to_string(g_topology->num_pus()));
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
  add_context(command);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
