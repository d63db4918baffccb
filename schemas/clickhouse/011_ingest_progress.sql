-- Ingest's progress: the last offset of every partition batch that ingest
-- stored whole (its rows and every row its materialized views made from
-- them), recorded after that insert returned. A restarted or reassigned
-- partition resumes after the highest offset here, not after the highest
-- offset in the raw tables: an insert can leave its raw rows written and
-- its views' rows not (a view failed, a server died half-way, a shard of a
-- cluster went down), and resuming after those raw rows would leave the
-- states short for good. Resuming from here stores such a batch again
-- instead: the same (topic, partition, offset) rows, which the raw tables
-- and the states absorb (schemas/clickhouse/README.md, "Why a row is stored
-- exactly once").
CREATE TABLE IF NOT EXISTS ingest_progress
(
    kafka_topic String,
    kafka_partition UInt32,
    kafka_offset UInt64,
    recorded_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

-- What was stored before this migration counts as stored whole.
INSERT INTO ingest_progress
SELECT toString(kafka_topic), kafka_partition, max(kafka_offset), now() FROM dossier_events GROUP BY kafka_topic, kafka_partition;

INSERT INTO ingest_progress
SELECT toString(kafka_topic), kafka_partition, max(kafka_offset), now() FROM payment_events GROUP BY kafka_topic, kafka_partition;

INSERT INTO ingest_progress
SELECT toString(kafka_topic), kafka_partition, max(kafka_offset), now() FROM feedback_events GROUP BY kafka_topic, kafka_partition;

INSERT INTO ingest_progress
SELECT toString(kafka_topic), kafka_partition, max(kafka_offset), now() FROM petition_events GROUP BY kafka_topic, kafka_partition;

INSERT INTO ingest_progress
SELECT toString(kafka_topic), kafka_partition, max(kafka_offset), now() FROM catalog_entries GROUP BY kafka_topic, kafka_partition;
