//! The rates API (CONTRACT.md §6). Every figure is summed in ClickHouse
//! from the rollup and the states of the ids it has not counted yet, over
//! the metric catalog of `dvc_warehouse::METRICS`; this service validates
//! parameters, asks whether anything is pending, reads the catalog queries
//! and shapes the answer. Reads only: point it at a read-only ClickHouse
//! user.
//!
//! How the work is shared: concurrent requests share one pending check,
//! which also reads the pending ids' share of every figure (their rows now
//! less what the rollup counts for them) once for all of them; the rollup's
//! sums of each request are shared among the requests at the same rollup
//! batch; an answer adds the two, read at the same batch.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use clickhouse::Row;
use dvc_warehouse::{
    CLOCK_SQL, CREATE_PENDING_IDS, ClickHouseArgs, Clock, DROP_PENDING_IDS, Directory, DirectoryRow, GroupBy, MEASURES,
    METRICS, MetricKind, PENDING_IDS, Progress, ProgressRow, RATES_PROGRESS_SQL, TOUCHED_SQL, catalog_query, metric,
    pending_counted_query, pending_delta_query, pending_now_query, pending_session, until_session_free,
    when_session_free,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::macros::{format_description, offset};
use time::{Date, OffsetDateTime};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

mod index766;
pub mod openapi;
mod pending;

use crate::pending::{CountedRow, IdRow, PendingId, Reading, Touched, Tracked, seen_batch};

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
    /// Print the SQL `/v1/rates` runs and exit (JSON: {measures,
    /// pending_ids, pending_delta, pending_touched, pending_now,
    /// pending_counted, queries: [{metric, group_by, numerator, denominator,
    /// count, sql, rollup_sql}], index766}; `pending_ids` are the
    /// statements that copy the pending ids into the session's temporary
    /// table `pending_ids`, which `pending_delta`, `pending_now`,
    /// `pending_counted` and every `sql` read (run them first, in the same
    /// session); each pair of `?` takes the first and last day; `sql` is the
    /// exact query in one read, `rollup_sql` the rollup's sums an answer
    /// adds the pending ids' share to; `pending_delta` is that share in one
    /// read, which the API keeps id by id instead: `pending_touched` (the
    /// ids touched since a second, its `?`), their rows now
    /// (`pending_now`) and the rollup's (`pending_counted`); `index766` the
    /// reads of `/v1/index766`, `?fields` the answer's columns), for
    /// analysts and for measuring the queries elsewhere.
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
    /// Memory for the rollup's sums shared among requests (MiB; 0 turns it
    /// off): requests asking the same thing at the same rollup batch share
    /// one query.
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

/// What the handlers share: the ClickHouse client, the query slots, the
/// rollup's sums by batch and the pending check.
#[derive(Clone)]
struct Api {
    clickhouse: clickhouse::Client,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    query_timeout: Duration,
    answers: Option<Answers>,
    check: Arc<Mutex<Option<Check>>>,
    /// The ids pending at the last check, with their rows.
    tracked: Arc<tokio::sync::Mutex<Tracked>>,
    /// The directory of authorities, read again once a minute: the names
    /// of `authority_code` rows.
    directory: moka::future::Cache<(), Arc<Directory>>,
}

/// The pending check in flight (`None` until it answers). One runs at a
/// time and the requests arriving meanwhile share its answer, so an answer
/// reflects the data as of at most one check before its request.
type Check = watch::Receiver<Option<Result<Snapshot, Unavailable>>>;

/// Which answer a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Endpoint {
    Rates,
    Series,
}

/// The rollup batch a read of `rate_rollup` saw: its number and its
/// progress (0 and "" before the first batch). The rollup changes only with
/// a batch, whose rows and progress are one insert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Batch {
    number: u64,
    progress: String,
}

impl Batch {
    /// The first second whose touches the rollup may not hold at this
    /// batch (0 before the first).
    fn pending_since(&self) -> Result<u32, Unavailable> {
        if self.progress.is_empty() {
            return Ok(0);
        }
        let progress = Progress::parse(self.number, &self.progress)
            .map_err(|e| Unavailable(format!("the rollup's progress: {e:#}")))?;
        Ok(progress.pending_since())
    }

    /// The latest of the batches rows report (each group row of a read
    /// reports the batch of the progress rows among its rows, if any).
    fn latest<'a>(seen: impl Iterator<Item = (u64, &'a str)>) -> Batch {
        seen.max_by_key(|(number, _)| *number)
            .map(|(number, progress)| Batch { number, progress: progress.to_owned() })
            .unwrap_or_default()
    }
}

/// The rollup's sums a request asks for, at one rollup batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AnswerKey {
    batch: Batch,
    endpoint: Endpoint,
    metric: &'static str,
    group: GroupBy,
    from: Date,
    to: Date,
}

