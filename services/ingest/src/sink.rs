//! The ClickHouse writer: one insert per partition batch, retried on
//! transient failures, then a row in `ingest_progress` saying the batch is
//! stored whole; and the offset lookup that makes restarts exactly-once.
//!
//! A batch is sent as one INSERT of at most 1,000,000 rows, under ClickHouse's
//! `max_insert_block_size` (1,048,576), so the server writes it as one block:
//! all of it or none. A retry after an ambiguous failure (the server wrote the
//! block, the answer was lost) writes the same (topic, partition, offset) rows
//! again, which the tables and the rates tolerate by design.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clickhouse::{Client, Row};
use dvc_warehouse::{Retry, classify};
use serde::{Deserialize, Serialize};

use crate::retry::Backoff;
use crate::rows::RawRow;
use crate::telemetry::{Metrics, TopicLabel};

/// A ClickHouse failure that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
#[error(
    "ClickHouse rejected the insert into {table}: {source}. Fix the schema (run dvc-migrate) or the server, then restart"
)]
pub struct Fatal {
    pub table: &'static str,
    #[source]
    pub source: clickhouse::error::Error,
}

#[derive(Clone)]
pub struct Writer {
    client: Client,
    metrics: Metrics,
    backoff: Backoff,
}

/// Where `record_progress` writes (schemas/clickhouse/011_ingest_progress.sql).
pub const PROGRESS: &str = "ingest_progress";

#[derive(Row, Serialize)]
struct Progress {
    kafka_topic: String,
    kafka_partition: u32,
    kafka_offset: u64,
    recorded_at: u32,
}

/// Seconds since the epoch, as a `DateTime` column stores them.
fn unix_seconds() -> u32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(now).unwrap_or(u32::MAX)
}

#[derive(Row, Deserialize)]
struct MaxOffset {
    kafka_partition: u32,
    max_offset: u64,
}

/// Settings of every ingest request, so that the exactly-once rule (commit
/// after the insert returned; resume after the last batch stored whole) holds
/// on a cluster as on one server (README "Running on a cluster"); on one
/// server they change nothing.
/// - `insert_distributed_sync`: an insert into a Distributed table returns
///   once every shard has its rows, not when the node queued them.
/// - `insert_deduplicate = 0`: a Replicated table would drop a retried block
///   it has seen, *and not feed its materialized views*, so a retry after a
///   view failed would leave the states short.
/// - `load_balancing = in_order`: the offset lookup reads the first live
///   replica of each shard, the one the inserts went to.
pub const CLUSTER_SAFE: [(&str, &str); 3] =
    [("insert_distributed_sync", "1"), ("insert_deduplicate", "0"), ("load_balancing", "in_order")];

