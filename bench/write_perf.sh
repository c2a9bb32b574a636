#!/usr/bin/env bash
# Regenerates PERF.md from every benchmark result on disk (bench/results/*.json), so that a script
# that re-measures one section keeps all the others. Arguments go to bench/make_perf.py after the
# defaults; argparse keeps a flag's last value, so a script names the file it just wrote, e.g.
#   bash bench/write_perf.sh --ingest "$out"
# (make_perf.py adds the NATS JetStream section by itself when bench/results/jetstream.json
# exists.) Environment: PERF_OUT (default PERF.md). bench/run_perf.sh, whose inputs are
# configurable by environment, calls make_perf.py with the same flags itself.
set -euo pipefail
cd "$(dirname "$0")/.."
perf_out="${PERF_OUT:-PERF.md}"
python3 bench/make_perf.py bench/results/queue_bench.json --runners bench/results/runner_bench.json \
  --shuffle bench/results/shuffle_bench.json --ingest bench/results/ingest.json \
  --perf bench/results/perf.json --perf-plots docs/perf \
  --trace bench/results/trace_overhead.json "$@" > "${perf_out}.tmp"
mv "${perf_out}.tmp" "${perf_out}"
