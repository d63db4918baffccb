//! The metric catalog (CONTRACT.md §5), defined once: each metric names the
//! measures (columns of `rate_rollup` and `pending_rows`,
//! schemas/clickhouse/005_rate_rollup.sql) summed for its numerator and
//! denominator, and which rows it counts. The rates API, its `/v1/metrics`
//! listing and the tests all read this table.

use std::sync::LazyLock;

use serde::Serialize;

/// The measure columns of `rate_rollup` (and of `pending_rows` and
/// `chunk_rows`), in table order: every metric sums one of them for its
/// numerator, one for its denominator and one to tell which groups it counts.
pub const MEASURES: [&str; 18] = [
    "dossier",
    "full_online",
    "online",
    "closed_with_due",
    "closed_on_time",
    "digitized",
    "resolved",
    "resolved_result_digitized",
    "vneid_verified",
    "with_fee",
    "with_fee_paid_online",
    "succeeded",
    "paid_online",
    "paid_online_vnd",
    "rated",
    "satisfied",
    "neutral",
    "unsatisfied",
];

/// `name`'s place in [`MEASURES`] (every catalog column is one: a unit test
/// checks it).
fn measure_index(name: &str) -> usize {
    MEASURES.iter().position(|m| *m == name).unwrap_or_else(|| panic!("{name} is not a measure"))
}

/// Where a metric's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// One row per dossier, on the dossier's day.
    Dossiers,
    /// One row per payment, on the day it succeeded.
    Payments,
    /// One row per rating, on the rating's day.
    Ratings,
}