/// The settings of `--insert-quorum`: an insert returns once `quorum`
/// replicas of its shard hold the block, and quorum inserts into one table
/// run side by side (one per partition), not one at a time.
fn quorum_settings(quorum: &str) -> [(&'static str, &str); 2] {
    [("insert_quorum", quorum), ("insert_quorum_parallel", "1")]
}

impl Writer {
    /// A writer whose every request carries `CLUSTER_SAFE` and, when
    /// `quorum` is given, `quorum_settings`.
    pub fn new(client: Client, quorum: Option<&str>, metrics: Metrics, backoff: Backoff) -> Writer {
        let settings = CLUSTER_SAFE.into_iter().chain(quorum.into_iter().flat_map(quorum_settings));
        let client = settings.fold(client, |c, (name, value)| c.with_setting(name, value));
        Writer { client, metrics, backoff }
    }

    /// Inserts `rows` as one block, retrying transient failures until it
    /// succeeds; stamps every row with the same `ingested_at`.
    pub async fn insert<T: RawRow>(&self, label: &TopicLabel, rows: &mut [T]) -> Result<(), Fatal> {
        let now = unix_seconds();
        for row in rows.iter_mut() {
            row.set_ingested_at(now);
        }
        let took = self.retried(label, T::TABLE, || self.try_insert(rows)).await?;
        self.metrics.insert_seconds.get_or_create(label).observe(took.as_secs_f64());
        self.metrics.batch_rows.get_or_create(label).observe(rows.len() as f64);
        self.metrics.inserted.get_or_create(label).inc_by(rows.len() as u64);
        Ok(())
    }

    /// Records that the batch of `topic`'s `partition` ending at `offset`
    /// is stored whole (after its insert returned), retrying like an insert.
    /// Resuming after it is then safe: see `stored_offsets`.
    pub async fn record_progress(
        &self,
        label: &TopicLabel,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), Fatal> {
        let row = Progress {
            kafka_topic: topic.to_owned(),
            kafka_partition: partition,
            kafka_offset: offset,
            recorded_at: unix_seconds(),
        };
        self.retried(label, PROGRESS, || async {
            let mut insert = self.client.insert::<Progress>(PROGRESS).await?;
            insert.write(&row).await?;
            insert.end().await
        })
        .await
        .map(drop)
    }

    /// Runs `attempt` until it succeeds, waiting out transient failures, and
    /// returns how long the attempt that succeeded took; a failure that
    /// retrying cannot fix is returned.
    async fn retried<F, Fut>(&self, label: &TopicLabel, table: &'static str, attempt: F) -> Result<Duration, Fatal>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = clickhouse::error::Result<()>>,
    {
        let mut tries = 0;
        loop {
            let started = Instant::now();
            match attempt().await {
                Ok(()) => return Ok(started.elapsed()),
                Err(e) if classify(&e) == Retry::Transient => {
                    tries += 1;
                    let delay = self.backoff.delay(tries);
                    self.metrics.retries.get_or_create(label).inc();
                    tracing::warn!(table, attempt = tries, error = %e, retry_in_ms = delay.as_millis() as u64,
                        "ClickHouse insert failed; the partition stays paused and the batch is retried");
                    tokio::time::sleep(delay).await;
                }
                Err(source) => return Err(Fatal { table, source }),
            }
        }
    }

    async fn try_insert<T: RawRow>(&self, rows: &[T]) -> clickhouse::error::Result<()> {
        let mut insert = self.client.insert::<T>(T::TABLE).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// The last offset stored whole per partition of `topic`: the highest
    /// `record_progress` recorded. Not the highest offset in the raw table:
    /// an insert that failed after writing its raw rows but not its views'
    /// rows leaves those raw rows behind, and resuming after them would
    /// leave the states short for good; resuming from here stores that
    /// batch again, which the tables absorb (module documentation).
    pub async fn stored_offsets(&self, topic: &str) -> clickhouse::error::Result<HashMap<u32, u64>> {
        let rows: Vec<MaxOffset> = self
            .client
            .query(&format!(
                "SELECT kafka_partition, max(kafka_offset) AS max_offset FROM {PROGRESS} \
                 WHERE kafka_topic = ? GROUP BY kafka_partition"
            ))
            .bind(topic)
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(|r| (r.kafka_partition, r.max_offset)).collect())
    }

    /// Waits until ClickHouse answers, takes the writer's settings and has
    /// the raw tables. A refused setting (`--insert-quorum` on a server
    /// without parallel quorum inserts) or a missing table (the migrations
    /// were not applied) is fatal; an unreachable server is waited for.
    pub async fn wait_ready(&self, tables: &[&str]) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            let mut result = self.client.query("SELECT 1").execute().await;
            if let Err(e) = &result
                && classify(e) == Retry::Fatal
            {
                anyhow::bail!(
                    "ClickHouse refuses ingest's requests ({e}): check the user, and that a server given \
                     --insert-quorum runs quorum inserts in parallel (insert_quorum_parallel; 18.16 does not)"
                );
            }
            for table in tables {
                if result.is_err() {
                    break;
                }
                result = self.client.query(&format!("SELECT 1 FROM {table} LIMIT 0")).execute().await;
            }
            match result {
                Ok(()) => return Ok(()),
                Err(e) if classify(&e) == Retry::Transient => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "waiting for ClickHouse");
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                }
                Err(e) => {
                    anyhow::bail!("ClickHouse is not ready for ingest ({e}); apply the migrations with dvc-migrate")
                }
            }
        }
    }
}
