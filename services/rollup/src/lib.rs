//! dvc-rollup keeps `rate_rollup` (schemas/clickhouse/005_rate_rollup.sql)
//! equal to the sum of every dossier's, payment's and rating's finished row,
//! so that a rate costs what its range costs.
//!
//! It reads `touches` in time order, window by window. A window ends at a
//! second no running insert started before (`system.processes`), so every
//! touch in it, and the state rows its insert wrote, are visible when the
//! window is read. Each batch (a chunk of a window's touches) compares what
//! the rollup holds for the touched ids with their facts now, and writes the
//! difference together with its own progress as **one insert**: one part,
//! all or nothing. After kill -9 the next batch starts from the last progress
//! written, and reprocessing a touch is harmless (an unchanged row writes
//! nothing). Between batches, the daily views count the ids touched since the
//! latest batch's window began from their states, so no figure waits for
//! this service.
//!
//! Run one instance per database: two would number their batches alike.

pub mod index;
pub mod plan;
pub mod rows;
pub mod telemetry;
mod window;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clickhouse::Row;
use dvc_warehouse::ClickHouseArgs;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::plan::plan;
use crate::rows::{Entity, Facts, Published, RollupRow, RowKind};
use crate::telemetry::Telemetry;
pub use crate::window::Progress;

/// Keeps the rate rollup of one DVC Pulse database up to date.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "dvc-rollup", version)]
pub struct Config {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// Address of `/metrics` and `/healthz`.
    #[arg(long, env = "DVC_ROLLUP_LISTEN", default_value = "127.0.0.1:9465")]
    pub listen: SocketAddr,
    /// Pause between batches when caught up (ms).
    #[arg(long, env = "DVC_ROLLUP_INTERVAL_MS", default_value_t = 1_000)]
    pub interval_ms: u64,
    /// Touches per batch (each batch is one insert of up to about four rows
    /// per touched id, kept below ClickHouse's insert block size). A window
    /// is walked in id order, so a batch's ids are a contiguous key range.
    #[arg(long, env = "DVC_ROLLUP_BATCH", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..=200_000))]
    pub batch: u64,
    /// Roll up every touch made before the start, then exit (after a bulk
    /// load or an upgrade's backfill); serves no `/metrics`. Not while
    /// another instance runs on the database.
    #[arg(long)]
    pub catch_up: bool,
}

/// What one call of [`step`] did, and the progress it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A batch was written: `ids` touched, `changed` of them rewritten,
    /// `rows` written to the rates' rollup, `index_changed` dossiers
    /// rewritten in the index's, ending at `progress`.
    Wrote { ids: u64, changed: u64, rows: u64, index_changed: u64, progress: Progress },
    /// Nothing new to read since `progress` (none before the first batch).
    CaughtUp { progress: Option<Progress> },
}

impl Step {
    pub fn progress(&self) -> Option<&Progress> {
        match self {
            Step::Wrote { progress, .. } => Some(progress),
            Step::CaughtUp { progress } => progress.as_ref(),
        }
    }
}

/// The database's clock and the start of its oldest running insert.
#[derive(Row, Deserialize)]
struct Clock {
    now: u32,
    running: u64,
    oldest: u32,
}

#[derive(Row, Deserialize)]
struct Touch {
    entity: u8,
    id: String,
}

#[derive(Row, Deserialize)]
struct ProgressRow {
    batch: u64,
    id: String,
}

/// The latest progress written, if any.
pub async fn progress(db: &clickhouse::Client) -> Result<Option<Progress>> {
    let row = db
        .query(
            "SELECT batch, id FROM rate_rollup WHERE kind = 'progress' AND published > 0 \
             ORDER BY batch DESC LIMIT 1",
        )
        .fetch_optional::<ProgressRow>()
        .await
        .context("reading the rollup's progress")?;
    row.map(|r| Progress::parse(r.batch, &r.id)).transpose()
}

/// Where the next window may end: now, or the start of the oldest insert
/// still running (its touches carry its start time or later).
async fn window_end(db: &clickhouse::Client) -> Result<u32> {
    let clock = db
        .query(
            "SELECT toUInt32(now()) AS now, count() AS running, \
             toUInt32(min(toUInt32(now()) - toUInt32(ceil(elapsed)))) AS oldest \
             FROM system.processes WHERE upper(query) LIKE 'INSERT%'",
        )
        .fetch_one::<Clock>()
        .await
        .context("reading the server's clock and running inserts")?;
    Ok(if clock.running > 0 { clock.now.min(clock.oldest) } else { clock.now })
}

