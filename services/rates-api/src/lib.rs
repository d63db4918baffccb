//! The rates API (CONTRACT.md §6). Every figure is computed in ClickHouse
//! from the rollup (and the states of the ids it has not counted yet), over
//! the metric catalog of `dvc_warehouse::METRICS`; this service validates
//! parameters, asks whether anything is pending, runs the catalog query and
//! shapes the answer. Reads only: point it at a read-only ClickHouse user.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use clickhouse::Row;
use dvc_warehouse::{ClickHouseArgs, GroupBy, METRICS, MetricKind, Reading, metric, range_query};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::macros::{format_description, offset};
use time::{Date, OffsetDateTime};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

pub mod openapi;

/// Serves the rates of DVC Pulse from ClickHouse.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "dvc-rates-api", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "DVC_RATES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub limits: Limits,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    pub openapi: bool,
    /// Print the SQL `/v1/rates` runs for every metric × grouping and exit
    /// (JSON: [{metric, group_by, sql}]; the `?` are pairs of the first and last
    /// day), for analysts and for measuring the queries elsewhere.
    #[arg(long)]
    pub print_queries: bool,
}

/// How much work the API puts on ClickHouse: it answers 503 with
/// `Retry-After` rather than pile queries up there.
#[derive(clap::Args, Debug, Clone)]
pub struct Limits {
    /// ClickHouse queries running at once; further requests wait for a slot.
    #[arg(long, env = "DVC_RATES_MAX_QUERIES", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_queries: u32,
    /// How long a request waits for a query slot before it gets 503 (ms).
    #[arg(long, env = "DVC_RATES_QUEUE_TIMEOUT_MS", default_value_t = 10_000)]
    pub queue_timeout_ms: u64,
    /// How long one query may run (ms): ClickHouse stops it there
    /// (`max_execution_time`) and the request gets 503.
    #[arg(long, env = "DVC_RATES_QUERY_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub query_timeout_ms: u64,
    /// Memory for answers read from the rollup alone (MiB; 0 turns it off):
    /// while nothing is pending, requests asking the same thing at the same
    /// rollup batch share one query.
    #[arg(long, env = "DVC_RATES_ANSWER_CACHE_MB", default_value_t = 64)]
    pub answer_cache_mb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        dvc_warehouse::flag_defaults()
    }
}

/// The longest range of days one request may ask for (ten years).
pub const MAX_RANGE_DAYS: i64 = 3_653;
/// The longest value a query parameter may have (bytes).
pub const MAX_PARAMETER_LEN: usize = 64;
/// What a 503 tells the client to wait before it retries (seconds).
const RETRY_AFTER_SECONDS: u64 = 1;

/// What the handlers share: the ClickHouse client, the query slots and the
/// answers read from the rollup alone.
#[derive(Clone)]
struct Api {
    clickhouse: clickhouse::Client,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    query_timeout: Duration,
    answers: Option<Answers>,
    check: Arc<Mutex<Option<Check>>>,
}

/// The pending check in flight (`None` until it answers). One runs at a
/// time and the requests arriving meanwhile share its answer, so an answer
/// reflects the data as of at most one check (milliseconds) before its
/// request.
type Check = watch::Receiver<Option<Result<Pending, Unavailable>>>;

/// Which answer a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Endpoint {
    Rates,
    Series,
}

/// An answer read from the rollup alone, at one rollup batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AnswerKey {
    batch: String,
    endpoint: Endpoint,
    metric: &'static str,
    group: GroupBy,
    from: Date,
    to: Date,
}

/// The answers read from the rollup alone, by the rollup batch they were
/// read at. While nothing is pending an answer depends only on its request
/// and the rollup, which changes only with a new batch (each batch writes
/// its rows and its progress in one insert): requests that find the same
/// latest batch share one query (one runs, the others wait for it), and a
/// new batch starts afresh.
#[derive(Clone)]
struct Answers {
    cache: moka::future::Cache<AnswerKey, Bytes>,
    batch: Arc<Mutex<String>>,
}

impl Answers {
    fn new(megabytes: u64) -> Option<Answers> {
        (megabytes > 0).then(|| Answers {
            cache: moka::future::Cache::builder()
                .max_capacity(megabytes.saturating_mul(1 << 20))
                .weigher(|_, body: &Bytes| u32::try_from(body.len()).unwrap_or(u32::MAX))
                .time_to_idle(Duration::from_secs(600))
                .build(),
            batch: Arc::default(),
        })
    }

