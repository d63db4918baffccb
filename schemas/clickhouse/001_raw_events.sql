-- Raw contract events, one row per Kafka record the ingest service accepted.
--
-- Exactly-once bookkeeping: every row carries its Kafka coordinates, written
-- in the same insert as the event itself. On every partition assignment the
-- ingest service resumes at max(kafka_offset) + 1 of that topic-partition, so
-- a batch that reached ClickHouse is never written again after a crash. A
-- stalled writer can still insert a batch twice; the ReplacingMergeTree key
-- (topic, partition, offset) folds such copies away at merge time, and every
-- figure counts distinct events or dossiers, so a copy never changes a rate.
--
-- Tables are partitioned by ingestion month: each insert carries one
-- ingested_at value, so it lands in exactly one partition, as one block,
-- atomically. Timestamps are DateTime('UTC') (seconds; sub-second precision
-- is dropped). applicant_id never arrives here: applicant_hash holds
-- HMAC-SHA256(key, applicant_id).

CREATE TABLE IF NOT EXISTS dossier_events
(
    kafka_topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    ingested_at DateTime('UTC'),
    event_id String,
    dossier_id String,
    status UInt8,
    occurred_at DateTime('UTC'),
    procedure_code LowCardinality(String),
    agency_code LowCardinality(String),
    authority_code LowCardinality(String),
    service_level Enum8('full_online' = 1, 'partial_online' = 2, 'offline' = 3),
    channel Enum8('in_person' = 1, 'online' = 2, 'postal' = 3),
    received_at Nullable(DateTime('UTC')),
    due_at Nullable(DateTime('UTC')),
    applicant_type Nullable(Enum8('citizen' = 1, 'business' = 2)),
    applicant_hash Nullable(FixedString(32)),
    vneid_verified Nullable(UInt8),
    digitized Nullable(UInt8),
    result_digitized Nullable(UInt8),
    fee_vnd Nullable(UInt64),
    source_system Nullable(String),
    extra String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS payment_events
(
    kafka_topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    ingested_at DateTime('UTC'),
    event_id String,
    payment_id String,
    dossier_id String,
    status Enum8('succeeded' = 1, 'failed' = 2, 'refunded' = 3),
    occurred_at DateTime('UTC'),
    amount_vnd UInt64,
    method Enum8('national_platform' = 1, 'local_gateway' = 2, 'offline' = 3),
    procedure_code LowCardinality(String),
    agency_code LowCardinality(String),
    authority_code LowCardinality(String),
    extra String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS feedback_events
(
    kafka_topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    ingested_at DateTime('UTC'),
    event_id String,
    dossier_id String,
    occurred_at DateTime('UTC'),
    procedure_code LowCardinality(String),
    agency_code LowCardinality(String),
    authority_code LowCardinality(String),
    rating Enum8('satisfied' = 1, 'neutral' = 2, 'unsatisfied' = 3),
    extra String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);
