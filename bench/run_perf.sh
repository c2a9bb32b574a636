#!/usr/bin/env bash
# Builds queue_bench and runner_bench (release preset), runs them one after the other, and
# regenerates PERF.md from their JSON.
#
#   bench/run_perf.sh [queue_bench flags...]
#     e.g. bench/run_perf.sh --reps=9
#          bench/run_perf.sh --items=262144 --reps=5 --benchmark_filter=Spsc   (a quick look)
#   RUNNERS_ONLY=1 bench/run_perf.sh [runner_bench flags...]
#     reruns only runner_bench; the queue sections are regenerated from the existing
#     queue_bench JSON. e.g. RUNNERS_ONLY=1 bench/run_perf.sh --reps=7 --items=4194304
#   SHUFFLE_ONLY=1 bench/run_perf.sh [shuffle_bench flags...]
#     runs only shuffle_bench (ShuffleQueue vs a TF-style mutex shuffle queue); the other
#     sections come from the existing JSON. e.g. SHUFFLE_ONLY=1 bench/run_perf.sh --reps=15
#   PERF_ONLY=1 bench/run_perf.sh [conveyor perf flags...]
#     runs only `conveyor perf` (tools/perf.h) into PERF_RESULTS; its section leads PERF.md, with
#     plots in docs/perf/; the other sections come from their existing JSON.
#     e.g. PERF_ONLY=1 bench/run_perf.sh --quick
#   PLACEMENTS_ONLY=1 bench/run_perf.sh [conveyor perf flags...]
#     runs only `conveyor perf --scenarios spsc_pinned,bulk` into PLACEMENTS_RESULTS, for the 1P1C
#     targets in both near and far placements (PERF.md, inside the perf section); the rest comes
#     from the existing JSON. e.g. PLACEMENTS_ONLY=1 bench/run_perf.sh --reps 25
#   QUEUES_ONLY=1 bench/run_perf.sh [queue_bench flags...]
#     runs only queue_bench; the runner section comes from the existing runner_bench JSON (or
#     says how to produce it).
#
# Flags are passed to the one benchmark that runs alone, or to queue_bench when both run (its
# own: --items --reps --stall_s --cap_s --idle_s; runner_bench's: --items --reps --stall_s
# --cap_s; both take Google Benchmark's --benchmark_*). Environment:
#   RUNNER_FLAGS    extra runner_bench flags, whitespace-separated (e.g. "--reps=7")
#   BUILD_DIR       build directory (default: the release preset's, build/release)
#   RESULTS         queue_bench JSON (default bench/results/queue_bench.json)
#   RUNNER_RESULTS  runner_bench JSON (default bench/results/runner_bench.json)
#   SHUFFLE_RESULTS shuffle_bench JSON (default bench/results/shuffle_bench.json)
#   PERF_RESULTS    conveyor perf JSON (default bench/results/perf.json)
#   PLACEMENTS_RESULTS  the PLACEMENTS_ONLY run's JSON (default bench/results/perf_placements.json)
#   PERF_OUT        generated report (default PERF.md)
#   JOBS            build parallelism (default 2)
# The console output goes to the terminal and to ${RESULTS%.json}.txt (and
# ${RUNNER_RESULTS%.json}.txt). Each JSON is written to a .tmp file first, so an interrupted run
# leaves the previous results alone; the finished JSON is stamped with the commit and the
# command (context conveyor_commit, conveyor_run_command) so that a later regeneration reports
# them, not the commit of that later day.
# Measure on a quiet machine: other work on the same cores shows up as noise (PERF.md records
# the load average and tags every run by the PU-to-PU round trip it saw).
set -euo pipefail

