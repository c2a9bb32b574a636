#!/usr/bin/env bash
# Measures the main job: runs `conveyor ingest` on its default dataset REPS times (default 7)
# and collects each run's --json summary into bench/results/ingest.json, which
# `make_perf.py --ingest` turns into PERF.md's "conveyor ingest" section; then regenerates
# PERF.md from the results already on disk (run_perf.sh's other JSON files are reused as they are).
#   bench/ingest_perf.sh [conveyor ingest flags...]     e.g. bench/ingest_perf.sh --epochs 4
# Environment: REPS (default 7), BUILD_DIR (default build/release), PERF_OUT (default PERF.md).
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${REPS:-7}"
build_dir="${BUILD_DIR:-build/release}"
perf_out="${PERF_OUT:-PERF.md}"
out=bench/results/ingest.json

cmake --preset release >/dev/null
cmake --build "${build_dir}" --target conveyor -j2 >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((i = 0; i < reps; i++)); do
  "${build_dir}/tools/conveyor" ingest --no-progress --json "$tmp/run$i.json" "$@" >&2
done
python3 - "$tmp" "$reps" "$out" "bench/ingest_perf.sh${*:+ $*}" <<'PY'
import json, os, subprocess, sys
tmp, reps, out, command = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = [json.load(open(os.path.join(tmp, f"run{i}.json"))) for i in range(reps)]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip()
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
json.dump({"command": command, "commit": commit, "load_after": load, "runs": runs},
          open(out, "w"), indent=1)
PY
PERF_OUT="${perf_out}" bash bench/write_perf.sh --ingest "$out"
echo "wrote ${out} and ${perf_out}" >&2
