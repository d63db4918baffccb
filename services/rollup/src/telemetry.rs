//! dvc-rollup's Prometheus metrics, `/metrics` and `/healthz`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::{Progress, Track};

/// How long batches may keep failing before `/healthz` says so.
const UNHEALTHY_AFTER: Duration = Duration::from_secs(60);

/// One track's metrics.
#[derive(Clone)]
struct TrackMetrics {
    batches: Counter,
    touched: Counter,
    changed: Counter,
    batch_seconds: Histogram,
    lag_seconds: Gauge,
}

impl TrackMetrics {
    /// Registered in `registry`, about `table`.
    fn register(registry: &mut Registry, table: &str) -> TrackMetrics {
        let m = TrackMetrics {
            batches: Counter::default(),
            touched: Counter::default(),
            changed: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            lag_seconds: Gauge::default(),
        };
        registry.register("batches", format!("Batches written to {table}"), m.batches.clone());
        registry.register("touched", format!("Touched ids read for {table}"), m.touched.clone());
        registry.register("changed", format!("Ids whose {table} rows were rewritten"), m.changed.clone());
        registry.register("batch_seconds", format!("Duration of one batch of {table}"), m.batch_seconds.clone());
        registry.register(
            "lag_seconds",
            format!("Seconds since the oldest touch {table} may not hold yet"),
            m.lag_seconds.clone(),
        );
        m
    }
}

/// Every metric of the service and what `/healthz` reports; cheap to clone.
/// The rates' metrics are `dvc_rollup_*`, the index's `dvc_rollup_index_*`.
#[derive(Clone)]
pub struct Telemetry {
    rates: TrackMetrics,
    index: TrackMetrics,
    failures: Counter,
    health: Arc<Mutex<Health>>,
    registry: Arc<Registry>,
}

struct Health {
    last_success: Instant,
    last_error: Option<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("dvc_rollup");
        let rates = TrackMetrics::register(&mut registry, "rate_rollup");
        let index = TrackMetrics::register(registry.sub_registry_with_prefix("index"), "index766_rollup");
        let failures = Counter::default();
        registry.register("failures", "Batches that failed (retried)", failures.clone());
        Telemetry {
            rates,
            index,
            failures,
            health: Arc::new(Mutex::new(Health { last_success: Instant::now(), last_error: None })),
            registry: Arc::new(registry),
        }
    }

    fn track(&self, track: Track) -> &TrackMetrics {
        match track {
            Track::Rates => &self.rates,
            Track::Index => &self.index,
        }
    }

    pub fn wrote(&self, track: Track, ids: u64, changed: u64, took: Duration) {
        let m = self.track(track);
        m.batches.inc();
        m.touched.inc_by(ids);
        m.changed.inc_by(changed);
        m.batch_seconds.observe(took.as_secs_f64());
        self.succeeded();
    }

    pub fn caught_up(&self) {
        self.succeeded();
    }

    fn succeeded(&self) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.last_success = Instant::now();
        h.last_error = None;
    }

    pub fn failed(&self, error: &anyhow::Error) {
        self.failures.inc();
        self.health.lock().unwrap_or_else(|e| e.into_inner()).last_error = Some(format!("{error:#}"));
    }

    /// A track's lag from its latest progress (the server's and this host's
    /// clocks agree to the second here; a skew shows as lag).
    pub fn lag(&self, track: Track, progress: &Progress) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.track(track).lag_seconds.set(now.saturating_sub(u64::from(progress.pending_since())) as i64);
    }

    /// Why the service is unhealthy: batches failing for a minute.
    pub fn problem(&self) -> Option<String> {
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match &h.last_error {
            Some(e) if h.last_success.elapsed() > UNHEALTHY_AFTER => {
                Some(format!("no batch written for {} s: {e}", h.last_success.elapsed().as_secs()))
            }
            _ => None,
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics` and `/healthz` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: Telemetry,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new().route("/metrics", get(metrics_page)).route("/healthz", get(healthz)).with_state(telemetry);
    axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await?;
    Ok(())
}

async fn metrics_page(State(t): State<Telemetry>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], t.encode())
}

async fn healthz(State(t): State<Telemetry>) -> impl IntoResponse {
    match t.problem() {
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
        None => (StatusCode::OK, "ok\n".to_owned()),
    }
}
