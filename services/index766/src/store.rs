//! Reads what one period's index needs from ClickHouse (migrations 006-010).
//! Each read is one query; the caller bounds them (slots, timeouts). The
//! dossier counts and the payments come from the rollups dvc-rollup keeps
//! (`index766_rollup`, `rate_rollup`), so a read costs what the period's
//! units and procedures cost, not the history; they are as of its latest
//! batch. `enable_optimize_predicate_expression` is off for these reads:
//! ClickHouse 18.16 pushes a filter on a view's column into the view's
//! aggregating subquery, where it fails ("not under aggregate function");
//! current versions accept the setting and answer the same.

use clickhouse::Client;
use clickhouse::query::Query;

use crate::indicators::{CatalogRow, DossierCounts, PaymentCount, PeriodData, PetitionRow};
use crate::period::Period;

fn query(db: &Client, sql: &str) -> Query {
    db.query(sql).with_setting("enable_optimize_predicate_expression", "0")
}

/// The dossier counts of a period (kind, first day twice, and its end as a
/// Unix time), by (authority, agency, procedure): the period's own rows, the
/// carry rows of open dossiers received before it, and the late rows whose
/// instant has passed by the period's end or now (010_index766_rollup.sql).
/// As the `index766_counts` view gives them for one period.
pub const COUNTS: &str = "SELECT authority_code, agency_code, procedure_code,
            handled, received, received_online, received_with_fee, received_paid_online, on_time, ended,
            processing_seconds, result_digitized,
            if(written_result_required = 1, digitized_with_result, digitized) AS digitized_complete,
            reused_digitized_data, from_personal_store, population_data, satisfied, open, open_on_time, open_satisfied
        FROM
        (
            SELECT authority_code, agency_code, procedure_code,
                sum(handled) AS handled, sum(received) AS received, sum(received_online) AS received_online,
                sum(received_with_fee) AS received_with_fee, sum(received_paid_online) AS received_paid_online,
                sum(on_time) AS on_time, sum(ended) AS ended, sum(processing_seconds) AS processing_seconds,
                sum(result_digitized) AS result_digitized, sum(digitized) AS digitized,
                sum(digitized_with_result) AS digitized_with_result,
                sum(reused_digitized_data) AS reused_digitized_data, sum(from_personal_store) AS from_personal_store,
                sum(population_data) AS population_data, sum(satisfied) AS satisfied, sum(open) AS open,
                sum(open_on_time) AS open_on_time, sum(open_satisfied) AS open_satisfied
            FROM index766_rollup
            WHERE kind = 'sum' AND period_kind = ?
                AND ((carry = 0 AND period_start = toDate(?)) OR (carry = 1 AND period_start <= toDate(?)))
                AND late_after < least(toUInt32(?), toUInt32(now()))
            GROUP BY authority_code, agency_code, procedure_code
            HAVING handled > 0
        ) AS summed
        ANY LEFT JOIN
        (
            SELECT authority_code, procedure_code, toUInt8(ifNull(written_result_required, 0)) AS written_result_required
            FROM procedure_catalog
        ) AS catalog USING authority_code, procedure_code";

/// The succeeded online payments of a period (first day, next period's
/// first day), by (authority, agency, procedure), from the rates' rollup.
pub const PAYMENTS: &str = "SELECT authority_code, agency_code, procedure_code, toUInt64(paid) AS paid_online
        FROM
        (
            SELECT authority_code, agency_code, procedure_code, sum(paid_online) AS paid
            FROM rate_rollup
            WHERE kind = 'rollup' AND day >= toDate(?) AND day < toDate(?) AND method != ''
            GROUP BY authority_code, agency_code, procedure_code
            HAVING paid > 0
        ) AS payments";

/// The current catalogue.
pub const CATALOGUE: &str = "SELECT authority_code, procedure_code, ifNull(name, '') AS name,
            if(online_level IS NULL, 0, toUInt8(assumeNotNull(online_level))) AS online_level,
            toUInt8(ifNull(has_fee, 0)) AS has_fee,
            toUInt8(ifNull(citizen_applicants, 0)) AS citizen_applicants,
            applying_agencies,
            toUInt16(ifNull(announced_on, toDate(0))) AS announced_on,
            toUInt16(ifNull(legal_basis_effective_on, toDate(0))) AS legal_basis_effective_on,
            toUInt16(ifNull(published_on, toDate(0))) AS published_on,
            toUInt8(ifNull(components_complete, 0)) AS components_complete,
            toUInt8(ifNull(withdrawn, 0)) AS withdrawn
        FROM procedure_catalog";

/// The petitions received in a period (their first step in it; its first
/// and end instants as Unix times).
pub const PETITIONS: &str = "SELECT petition_id, authority_code, agency_code,
            toUInt8(classification IS NOT NULL) AS classified,
            ifNull(likes, 0) AS likes,
            ifNull(dislikes, 0) AS dislikes,
            toUInt8(repeat_of IS NOT NULL) AS is_repeat,
            toUInt8(petition_id IN (SELECT assumeNotNull(repeat_of) FROM petitions WHERE repeat_of IS NOT NULL)) AS repeated,
            toUInt32(ifNull(submitted_at, first_event_at)) AS submitted_at,
            toUInt32(ifNull(forwarded_at, toDateTime(0))) AS forwarded_at,
            toUInt32(ifNull(supplement_requested_at, toDateTime(0))) AS supplement_requested_at,
            toUInt32(ifNull(rejected_at, toDateTime(0))) AS rejected_at,
            toUInt32(ifNull(answered_at, toDateTime(0))) AS answered_at,
            toUInt32(ifNull(published_at, toDateTime(0))) AS published_at
        FROM petitions
        WHERE toUInt32(ifNull(submitted_at, first_event_at)) >= ? AND toUInt32(ifNull(submitted_at, first_event_at)) < ?";

/// The dossier counts of `period`.
pub fn counts(db: &Client, period: &Period) -> Query {
    let start = period.start.to_string();
    query(db, COUNTS).bind(period.kind.as_str()).bind(&start).bind(&start).bind(period.end_instant())
}

/// The succeeded online payments of `period`.
pub fn payments(db: &Client, period: &Period) -> Query {
    query(db, PAYMENTS).bind(period.start.to_string()).bind(period.end().to_string())
}

/// The current catalogue.
pub fn catalogue(db: &Client) -> Query {
    query(db, CATALOGUE)
}

/// The petitions received in `period`.
pub fn petitions(db: &Client, period: &Period) -> Query {
    query(db, PETITIONS).bind(period.start_instant()).bind(period.end_instant())
}

/// Everything `period` needs, read one query after another.
pub async fn read(db: &Client, period: &Period) -> clickhouse::error::Result<PeriodData> {
    Ok(PeriodData {
        counts: counts(db, period).fetch_all::<DossierCounts>().await?,
        payments: payments(db, period).fetch_all::<PaymentCount>().await?,
        catalogue: catalogue(db).fetch_all::<CatalogRow>().await?,
        petitions: petitions(db, period).fetch_all::<PetitionRow>().await?,
    })
}
