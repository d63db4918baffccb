#!/usr/bin/env bash
# The local stack of CONTRACT.md §7, on loopback:
#   tansu (Kafka API)  127.0.0.1:9092   SQLite storage under .local/tansu
#   ClickHouse         127.0.0.1:8123 (HTTP), 127.0.0.1:9000 (native), data under .local/clickhouse
#   dvc-ingest         metrics on 127.0.0.1:9464
#   dvc-rollup         metrics on 127.0.0.1:9465
#   dvc-rates-api      127.0.0.1:8080
# Usage: stack.sh up | down | clean | status | stop SERVICE...
# `up` is idempotent and returns once every part answers (it starts again
# what `stop` stopped); `down` stops only the processes this script started
# (by pid file under .local/run); `stop` stops the services named
# (clickhouse, tansu, ingest, rollup, rates-api).
# DVC_LOCAL_DIR puts the stack's data, logs and pid files elsewhere than
# .local/ (`make test` runs on an empty one, .local/test, of its own).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LOCAL="${DVC_LOCAL_DIR:-$ROOT/.local}"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
BIN="${DVC_BIN_DIR:-$ROOT/target/release}"
PARTITIONS="${DVC_PARTITIONS:-4}"
TOPICS="dvc.dossier-events.v1 dvc.payment-events.v1 dvc.feedback-events.v1 dvc.petition-events.v1 dvc.procedure-catalog.v1 dvc.dead-letter.v1"
export DVC_CLICKHOUSE_DATABASE="${DVC_CLICKHOUSE_DATABASE:-dvc}"

log() { echo "stack: $*"; }

# shellcheck source=../processes.sh
. "$ROOT/deploy/processes.sh"

start() { # name, command... (runs in the background, logs to .local/logs/NAME.log)
    # In a session of its own: a Ctrl-C or hang-up in the terminal that ran
    # `make up`/`make demo` never reaches the stack, which stops only through
    # `stack.sh down` (so the demo can drain the simulator into a live broker).
    # A script has no job control, so the child is no group leader and setsid
    # execs in place: $! is the service's pid.
    local name="$1"; shift
    if running "$name"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
    setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
    log "$name started (pid $!), log $LOGS/$name.log"
}

stop() { # name: TERM, then KILL after 30 s
    local pidfile="$RUN/$1.pid"
    running "$1" || { rm -f "$pidfile"; return 0; }
    local pid; pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then log "$1 ignored SIGTERM for 30s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
    log "$1 stopped"
}

clickhouse_ready() { [ "$(curl -s --max-time 2 http://127.0.0.1:8123/ping)" = "Ok." ]; }

local_key() { # the local HMAC key for applicant IDs; generated once, never used outside this machine
    local key="$LOCAL/secrets/applicant-hmac.key"
    if [ ! -s "$key" ]; then
        mkdir -p "$LOCAL/secrets" && chmod 700 "$LOCAL/secrets"
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key"
        chmod 600 "$key"
    fi
    echo "$key"
}

up() {
    mkdir -p "$RUN" "$LOGS" "$LOCAL/clickhouse" "$LOCAL/tansu"
    if ! running clickhouse && port_open 8123; then
        log "something else already listens on 127.0.0.1:8123; stop it or run with its own ports"; exit 1
    fi
    start clickhouse clickhouse-server --config-file="$ROOT/deploy/local/clickhouse/config.xml" -- \
        --path="$LOCAL/clickhouse/data/" --tmp_path="$LOCAL/clickhouse/tmp/" \
        --user_files_path="$LOCAL/clickhouse/user_files/" --format_schema_path="$LOCAL/clickhouse/format_schemas/" \
        --logger.log="$LOGS/clickhouse-server.log" --logger.errorlog="$LOGS/clickhouse-server.err.log"
    if ! running tansu && port_open 9092; then
        log "something else already listens on 127.0.0.1:9092; stop it first"; exit 1
    fi
    # tansu resolves sqlite:// paths against its working directory.
    start tansu bash -c 'cd "$1" && exec tansu broker --listener-url tcp://127.0.0.1:9092 \
        --advertised-listener-url tcp://127.0.0.1:9092 --storage-engine sqlite://tansu.db' tansu "$LOCAL/tansu"
    wait_for ClickHouse 60 clickhouse_ready
    wait_for tansu 30 port_open 9092
    python3 "$ROOT/deploy/local/tansu-store-index.py" "$LOCAL/tansu/tansu.db"
    for topic in $TOPICS; do
        out="$(tansu topic create --broker tcp://127.0.0.1:9092 --partitions "$PARTITIONS" "$topic" 2>&1)" \
            || grep -q "already exists" <<<"$out" || { log "creating $topic failed: $out"; exit 1; }
    done
    log "topics ready: $TOPICS"
    "$BIN/dvc-migrate"
    DVC_APPLICANT_KEY_FILE="$(local_key)" start ingest "$BIN/dvc-ingest"
    wait_for dvc-ingest 30 port_open 9464
    start rollup "$BIN/dvc-rollup"
    wait_for dvc-rollup 30 port_open 9465
    DVC_CLICKHOUSE_USER=dvc_reader start rates-api "$BIN/dvc-rates-api"
    wait_for dvc-rates-api 30 port_open 8080
    log "up: Kafka 127.0.0.1:9092, ClickHouse 127.0.0.1:8123 (database $DVC_CLICKHOUSE_DATABASE), ingest metrics http://127.0.0.1:9464/metrics, rollup metrics http://127.0.0.1:9465/metrics, rates API http://127.0.0.1:8080/v1/rates"
}

down() {
    stop rates-api
    stop rollup
    stop ingest
    stop tansu
    stop clickhouse
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    clean) down; rm -rf "$LOCAL"; log "removed $LOCAL" ;;
    status) for s in clickhouse tansu ingest rollup rates-api; do running "$s" && echo "$s: running" || echo "$s: stopped"; done ;;
    stop) shift; for s in "$@"; do stop "$s"; done ;;
    *) echo "usage: $0 up|down|clean|status|stop SERVICE..." >&2; exit 2 ;;
esac
