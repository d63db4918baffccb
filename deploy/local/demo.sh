#!/usr/bin/env bash
# The demo for now: publish the sample portal traffic and show it arriving in
# ClickHouse, row counts per table and the dead-letter count.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SAMPLES="$ROOT/../shared/samples"
python3 "$ROOT/tests/python/publish.py" --brokers 127.0.0.1:9092 \
    dvc.dossier-events.v1="$SAMPLES/dossier-events.jsonl" \
    dvc.payment-events.v1="$SAMPLES/payment-events.jsonl" \
    dvc.feedback-events.v1="$SAMPLES/feedback-events.jsonl"
for _ in $(seq 30); do
    sleep 1
    curl -s http://127.0.0.1:8123/ --data-binary "SELECT 'dossier_events' AS t, count() AS rows, uniqExact(event_id) AS events FROM dvc.dossier_events UNION ALL SELECT 'payment_events', count(), uniqExact(event_id) FROM dvc.payment_events UNION ALL SELECT 'feedback_events', count(), uniqExact(event_id) FROM dvc.feedback_events FORMAT PrettyCompact"
    curl -s http://127.0.0.1:9464/metrics | grep -E '^dvc_ingest_(inserted_rows|dead_letters)_total' || true
done
