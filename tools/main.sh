#!/usr/bin/env bash
# The README's main command: install what is missing, build the release `conveyor` tool and run
# the main job, `conveyor ingest`: TF's input pipeline (filename queue -> reader threads ->
# shuffle_batch_join -> a consumer) on a dataset generated into the cache folder on first run;
# prints records/s, batches/s, MB/s, blocked times and whether every record arrived exactly once
# per epoch. Extra arguments go to ingest, e.g. `bash tools/main.sh --epochs 5 --readers 8`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j 2 --target conveyor
exec build/release/tools/conveyor ingest "$@"