impl Source {
    /// The measure counting this source's rows: a group is in an answer
    /// when it has at least one of them in the range.
    pub const fn count_column(self) -> &'static str {
        match self {
            Source::Dossiers => "dossier",
            Source::Payments => "succeeded",
            Source::Ratings => "rated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// numerator / denominator; `null` when the denominator is 0.
    Rate,
    /// A sum or count alone (`value`; numerator and denominator `null`).
    Total,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub source: Source,
    /// Measure summed for the numerator (or the total).
    #[serde(skip)]
    pub numerator_column: &'static str,
    /// Column summed for the denominator (rates only).
    #[serde(skip)]
    pub denominator_column: Option<&'static str>,
    pub title_vi: &'static str,
    pub title_en: &'static str,
    pub numerator_en: &'static str,
    pub denominator_en: Option<&'static str>,
}

pub const METRICS: &[Metric] = &[
    Metric {
        name: "full_online_share",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "full_online",
        denominator_column: Some("dossier"),
        title_vi: "Tỷ lệ hồ sơ trực tuyến toàn trình trên tổng số hồ sơ TTHC",
        title_en: "Share of dossiers filed through full-process online services",
        numerator_en: "dossiers filed online (channel = online) for a full_online procedure",
        denominator_en: Some("all dossiers"),
    },
    Metric {
        name: "online_share",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "online",
        denominator_column: Some("dossier"),
        title_vi: "Tỷ lệ hồ sơ nộp trực tuyến",
        title_en: "Share of dossiers filed online",
        numerator_en: "dossiers with channel = online",
        denominator_en: Some("all dossiers"),
    },
    Metric {
        name: "on_time_rate",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "closed_on_time",
        denominator_column: Some("closed_with_due"),
        title_vi: "Tỷ lệ hồ sơ giải quyết đúng hạn",
        title_en: "On-time processing rate",
        numerator_en: "dossiers whose first closing event (status 3, 7, 8, 9 or 10) is at or before due_at",
        denominator_en: Some("dossiers with a closing event and a due_at"),
    },
    Metric {
        name: "digitization_rate",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "digitized",
        denominator_column: Some("dossier"),
        title_vi: "Tỷ lệ số hóa hồ sơ",
        title_en: "Dossier digitization rate",
        numerator_en: "dossiers with digitized = true",
        denominator_en: Some("all dossiers"),
    },
    Metric {
        name: "result_digitization_rate",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "resolved_result_digitized",
        denominator_column: Some("resolved"),
        title_vi: "Tỷ lệ số hóa kết quả giải quyết TTHC",
        title_en: "Result digitization rate",
        numerator_en: "resolved dossiers with result_digitized = true",
        denominator_en: Some("dossiers that reached status 9 or 10"),
    },
    Metric {
        name: "vneid_rate",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "vneid_verified",
        denominator_column: Some("dossier"),
        title_vi: "Tỷ lệ hồ sơ có tài khoản định danh VNeID",
        title_en: "VNeID-verified applicant rate",
        numerator_en: "dossiers with vneid_verified = true",
        denominator_en: Some("all dossiers"),
    },
    Metric {
        name: "online_payment_rate",
        kind: MetricKind::Rate,
        source: Source::Dossiers,
        numerator_column: "with_fee_paid_online",
        denominator_column: Some("with_fee"),
        title_vi: "Tỷ lệ thanh toán trực tuyến",
        title_en: "Online payment rate",
        numerator_en: "of those, dossiers with a succeeded, not refunded payment by national_platform or local_gateway",
        denominator_en: Some("dossiers with fee_vnd > 0"),
    },
    Metric {
        name: "online_payment_value_vnd",
        kind: MetricKind::Total,
        source: Source::Payments,
        numerator_column: "paid_online_vnd",
        denominator_column: None,
        title_vi: "Giá trị thanh toán trực tuyến (đồng)",
        title_en: "Online payment value (VND)",
        numerator_en: "sum of amount_vnd of succeeded, not refunded online payments, by payment day",
        denominator_en: None,
    },
    Metric {
        name: "online_payment_count",
        kind: MetricKind::Total,
        source: Source::Payments,
        numerator_column: "paid_online",
        denominator_column: None,
        title_vi: "Số giao dịch thanh toán trực tuyến",
        title_en: "Online payment transactions",
        numerator_en: "succeeded, not refunded online payments, by payment day",
        denominator_en: None,
    },
    Metric {
        name: "satisfaction_rate",
        kind: MetricKind::Rate,
        source: Source::Ratings,
        numerator_column: "satisfied",
        denominator_column: Some("rated"),
        title_vi: "Tỷ lệ hài lòng",
        title_en: "Satisfaction rate",
        numerator_en: "ratings `satisfied`",
        denominator_en: Some("all ratings, by rating day"),
    },
];

pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// How rows are grouped (CONTRACT.md §6 `group_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    National,
    AuthorityKind,
    AuthorityCode,
    AgencyCode,
    ProcedureCode,
}

impl GroupBy {
    pub const ALL: [GroupBy; 5] = [
        GroupBy::National,
        GroupBy::AuthorityKind,
        GroupBy::AuthorityCode,
        GroupBy::AgencyCode,
        GroupBy::ProcedureCode,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            GroupBy::National => "national",
            GroupBy::AuthorityKind => "authority_kind",
            GroupBy::AuthorityCode => "authority_code",
            GroupBy::AgencyCode => "agency_code",
            GroupBy::ProcedureCode => "procedure_code",
        }
    }

    pub fn parse(s: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The group's expression over rows with the grouping columns.
    const fn expression(self) -> &'static str {
        match self {
            GroupBy::National => "'national'",
            GroupBy::AuthorityKind => "if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province')",
            other => other.as_str(),
        }
    }

    /// The group of a row with these grouping columns: what
    /// [`GroupBy::expression`] gives in ClickHouse (the rates API adds the
    /// pending rows to the rollup's sums with it; the exactness tests
    /// compare the two paths).
    pub fn key<'a>(self, authority_code: &'a str, agency_code: &'a str, procedure_code: &'a str) -> &'a str {
        match self {
            GroupBy::National => "national",
            GroupBy::AuthorityKind if authority_code.as_bytes().first() == Some(&b'G') => "ministry",
            GroupBy::AuthorityKind => "province",
            GroupBy::AuthorityCode => authority_code,
            GroupBy::AgencyCode => agency_code,
            GroupBy::ProcedureCode => procedure_code,
        }
    }
}

