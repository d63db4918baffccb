-- Daily views for analysts, one per metric family, by day and every grouping
-- column. Each holds the numerator and denominator counts of the metrics of
-- its family (see README.md), so any range or coarser grouping is a sum of
-- rows: sum(full_online) / sum(dossiers) over the rows you select.

CREATE VIEW IF NOT EXISTS dossier_daily AS
SELECT
    day, authority_kind, authority_code, agency_code, procedure_code,
    sum(dossier) AS dossiers,
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
FROM dossier_facts
GROUP BY day, authority_kind, authority_code, agency_code, procedure_code;

-- Payments that succeeded, on the day they did (refunded ones included, as
-- `succeeded - paid_online` for online methods).
CREATE VIEW IF NOT EXISTS payment_daily AS
SELECT
    day, authority_kind, authority_code, agency_code, procedure_code, method,
    count() AS succeeded,
    sum(paid_online) AS paid_online,
    sum(paid_online_vnd) AS paid_online_vnd
FROM payment_facts
WHERE day > toDate('1970-01-01')
GROUP BY day, authority_kind, authority_code, agency_code, procedure_code, method;

CREATE VIEW IF NOT EXISTS rating_daily AS
SELECT
    day, authority_kind, authority_code, agency_code, procedure_code,
    sum(rated) AS ratings,
    sum(satisfied) AS satisfied,
    countIf(rating = 'neutral') AS neutral,
    countIf(rating = 'unsatisfied') AS unsatisfied
FROM rating_facts
GROUP BY day, authority_kind, authority_code, agency_code, procedure_code;
