-- One finished row per dossier, payment and rating: the states of 002 merged,
-- with the day each belongs to and a 0/1 column per numerator and
-- denominator of CONTRACT.md §5. The rates API and analysts sum these columns
-- over a day range and a grouping; the metric catalog (services/events,
-- `metrics.rs`) names, for each metric, the view and the columns it sums.
--
-- Days are calendar days in Asia/Ho_Chi_Minh. A dossier's day is that of its
-- received_at (latest known), or, while it has none, of its first event.

-- payment_facts first: dossier_facts reads it.
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
    FROM payment_state
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
    FROM dossier_state
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
    toUInt8(rating = 'satisfied') AS satisfied
FROM
(
    SELECT
        event_id,
        minMerge(rated_at) AS rated_at,
        anyMerge(rating) AS rating,
        anyMerge(procedure_code) AS procedure_code,
        anyMerge(agency_code) AS agency_code,
        anyMerge(authority_code) AS authority_code
    FROM rating_state
    GROUP BY event_id
);
