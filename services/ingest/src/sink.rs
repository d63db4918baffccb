//! The ClickHouse writer: one insert per partition batch, retried on
//! transient failures, and the offset lookup that makes restarts exactly-once.
//!
//! A batch is sent as one INSERT of at most 1,000,000 rows, under ClickHouse's
//! `max_insert_block_size` (1,048,576), so the server writes it as one block:
//! all of it or none. A retry after an ambiguous failure (the server wrote the
//! block, the answer was lost) writes the same (topic, partition, offset) rows
//! again, which the tables and the rates tolerate by design.

use std::collections::HashMap;
use std::time::Instant;

use clickhouse::{Client, Row};
use dvc_warehouse::{Retry, classify};
use serde::Deserialize;

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

#[derive(Row, Deserialize)]
struct MaxOffset {
    kafka_partition: u32,
    max_offset: u64,
}

/// Settings of every ingest request, so that the exactly-once rule (commit
/// after the insert returned; resume after the highest stored offset) holds
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

impl Writer {
    pub fn new(client: Client, metrics: Metrics, backoff: Backoff) -> Writer {
        let client = CLUSTER_SAFE.iter().fold(client, |c, (name, value)| c.with_setting(*name, *value));
        Writer { client, metrics, backoff }
    }

    /// Inserts `rows` as one block, retrying transient failures until it
    /// succeeds; stamps every row with the same `ingested_at`.
    pub async fn insert<T: RawRow>(&self, label: &TopicLabel, rows: &mut [T]) -> Result<(), Fatal> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        for row in rows.iter_mut() {
            row.set_ingested_at(now);
        }
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            match self.try_insert(rows).await {
                Ok(()) => {
                    self.metrics.insert_seconds.get_or_create(label).observe(started.elapsed().as_secs_f64());
                    self.metrics.batch_rows.get_or_create(label).observe(rows.len() as f64);
                    self.metrics.inserted.get_or_create(label).inc_by(rows.len() as u64);
                    return Ok(());
                }
                Err(e) if classify(&e) == Retry::Transient => {
                    attempt += 1;
                    let delay = self.backoff.delay(attempt);
                    self.metrics.retries.get_or_create(label).inc();
                    tracing::warn!(table = T::TABLE, attempt, error = %e, retry_in_ms = delay.as_millis() as u64,
                        "ClickHouse insert failed; the partition stays paused and the batch is retried");
                    tokio::time::sleep(delay).await;
                }
                Err(source) => {
                    return Err(Fatal { table: T::TABLE, source });
                }
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

    /// The highest offset stored per partition of `topic` in `table`.
    pub async fn stored_offsets(&self, table: &str, topic: &str) -> clickhouse::error::Result<HashMap<u32, u64>> {
        let rows: Vec<MaxOffset> = self
            .client
            .query(&format!(
                "SELECT kafka_partition, max(kafka_offset) AS max_offset FROM {table} \
                 WHERE kafka_topic = ? GROUP BY kafka_partition"
            ))
            .bind(topic)
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(|r| (r.kafka_partition, r.max_offset)).collect())
    }

    /// Waits until ClickHouse answers and the raw tables exist. A missing
    /// table is fatal (the migrations were not applied); an unreachable
    /// server is waited for.
    pub async fn wait_ready(&self, tables: &[&str]) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            let mut result = Ok(());
            for table in tables {
                result = self.client.query(&format!("SELECT 1 FROM {table} LIMIT 0")).execute().await;
                if result.is_err() {
                    break;
                }
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
