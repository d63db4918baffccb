-- Rates whose cost follows the range asked, not the history (README.md,
-- "Rollup"). Four parts:
--
-- 1. The state tables again, with a fine index (256 rows a mark), so that
--    looking up a few thousand dossiers reads a few thousand marks, not the
--    whole table. Same columns and views as 002; the 002 tables stop being
--    written (their views are dropped) and are left for the operator to drop.
-- 2. `touches`: which dossier, payment or rating an insert changed, and when
--    (the server's clock at the insert). dvc-rollup reads it in time order.
-- 3. `rate_rollup`: the rates summed by day, authority, agency, procedure and
--    payment method, plus the finished row dvc-rollup last counted for each
--    dossier, payment and rating, plus its progress; all written by
--    dvc-rollup, one insert (one part, all or nothing) per batch.
-- 4. The daily views read the rollup, take out what it holds for the
--    dossiers touched since dvc-rollup's last batch began, and add those
--    dossiers' rows merged from their states: exact at every moment.
--
-- The state views (002) keep their SELECT, now into the new tables (the
-- migrate step's `-- migrate: as VIEW` repeats that view's SELECT). The facts
-- views (003) are stated again here over the new tables, unchanged but for
-- the table names and a few added columns: an applied migration's statements
-- never change, so this file is their current text.

CREATE TABLE IF NOT EXISTS dossier_state_v2 AS dossier_state
ENGINE = AggregatingMergeTree() ORDER BY dossier_id SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS payment_state_v2 AS payment_state
ENGINE = AggregatingMergeTree() ORDER BY payment_id SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS rating_state_v2 AS rating_state
ENGINE = AggregatingMergeTree() ORDER BY event_id SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS touches
(
    touched_at DateTime('UTC'),
    entity UInt8, -- 1 dossier, 2 payment, 3 rating
    id String
)
ENGINE = MergeTree()
ORDER BY (touched_at, entity, id);

-- Which payments a dossier has had (a payment counts for the dossier its
-- latest event names; this lists every dossier any of its events named).
CREATE TABLE IF NOT EXISTS payment_dossiers
(
    dossier_id String,
    payment_id String
)
ENGINE = ReplacingMergeTree()
ORDER BY (dossier_id, payment_id)
SETTINGS index_granularity = 256;

-- Touches first: a row inserted from here on is touched (once per id and
-- insert block); the backfill below touches everything stored before.
CREATE MATERIALIZED VIEW IF NOT EXISTS touches_dossier_mv TO touches AS
SELECT now() AS touched_at, toUInt8(1) AS entity, dossier_id AS id FROM dossier_events GROUP BY dossier_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS touches_payment_mv TO touches AS
SELECT now() AS touched_at, toUInt8(2) AS entity, payment_id AS id FROM payment_events GROUP BY payment_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS touches_payment_dossier_mv TO touches AS
SELECT now() AS touched_at, toUInt8(1) AS entity, dossier_id AS id FROM payment_events GROUP BY dossier_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS touches_rating_mv TO touches AS
SELECT now() AS touched_at, toUInt8(3) AS entity, event_id AS id FROM feedback_events GROUP BY event_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS payment_dossiers_mv TO payment_dossiers AS
SELECT dossier_id, payment_id FROM payment_events GROUP BY dossier_id, payment_id;

-- migrate: as dossier_state_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_state_v2_mv TO dossier_state_v2;

-- migrate: as payment_state_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS payment_state_v2_mv TO payment_state_v2;

-- migrate: as rating_state_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS rating_state_v2_mv TO rating_state_v2;

-- Backfill: the states are copied as they are (rows that both views wrote
-- while this ran reach the new tables twice, which the states absorb).
INSERT INTO dossier_state_v2 SELECT * FROM dossier_state;

INSERT INTO payment_state_v2 SELECT * FROM payment_state;

INSERT INTO rating_state_v2 SELECT * FROM rating_state;

INSERT INTO payment_dossiers SELECT DISTINCT dossier_id, payment_id FROM payment_events;

DROP TABLE IF EXISTS dossier_state_mv;

DROP TABLE IF EXISTS payment_state_mv;

DROP TABLE IF EXISTS rating_state_mv;

-- Everything stored before this migration counts as touched now.
INSERT INTO touches SELECT now(), 1, dossier_id FROM dossier_state_v2 GROUP BY dossier_id;

INSERT INTO touches SELECT now(), 2, payment_id FROM payment_state_v2 GROUP BY payment_id;

INSERT INTO touches SELECT now(), 3, event_id FROM rating_state_v2 GROUP BY event_id;

-- kind 'rollup': the sums by (day, authority, agency, procedure, method),
--   id '' and batch 0; rows of one key add up (SummingMergeTree).
-- kind 'dossier' / 'payment' / 'rating': the finished row counted in the
--   rollup for that id, written by batch `batch`; when its row changes, the
--   batch that counts the new row cancels the old one (the same key with every
--   sum negated, published -1), so the live row of an id is the one whose
--   `published` adds up to 1.
-- kind 'progress': id is dvc-rollup's progress as JSON
--   {"from":…,"to":…,"cursor":…,"pending":…}: the touches window it works
--   on, how far, and from which second the daily views count touched ids
--   from their states.
CREATE TABLE IF NOT EXISTS rate_rollup
(
    kind Enum8('rollup' = 1, 'dossier' = 2, 'payment' = 3, 'rating' = 4, 'progress' = 5),
    id String,
    batch UInt64,
    day Date,
    authority_code String,
    agency_code String,
    procedure_code String,
    method String,
    published Int64,
    dossier Int64,
    full_online Int64,
    online Int64,
    closed_with_due Int64,
    closed_on_time Int64,
    digitized Int64,
    resolved Int64,
    resolved_result_digitized Int64,
    vneid_verified Int64,
    with_fee Int64,
    with_fee_paid_online Int64,
    succeeded Int64,
    paid_online Int64,
    paid_online_vnd Int64,
    rated Int64,
    satisfied Int64,
    neutral Int64,
    unsatisfied Int64
)
ENGINE = SummingMergeTree((published, dossier, full_online, online, closed_with_due, closed_on_time, digitized, resolved, resolved_result_digitized, vneid_verified, with_fee, with_fee_paid_online, succeeded, paid_online, paid_online_vnd, rated, satisfied, neutral, unsatisfied))
ORDER BY (kind, id, batch, day, authority_code, agency_code, procedure_code, method)
SETTINGS index_granularity = 256;

-- The ids whose rollup rows may lag their states: touched at or after the
-- `pending` second of dvc-rollup's latest batch (all of them before its
-- first batch).
CREATE VIEW IF NOT EXISTS rollup_pending AS
SELECT entity, id
FROM touches
WHERE touched_at >= (
    SELECT toDateTime(ifNull(max(toUInt32(visitParamExtractUInt(id, 'pending'))), 0), 'UTC')
    FROM rate_rollup
    WHERE kind = 'progress' AND published > 0
);

