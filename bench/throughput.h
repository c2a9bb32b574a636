// One throughput run of a queue behind the adapter shape of peers.h: P producers and C
// consumers move `items` distinct values, the consumers' checksum proves none was lost or
// duplicated, a watchdog cuts a stuck run. Shared by queue_bench (Google Benchmark) and
// `conveyor perf`'s worker (tools/perf_worker.cc), so both measure exactly the same loop.
//
// Run: every thread is created (pinned where `pus` says, its Producer/Consumer handle built)
// and waits on a gate; the window runs from the release of the gate to the last join, so
// thread creation, queue construction and pinning stay outside it (run_gated).
// Values: producer p sends p+1, p+1+P, p+1+2P, ... (batch > 1: in bursts of `batch`); every
// consumer takes its share items / C and sums the values and their squares (mod 2^64: a loss
// and a duplicate that cancel in the sum do not also cancel in the sum of squares).
// `items` is rounded down to a multiple of P * C * batch (at least one such unit).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "alloc/cache_padded.h"
#include "bench/harness.h"
#include "bench/peers.h"
#include "topology/topology.h"

namespace conveyor::bench {

inline constexpr int kMaxBatch = 256;  // the workers' batch buffers are on their stacks
inline constexpr std::uint64_t kProgressStep = 4096;  // consumers publish progress this often

// What one worker thread reports; padded so that the workers' stores do not share lines.
struct WorkerResult {
  std::uint64_t sum = 0;     // of the values taken
  std::uint64_t sum_sq = 0;  // of their squares, mod 2^64
  std::uint64_t count = 0;
  std::string error;  // a placement failure
};

// The wall time of a gated run and the process usage over the same window.
struct Window {
  double wall_s = 0;
  Usage usage;
  double others_cpu_frac = 0;  // other processes' (and the hypervisor's) share of the CPUs
};

// Starts `threads` threads running body(i, ready, go); each calls arrive_and_wait() once it is
// set up. Returns the window from the gate's release to the last join.
template <class Body>
Window run_gated(int threads, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] { body(i, ready, go); });
  }
  for (int r = ready.load(std::memory_order_acquire); r < threads;
       r = ready.load(std::memory_order_acquire)) {
    ready.wait(r, std::memory_order_acquire);  // acquire: pairs with the workers' release add
  }
  const MachineCpu m0 = MachineCpu::now();
  const Usage u0 = Usage::now();
  const auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);  // release: pairs with the workers' gate wait
  go.notify_all();
  for (auto& t : pool) t.join();
  const auto t1 = std::chrono::steady_clock::now();
  const Usage used = Usage::now() - u0;
  const MachineCpu m1 = MachineCpu::now();
  const double wall = std::chrono::duration<double>(t1 - t0).count();
  const double capacity = wall * static_cast<double>(std::max(1, m1.cpus));
  const double others = std::max(0.0, (m1.busy_s - m0.busy_s) - used.cpu_s);
  return {wall, used, capacity > 0 ? std::min(1.0, others / capacity) : 0.0};
}

// Inside a worker: report ready, sleep on the gate.
inline void arrive_and_wait(std::atomic<int>& ready, std::atomic<bool>& go) {
  ready.fetch_add(1, std::memory_order_release);  // release: pairs with run_gated's acquire
  ready.notify_one();
  go.wait(false, std::memory_order_acquire);  // acquire: pairs with the release of go
}

// Pins the calling thread to `pu` when set; a refusal is recorded, not thrown.
inline void pin_or_record(const topology::Topology& topo, std::optional<unsigned> pu,
                          std::string& error) {
  if (!pu) return;
  try {
    topo.pin_current_thread(*pu);
  } catch (const std::exception& e) {
    error = e.what();
  }
}

// 1 + 2 + ... + n and 1^2 + ... + n^2, mod 2^64 (divide before multiplying, so no overflow
// before the wrap-around the checksums use).
inline std::uint64_t sum_to(std::uint64_t n) {
  return n % 2 == 0 ? (n / 2) * (n + 1) : n * ((n + 1) / 2);
}
inline std::uint64_t sum_sq_to(std::uint64_t n) {
  std::uint64_t a = n, b = n + 1, c = 2 * n + 1;
  (a % 2 == 0 ? a : b) /= 2;
  (a % 3 == 0 ? a : b % 3 == 0 ? b : c) /= 3;
  return a * b * c;
}

struct ThroughputSpec {
  int producers = 1;
  int consumers = 1;
  int batch = 1;  // 1..kMaxBatch; > 1 calls push_burst / pop_burst
  std::uint64_t items = std::uint64_t{1} << 22;
  std::size_t capacity = kCapacity;
  // PU of each thread, producers first, then consumers; empty: nobody is pinned.
  std::vector<std::optional<unsigned>> pus;
  double stall_s = 5;
  double cap_s = 300;
  // Test-only fault: consumer 0 drops the first value it takes (counts it, does not sum it), so
  // the checksum must fail. Proves the check can fail.
  bool drop_one = false;
};

struct ThroughputResult {
  std::uint64_t wanted = 0;  // items after rounding
  std::uint64_t taken = 0;   // by all consumers
  bool checksum_ok = false;
  Watchdog::Verdict verdict = Watchdog::Verdict::kFinished;
  std::string error;  // placement failure, checksum detail or close-check failure; "" if none
  Window window;
};

