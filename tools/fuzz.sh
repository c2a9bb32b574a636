#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang-14 (ASan + UBSan + fuzzer
# instrumentation, in build/fuzz) and runs each for a bounded time from its corpus.
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 20 s, every target)
# The repo's corpus (tests/fuzz/corpus/<target>/) is read, never written: new inputs go to a
# scratch folder. A crash leaves its input in build/fuzz/crashes/<target>/ and the script fails.
# Prints one line per target: "fuzz summary: target=<t> execs=<n> seconds=<s> crashes=<0|1>".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-20}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_text_reader fuzz_tfrecord fuzz_tensor_checks fuzz_queue_runner_def)
fi
build=$root/build/fuzz
flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  "-DCMAKE_CXX_FLAGS=$flags" -DCONVEYOR_FUZZ=ON -DCONVEYOR_BUILD_TESTS=OFF \
  -DCONVEYOR_BUILD_BENCH=OFF -DCONVEYOR_BUILD_TOOLS=OFF -DCONVEYOR_INSTALL=OFF >/dev/null
cmake --build "$build" -j 2 --target "${targets[@]}"

failed=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  crashes=$build/crashes/$t
  mkdir -p "$crashes"
  log=$build/$t.log
  rc=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/$t" "$scratch" "$root/tests/fuzz/corpus/$t" \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes/" \
    -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1 || rc=$?
  rm -rf "$scratch"
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  crashed=0
  if ((rc != 0)); then
    crashed=1
    failed=1
    tail -n 40 "$log"
  fi
  echo "fuzz summary: target=$t execs=${execs:-0} seconds=$seconds crashes=$crashed"
done
exit "$failed"
