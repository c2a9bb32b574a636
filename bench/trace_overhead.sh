#!/usr/bin/env bash
# What tracing (engine/trace.h) costs the main job, measured three ways in one run:
#   out: `conveyor ingest` built with -DCONVEYOR_TRACING=OFF (every trace point compiled out)
#   off: the default build (trace points compiled in), tracing off at run time
#   on:  the default build with `--trace FILE` (every event recorded)
# REPS rounds (default 9); each round runs the three once, in a rotating order (out off on,
# off on out, on out off) so that no configuration always runs first after a pause. Medians
# and the medians of same-round ratios go to bench/results/trace_overhead.json, which
# `make_perf.py --trace` turns into PERF.md's "Tracing overhead" section; then PERF.md is
# regenerated from the results on disk (as bench/ingest_perf.sh does).
# Because a noisy machine can hide a few percent, it also counts instructions with callgrind
# (deterministic) on bench/hot_path_probe, FifoQueue's and ShuffleQueue's fast paths, built both
# ways.
#   bench/trace_overhead.sh [conveyor ingest flags...]    (default: --epochs 6)
# Environment: REPS (default 9), PERF_OUT (default PERF.md).
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${REPS:-9}"
perf_out="${PERF_OUT:-PERF.md}"
out=bench/results/trace_overhead.json
ingest_args=("$@")
[[ ${#ingest_args[@]} -eq 0 ]] && ingest_args=(--epochs 6)

cmake --preset release >/dev/null
cmake --build build/release --target conveyor hot_path_probe trace_probe -j2 >/dev/null
cmake --preset release -B build/release-notrace -DCONVEYOR_TRACING=OFF >/dev/null
cmake --build build/release-notrace --target conveyor hot_path_probe -j2 >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The dataset is generated once, outside the measured runs.
build/release/tools/conveyor ingest --no-progress --epochs 1 >/dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before the runs: ${load_before}" >&2

run() {  # run CONFIG ROUND
  local config=$1 round=$2 bin=build/release/tools/conveyor extra=()
  [[ "$config" == out ]] && bin=build/release-notrace/tools/conveyor
  [[ "$config" == on ]] && extra=(--trace "$tmp/on.trace")
  "$bin" ingest --no-progress --json "$tmp/$config-$round.json" "${ingest_args[@]}" "${extra[@]}" \
    >/dev/null 2>"$tmp/$config-$round.err" || { cat "$tmp/$config-$round.err" >&2; exit 1; }
  echo "round $round $config: $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['records_per_second']/1e6, 3))" "$tmp/$config-$round.json") M records/s" >&2
}
orders=("out off on" "off on out" "on out off")
for ((i = 0; i < reps; i++)); do
  for config in ${orders[$((i % 3))]}; do run "$config" "$i"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# The last traced run's event and drop counts.
on_summary=$(grep -h "trace written" "$tmp"/on-*.err | tail -n 1 || true)

# Instructions per element on the fast paths (callgrind; see bench/check_hot_path.sh).
for tool in valgrind; do
  command -v "$tool" >/dev/null || apt-get install -y --no-install-recommends "$tool" >/dev/null
done
ir() {  # ir PROBE OPS MODE [env...]
  local probe=$1 ops=$2 mode=$3 f="$tmp/cg.$RANDOM"
  shift 3
  env "$@" valgrind --tool=callgrind --callgrind-out-file="$f" "$probe" "$ops" "$mode" \
    >/dev/null 2>&1
  callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
per_element() {  # per_element PROBE MODE QUEUES [env...]: as bench/check_hot_path.sh counts
  local probe=$1 mode=$2 queues=$3
  shift 3
  local a b
  a=$(ir "$probe" 20000 "$mode" "$@")
  b=$(ir "$probe" 0 "$mode" "$@")
  echo $(((a - b) / (queues * (20000 + 20000 / 32 * 32))))
}
ipe=()
for m in "fifo 2" "shuffle 1"; do
  read -r mode queues <<<"$m"
  ipe+=("$(per_element build/release-notrace/bench/hot_path_probe "$mode" "$queues")")
  ipe+=("$(per_element build/release/bench/hot_path_probe "$mode" "$queues")")
  ipe+=("$(per_element build/release/bench/hot_path_probe "$mode" "$queues" \
    CONVEYOR_TRACE="$tmp/probe.trace")")
done
echo "instructions per element (out off on): fifo ${ipe[*]:0:3}, shuffle ${ipe[*]:3:3}" >&2

# What recording costs, in instructions (deterministic): per event and per runner op, from
# trace_probe (the tracer's own functions only), and per record of the untraced pipeline
# (`conveyor ingest --epochs 1` built with tracing compiled out; spinning under valgrind makes
# this an upper bound, so the estimate below leans low).
internal_ir() {  # internal_ir N MODE: instructions in conveyor::trace::internal::*
  local f="$tmp/cgp.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$f" build/release/bench/trace_probe "$1" "$2" \
    "$tmp/probe.trace" >/dev/null 2>&1
  callgrind_annotate "$f" 2>/dev/null |
    awk '/conveyor::trace::internal::/ {gsub(",", "", $1); s += $1} END {print s + 0}'
}
ir_event=$(( ($(internal_ir 20000 events) - $(internal_ir 0 events)) / 20000 ))
ir_op=$(( ($(internal_ir 20000 ops) - $(internal_ir 0 ops)) / 20000 ))
ingest_ir() {  # ingest_ir BUILD_DIR: the fewest instructions of 2 runs (spinning only adds)
  local best=0 f="$tmp/cg.ingest" n
  for _ in 1 2; do
    valgrind --tool=callgrind --callgrind-out-file="$f" "$1/tools/conveyor" ingest \
      --no-progress --epochs 1 --json "$tmp/cg-ingest.json" >/dev/null 2>&1
    n=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    ((best == 0 || n < best)) && best=$n
  done
  echo "$best"
}
ir_ingest=$(ingest_ir build/release-notrace)
ir_ingest_off=$(ingest_ir build/release)
build/release/tools/conveyor trace report "$tmp/on.trace" --json >"$tmp/on-report.json"
echo "instructions: ${ir_event} per event, ${ir_op} per runner op, ${ir_ingest} for the untraced ingest run" >&2

python3 - "$tmp" "$reps" "$out" "bench/trace_overhead.sh${*:+ $*}" "$load_before" "$load_after" \
  "$on_summary" "$ir_event" "$ir_op" "$ir_ingest" "$ir_ingest_off" "${ipe[@]}" <<'PY'
import json, os, subprocess, sys
tmp, reps, out, command, load_before, load_after, on_summary = sys.argv[1:8]
ir_event, ir_op, ir_ingest, ir_ingest_off = (int(x) for x in sys.argv[8:12])
v = [int(x) for x in sys.argv[12:18]]
report = json.load(open(os.path.join(tmp, "on-report.json")))
cg_records = json.load(open(os.path.join(tmp, "cg-ingest.json")))["records"]
last_on = json.load(open(os.path.join(tmp, f"on-{int(reps) - 1}.json")))
ops = sum(t["ops"] for t in report["threads"])
per_record = (report["events"] * ir_event + ops * ir_op) / last_on["records"]
estimate = {"instructions_per_event": ir_event, "instructions_per_op": ir_op,
            "traced_events": report["events"], "traced_ops": ops,
            "traced_records": last_on["records"],
            "instructions_per_record_traced": per_record,
            "instructions_per_record_untraced": ir_ingest / cg_records,
            "fraction": per_record / (ir_ingest / cg_records),
            "ingest_instructions_out": ir_ingest, "ingest_instructions_off": ir_ingest_off,
            "ingest_records": cg_records}
ipe = {"fifo": dict(zip(("out", "off", "on"), v[0:3])),
       "shuffle": dict(zip(("out", "off", "on"), v[3:6]))}
runs = []
for i in range(int(reps)):
    for config in ("out", "off", "on"):
        r = json.load(open(os.path.join(tmp, f"{config}-{i}.json")))
        runs.append({"round": i, "config": config, "records_per_second": r["records_per_second"],
                     "seconds": r["seconds"], "records": r["records"],
                     "exactly_once": r["exactly_once"], "epochs": r["epochs"],
                     "readers": r["readers"]})
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip()
json.dump({"command": command, "commit": commit, "load_before": load_before,
           "load_after": load_after, "runs": runs, "instructions_per_element": ipe,
           "traced_run": on_summary, "estimate": estimate}, open(out, "w"), indent=1)
PY
PERF_OUT="${perf_out}" bash bench/write_perf.sh --trace "$out"
echo "wrote ${out} and ${perf_out}" >&2
