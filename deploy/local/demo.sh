#!/usr/bin/env bash
# The demo for now (the rates API and the live portal simulator come next):
# publish the sample portal traffic of shared/samples to the local stack and
# show it arriving in ClickHouse through dvc-ingest.
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
echo "Dossiers by authority kind and filing channel (from each dossier's earliest event; all days):"
ch "SELECT if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province') AS kind, channel, count() AS dossiers
    FROM (SELECT dossier_id, any(authority_code) AS authority_code, argMin(channel, occurred_at) AS channel
          FROM $DB.dossier_events GROUP BY dossier_id)
    GROUP BY kind, channel ORDER BY kind, channel FORMAT PrettyCompactMonoBlock"
echo
echo "Ingest metrics (http://127.0.0.1:9464/metrics):"
curl -s http://127.0.0.1:9464/metrics | grep -E '^dvc_ingest_(consumed|inserted_rows|dead_letters)_total' | sed 's/^/  /'