-- The facts views, now over the v2 states (same definitions as 003).
DROP TABLE IF EXISTS dossier_facts;

DROP TABLE IF EXISTS payment_facts;

DROP TABLE IF EXISTS rating_facts;

CREATE VIEW IF NOT EXISTS payment_facts AS
SELECT
    payment_id,
    dossier_id,
    toDate(toTimeZone(succeeded_at, 'Asia/Ho_Chi_Minh')) AS day,
    authority_code,
    if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province') AS authority_kind,
    agency_code,
    procedure_code,
    method,
    amount_vnd,
    toUInt8(succeeded_at > toDateTime(0)) AS succeeded,
    toUInt8(succeeded_at > toDateTime(0) AND refunded = 0 AND method != 'offline') AS paid_online,
    if(succeeded_at > toDateTime(0) AND refunded = 0 AND method != 'offline', amount_vnd, 0) AS paid_online_vnd
FROM
(
    SELECT
        payment_id,
        argMaxMerge(dossier_id) AS dossier_id,
        argMaxMerge(method) AS method,
        argMaxIfMerge(amount_vnd) AS amount_vnd,
        minIfMerge(succeeded_at) AS succeeded_at,
        maxMerge(refunded) AS refunded,
        argMaxMerge(procedure_code) AS procedure_code,
        argMaxMerge(agency_code) AS agency_code,
        argMaxMerge(authority_code) AS authority_code
    FROM payment_state_v2
    GROUP BY payment_id
);

