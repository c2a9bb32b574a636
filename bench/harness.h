// Benchmark harness shared by every queue in queue_bench: run control (time cap, abort), the
// spin-then-yield wait used for non-blocking queues, process resource usage, and the cross-PU
// round-trip probe.
//
// Contract: nothing here is on a measured queue path except `spin_then_yield` (the wait loop
// of non-blocking peers) and `RunControl::aborted()` (one relaxed load on a failed try).
// The watchdog is a mutex + condition variable thread that sleeps for the whole run; it wakes
// only when the run ends or its time cap passes, so it costs no CPU inside the measurement.
#pragma once

#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/internal/backoff.h"
#include "topology/topology.h"

namespace conveyor::bench {

using conveyor::internal::cpu_relax;  // the engine's pause, one definition

// Set once by the watchdog when it cuts a run (stalled or past its cap); every wait loop gives
// up after it.
class RunControl {
 public:
  // relaxed: a stop hint only; no data is published through this flag.
  bool aborted() const noexcept { return aborted_.load(std::memory_order_relaxed); }
  // relaxed: see aborted(); the waker that follows (close, abort, notify) does the publishing.
  void abort() noexcept { aborted_.store(true, std::memory_order_relaxed); }

 private:
  std::atomic<bool> aborted_{false};
};

// The wait of a non-blocking queue: a short spin (`spin_tries` failed tries, one `pause` after
// each), then sched_yield between tries, so that on an oversubscribed machine the thread we wait
// for gets the core. False on abort. queue_bench's --spin_tries sets the spin (default 64, about
// 0.5-2 us depending on the CPU's pause latency) before any thread starts.
inline unsigned spin_tries = 64;

template <class TryOp>
bool spin_then_yield(const RunControl& ctl, TryOp&& try_op) {
  const unsigned tries = spin_tries;
  for (unsigned i = 0;; ++i) {
    if (try_op()) return true;
    if (i < tries) {
      cpu_relax();
      continue;
    }
    if (ctl.aborted()) return false;
    std::this_thread::yield();
  }
}

// Progress of a run: consumers publish how many items they have taken, now and then, so the
// watchdog can tell a slow run from a stuck one.
class Progress {
 public:
  // relaxed: a monotone counter read only by the watchdog; nothing is published through it.
  void add(std::uint64_t n) noexcept { items_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t load() const noexcept { return items_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> items_{0};
};

// Cuts a run that is stuck or too long. It wakes once a second (a few microseconds of CPU, far
// below the noise) and fires when no item was consumed for `stall_s` (a livelock, a lost
// wake-up, a starved producer) or when the run passes `cap_s`. Firing sets the RunControl flag,
// then calls `wake` (close the queue, abort its waiters, send sentinels) every 20 ms until the
// run ends, because some wakes (TBB abort, sentinels) only reach threads already asleep. A run
// that still does not end 10 s later has hung in a way no wake reaches: the process exits
// rather than hang the whole benchmark session.
class Watchdog {
 public:
  enum class Verdict : std::uint8_t { kFinished, kStalled, kCapped };

  Watchdog(RunControl& ctl, const Progress& progress, double stall_s, double cap_s,
           std::function<void()> wake)
      : ctl_(ctl),
        progress_(progress),
        stall_(std::chrono::duration<double>(stall_s)),
        cap_(std::chrono::duration<double>(cap_s)),
        wake_(std::move(wake)),
        thread_([this] { run(); }) {}
  ~Watchdog() { finish(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // The run's threads have all been joined.
  void finish() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Verdict verdict() const noexcept { return verdict_; }  // read after finish()

 private:
  using Clock = std::chrono::steady_clock;

  void run() {
    std::unique_lock lock(mu_);
    const auto start = Clock::now();
    auto last_change = start;
    std::uint64_t last = progress_.load();
    for (;;) {
      if (cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) return;
      const auto now = Clock::now();
      if (const std::uint64_t p = progress_.load(); p != last) {
        last = p;
        last_change = now;
      }
      if (now - last_change >= stall_) {
        verdict_ = Verdict::kStalled;
        break;
      }
      if (now - start >= cap_) {
        verdict_ = Verdict::kCapped;
        break;
      }
    }
    ctl_.abort();
    const auto hard_stop = Clock::now() + std::chrono::seconds(10);
    while (!done_) {
      lock.unlock();
      wake_();
      lock.lock();
      if (cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return done_; })) return;
      if (Clock::now() > hard_stop) {
        std::fprintf(stderr, "queue_bench: a run still hangs 10 s after it was cut; exiting\n");
        std::_Exit(3);
      }
    }
  }

  RunControl& ctl_;
  const Progress& progress_;
  const std::chrono::duration<double> stall_;
  const std::chrono::duration<double> cap_;
  std::function<void()> wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;                     // guarded by mu_
  Verdict verdict_ = Verdict::kFinished;  // written by the watchdog thread before finish() joins
  std::thread thread_;                    // last: starts after every other member is built
};

// Process-wide resource usage (all threads, including finished ones: Linux folds a thread's
// counts into the process when it exits).
struct Usage {
  double cpu_s = 0;       // user + system
  long vol_switches = 0;  // ru_nvcsw: the thread blocked (futex, sleep, I/O)
  long invol_switches =
      0;  // ru_nivcsw: the scheduler preempted it (or it yielded while others waited)

  static Usage now() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    Usage u;
    u.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    u.vol_switches = ru.ru_nvcsw;
    u.invol_switches = ru.ru_nivcsw;
    return u;
  }
  Usage operator-(const Usage& o) const {
    return {cpu_s - o.cpu_s, vol_switches - o.vol_switches, invol_switches - o.invol_switches};
  }
};

// Busy time of the whole machine (every CPU, every process, plus time the hypervisor stole from
// our vCPUs), from /proc/stat in clock ticks (10 ms on most kernels: coarse, so only a noise
// indicator). Busy minus our own process's CPU is what other work took while we measured.
struct MachineCpu {
  double busy_s = 0;
  int cpus = 0;

