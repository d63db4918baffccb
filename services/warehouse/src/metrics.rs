//! The metric catalog (CONTRACT.md §5), defined once: each metric names the
//! measures (columns of `rate_rollup` and `pending_rows`,
//! schemas/clickhouse/005_rate_rollup.sql) summed for its numerator and
//! denominator, and which rows it counts. The rates API, its `/v1/metrics`
//! listing and the tests all read this table.

use serde::Serialize;

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
}

/// How a rates query reads the rollup: both give the same figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The rollup, less the counted rows of the pending ids
    /// (`rollup_pending`), plus their rows now (`pending_rows`).
    Exact,
    /// The rollup alone: exact while nothing is pending, and cheaper.
    RollupOnly,
}

/// Where `rate_rollup`'s rows are read: the sums, and (with
/// [`Reading::Exact`]) the counted rows of the pending ids, which are taken
/// out.
const ROLLUP_ROWS: &str = "kind = 'rollup' AND id = '' AND batch = 0";
const PENDING_ROWS: &str = "kind IN ('dossier', 'payment', 'rating') AND id IN (SELECT id FROM rollup_pending)";

/// `client`'s query of a catalog SQL text (from [`Metric::query`] or
/// [`Metric::daily_query`]) with its day range bound: every pair of `?` is
/// the first and the last day.
pub fn range_query(client: &clickhouse::Client, sql: &str, from: &str, to: &str) -> clickhouse::query::Query {
    let mut query = client.query(sql);
    for _ in 0..sql.matches('?').count() / 2 {
        query = query.bind(from).bind(to);
    }
    query
}

impl Metric {
    /// The query of this metric: `?` parameters in pairs, each the first
    /// and last day (inclusive, `YYYY-MM-DD`); returns (grp String,
    /// numerator UInt64, denominator UInt64) sorted by group. Identifiers
    /// come from this catalog only, never from a request.
    pub fn query(&self, group: GroupBy, reading: Reading) -> String {
        self.sql(group, reading, false)
    }

    /// Like [`Metric::query`], one row per day and group: (d String, grp
    /// String, numerator UInt64, denominator UInt64), sorted by day, group.
    pub fn daily_query(&self, group: GroupBy, reading: Reading) -> String {
        self.sql(group, reading, true)
    }

    fn sql(&self, group: GroupBy, reading: Reading, by_day: bool) -> String {
        let (day, keys) = if by_day { ("toString(day) AS d, ", "d, grp") } else { ("", "grp") };
        let (num, count) = (self.numerator_column, self.source.count_column());
        let den = self.denominator_column.unwrap_or("0");
        let group = group.expression();
        let range = "day BETWEEN toDate(?) AND toDate(?)";
        let rows = match reading {
            Reading::RollupOnly => format!(
                "SELECT {day}{group} AS grp, {num} AS num, {den} AS den, {count} AS cnt \
                 FROM rate_rollup WHERE {ROLLUP_ROWS} AND {range}"
            ),
            Reading::Exact => format!(
                "SELECT {day}{group} AS grp, if(kind = 'rollup', 1, -1) AS sign, sign * {num} AS num, \
                 sign * {den} AS den, sign * {count} AS cnt \
                 FROM rate_rollup WHERE (({ROLLUP_ROWS}) OR ({PENDING_ROWS})) AND {range} \
                 UNION ALL SELECT {day}{group} AS grp, 1 AS sign, toInt64({num}) AS num, toInt64({den}) AS den, \
                 toInt64({count}) AS cnt FROM pending_rows WHERE {range}"
            ),
        };
        format!(
            "SELECT {keys}, toUInt64(sum(num)) AS numerator, toUInt64(sum(den)) AS denominator \
             FROM ({rows}) GROUP BY {keys} HAVING sum(cnt) > 0 ORDER BY {keys}"
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
    fn queries_name_only_catalog_identifiers() {
        let q = metric("on_time_rate").unwrap().query(GroupBy::AgencyCode, Reading::RollupOnly);
        assert_eq!(
            q,
            "SELECT grp, toUInt64(sum(num)) AS numerator, toUInt64(sum(den)) AS denominator \
             FROM (SELECT agency_code AS grp, closed_on_time AS num, closed_with_due AS den, dossier AS cnt \
             FROM rate_rollup WHERE kind = 'rollup' AND id = '' AND batch = 0 \
             AND day BETWEEN toDate(?) AND toDate(?)) GROUP BY grp HAVING sum(cnt) > 0 ORDER BY grp"
        );
        let exact = metric("online_payment_count").unwrap().query(GroupBy::National, Reading::Exact);
        assert_eq!(exact.matches('?').count(), 4, "two day ranges: {exact}");
        assert!(exact.contains("sign * 0 AS den") && exact.contains("FROM pending_rows"), "{exact}");
        let daily = metric("satisfaction_rate").unwrap().daily_query(GroupBy::National, Reading::RollupOnly);
        assert!(daily.starts_with("SELECT d, grp, toUInt64(sum(num))"), "{daily}");
        assert!(daily.contains("toString(day) AS d, 'national' AS grp, satisfied AS num, rated AS den, rated AS cnt"));
        assert!(daily.ends_with("GROUP BY d, grp HAVING sum(cnt) > 0 ORDER BY d, grp"), "{daily}");
        assert_eq!(GroupBy::parse("agency_code"), Some(GroupBy::AgencyCode));
        assert_eq!(GroupBy::parse("province"), None);
    }
}