    /// Drops the answers of earlier batches when `batch` is new.
    fn at_batch(&self, batch: &str) {
        let mut latest = self.batch.lock().expect("the batch lock is never poisoned");
        if *latest != batch {
            batch.clone_into(&mut latest);
            self.cache.invalidate_all();
        }
    }
}

/// Whether anything is pending, and the rollup's latest batch.
const PENDING_SQL: &str = "SELECT (SELECT count() FROM rollup_pending) AS pending, \
     concat(toString(max(batch)), ' ', argMax(id, batch)) AS batch \
     FROM rate_rollup WHERE kind = 'progress' AND published > 0";

#[derive(Row, Deserialize, Clone)]
struct Pending {
    pending: u64,
    batch: String,
}

/// Every metric × grouping with the SQL `/v1/rates` runs for it.
pub fn queries() -> serde_json::Value {
    METRICS
        .iter()
        .flat_map(|m| {
            GroupBy::ALL
                .into_iter()
                .map(|g| json!({"metric": m.name, "group_by": g.as_str(), "sql": m.query(g, Reading::Exact)}))
        })
        .collect()
}

/// Serves until `stop` fires.
pub async fn serve(listener: tokio::net::TcpListener, config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, database = %config.clickhouse.database, "rates API listening");
    let app = router(config.clickhouse.client(), &config.limits);
    axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await?;
    Ok(())
}

pub fn router(clickhouse: clickhouse::Client, limits: &Limits) -> Router {
    let api = Api {
        clickhouse,
        slots: Arc::new(Semaphore::new(limits.max_queries as usize)),
        queue_timeout: Duration::from_millis(limits.queue_timeout_ms),
        query_timeout: Duration::from_millis(limits.query_timeout_ms),
        answers: Answers::new(limits.answer_cache_mb),
        check: Arc::default(),
    };
    Router::new()
        .route("/v1/rates", get(rates))
        .route("/v1/series", get(series))
        .route("/v1/metrics", get(metrics))
        .route("/", get(|| async { Html(include_str!("../assets/index.html")) }))
        .route("/assets/dashboard.js", get(|| asset("text/javascript", include_str!("../assets/dashboard.js"))))
        .route(
            "/assets/vendor/uPlot-1.6.32.iife.min.js",
            get(|| asset("text/javascript", include_str!("../assets/vendor/uPlot-1.6.32.iife.min.js"))),
        )
        .route(
            "/assets/vendor/uPlot-1.6.32.min.css",
            get(|| asset("text/css", include_str!("../assets/vendor/uPlot-1.6.32.min.css"))),
        )
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .with_state(api)
}

/// One row of `/v1/rates`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RateRow {
    pub group: String,
    pub numerator: Option<u64>,
    pub denominator: Option<u64>,
    /// A fraction for rates, an integer for totals.
    pub value: Option<serde_json::Number>,
}

#[derive(Row, Deserialize)]
struct Sums {
    grp: String,
    numerator: u64,
    denominator: u64,
}

/// A bad request parameter: answered 400 with `{"error": "<parameter>: <problem>"}`.
#[derive(Debug)]
struct BadParameter {
    parameter: String,
    problem: String,
}

impl BadParameter {
    fn new(parameter: &str, problem: String) -> BadParameter {
        BadParameter { parameter: parameter.to_owned(), problem }
    }
}