CREATE VIEW IF NOT EXISTS dossier_facts AS
SELECT
    dossier_id,
    toDate(toTimeZone(if(received_at > toDateTime(0), received_at, first_event_at), 'Asia/Ho_Chi_Minh')) AS day,
    authority_code,
    if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province') AS authority_kind,
    agency_code,
    procedure_code,
    channel,
    service_level,
    1 AS dossier,
    toUInt8(channel = 'online' AND service_level = 'full_online') AS full_online,
    toUInt8(channel = 'online') AS online,
    toUInt8(first_closed_at > toDateTime(0) AND due_at > toDateTime(0)) AS closed_with_due,
    toUInt8(first_closed_at > toDateTime(0) AND due_at > toDateTime(0) AND first_closed_at <= due_at) AS closed_on_time,
    digitized,
    resolved,
    toUInt8(resolved = 1 AND result_digitized = 1) AS resolved_result_digitized,
    vneid_verified,
    toUInt8(fee_vnd > 0) AS with_fee,
    toUInt8(fee_vnd > 0 AND dossier_id IN (SELECT dossier_id FROM payment_facts WHERE paid_online = 1)) AS with_fee_paid_online
FROM
(
    SELECT
        dossier_id,
        minMerge(first_event_at) AS first_event_at,
        argMinMerge(channel) AS channel,
        argMinMerge(service_level) AS service_level,
        argMaxMerge(procedure_code) AS procedure_code,
        argMaxMerge(agency_code) AS agency_code,
        argMaxMerge(authority_code) AS authority_code,
        argMaxIfMerge(received_at) AS received_at,
        argMaxIfMerge(due_at) AS due_at,
        argMaxIfMerge(digitized) AS digitized,
        argMaxIfMerge(result_digitized) AS result_digitized,
        argMaxIfMerge(vneid_verified) AS vneid_verified,
        argMaxIfMerge(fee_vnd) AS fee_vnd,
        minIfMerge(first_closed_at) AS first_closed_at,
        maxMerge(resolved) AS resolved
    FROM dossier_state_v2
    GROUP BY dossier_id
);

CREATE VIEW IF NOT EXISTS rating_facts AS
SELECT
    event_id,
    toDate(toTimeZone(rated_at, 'Asia/Ho_Chi_Minh')) AS day,
    authority_code,
    if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province') AS authority_kind,
    agency_code,
    procedure_code,
    rating,
    1 AS rated,
    toUInt8(rating = 'satisfied') AS satisfied,
    toUInt8(rating = 'neutral') AS neutral,
    toUInt8(rating = 'unsatisfied') AS unsatisfied
FROM
(
    SELECT
        event_id,
        minMerge(rated_at) AS rated_at,
        anyMerge(rating) AS rating,
        anyMerge(procedure_code) AS procedure_code,
        anyMerge(agency_code) AS agency_code,
        anyMerge(authority_code) AS authority_code
    FROM rating_state_v2
    GROUP BY event_id
);