cd "$(dirname "$0")/.."
jobs="${JOBS:-2}"
results="${RESULTS:-bench/results/queue_bench.json}"
runner_results="${RUNNER_RESULTS:-bench/results/runner_bench.json}"
perf_out="${PERF_OUT:-PERF.md}"
runners_only="${RUNNERS_ONLY:-0}"
queues_only="${QUEUES_ONLY:-0}"
shuffle_results="${SHUFFLE_RESULTS:-bench/results/shuffle_bench.json}"
shuffle_only="${SHUFFLE_ONLY:-0}"
perf_results="${PERF_RESULTS:-bench/results/perf.json}"
perf_only="${PERF_ONLY:-0}"
placements_results="${PLACEMENTS_RESULTS:-bench/results/perf_placements.json}"
placements_only="${PLACEMENTS_ONLY:-0}"
if [[ "${placements_only}" == 1 ]]; then
  if [[ "${perf_only}" == 1 || "${runners_only}" == 1 || "${queues_only}" == 1 || "${shuffle_only}" == 1 ]]; then
    echo "run_perf.sh: PLACEMENTS_ONLY=1 runs only conveyor perf's 1P1C scenarios; drop the other *_ONLY" >&2
    exit 2
  fi
  if [[ ! -f "${results}" || ! -f "${perf_results}" ]]; then
    echo "run_perf.sh: PLACEMENTS_ONLY=1 needs existing ${results} and ${perf_results}; run PERF_ONLY=1 first" >&2
    exit 2
  fi
fi
if [[ "${perf_only}" == 1 ]]; then
  if [[ "${runners_only}" == 1 || "${queues_only}" == 1 || "${shuffle_only}" == 1 ]]; then
    echo "run_perf.sh: PERF_ONLY=1 runs only conveyor perf; drop RUNNERS_ONLY/QUEUES_ONLY/SHUFFLE_ONLY" >&2
    exit 2
  fi
  if [[ ! -f "${results}" ]]; then
    echo "run_perf.sh: PERF_ONLY=1 needs an existing ${results}; run without it first" >&2
    exit 2
  fi
fi
if [[ "${shuffle_only}" == 1 ]]; then
  if [[ "${runners_only}" == 1 || "${queues_only}" == 1 ]]; then
    echo "run_perf.sh: SHUFFLE_ONLY=1 runs only shuffle_bench; drop RUNNERS_ONLY/QUEUES_ONLY" >&2
    exit 2
  fi
  if [[ ! -f "${results}" ]]; then
    echo "run_perf.sh: SHUFFLE_ONLY=1 needs an existing ${results}; run without it first" >&2
    exit 2
  fi
fi
if [[ "${runners_only}" == 1 && "${queues_only}" == 1 ]]; then
  echo "run_perf.sh: RUNNERS_ONLY=1 and QUEUES_ONLY=1 together run nothing" >&2
  exit 2
fi
if [[ "${runners_only}" == 1 && ! -f "${results}" ]]; then
  echo "run_perf.sh: RUNNERS_ONLY=1 needs an existing ${results}; run without it first" >&2
  exit 2
fi

targets=()
if [[ "${perf_only}" == 1 || "${placements_only}" == 1 ]]; then
  targets=(conveyor conveyor_perf_worker)
elif [[ "${shuffle_only}" == 1 ]]; then
  targets=(shuffle_bench)
else
  [[ "${runners_only}" == 1 ]] || targets+=(queue_bench)
  [[ "${queues_only}" == 1 ]] || targets+=(runner_bench)
fi

if [[ -z "${BUILD_DIR:-}" && -f CMakePresets.json ]]; then
  build_dir=build/release
  cmake --preset release
  cmake --build --preset release --target "${targets[@]}" -j"${jobs}"
elif [[ -f CMakePresets.json ]]; then
  build_dir="${BUILD_DIR}"
  cmake --preset release -B "${build_dir}"
  cmake --build "${build_dir}" --target "${targets[@]}" -j"${jobs}"
else
  build_dir="${BUILD_DIR:-build/release}"
  cmake -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build "${build_dir}" --target "${targets[@]}" -j"${jobs}"
fi

# The commit the binaries were built from, as make_perf.py words it. This script's own outputs
# (the report and the results) do not make the build dirty.
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain --untracked-files=no -- . ":(exclude)${perf_out}" \
  ":(exclude)$(dirname "${results}")" ":(exclude)$(dirname "${runner_results}")" 2>/dev/null \
  || true)"
if [[ "${commit}" != unknown && -n "${dirty}" ]]; then
  commit+=" (with uncommitted changes)"
fi

