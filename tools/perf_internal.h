// Internal to `conveyor perf` (perf.cc, perf_host.cc, perf_summary.cc): what the driver's
// pieces call of each other. Not part of the tool's contract (perf.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/perf.h"

namespace conveyor::topology {
class Topology;
}

namespace conveyor::tools::perf {

// ---- perf_host.cc ----

std::string read_file(const std::string& path);
// The end of a worker's log for an error message: at most `max_chars` ("..." before a cut),
// on one line.
std::string last_lines(const std::string& text, std::size_t max_chars);

struct Child {
  int exit_code = -1;  // -1: killed by a signal or by us
  int signal = 0;
  bool killed_after_timeout = false;
};

// Runs argv with stdout and stderr into `log`; kills it after `timeout_s`. The worker gets this
// process's environment without CONVEYOR_TRACE / CONVEYOR_TRACE_EVENTS (engine/trace.h): a
// measurement runs with tracing off unless it says otherwise (the trace scenario's "on").
Child spawn_and_wait(const std::vector<std::string>& args, const std::string& log,
                     double timeout_s);

// The worker binaries: --worker, CONVEYOR_PERF_WORKER, next to this executable, or the build
// tree's path; a std::runtime_error naming what was tried otherwise.
std::string find_worker(const Options& o);
std::string find_notrace_worker(const Options& o, const std::string& worker);

std::string cpu_model();
// memcpy bandwidth of this machine over `bytes`, GB/s (best of 4 passes).
double memcpy_gbps(std::size_t bytes);
// The 1, 5 and 15 minute load averages, as /proc/loadavg has them.
std::string loadavg();
nlohmann::ordered_json header_json(const Options& o, const topology::Topology& topo,
                                   const std::string& command, const std::string& worker,
                                   double memcpy);

// ---- perf_summary.cc ----

// "1m05s".
std::string fmt_duration(double s);

class ProgressBar {
 public:
  ProgressBar(bool enabled, std::size_t total)
      : tty_(enabled && isatty(2) != 0), enabled_(enabled), total_(total),
        start_(std::chrono::steady_clock::now()) {}

  void show(std::size_t done, const Spec& s) {
    if (!enabled_) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta = done > 0 ? elapsed / static_cast<double>(done) *
                                      static_cast<double>(total_ - done)
                                : 0;
    char what[160];
    std::snprintf(what, sizeof what, "%s %s %dP%dC b%d %s %zuB rep %d", s.scenario.c_str(),
                  s.queue.c_str(), s.producers, s.consumers, s.batch, s.placement.c_str(),
                  s.element_bytes, s.rep);
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = total_ == 0 ? kWidth : static_cast<int>(kWidth * done / total_);
      std::fprintf(stderr, "\r\033[K[%s%s] %zu/%zu %s elapsed %s eta %s",
                   std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(), done,
                   total_, what, fmt_duration(elapsed).c_str(), fmt_duration(eta).c_str());
    } else {
      std::fprintf(stderr, "perf: %zu/%zu %s\n", done + 1, total_, what);
    }
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_ && tty_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool tty_;
  bool enabled_;
  std::size_t total_;
  std::chrono::steady_clock::time_point start_;
};

// Medians per queue and configuration, ratios to the best peer within one placement tag.
void print_summary(const std::vector<Record>& records, double memcpy);

}  // namespace conveyor::tools::perf
