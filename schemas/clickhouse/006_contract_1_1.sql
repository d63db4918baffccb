-- Contract 1.1 (CONTRACT.md §8): the three new dossier flags, petitions and
-- the procedure catalogue, stored as the other raw events are (001: one row
-- per accepted Kafka record, deduplicated by its coordinates), with the
-- state the Decision 766 index reads: a petition's steps folded into one row,
-- and each procedure's current catalogue entry.

-- The dossier flags: raw columns, NULL when the event did not say (every
-- event stored before this migration).
ALTER TABLE dossier_events ADD COLUMN reused_digitized_data Nullable(UInt8);

ALTER TABLE dossier_events ADD COLUMN from_personal_store Nullable(UInt8);

ALTER TABLE dossier_events ADD COLUMN population_db_used Nullable(UInt8);

CREATE TABLE IF NOT EXISTS petition_events
(
    kafka_topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    ingested_at DateTime('UTC'),
    event_id String,
    petition_id String,
    occurred_at DateTime('UTC'),
    authority_code LowCardinality(String),
    agency_code LowCardinality(String),
    status Enum8('submitted' = 1, 'forwarded' = 2, 'received' = 3, 'supplement_requested' = 4, 'rejected' = 5, 'processing' = 6, 'answered' = 7, 'published' = 8),
    classification Nullable(Enum8('regulation' = 1, 'staff_conduct' = 2, 'other' = 3)),
    dossier_id Nullable(String),
    procedure_code Nullable(String),
    likes Nullable(UInt64),
    dislikes Nullable(UInt64),
    repeat_of Nullable(String),
    extra String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

-- One row per petition, folded like the dossier states (002): idempotent
-- and order-free. A step's order is `(occurred_at, status code)`, so two
-- steps in the same second order by the lifecycle: the latest status is the
-- last step, and an attribute takes the value of the last step that carried
-- it. Each step's time is the first time the petition reached it (default
-- 1970-01-01 when it never did). An unknown string comes back '' (no id is
-- empty), an unknown classification as code 0 (the state keeps its code:
-- ClickHouse 18.16 converts the values under a NULL too, and 0 is no
-- classification); for the counts, where 0 is a real value, a `*_known`
-- column says whether any step carried one.
CREATE TABLE IF NOT EXISTS petition_state
(
    petition_id String,
    first_event_at AggregateFunction(min, DateTime('UTC')),
    last_event_at AggregateFunction(max, DateTime('UTC')),
    last_status AggregateFunction(argMax, Enum8('submitted' = 1, 'forwarded' = 2, 'received' = 3, 'supplement_requested' = 4, 'rejected' = 5, 'processing' = 6, 'answered' = 7, 'published' = 8), UInt64),
    last_authority_code AggregateFunction(argMax, String, UInt64),
    last_agency_code AggregateFunction(argMax, String, UInt64),
    last_classification AggregateFunction(argMaxIf, UInt8, UInt64, UInt8),
    last_dossier_id AggregateFunction(argMaxIf, String, UInt64, UInt8),
    last_procedure_code AggregateFunction(argMaxIf, String, UInt64, UInt8),
    last_likes AggregateFunction(argMaxIf, UInt64, UInt64, UInt8),
    likes_known AggregateFunction(max, UInt8),
    last_dislikes AggregateFunction(argMaxIf, UInt64, UInt64, UInt8),
    dislikes_known AggregateFunction(max, UInt8),
    last_repeat_of AggregateFunction(argMaxIf, String, UInt64, UInt8),
    submitted_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    forwarded_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    received_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    supplement_requested_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    rejected_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    processing_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    answered_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    published_at AggregateFunction(minIf, DateTime('UTC'), UInt8)
)
ENGINE = AggregatingMergeTree()
ORDER BY petition_id;

-- The state columns are named apart from the raw columns (`last_status`,
-- not `status`): every aggregate reads `status` for the step's order, and
-- an output named like an input would shadow it. ClickHouse 18.16 pushes an
-- insert's block through this SELECT directly (a subquery in FROM would not
-- be applied), so the order is written out in each aggregate.
CREATE MATERIALIZED VIEW IF NOT EXISTS petition_state_mv TO petition_state AS
SELECT
    petition_id,
    minState(occurred_at) AS first_event_at,
    maxState(occurred_at) AS last_event_at,
    argMaxState(status, toUInt64(occurred_at) * 16 + toUInt8(status)) AS last_status,
    argMaxState(toString(authority_code), toUInt64(occurred_at) * 16 + toUInt8(status)) AS last_authority_code,
    argMaxState(toString(agency_code), toUInt64(occurred_at) * 16 + toUInt8(status)) AS last_agency_code,
    argMaxIfState(toUInt8(assumeNotNull(classification)), toUInt64(occurred_at) * 16 + toUInt8(status), toUInt8(isNotNull(classification))) AS last_classification,
    argMaxIfState(assumeNotNull(dossier_id), toUInt64(occurred_at) * 16 + toUInt8(status), toUInt8(isNotNull(dossier_id))) AS last_dossier_id,
    argMaxIfState(assumeNotNull(procedure_code), toUInt64(occurred_at) * 16 + toUInt8(status), toUInt8(isNotNull(procedure_code))) AS last_procedure_code,
    argMaxIfState(assumeNotNull(likes), toUInt64(occurred_at) * 16 + toUInt8(status), toUInt8(isNotNull(likes))) AS last_likes,
    maxState(toUInt8(isNotNull(likes))) AS likes_known,
    argMaxIfState(assumeNotNull(dislikes), toUInt64(occurred_at) * 16 + toUInt8(status), toUInt8(isNotNull(dislikes))) AS last_dislikes,
    maxState(toUInt8(isNotNull(dislikes))) AS dislikes_known,
    argMaxIfState(assumeNotNull(repeat_of), toUInt64(occurred_at) * 16 + toUInt8(status), toUInt8(isNotNull(repeat_of))) AS last_repeat_of,
    minIfState(occurred_at, toUInt8(status = 'submitted')) AS submitted_at,
    minIfState(occurred_at, toUInt8(status = 'forwarded')) AS forwarded_at,
    minIfState(occurred_at, toUInt8(status = 'received')) AS received_at,
    minIfState(occurred_at, toUInt8(status = 'supplement_requested')) AS supplement_requested_at,
    minIfState(occurred_at, toUInt8(status = 'rejected')) AS rejected_at,
    minIfState(occurred_at, toUInt8(status = 'processing')) AS processing_at,
    minIfState(occurred_at, toUInt8(status = 'answered')) AS answered_at,
    minIfState(occurred_at, toUInt8(status = 'published')) AS published_at
