#!/usr/bin/env bash
# Measures the NATS JetStream source: builds jetstream_bench (release preset), runs it (it
# starts its own nats-server on a free loopback port), stamps its JSON with the commit and the
# command into bench/results/jetstream.json, and regenerates PERF.md from the results on disk
# (make_perf.py's section "NATS JetStream source"; the other sections from their JSON as is).
#   bench/jetstream_perf.sh [jetstream_bench flags...]   e.g. --messages=400000 --reps=9
# Environment: BUILD_DIR (default build/release), PERF_OUT (default PERF.md).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build/release}"
perf_out="${PERF_OUT:-PERF.md}"
out=bench/results/jetstream.json

cmake --preset release >/dev/null
cmake --build "${build_dir}" --target jetstream_bench -j2 >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"${build_dir}/bench/jetstream_bench" --json="$tmp/run.json" "$@"
python3 - "$tmp/run.json" "$out" "bench/jetstream_perf.sh${*:+ $*}" <<'PY'
import json, subprocess, sys
src, out, command = sys.argv[1], sys.argv[2], sys.argv[3]
doc = json.load(open(src))
doc["command"] = command
doc["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True).stdout.strip()
json.dump(doc, open(out, "w"), indent=1)
PY
PERF_OUT="${perf_out}" bash bench/write_perf.sh --jetstream "$out"
echo "wrote ${out} and ${perf_out}" >&2