-- The finished rows of the pending ids, as dvc-rollup would count them now:
-- the facts views' definitions, with the ids' filter inside each merge
-- (ClickHouse 18.16 does not carry an `IN (subquery)` filter into a view,
-- and the merge of every state is what this design avoids). The ids are
-- matched whatever their kind (a payment whose id is also a pending
-- dossier's is read too): both sides of rate_days use the same set, so such
-- a row is taken out and put back unchanged. No measure is a constant and
-- the union sits in a subquery: ClickHouse 18.16's views cannot unite a
-- constant column with a computed one.
CREATE VIEW IF NOT EXISTS pending_rows AS
SELECT * FROM
(
    SELECT
        materialize(toUInt8(1)) AS entity, dossier_id AS id,
        toDate(toTimeZone(if(received_at > toDateTime(0), received_at, first_event_at), 'Asia/Ho_Chi_Minh')) AS day,
        authority_code, agency_code, procedure_code, materialize('') AS method,
        materialize(toUInt8(1)) AS dossier,
        toUInt8(channel = 'online' AND service_level = 'full_online') AS full_online,
        toUInt8(channel = 'online') AS online,
        toUInt8(first_closed_at > toDateTime(0) AND due_at > toDateTime(0)) AS closed_with_due,
        toUInt8(first_closed_at > toDateTime(0) AND due_at > toDateTime(0) AND first_closed_at <= due_at) AS closed_on_time,
        digitized,
        resolved,
        toUInt8(resolved = 1 AND result_digitized = 1) AS resolved_result_digitized,
        vneid_verified,
        toUInt8(fee_vnd > 0) AS with_fee,
        materialize(toUInt8(fee_vnd > 0 AND dossier_id IN (
            SELECT dossier_id FROM
            (
                SELECT payment_id, argMaxMerge(dossier_id) AS dossier_id, argMaxMerge(method) AS method,
                    minIfMerge(succeeded_at) AS succeeded_at, maxMerge(refunded) AS refunded
                FROM payment_state_v2
                WHERE payment_id IN (SELECT payment_id FROM payment_dossiers WHERE dossier_id IN (SELECT id FROM rollup_pending))
                GROUP BY payment_id
            )
            WHERE succeeded_at > toDateTime(0) AND refunded = 0 AND method != 'offline'))) AS with_fee_paid_online,
        materialize(toUInt8(0)) AS succeeded,
        materialize(toUInt8(0)) AS paid_online,
        materialize(toUInt64(0)) AS paid_online_vnd,
        materialize(toUInt8(0)) AS rated,
        materialize(toUInt8(0)) AS satisfied,
        materialize(toUInt8(0)) AS neutral,
        materialize(toUInt8(0)) AS unsatisfied
    FROM
    (
        SELECT
            dossier_id,
            minMerge(first_event_at) AS first_event_at,
            argMinMerge(channel) AS channel,
            argMinMerge(service_level) AS service_level,
            argMaxMerge(procedure_code) AS procedure_code,
            argMaxMerge(agency_code) AS agency_code,
            argMaxMerge(authority_code) AS authority_code,
            argMaxIfMerge(received_at) AS received_at,
            argMaxIfMerge(due_at) AS due_at,
            argMaxIfMerge(digitized) AS digitized,
            argMaxIfMerge(result_digitized) AS result_digitized,
            argMaxIfMerge(vneid_verified) AS vneid_verified,
            argMaxIfMerge(fee_vnd) AS fee_vnd,
            minIfMerge(first_closed_at) AS first_closed_at,
            maxMerge(resolved) AS resolved
        FROM dossier_state_v2
        WHERE dossier_id IN (SELECT id FROM rollup_pending)
        GROUP BY dossier_id
    )
    UNION ALL
    SELECT
        materialize(toUInt8(2)) AS entity, payment_id AS id,
        toDate(toTimeZone(succeeded_at, 'Asia/Ho_Chi_Minh')) AS day,
        authority_code, agency_code, procedure_code, toString(method) AS method,
        materialize(toUInt8(0)) AS dossier,
        materialize(toUInt8(0)) AS full_online,
        materialize(toUInt8(0)) AS online,
        materialize(toUInt8(0)) AS closed_with_due,
        materialize(toUInt8(0)) AS closed_on_time,
        materialize(toUInt8(0)) AS digitized,
        materialize(toUInt8(0)) AS resolved,
        materialize(toUInt8(0)) AS resolved_result_digitized,
        materialize(toUInt8(0)) AS vneid_verified,
        materialize(toUInt8(0)) AS with_fee,
        materialize(toUInt8(0)) AS with_fee_paid_online,
        materialize(toUInt8(1)) AS succeeded,
        toUInt8(refunded = 0 AND method != 'offline') AS paid_online,
        if(refunded = 0 AND method != 'offline', amount_vnd, 0) AS paid_online_vnd,
        materialize(toUInt8(0)) AS rated,
        materialize(toUInt8(0)) AS satisfied,
        materialize(toUInt8(0)) AS neutral,
        materialize(toUInt8(0)) AS unsatisfied
    FROM
    (
        SELECT
            payment_id,
            argMaxMerge(method) AS method,
            argMaxIfMerge(amount_vnd) AS amount_vnd,
            minIfMerge(succeeded_at) AS succeeded_at,
            maxMerge(refunded) AS refunded,
            argMaxMerge(procedure_code) AS procedure_code,
            argMaxMerge(agency_code) AS agency_code,
            argMaxMerge(authority_code) AS authority_code
        FROM payment_state_v2
        WHERE payment_id IN (SELECT id FROM rollup_pending)
        GROUP BY payment_id
    )
    WHERE succeeded_at > toDateTime(0)
    UNION ALL
    SELECT
        materialize(toUInt8(3)) AS entity, event_id AS id,
        toDate(toTimeZone(rated_at, 'Asia/Ho_Chi_Minh')) AS day,
        authority_code, agency_code, procedure_code, materialize('') AS method,
        materialize(toUInt8(0)) AS dossier,
        materialize(toUInt8(0)) AS full_online,
        materialize(toUInt8(0)) AS online,
        materialize(toUInt8(0)) AS closed_with_due,
        materialize(toUInt8(0)) AS closed_on_time,
        materialize(toUInt8(0)) AS digitized,
        materialize(toUInt8(0)) AS resolved,
        materialize(toUInt8(0)) AS resolved_result_digitized,
        materialize(toUInt8(0)) AS vneid_verified,
        materialize(toUInt8(0)) AS with_fee,
        materialize(toUInt8(0)) AS with_fee_paid_online,
        materialize(toUInt8(0)) AS succeeded,
        materialize(toUInt8(0)) AS paid_online,
        materialize(toUInt64(0)) AS paid_online_vnd,
        materialize(toUInt8(1)) AS rated,
        toUInt8(rating = 'satisfied') AS satisfied,
        toUInt8(rating = 'neutral') AS neutral,
        toUInt8(rating = 'unsatisfied') AS unsatisfied
    FROM
    (
        SELECT
            event_id,
            minMerge(rated_at) AS rated_at,
            anyMerge(rating) AS rating,
            anyMerge(procedure_code) AS procedure_code,
            anyMerge(agency_code) AS agency_code,
            anyMerge(authority_code) AS authority_code
        FROM rating_state_v2
        WHERE event_id IN (SELECT id FROM rollup_pending)
        GROUP BY event_id
    )
);

-- The ids of dvc-rollup's current batch: emptied and filled by each batch.
CREATE TABLE IF NOT EXISTS rollup_chunk
(
    id String
)
ENGINE = MergeTree()
ORDER BY id;

-- The same rows for the ids of dvc-rollup's current batch (rollup_chunk,
-- written by dvc-rollup before it reads this).
CREATE VIEW IF NOT EXISTS chunk_rows AS
SELECT * FROM
(
    SELECT
        materialize(toUInt8(1)) AS entity, dossier_id AS id,
        toDate(toTimeZone(if(received_at > toDateTime(0), received_at, first_event_at), 'Asia/Ho_Chi_Minh')) AS day,
        authority_code, agency_code, procedure_code, materialize('') AS method,
        materialize(toUInt8(1)) AS dossier,
        toUInt8(channel = 'online' AND service_level = 'full_online') AS full_online,
        toUInt8(channel = 'online') AS online,
        toUInt8(first_closed_at > toDateTime(0) AND due_at > toDateTime(0)) AS closed_with_due,
        toUInt8(first_closed_at > toDateTime(0) AND due_at > toDateTime(0) AND first_closed_at <= due_at) AS closed_on_time,
        digitized,
        resolved,
        toUInt8(resolved = 1 AND result_digitized = 1) AS resolved_result_digitized,
        vneid_verified,
        toUInt8(fee_vnd > 0) AS with_fee,
        materialize(toUInt8(fee_vnd > 0 AND dossier_id IN (
            SELECT dossier_id FROM
            (
                SELECT payment_id, argMaxMerge(dossier_id) AS dossier_id, argMaxMerge(method) AS method,
                    minIfMerge(succeeded_at) AS succeeded_at, maxMerge(refunded) AS refunded
                FROM payment_state_v2
                WHERE payment_id IN (SELECT payment_id FROM payment_dossiers WHERE dossier_id IN (SELECT id FROM rollup_chunk))
                GROUP BY payment_id
            )
            WHERE succeeded_at > toDateTime(0) AND refunded = 0 AND method != 'offline'))) AS with_fee_paid_online,
        materialize(toUInt8(0)) AS succeeded,
        materialize(toUInt8(0)) AS paid_online,
        materialize(toUInt64(0)) AS paid_online_vnd,
        materialize(toUInt8(0)) AS rated,
        materialize(toUInt8(0)) AS satisfied,
        materialize(toUInt8(0)) AS neutral,
        materialize(toUInt8(0)) AS unsatisfied
    FROM
    (
        SELECT
            dossier_id,
            minMerge(first_event_at) AS first_event_at,
            argMinMerge(channel) AS channel,
            argMinMerge(service_level) AS service_level,
            argMaxMerge(procedure_code) AS procedure_code,
            argMaxMerge(agency_code) AS agency_code,
            argMaxMerge(authority_code) AS authority_code,
            argMaxIfMerge(received_at) AS received_at,
            argMaxIfMerge(due_at) AS due_at,
            argMaxIfMerge(digitized) AS digitized,
            argMaxIfMerge(result_digitized) AS result_digitized,
            argMaxIfMerge(vneid_verified) AS vneid_verified,
            argMaxIfMerge(fee_vnd) AS fee_vnd,
            minIfMerge(first_closed_at) AS first_closed_at,
            maxMerge(resolved) AS resolved
        FROM dossier_state_v2
        WHERE dossier_id IN (SELECT id FROM rollup_chunk)
        GROUP BY dossier_id
    )
    UNION ALL
    SELECT
        materialize(toUInt8(2)) AS entity, payment_id AS id,
        toDate(toTimeZone(succeeded_at, 'Asia/Ho_Chi_Minh')) AS day,
        authority_code, agency_code, procedure_code, toString(method) AS method,
        materialize(toUInt8(0)) AS dossier,
        materialize(toUInt8(0)) AS full_online,
        materialize(toUInt8(0)) AS online,
        materialize(toUInt8(0)) AS closed_with_due,
        materialize(toUInt8(0)) AS closed_on_time,
        materialize(toUInt8(0)) AS digitized,
        materialize(toUInt8(0)) AS resolved,
        materialize(toUInt8(0)) AS resolved_result_digitized,
        materialize(toUInt8(0)) AS vneid_verified,
        materialize(toUInt8(0)) AS with_fee,
        materialize(toUInt8(0)) AS with_fee_paid_online,
        materialize(toUInt8(1)) AS succeeded,
        toUInt8(refunded = 0 AND method != 'offline') AS paid_online,
        if(refunded = 0 AND method != 'offline', amount_vnd, 0) AS paid_online_vnd,
        materialize(toUInt8(0)) AS rated,
        materialize(toUInt8(0)) AS satisfied,
        materialize(toUInt8(0)) AS neutral,
        materialize(toUInt8(0)) AS unsatisfied
    FROM
    (
        SELECT
            payment_id,
            argMaxMerge(method) AS method,
            argMaxIfMerge(amount_vnd) AS amount_vnd,
            minIfMerge(succeeded_at) AS succeeded_at,
            maxMerge(refunded) AS refunded,
            argMaxMerge(procedure_code) AS procedure_code,
            argMaxMerge(agency_code) AS agency_code,
            argMaxMerge(authority_code) AS authority_code
        FROM payment_state_v2
        WHERE payment_id IN (SELECT id FROM rollup_chunk)
        GROUP BY payment_id
    )
    WHERE succeeded_at > toDateTime(0)
    UNION ALL
    SELECT
        materialize(toUInt8(3)) AS entity, event_id AS id,
        toDate(toTimeZone(rated_at, 'Asia/Ho_Chi_Minh')) AS day,
        authority_code, agency_code, procedure_code, materialize('') AS method,
        materialize(toUInt8(0)) AS dossier,
        materialize(toUInt8(0)) AS full_online,
        materialize(toUInt8(0)) AS online,
        materialize(toUInt8(0)) AS closed_with_due,
        materialize(toUInt8(0)) AS closed_on_time,
        materialize(toUInt8(0)) AS digitized,
        materialize(toUInt8(0)) AS resolved,
        materialize(toUInt8(0)) AS resolved_result_digitized,
        materialize(toUInt8(0)) AS vneid_verified,
        materialize(toUInt8(0)) AS with_fee,
        materialize(toUInt8(0)) AS with_fee_paid_online,
        materialize(toUInt8(0)) AS succeeded,
        materialize(toUInt8(0)) AS paid_online,
        materialize(toUInt64(0)) AS paid_online_vnd,
        materialize(toUInt8(1)) AS rated,
        toUInt8(rating = 'satisfied') AS satisfied,
        toUInt8(rating = 'neutral') AS neutral,
        toUInt8(rating = 'unsatisfied') AS unsatisfied
    FROM
    (
        SELECT
            event_id,
            minMerge(rated_at) AS rated_at,
            anyMerge(rating) AS rating,
            anyMerge(procedure_code) AS procedure_code,
            anyMerge(agency_code) AS agency_code,
            anyMerge(authority_code) AS authority_code
        FROM rating_state_v2
        WHERE event_id IN (SELECT id FROM rollup_chunk)
        GROUP BY event_id
    )
);

