#!/usr/bin/env bash
# The README's test command (and CI's, through .ci/run):
#   1. release: build everything, run every test
#   2. tsan:    ThreadSanitizer build, run the tests labelled `concurrency`
#   3. asan:    AddressSanitizer + UBSan build, run every test
#   3b. fuzz:   clang-14 libFuzzer build of tests/fuzz/, each target 20 s (tools/fuzz.sh)
#   4. packaging: install the release build to a temporary prefix, build and run
#      docs/examples/consumer against it (find_package), then again through add_subdirectory
# Every step runs even when an earlier one failed (except the steps that need its output). The
# last line is the sum of ctest's results over the three presets, `N passed, M failed`; the exit
# code is non-zero if any test or step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=2  # the machines have 2 cores

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
failed_steps=()

section() {
  printf '\n==================== %s ====================\n' "$*"
}

# step NAME COMMAND...: runs COMMAND; on failure records NAME and returns 1.
step() {
  local name=$1
  shift
  echo "+ $*"
  if "$@"; then
    return 0
  fi
  failed_steps+=("$name")
  return 1
}

# run_ctest PRESET: runs the preset's tests and adds ctest's closing counts to the totals.
run_ctest() {
  local preset=$1 log="$work/ctest-$1.log" rc=0 line total fails
  echo "+ ctest --preset $preset"
  ctest --preset "$preset" 2>&1 | tee "$log" || rc=$?
  # ctest closes with e.g. "100% tests passed, 0 tests failed out of 7" (nothing if no tests).
  line=$(grep -E '[0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n "$line" ]]; then
    fails=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((passed + total - fails))
    failed=$((failed + fails))
  fi
  if ((rc != 0)); then
    failed_steps+=("ctest $preset")
  fi
}

# preset NAME: configure, build and test one preset.
preset() {
  local name=$1 start=$SECONDS
  section "$name: configure, build, test"
  if step "$name configure" cmake --preset "$name" &&
    step "$name build" cmake --build --preset "$name" -j "$jobs"; then
    run_ctest "$name"
  fi
  echo "($name took $((SECONDS - start)) s)"
}

section "dependencies"
bash tools/install-deps.sh
cmake --version | head -n 1
c++ --version | head -n 1
echo "cores: $(nproc)"

preset release
preset tsan
preset asan

section "fuzz: libFuzzer targets of tests/fuzz/, 20 s each (tools/fuzz.sh)"
start=$SECONDS
step "fuzz" bash tools/fuzz.sh 20 || true
echo "(fuzz took $((SECONDS - start)) s)"

section "packaging: find_package against an installed tree"
start=$SECONDS
prefix="$work/prefix"
installed="$root/build/consumer-installed"
subdir="$root/build/consumer-subdir"
rm -rf "$installed" "$subdir"
if step "install release" cmake --install build/release --prefix "$prefix" &&
  step "consumer (installed) configure" cmake -S docs/examples/consumer -B "$installed" \
    -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$prefix" &&
  step "consumer (installed) build" cmake --build "$installed" -j "$jobs"; then
  step "consumer (installed) run" "$installed/consumer" || true
fi

section "packaging: add_subdirectory"
if step "consumer (add_subdirectory) configure" cmake -S docs/examples/consumer -B "$subdir" \
  -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCONVEYOR_SOURCE_DIR=$root" &&
  step "consumer (add_subdirectory) build" cmake --build "$subdir" -j "$jobs"; then
  step "consumer (add_subdirectory) run" "$subdir/consumer" || true
fi
echo "(packaging took $((SECONDS - start)) s)"

section "summary"
echo "total time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
if ((${#failed_steps[@]} > 0)); then
  echo "failed steps:"
  printf '  %s\n' "${failed_steps[@]}"
fi
echo "$passed passed, $failed failed"
if ((failed > 0 || ${#failed_steps[@]} > 0)); then
  exit 1
fi
