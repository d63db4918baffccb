-- The Decision 766 index at the cost of the period asked, not of the history
-- (README.md, "Decision 766 index", "The index rollup"). dvc-rollup, in the
-- batches that keep `rate_rollup`, also keeps `index766_rollup`: what every
-- accepted dossier brings to each month, quarter and year, summed by period
-- and (authority, agency, procedure), with the rows it counted for each
-- dossier, so that a dossier that changes is taken out and counted again.
--
-- The clock: a dossier that has ended is judged at its end or at a period's
-- end, neither of which moves. One still open is judged at the period's end
-- or now, whichever comes first; it is on time until its `late_after` instant
-- and late after it (below), so its rows are written as if on time, plus a
-- row keyed by `late_after` that takes the on-time counts back, and a query
-- adds that row when `late_after` < least(period end, now). An open dossier is
-- also in every later period until it ends: its row for the period after its
-- receipt is a `carry` row, counted in that period and every later one.
--
-- This file replaces the per-dossier views of 009 (index766_dossiers,
-- index766_dossier_periods) by the same computation over the ids of
-- dvc-rollup's current batch (`rollup_chunk`), and index766_counts and
-- index766_payments by views over the rollups.

-- Ratings and petitions change what a dossier brings to the index (5.4): an
-- insert of either touches the dossier it names.
CREATE MATERIALIZED VIEW IF NOT EXISTS touches_rating_dossier_mv TO touches AS
SELECT now() AS touched_at, toUInt8(1) AS entity, dossier_id AS id FROM feedback_events GROUP BY dossier_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS touches_petition_dossier_mv TO touches AS
SELECT now() AS touched_at, toUInt8(1) AS entity, assumeNotNull(dossier_id) AS id
FROM petition_events
WHERE isNotNull(dossier_id) AND assumeNotNull(dossier_id) != ''
GROUP BY assumeNotNull(dossier_id);

