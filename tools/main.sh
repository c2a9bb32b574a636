#!/usr/bin/env bash
# The README's main command: install what is missing, build the release `conveyor` tool and run
# its demo (producers -> FifoQueue -> consumers; prints throughput and checks exactly-once).
# Extra arguments go to the demo, e.g. `bash tools/main.sh --items 10000000 --producers 4`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j 2 --target conveyor
exec build/release/tools/conveyor ingest "$@"
