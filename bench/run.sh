#!/usr/bin/env bash
# make bench: runs the benchmarks against the local stack (make up) and writes
# bench/results/*.json. Options go to the ingest benchmark, e.g. --events 2000000.
set -euo pipefail
cd "$(dirname "$0")/.."
"${DVC_BIN_DIR:-target/release}/ingest-bench" "$@"
