#!/usr/bin/env bash
# Installs the Debian packages Conveyor needs to build, test and benchmark (Debian 12).
# Idempotent: checks each package first and touches apt only when something is missing.
# Runs as root (CI, fresh containers) or through sudo when available.
set -euo pipefail

packages=(
  cmake ninja-build g++ make git pkg-config python3 ca-certificates
  libhwloc-dev hwloc          # topology/
  libtbb-dev libbenchmark-dev libconcurrentqueue-dev libreaderwriterqueue-dev libboost-dev
  libxenium-dev               # bench/: Google Benchmark and the peer queues (Boost: also
                              # engine/crc32c.cc, Boost.CRC when the CPU lacks SSE4.2)
  gnuplot-nox                 # bench/perf_report.py: PERF.md's plots (docs/perf/*.png)
  libgtest-dev libgmock-dev   # tests/
  libcli11-dev                # tools/: the conveyor command line
  nlohmann-json3-dev          # topology/ plans and tool output as JSON
  libprotobuf-dev protobuf-compiler  # engine/: QueueRunnerDef in TensorFlow's wire format
  systemtap-sdt-dev           # engine/trace.h: <sys/sdt.h> USDT probes
  libnats-dev nats-server     # engine/jetstream.h (conveyor_nats) and its tests: NATS JetStream
  clang-14 libclang-rt-14-dev # tests/fuzz/: libFuzzer targets (tools/fuzz.sh)
  valgrind                    # tools/reliability.sh: leak check of a soak
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