impl IntoResponse for BadParameter {
    fn into_response(self) -> Response {
        let error = format!("{}: {}", self.parameter, self.problem);
        (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
    }
}

/// A valid `/v1/rates` request.
struct RatesRequest {
    metric: &'static dvc_warehouse::Metric,
    group: GroupBy,
    from: Date,
    to: Date,
}

/// Today in Vietnam (UTC+7 all year).
fn today() -> Date {
    OffsetDateTime::now_utc().to_offset(offset!(+7)).date()
}

fn day(params: &HashMap<String, String>, name: &str) -> Result<Date, BadParameter> {
    match params.get(name) {
        None => Ok(today()),
        Some(text) => Date::parse(text, format_description!("[year]-[month]-[day]"))
            .map_err(|_| BadParameter::new(name, format!("{text:?} is not a date (YYYY-MM-DD)"))),
    }
}

fn parse(params: &HashMap<String, String>) -> Result<RatesRequest, BadParameter> {
    const KNOWN: [&str; 4] = ["metric", "from", "to", "group_by"];
    let mut unknown: Vec<&String> = params.keys().filter(|k| !KNOWN.contains(&k.as_str())).collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        let name: String = name.chars().take(MAX_PARAMETER_LEN).collect();
        return Err(BadParameter::new(&name, format!("unknown parameter; use {}", KNOWN.join(", "))));
    }
    for name in KNOWN {
        if params.get(name).is_some_and(|v| v.len() > MAX_PARAMETER_LEN) {
            return Err(BadParameter::new(name, format!("longer than {MAX_PARAMETER_LEN} bytes")));
        }
    }
    let names = || METRICS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let name =
        params.get("metric").ok_or_else(|| BadParameter::new("metric", format!("required; one of {}", names())))?;
    let metric =
        metric(name).ok_or_else(|| BadParameter::new("metric", format!("{name:?} is not one of {}", names())))?;
    let group = match params.get("group_by") {
        None => GroupBy::National,
        Some(g) => GroupBy::parse(g).ok_or_else(|| {
            let all: Vec<&str> = GroupBy::ALL.iter().map(|g| g.as_str()).collect();
            BadParameter::new("group_by", format!("{g:?} is not one of {}", all.join(", ")))
        })?,
    };
    let (from, to) = (day(params, "from")?, day(params, "to")?);
    if from > to {
        return Err(BadParameter::new("from", format!("{from} is after to ({to})")));
    }
    if (to - from).whole_days() >= MAX_RANGE_DAYS {
        return Err(BadParameter::new(
            "from",
            format!("the range {from} to {to} is longer than ten years ({MAX_RANGE_DAYS} days)"),
        ));
    }
    Ok(RatesRequest { metric, group, from, to })
}

/// The answer row of one group: a rate (`null` on a 0 denominator) or a total.
fn rate_row(metric: &dvc_warehouse::Metric, group: String, numerator: u64, denominator: u64) -> RateRow {
    match metric.kind {
        MetricKind::Rate => RateRow {
            group,
            numerator: Some(numerator),
            denominator: Some(denominator),
            value: (denominator > 0)
                .then(|| serde_json::Number::from_f64(numerator as f64 / denominator as f64))
                .flatten(),
        },
        MetricKind::Total => RateRow { group, numerator: None, denominator: None, value: Some(numerator.into()) },
    }
}

/// 503 with `Retry-After`: the API is busy or ClickHouse is unavailable.
#[derive(Debug, Clone)]
struct Unavailable(String);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
            Json(json!({ "error": self.0 })),
        )
            .into_response()
    }
}