/// The pending ids, copied once into the session's temporary table
/// `pending_ids`, which every place of a catalog query that takes them
/// reads. They are the ids touched at or after the latest batch's own
/// pending second (dvc-rollup's `Progress::pending_since`: where its reading
/// of its window stopped), one batch later than `rollup_pending` starts for
/// the daily views: a view reads the rollup and the progress row in one
/// query and may see a batch land between them, so it counts that batch's
/// ids from their states too; a reader here reads the rollup once, at this
/// batch or a later one (after the copy), whose pending second is no
/// earlier, so every id the rollup may not hold at its read is copied, and
/// the set is about half as large under steady traffic. (The pending second
/// in SQL is `pending_since`'s rule: `to` when the batch ended its window,
/// `from` when it stopped at a cursor.) A query holding `IN (SELECT id FROM
/// rollup_pending)` several times reads the set once per occurrence, so an
/// id touched between two reads would be put back without being taken out
/// (README.md, "Why every figure is exact"); a constant list of the ids
/// would cost its parse at every place (about 140 ms per place for 40,000
/// ids on 18.16). Run in a session ([`pending_session`]) before the query
/// that reads them; a user with `readonly = 2` may.
pub const PENDING_IDS: [&str; 2] = [
    CREATE_PENDING_IDS,
    "INSERT INTO pending_ids SELECT id FROM touches WHERE touched_at >= (SELECT toDateTime(ifNull(max(\
     if(visitParamExtractRaw(id, 'cursor') = 'null', visitParamExtractUInt(id, 'to'), visitParamExtractUInt(id, 'from'))\
     ), 0), 'UTC') FROM rate_rollup WHERE kind = 'progress' AND published > 0)",
];
/// Makes the session's `pending_ids`.
pub const CREATE_PENDING_IDS: &str = "CREATE TEMPORARY TABLE pending_ids (id String) ENGINE = Memory";
/// Frees the session's copy of the pending ids (also gone when the session
/// ends).
pub const DROP_PENDING_IDS: &str = "DROP TEMPORARY TABLE pending_ids";
/// Where a catalog query takes the pending ids.
const IDS: &str = "pending_ids";
/// How long a session of [`pending_session`] outlives its last query, in
/// seconds, when it is not told to drop its table.
const SESSION_TIMEOUT_SECONDS: &str = "30";

/// `client` in a ClickHouse session of its own (a random `session_id`) for
/// [`PENDING_IDS`] and the catalog queries over them. A session lives on
/// one server: `client`'s URL must reach the same server every time (a node,
/// or a proxy that routes by `session_id`).
pub fn pending_session(client: &clickhouse::Client) -> clickhouse::Client {
    client
        .clone()
        .with_setting("session_id", format!("dvc-pending-{:032x}", rand::random::<u128>()))
        .with_setting("session_timeout", SESSION_TIMEOUT_SECONDS)
}

/// What the `pending_rows` view reads its ids from.
const VIEW_IDS: &str = "(SELECT id FROM rollup_pending)";
/// Where `rate_rollup`'s rows are read: the sums, and the counted rows of
/// the pending ids (which the exact figures take out).
const ROLLUP_ROWS: &str = "kind = 'rollup' AND id = '' AND batch = 0";
const PENDING_ROWS: &str = "kind IN ('dossier', 'payment', 'rating') AND id IN pending_ids";
const DAY_RANGE: &str = "day BETWEEN toDate(?) AND toDate(?)";
/// Which rollup batch a read of `rate_rollup` saw, from the `'progress'`
/// rows read with its other rows (one read, one snapshot of the table): the
/// columns each row carries, and their aggregates (`batch`, `progress`) per
/// group; the group holding the progress rows has the latest batch.
const SEEN: &str = "if(kind = 'progress', batch, 0) AS seen_batch, if(kind = 'progress', id, '') AS seen_progress";
const NOT_SEEN: &str = "materialize(toUInt64(0)) AS seen_batch, materialize('') AS seen_progress";
const SEEN_BATCH: &str = "max(seen_batch) AS batch, argMax(seen_progress, seen_batch) AS progress";
/// A `rate_rollup` row's day as text, empty for the progress rows (day 0,
/// which ClickHouse 18.16 prints as 0000-00-00 and current versions as
/// 1970-01-01).
const DAY: &str = "if(kind = 'progress', '', toString(day))";

