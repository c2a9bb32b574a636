// `conveyor soak`: the randomized schedule tester (tests/schedule_harness.h) run for as long as
// the user asks, with a progress line, and the process's resident set sampled once a second.
//
//   conveyor soak --minutes 30 [--first-seed S | --seed S] [--json out.json] [--no-progress]
//
// Seeds run one after another from --first-seed (default: from std::random_device, printed);
// --seed (or CONVEYOR_SCHEDULE_SEED) runs one seed, the repro command of a failure. Every run
// is checked as in tests/schedule_test.cc (conservation, per-producer order, every thread ends,
// join within grace); a failure prints the seed and its repro command, a hang aborts after
// printing them.
// Memory: RSS is sampled every second. The first quarter of the run is warm-up (allocator
// caches, thread stacks); afterwards the RSS must stay within --rss-growth-mib of its value at
// the end of warm-up ("flat after warm-up"), else the soak fails. The summary prints the
// samples' baseline, maximum and growth.
// Exit code: 0 every run passed and RSS stayed flat, 1 otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace conveyor::tools {

struct SoakOptions {
  double minutes = 1.0;
  std::optional<std::uint64_t> first_seed;  // default: random, printed
  std::optional<std::uint64_t> seed;        // only this seed
  double rss_growth_mib = 8.0;              // allowed growth after warm-up
  std::string json;                         // write the summary here as one JSON object
  bool progress = true;
  std::string program = "conveyor soak";    // for repro commands
};

int run_soak(const SoakOptions& options);

}  // namespace conveyor::tools
