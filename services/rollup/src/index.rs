//! The Decision 766 index rollup (`index766_rollup`,
//! schemas/clickhouse/010_index766_rollup.sql), kept in batches of its own
//! (012): the touched dossiers of a chunk of its window
//! (`index766_chunk_rows`, computed from their states) against the rows the
//! rollup counted for them, settled by the same rule as the rates'
//! ([`settle`]). A batch writes its rows, then its progress
//! (`index766_progress`): after a crash between the two, the batch runs
//! again and finds its rows already counted.
//!
//! What a due time without `due_at` is computed from (the catalogue's
//! maximum days, the working-day calendar) is not a dossier's state: when
//! its fingerprint changes, every dossier without `due_at` is touched.

use anyhow::{Context, Result};
use clickhouse::Row;
use dvc_warehouse::{Progress, ProgressRow, read_progress};
use serde::{Deserialize, Serialize};

use crate::plan::{Held, Plan, settle};
use crate::rows::measured;
use crate::{Step, insert_all, window};

/// One value per measure of `index766_rollup`, in its column order.
pub type IndexMeasures = [i64; 18];

/// `index766_rollup.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
enum Kind {
    Sum = 1,
    Dossier = 2,
    Reference = 3,
}

/// Where an index row is summed.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexPlace {
    /// 1 month, 2 quarter, 3 year.
    pub period_kind: i8,
    pub carry: u8,
    /// Days since 1970-01-01.
    pub period_start: u16,
    pub late_after: u32,
    pub authority_code: String,
    pub agency_code: String,
    pub procedure_code: String,
}

macro_rules! index_row {
    ($($row:tt)*) => {
        measured!(IndexMeasures, [
            handled, received, received_online, received_with_fee, received_paid_online, on_time, ended,
            processing_seconds, result_digitized, digitized, digitized_with_result, reused_digitized_data,
            from_personal_store, population_data, satisfied, open, open_on_time, open_satisfied,
        ], $($row)*);
    };
}

index_row! {
    /// A row of `index766_rollup` (written, or read summed with `published`).
    IndexRow {
        kind: i8, id: String, batch: u64, period_kind: i8, carry: u8, period_start: u16, late_after: u32,
        authority_code: String, agency_code: String, procedure_code: String, published: i64,
    }
}

impl IndexRow {
    fn new(kind: Kind, id: String, batch: u64, place: &IndexPlace, published: i64, m: &IndexMeasures) -> IndexRow {
        IndexRow {
            kind: kind as i8,
            id,
            batch,
            period_kind: place.period_kind,
            carry: place.carry,
            period_start: place.period_start,
            late_after: place.late_after,
            authority_code: place.authority_code.clone(),
            agency_code: place.agency_code.clone(),
            procedure_code: place.procedure_code.clone(),
            published,
            ..IndexRow::default()
        }
        .with_measures(m)
    }

    fn place(&self) -> IndexPlace {
        IndexPlace {
            period_kind: self.period_kind,
            carry: self.carry,
            period_start: self.period_start,
            late_after: self.late_after,
            authority_code: self.authority_code.clone(),
            agency_code: self.agency_code.clone(),
            procedure_code: self.procedure_code.clone(),
        }
    }
}

/// The columns of a place, as `index766_chunk_rows` gives them.
const CHUNK_PLACE: &str = "toInt8(indexOf(['month', 'quarter', 'year'], period_kind)), carry, \
     toUInt16(period_start), late_key, authority_code, agency_code, procedure_code";

/// The columns of a place, as `index766_rollup` holds them.
const PLACE: &str =
    "period_kind, carry, toUInt16(period_start), late_after, authority_code, agency_code, procedure_code";

/// The rows of the batch's dossiers now: `IndexRow`s with kind, batch and
/// published 0.
fn chunk_sql() -> String {
    format!(
        "SELECT toInt8(0), id, toUInt64(0), {CHUNK_PLACE}, toInt64(0), {} FROM index766_chunk_rows",
        IndexRow::MEASURES.join(", ")
    )
}