/// `client`'s query of a catalog SQL text (from [`Metric::query`],
/// [`Metric::daily_query`] or [`Metric::rollup_query`]) with its `?` bound:
/// every pair the first and the last day. A text that reads the pending ids
/// runs in the session that copied them ([`PENDING_IDS`]).
pub fn catalog_query(client: &clickhouse::Client, sql: &str, from: &str, to: &str) -> clickhouse::query::Query {
    sql.match_indices('?')
        .zip([from, to].into_iter().cycle())
        .fold(client.query(sql), |query, (_, day)| query.bind(day))
}

/// The `pending_rows` view (005_rate_rollup.sql) as a subquery over the
/// session's `pending_ids` instead of `rollup_pending`: the view's own text,
/// as the migrations create it, each of its reads of the pending ids (four)
/// made a read of the one copy.
fn pending_rows() -> &'static str {
    static ROWS: LazyLock<String> = LazyLock::new(|| {
        let create = "CREATE VIEW IF NOT EXISTS pending_rows AS";
        let view = crate::migrations()
            .expect("the embedded migrations parse (a unit test parses them)")
            .into_iter()
            .flat_map(|m| m.statements)
            .filter_map(|s| s.strip_prefix(create).map(str::to_owned))
            .next_back()
            .expect("a migration creates pending_rows");
        format!("({})", view.trim().replace(VIEW_IDS, IDS))
    });
    &ROWS
}

/// The pending ids' share of every figure: their rows now less the rows the
/// rollup counts for them, summed by day and grouping columns, with the
/// rollup batch the read of `rate_rollup` saw. Returns (d String, empty for
/// the group of the progress rows; the three grouping columns; batch
/// UInt64; progress String; measures Array(Int64) in [`MEASURES`] order).
/// Added to the sums of [`Metric::rollup_query`] read at the same batch, it
/// gives what [`Metric::query`] gives; a rates API reads it once for all the
/// requests that share a pending check. It binds nothing and reads the
/// session's `pending_ids` ([`PENDING_IDS`]).
pub fn pending_delta_query() -> String {
    let taken_out: Vec<String> = MEASURES.iter().map(|m| format!("-{m} AS {m}")).collect();
    let now: Vec<String> = MEASURES.iter().map(|m| format!("toInt64({m}) AS {m}")).collect();
    let sums: Vec<String> = MEASURES.iter().map(|m| format!("sum({m})")).collect();
    format!(
        "SELECT d, authority_code, agency_code, procedure_code, {SEEN_BATCH}, [{sums}] AS measures \
         FROM (SELECT {DAY} AS d, authority_code, agency_code, procedure_code, {SEEN}, {taken_out} \
         FROM rate_rollup WHERE ({PENDING_ROWS}) OR kind = 'progress' \
         UNION ALL SELECT toString(day) AS d, authority_code, agency_code, procedure_code, {NOT_SEEN}, {now} \
         FROM {pending_rows}) \
         GROUP BY d, authority_code, agency_code, procedure_code",
        pending_rows = pending_rows(),
        sums = sums.join(", "),
        taken_out = taken_out.join(", "),
        now = now.join(", "),
    )
}

/// The ids touched at or after a second, each with its first and last
/// touch since and how many: (id String, first UInt32, last UInt32,
/// touches UInt64); binds the second (Unix seconds).
pub const TOUCHED_SQL: &str = "SELECT id, toUInt32(min(touched_at)) AS first, toUInt32(max(touched_at)) AS last, \
     count() AS touches FROM touches WHERE touched_at >= toDateTime(?) GROUP BY id";

