#!/usr/bin/env bash
# make bench: runs the benchmarks against the local stack's ClickHouse (make up)
# and writes bench/results/*.json (17.5 minutes on 2 cores; about 12 when the
# query benchmark's database is already loaded). Each benchmark makes its own
# topics and database. The brokers are tansus of the benchmarks' own, started
# empty at each run (.local/bench-tansu): the stack's store keeps what demos
# and earlier runs produced, and a tansu store slows as it grows (make
# bench-broker), which would move every figure. Ingest and query run on a
# SQLite store, as the stack's; freshness on a memory store, whose fetch does
# not slow with a partition's backlog (bench/README.md, "Freshness").
# Options (environment):
#   INGEST_ARGS     e.g. "--events 2000000"
#   FRESHNESS_ARGS  e.g. "--rate 5000"
#   QUERY_ARGS      e.g. "--dossiers 20000000 --bench-database bench_query_20m"
#   SOAK=30         also run the soak for that many minutes (SOAK_ARGS for more)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${DVC_BIN_DIR:-target/release}"

STORE="$PWD/.local/bench-tansu"
rm -rf "$STORE" && mkdir -p "$STORE"
BROKERS=()
# The stack's dvc-ingest, idle, fetches from the stack's broker every 100 ms,
# which costs that tansu about a third of a core (of two) at rest: it is
# stopped while the benchmarks run (they use the stack's ClickHouse only)
# and started again after.
deploy/local/stack.sh stop ingest
trap 'kill "${BROKERS[@]}" 2>/dev/null || true; deploy/local/stack.sh up >/dev/null' EXIT

# broker ENGINE: starts a tansu on a free port with storage ENGINE (sqlite or
# memory) and sets PORT.
broker() {
    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    local url="tcp://127.0.0.1:$PORT" storage="sqlite://tansu.db"
    [ "$1" = memory ] && storage="memory://tansu/"
    (cd "$STORE" && exec tansu broker --listener-url "$url" --advertised-listener-url "$url" \
        --storage-engine "$storage") >"$STORE/tansu-$1.log" 2>&1 &
    BROKERS+=($!)
    listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
    for _ in $(seq 150); do listening && break; sleep 0.2; done
    listening || { echo "bench: tansu did not listen on $PORT; see $STORE/tansu-$1.log" >&2; exit 1; }
    [ "$1" = memory ] || python3 deploy/local/tansu-store-index.py "$STORE/tansu.db"
    echo "bench: broker of its own on 127.0.0.1:$PORT, $1 storage"
}

broker sqlite
export DVC_KAFKA_BROKERS="127.0.0.1:$PORT"
# shellcheck disable=SC2086
"$BIN/ingest-bench" ${INGEST_ARGS:-}
broker memory
# shellcheck disable=SC2086
DVC_KAFKA_BROKERS="127.0.0.1:$PORT" "$BIN/freshness-bench" --broker "$(tansu --version), memory storage" ${FRESHNESS_ARGS:-}
kill "${BROKERS[-1]}" && wait "${BROKERS[-1]}" || true
# shellcheck disable=SC2086
"$BIN/query-bench" ${QUERY_ARGS:-}
if [ -n "${SOAK:-}" ]; then
    # shellcheck disable=SC2086
    "$BIN/soak-bench" --minutes "$SOAK" ${SOAK_ARGS:-}
fi
