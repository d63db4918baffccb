-- The Decision 766 index (docs/INDEX766.md; methodology in README.md,
-- "The Decision 766 index"): what each dossier brings to the indicators of
-- groups 2-5, by period. The catalogue's and the petitions' indicators are
-- counted from `procedure_catalog` and `petitions` (006) with the working-day
-- calendar (007).
--
-- Two more per-dossier states, idempotent and order-free like those of 002:
-- every step a dossier took (its time and status, as a set, so a re-sent
-- event adds nothing), the three flags of contract 1.1, and whether any
-- rating of it was `unsatisfied`.

CREATE TABLE IF NOT EXISTS dossier_index_state
(
    dossier_id String,
    steps AggregateFunction(groupUniqArray, UInt64),
    reused_digitized_data AggregateFunction(argMaxIf, UInt8, DateTime('UTC'), UInt8),
    from_personal_store AggregateFunction(argMaxIf, UInt8, DateTime('UTC'), UInt8),
    population_db_used AggregateFunction(argMaxIf, UInt8, DateTime('UTC'), UInt8)
)
ENGINE = AggregatingMergeTree()
ORDER BY dossier_id
SETTINGS index_granularity = 256;

-- A step is `occurred_at * 16 + status` (status 1-10 fits in four bits).
-- migrate: backfill
CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_index_state_mv TO dossier_index_state AS
SELECT
    dossier_id,
    groupUniqArrayState(toUInt64(occurred_at) * 16 + status) AS steps,
    argMaxIfState(assumeNotNull(reused_digitized_data), occurred_at, toUInt8(isNotNull(reused_digitized_data))) AS reused_digitized_data,
    argMaxIfState(assumeNotNull(from_personal_store), occurred_at, toUInt8(isNotNull(from_personal_store))) AS from_personal_store,
    argMaxIfState(assumeNotNull(population_db_used), occurred_at, toUInt8(isNotNull(population_db_used))) AS population_db_used
FROM dossier_events
GROUP BY dossier_id;

CREATE TABLE IF NOT EXISTS dossier_rating_state
(
    dossier_id String,
    unsatisfied AggregateFunction(max, UInt8)
)
ENGINE = AggregatingMergeTree()
ORDER BY dossier_id
SETTINGS index_granularity = 256;

-- migrate: backfill
CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_rating_state_mv TO dossier_rating_state AS
SELECT dossier_id, maxState(toUInt8(rating = 'unsatisfied')) AS unsatisfied
FROM feedback_events
GROUP BY dossier_id;

-- One row per accepted dossier (one with a `received_at`; the index counts
-- no other) with what the index reads of it, times as Unix seconds:
--   ended_at       end of processing (§3): the first status 9, else 10, else
--                  the first of 8, 3, 7; else, after exactly one supplement
--                  request (status 5) that no later step followed, that
--                  request; 0 while in process
--   supplements    distinct status-5 steps; supplement_at the first,
--                  resumed_at the first step after it (0: none)
--   due            `due_at`, or, without one, the end of the working day
--                  `max_processing_days` working days after the day of
--                  receipt (the catalogue's entry); 0 when neither is known
--   written_result_required, from the catalogue (0 when it has no entry)
--   paid_online    a succeeded, not refunded online payment of the dossier
--   unsatisfied    an `unsatisfied` rating; petitioned: a petition names it
CREATE VIEW IF NOT EXISTS index766_dossiers AS
SELECT
    dossier_id, authority_code, agency_code, procedure_code, channel,
    received_at, ended_at, supplements, supplement_at, resumed_at,
    if(due_at > 0, due_at, if(max_processing_days > 0 AND due_day > toDate('1970-01-01'), toUInt32(toUInt32(due_day) * 86400 + 61200), 0)) AS due,
    digitized, result_digitized, vneid_verified, fee_vnd,
    reused_digitized_data, from_personal_store, population_db_used,
    written_result_required, paid_online, unsatisfied,
    toUInt8(dossier_id IN (SELECT assumeNotNull(dossier_id) FROM petitions WHERE dossier_id IS NOT NULL)) AS petitioned
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
                            GROUP BY dossier_id
                        ) AS index_state USING dossier_id
                    ) AS dossier_steps
                    ANY LEFT JOIN
                    (
                        SELECT dossier_id, maxMerge(unsatisfied) AS unsatisfied
                        FROM dossier_rating_state
                        GROUP BY dossier_id
                    ) AS ratings USING dossier_id
                ) AS rated
                ANY LEFT JOIN
                (
                    SELECT dossier_id, max(paid_online) AS paid_online
                    FROM payment_facts
                    GROUP BY dossier_id
) AS paid USING dossier_id
            ) AS joined
        ) AS timed
        ANY LEFT JOIN
        (
            SELECT authority_code, procedure_code,
                toUInt8(ifNull(written_result_required, 0)) AS written_result_required,
                toUInt32(ceil(ifNull(max_processing_days, 0))) AS max_processing_days
            FROM procedure_catalog
        ) AS catalog USING authority_code, procedure_code
    ) AS catalogued
    ANY LEFT JOIN (SELECT day, ordinal FROM working_calendar) AS received_day USING day
) AS ordinals
ANY LEFT JOIN
(
    SELECT ordinal AS due_ordinal, day AS due_day FROM working_calendar WHERE working = 1
) AS due_days USING due_ordinal;