/// The rollup's sums by the batch they were read at: requests that ask the
/// same thing at the same batch share one query (one runs, the others wait
/// for it), and a newer batch starts afresh.
#[derive(Clone)]
struct Answers {
    cache: moka::future::Cache<AnswerKey, Arc<RollupSums>>,
    batch: Arc<Mutex<Batch>>,
}

impl Answers {
    fn new(megabytes: u64) -> Option<Answers> {
        (megabytes > 0).then(|| Answers {
            cache: moka::future::Cache::builder()
                .max_capacity(megabytes.saturating_mul(1 << 20))
                .weigher(|_, sums: &Arc<RollupSums>| u32::try_from(sums.bytes()).unwrap_or(u32::MAX))
                .time_to_idle(Duration::from_secs(600))
                .build(),
            batch: Arc::default(),
        })
    }

    /// Drops the sums of earlier batches when `batch` is newer than any
    /// seen. (Sums are keyed by their batch, so this only frees memory: a
    /// request still at an older batch, or a rollup started afresh, never
    /// finds another batch's sums.)
    fn at_batch(&self, batch: &Batch) {
        let mut latest = self.batch.lock().expect("the batch lock is never poisoned");
        if batch.number > latest.number {
            *latest = batch.clone();
            self.cache.invalidate_all();
        }
    }
}

/// What a pending check found: the rollup batch it tracks and, when ids are
/// pending at it, their share of every figure (their rows now less what the
/// rollup counts for them, the sum of `pending_now_query` less
/// `pending_counted_query` over them, kept id by id in [`Tracked`]).
///
/// Each read of an id's rows takes the ids from the session's
/// `pending_ids`, written once before the reads, so both sides of an id are
/// read for the same ids (README.md, "Why every figure is exact"). The
/// counted rows of every id held are at the tracked batch: they are all
/// read again, in one read, when it changes. An id touched after a check's
/// reads is counted as that check read it: each id counted once.
#[derive(Clone)]
struct Snapshot {
    batch: Batch,
    delta: Option<Delta>,
}

/// The pending ids' share of every figure, as one check read it.
type Delta = Arc<Vec<DeltaRow>>;

/// The pending ids' rows now less the rows the rollup counts for them, by
/// day and grouping columns.
#[derive(Debug)]
struct DeltaRow {
    d: String,
    authority_code: String,
    agency_code: String,
    procedure_code: String,
    /// In `MEASURES` order.
    measures: Vec<i64>,
}

/// One group of `Metric::rollup_query`.
#[derive(Row, Deserialize, Debug)]
struct GroupSums {
    d: String,
    grp: String,
    numerator: i64,
    denominator: i64,
    counted: i64,
    batch: u64,
    progress: String,
}

/// The rollup's sums for one request, the batch they were read at, and the
/// last answer made from them.
#[derive(Debug)]
struct RollupSums {
    batch: Batch,
    rows: Vec<GroupSums>,
    /// The body of that answer and what it added, so that the requests
    /// sharing both share the body too.
    made: Mutex<Option<(Added, Bytes)>>,
}

/// What an answer added to the sums: one check's delta, if any, and the
/// directory its names came from, if any (a `Weak` names each without
/// keeping it alive).
#[derive(Debug)]
struct Added {
    delta: Option<Weak<Vec<DeltaRow>>>,
    directory: Option<Weak<Directory>>,
}

impl Added {
    fn new(delta: Option<&Delta>, directory: Option<&Arc<Directory>>) -> Added {
        Added { delta: delta.map(Arc::downgrade), directory: directory.map(Arc::downgrade) }
    }

    fn same(&self, other: &Added) -> bool {
        fn same<T>(a: &Option<Weak<T>>, b: &Option<Weak<T>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Weak::ptr_eq(a, b),
                _ => false,
            }
        }
        same(&self.delta, &other.delta) && same(&self.directory, &other.directory)
    }
}

impl RollupSums {
    fn new(batch: Batch, rows: Vec<GroupSums>) -> RollupSums {
        RollupSums { batch, rows, made: Mutex::default() }
    }

    /// Roughly what it holds in memory, its answer's body included.
    fn bytes(&self) -> usize {
        self.rows.iter().map(|r| r.d.len() + r.grp.len() + r.progress.len() + 224).sum::<usize>() + 64
    }

    /// The body of `request`'s answer from these sums, `delta` and the
    /// names of `directory`, made once for each delta and directory added.
    fn answer(
        &self,
        endpoint: Endpoint,
        request: &RatesRequest,
        delta: Option<&Delta>,
        directory: Option<&Arc<Directory>>,
    ) -> Result<Bytes, Unavailable> {
        let added = Added::new(delta, directory);
        let mut made = self.made.lock().expect("the answer lock is never poisoned");
        if let Some((with, body)) = &*made
            && with.same(&added)
        {
            return Ok(body.clone());
        }
        let rows = delta.map_or(&[][..], |d| d.as_slice());
        let figures = figures(endpoint, request, &self.rows, rows)
            .inspect_err(|disagree| tracing::warn!(error = %disagree.0, "answered 503"))?;
        let body = body(endpoint, request, figures, directory.map(Arc::as_ref));
        *made = Some((added, body.clone()));
        Ok(body)
    }
}

