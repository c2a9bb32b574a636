// trace_probe: records N trace events or N runner ops on one thread with tracing on, so that
// bench/trace_overhead.sh can count with callgrind the instructions one event and one op cost
// (deterministic, unlike timings on a busy machine). Not a timing benchmark.
//
//   trace_probe N events|ops TRACE_FILE
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/trace.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: trace_probe N events|ops TRACE_FILE\n");
    return 2;
  }
  const long n = std::strtol(argv[1], nullptr, 10);
  const std::string mode = argv[2];
  conveyor::trace::Options options;
  options.path = argv[3];
  options.events_per_thread = 1 << 16;
  conveyor::trace::start(options);
  conveyor::trace::occupancy(1, 0);  // the thread's ring is allocated here, outside the count
  for (long i = 0; i < n; ++i) {
    if (mode == "events") {
      conveyor::trace::occupancy(1, static_cast<std::size_t>(i));
    } else {
      conveyor::trace::op_begin(2);
      conveyor::trace::op_end(2, true);
    }
  }
  const conveyor::trace::Summary s = conveyor::trace::stop();
  std::printf("%llu events\n", static_cast<unsigned long long>(s.events));
  return 0;
}
