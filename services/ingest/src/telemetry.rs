//! Prometheus metrics and the `/metrics` + `/healthz` endpoints.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::membership::Membership;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: u32,
}

type HistogramFamily = Family<TopicLabel, Histogram, fn() -> Histogram>;

/// Every metric of the service; cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    pub consumed: Family<TopicLabel, Counter>,
    pub inserted: Family<TopicLabel, Counter>,
    pub dead_lettered: Family<TopicLabel, Counter>,
    pub retries: Family<TopicLabel, Counter>,
    pub batch_rows: HistogramFamily,
    pub insert_seconds: HistogramFamily,
    pub lag: Family<PartitionLabel, Gauge>,
    pub paused_partitions: Gauge,
    pub assigned_partitions: Gauge,
    pub unassigned_seconds: Gauge,
    pub rejoins: Counter,
    pub dead_letters_unacknowledged: Gauge,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dvc_ingest");
        let consumed = Family::default();
        let inserted = Family::default();
        let dead_lettered = Family::default();
        let retries = Family::default();
        let batch_rows: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(1.0, 4.0, 11)));
        let insert_seconds: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        let lag = Family::default();
        let paused_partitions = Gauge::default();
        let assigned_partitions = Gauge::default();
        let unassigned_seconds = Gauge::default();
        let rejoins = Counter::default();
        let dead_letters_unacknowledged = Gauge::default();
        registry.register("consumed", "Kafka records read", consumed.clone());
        registry.register("inserted_rows", "Rows written to ClickHouse", inserted.clone());
        registry.register("dead_letters", "Records rejected to the dead-letter topic", dead_lettered.clone());
        registry.register("retries", "Retried ClickHouse inserts and dead-letter sends", retries.clone());
        registry.register("batch_rows", "Rows per ClickHouse insert", batch_rows.clone());
        registry.register("insert_seconds", "Duration of one ClickHouse insert", insert_seconds.clone());
        registry.register(
            "consumer_lag",
            "Records behind the partition's end: its high watermark minus the group's committed offset (from the broker)",
            lag.clone(),
        );
        registry.register(
            "paused_partitions",
            "Partitions paused because their batch is not written yet",
            paused_partitions.clone(),
        );
        registry.register(
            "assigned_partitions",
            "Partitions the consumer group has assigned to this instance",
            assigned_partitions.clone(),
        );
        registry.register(
            "unassigned_seconds",
            "Seconds this instance has waited for a partition assignment (0 while it holds one)",
            unassigned_seconds.clone(),
        );
        registry.register(
            "rejoins",
            "Times this instance left a stuck join and joined the group again",
            rejoins.clone(),
        );
        registry.register(
            "dead_letters_unacknowledged",
            "Rejected records whose dead-letter send failed and waits for a retry; their partitions commit nothing meanwhile",
            dead_letters_unacknowledged.clone(),
        );
        Metrics {
            consumed,
            inserted,
            dead_lettered,
            retries,
            batch_rows,
            insert_seconds,
            lag,
            paused_partitions,
            assigned_partitions,
            unassigned_seconds,
            rejoins,
            dead_letters_unacknowledged,
            registry: Arc::new(registry),
        }
    }

    pub fn topic(topic: &str) -> TopicLabel {
        TopicLabel { topic: topic.to_owned() }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Clone)]
struct Http {
    metrics: Metrics,
    clickhouse: clickhouse::Client,
    membership: Arc<Membership>,
}

/// Serves `/metrics` and `/healthz` (200 when ClickHouse answers, the
/// consumer group has not left this instance without an assignment and no
/// dead letter waits for a retry) until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    clickhouse: clickhouse::Client,
    membership: Arc<Membership>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let app = Router::new().route("/metrics", get(metrics_page)).route("/healthz", get(healthz)).with_state(Http {
        metrics,
        clickhouse,
        membership,
    });
    axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await?;
    Ok(())
}

async fn metrics_page(State(s): State<Http>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
}

async fn healthz(State(s): State<Http>) -> impl IntoResponse {
    if let Some(problem) = s.membership.problem(std::time::Instant::now()) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n"));
    }
    let unacknowledged = s.metrics.dead_letters_unacknowledged.get();
    if unacknowledged > 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{unacknowledged} dead letter(s) not acknowledged by the dead-letter topic (see the log); \
                 their partitions commit nothing until they are\n"
            ),
        );
    }
    match s.clickhouse.query("SELECT 1").execute().await {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("ClickHouse unreachable: {e}\n")),
    }
}
