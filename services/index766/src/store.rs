//! Reads what one period's index needs from ClickHouse (migrations 006-009).
//! Each read is one query over a view; the caller bounds them (slots,
//! timeouts). `enable_optimize_predicate_expression` is off for these
//! reads: ClickHouse 18.16 pushes a filter on a view's column into the
//! view's aggregating subquery, where it fails ("not under aggregate
//! function"); current versions accept the setting and answer the same.

use clickhouse::Client;
use clickhouse::query::Query;

use crate::indicators::{CatalogRow, DossierCounts, PaymentCount, PeriodData, PetitionRow};
use crate::period::Period;

fn query(db: &Client, sql: &str) -> Query {
    db.query(sql).with_setting("enable_optimize_predicate_expression", "0")
}

/// The dossier counts of a period (kind, first day), by (authority, agency,
/// procedure).
pub const COUNTS: &str = "SELECT ?fields FROM index766_counts WHERE period_kind = ? AND period_start = toDate(?)";

/// The succeeded online payments of a period (kind, first day), by
/// (authority, agency, procedure).
pub const PAYMENTS: &str = "SELECT ?fields FROM index766_payments WHERE period_kind = ? AND period_start = toDate(?)";

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
    query(db, COUNTS).bind(period.kind.as_str()).bind(period.start.to_string())
}

/// The succeeded online payments of `period`.
pub fn payments(db: &Client, period: &Period) -> Query {
    query(db, PAYMENTS).bind(period.kind.as_str()).bind(period.start.to_string())
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
