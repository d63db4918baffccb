//! Where dvc-rollup's batches stand, as they store it, and where a reader
//! of `touches` may stop: the writer (dvc-rollup) and the readers that
//! count what it has not rolled up yet (the rates API) share both rules.

use anyhow::{Context, Result};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// A batch's progress, stored as the `id` of its `progress` row: the ids
/// touched in `[from, to)` (Unix seconds) are read up to `cursor` (an id),
/// or all of them when `cursor` is `None`. `pending` is where the daily
/// views start counting touched ids from their states: the previous batch's
/// [`Progress::pending_since`], one batch behind, so a query that reads the
/// rollup before a batch and this row after it still counts every id that
/// batch changed from its states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    #[serde(skip)]
    pub batch: u64,
    pub from: u32,
    pub to: u32,
    pub cursor: Option<String>,
    pub pending: u32,
}

impl Progress {
    pub fn parse(batch: u64, json: &str) -> Result<Progress> {
        let p: Progress = serde_json::from_str(json).with_context(|| format!("progress row {batch}: {json:?}"))?;
        Ok(Progress { batch, ..p })
    }

    /// `{"from":…,"to":…,"cursor":…,"pending":…}`; the `rollup_pending`
    /// view reads `pending` with `visitParamExtractUInt`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a progress serialises")
    }

    /// The first second whose touches may not be in the rollup yet.
    pub fn pending_since(&self) -> u32 {
        if self.cursor.is_some() { self.from } else { self.to }
    }
}

/// A progress as stored: `index766_progress`'s row, and what a read of
/// `rate_rollup`'s latest progress row gives (`id AS progress`).
#[derive(Row, Serialize, Deserialize)]
pub struct ProgressRow {
    pub batch: u64,
    pub progress: String,
}

/// The progress `sql` reads (one [`ProgressRow`] at most).
pub async fn read_progress(db: &clickhouse::Client, sql: &str) -> Result<Option<Progress>> {
    let row = db.query(sql).fetch_optional::<ProgressRow>().await?;
    row.map(|r| Progress::parse(r.batch, &r.progress)).transpose()
}

/// The rates' latest progress row (`rate_rollup`'s progress rows): one
/// [`ProgressRow`] at most.
pub const RATES_PROGRESS_SQL: &str = "SELECT batch, id AS progress FROM rate_rollup \
     WHERE kind = 'progress' AND published > 0 ORDER BY batch DESC LIMIT 1";

/// The rates' latest progress written, if any.
pub async fn rates_progress(db: &clickhouse::Client) -> Result<Option<Progress>> {
    read_progress(db, RATES_PROGRESS_SQL).await.context("reading the rollup's progress")
}

/// The database's clock and the start of its oldest running insert
/// ([`CLOCK_SQL`]).
#[derive(Row, Deserialize)]
pub struct Clock {
    now: u32,
    running: u64,
    oldest: u32,
}

/// Reads a [`Clock`].
pub const CLOCK_SQL: &str = "SELECT toUInt32(now()) AS now, count() AS running, \
     toUInt32(min(toUInt32(now()) - toUInt32(ceil(elapsed)))) AS oldest \
     FROM system.processes WHERE upper(query) LIKE 'INSERT%'";

impl Clock {
    /// Where a reading of `touches` may end: now, or the start of the
    /// oldest insert still running (its touches carry its start time or
    /// later). Every touch before it, and the state rows its insert wrote,
    /// are visible.
    pub fn reading_end(&self) -> u32 {
        if self.running > 0 { self.now.min(self.oldest) } else { self.now }
    }
}

/// [`Clock::reading_end`] now.
pub async fn window_end(db: &clickhouse::Client) -> Result<u32> {
    let clock =
        db.query(CLOCK_SQL).fetch_one::<Clock>().await.context("reading the server's clock and running inserts")?;
    Ok(clock.reading_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips() {
        let p = Progress { batch: 7, from: 10, to: 20, cursor: Some("p\"1".into()), pending: 5 };
        let json = p.to_json();
        assert!(json.ends_with(",\"pending\":5}"), "{json}");
        assert_eq!(Progress::parse(7, &json).unwrap(), p);
        assert_eq!(p.pending_since(), 10);
        assert_eq!(Progress { cursor: None, ..p }.pending_since(), 20);
    }
}
