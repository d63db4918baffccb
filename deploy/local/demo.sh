#!/usr/bin/env bash
# make demo: the main job on the local stack (make up has started it). The
# portal simulator backfills DEMO_DAYS days of national traffic (progress bar),
# then streams live traffic as it happens; dvc-rates-watch redraws the rates
# in the terminal every 2 s, with the petitions and catalogue entries stored
# so far, and the dashboard shows the rates in a browser.
# Ctrl-C stops the traffic and the stack (data stays under .local/; `make up`
# brings the dashboard back). Options (environment):
#   DEMO_DAYS          days of history to backfill (default 3, ~1 minute)
#   DEMO_RATE          events per second, averaged over a day (default: the
#                      national portal's volume, about 5.7)
#   DEMO_LIVE_SECONDS  stop after this long live (default: until Ctrl-C)
#   DEMO_KEEP_UP=1     leave the stack running after the demo
#   DEMO_SIM_ARGS      more dvc-portal-sim flags (default: light faults)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${DVC_BIN_DIR:-$ROOT/target/release}"
RUN="$ROOT/.local/run"
DAYS="${DEMO_DAYS:-3}"
API="http://127.0.0.1:8080"
mkdir -p "$RUN"
STATUS="$RUN/portal-sim.status.json"
rm -f "$STATUS"

sim_args=(--backfill-days "$DAYS" --status-file "$STATUS")
[ -n "${DEMO_RATE:-}" ] && sim_args+=(--rate "$DEMO_RATE")
[ -n "${DEMO_LIVE_SECONDS:-}" ] && sim_args+=(--live-seconds "$DEMO_LIVE_SECONDS")
# shellcheck disable=SC2206
sim_args+=(${DEMO_SIM_ARGS:---duplicate-rate 0.01 --out-of-order-rate 0.01 --late-rate 0.002 --malformed-rate 0.0005})
# The Vietnam day the backfill starts in: the first day of the table.
from=$(python3 -c "import datetime as d; print((d.datetime.now(d.timezone(d.timedelta(hours=7))) - d.timedelta(days=float('$DAYS'))).date())")

dossiers() { # dossiers in the warehouse, all days (0 while the API cannot answer)
    local body
    body=$(curl -sf "$API/v1/rates?metric=full_online_share&from=2000-01-01&to=2099-12-31") || { echo 0; return; }
    python3 -c 'import json, sys; rows = json.load(sys.stdin)["rows"]; print(rows[0]["denominator"] if rows else 0)' <<<"$body"
}

sim=""
stop() {
    trap - INT TERM EXIT
    echo
    if [ -n "$sim" ] && kill -0 "$sim" 2>/dev/null; then
        echo "demo: stopping the portal simulator …"
        kill -TERM "$sim" 2>/dev/null || true
    fi
    [ -n "$sim" ] && { wait "$sim" 2>/dev/null || true; }
    [ -f "$STATUS" ] && python3 - "$STATUS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["sent"]
lost = f"; {s['failed']:,} not acknowledged by the broker" if s["failed"] else ""
print(f"demo: simulator sent {s['total']:,} messages ({s['duplicates']:,} duplicates, {s['malformed']:,} malformed → dead letters{lost})")
print(f"demo: of them {s['petition']:,} petition steps and {s['catalog']:,} catalogue entries")
PY
    if [ "${DEMO_KEEP_UP:-0}" = 1 ]; then
        echo "demo: the stack is still up: dashboard $API/?from=$from ; make down stops it"
    else
        "$ROOT/deploy/local/stack.sh" down
        echo "demo: stopped; data stays under .local/ (make up brings it back, make clean removes it)"
    fi
}
trap stop INT TERM EXIT

earlier=$(dossiers)
if [ "$earlier" != 0 ]; then
    echo "demo: the warehouse already holds $earlier dossiers from earlier runs; the rates count them too (make clean starts afresh)"
fi
echo "demo: publishing $DAYS days of national portal traffic to Kafka, then live traffic"
echo "demo: calibrated to the mid-2024 report: full-online share 42% nationally, 61% ministries, 17% provinces"
RUST_LOG="${RUST_LOG:-warn}" "$BIN/dvc-portal-sim" "${sim_args[@]}" >"$RUN/portal-sim.summary.json" &
sim=$!
until [ -f "$STATUS" ] && grep -q '"phase":"\(live\|stopped\)"' "$STATUS"; do
    kill -0 "$sim" 2>/dev/null || { wait "$sim"; echo "demo: the simulator stopped early" >&2; exit 1; }
    sleep 0.5
done
echo "demo: backfill sent; waiting for dvc-ingest to catch up …"
# Caught up when two reads a second apart agree on the dossier count.
last=""
for _ in $(seq 300); do
    now=$(dossiers)
    [ "$now" = "$last" ] && [ "$now" != 0 ] && break
    last=$now
    sleep 1
done
echo "demo: dashboards: $API/?from=$from and the Decision 766 index $API/index766"
if [ -t 1 ] && [ -z "${DEMO_LIVE_SECONDS:-}" ]; then
    "$BIN/dvc-rates-watch" --api "$API" --from "$from" || true
else
    # Not a terminal, or a timed run: print the table when the simulator ends.
    wait "$sim" || true
    sleep 2
    "$BIN/dvc-rates-watch" --api "$API" --from "$from" --once
fi
