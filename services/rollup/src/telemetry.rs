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

use crate::Progress;

/// How long batches may keep failing before `/healthz` says so.
const UNHEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Every metric of the service and what `/healthz` reports; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    batches: Counter,
    touched: Counter,
    changed: Counter,
    index_changed: Counter,
    failures: Counter,
    batch_seconds: Histogram,
    lag_seconds: Gauge,
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
        let batches = Counter::default();
        let touched = Counter::default();
        let changed = Counter::default();
        let index_changed = Counter::default();
        let failures = Counter::default();
        let batch_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let lag_seconds = Gauge::default();
        registry.register("batches", "Batches written to rate_rollup", batches.clone());
        registry.register("touched", "Touched dossiers, payments and ratings read", touched.clone());
        registry.register("changed", "Dossiers, payments and ratings whose rollup row was rewritten", changed.clone());
        registry.register("index_changed", "Dossiers whose index766_rollup rows were rewritten", index_changed.clone());
        registry.register("failures", "Batches that failed (retried)", failures.clone());
        registry.register("batch_seconds", "Duration of one batch", batch_seconds.clone());
        registry.register(
            "lag_seconds",
            "Seconds since the oldest touch the rollup may not hold yet (the daily views count those ids from their states meanwhile)",
            lag_seconds.clone(),
        );
        Telemetry {
            batches,
            touched,
            changed,
            index_changed,
            failures,
            batch_seconds,
            lag_seconds,
            health: Arc::new(Mutex::new(Health { last_success: Instant::now(), last_error: None })),
            registry: Arc::new(registry),
        }
    }

    pub fn wrote(&self, ids: u64, changed: u64, index_changed: u64, took: Duration) {
        self.batches.inc();
        self.touched.inc_by(ids);
        self.changed.inc_by(changed);
        self.index_changed.inc_by(index_changed);
        self.batch_seconds.observe(took.as_secs_f64());
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

    /// Lag from the latest progress (the server's and this host's clocks
    /// agree to the second here; a skew shows as lag).
    pub fn lag(&self, progress: &Progress) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.lag_seconds.set(now.saturating_sub(u64::from(progress.pending_since())) as i64);
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