-- Every rate's sums by day and every grouping column: the rollup, less what
-- it holds for the pending ids, plus their rows now. The daily views below
-- read this (the rates API runs the same sums grouped its own way,
-- services/warehouse/src/metrics.rs); a WHERE on day reaches the rollup's
-- index (ClickHouse 18.16 needs enable_optimize_predicate_expression = 1 for
-- that; current versions do it by default).
CREATE VIEW IF NOT EXISTS rate_days AS
SELECT
    day,
    if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province') AS authority_kind,
    authority_code,
    agency_code,
    procedure_code,
    method,
    sum(sign * dossier) AS dossiers,
    sum(sign * full_online) AS full_online,
    sum(sign * online) AS online,
    sum(sign * closed_with_due) AS closed_with_due,
    sum(sign * closed_on_time) AS closed_on_time,
    sum(sign * digitized) AS digitized,
    sum(sign * resolved) AS resolved,
    sum(sign * resolved_result_digitized) AS resolved_result_digitized,
    sum(sign * vneid_verified) AS vneid_verified,
    sum(sign * with_fee) AS with_fee,
    sum(sign * with_fee_paid_online) AS with_fee_paid_online,
    sum(sign * succeeded) AS succeeded,
    sum(sign * paid_online) AS paid_online,
    sum(sign * paid_online_vnd) AS paid_online_vnd,
    sum(sign * rated) AS ratings,
    sum(sign * satisfied) AS satisfied,
    sum(sign * neutral) AS neutral,
    sum(sign * unsatisfied) AS unsatisfied