-- Each accepted dossier once for every month, quarter and year whose H(P)
-- holds it (§3: received before the period's end, and not ended before its
-- start), with its 0/1 part in each indicator there. `period_start` is the
-- period's first day (Vietnam's calendar); s and e are its first instant and
-- the next period's, as Unix seconds. A dossier is judged at its end when
-- that falls inside the period, else at the period's end (now, for the
-- current period):
--   on_time    at most one supplement request, and judged no later than its
--              due time plus the time the request waited for the applicant
--              (up to the next step, or the judging time); always on time
--              without a due time
--   received   in R(P): received inside the period (received_* the same
--              with the dossier's channel, fee and online payment)
--   satisfied  on time, no `unsatisfied` rating and no petition about it
--   open       not ended by the period's end (now, for the current period);
--              open_on_time, open_satisfied: those of them on time, satisfied
--   ended      its end inside the period; processing_seconds from receipt
CREATE VIEW IF NOT EXISTS index766_dossier_periods AS
SELECT
    period_kind, period_start,
    dossier_id, authority_code, agency_code, procedure_code,
    toUInt8(received_at >= s) AS received,
    toUInt8(received_at >= s AND channel = 'online') AS received_online,
    toUInt8(received_at >= s AND fee_vnd > 0) AS received_with_fee,
    toUInt8(received_at >= s AND fee_vnd > 0 AND paid_online = 1) AS received_paid_online,
    toUInt8(supplements <= 1 AND (due = 0 OR judged <= due + paused)) AS on_time,
    toUInt8(ended_at > 0 AND ended_at >= s AND ended_at < e) AS ended,
    toUInt64(if(ended_at > 0 AND ended_at >= s AND ended_at < e AND ended_at > received_at, ended_at - received_at, 0)) AS processing_seconds,
    result_digitized,
    toUInt8(digitized = 1 AND (result_digitized = 1 OR written_result_required = 0)) AS digitized_complete,
    reused_digitized_data,
    from_personal_store,
    toUInt8(vneid_verified = 1 OR population_db_used = 1 OR from_personal_store = 1) AS population_data,
    toUInt8(supplements <= 1 AND (due = 0 OR judged <= due + paused) AND unsatisfied = 0 AND petitioned = 0) AS satisfied,
    toUInt8(ended_at = 0 OR ended_at >= e) AS open,
    toUInt8(ended_at = 0 OR ended_at >= e) * toUInt8(supplements <= 1 AND (due = 0 OR judged <= due + paused)) AS open_on_time,
    toUInt8(ended_at = 0 OR ended_at >= e) * toUInt8(supplements <= 1 AND (due = 0 OR judged <= due + paused) AND unsatisfied = 0 AND petitioned = 0) AS open_satisfied
FROM
(
    SELECT *,
        if(ended_at > 0 AND ended_at < e, ended_at, least(e, toUInt32(now()))) AS judged,
        if(supplements = 1 AND supplement_at < judged, least(if(resumed_at > 0, resumed_at, judged), judged) - supplement_at, 0) AS paused
    FROM
    (
        SELECT *,
            addMonths(toDate('2000-01-01'), toInt32(period_number * months) - 24000) AS period_start,
            toUInt32(toUInt32(period_start) * 86400 - 25200) AS s,
            toUInt32(toUInt32(addMonths(period_start, months)) * 86400 - 25200) AS e
        FROM
        (
            SELECT *,
                arrayJoin(range(toUInt32(greatest(toInt64(intDiv(last_month, months)) - toInt64(intDiv(first_month, months)) + 1, 0)))) + intDiv(first_month, months) AS period_number
            FROM
            (
                SELECT
                    dossier_id, authority_code, agency_code, procedure_code, channel,
                    received_at, ended_at, supplements, supplement_at, resumed_at, due,
                    result_digitized, digitized, vneid_verified, fee_vnd,
                    reused_digitized_data, from_personal_store, population_db_used,
                    written_result_required, paid_online, unsatisfied, petitioned,
                    arrayJoin([('month', 1), ('quarter', 3), ('year', 12)]) AS kind,
                    tupleElement(kind, 1) AS period_kind,
                    tupleElement(kind, 2) AS months,
                    toYear(toDateTime(received_at, 'Asia/Ho_Chi_Minh')) * 12 + toMonth(toDateTime(received_at, 'Asia/Ho_Chi_Minh')) - 1 AS first_month,
                    toYear(toDateTime(if(ended_at > 0, ended_at, toUInt32(now())), 'Asia/Ho_Chi_Minh')) * 12
                        + toMonth(toDateTime(if(ended_at > 0, ended_at, toUInt32(now())), 'Asia/Ho_Chi_Minh')) - 1 AS last_month
                FROM index766_dossiers
            ) AS kinds
        ) AS numbered
    ) AS bounded
    WHERE received_at < e AND (ended_at = 0 OR ended_at >= s)
) AS judged;

-- The counts of groups 2-5 by period and (authority, agency, procedure):
-- sum rows for a coarser unit. `received_*` are R(P)'s, the rest H(P)'s.
CREATE VIEW IF NOT EXISTS index766_counts AS
SELECT
    period_kind, period_start, authority_code, agency_code, procedure_code,
    count() AS handled,
    sum(received) AS received,
    sum(received_online) AS received_online,
    sum(received_with_fee) AS received_with_fee,
    sum(received_paid_online) AS received_paid_online,
    sum(on_time) AS on_time,
    sum(ended) AS ended,
    sum(processing_seconds) AS processing_seconds,
    sum(result_digitized) AS result_digitized,
    sum(digitized_complete) AS digitized_complete,
    sum(reused_digitized_data) AS reused_digitized_data,
    sum(from_personal_store) AS from_personal_store,
    sum(population_data) AS population_data,
    sum(satisfied) AS satisfied,
    sum(open) AS open,
    sum(open_on_time) AS open_on_time,
    sum(open_satisfied) AS open_satisfied
FROM index766_dossier_periods
GROUP BY period_kind, period_start, authority_code, agency_code, procedure_code;

-- Online payments that succeeded (not refunded), by the period of the day
-- they did: indicator 3.4 counts the fee-bearing procedures that had one.
CREATE VIEW IF NOT EXISTS index766_payments AS
SELECT
    period_kind,
    addMonths(toDate('2000-01-01'), toInt32(intDiv(toYear(day) * 12 + toMonth(day) - 1, months) * months) - 24000) AS period_start,
    authority_code, agency_code, procedure_code,
    count() AS paid_online
FROM
(
    SELECT *,
        arrayJoin([('month', 1), ('quarter', 3), ('year', 12)]) AS kind,
        tupleElement(kind, 1) AS period_kind,
        tupleElement(kind, 2) AS months
    FROM payment_facts
    WHERE paid_online = 1
) AS kinds
GROUP BY period_kind, period_start, authority_code, agency_code, procedure_code;