/// One figure of an answer: day (empty for `/v1/rates`), group, numerator,
/// denominator.
type Figure = (String, String, u64, u64);

/// How many times a request reads the rollup's sums again when a batch
/// landed between them and its pending check, before it runs the catalog's
/// exact query instead.
const ATTEMPTS: usize = 3;

/// The SQL `/v1/rates` runs: the pending ids' delta, and for every metric ×
/// grouping the exact query, the rollup's sums and which measures it adds.
pub fn queries() -> serde_json::Value {
    let queries: Vec<serde_json::Value> = METRICS
        .iter()
        .flat_map(|m| {
            GroupBy::ALL.into_iter().map(|g| {
                json!({
                    "metric": m.name,
                    "group_by": g.as_str(),
                    "numerator": m.numerator_column,
                    "denominator": m.denominator_column,
                    "count": m.source.count_column(),
                    "sql": m.query(g),
                    "rollup_sql": m.rollup_query(g, false),
                })
            })
        })
        .collect();
    use dvc_index766::store;
    json!({
        "measures": MEASURES,
        "pending_ids": PENDING_IDS,
        "pending_delta": pending_delta_query(),
        "pending_touched": TOUCHED_SQL,
        "pending_now": pending_now_query(),
        "pending_counted": pending_counted_query(),
        "queries": queries,
        "index766": {
            "counts": store::COUNTS,
            "payments": store::PAYMENTS,
            "catalogue": store::CATALOGUE,
            "petitions": store::PETITIONS,
            "settings": { "enable_optimize_predicate_expression": 0 },
        },
    })
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
        tracked: Arc::default(),
        directory: directory_cache(),
    };
    Router::new()
        .route("/v1/rates", get(rates))
        .route("/v1/series", get(series))
        .route("/v1/metrics", get(metrics))
        .route("/v1/index766", get(index766::ranking))
        .route("/v1/index766/procedures", get(index766::procedures))
        .route("/", get(|| async { Html(include_str!("../assets/index.html")) }))
        .route("/assets/dashboard.js", get(|| asset("text/javascript", include_str!("../assets/dashboard.js"))))
        .route("/assets/base.css", get(|| asset("text/css", include_str!("../assets/base.css"))))
        .route("/index766", get(|| async { Html(include_str!("../assets/index766.html")) }))
        .route("/assets/index766.js", get(|| asset("text/javascript", include_str!("../assets/index766.js"))))
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

/// How long the API keeps the directory of authorities before reading it
/// again (a new one loaded by the migrate step shows within this).
const DIRECTORY_TTL: Duration = Duration::from_secs(60);

fn directory_cache() -> moka::future::Cache<(), Arc<Directory>> {
    moka::future::Cache::builder().time_to_live(DIRECTORY_TTL).build()
}

/// One row of `/v1/rates`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RateRow {
    pub group: String,
    /// The unit's name, on rows grouped by `authority_code` whose code the
    /// directory of authorities lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub numerator: Option<u64>,
    pub denominator: Option<u64>,
    /// A fraction for rates, an integer for totals.
    pub value: Option<serde_json::Number>,
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

/// Refuses a parameter not in `known` and a value past the length bound.
fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), BadParameter> {
    let mut unknown: Vec<&String> = params.keys().filter(|k| !known.contains(&k.as_str())).collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        let name: String = name.chars().take(MAX_PARAMETER_LEN).collect();
        return Err(BadParameter::new(&name, format!("unknown parameter; use {}", known.join(", "))));
    }
    for name in known {
        if params.get(*name).is_some_and(|v| v.len() > MAX_PARAMETER_LEN) {
            return Err(BadParameter::new(name, format!("longer than {MAX_PARAMETER_LEN} bytes")));
        }
    }
    Ok(())
}

