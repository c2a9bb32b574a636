#!/usr/bin/env bash
# Checks the claim "hot paths allocate nothing, take no lock and make no syscall when nobody
# waits" on FifoQueue's and ShuffleQueue's fast paths (bench/hot_path_probe.cc), with tools that
# do not depend on a quiet machine:
#   - strace -c: syscalls made by a run of N and of 10*N operations; the counts must not grow
#     with N (everything is start-up: loader, allocation of the rings, membarrier registration).
#   - valgrind --tool=callgrind: instructions per operation (repeatable on a noisy machine).
# Usage: bash bench/check_hot_path.sh   (installs strace/valgrind if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in strace valgrind; do
  command -v "$tool" >/dev/null || { apt-get install -y --no-install-recommends "$tool" >/dev/null; }
done
cmake --preset release >/dev/null
cmake --build --preset release -j 2 --target hot_path_probe >/dev/null
probe=build/release/bench/hot_path_probe

# mode NAME QUEUES: syscalls and instructions per element for the probe's NAME mode, which runs
# QUEUES queues (each: ops single enqueue+dequeue, ops/32 bulk-32 pairs).
fail=0
mode() {
  local name=$1 queues=$2 small large futex out base per_op
  count() { strace -f -c -o /dev/stdout "$probe" "$1" "$name" 2>/dev/null | awk '/total/ {print $4}'; }
  small=$(count 100000)
  large=$(count 1000000)
  echo "$name: syscalls: ${small} for 100000 ops per path, ${large} for 1000000 ops per path"
  futex=$(strace -f -e trace=futex -o /dev/stdout "$probe" 1000000 "$name" 2>/dev/null | grep -c futex || true)
  echo "$name: futex calls in the 1000000-op run: ${futex}"
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$probe" 20000 "$name" >/dev/null 2>&1
  base=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$base" "$probe" 0 "$name" >/dev/null 2>&1
  ir() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
  per_op=$(( ($(ir "$out") - $(ir "$base")) / (queues * (20000 + 20000 / 32 * 32)) ))
  echo "$name: instructions per element moved (enqueue+dequeue, single and bulk-32): ${per_op}"
  if [[ "$name" == spsc* ]]; then  # each path alone
    local path
    for path in single bulk; do
      valgrind --tool=callgrind --callgrind-out-file="$out" "$probe" 20000 "$name" "$path" >/dev/null 2>&1
      valgrind --tool=callgrind --callgrind-out-file="$base" "$probe" 0 "$name" "$path" >/dev/null 2>&1
      echo "$name: instructions per element, $path path only: $(( ($(ir "$out") - $(ir "$base")) / 20000 ))"
    done
  fi
  rm -f "$out" "$base"
  if [[ "$small" != "$large" ]]; then
    echo "FAIL: $name: the syscall count grows with the number of operations" >&2
    fail=1
  fi
}
mode fifo 2   # FifoQueue<Mpmc> and FifoQueue<Spsc>, averaged
mode spsc 1   # FifoQueue<Spsc> alone, blocking API
mode spsc_try 1   # FifoQueue<Spsc> alone, try_* and burst calls
mode shuffle 1
if ((fail)); then exit 1; fi
echo "ok: no syscall on the fast paths"
