//! dvc-rollup keeps `rate_rollup` (schemas/clickhouse/005_rate_rollup.sql)
//! equal to the sum of every dossier's, payment's and rating's finished row,
//! so that a rate costs what its range costs, and `index766_rollup` (010,
//! index.rs) equal to the sum of every accepted dossier's index rows.
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
//! The two rollups are two [`Track`]s over the same touches, each with its
//! own progress: the index takes its batches after the rates' and may lag
//! them (its periods are a month or longer, and at 10 k new dossiers a
//! second its batches cost more than the rates'), so that the rates keep
//! up. They run one after the other in one process, sharing
//! `rollup_chunk`.
//!
//! Run one instance per database: two would number their batches alike.

pub mod index;
pub mod plan;
pub mod rows;
pub mod telemetry;
mod window;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dvc_warehouse::ClickHouseArgs;
use tokio_util::sync::CancellationToken;

use crate::plan::plan;
use crate::rows::{Facts, Published, RollupRow, RowKind};
use crate::telemetry::Telemetry;
pub use dvc_warehouse::Progress;

/// Keeps the rate and index rollups of one DVC Pulse database up to date.
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
    /// While the rates have new touches, the index takes a batch between
    /// two of their windows at most this often (ms); when they have none,
    /// whenever it is behind. Its lag is `dvc_rollup_index_lag_seconds`.
    #[arg(long, env = "DVC_ROLLUP_INDEX_INTERVAL_MS", default_value_t = 10_000)]
    pub index_interval_ms: u64,
    /// Dossier touches per index batch. The rates wait for an index batch
    /// (on 2 cores under 10 k events a second, 3-4 s for 2,000 or 5,000
    /// dossiers alike; 0.6 s for 5,000 at rest). With the interval, what the
    /// index keeps up with while the rates are busy (500 dossiers a second
    /// by default); it catches up when they are not.
    #[arg(long, env = "DVC_ROLLUP_INDEX_BATCH", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=200_000))]
    pub index_batch: u64,
    /// Roll up every touch made before the start, then exit (after a bulk
    /// load or an upgrade's backfill); serves no `/metrics`. Not while
    /// another instance runs on the database.
    #[arg(long)]
    pub catch_up: bool,
}

/// What dvc-rollup keeps, each by walking `touches` from progress of its
/// own: the index after the rates, allowed to lag them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// `rate_rollup`: every dossier, payment and rating touched; its
    /// progress rows are in the same table.
    Rates,
    /// `index766_rollup`: the dossiers touched (index.rs); its progress is
    /// `index766_progress`.
    Index,
}

impl Track {
    /// Its latest progress, if any.
    pub async fn progress(self, db: &clickhouse::Client) -> Result<Option<Progress>> {
        match self {
            Track::Rates => dvc_warehouse::rates_progress(db).await,
            Track::Index => index::progress(db).await,
        }
    }

    /// One batch of it.
    pub async fn step(self, db: &clickhouse::Client, batch_size: u64) -> Result<Step> {
        match self {
            Track::Rates => step(db, batch_size).await,
            Track::Index => index::step(db, batch_size).await,
        }
    }
}

/// What one batch of a track did, and the progress it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A batch was written: `ids` touched, `changed` of them rewritten,
    /// `rows` written, ending at `progress`.
    Wrote { ids: u64, changed: u64, rows: u64, progress: Progress },
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

    /// Whether the batch stopped inside a window (more to read at once).
    pub fn mid_window(&self) -> bool {
        self.progress().is_some_and(|p| p.cursor.is_some())
    }
}

/// One batch of the rates: the next chunk of touches of the current window
/// (a new window when the last one is done), their rows rewritten where
/// they changed, and the progress, in one insert.
pub async fn step(db: &clickhouse::Client, batch_size: u64) -> Result<Step> {
    let last = dvc_warehouse::rates_progress(db).await?;
    let batch = last.as_ref().map_or(1, |p| p.batch + 1);
    let Some(chunk) = window::next_chunk(db, last.as_ref(), batch_size, false).await? else {
        return Ok(Step::CaughtUp { progress: last });
    };
    let (published, facts) = if chunk.touched.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let published: Vec<Published> = db
            .query(&window::published_sql())
            .fetch_all()
            .await
            .context("reading the rollup's rows of the touched ids")?;
        let facts: Vec<Facts> =
            db.query(&window::facts_sql()).fetch_all().await.context("reading the touched ids' rows")?;
        (published, facts)
    };
    let planned = plan(batch, &chunk.touched, published, facts);
    let mut rows = planned.rows;
    let progress = chunk.progress(batch, last.as_ref());
    rows.push(progress_row(&progress, 1));
    if let Some(previous) = &last {
        rows.push(progress_row(previous, -1));
    }
    let written = rows.len() as u64;
    insert_all(db, "rate_rollup", rows).await?;
    Ok(Step::Wrote { ids: chunk.touched.len() as u64, changed: planned.changed, rows: written, progress })
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

/// The batches [`catch_up`] took, by track.
#[derive(Debug, Default)]
pub struct CaughtUp {
    pub rates: Vec<Step>,
    pub index: Vec<Step>,
}