/// The rows of the ids in the session's `pending_ids` now, id by id: (id
/// String; d String; the three grouping columns; measures Array(Int64) in
/// [`MEASURES`] order). With [`pending_counted_query`] over the same ids,
/// what [`pending_delta_query`] sums, for a reader that keeps each id's
/// share and reads an id again only when it is touched again.
pub fn pending_now_query() -> String {
    let now: Vec<String> = MEASURES.iter().map(|m| format!("toInt64({m})")).collect();
    format!(
        "SELECT id, toString(day) AS d, authority_code, agency_code, procedure_code, [{now}] AS measures \
         FROM {pending_rows}",
        now = now.join(", "),
        pending_rows = pending_rows(),
    )
}

/// What the rollup counts for the ids in the session's `pending_ids`, id
/// by id, with the rollup batch the read saw: (id String, empty for the
/// group of the progress rows; d String; the three grouping columns; batch
/// UInt64; progress String; measures Array(Int64) in [`MEASURES`] order).
pub fn pending_counted_query() -> String {
    let sums: Vec<String> = MEASURES.iter().map(|m| format!("sum({m})")).collect();
    format!(
        "SELECT holder AS id, d, authority_code, agency_code, procedure_code, {SEEN_BATCH}, [{sums}] AS measures \
         FROM (SELECT if(kind = 'progress', '', id) AS holder, {DAY} AS d, authority_code, agency_code, \
         procedure_code, {SEEN}, {measures} FROM rate_rollup WHERE ({PENDING_ROWS}) OR kind = 'progress') \
         GROUP BY holder, d, authority_code, agency_code, procedure_code",
        sums = sums.join(", "),
        measures = MEASURES.join(", "),
    )
}

impl Metric {
    /// The query of this metric, exact at every moment: the rollup, less
    /// the counted rows of the pending ids, plus their rows now
    /// (`pending_rows`), in the session that copied the pending ids
    /// ([`PENDING_IDS`]); bound by [`catalog_query`] (the first and last
    /// day, inclusive, `YYYY-MM-DD`); returns (grp String, numerator UInt64,
    /// denominator UInt64) sorted by group. Identifiers come from this
    /// catalog only, never from a request.
    pub fn query(&self, group: GroupBy) -> String {
        self.exact_sql(group, false)
    }

    /// Like [`Metric::query`], one row per day and group: (d String, grp
    /// String, numerator UInt64, denominator UInt64), sorted by day, group.
    pub fn daily_query(&self, group: GroupBy) -> String {
        self.exact_sql(group, true)
    }

    /// The rollup's sums alone, with the batch they were read at: (d String,
    /// empty unless `by_day`; grp String; numerator, denominator, counted
    /// Int64; batch UInt64; progress String), one row per day and group,
    /// the groups counting nothing included (the group holding the progress
    /// rows among them). Exact while nothing is pending; otherwise add
    /// [`pending_delta_query`]'s rows read at the same batch.
    pub fn rollup_query(&self, group: GroupBy, by_day: bool) -> String {
        let (num, den, count) = self.columns();
        let group = group.expression();
        let day = if by_day { DAY } else { "''" };
        format!(
            "SELECT d, grp, sum(num) AS numerator, sum(den) AS denominator, sum(cnt) AS counted, {SEEN_BATCH} \
             FROM (SELECT {day} AS d, {group} AS grp, {num} AS num, {den} AS den, {count} AS cnt, {SEEN} \
             FROM rate_rollup WHERE ({ROLLUP_ROWS} AND {DAY_RANGE}) OR kind = 'progress') \
             GROUP BY d, grp"
        )
    }

    /// Which [`MEASURES`] this metric sums: numerator, denominator (none
    /// for a total) and the count of its source's rows.
    pub fn measure_indexes(&self) -> (usize, Option<usize>, usize) {
        (
            measure_index(self.numerator_column),
            self.denominator_column.map(measure_index),
            measure_index(self.source.count_column()),
        )
    }

