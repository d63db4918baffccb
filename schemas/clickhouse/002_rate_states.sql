-- Per-dossier, per-payment and per-rating state for the rates (CONTRACT.md §5).
--
-- Each raw insert feeds a materialized view that folds the new rows into one
-- state row per dossier (payment, rating). Every state is idempotent: min,
-- max, argMin and argMax give the same result when a row is seen twice, so a
-- re-sent event, a block inserted twice (a retried insert, a stalled writer)
-- or a view insert repeated after a partial failure never changes a figure;
-- and order-free, so out-of-order and days-late events give the figures of a
-- clean stream. Ties (two events of one dossier in the same second) break
-- towards the larger value, deterministically.
--
-- Upgrading a database that already holds raw events: each view carries the
-- migrate step's `-- migrate: backfill`, which then runs the view's SELECT
-- over the raw table into the same state. Rows inserted while it runs reach
-- the state twice (view and backfill), which idempotent states absorb.
--
-- "Latest known value wins": argMaxIf(value, occurred_at, value IS NOT NULL),
-- so a later event that omits an attribute does not erase it. Unknown values
-- come back as the type's default (0, '', 1970-01-01), which the facts views
-- (003) turn back into "unknown".

CREATE TABLE IF NOT EXISTS dossier_state
(
    dossier_id String,
    first_event_at AggregateFunction(min, DateTime('UTC')),
    channel AggregateFunction(argMin, Enum8('in_person' = 1, 'online' = 2, 'postal' = 3), DateTime('UTC')),
    service_level AggregateFunction(argMin, Enum8('full_online' = 1, 'partial_online' = 2, 'offline' = 3), DateTime('UTC')),
    procedure_code AggregateFunction(argMax, String, DateTime('UTC')),
    agency_code AggregateFunction(argMax, String, DateTime('UTC')),
    authority_code AggregateFunction(argMax, String, DateTime('UTC')),
    received_at AggregateFunction(argMaxIf, DateTime('UTC'), DateTime('UTC'), UInt8),
    due_at AggregateFunction(argMaxIf, DateTime('UTC'), DateTime('UTC'), UInt8),
    digitized AggregateFunction(argMaxIf, UInt8, DateTime('UTC'), UInt8),
    result_digitized AggregateFunction(argMaxIf, UInt8, DateTime('UTC'), UInt8),
    vneid_verified AggregateFunction(argMaxIf, UInt8, DateTime('UTC'), UInt8),
    fee_vnd AggregateFunction(argMaxIf, UInt64, DateTime('UTC'), UInt8),
    first_closed_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    resolved AggregateFunction(max, UInt8)
)
ENGINE = AggregatingMergeTree()
ORDER BY dossier_id;

-- migrate: backfill
CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_state_mv TO dossier_state AS
SELECT
    dossier_id,
    minState(occurred_at) AS first_event_at,
    argMinState(channel, occurred_at) AS channel,
    argMinState(service_level, occurred_at) AS service_level,
    argMaxState(toString(procedure_code), occurred_at) AS procedure_code,
    argMaxState(toString(agency_code), occurred_at) AS agency_code,
    argMaxState(toString(authority_code), occurred_at) AS authority_code,
    argMaxIfState(assumeNotNull(received_at), occurred_at, toUInt8(isNotNull(received_at))) AS received_at,
    argMaxIfState(assumeNotNull(due_at), occurred_at, toUInt8(isNotNull(due_at))) AS due_at,
    argMaxIfState(assumeNotNull(digitized), occurred_at, toUInt8(isNotNull(digitized))) AS digitized,
    argMaxIfState(assumeNotNull(result_digitized), occurred_at, toUInt8(isNotNull(result_digitized))) AS result_digitized,
    argMaxIfState(assumeNotNull(vneid_verified), occurred_at, toUInt8(isNotNull(vneid_verified))) AS vneid_verified,
    argMaxIfState(assumeNotNull(fee_vnd), occurred_at, toUInt8(isNotNull(fee_vnd))) AS fee_vnd,
    minIfState(occurred_at, toUInt8(status IN (3, 7, 8, 9, 10))) AS first_closed_at,
    maxState(toUInt8(status IN (9, 10))) AS resolved
FROM dossier_events
GROUP BY dossier_id;

CREATE TABLE IF NOT EXISTS payment_state
(
    payment_id String,
    dossier_id AggregateFunction(argMax, String, DateTime('UTC')),
    method AggregateFunction(argMax, Enum8('national_platform' = 1, 'local_gateway' = 2, 'offline' = 3), DateTime('UTC')),
    amount_vnd AggregateFunction(argMaxIf, UInt64, DateTime('UTC'), UInt8),
    succeeded_at AggregateFunction(minIf, DateTime('UTC'), UInt8),
    refunded AggregateFunction(max, UInt8),
    procedure_code AggregateFunction(argMax, String, DateTime('UTC')),
    agency_code AggregateFunction(argMax, String, DateTime('UTC')),
    authority_code AggregateFunction(argMax, String, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree()
ORDER BY payment_id;

-- migrate: backfill
CREATE MATERIALIZED VIEW IF NOT EXISTS payment_state_mv TO payment_state AS
SELECT
    payment_id,
    argMaxState(dossier_id, occurred_at) AS dossier_id,
    argMaxState(method, occurred_at) AS method,
    argMaxIfState(amount_vnd, occurred_at, toUInt8(status = 'succeeded')) AS amount_vnd,
    minIfState(occurred_at, toUInt8(status = 'succeeded')) AS succeeded_at,
    maxState(toUInt8(status = 'refunded')) AS refunded,
    argMaxState(toString(procedure_code), occurred_at) AS procedure_code,
    argMaxState(toString(agency_code), occurred_at) AS agency_code,
    argMaxState(toString(authority_code), occurred_at) AS authority_code
FROM payment_events
GROUP BY payment_id;

CREATE TABLE IF NOT EXISTS rating_state
(
    event_id String,
    rated_at AggregateFunction(min, DateTime('UTC')),
    rating AggregateFunction(any, Enum8('satisfied' = 1, 'neutral' = 2, 'unsatisfied' = 3)),
    procedure_code AggregateFunction(any, String),
    agency_code AggregateFunction(any, String),
    authority_code AggregateFunction(any, String)
)
ENGINE = AggregatingMergeTree()
ORDER BY event_id;

-- migrate: backfill
CREATE MATERIALIZED VIEW IF NOT EXISTS rating_state_mv TO rating_state AS
SELECT
    event_id,
    minState(occurred_at) AS rated_at,
    anyState(rating) AS rating,
    anyState(toString(procedure_code)) AS procedure_code,
    anyState(toString(agency_code)) AS agency_code,
    anyState(toString(authority_code)) AS authority_code
FROM feedback_events
GROUP BY event_id;