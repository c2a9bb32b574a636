#!/usr/bin/env bash
# Builds queue_bench (release preset), runs it, and regenerates PERF.md from its JSON.
#
#   bench/run_perf.sh [queue_bench flags...]
#     e.g. bench/run_perf.sh --reps=9
#          bench/run_perf.sh --items=262144 --reps=5 --benchmark_filter=Spsc   (a quick look)
#
# Flags are passed to queue_bench (its own: --items --reps --stall_s --cap_s --idle_s; and Google
# Benchmark's --benchmark_*). Environment, for running outside the source tree's defaults:
#   BUILD_DIR  build directory (default: the release preset's, build/release)
#   RESULTS    JSON output (default bench/results/queue_bench.json)
#   PERF_OUT   generated report (default PERF.md)
#   JOBS       build parallelism (default 2)
# The console output goes to the terminal and to ${RESULTS%.json}.txt. The JSON is written to a
# .tmp file first, so an interrupted run leaves the previous results alone.
# Measure on a quiet machine: other work on the same cores shows up as noise (PERF.md records
# the load average and tags every run by the PU-to-PU round trip it saw).
set -euo pipefail

cd "$(dirname "$0")/.."
jobs="${JOBS:-2}"
results="${RESULTS:-bench/results/queue_bench.json}"
perf_out="${PERF_OUT:-PERF.md}"

if [[ -z "${BUILD_DIR:-}" && -f CMakePresets.json ]]; then
  build_dir=build/release
  cmake --preset release
  cmake --build --preset release --target queue_bench -j"${jobs}"
elif [[ -f CMakePresets.json ]]; then
  build_dir="${BUILD_DIR}"
  cmake --preset release -B "${build_dir}"
  cmake --build "${build_dir}" --target queue_bench -j"${jobs}"
else
  build_dir="${BUILD_DIR:-build/release}"
  cmake -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build "${build_dir}" --target queue_bench -j"${jobs}"
fi

mkdir -p "$(dirname "${results}")"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# Console format on stdout (progress while it runs), JSON into the results file.
"${build_dir}/bench/queue_bench" --benchmark_format=console \
  --benchmark_out="${results}.tmp" --benchmark_out_format=json "$@" \
  | tee "${results%.json}.txt"
mv "${results}.tmp" "${results}"

python3 bench/make_perf.py "${results}" --command "bench/run_perf.sh${*:+ $*}" > "${perf_out}.tmp"
mv "${perf_out}.tmp" "${perf_out}"
echo "wrote ${results} and ${perf_out}" >&2