/// What `index766_rollup` holds for the batch's dossiers: one row per (id,
/// batch, place) whose `published` does not add up to 0.
fn held_sql() -> String {
    let sums: Vec<String> = IndexRow::MEASURES.iter().map(|m| format!("sum({m})")).collect();
    format!(
        "SELECT toInt8(2), id, batch, {PLACE}, sum(published), {} FROM index766_rollup \
         WHERE kind = 'dossier' AND id IN (SELECT id FROM rollup_chunk) \
         GROUP BY id, batch, period_kind, carry, period_start, late_after, authority_code, agency_code, procedure_code \
         HAVING sum(published) != 0",
        sums.join(", ")
    )
}

/// The index's latest progress written, if any.
pub async fn progress(db: &clickhouse::Client) -> Result<Option<Progress>> {
    read_progress(db, "SELECT batch, progress FROM index766_progress ORDER BY batch DESC LIMIT 1")
        .await
        .context("reading the index's progress")
}

/// One batch of the index: the reference checked, the next chunk of
/// touched dossiers, the rows of those that changed, then the progress.
pub async fn step(db: &clickhouse::Client, batch_size: u64) -> Result<Step> {
    let last = progress(db).await?;
    let batch = last.as_ref().map_or(1, |p| p.batch + 1);
    check_reference(db, batch).await?;
    let Some(chunk) = window::next_chunk(db, last.as_ref(), batch_size, true).await? else {
        return Ok(Step::CaughtUp { progress: last });
    };
    let progress = chunk.progress(batch, last.as_ref());
    let dossiers: Vec<String> = chunk.touched.into_iter().map(|(_, id)| id).collect();
    let (changed, rows) = if dossiers.is_empty() { (0, 0) } else { write_batch(db, batch, &dossiers).await? };
    let row = ProgressRow { batch, progress: progress.to_json() };
    insert_all(db, "index766_progress", vec![row]).await.context("recording the index's progress")?;
    Ok(Step::Wrote { ids: dossiers.len() as u64, changed, rows: rows + 1, progress })
}

/// The index rows of one batch: the changed dossiers' rows and the sums'
/// change; `dossiers` are the batch's touched dossier ids, whose states
/// `rollup_chunk` selects. Written as one insert; the number of dossiers
/// whose rows changed, and of rows written.
async fn write_batch(db: &clickhouse::Client, batch: u64, dossiers: &[String]) -> Result<(u64, u64)> {
    let held: Vec<IndexRow> =
        db.query(&held_sql()).fetch_all().await.context("reading the index rows of the touched dossiers")?;
    let now: Vec<IndexRow> =
        db.query(&chunk_sql()).fetch_all().await.context("computing the touched dossiers' index rows")?;
    let planned = plan(batch, dossiers, held, now);
    let written = (planned.changed, planned.rows.len() as u64);
    insert_all(db, "index766_rollup", planned.rows).await.context("writing an index rollup batch")?;
    Ok(written)
}

/// The rows [`write_batch`] writes, from what it read.
fn plan(batch: u64, dossiers: &[String], held: Vec<IndexRow>, now: Vec<IndexRow>) -> Plan<IndexRow> {
    let held = held.into_iter().map(|h| {
        let row = Held { place: h.place(), batch: h.batch, published: h.published, measures: h.measures() };
        (h.id, row)
    });
    let now = now.into_iter().map(|n| (n.id.clone(), n.place(), n.measures()));
    settle(batch, dossiers, held, now).into_plan(
        |id, h| IndexRow::new(Kind::Dossier, id, h.batch, &h.place, h.published, &h.measures),
        |place, m| IndexRow::new(Kind::Sum, String::new(), 0, place, 0, m),
    )
}

#[derive(Row, Deserialize)]
struct Reference {
    id: String,
    batch: u64,
}