# stamp FILE COMMAND: adds conveyor_commit and conveyor_run_command at the top of the JSON's
# context, leaving the rest of Google Benchmark's formatting as it is.
stamp() {
  python3 - "$1" "${commit}" "$2" <<'EOF'
import json, sys
path, commit, command = sys.argv[1:4]
text = open(path).read()
head = '"context": {'
i = text.index(head) + len(head)
add = (f'\n    "conveyor_commit": {json.dumps(commit)},'
       f'\n    "conveyor_run_command": {json.dumps(command)},')
open(path, "w").write(text[:i] + add + text[i:])
json.loads(open(path).read())  # still valid
EOF
}

mkdir -p "$(dirname "${results}")" "$(dirname "${runner_results}")"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [[ "${perf_only}" == 1 ]]; then
  # The progress bar and the summary go to the terminal; the records into the JSON.
  "${build_dir}/tools/conveyor" perf --json "${perf_results}.tmp" "$@" \
    | tee "${perf_results%.json}.txt"
  mv "${perf_results}.tmp" "${perf_results}"
  runners_only=1
  queues_only=1
elif [[ "${placements_only}" == 1 ]]; then
  "${build_dir}/tools/conveyor" perf --scenarios spsc_pinned,bulk \
    --json "${placements_results}.tmp" "$@" | tee "${placements_results%.json}.txt"
  mv "${placements_results}.tmp" "${placements_results}"
  runners_only=1
  queues_only=1
elif [[ "${shuffle_only}" == 1 ]]; then
  "${build_dir}/bench/shuffle_bench" --benchmark_format=console \
    --benchmark_out="${shuffle_results}.tmp" --benchmark_out_format=json "$@" \
    | tee "${shuffle_results%.json}.txt"
  stamp "${shuffle_results}.tmp" "SHUFFLE_ONLY=1 bench/run_perf.sh${*:+ $*}"
  mv "${shuffle_results}.tmp" "${shuffle_results}"
  # The other sections come from their existing JSON.
  runners_only=1
  queues_only=1
elif [[ "${runners_only}" != 1 ]]; then
  # Console format on stdout (progress while it runs), JSON into the results file.
  "${build_dir}/bench/queue_bench" --benchmark_format=console \
    --benchmark_out="${results}.tmp" --benchmark_out_format=json "$@" \
    | tee "${results%.json}.txt"
  stamp "${results}.tmp" "bench/run_perf.sh${*:+ $*}"
  mv "${results}.tmp" "${results}"
fi
if [[ "${queues_only}" != 1 ]]; then
  runner_args=()
  read -r -a runner_args <<< "${RUNNER_FLAGS:-}"
  [[ "${runners_only}" == 1 ]] && runner_args+=("$@")
  echo "load average before runner_bench: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "${build_dir}/bench/runner_bench" --benchmark_format=console \
    --benchmark_out="${runner_results}.tmp" --benchmark_out_format=json "${runner_args[@]}" \
    | tee "${runner_results%.json}.txt"
  runner_command="RUNNERS_ONLY=1 bench/run_perf.sh"
  [[ ${#runner_args[@]} -gt 0 ]] && runner_command+=" ${runner_args[*]}"
  stamp "${runner_results}.tmp" "${runner_command}"
  mv "${runner_results}.tmp" "${runner_results}"
fi

# The queue sections' command: the stamp in their JSON, else (an unstamped file) this command
# when queue_bench just ran.
queue_command=()
[[ "${runners_only}" == 1 ]] || queue_command=(--command "bench/run_perf.sh${*:+ $*}")
[[ "${shuffle_only}" == 1 || "${perf_only}" == 1 || "${placements_only}" == 1 ]] && queue_command=()
python3 bench/make_perf.py "${results}" "${queue_command[@]}" --runners "${runner_results}" \
  --shuffle "${shuffle_results}" --ingest bench/results/ingest.json \
  --perf "${perf_results}" --perf-placements "${placements_results}" --perf-plots docs/perf \
  --trace bench/results/trace_overhead.json > "${perf_out}.tmp"
mv "${perf_out}.tmp" "${perf_out}"
echo "wrote ${perf_out} from ${results}, ${runner_results} and ${shuffle_results}" >&2