-- kind 'sum': the counts by (period, carry, late_after, authority, agency,
--   procedure), id '' and batch 0; rows of one key add up.
-- kind 'dossier': a row dvc-rollup counted in the sums for dossier `id`,
--   written by batch `batch`; cancelled (same key, every sum negated,
--   published -1) when the dossier's rows change, as in rate_rollup.
-- kind 'reference': id is the fingerprint of what a due time without
--   `due_at` is computed from (index766_due_reference) when dvc-rollup last
--   looked; when it changes, every dossier without `due_at` is touched.
-- period_kind, period_start: the period (its first day, Vietnam's calendar);
--   carry 1: the row counts in that period and every later one (an open
--   dossier received earlier). late_after > 0: the row counts in a period
--   only when late_after < least(the period's end, now) (Unix seconds).
-- digitized and digitized_with_result give 4.2 with the catalogue's
-- `written_result_required`, read when queried (index766_counts).
CREATE TABLE IF NOT EXISTS index766_rollup
(
    kind Enum8('sum' = 1, 'dossier' = 2, 'reference' = 3),
    id String,
    batch UInt64,
    period_kind Enum8('' = 0, 'month' = 1, 'quarter' = 2, 'year' = 3),
    carry UInt8,
    period_start Date,
    late_after UInt32,
    authority_code String,
    agency_code String,
    procedure_code String,
    published Int64,
    handled Int64,
    received Int64,
    received_online Int64,
    received_with_fee Int64,
    received_paid_online Int64,
    on_time Int64,
    ended Int64,
    processing_seconds Int64,
    result_digitized Int64,
    digitized Int64,
    digitized_with_result Int64,
    reused_digitized_data Int64,
    from_personal_store Int64,
    population_data Int64,
    satisfied Int64,
    open Int64,
    open_on_time Int64,
    open_satisfied Int64
)
ENGINE = SummingMergeTree((published, handled, received, received_online, received_with_fee, received_paid_online, on_time, ended, processing_seconds, result_digitized, digitized, digitized_with_result, reused_digitized_data, from_personal_store, population_data, satisfied, open, open_on_time, open_satisfied))
ORDER BY (kind, id, batch, period_kind, carry, period_start, late_after, authority_code, agency_code, procedure_code)
SETTINGS index_granularity = 256;

-- What a due time without `due_at` is computed from: each procedure's
-- maximum in working days, and the working-day calendar.
CREATE VIEW IF NOT EXISTS index766_due_reference AS
SELECT
    (SELECT sum(cityHash64(authority_code, procedure_code, ifNull(max_processing_days, -1.0))) FROM procedure_catalog)
    + (SELECT sum(cityHash64(day, working, ordinal)) FROM working_calendar) AS fingerprint;

-- One row per accepted dossier of dvc-rollup's batch (one with a
-- `received_at`; the index counts no other) with what the index reads of
-- it, times as Unix seconds:
--   ended_at       end of processing (§3): the first status 9, else 10, else
--                  the first of 8, 3, 7; else, after exactly one supplement
--                  request (status 5) that no later step followed, that
--                  request; 0 while in process
--   supplements    distinct status-5 steps; supplement_at the first,
--                  resumed_at the first step after it (0: none)
--   due            `due_at`, or, without one, the end of the working day
--                  `max_processing_days` working days after the day of
--                  receipt (the catalogue's entry); 0 when neither is known
--   late_after     judged at or before it, the dossier is on time (§3, 2.1):
--                  at most one supplement request, and judged no later than
--                  its due time plus the time the request waited for the
--                  applicant (up to the next step, or the judging time).
--                  Worked out: 0 (never on time) with two requests or more;
--                  4294967295 (always) without a due time; the due time
--                  without a request, or when the request came after it;
--                  the due time plus the wait once the applicant answered;
--                  4294967295 while a request made in time waits
--   happy          no `unsatisfied` rating, and no petition names it
--   paid_online    a succeeded, not refunded online payment of the dossier
CREATE VIEW IF NOT EXISTS index766_chunk_dossiers AS
SELECT
    dossier_id, authority_code, agency_code, procedure_code, channel,
    received_at, ended_at, due_at, due,
    toUInt32(multiIf(
        supplements > 1, 0,
        due = 0, 4294967295,
        supplements = 0 OR supplement_at > due, due,
        resumed_at > 0, due + resumed_at - supplement_at,
        4294967295)) AS late_after,
    digitized, result_digitized, vneid_verified, fee_vnd,
    reused_digitized_data, from_personal_store, population_db_used,
    paid_online,
    toUInt8(unsatisfied = 0 AND dossier_id NOT IN (SELECT assumeNotNull(dossier_id) FROM petitions WHERE isNotNull(dossier_id))) AS happy
FROM
(
    SELECT *,
        if(due_at > 0, due_at, if(max_processing_days > 0 AND due_day > toDate('1970-01-01'), toUInt32(toUInt32(due_day) * 86400 + 61200), 0)) AS due
    FROM
    (
        SELECT *, toUInt32(ordinal + max_processing_days) AS due_ordinal
        FROM
        (
            SELECT *, toDate(toDateTime(received_at, 'Asia/Ho_Chi_Minh')) AS day
            FROM
            (
                SELECT *,
                    arrayReduce('min', arrayMap(x -> intDiv(x, 16), arrayFilter(x -> x % 16 = 9, steps))) AS t9,
                    arrayReduce('min', arrayMap(x -> intDiv(x, 16), arrayFilter(x -> x % 16 = 10, steps))) AS t10,
                    arrayReduce('min', arrayMap(x -> intDiv(x, 16), arrayFilter(x -> has([3, 7, 8], x % 16), steps))) AS t_stop,
                    length(arrayFilter(x -> x % 16 = 5, steps)) AS supplements,
                    toUInt32(arrayReduce('min', arrayMap(x -> intDiv(x, 16), arrayFilter(x -> x % 16 = 5, steps)))) AS supplement_at,
                    toUInt32(if(supplements = 0, 0, arrayReduce('min', arrayMap(x -> intDiv(x, 16), arrayFilter(x -> x % 16 != 5 AND intDiv(x, 16) > supplement_at, steps))))) AS resumed_at,
                    toUInt32(multiIf(t9 > 0, t9, t10 > 0, t10, t_stop > 0, t_stop, supplements = 1 AND resumed_at = 0, supplement_at, 0)) AS ended_at
                FROM
                (
                    SELECT * FROM
                    (
                        SELECT * FROM
                        (
                            SELECT * FROM
                            (
                                SELECT
                                    dossier_id,
                                    argMinMerge(channel) AS channel,
                                    argMaxMerge(procedure_code) AS procedure_code,
                                    argMaxMerge(agency_code) AS agency_code,
                                    argMaxMerge(authority_code) AS authority_code,
                                    toUInt32(argMaxIfMerge(received_at)) AS received_at,
                                    toUInt32(argMaxIfMerge(due_at)) AS due_at,
                                    argMaxIfMerge(digitized) AS digitized,
                                    argMaxIfMerge(result_digitized) AS result_digitized,
                                    argMaxIfMerge(vneid_verified) AS vneid_verified,
                                    argMaxIfMerge(fee_vnd) AS fee_vnd
                                FROM dossier_state_v2
                                WHERE dossier_id IN (SELECT id FROM rollup_chunk)
                                GROUP BY dossier_id
                                HAVING received_at > 0
                            ) AS dossier
                            ANY LEFT JOIN
                            (
                                SELECT
                                    dossier_id,
                                    groupUniqArrayMerge(steps) AS steps,
                                    argMaxIfMerge(reused_digitized_data) AS reused_digitized_data,
                                    argMaxIfMerge(from_personal_store) AS from_personal_store,
                                    argMaxIfMerge(population_db_used) AS population_db_used
                                FROM dossier_index_state
                                WHERE dossier_id IN (SELECT id FROM rollup_chunk)
                                GROUP BY dossier_id
                            ) AS index_state USING dossier_id
                        ) AS dossier_steps
                        ANY LEFT JOIN
                        (
                            SELECT dossier_id, maxMerge(unsatisfied) AS unsatisfied
                            FROM dossier_rating_state
                            WHERE dossier_id IN (SELECT id FROM rollup_chunk)
                            GROUP BY dossier_id
                        ) AS ratings USING dossier_id
                    ) AS rated
                    ANY LEFT JOIN
                    (
                        SELECT dossier_id, max(paid) AS paid_online
                        FROM
                        (
                            SELECT payment_id, argMaxMerge(dossier_id) AS dossier_id,
                                toUInt8(minIfMerge(succeeded_at) > toDateTime(0) AND maxMerge(refunded) = 0 AND argMaxMerge(method) != 'offline') AS paid
                            FROM payment_state_v2
                            WHERE payment_id IN (SELECT payment_id FROM payment_dossiers WHERE dossier_id IN (SELECT id FROM rollup_chunk))
                            GROUP BY payment_id
                        ) AS payments
                        GROUP BY dossier_id
                    ) AS paid USING dossier_id
                ) AS joined
            ) AS timed
            ANY LEFT JOIN
            (
                SELECT authority_code, procedure_code,
                    toUInt32(ceil(ifNull(max_processing_days, 0))) AS max_processing_days
                FROM procedure_catalog
            ) AS catalog USING authority_code, procedure_code
        ) AS catalogued
        ANY LEFT JOIN (SELECT day, ordinal FROM working_calendar) AS received_day USING day
    ) AS ordinals
    ANY LEFT JOIN
    (
        SELECT ordinal AS due_ordinal, day AS due_day FROM working_calendar WHERE working = 1
    ) AS due_days USING due_ordinal
) AS dated;

-- The rows of index766_rollup for each dossier of the batch: one for every
-- month, quarter and year whose H(P) holds it (§3: received before the
-- period's end, and not ended before its start) while it has ended; while
-- open, one for the period of its receipt and a carry row for the next (and
-- every later) one, each with its late row (`late_after` > 0) when its
-- lateness waits on the clock. The counts, 0 or 1 (processing_seconds
-- apart):
--   received   in R(P): received inside the period (received_* the same
--              with the dossier's channel, fee and online payment)
--   on_time    judged (at its end when that falls inside the period, else
--              at the period's end) no later than late_after
--   ended      its end inside the period; processing_seconds from receipt
--   satisfied  on time and happy
--   open       not ended by the period's end; open_on_time, open_satisfied:
--              those of them on time, satisfied
CREATE VIEW IF NOT EXISTS index766_chunk_rows AS
SELECT
    dossier_id AS id, period_kind, carry, period_start,
    if(part = 1, late_after, 0) AS late_key,
    authority_code, agency_code, procedure_code,
    toInt64(part = 0) AS handled,
    toInt64(part = 0 AND received_at >= s) AS received,
    toInt64(part = 0 AND received_at >= s AND channel = 'online') AS received_online,
    toInt64(part = 0 AND received_at >= s AND fee_vnd > 0) AS received_with_fee,
    toInt64(part = 0 AND received_at >= s AND fee_vnd > 0 AND paid_online = 1) AS received_paid_online,
    if(part = 0, toInt64(NOT late), -1) AS on_time,
    toInt64(part = 0 AND closed) AS ended,
    toInt64(if(part = 0 AND closed AND ended_at > received_at, ended_at - received_at, 0)) AS processing_seconds,
    toInt64(part = 0 AND result_digitized = 1) AS result_digitized,
    toInt64(part = 0 AND digitized = 1) AS digitized,
    toInt64(part = 0 AND digitized = 1 AND result_digitized = 1) AS digitized_with_result,
    toInt64(part = 0 AND reused_digitized_data = 1) AS reused_digitized_data,
    toInt64(part = 0 AND from_personal_store = 1) AS from_personal_store,
    toInt64(part = 0 AND (vneid_verified = 1 OR population_db_used = 1 OR from_personal_store = 1)) AS population_data,
    if(part = 0, toInt64(NOT late AND happy = 1), -toInt64(happy)) AS satisfied,
    toInt64(part = 0 AND NOT closed) AS open,
    if(part = 0, toInt64(NOT closed AND NOT late), -1) AS open_on_time,
    if(part = 0, toInt64(NOT closed AND NOT late AND happy = 1), -toInt64(happy)) AS open_satisfied
FROM
(
    SELECT *,
        toUInt8(ended_at > 0 AND ended_at < e) AS closed,
        -- An ended dossier is judged at its end or at the period's end; an
        -- open one's first row holds it on time unless it can never be.
        toUInt8(if(ended_at > 0, if(closed, ended_at, e) > late_after, late_after = 0)) AS late,
        arrayJoin(if(ended_at = 0 AND late_after > 0 AND late_after < 4294967295, [0, 1], [0])) AS part
    FROM
    (
        SELECT *,
            toUInt8(ended_at = 0 AND period_number > first_number) AS carry,
            addMonths(toDate('2000-01-01'), toInt32(period_number * months) - 24000) AS period_start,
            toUInt32(toUInt32(period_start) * 86400 - 25200) AS s,
            toUInt32(toUInt32(addMonths(period_start, months)) * 86400 - 25200) AS e
        FROM
        (
            SELECT *,
                arrayJoin(range(toUInt32(greatest(toInt64(last_number) - toInt64(first_number) + 1, 0)))) + first_number AS period_number
            FROM
            (
                SELECT *,
                    arrayJoin([('month', 1), ('quarter', 3), ('year', 12)]) AS kind,
                    tupleElement(kind, 1) AS period_kind,
                    tupleElement(kind, 2) AS months,
                    intDiv(toYear(toDateTime(received_at, 'Asia/Ho_Chi_Minh')) * 12 + toMonth(toDateTime(received_at, 'Asia/Ho_Chi_Minh')) - 1, months) AS first_number,
                    if(ended_at > 0,
                        intDiv(toYear(toDateTime(ended_at, 'Asia/Ho_Chi_Minh')) * 12 + toMonth(toDateTime(ended_at, 'Asia/Ho_Chi_Minh')) - 1, months),
                        first_number + 1) AS last_number
                FROM index766_chunk_dossiers
            ) AS kinds
        ) AS numbered
    ) AS bounded
) AS judged;

-- The 009 views computed every dossier on each read; the rollup replaces them.
DROP TABLE IF EXISTS index766_counts;

DROP TABLE IF EXISTS index766_payments;

DROP TABLE IF EXISTS index766_dossier_periods;

DROP TABLE IF EXISTS index766_dossiers;

-- The counts of groups 2-5 by period and (authority, agency, procedure),
-- every period from the first dossier's to the current one, as of
-- dvc-rollup's latest batch: sum rows for a coarser unit. `received_*` are
-- R(P)'s, the rest H(P)'s; 4.2's digitized_complete takes the catalogue's
-- `written_result_required` now. (GET /v1/index766 reads one period from
-- index766_rollup directly: `dvc-rates-api --print-queries`.)
CREATE VIEW IF NOT EXISTS index766_counts AS
SELECT
    period_kind, period_start, authority_code, agency_code, procedure_code,
    handled, received, received_online, received_with_fee, received_paid_online, on_time, ended,
    processing_seconds, result_digitized,
    if(written_result_required = 1, digitized_with_result, digitized) AS digitized_complete,
    reused_digitized_data, from_personal_store, population_data, satisfied, open, open_on_time, open_satisfied
FROM
(
    SELECT
        period_kind, period_start, authority_code, agency_code, procedure_code,
        sum(handled) AS handled, sum(received) AS received, sum(received_online) AS received_online,
        sum(received_with_fee) AS received_with_fee, sum(received_paid_online) AS received_paid_online,
        sum(on_time) AS on_time, sum(ended) AS ended, sum(processing_seconds) AS processing_seconds,
        sum(result_digitized) AS result_digitized, sum(digitized) AS digitized,
        sum(digitized_with_result) AS digitized_with_result, sum(reused_digitized_data) AS reused_digitized_data,
        sum(from_personal_store) AS from_personal_store, sum(population_data) AS population_data,
        sum(satisfied) AS satisfied, sum(open) AS open, sum(open_on_time) AS open_on_time,
        sum(open_satisfied) AS open_satisfied
    FROM
    (
        SELECT
            toString(row_kind) AS period_kind, counted_start AS period_start,
            authority_code, agency_code, procedure_code,
            handled, received, received_online, received_with_fee, received_paid_online, on_time, ended,
            processing_seconds, result_digitized, digitized, digitized_with_result, reused_digitized_data,
            from_personal_store, population_data, satisfied, open, open_on_time, open_satisfied,
            late_after, toUInt32(toUInt32(addMonths(counted_start, months)) * 86400 - 25200) AS counted_end
        FROM
        (
            SELECT *,
                period_kind AS row_kind,
                multiIf(period_kind = 'month', 1, period_kind = 'quarter', 3, 12) AS months,
                -- A carry row counts in its period and each one after it, up to now's.
                addMonths(period_start, months * toInt32(arrayJoin(range(toUInt32(if(carry = 1,
                    greatest(intDiv(toInt64(toYear(toDateTime(now(), 'Asia/Ho_Chi_Minh')) * 12 + toMonth(toDateTime(now(), 'Asia/Ho_Chi_Minh')) - 1), months)
                        - intDiv(toInt64(toYear(period_start) * 12 + toMonth(period_start) - 1), months) + 1, 1),
                    1)))))) AS counted_start
            FROM index766_rollup
            WHERE kind = 'sum'
        ) AS periods
        WHERE late_after < least(counted_end, toUInt32(now()))
    ) AS counted
    GROUP BY period_kind, period_start, authority_code, agency_code, procedure_code
) AS summed
ANY LEFT JOIN
(
    SELECT authority_code, procedure_code, toUInt8(ifNull(written_result_required, 0)) AS written_result_required
    FROM procedure_catalog
) AS catalog USING authority_code, procedure_code;

-- Online payments that succeeded (not refunded), by the period of the day
-- they did, from the rates' daily view: indicator 3.4 counts the
-- fee-bearing procedures that had one.
CREATE VIEW IF NOT EXISTS index766_payments AS
SELECT
    period_kind,
    addMonths(toDate('2000-01-01'), toInt32(intDiv(toYear(day) * 12 + toMonth(day) - 1, months) * months) - 24000) AS period_start,
    authority_code, agency_code, procedure_code,
    sum(paid_online) AS paid_online
FROM
(
    SELECT *,
        arrayJoin([('month', 1), ('quarter', 3), ('year', 12)]) AS kind,
        tupleElement(kind, 1) AS period_kind,
        tupleElement(kind, 2) AS months
    FROM payment_daily
    WHERE paid_online > 0
) AS kinds
GROUP BY period_kind, period_start, authority_code, agency_code, procedure_code;

-- Everything stored before this migration counts as touched now, so that
-- dvc-rollup counts it into index766_rollup.
INSERT INTO touches SELECT now(), 1, dossier_id FROM dossier_state_v2 GROUP BY dossier_id;