FROM petition_events
GROUP BY petition_id;

-- A petition as the index reads it: the state merged, unknown values NULL.
CREATE VIEW IF NOT EXISTS petitions AS
SELECT
    petition_id,
    first_event_at,
    last_event_at,
    last_status AS status,
    last_authority_code AS authority_code,
    last_agency_code AS agency_code,
    if(last_classification = 0, NULL, CAST(greatest(last_classification, 1) AS Enum8('regulation' = 1, 'staff_conduct' = 2, 'other' = 3))) AS classification,
    nullIf(last_dossier_id, '') AS dossier_id,
    nullIf(last_procedure_code, '') AS procedure_code,
    if(likes_known = 1, last_likes, NULL) AS likes,
    if(dislikes_known = 1, last_dislikes, NULL) AS dislikes,
    nullIf(last_repeat_of, '') AS repeat_of,
    nullIf(submitted_at, toDateTime(0, 'UTC')) AS submitted_at,
    nullIf(forwarded_at, toDateTime(0, 'UTC')) AS forwarded_at,
    nullIf(received_at, toDateTime(0, 'UTC')) AS received_at,
    nullIf(supplement_requested_at, toDateTime(0, 'UTC')) AS supplement_requested_at,
    nullIf(rejected_at, toDateTime(0, 'UTC')) AS rejected_at,
    nullIf(processing_at, toDateTime(0, 'UTC')) AS processing_at,
    nullIf(answered_at, toDateTime(0, 'UTC')) AS answered_at,
    nullIf(published_at, toDateTime(0, 'UTC')) AS published_at
FROM
(
    SELECT
        petition_id,
        minMerge(first_event_at) AS first_event_at,
        maxMerge(last_event_at) AS last_event_at,
        argMaxMerge(last_status) AS last_status,
        argMaxMerge(last_authority_code) AS last_authority_code,
        argMaxMerge(last_agency_code) AS last_agency_code,
        argMaxIfMerge(last_classification) AS last_classification,
        argMaxIfMerge(last_dossier_id) AS last_dossier_id,
        argMaxIfMerge(last_procedure_code) AS last_procedure_code,
        argMaxIfMerge(last_likes) AS last_likes,
        maxMerge(likes_known) AS likes_known,
        argMaxIfMerge(last_dislikes) AS last_dislikes,
        maxMerge(dislikes_known) AS dislikes_known,
        argMaxIfMerge(last_repeat_of) AS last_repeat_of,
        minIfMerge(submitted_at) AS submitted_at,
        minIfMerge(forwarded_at) AS forwarded_at,
        minIfMerge(received_at) AS received_at,
        minIfMerge(supplement_requested_at) AS supplement_requested_at,
        minIfMerge(rejected_at) AS rejected_at,
        minIfMerge(processing_at) AS processing_at,
        minIfMerge(answered_at) AS answered_at,
        minIfMerge(published_at) AS published_at
    FROM petition_state
    GROUP BY petition_id
);

CREATE TABLE IF NOT EXISTS catalog_entries
(
    kafka_topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    ingested_at DateTime('UTC'),
    authority_code LowCardinality(String),
    procedure_code String,
    updated_at DateTime('UTC'),
    name Nullable(String),
    online_level Nullable(Enum8('full_online' = 1, 'partial_online' = 2, 'offline' = 3)),
    has_fee Nullable(UInt8),
    written_result_required Nullable(UInt8),
    citizen_applicants Nullable(UInt8),
    max_processing_days Nullable(Float64),
    applying_agencies Array(String),
    announced_on Nullable(Date),
    legal_basis_effective_on Nullable(Date),
    published_on Nullable(Date),
    components_complete Nullable(UInt8),
    withdrawn Nullable(UInt8),
    extra String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

-- The current catalogue: per (authority, procedure) the entry with the
-- latest updated_at, whatever the order it arrived in; of two entries with
-- the same updated_at, the one published later (the higher offset: one key,
-- one partition). A whole entry replaces the older one: a field the newer
-- entry leaves out is unknown (NULL), not the older entry's value. Withdrawn
-- procedures stay, with `withdrawn = 1`. The catalogue is small (a few
-- hundred thousand entries nationally), so this reads its whole history.
CREATE VIEW IF NOT EXISTS procedure_catalog AS
SELECT
    toString(authority_code) AS authority_code,
    procedure_code,
    updated_at,
    name,
    online_level,
    has_fee,
    written_result_required,
    citizen_applicants,
    max_processing_days,
    applying_agencies,
    announced_on,
    legal_basis_effective_on,
    published_on,
    components_complete,
    withdrawn
FROM catalog_entries
ORDER BY authority_code, procedure_code, updated_at DESC, kafka_offset DESC
LIMIT 1 BY authority_code, procedure_code;