/// Compares the fingerprint of what due times without `due_at` are computed
/// from with the one recorded; when it changed, touches every accepted
/// dossier without `due_at` (so later batches count them again), then
/// records the new one (as the index's batch `batch`). The first
/// fingerprint is only recorded: migration 010 touched every dossier.
/// Whether it changed.
pub async fn check_reference(db: &clickhouse::Client, batch: u64) -> Result<bool> {
    let now: String = db
        .query("SELECT toString(fingerprint) FROM index766_due_reference")
        .fetch_one()
        .await
        .context("reading the catalogue's and calendar's fingerprint")?;
    let recorded: Option<Reference> = db
        .query(
            "SELECT id, batch FROM index766_rollup WHERE kind = 'reference' \
             GROUP BY id, batch HAVING sum(published) > 0 ORDER BY batch DESC LIMIT 1",
        )
        .fetch_optional()
        .await
        .context("reading the recorded fingerprint")?;
    if recorded.as_ref().is_some_and(|r| r.id == now) {
        return Ok(false);
    }
    let mut rows = vec![IndexRow::new(Kind::Reference, now, batch, &IndexPlace::default(), 1, &[0; 18])];
    if let Some(old) = recorded {
        db.query(
            "INSERT INTO touches SELECT now(), 1, dossier_id FROM dossier_state_v2 GROUP BY dossier_id \
             HAVING toUInt32(argMaxIfMerge(due_at)) = 0 AND toUInt32(argMaxIfMerge(received_at)) > 0",
        )
        .execute()
        .await
        .context("touching the dossiers without a due time")?;
        tracing::info!("the catalogue or the calendar changed: dossiers without a due time touched");
        rows.push(IndexRow::new(Kind::Reference, old.id, old.batch, &IndexPlace::default(), -1, &[0; 18]));
    }
    insert_all(db, "index766_rollup", rows).await.context("recording the fingerprint")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, month: u16, late_after: u32, m: &[(usize, i64)]) -> IndexRow {
        let mut measures = [0; 18];
        for &(i, v) in m {
            measures[i] = v;
        }
        let place = IndexPlace { period_kind: 1, period_start: month, late_after, ..IndexPlace::default() };
        IndexRow::new(Kind::Dossier, id.to_owned(), 0, &place, 0, &measures)
    }

    fn held(rows: &[IndexRow]) -> Vec<IndexRow> {
        rows.iter().filter(|r| r.kind == Kind::Dossier as i8).cloned().collect()
    }

    #[test]
    fn a_dossier_that_ends_trades_its_open_rows_for_fixed_ones() {
        let ids = vec!["d".to_owned()];
        // Open: on time until its late row applies (handled, on_time, open).
        let open = vec![row("d", 100, 0, &[(0, 1), (5, 1), (15, 1)]), row("d", 100, 500, &[(5, -1)])];
        let first = plan(1, &ids, vec![], open.clone());
        assert_eq!((first.changed, first.rows.len()), (1, 4));
        let sums: Vec<&IndexRow> = first.rows.iter().filter(|r| r.kind == Kind::Sum as i8).collect();
        assert_eq!(sums.iter().map(|r| (r.late_after, r.on_time)).collect::<Vec<_>>(), vec![(0, 1), (500, -1)]);
        let same = plan(2, &ids, held(&first.rows).into_iter().map(|r| IndexRow { published: 1, ..r }).collect(), open);
        assert_eq!((same.changed, same.rows.len()), (0, 0), "unchanged rows write nothing");
        // Ended in the month, late.
        let ended = vec![row("d", 100, 0, &[(0, 1), (6, 1)])];
        let published: Vec<IndexRow> = held(&first.rows).into_iter().map(|r| IndexRow { published: 1, ..r }).collect();
        let second = plan(2, &ids, published, ended);
        let sums: Vec<(u32, i64, i64, i64)> = second
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Sum as i8)
            .map(|r| (r.late_after, r.on_time, r.ended, r.open))
            .collect();
        assert_eq!(sums, vec![(0, -1, 1, -1), (500, 1, 0, 0)], "the late row goes, the month's row changes");
        assert_eq!(second.rows.iter().filter(|r| r.kind == Kind::Dossier as i8 && r.published == -1).count(), 2);
    }

    #[test]
    fn measure_fields_follow_the_table_order() {
        let names = <IndexRow as Row>::COLUMN_NAMES;
        assert_eq!(&names[names.len() - IndexRow::MEASURES.len()..], IndexRow::MEASURES);
        let sql = include_str!("../../../schemas/clickhouse/010_index766_rollup.sql");
        let table = &sql[sql.find("CREATE TABLE IF NOT EXISTS index766_rollup").unwrap()..];
        let table = &table[..table.find("ENGINE").unwrap()];
        let columns: Vec<&str> =
            table.lines().skip(1).filter_map(|l| l.trim().split_once(' ').map(|(c, _)| c)).collect();
        assert_eq!(&columns[columns.len() - IndexRow::MEASURES.len()..], IndexRow::MEASURES);
        assert_eq!(
            columns[..columns.len() - IndexRow::MEASURES.len()],
            names[..names.len() - IndexRow::MEASURES.len()]
        );
    }
}