impl Api {
    /// A query slot, waiting at most the queue timeout for one.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Unavailable> {
        match tokio::time::timeout(self.queue_timeout, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Unavailable(format!(
                "busy: every ClickHouse query slot stayed taken for {} ms; retry later",
                self.queue_timeout.as_millis()
            ))),
        }
    }

    /// Runs `query` within a query slot and the query timeout: ClickHouse
    /// stops it itself (`max_execution_time`); the client-side timeout
    /// covers a server that does not answer at all.
    async fn bounded<T, F>(&self, query: clickhouse::query::Query, run: F) -> Result<T, Unavailable>
    where
        F: AsyncFnOnce(clickhouse::query::Query) -> clickhouse::error::Result<T>,
    {
        let _slot = self.slot().await?;
        let limit = self.query_timeout.as_secs().max(1).to_string();
        match tokio::time::timeout(self.query_timeout, run(query.with_setting("max_execution_time", limit))).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rates query failed");
                Err(Unavailable(format!("ClickHouse: {e}")))
            }
            Err(_) => {
                tracing::warn!(timeout_ms = self.query_timeout.as_millis() as u64, "rates query timed out");
                Err(Unavailable(format!("the query took longer than {} ms", self.query_timeout.as_millis())))
            }
        }
    }

    /// Whether anything is pending, and the rollup's latest batch: the
    /// answer of the check in flight, or of a new one.
    async fn pending(&self) -> Result<Pending, Unavailable> {
        let mut check = {
            let mut current = self.check.lock().expect("the check lock is never poisoned");
            match &*current {
                // Still running: no answer yet, its sender alive.
                Some(running) if matches!(running.has_changed(), Ok(false)) => running.clone(),
                _ => {
                    let (answer, check) = watch::channel(None);
                    let api = self.clone();
                    tokio::spawn(async move {
                        let now = api.bounded(api.clickhouse.query(PENDING_SQL), async |q| q.fetch_one().await).await;
                        answer.send_replace(Some(now));
                    });
                    *current = Some(check.clone());
                    check
                }
            }
        };
        let answered = check
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Unavailable("the pending check stopped without an answer".to_owned()))?;
        answered.clone().expect("waited for an answer")
    }

    /// The answer to a valid request, as its JSON body. The rollup alone is
    /// read when nothing is pending (`rollup_pending` is empty), through the
    /// answers shared at its latest batch; the exact union otherwise.
    async fn answer(&self, endpoint: Endpoint, request: &RatesRequest) -> Result<Bytes, Unavailable> {
        let now = self.pending().await?;
        if now.pending > 0 {
            return self.read(endpoint, request, Reading::Exact).await;
        }
        let Some(answers) = &self.answers else {
            return self.read(endpoint, request, Reading::RollupOnly).await;
        };
        answers.at_batch(&now.batch);
        let key = AnswerKey {
            batch: now.batch,
            endpoint,
            metric: request.metric.name,
            group: request.group,
            from: request.from,
            to: request.to,
        };
        answers
            .cache
            .try_get_with(key, self.read(endpoint, request, Reading::RollupOnly))
            .await
            .map_err(|e| Unavailable::clone(&e))
    }

    /// Runs the catalog query of `request` and shapes its answer.
    async fn read(&self, endpoint: Endpoint, request: &RatesRequest, reading: Reading) -> Result<Bytes, Unavailable> {
        let (metric, group) = (request.metric, request.group);
        let (from, to) = (request.from.to_string(), request.to.to_string());
        let rows = match endpoint {
            Endpoint::Rates => {
                let query = range_query(&self.clickhouse, &metric.query(group, reading), &from, &to);
                rate_rows(request, self.bounded(query, async |q| q.fetch_all::<Sums>().await).await?)
            }
            Endpoint::Series => {
                let query = range_query(&self.clickhouse, &metric.daily_query(group, reading), &from, &to);
                series_rows(request, self.bounded(query, async |q| q.fetch_all::<DailySums>().await).await?)
            }
        };
        let body = json!({
            "metric": metric.name,
            "from": from,
            "to": to,
            "group_by": group.as_str(),
            "rows": rows,
        });
        Ok(Bytes::from(serde_json::to_vec(&body).expect("an answer serialises")))
    }

    /// The answer (CONTRACT.md §6), a 400 naming the bad parameter, or a 503.
    async fn respond(&self, endpoint: Endpoint, params: &HashMap<String, String>) -> Response {
        let request = match parse(params) {
            Ok(request) => request,
            Err(bad) => return bad.into_response(),
        };
        match self.answer(endpoint, &request).await {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(unavailable) => {
                tracing::debug!(metric = request.metric.name, error = %unavailable.0, "answered 503");
                unavailable.into_response()
            }
        }
    }
}

async fn rates(State(api): State<Api>, Query(params): Query<HashMap<String, String>>) -> Response {
    api.respond(Endpoint::Rates, &params).await
}

/// `/v1/rates` rows: one per group, sorted; the national figure even when
/// nothing was counted.
fn rate_rows(request: &RatesRequest, sums: Vec<Sums>) -> Vec<serde_json::Value> {
    let mut rows: Vec<RateRow> =
        sums.into_iter().map(|s| rate_row(request.metric, s.grp, s.numerator, s.denominator)).collect();
    if rows.is_empty() && request.group == GroupBy::National {
        rows.push(rate_row(request.metric, "national".to_owned(), 0, 0));
    }
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    rows.into_iter().map(|r| json!(r)).collect()
}

#[derive(Row, Deserialize)]
struct DailySums {
    d: String,
    grp: String,
    numerator: u64,
    denominator: u64,
}

/// `/v1/series`: the parameters of `/v1/rates`, one row per day and group
/// (days without data are absent). Feeds the dashboard's trend charts.
async fn series(State(api): State<Api>, Query(params): Query<HashMap<String, String>>) -> Response {
    api.respond(Endpoint::Series, &params).await
}

fn series_rows(request: &RatesRequest, sums: Vec<DailySums>) -> Vec<serde_json::Value> {
    sums.into_iter()
        .map(|s| {
            let mut row = json!(rate_row(request.metric, s.grp, s.numerator, s.denominator));
            row["day"] = json!(s.d);
            row
        })
        .collect()
}

/// A compiled-in dashboard file.
async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

async fn metrics() -> Json<serde_json::Value> {
    Json(json!({ "metrics": METRICS }))
}