    /// The columns summed for the numerator, denominator and count.
    fn columns(&self) -> (&'static str, &'static str, &'static str) {
        (self.numerator_column, self.denominator_column.unwrap_or("0"), self.source.count_column())
    }

    fn exact_sql(&self, group: GroupBy, by_day: bool) -> String {
        let (day, keys) = if by_day { ("toString(day) AS d, ", "d, grp") } else { ("", "grp") };
        let (num, den, count) = self.columns();
        let group = group.expression();
        format!(
            "SELECT {keys}, toUInt64(sum(num)) AS numerator, toUInt64(sum(den)) AS denominator \
             FROM (SELECT {day}{group} AS grp, if(kind = 'rollup', 1, -1) AS sign, sign * {num} AS num, \
             sign * {den} AS den, sign * {count} AS cnt \
             FROM rate_rollup WHERE (({ROLLUP_ROWS}) OR ({PENDING_ROWS})) AND {DAY_RANGE} \
             UNION ALL SELECT {day}{group} AS grp, 1 AS sign, toInt64({num}) AS num, toInt64({den}) AS den, \
             toInt64({count}) AS cnt FROM {pending_rows} WHERE {DAY_RANGE}) \
             GROUP BY {keys} HAVING sum(cnt) > 0 ORDER BY {keys}",
            pending_rows = pending_rows(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_the_contract_metrics_once() {
        let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        let contract = [
            "full_online_share",
            "online_share",
            "on_time_rate",
            "digitization_rate",
            "result_digitization_rate",
            "vneid_rate",
            "online_payment_rate",
            "online_payment_value_vnd",
            "online_payment_count",
            "satisfaction_rate",
        ];
        assert_eq!(names, contract);
        for m in METRICS {
            assert_eq!(m.kind == MetricKind::Rate, m.denominator_column.is_some(), "{}", m.name);
            assert_eq!(m.denominator_column.is_some(), m.denominator_en.is_some(), "{}", m.name);
        }
    }

    #[test]
    fn every_catalog_column_is_a_measure() {
        for m in METRICS {
            let (num, den, count) = m.measure_indexes();
            assert_eq!(MEASURES[num], m.numerator_column);
            assert_eq!(den.map(|i| MEASURES[i]), m.denominator_column);
            assert_eq!(MEASURES[count], m.source.count_column());
        }
    }

    #[test]
    fn group_keys_are_the_sql_group_expressions() {
        let keys = |g: GroupBy| [g.key("G01", "A1", "P1"), g.key("H29", "A2", "P2"), g.key("", "", "")];
        assert_eq!(keys(GroupBy::National), ["national"; 3]);
        assert_eq!(keys(GroupBy::AuthorityKind), ["ministry", "province", "province"]);
        assert_eq!(keys(GroupBy::AuthorityCode), ["G01", "H29", ""]);
        assert_eq!(keys(GroupBy::AgencyCode), ["A1", "A2", ""]);
        assert_eq!(keys(GroupBy::ProcedureCode), ["P1", "P2", ""]);
        assert_eq!(
            GroupBy::AuthorityKind.expression(),
            "if(substring(authority_code, 1, 1) = 'G', 'ministry', 'province')"
        );
    }

    #[test]
    fn queries_name_only_catalog_identifiers() {
        let q = metric("on_time_rate").unwrap().rollup_query(GroupBy::AgencyCode, false);
        assert_eq!(
            q,
            "SELECT d, grp, sum(num) AS numerator, sum(den) AS denominator, sum(cnt) AS counted, \
             max(seen_batch) AS batch, argMax(seen_progress, seen_batch) AS progress \
             FROM (SELECT '' AS d, agency_code AS grp, closed_on_time AS num, closed_with_due AS den, \
             dossier AS cnt, if(kind = 'progress', batch, 0) AS seen_batch, \
             if(kind = 'progress', id, '') AS seen_progress FROM rate_rollup \
             WHERE (kind = 'rollup' AND id = '' AND batch = 0 AND day BETWEEN toDate(?) AND toDate(?)) \
             OR kind = 'progress') GROUP BY d, grp"
        );
        let exact = metric("online_payment_count").unwrap().query(GroupBy::National);
        assert_eq!(exact.matches("BETWEEN toDate(?) AND toDate(?)").count(), 2, "two day ranges: {exact}");
        assert_eq!(exact.matches(IDS).count(), 5, "the ids, once per read of them: {exact}");
        assert_eq!(exact.matches('?').count(), 4, "{exact}");
        assert!(exact.contains("sign * 0 AS den") && exact.contains(pending_rows()), "{exact}");
        let daily = metric("satisfaction_rate").unwrap().daily_query(GroupBy::National);
        assert!(daily.starts_with("SELECT d, grp, toUInt64(sum(num))"), "{daily}");
        assert!(daily.contains("toString(day) AS d, 'national' AS grp, if(kind = 'rollup', 1, -1) AS sign"));
        assert!(daily.ends_with("GROUP BY d, grp HAVING sum(cnt) > 0 ORDER BY d, grp"), "{daily}");
        let by_day = metric("satisfaction_rate").unwrap().rollup_query(GroupBy::National, true);
        assert!(
            by_day
                .contains("SELECT if(kind = 'progress', '', toString(day)) AS d, 'national' AS grp, satisfied AS num")
        );
        let delta = pending_delta_query();
        assert_eq!(delta.matches(IDS).count(), 5, "the ids, once per read of them: {delta}");
        assert_eq!(delta.matches('?').count(), 0, "nothing bound: {delta}");
        assert!(!delta.contains("rollup_pending"), "{delta}");
        assert_eq!(delta.matches("sum(").count(), MEASURES.len(), "{delta}");
        assert_eq!(delta.matches("toInt64(").count(), MEASURES.len(), "{delta}");
        assert!(delta.contains("-unsatisfied AS unsatisfied") && delta.contains(pending_rows()), "{delta}");
        assert_eq!(GroupBy::parse("agency_code"), Some(GroupBy::AgencyCode));
        assert_eq!(GroupBy::parse("province"), None);
    }

    #[test]
    fn pending_rows_is_the_view_over_the_bound_ids() {
        let rows = pending_rows();
        // The view reads rollup_pending four times: the dossiers, the
        // dossiers' payments, the payments, the ratings.
        let view = crate::migrations()
            .unwrap()
            .into_iter()
            .flat_map(|m| m.statements)
            .find(|s| s.starts_with("CREATE VIEW IF NOT EXISTS pending_rows AS"))
            .unwrap();
        assert_eq!(view.matches(VIEW_IDS).count(), 4, "{view}");
        assert_eq!(rows.matches(IDS).count(), 4, "{rows}");
        assert!(!rows.contains("rollup_pending"), "{rows}");
        assert_eq!(
            rows.replace(IDS, VIEW_IDS),
            format!("({})", view["CREATE VIEW IF NOT EXISTS pending_rows AS".len()..].trim())
        );
    }

    #[test]
    fn catalog_query_binds_the_first_and_last_day_in_pairs() {
        let client = clickhouse::Client::default();
        let sql = "SELECT 1 WHERE day BETWEEN ? AND ? AND id IN pending_ids AND day BETWEEN ? AND ?";
        let query = catalog_query(&client, sql, "2024-07-01", "2024-07-31");
        assert_eq!(
            query.sql_display().to_string(),
            "SELECT 1 WHERE day BETWEEN '2024-07-01' AND '2024-07-31' AND id IN pending_ids \
             AND day BETWEEN '2024-07-01' AND '2024-07-31'"
        );
        let session = pending_session(&client);
        let id = session.get_setting("session_id").unwrap();
        assert!(id.starts_with("dvc-pending-") && id != pending_session(&client).get_setting("session_id").unwrap());
    }
}
