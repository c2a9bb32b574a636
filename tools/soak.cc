#include "tools/soak.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/schedule_harness.h"

namespace conveyor::tools {

namespace {

using Clock = std::chrono::steady_clock;

// Resident set size in bytes (/proc/self/statm, second field, in pages); 0 if unreadable.
std::uint64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

}  // namespace

int run_soak(const SoakOptions& o) {
  using schedule::Result;
  using schedule::Tally;
  std::optional<std::uint64_t> only = o.seed;
  if (!only) {
    if (const char* env = std::getenv("CONVEYOR_SCHEDULE_SEED"); env != nullptr && *env != '\0') {
      only = std::strtoull(env, nullptr, 10);
    }
  }
  const std::uint64_t first = only ? *only : o.first_seed ? *o.first_seed : std::random_device{}();
  const double total_seconds = only ? 0.0 : o.minutes * 60.0;
  const bool tty = isatty(STDERR_FILENO) == 1;
  if (!only) {
    std::fprintf(stderr, "conveyor soak: %s of seeded schedules from seed %llu (%s)\n",
                 clock_text(total_seconds).c_str(), static_cast<unsigned long long>(first),
                 "rerun one with --seed S");
  }

  Tally total;
  std::vector<std::string> failures;
  std::uint64_t seed = first;
  const auto start = Clock::now();
  auto next_sample = start;
  std::uint64_t baseline = 0;   // RSS at the end of warm-up (first quarter)
  std::uint64_t peak_after = 0;  // highest RSS sampled after warm-up
  std::uint64_t rss_first = rss_bytes();
  std::uint64_t rss_last = rss_first;
  std::uint64_t samples = 0;
  auto last_line = start;
  for (;;) {
    const Result r = schedule::run_schedule(seed, o.program);
    total += r.tally;
    if (!r.ok()) {
      failures.push_back(r.failure);
      std::fprintf(stderr, "%sschedule FAILED: %s\n", tty && o.progress ? "\n" : "",
                   r.failure.c_str());
    }
    ++seed;
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (now >= next_sample) {  // once a second
      next_sample = now + std::chrono::seconds(1);
      rss_last = rss_bytes();
      ++samples;
      if (elapsed < total_seconds / 4) {
        baseline = rss_last;
      } else {
        if (baseline == 0) baseline = rss_last;
        peak_after = std::max(peak_after, rss_last);
      }
      const bool line_due = tty || now - last_line >= std::chrono::seconds(10);
      if (o.progress && line_due && !only) {
        last_line = now;
        std::fprintf(stderr,
                     "%ssoak %s / %s  schedules %llu  items %llu  timeouts %llu  faults %llu  "
                     "lost %llu  dup %llu  failed %llu  RSS %.1f MiB%s",
                     tty ? "\r" : "", clock_text(elapsed).c_str(),
                     clock_text(total_seconds).c_str(),
                     static_cast<unsigned long long>(total.runs),
                     static_cast<unsigned long long>(total.dequeued),
                     static_cast<unsigned long long>(total.timeouts),
                     static_cast<unsigned long long>(total.injected_throws),
                     static_cast<unsigned long long>(total.lost),
                     static_cast<unsigned long long>(total.duplicated),
                     static_cast<unsigned long long>(total.failed_runs), mib(rss_last),
                     tty ? "   " : "\n");
        std::fflush(stderr);
      }
    }
    if (only || elapsed >= total_seconds) break;
  }
  if (o.progress && tty && !only) std::fputc('\n', stderr);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  rss_last = rss_bytes();
  peak_after = std::max(peak_after, rss_last);
  if (baseline == 0) baseline = rss_last;
  const double growth = peak_after > baseline ? mib(peak_after - baseline) : 0.0;
  // Under AddressSanitizer freed memory waits in its quarantine (256 MiB by default) before it
  // is reused, so RSS grows by design: the growth is reported, not judged.
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool kRssJudged = false;
#else
  constexpr bool kRssJudged = true;
#endif
  const bool rss_flat = only || !kRssJudged || growth <= o.rss_growth_mib;
  const bool ok = failures.empty() && rss_flat;

  std::printf("schedules: %llu (seeds %llu..%llu) in %.1f s\n",
              static_cast<unsigned long long>(total.runs), static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(seed - 1), elapsed);
  std::printf("items moved: %llu (enqueued %llu, returned to producers %llu)\n",
              static_cast<unsigned long long>(total.dequeued),
              static_cast<unsigned long long>(total.enqueued),
              static_cast<unsigned long long>(total.returned));
  std::printf("deadlines hit: %llu, injected runner faults: %llu\n",
              static_cast<unsigned long long>(total.timeouts),
              static_cast<unsigned long long>(total.injected_throws));
  std::printf("lost: %llu, duplicated: %llu, phantom: %llu, misordered: %llu, hung: %llu, "
              "failed runs: %llu\n",
              static_cast<unsigned long long>(total.lost),
              static_cast<unsigned long long>(total.duplicated),
              static_cast<unsigned long long>(total.phantom),
              static_cast<unsigned long long>(total.misordered),
              static_cast<unsigned long long>(total.hung),
              static_cast<unsigned long long>(total.failed_runs));
  std::printf("RSS: start %.1f MiB, after warm-up %.1f MiB, peak after warm-up %.1f MiB, "
              "growth %.2f MiB (limit %.1f): %s\n",
              mib(rss_first), mib(baseline), mib(peak_after), growth, o.rss_growth_mib,
              only         ? "not checked (one seed)"
              : !kRssJudged ? "not judged (AddressSanitizer's quarantine keeps freed memory)"
              : rss_flat    ? "flat"
                            : "GROWING");
  std::printf("soak: %s\n", ok ? "passed" : "FAILED");
  if (!o.json.empty()) {
    nlohmann::json j = {
        {"schedules", total.runs},
        {"first_seed", first},
        {"last_seed", seed - 1},
        {"seconds", elapsed},
        {"items_moved", total.dequeued},
        {"enqueued", total.enqueued},
        {"returned", total.returned},
        {"timeouts", total.timeouts},
        {"injected_throws", total.injected_throws},
        {"lost", total.lost},
        {"duplicated", total.duplicated},
        {"phantom", total.phantom},
        {"misordered", total.misordered},
        {"hung", total.hung},
        {"failed_runs", total.failed_runs},
        {"rss_samples", samples},
        {"rss_start_mib", mib(rss_first)},
        {"rss_baseline_mib", mib(baseline)},
        {"rss_peak_after_warmup_mib", mib(peak_after)},
        {"rss_growth_mib", growth},
        {"rss_flat", rss_flat},
        {"passed", ok},
        {"failures", failures},
    };
    std::ofstream(o.json) << j.dump(2) << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace conveyor::tools