template <class Q>
ThroughputResult run_throughput(const ThroughputSpec& spec, const topology::Topology& topo) {
  const int P = spec.producers;
  const int C = spec.consumers;
  const auto batch = static_cast<std::uint64_t>(std::clamp(spec.batch, 1, kMaxBatch));
  const std::uint64_t unit = static_cast<std::uint64_t>(P) * static_cast<std::uint64_t>(C) * batch;
  const std::uint64_t n = std::max(unit, spec.items - spec.items % unit);
  const std::uint64_t per_producer = n / static_cast<std::uint64_t>(P);
  const std::uint64_t per_consumer = n / static_cast<std::uint64_t>(C);
  auto pu_of = [&](int i) -> std::optional<unsigned> {
    return static_cast<std::size_t>(i) < spec.pus.size() ? spec.pus[static_cast<std::size_t>(i)]
                                                        : std::nullopt;
  };

  Q queue(Shape{spec.capacity, P, C});
  RunControl ctl;
  std::vector<CachePadded<WorkerResult>> results(static_cast<std::size_t>(P + C));
  Progress progress;
  Watchdog watchdog(ctl, progress, spec.stall_s, spec.cap_s, [&] { queue.wake_all(); });

  ThroughputResult out;
  out.wanted = n;
  out.window = run_gated(P + C, [&](int i, auto& ready, auto& go) {
    WorkerResult& r = *results[static_cast<std::size_t>(i)];
    pin_or_record(topo, pu_of(i), r.error);
    if (i < P) {  // producer i
      typename Q::Producer h(queue);
      arrive_and_wait(ready, go);
      const auto stride = static_cast<std::uint64_t>(P);
      const auto first = static_cast<std::uint64_t>(i) + 1;
      if (batch == 1) {
        for (std::uint64_t k = 0; k < per_producer; ++k) {
          if (!h.push(first + k * stride, ctl)) break;
          r.count += 1;
        }
      } else {
        Item buf[kMaxBatch];
        for (std::uint64_t k = 0; k < per_producer; k += batch) {
          for (std::uint64_t j = 0; j < batch; ++j) buf[j] = first + (k + j) * stride;
          std::size_t sent = 0;
          while (sent < batch) {
            const std::size_t got = h.push_burst(std::span<Item>(buf + sent, batch - sent), ctl);
            if (got == 0) break;
            sent += got;
          }
          r.count += sent;
          if (sent < batch) break;
        }
      }
    } else {  // consumer i - P
      typename Q::Consumer h(queue);
      arrive_and_wait(ready, go);
      std::uint64_t sum = 0;
      std::uint64_t sum_sq = 0;
      std::uint64_t got = 0;
      std::uint64_t reported = 0;  // progress is published every kProgressStep items
      bool drop = spec.drop_one && i == P;
      auto take = [&](Item v) {
        if (drop) {
          drop = false;
          return;
        }
        sum += v;
        sum_sq += v * v;
      };
      if (batch == 1) {
        Item v = 0;
        for (; got < per_consumer; ++got) {
          if (!h.pop(v, ctl)) break;
          take(v);
          if (got - reported >= kProgressStep) {
            progress.add(got - reported);
            reported = got;
          }
        }
      } else {
        Item buf[kMaxBatch];
        while (got < per_consumer) {
          const auto want =
              static_cast<std::size_t>(std::min<std::uint64_t>(batch, per_consumer - got));
          const std::size_t k = h.pop_burst(std::span<Item>(buf, want), ctl);
          if (k == 0) break;
          for (std::size_t j = 0; j < k; ++j) take(buf[j]);
          got += k;
          if (got - reported >= kProgressStep) {
            progress.add(got - reported);
            reported = got;
          }
        }
      }
      progress.add(got - reported);
      r.sum = sum;
      r.sum_sq = sum_sq;
      r.count = got;
    }
  });
  watchdog.finish();
  out.verdict = watchdog.verdict();

  std::uint64_t sum = 0;
  std::uint64_t sum_sq = 0;
  for (int c = P; c < P + C; ++c) {
    out.taken += results[static_cast<std::size_t>(c)]->count;
    sum += results[static_cast<std::size_t>(c)]->sum;
    sum_sq += results[static_cast<std::size_t>(c)]->sum_sq;
  }
  // Every value 1..n exactly once.
  const std::uint64_t want_sum = sum_to(n);
  const std::uint64_t want_sum_sq = sum_sq_to(n);
  out.checksum_ok = out.taken == n && sum == want_sum && sum_sq == want_sum_sq;
  for (const auto& r : results) {
    if (!r->error.empty()) {
      out.error = "placement failed: " + r->error;
      return out;
    }
  }
  if (out.verdict != Watchdog::Verdict::kFinished) return out;
  if (!out.checksum_ok) {
    out.error = "checksum mismatch: consumed " + std::to_string(out.taken) + " of " +
                std::to_string(n) + ", sum " + std::to_string(sum) + " (want " +
                std::to_string(want_sum) + "), sum of squares " + std::to_string(sum_sq) +
                " (want " + std::to_string(want_sum_sq) + ")";
    return out;
  }
  if (const std::string e = queue.after_run(); !e.empty()) {
    out.error = "close check failed: " + e;
  }
  return out;
}

}  // namespace conveyor::bench