FROM
(
    SELECT
        day, authority_code, agency_code, procedure_code, method, if(kind = 'rollup', 1, -1) AS sign,
        dossier, full_online, online, closed_with_due, closed_on_time, digitized,
        resolved, resolved_result_digitized, vneid_verified, with_fee, with_fee_paid_online, succeeded,
        paid_online, paid_online_vnd, rated, satisfied, neutral, unsatisfied
    FROM rate_rollup
    WHERE (kind = 'rollup' AND id = '' AND batch = 0)
       OR (kind IN ('dossier', 'payment', 'rating') AND id IN (SELECT id FROM rollup_pending))
    UNION ALL
    SELECT
        day, authority_code, agency_code, procedure_code, method, 1 AS sign,
        toInt64(dossier), toInt64(full_online), toInt64(online), toInt64(closed_with_due), toInt64(closed_on_time), toInt64(digitized),
        toInt64(resolved), toInt64(resolved_result_digitized), toInt64(vneid_verified), toInt64(with_fee), toInt64(with_fee_paid_online),
        toInt64(succeeded), toInt64(paid_online), toInt64(paid_online_vnd), toInt64(rated), toInt64(satisfied), toInt64(neutral), toInt64(unsatisfied)
    FROM pending_rows
)
GROUP BY day, authority_code, agency_code, procedure_code, method;