fn parse(params: &HashMap<String, String>) -> Result<RatesRequest, BadParameter> {
    only(params, &["metric", "from", "to", "group_by"])?;
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
            name: None,
            numerator: Some(numerator),
            denominator: Some(denominator),
            value: (denominator > 0)
                .then(|| serde_json::Number::from_f64(numerator as f64 / denominator as f64))
                .flatten(),
        },
        MetricKind::Total => {
            RateRow { group, name: None, numerator: None, denominator: None, value: Some(numerator.into()) }
        }
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
    /// covers a server that does not answer at all. A statement of a
    /// session that finds the session still held by its previous statement
    /// is sent again a moment later ([`when_session_free`]).
    async fn bounded<T, F>(&self, query: clickhouse::query::Query, run: F) -> Result<T, Unavailable>
    where
        F: AsyncFn(clickhouse::query::Query) -> clickhouse::error::Result<T>,
    {
        let limit = self.query_timeout.as_secs().max(1).to_string();
        let query = query.with_setting("max_execution_time", limit);
        self.limited(when_session_free(&query, run)).await
    }

    /// `work` (ClickHouse statements) within a query slot and the query
    /// timeout.
    async fn limited<T>(&self, work: impl Future<Output = clickhouse::error::Result<T>>) -> Result<T, Unavailable> {
        let _slot = self.slot().await?;
        match tokio::time::timeout(self.query_timeout, work).await {
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

    /// What the check in flight finds, or a new one.
    async fn snapshot(&self) -> Result<Snapshot, Unavailable> {
        let mut check = {
            let mut current = self.check.lock().expect("the check lock is never poisoned");
            match &*current {
                // Still running: no answer yet, its sender alive.
                Some(running) if matches!(running.has_changed(), Ok(false)) => running.clone(),
                _ => {
                    let (answer, check) = watch::channel(None);
                    let api = self.clone();
                    tokio::spawn(async move {
                        let found = api.check().await;
                        answer.send_replace(Some(found));
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

    /// Whether anything is pending and, if so, the pending ids' share of
    /// every figure: the ids tracked since the last check, updated with the
    /// touches since (pending.rs). When a batch lands during the reads, the
    /// rollup's rows of every id held are read again at it.
    async fn check(&self) -> Result<Snapshot, Unavailable> {
        let mut tracked = self.tracked.lock().await;
        for _ in 0..ATTEMPTS {
            let clock: Clock = self.bounded(self.clickhouse.query(CLOCK_SQL), async |q| q.fetch_one().await).await?;
            let latest: Option<ProgressRow> =
                self.bounded(self.clickhouse.query(RATES_PROGRESS_SQL), async |q| q.fetch_optional().await).await?;
            let batch = latest.map(|row| Batch { number: row.batch, progress: row.progress }).unwrap_or_default();
            let reading = tracked.reading(batch.clone(), batch.pending_since()?, clock.reading_end());
            let query = self.clickhouse.query(TOUCHED_SQL).bind(reading.from);
            let touched: Vec<Touched> = self.bounded(query, async |q| q.fetch_all().await).await?;
            let now_ids = tracked.now_ids(&reading, &touched);
            if now_ids.is_empty() && !reading.recount {
                tracked.apply(reading, touched, Vec::new(), Vec::new());
                return Ok(tracked.snapshot());
            }
            let held: Vec<&str> = tracked.held_ids().collect();
            let (now, counted, recounted) = self.read_ids(&now_ids, &held, &reading).await?;
            let seen = seen_batch(&counted);
            let reading = if seen == reading.batch {
                Reading { recount: recounted, ..reading }
            } else {
                tracing::debug!(
                    checked = batch.number,
                    seen = seen.number,
                    "a rollup batch landed during the pending check"
                );
                let since = seen.pending_since()?;
                match Tracked::landed(reading, seen, since) {
                    Some(reading) => reading,
                    None => continue,
                }
            };
            tracing::debug!(
                touched = touched.len(),
                read = now.len(),
                counted = counted.len(),
                recounted = reading.recount,
                from = reading.from,
                to = reading.to,
                "pending check"
            );
            tracked.apply(reading, touched, now, counted);
            return Ok(tracked.snapshot());
        }
        Err(Unavailable("the rollup started afresh during the pending check; retry".to_owned()))
    }

    /// In a session of its own whose `pending_ids` holds the ids: the rows
    /// now of `now_ids`, and what the rollup counts for them and, when
    /// `reading` recounts, for every id `held`. When the rollup's rows were
    /// read at a batch other than `reading`'s, they are read again for every
    /// id held, in one read; whether they were is the third value.
    async fn read_ids(
        &self,
        now_ids: &[&str],
        held: &[&str],
        reading: &Reading,
    ) -> Result<(Vec<IdRow>, Vec<CountedRow>, bool), Unavailable> {
        self.in_session(&[CREATE_PENDING_IDS], async |session| {
            self.insert_ids(session, now_ids).await?;
            let now: Vec<IdRow> = if now_ids.is_empty() {
                Vec::new()
            } else {
                self.bounded(session.query(&pending_now_query()), async |q| q.fetch_all().await).await?
            };
            let others = || {
                let read: std::collections::HashSet<&str> = now_ids.iter().copied().collect();
                held.iter().copied().filter(|id| !read.contains(id)).collect::<Vec<&str>>()
            };
            let mut recounted = reading.recount;
            if recounted {
                self.insert_ids(session, &others()).await?;
            }
            let counted_query = pending_counted_query();
            let mut counted: Vec<CountedRow> =
                self.bounded(session.query(&counted_query), async |q| q.fetch_all().await).await?;
            if seen_batch(&counted) != reading.batch && !recounted {
                self.insert_ids(session, &others()).await?;
                counted = self.bounded(session.query(&counted_query), async |q| q.fetch_all().await).await?;
                recounted = true;
            }
            let measures = now.iter().map(|r| r.measures.len()).chain(counted.iter().map(|r| r.measures.len()));
            if let Some(n) = measures.into_iter().find(|n| *n != MEASURES.len()) {
                return Err(Unavailable(format!(
                    "the pending rows have {n} measures, not {}: is the database migrated?",
                    MEASURES.len()
                )));
            }
            Ok((now, counted, recounted))
        })
        .await
    }

    /// Writes `ids` into the session's `pending_ids`, within a query slot
    /// and the query timeout.
    async fn insert_ids(&self, session: &clickhouse::Client, ids: &[&str]) -> Result<(), Unavailable> {
        if ids.is_empty() {
            return Ok(());
        }
        self.limited(until_session_free(|| async move {
            let mut insert = session.insert::<PendingId<'_>>("pending_ids").await?;
            for &id in ids {
                insert.write(&PendingId { id }).await?;
            }
            insert.end().await
        }))
        .await
    }

    /// `read` in a ClickHouse session of its own, after `setup` (which
    /// makes the session's `pending_ids`: [`PENDING_IDS`] copies the
    /// pending ids into it, [`CREATE_PENDING_IDS`] leaves it empty); the
    /// copy is dropped after (or, when that fails, goes with the session).
    async fn in_session<T>(
        &self,
        setup: &[&str],
        read: impl AsyncFnOnce(&clickhouse::Client) -> Result<T, Unavailable>,
    ) -> Result<T, Unavailable> {
        let session = pending_session(&self.clickhouse);
        for sql in setup {
            self.bounded(session.query(sql), async |q| q.execute().await).await?;
        }
        let answer = read(&session).await;
        if let Err(Unavailable(e)) = self.bounded(session.query(DROP_PENDING_IDS), async |q| q.execute().await).await {
            tracing::debug!(error = e, "the pending ids' copy stays until its session ends");
        }
        answer
    }

    /// The figures of a valid request: the rollup's sums plus the pending
    /// ids' share, both read at the same rollup batch. When batches keep
    /// landing between the two reads, the catalog's exact query.
    async fn answer(&self, endpoint: Endpoint, request: &RatesRequest) -> Result<Bytes, Unavailable> {
        let directory = match request.group {
            GroupBy::AuthorityCode => self.directory().await,
            _ => None,
        };
        let directory = directory.as_ref();
        for _ in 0..ATTEMPTS {
            let snapshot = self.snapshot().await?;
            let sums = self.rollup_sums(endpoint, request, &snapshot.batch).await?;
            match &snapshot.delta {
                None => return sums.answer(endpoint, request, None, directory),
                Some(delta) if sums.batch == snapshot.batch => {
                    return sums.answer(endpoint, request, Some(delta), directory);
                }
                Some(_) => tracing::debug!(
                    checked = snapshot.batch.number,
                    summed = sums.batch.number,
                    "a rollup batch landed between the pending check and the sums; checking again"
                ),
            }
        }
        Ok(body(endpoint, request, self.exact(endpoint, request).await?, directory.map(Arc::as_ref)))
    }

    /// The directory of authorities the migrate step stored, or `None`
    /// (logged) when it cannot be read: the answer goes out without names.
    async fn directory(&self) -> Option<Arc<Directory>> {
        let read = async {
            let query = self.clickhouse.query("SELECT ?fields FROM authorities");
            let rows: Vec<DirectoryRow> =
                self.bounded(query, async |q| q.fetch_all().await).await.map_err(|e| anyhow::anyhow!(e.0))?;
            Directory::from_rows(rows).map(Arc::new)
        };
        match self.directory.try_get_with((), read).await {
            Ok(directory) => Some(directory),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "no names: the directory of authorities is unreadable");
                None
            }
        }
    }

    /// The rollup's sums of `request`, shared among the requests at `batch`.
    async fn rollup_sums(
        &self,
        endpoint: Endpoint,
        request: &RatesRequest,
        batch: &Batch,
    ) -> Result<Arc<RollupSums>, Unavailable> {
        let read = async {
            let sql = request.metric.rollup_query(request.group, endpoint == Endpoint::Series);
            let query = catalog_query(&self.clickhouse, &sql, &request.from.to_string(), &request.to.to_string());
            let rows: Vec<GroupSums> = self.bounded(query, async |q| q.fetch_all().await).await?;
            let batch = Batch::latest(rows.iter().map(|r| (r.batch, r.progress.as_str())));
            Ok(Arc::new(RollupSums::new(batch, rows)))
        };
        let Some(answers) = &self.answers else {
            return read.await;
        };
        answers.at_batch(batch);
        let key = AnswerKey {
            batch: batch.clone(),
            endpoint,
            metric: request.metric.name,
            group: request.group,
            from: request.from,
            to: request.to,
        };
        let sums = answers.cache.try_get_with(key.clone(), read).await.map_err(|e| Unavailable::clone(&e))?;
        if sums.batch != key.batch {
            // Read after a newer batch landed: not the sums of `batch`.
            answers.cache.invalidate(&key).await;
        }
        Ok(sums)
    }

    /// The figures from the catalog's exact query, in one read, over a
    /// copy of the pending ids of its own (as [`Snapshot`]'s delta).
    async fn exact(&self, endpoint: Endpoint, request: &RatesRequest) -> Result<Vec<Figure>, Unavailable> {
        let (metric, group) = (request.metric, request.group);
        let (from, to) = (request.from.to_string(), request.to.to_string());
        self.in_session(&PENDING_IDS, async |session| {
            Ok(match endpoint {
                Endpoint::Rates => {
                    let query = catalog_query(session, &metric.query(group), &from, &to);
                    let rows: Vec<(String, u64, u64)> = self.bounded(query, async |q| q.fetch_all().await).await?;
                    rows.into_iter().map(|(grp, n, d)| (String::new(), grp, n, d)).collect()
                }
                Endpoint::Series => {
                    let query = catalog_query(session, &metric.daily_query(group), &from, &to);
                    self.bounded(query, async |q| q.fetch_all().await).await?
                }
            })
        })
        .await
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

/// The figures of `request` from the rollup's sums and the pending ids'
/// share read at the same batch: by day (for `/v1/series`) and group, the
/// groups counting none of the metric's rows in the range left out (as the
/// exact query's `HAVING`), sorted.
fn figures(
    endpoint: Endpoint,
    request: &RatesRequest,
    sums: &[GroupSums],
    delta: &[DeltaRow],
) -> Result<Vec<Figure>, Unavailable> {
    let mut groups: BTreeMap<(&str, &str), [i64; 3]> = BTreeMap::new();
    let mut add = |key, [n, d, c]: [i64; 3]| {
        let sum = groups.entry(key).or_default();
        *sum = [sum[0] + n, sum[1] + d, sum[2] + c];
    };
    for s in sums {
        add((s.d.as_str(), s.grp.as_str()), [s.numerator, s.denominator, s.counted]);
    }
    let (num, den, count) = request.metric.measure_indexes();
    let (from, to) = (request.from.to_string(), request.to.to_string());
    for r in delta.iter().filter(|r| from <= r.d && r.d <= to) {
        let day = if endpoint == Endpoint::Series { r.d.as_str() } else { "" };
        let group = request.group.key(&r.authority_code, &r.agency_code, &r.procedure_code);
        add((day, group), [r.measures[num], den.map_or(0, |i| r.measures[i]), r.measures[count]]);
    }
    groups
        .into_iter()
        .filter_map(|((day, group), [n, d, counted])| match (u64::try_from(n), u64::try_from(d), counted) {
            (_, _, 0) => None,
            (Ok(n), Ok(d), 1..) => Some(Ok((day.to_owned(), group.to_owned(), n, d))),
            _ => Some(Err(Unavailable(format!(
                "{} for {group} {day} sums to {n} / {d} over {counted} rows, below zero: \
                 the rollup and the pending rows disagree",
                request.metric.name
            )))),
        })
        .collect()
}

/// The answer's JSON body (CONTRACT.md §6), rows grouped by
/// `authority_code` named from `directory`.
fn body(endpoint: Endpoint, request: &RatesRequest, figures: Vec<Figure>, directory: Option<&Directory>) -> Bytes {
    let row = |grp: String, n, d| {
        let mut row = rate_row(request.metric, grp, n, d);
        if let Some(directory) = directory {
            row.name = directory.name(&row.group, request.to).map(str::to_owned);
        }
        row
    };
    let rows = match endpoint {
        Endpoint::Rates => rate_rows(request, figures, row),
        Endpoint::Series => series_rows(figures, row),
    };
    let body = json!({
        "metric": request.metric.name,
        "from": request.from.to_string(),
        "to": request.to.to_string(),
        "group_by": request.group.as_str(),
        "rows": rows,
    });
    Bytes::from(serde_json::to_vec(&body).expect("an answer serialises"))
}

/// `/v1/rates` rows: one per group, sorted; the national figure even when
/// nothing was counted.
fn rate_rows(
    request: &RatesRequest,
    figures: Vec<Figure>,
    row: impl Fn(String, u64, u64) -> RateRow,
) -> Vec<serde_json::Value> {
    let mut rows: Vec<RateRow> = figures.into_iter().map(|(_, grp, n, d)| row(grp, n, d)).collect();
    if rows.is_empty() && request.group == GroupBy::National {
        rows.push(row("national".to_owned(), 0, 0));
    }
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    rows.into_iter().map(|r| json!(r)).collect()
}

/// `/v1/series`: the parameters of `/v1/rates`, one row per day and group
/// (days without data are absent). Feeds the dashboard's trend charts.
async fn series(State(api): State<Api>, Query(params): Query<HashMap<String, String>>) -> Response {
    api.respond(Endpoint::Series, &params).await
}

fn series_rows(figures: Vec<Figure>, row: impl Fn(String, u64, u64) -> RateRow) -> Vec<serde_json::Value> {
    figures
        .into_iter()
        .map(|(day, grp, n, d)| {
            let mut row = json!(row(grp, n, d));
            row["day"] = json!(day);
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
            tracked: Arc::default(),
            directory: directory_cache(),
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
    async fn a_newer_rollup_batch_drops_the_sums_of_the_earlier_ones() {
        assert!(Answers::new(0).is_none(), "0 MiB turns the sums off");
        let answers = Answers::new(1).expect("1 MiB of sums");
        let batch = |number: u64| Batch { number, progress: format!("{{\"to\":{number}}}") };
        let key = |number: u64| AnswerKey {
            batch: batch(number),
            endpoint: Endpoint::Rates,
            metric: "online_share",
            group: GroupBy::National,
            from: today(),
            to: today(),
        };
        let sums = |number: u64| Arc::new(RollupSums::new(batch(number), Vec::new()));
        answers.at_batch(&batch(7));
        answers.cache.insert(key(7), sums(7)).await;
        answers.at_batch(&batch(7));
        assert!(answers.cache.get(&key(7)).await.is_some(), "same batch: kept");
        answers.at_batch(&batch(6));
        assert!(answers.cache.get(&key(7)).await.is_some(), "a request still at an older batch: kept");
        answers.at_batch(&batch(8));
        assert!(answers.cache.get(&key(7)).await.is_none(), "a newer batch: dropped");
    }

    fn request(metric: &str, group: GroupBy, from: Date, to: Date) -> RatesRequest {
        RatesRequest { metric: dvc_warehouse::metric(metric).unwrap(), group, from, to }
    }

    fn sums(d: &str, grp: &str, [numerator, denominator, counted]: [i64; 3]) -> GroupSums {
        GroupSums { d: d.into(), grp: grp.into(), numerator, denominator, counted, batch: 0, progress: String::new() }
    }

    /// A pending delta row at `day` for authority `authority`, agency `agency`.
    fn delta(day: &str, authority: &str, agency: &str, set: &[(&str, i64)]) -> DeltaRow {
        let mut measures = vec![0; MEASURES.len()];
        for (name, value) in set {
            measures[MEASURES.iter().position(|m| m == name).unwrap()] = *value;
        }
        DeltaRow {
            d: day.into(),
            authority_code: authority.into(),
            agency_code: agency.into(),
            procedure_code: "P".into(),
            measures,
        }
    }

    #[test]
    fn figures_add_the_pending_share_to_the_rollup_sums_in_range() {
        use time::macros::date;
        let july = request("online_share", GroupBy::AgencyCode, date!(2024 - 07 - 01), date!(2024 - 07 - 31));
        let rolled_up = [sums("", "A1", [3, 10, 10]), sums("", "A2", [1, 1, 1]), sums("", "", [0, 0, 0])];
        let pending = [
            // A dossier of A1 moved online: its old row out, its new row in.
            delta("2024-07-02", "H29", "A1", &[("online", 1), ("dossier", 0)]),
            // A2's only dossier moved to June: out of the range.
            delta("2024-07-03", "H29", "A2", &[("online", -1), ("dossier", -1)]),
            delta("2024-06-30", "H29", "A2", &[("online", 1), ("dossier", 1)]),
            // A new agency's first dossier.
            delta("2024-07-31", "G01", "A3", &[("dossier", 1)]),
            delta("2024-08-01", "G01", "A4", &[("dossier", 1)]),
        ];
        let got = figures(Endpoint::Rates, &july, &rolled_up, &pending).unwrap();
        let want = [("", "A1", 4, 10), ("", "A3", 0, 1)];
        let want: Vec<Figure> = want.iter().map(|(d, g, n, den)| (d.to_string(), g.to_string(), *n, *den)).collect();
        assert_eq!(got, want, "A2 counts nothing in July any more; the empty group is left out");

        // By authority kind: H29 is a province, G01 a ministry.
        let by_kind = request("online_share", GroupBy::AuthorityKind, date!(2024 - 07 - 01), date!(2024 - 07 - 31));
        let rolled_up = [sums("", "province", [1, 1, 1]), sums("", "ministry", [2, 2, 2])];
        let got = figures(Endpoint::Rates, &by_kind, &rolled_up, &pending).unwrap();
        assert_eq!(got, vec![(String::new(), "ministry".to_owned(), 2, 3)], "the province's one dossier left July");
    }

    #[test]
    fn an_answer_is_made_once_per_delta_added_to_the_sums() {
        use time::macros::date;
        let july = request("online_share", GroupBy::National, date!(2024 - 07 - 01), date!(2024 - 07 - 31));
        let sums = RollupSums::new(Batch::default(), vec![sums("", "national", [1, 2, 2])]);
        let alone = sums.answer(Endpoint::Rates, &july, None, None).unwrap();
        let again = sums.answer(Endpoint::Rates, &july, None, None).unwrap();
        assert_eq!(alone.as_ptr(), again.as_ptr(), "the same body, not made again");
        let value = |body: &Bytes| serde_json::from_slice::<serde_json::Value>(body).unwrap()["rows"][0].clone();
        assert_eq!(value(&alone)["numerator"], 1);
        let delta: Delta = Arc::new(vec![delta("2024-07-05", "H29", "A", &[("online", 1), ("dossier", 1)])]);
        let with = sums.answer(Endpoint::Rates, &july, Some(&delta), None).unwrap();
        assert_eq!((value(&with)["numerator"].clone(), value(&with)["denominator"].clone()), (2.into(), 3.into()));
        assert_eq!(sums.answer(Endpoint::Rates, &july, Some(&delta), None).unwrap().as_ptr(), with.as_ptr());
        let next_check: Delta = Arc::new(Vec::new());
        let other = sums.answer(Endpoint::Rates, &july, Some(&next_check), None).unwrap();
        assert_eq!(value(&other)["numerator"], 1, "another check's delta: made again");
        assert_ne!(other.as_ptr(), with.as_ptr());
    }

    #[test]
    fn rows_by_authority_code_carry_the_name_the_unit_had_by_the_last_day() {
        use time::macros::date;
        let units = "code,kind,name,valid_from,valid_to,successor\n\
                     H02,province,Hà Giang,,2025-06-30,H05\nH05,province,Tuyên Quang,,,\n\
                     H31,province,Thừa Thiên Huế,,2024-12-31,\nH31,province,Huế,2025-01-01,,\n";
        let directory = Arc::new(Directory::parse(units).unwrap());
        let names = |request: &RatesRequest, endpoint: Endpoint, directory: Option<&Arc<Directory>>| {
            let all = ["H02", "H31", "G07"].map(|code| sums("2024-12-31", code, [1, 2, 2])).into();
            let body = RollupSums::new(Batch::default(), all).answer(endpoint, request, None, directory).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            body["rows"].as_array().unwrap().iter().map(|r| r.get("name").cloned()).collect::<Vec<_>>()
        };
        let name = |n: &str| Some(json!(n));
        let spanning = request("online_share", GroupBy::AuthorityCode, date!(2024 - 12 - 01), date!(2025 - 08 - 31));
        assert_eq!(
            names(&spanning, Endpoint::Rates, Some(&directory)),
            [None, name("Hà Giang"), name("Huế")],
            "G07 is not listed; H02 keeps its last name; H31 shows the name it had by the range's end"
        );
        let before = request("online_share", GroupBy::AuthorityCode, date!(2024 - 12 - 01), date!(2024 - 12 - 31));
        assert_eq!(
            names(&before, Endpoint::Series, Some(&directory)),
            [None, name("Hà Giang"), name("Thừa Thiên Huế")]
        );
        assert_eq!(names(&before, Endpoint::Rates, None), [None, None, None], "no directory: no names");
        let sums = RollupSums::new(Batch::default(), vec![sums("", "H31", [1, 2, 2])]);
        let first = sums.answer(Endpoint::Rates, &before, None, Some(&directory)).unwrap();
        assert_eq!(sums.answer(Endpoint::Rates, &before, None, Some(&directory)).unwrap().as_ptr(), first.as_ptr());
        let reloaded = Arc::new(Directory::parse(units).unwrap());
        let again = sums.answer(Endpoint::Rates, &before, None, Some(&reloaded)).unwrap();
        assert_ne!(again.as_ptr(), first.as_ptr(), "a directory read again: made again");
    }

    #[test]
    fn figures_by_day_keep_each_day_and_a_sum_below_zero_is_an_error() {
        use time::macros::date;
        let series = request("satisfaction_rate", GroupBy::National, date!(2024 - 07 - 01), date!(2024 - 07 - 02));
        let rolled_up = [sums("2024-07-01", "national", [1, 2, 2]), sums("1970-01-01", "national", [0, 0, 0])];
        let pending = [
            delta("2024-07-02", "G01", "A", &[("satisfied", 1), ("rated", 1)]),
            delta("2024-07-01", "H29", "B", &[("rated", 1)]),
        ];
        let got = figures(Endpoint::Series, &series, &rolled_up, &pending).unwrap();
        assert_eq!(
            got,
            vec![
                ("2024-07-01".to_owned(), "national".to_owned(), 1, 3),
                ("2024-07-02".to_owned(), "national".to_owned(), 1, 1),
            ]
        );
        let broken = [delta("2024-07-01", "H29", "B", &[("satisfied", -2)])];
        let Err(Unavailable(error)) = figures(Endpoint::Series, &series, &rolled_up, &broken) else {
            panic!("a negative sum is an error")
        };
        assert!(error.contains("below zero"), "{error}");
    }
}
