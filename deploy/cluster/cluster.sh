#!/usr/bin/env bash
# A local ClickHouse cluster on loopback, for the cluster tests and for trying
# the cluster layout (README "Running on a cluster"):
#   ZooKeeper (Debian's zookeeper package)  127.0.0.1:21810
#   ClickHouse node 1, shard 1 replica r1   HTTP 127.0.0.1:8124, native 9001
#   ClickHouse node 2, shard 1 replica r2   HTTP 127.0.0.1:8125, native 9002
#   ClickHouse node 3, shard 2 replica r3   HTTP 127.0.0.1:8126, native 9003
# Cluster name `dvc` (clickhouse/config.xml). Data, logs and pid files under
# DVC_CLUSTER_DIR (default: cluster/ in DVC_LOCAL_DIR, as stack.sh has it, so
# .local/cluster, or .local/test/cluster under `make test`).
# Usage: cluster.sh up | down | clean | status | stop NODE | start NODE
# `up` is idempotent and returns once every part answers; `stop 3` kills
# node 3 at once (kill -9) and `start 3` brings it back on its data, for
# fault tests and drills.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${DVC_CLUSTER_DIR:-${DVC_LOCAL_DIR:-$ROOT/.local}/cluster}"
RUN="$DIR/run"
LOGS="$DIR/logs"
NODES="1 2 3"

log() { echo "cluster: $*"; }

# shellcheck source=../processes.sh
. "$ROOT/deploy/processes.sh"

start() { # name, command... (in a session of its own, logs to $LOGS/NAME.log)
    local name="$1"; shift
    if running "$name"; then return 0; fi
    setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
    log "$name started (pid $!)"
}

stop() { # name, signal
    local pidfile="$RUN/$1.pid"
    running "$1" || { rm -f "$pidfile"; return 0; }
    local pid; pid="$(cat "$pidfile")"
    kill "-$2" "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
    log "$1 stopped"
}

http_port() { echo $((8123 + $1)); }

node_ready() { [ "$(curl -s --max-time 2 "http://127.0.0.1:$(http_port "$1")/ping")" = "Ok." ]; }

# Serving, not only running: `ruok` answers imok while ZooKeeper still loads
# its snapshot and refuses sessions. Bounded: a ZooKeeper still starting may
# take the connection and never answer.
zookeeper_ready() {
    timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/21810 && echo srvr >&3 && cat <&3' 2>/dev/null | grep -q '^Mode: '
}

start_zookeeper() {
    mkdir -p "$DIR/zookeeper"
    { cat "$ROOT/deploy/cluster/zoo.cfg"; echo "dataDir=$DIR/zookeeper"; } >"$DIR/zoo.cfg"
    start zookeeper java -Xmx256m -cp /usr/share/java/zookeeper.jar \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$DIR/zoo.cfg"
    wait_for ZooKeeper 60 zookeeper_ready
}

start_node() { # 1..3
    local n="$1" shard=1
    [ "$n" -eq 3 ] && shard=2
    local data="$DIR/node$n"
    mkdir -p "$data"
    sed -e "s|<shard>unset</shard>|<shard>$shard</shard>|" -e "s|<replica>unset</replica>|<replica>r$n</replica>|" \
        "$ROOT/deploy/cluster/clickhouse/config.xml" >"$data/config.xml"
    cp "$ROOT/deploy/cluster/clickhouse/users.xml" "$data/users.xml"
    start "node$n" clickhouse-server --config-file="$data/config.xml" -- \
        --http_port="$(http_port "$n")" --tcp_port=$((9000 + n)) --interserver_http_port=$((9010 + n)) \
        --path="$data/data/" --tmp_path="$data/tmp/" \
        --user_files_path="$data/user_files/" --format_schema_path="$data/format_schemas/" \
        --logger.log="$LOGS/node$n-server.log" --logger.errorlog="$LOGS/node$n-server.err.log"
}

up() {
    mkdir -p "$RUN" "$LOGS"
    [ -f /usr/share/java/zookeeper.jar ] || { log "ZooKeeper is missing; run deploy/local/install.sh"; exit 1; }
    for port in 21810 8124 8125 8126 9001 9002 9003; do
        if port_open "$port" && ! running zookeeper && ! running node1; then
            log "something else already listens on 127.0.0.1:$port; stop it first"; exit 1
        fi
    done
    start_zookeeper
    for n in $NODES; do start_node "$n"; done
    for n in $NODES; do wait_for "node $n" 60 node_ready "$n"; done
    log "up: cluster dvc, nodes http://127.0.0.1:8124 (shard 1), http://127.0.0.1:8125 (shard 1), http://127.0.0.1:8126 (shard 2)"
}

down() {
    for n in $NODES; do stop "node$n" TERM; done
    stop zookeeper TERM
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    clean) down; rm -rf "$DIR"; log "removed $DIR" ;;
    status) for s in zookeeper node1 node2 node3; do running "$s" && echo "$s: running" || echo "$s: stopped"; done ;;
    stop)
        running "node${2:?node number}" || { log "node $2 is not running (no live pid in $RUN)"; exit 1; }
        stop "node$2" KILL ;;
    start)
        if ! running "node${2:?node number}" && port_open "$(http_port "$2")"; then
            log "something else listens on 127.0.0.1:$(http_port "$2")"; exit 1
        fi
        mkdir -p "$RUN" "$LOGS"; start_node "$2"; wait_for "node $2" 60 node_ready "$2" ;;
    *) echo "usage: $0 up|down|clean|status|stop N|start N" >&2; exit 2 ;;
esac