async fn healthz(State(api): State<Api>) -> Response {
    match api.clickhouse.query("SELECT 1").execute().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("ClickHouse unreachable: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        let bad = parse(&params(pairs)).err().expect("rejected");
        format!("{}: {}", bad.parameter, bad.problem)
    }

    #[test]
    fn defaults_are_national_and_today() {
        let r = parse(&params(&[("metric", "online_share")])).ok().unwrap();
        assert_eq!(r.metric.name, "online_share");
        assert_eq!(r.group, GroupBy::National);
        assert_eq!((r.from, r.to), (today(), today()));
    }

    #[test]
    fn every_bad_parameter_is_named() {
        assert!(error(&[]).starts_with("metric: required; one of full_online_share, "));
        assert!(error(&[("metric", "x")]).starts_with("metric: \"x\" is not one of "));
        assert_eq!(
            error(&[("metric", "online_share"), ("group_by", "province")]),
            "group_by: \"province\" is not one of national, authority_kind, authority_code, agency_code, procedure_code"
        );
        assert_eq!(
            error(&[("metric", "online_share"), ("from", "2024-02-30")]),
            "from: \"2024-02-30\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            error(&[("metric", "online_share"), ("to", "01/07/2024")]),
            "to: \"01/07/2024\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            error(&[("metric", "online_share"), ("from", "2024-07-02"), ("to", "2024-07-01")]),
            "from: 2024-07-02 is after to (2024-07-01)"
        );
        assert_eq!(
            error(&[("metric", "online_share"), ("groupby", "national")]),
            "groupby: unknown parameter; use metric, from, to, group_by"
        );
        assert_eq!(
            error(&[("metric", "online_share"), ("from", "2014-07-02"), ("to", "2024-07-02")]),
            "from: the range 2014-07-02 to 2024-07-02 is longer than ten years (3653 days)"
        );
        assert_eq!(error(&[("metric", &"x".repeat(65))]), "metric: longer than 64 bytes");
        assert_eq!(error(&[("metric", "online_share"), ("to", &"9".repeat(1000))]), "to: longer than 64 bytes");
        assert!(error(&[(&"p".repeat(1000), "1")]).starts_with(&format!("{}: unknown parameter", "p".repeat(64))));
    }

    #[test]
    fn ten_years_is_the_longest_range() {
        let ok = parse(&params(&[("metric", "online_share"), ("from", "2014-07-03"), ("to", "2024-07-02")]));
        assert!(ok.is_ok(), "3,653 days: 2014-07-03 to 2024-07-02 inclusive");
    }

    fn api(max_queries: usize, queue_timeout: Duration) -> Api {
        Api {
            clickhouse: clickhouse::Client::default(),
            slots: Arc::new(Semaphore::new(max_queries)),
            queue_timeout,
            query_timeout: Duration::from_secs(1),
            answers: None,
            check: Arc::default(),
        }
    }

    #[tokio::test]
    async fn a_request_past_the_query_slots_gets_503_with_retry_after() {
        let api = api(1, Duration::from_millis(50));
        let Ok(held) = api.slot().await else { panic!("a free slot") };
        let Err(refused) = api.slot().await else { panic!("no slot left") };
        let refused = refused.into_response();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        drop(held);
        assert!(api.slot().await.is_ok(), "a released slot serves the next request");
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_slot_released_within_the_queue_timeout() {
        let api = api(1, Duration::from_secs(5));
        let held = api.slots.clone().acquire_owned().await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        });
        assert!(api.slot().await.is_ok());
        release.await.unwrap();
    }

    #[tokio::test]
    async fn a_new_rollup_batch_drops_the_answers_of_the_earlier_ones() {
        assert!(Answers::new(0).is_none(), "0 MiB turns the answers off");
        let answers = Answers::new(1).expect("1 MiB of answers");
        let key = |batch: &str| AnswerKey {
            batch: batch.to_owned(),
            endpoint: Endpoint::Rates,
            metric: "online_share",
            group: GroupBy::National,
            from: today(),
            to: today(),
        };
        answers.at_batch("7 {\"to\":1}");
        answers.cache.insert(key("7 {\"to\":1}"), Bytes::from_static(b"{}")).await;
        answers.at_batch("7 {\"to\":1}");
        assert_eq!(answers.cache.get(&key("7 {\"to\":1}")).await.as_deref(), Some(&b"{}"[..]), "same batch: kept");
        answers.at_batch("8 {\"to\":2}");
        assert_eq!(answers.cache.get(&key("7 {\"to\":1}")).await, None, "a new batch: dropped");
    }
}