/// Runs batches until every touch made before the call is rolled up by both
/// tracks, and the daily views read it from the rollup (`pending` past the
/// server's clock at the call). For tests, benchmarks and backfills.
pub async fn catch_up(db: &clickhouse::Client, batch_size: u64) -> Result<CaughtUp> {
    let now: u32 = db.query("SELECT toUInt32(now())").fetch_one().await.context("reading the server's clock")?;
    Ok(CaughtUp {
        rates: catch_up_track(db, Track::Rates, batch_size, now).await?,
        index: catch_up_track(db, Track::Index, batch_size, now).await?,
    })
}

/// [`catch_up`] for one track: its batches until its `pending` is past `now`.
async fn catch_up_track(db: &clickhouse::Client, track: Track, batch_size: u64, now: u32) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    loop {
        let done = track.step(db, batch_size).await?;
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

/// Whether the index takes a batch after the rates' (`rates`; `None`: it
/// failed): whenever the rates had nothing to roll up; between two of their
/// windows once `every` has passed since its last batch (`since`); never
/// inside one of their windows, so that the rates' backlog goes first.
fn index_turn(rates: Option<&Step>, since: Option<Duration>, every: Duration) -> bool {
    match rates {
        Some(Step::CaughtUp { .. } | Step::Wrote { ids: 0, .. }) => true,
        Some(done) => !done.mid_window() && since.is_none_or(|s| s >= every),
        None => false,
    }
}

/// One track in the running service: its batches with their telemetry, and
/// the last progress it saw (the lag keeps growing from it while batches
/// fail).
struct Walk {
    track: Track,
    last: Option<Progress>,
}

impl Walk {
    /// One batch; `None` when it failed (logged and counted).
    async fn turn(&mut self, db: &clickhouse::Client, batch_size: u64, telemetry: &Telemetry) -> Option<Step> {
        let started = Instant::now();
        let track = self.track;
        let done = match track.step(db, batch_size).await {
            Ok(done) => {
                if let Step::Wrote { ids, changed, rows, .. } = done {
                    telemetry.wrote(track, ids, changed, started.elapsed());
                    tracing::debug!(?track, ids, changed, rows, "batch written");
                } else {
                    telemetry.caught_up();
                }
                self.last = done.progress().cloned().or(self.last.take());
                Some(done)
            }
            Err(e) => {
                telemetry.failed(&e);
                tracing::warn!(?track, error = format!("{e:#}"), "rollup batch failed; retrying");
                None
            }
        };
        if let Some(p) = &self.last {
            telemetry.lag(track, p);
        }
        done
    }
}

/// Runs batches until `stop`: the rates' back to back while behind, every
/// `interval` when caught up; the index's after them ([`index_turn`]);
/// retrying after an error.
pub async fn run(config: Config, telemetry: Telemetry, stop: CancellationToken) -> Result<()> {
    let db = config.clickhouse.client();
    let interval = Duration::from_millis(config.interval_ms);
    let index_every = Duration::from_millis(config.index_interval_ms);
    tracing::info!(database = %config.clickhouse.database, "rollup running");
    let mut rates = Walk { track: Track::Rates, last: None };
    let mut index = Walk { track: Track::Index, last: None };
    let mut index_ran: Option<Instant> = None;
    while !stop.is_cancelled() {
        let rates_done = rates.turn(&db, config.batch, &telemetry).await;
        let index_done = if index_turn(rates_done.as_ref(), index_ran.map(|t| t.elapsed()), index_every) {
            index_ran = Some(Instant::now());
            Some(index.turn(&db, config.index_batch, &telemetry).await)
        } else {
            None
        };
        let failed = rates_done.is_none() || index_done.as_ref().is_some_and(Option::is_none);
        // A window with more ids goes on at once.
        let more = rates_done.iter().chain(index_done.iter().flatten()).any(Step::mid_window);
        let pause = if failed {
            interval.max(Duration::from_secs(1))
        } else if more {
            Duration::ZERO
        } else {
            interval
        };
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!("rollup stopped");
    Ok(())
}

/// `progress`'s row in `rate_rollup` (`published` +1 to write it, -1 to
/// cancel it).
fn progress_row(progress: &Progress, published: i64) -> RollupRow {
    RollupRow::new(RowKind::Progress, progress.to_json(), progress.batch, &rows::Place::default(), published, &[0; 18])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrote(cursor: Option<&str>) -> Step {
        let progress = Progress { batch: 2, from: 10, to: 20, cursor: cursor.map(str::to_owned), pending: 10 };
        Step::Wrote { ids: 1, changed: 1, rows: 3, progress }
    }

    #[test]
    fn the_index_waits_for_the_rates_backlog_and_its_interval() {
        let every = Duration::from_secs(10);
        let (soon, later) = (Some(Duration::from_secs(3)), Some(Duration::from_secs(10)));
        // Nothing for the rates to roll up: the index's turn, however recent its last.
        assert!(index_turn(Some(&Step::CaughtUp { progress: None }), soon, every));
        let empty = Step::Wrote { ids: 0, changed: 0, rows: 2, progress: wrote(None).progress().unwrap().clone() };
        assert!(index_turn(Some(&empty), soon, every));
        // Inside a rates window: never.
        assert!(!index_turn(Some(&wrote(Some("d"))), later, every));
        assert!(!index_turn(Some(&wrote(Some("d"))), None, every));
        // Between two rates windows: once the interval has passed, or at the start.
        assert!(!index_turn(Some(&wrote(None)), soon, every));
        assert!(index_turn(Some(&wrote(None)), later, every));
        assert!(index_turn(Some(&wrote(None)), None, every));
        // After a failed rates batch: the retry first.
        assert!(!index_turn(None, later, every));
    }
}