  static MachineCpu now() {
    MachineCpu m;
    std::FILE* f = std::fopen("/proc/stat", "r");
    if (f == nullptr) return m;
    char line[512];
    const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    while (std::fgets(line, sizeof line, f) != nullptr) {
      unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                         steal = 0;
      if (line[0] != 'c' || line[1] != 'p' || line[2] != 'u') break;
      if (line[3] == ' ') {  // the "cpu" total line; guest time is already inside user
        if (std::sscanf(line + 3, "%llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system,
                        &idle, &iowait, &irq, &softirq, &steal) >= 7) {
          m.busy_s = tick * static_cast<double>(user + nice + system + irq + softirq + steal);
        }
      } else {
        m.cpus += 1;
      }
    }
    std::fclose(f);
    return m;
  }
};

inline double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

template <class T>
T median(std::vector<T> v) {
  if (v.empty()) return T{};
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Cross-PU round trip: a thread on PU `a` and one on PU `b` ping-pong one atomic word; the
// median of `rounds` timed round trips (each sample includes one steady_clock read, ~20 ns).
// Neither thread is the caller, so the caller's placement is left alone. Returns -1 when the
// machine has fewer than two PUs or the probe does not finish within 2 s (a busy machine that
// deschedules one side for long).
inline double probe_rtt_ns(const topology::Topology& topo, unsigned a, unsigned b,
                           int rounds = 1000) {
  if (topo.num_pus() <= std::max(a, b)) return -1;
  constexpr int kWarmup = 100;
  struct alignas(128) Word {
    std::atomic<std::uint64_t> v{0};
  } word;
  std::atomic<bool> give_up{false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(rounds));

  // Spins until `word` reaches `want`; false if the probe gave up.
  auto await = [&](std::uint64_t want) {
    for (unsigned i = 0;; ++i) {
      // acquire: pairs with the other side's release store below (the ping or the pong).
      if (word.v.load(std::memory_order_acquire) == want) return true;
      if ((i & 0xfff) == 0xfff) {
        // relaxed: a stop hint only.
        if (give_up.load(std::memory_order_relaxed)) return false;
        if (std::chrono::steady_clock::now() > deadline) {
          give_up.store(true, std::memory_order_relaxed);  // relaxed: a stop hint only
          return false;
        }
      }
      cpu_relax();
    }
  };
  const auto total = static_cast<std::uint64_t>(kWarmup + rounds);
  // A refused binding ends the probe (-1), not the process.
  auto pin_or_give_up = [&](unsigned pu) {
    try {
      topo.pin_current_thread(pu);
      return true;
    } catch (const topology::Error&) {
      give_up.store(true, std::memory_order_relaxed);  // relaxed: a stop hint only
      return false;
    }
  };
  std::thread pong([&] {
    if (!pin_or_give_up(b)) return;
    for (std::uint64_t k = 0; k < total; ++k) {
      if (!await(2 * k + 1)) return;
      word.v.store(2 * k + 2, std::memory_order_release);  // release: pairs with await() in ping
    }
  });
  std::thread ping([&] {
    if (!pin_or_give_up(a)) return;
    for (std::uint64_t k = 0; k < total; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      word.v.store(2 * k + 1, std::memory_order_release);  // release: pairs with await() in pong
      if (!await(2 * k + 2)) return;
      const auto t1 = std::chrono::steady_clock::now();
      if (k >= static_cast<std::uint64_t>(kWarmup)) {
        samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      }
    }
  });
  ping.join();
  pong.join();
  if (static_cast<int>(samples.size()) < rounds) return -1;
  return median(std::move(samples));
}

// ---- command-line flags of the benchmark executables ----

// The value of `--name=value` in `arg`, or null if `arg` is not that flag.
inline const char* flag_value(std::string_view arg, std::string_view name) {
  if (arg.size() > name.size() + 3 && arg.substr(0, 2) == "--" &&
      arg.substr(2, name.size()) == name && arg[2 + name.size()] == '=') {
    return arg.data() + 3 + name.size();
  }
  return nullptr;
}

// Sets `field` from the environment variable `var` when it is set and non-empty (a number).
template <class Field>
void number_from_env(const char* var, Field& field) {
  if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
    field = static_cast<Field>(std::strtod(v, nullptr));
  }
}

// The flags every benchmark executable shares, --items=N --reps=N --stall_s=S --cap_s=S, with
// environment fallbacks <env_prefix>_ITEMS, _REPS, _STALL_S, _CAP_S read first. `extra(arg)`
// sees every other argument and returns true when it consumed it (an executable's own flags);
// what nobody consumed stays in argv for Google Benchmark. reps and items end >= 1.
template <class Config, class Extra>
void parse_common_flags(int& argc, char** argv, const std::string& env_prefix, Config& config,
                        Extra extra) {
  number_from_env((env_prefix + "_ITEMS").c_str(), config.items);
  number_from_env((env_prefix + "_REPS").c_str(), config.reps);
  number_from_env((env_prefix + "_STALL_S").c_str(), config.stall_s);
  number_from_env((env_prefix + "_CAP_S").c_str(), config.cap_s);
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (const char* v = flag_value(a, "items")) {
      config.items = static_cast<decltype(config.items)>(std::strtod(v, nullptr));
    } else if (const char* v = flag_value(a, "reps")) {
      config.reps = std::atoi(v);
    } else if (const char* v = flag_value(a, "stall_s")) {
      config.stall_s = std::strtod(v, nullptr);
    } else if (const char* v = flag_value(a, "cap_s")) {
      config.cap_s = std::strtod(v, nullptr);
    } else if (!extra(a)) {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  argv[argc] = nullptr;
  if (config.reps < 1) config.reps = 1;
  if (config.items < 1) config.items = 1;
}

// Context every benchmark's JSON carries: compiler, flags, whether assertions were on, kernel.
// (CONVEYOR_BENCH_COMPILER / _CXX_FLAGS are compile definitions of each bench target.)
inline void add_build_context() {
  benchmark::AddCustomContext("conveyor_compiler", CONVEYOR_BENCH_COMPILER);
  benchmark::AddCustomContext("conveyor_cxx_flags", CONVEYOR_BENCH_CXX_FLAGS);
#ifdef NDEBUG
  benchmark::AddCustomContext("conveyor_build", "NDEBUG");
#else
  benchmark::AddCustomContext("conveyor_build", "assertions on (not a release build)");
#endif
  utsname u{};
  if (uname(&u) == 0) {
    benchmark::AddCustomContext("kernel",
                                std::string(u.sysname) + " " + u.release + " " + u.version);
  }
}

// The command line as typed (before parse_common_flags() removes our flags).
inline std::string command_line(int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) command += ' ';
    command += argv[i];
  }
  return command;
}

}  // namespace conveyor::bench