-- The analysts' daily views (004), now over rate_days: same columns, same rows.
DROP TABLE IF EXISTS dossier_daily;

DROP TABLE IF EXISTS payment_daily;

DROP TABLE IF EXISTS rating_daily;

CREATE VIEW IF NOT EXISTS dossier_daily AS
SELECT
    day, authority_kind, authority_code, agency_code, procedure_code,
    sum(dossiers) AS dossiers,
    sum(full_online) AS full_online,
    sum(online) AS online,
    sum(closed_with_due) AS closed_with_due,
    sum(closed_on_time) AS closed_on_time,
    sum(digitized) AS digitized,
    sum(resolved) AS resolved,
    sum(resolved_result_digitized) AS resolved_result_digitized,
    sum(vneid_verified) AS vneid_verified,
    sum(with_fee) AS with_fee,
    sum(with_fee_paid_online) AS with_fee_paid_online
FROM rate_days
WHERE method = ''
GROUP BY day, authority_kind, authority_code, agency_code, procedure_code
HAVING dossiers > 0;

CREATE VIEW IF NOT EXISTS payment_daily AS
SELECT
    day, authority_kind, authority_code, agency_code, procedure_code, method,
    succeeded,
    paid_online,
    paid_online_vnd
FROM rate_days
WHERE method != '' AND succeeded > 0;

CREATE VIEW IF NOT EXISTS rating_daily AS
SELECT
    day, authority_kind, authority_code, agency_code, procedure_code,
    ratings,
    satisfied,
    neutral,
    unsatisfied
FROM rate_days
WHERE method = '' AND ratings > 0;
