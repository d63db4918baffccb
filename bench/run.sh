#!/usr/bin/env bash
# make bench: runs the benchmarks against the local stack (make up) and writes
# bench/results/*.json (about 6 minutes). Each benchmark makes its own topics
# and database. Options: INGEST_ARGS (e.g. "--events 2000000"), FRESHNESS_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${DVC_BIN_DIR:-target/release}"
# shellcheck disable=SC2086
"$BIN/ingest-bench" ${INGEST_ARGS:-}
# shellcheck disable=SC2086
"$BIN/freshness-bench" ${FRESHNESS_ARGS:-}
