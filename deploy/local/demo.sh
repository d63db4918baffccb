#!/usr/bin/env bash
# The demo for now (the live portal simulator and dashboard come next):
# publish the sample portal traffic of shared/samples to the local stack, show
# it arriving in ClickHouse through dvc-ingest, and its rates from the API.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SAMPLES="${DVC_SAMPLES:-$ROOT/../shared/samples}"
DB="${DVC_CLICKHOUSE_DATABASE:-dvc}"
ch() { curl -sS http://127.0.0.1:8123/ --data-binary "$1"; }

before=$(ch "SELECT (SELECT count() FROM $DB.dossier_events) + (SELECT count() FROM $DB.payment_events) + (SELECT count() FROM $DB.feedback_events)")
python3 "$ROOT/tests/python/publish.py" --brokers 127.0.0.1:9092 \
    dvc.dossier-events.v1="$SAMPLES/dossier-events.jsonl" \
    dvc.payment-events.v1="$SAMPLES/payment-events.jsonl" \
    dvc.feedback-events.v1="$SAMPLES/feedback-events.jsonl"
sent=$(cat "$SAMPLES"/{dossier,payment,feedback}-events.jsonl | grep -c .)
echo "waiting for dvc-ingest to store $sent records …"
for _ in $(seq 60); do
    now=$(ch "SELECT (SELECT count() FROM $DB.dossier_events) + (SELECT count() FROM $DB.payment_events) + (SELECT count() FROM $DB.feedback_events)")
    [ $((now - before)) -ge "$sent" ] && break
    sleep 0.5
done
echo
echo "Stored in ClickHouse (database $DB): rows are Kafka records; events are distinct event_ids (re-sent duplicates count once)"
ch "SELECT 'dossier' AS stream, count() AS rows, uniqExact(event_id) AS events, uniqExact(dossier_id) AS dossiers FROM $DB.dossier_events
    UNION ALL SELECT 'payment', count(), uniqExact(event_id), uniqExact(dossier_id) FROM $DB.payment_events
    UNION ALL SELECT 'feedback', count(), uniqExact(event_id), uniqExact(dossier_id) FROM $DB.feedback_events
    FORMAT PrettyCompactMonoBlock"
echo
echo "Rates for 2024-07-01..03 from the rates API (GET http://127.0.0.1:8080/v1/rates?metric=...&from=...&to=...&group_by=...):"
python3 - <<'PY'
import json, urllib.request
base = "http://127.0.0.1:8080/v1/rates?from=2024-07-01&to=2024-07-03"
metrics = [m["name"] for m in json.load(urllib.request.urlopen("http://127.0.0.1:8080/v1/metrics"))["metrics"]]
print(f"  {'metric':<26}{'national':>14}{'ministry':>14}{'province':>14}")
for m in metrics:
    cells = []
    for g in ("national", "authority_kind"):
        for row in json.load(urllib.request.urlopen(f"{base}&metric={m}&group_by={g}"))["rows"]:
            v = row["value"]
            cells.append("—" if v is None else f"{v:,.0f}" if row["denominator"] is None else f"{100 * v:.1f}%")
    print(f"  {m:<26}" + "".join(f"{c:>14}" for c in cells))
PY
echo
echo "Ingest metrics (http://127.0.0.1:9464/metrics):"
curl -s http://127.0.0.1:9464/metrics | grep -E '^dvc_ingest_(consumed|inserted_rows|dead_letters)_total' | sed 's/^/  /'
echo
echo "Dashboard: http://127.0.0.1:8080/  (this sample's days: http://127.0.0.1:8080/?from=2024-07-01&to=2024-07-03)"
echo "Stop the stack with: make down"