/// One batch: the next chunk of touches of the current window (a new window
/// when the last one is done), their rows rewritten where they changed, and
/// the progress, in one insert.
pub async fn step(db: &clickhouse::Client, batch_size: u64) -> Result<Step> {
    let last = progress(db).await?;
    let next_batch = last.as_ref().map_or(1, |p| p.batch + 1);
    index::check_reference(db, next_batch).await?;
    let (from, to, after) = match &last {
        Some(p) if p.cursor.is_some() => (p.from, p.to, p.cursor.clone()),
        Some(p) => (p.to, window_end(db).await?, None),
        None => (0, window_end(db).await?, None),
    };
    if to <= from && after.is_none() {
        return Ok(Step::CaughtUp { progress: last });
    }
    let window = window::Window { from, to, after };
    let (sql, params) = window.chunk_end_sql(batch_size);
    let cursor: Option<String> =
        window::bind(db.query(&sql), &params).fetch_optional().await.context("finding the batch's last id")?;
    let (sql, params) = window.touched_sql(cursor.as_deref());
    let touches: Vec<Touch> = window::bind(db.query(&sql), &params).fetch_all().await.context("reading touches")?;
    let touched: BTreeSet<(Entity, String)> =
        touches.into_iter().filter_map(|t| Some((Entity::from_code(t.entity)?, t.id))).collect();
    let touched: Vec<(Entity, String)> = touched.into_iter().collect();
    let (published, facts, index_changed) = if touched.is_empty() {
        (Vec::new(), Vec::new(), 0)
    } else {
        db.query("TRUNCATE TABLE rollup_chunk").execute().await.context("emptying rollup_chunk")?;
        let (fill, params) = window.fill_sql(cursor.as_deref());
        window::bind(db.query(&fill), &params).execute().await.context("writing the batch's ids")?;
        let published: Vec<Published> = db
            .query(&window::published_sql())
            .fetch_all()
            .await
            .context("reading the rollup's rows of the touched ids")?;
        let facts: Vec<Facts> =
            db.query(&window::facts_sql()).fetch_all().await.context("reading the touched ids' rows")?;
        // The index's rows first: this batch's progress comes with the rates'.
        let dossiers: Vec<String> =
            touched.iter().filter(|(e, _)| *e == Entity::Dossier).map(|(_, id)| id.clone()).collect();
        let index_changed = index::write_batch(db, next_batch, &dossiers).await?;
        (published, facts, index_changed)
    };
    let planned = plan(next_batch, &touched, published, facts);
    let mut rows = planned.rows;
    let pending = last.as_ref().map_or(0, Progress::pending_since);
    let progress = Progress { batch: next_batch, from, to, cursor, pending };
    rows.push(progress.row(1));
    if let Some(previous) = &last {
        rows.push(previous.row(-1));
    }
    let written = rows.len() as u64;
    insert_all(db, "rate_rollup", rows).await?;
    Ok(Step::Wrote { ids: touched.len() as u64, changed: planned.changed, rows: written, index_changed, progress })
}

/// One insert, one block: `max_insert_block_size` above the batch's rows so
/// ClickHouse writes it as a single part.
pub(crate) async fn insert_all<T: clickhouse::RowOwned + clickhouse::RowWrite>(
    db: &clickhouse::Client,
    table: &str,
    rows: Vec<T>,
) -> Result<()> {
    let db = db.clone().with_setting("max_insert_block_size", "10000000");
    let mut insert = db.insert::<T>(table).await?;
    for row in &rows {
        insert.write(row).await?;
    }
    insert.end().await.with_context(|| format!("writing a batch into {table}"))
}

/// Runs batches until every touch made before the call is rolled up and the
/// daily views read it from the rollup (`pending` past the server's clock at
/// the call); the steps taken. For tests, benchmarks and backfills.
pub async fn catch_up(db: &clickhouse::Client, batch_size: u64) -> Result<Vec<Step>> {
    let now: u32 = db.query("SELECT toUInt32(now())").fetch_one().await.context("reading the server's clock")?;
    let mut steps = Vec::new();
    loop {
        let done = step(db, batch_size).await?;
        let finished = done.progress().is_some_and(|p| p.pending > now);
        let idle = matches!(done, Step::CaughtUp { .. });
        steps.push(done);
        if finished {
            return Ok(steps);
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs batches until `stop`: back to back while behind, every
/// `interval` when caught up, retrying after an error.
pub async fn run(config: Config, telemetry: Telemetry, stop: CancellationToken) -> Result<()> {
    let db = config.clickhouse.client();
    let interval = Duration::from_millis(config.interval_ms);
    tracing::info!(database = %config.clickhouse.database, "rollup running");
    let mut last: Option<Progress> = None;
    while !stop.is_cancelled() {
        let started = Instant::now();
        let pause = match step(&db, config.batch).await {
            Ok(done) => {
                if let Step::Wrote { ids, changed, rows, index_changed, .. } = done {
                    telemetry.wrote(ids, changed, index_changed, started.elapsed());
                    tracing::debug!(ids, changed, rows, index_changed, "batch written");
                } else {
                    telemetry.caught_up();
                }
                last = done.progress().cloned().or(last);
                // A window with more ids goes on at once.
                if done.progress().is_some_and(|p| p.cursor.is_some()) { Duration::ZERO } else { interval }
            }
            Err(e) => {
                telemetry.failed(&e);
                tracing::warn!(error = format!("{e:#}"), "rollup batch failed; retrying");
                interval.max(Duration::from_secs(1))
            }
        };
        // From the last progress known, so the lag keeps growing while batches fail.
        if let Some(p) = &last {
            telemetry.lag(p);
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!("rollup stopped");
    Ok(())
}

impl Progress {
    /// Its row in `rate_rollup` (`published` +1 to write it, -1 to cancel it).
    fn row(&self, published: i64) -> RollupRow {
        RollupRow::new(RowKind::Progress, self.to_json(), self.batch, &rows::Place::default(), published, &[0; 18])
    }
}
