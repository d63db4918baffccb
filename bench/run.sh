#!/usr/bin/env bash
# make bench: runs the benchmarks against the local stack (make up) and writes
# bench/results/*.json (17.5 minutes on 2 cores; about 12 when the query
# benchmark's database is already loaded). Each benchmark makes its own topics
# and database. Options (environment):
#   INGEST_ARGS     e.g. "--events 2000000"
#   FRESHNESS_ARGS  e.g. "--rate 5000"
#   QUERY_ARGS      e.g. "--dossiers 20000000 --bench-database bench_query_20m"
#   SOAK=30         also run the soak for that many minutes (SOAK_ARGS for more)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${DVC_BIN_DIR:-target/release}"
# shellcheck disable=SC2086
"$BIN/ingest-bench" ${INGEST_ARGS:-}
# shellcheck disable=SC2086
"$BIN/freshness-bench" ${FRESHNESS_ARGS:-}
# shellcheck disable=SC2086
"$BIN/query-bench" ${QUERY_ARGS:-}
if [ -n "${SOAK:-}" ]; then
    # shellcheck disable=SC2086
    "$BIN/soak-bench" --minutes "$SOAK" ${SOAK_ARGS:-}
fi
