//! The touches a batch reads: a window of `touched_at` seconds, walked in
//! id order in chunks, so that each chunk's ids are a contiguous range of
//! every state table's key (a chunk of ids scattered over the key space
//! would read most of the states' marks, at a cost that grows with the
//! history); and the SQL that reads them. The rates and the index walk
//! `touches` alike, each from progress of its own ([`next_chunk`]).

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use clickhouse::Row;
use dvc_warehouse::{MEASURES, Progress, window_end};
use serde::Deserialize;

use crate::rows::Entity;

#[derive(Row, Deserialize)]
struct Touch {
    entity: u8,
    id: String,
}

/// The touches one batch reads, their ids in `rollup_chunk`.
pub struct Chunk {
    pub window: Window,
    /// The chunk's last id, when more of the window remains.
    pub cursor: Option<String>,
    /// The (entity, id) pairs touched, each once, in order.
    pub touched: Vec<(Entity, String)>,
}

impl Chunk {
    /// The progress of `batch`, which reads this chunk after `last`.
    pub fn progress(&self, batch: u64, last: Option<&Progress>) -> Progress {
        Progress {
            batch,
            from: self.window.from,
            to: self.window.to,
            cursor: self.cursor.clone(),
            pending: last.map_or(0, Progress::pending_since),
        }
    }
}

/// The next chunk after `last` (the rest of its window, or a new window
/// from its end to now), of up to `size` touches (dossiers' only when
/// `dossiers_only`), its ids written to `rollup_chunk` (emptied first)
/// when there are any; `None` when nothing new can be read yet.
pub async fn next_chunk(
    db: &clickhouse::Client,
    last: Option<&Progress>,
    size: u64,
    dossiers_only: bool,
) -> Result<Option<Chunk>> {
    let (from, to, after) = match last {
        Some(p) if p.cursor.is_some() => (p.from, p.to, p.cursor.clone()),
        Some(p) => (p.to, window_end(db).await?, None),
        None => (0, window_end(db).await?, None),
    };
    if to <= from && after.is_none() {
        return Ok(None);
    }
    let window = Window { from, to, after, dossiers_only };
    let (sql, params) = window.chunk_end_sql(size);
    let cursor: Option<String> =
        bind(db.query(&sql), &params).fetch_optional().await.context("finding the batch's last id")?;
    let (sql, params) = window.touched_sql(cursor.as_deref());
    let touches: Vec<Touch> = bind(db.query(&sql), &params).fetch_all().await.context("reading touches")?;
    let touched: BTreeSet<(Entity, String)> =
        touches.into_iter().filter_map(|t| Some((Entity::from_code(t.entity)?, t.id))).collect();
    if !touched.is_empty() {
        db.query("TRUNCATE TABLE rollup_chunk").execute().await.context("emptying rollup_chunk")?;
        let (fill, params) = window.fill_sql(cursor.as_deref());
        bind(db.query(&fill), &params).execute().await.context("writing the batch's ids")?;
    }
    Ok(Some(Chunk { window, cursor, touched: touched.into_iter().collect() }))
}

/// A bound parameter of the generated SQL, in `?` order.
#[derive(Debug, Clone)]
pub enum Param {
    Seconds(u32),
    Id(String),
}

fn bind(mut query: clickhouse::query::Query, params: &[Param]) -> clickhouse::query::Query {
    for p in params {
        query = match p {
            Param::Seconds(s) => query.bind(*s),
            Param::Id(id) => query.bind(id.as_str()),
        };
    }
    query
}

/// The touches of `[from, to)` whose id is above `after`: every entity's,
/// or only dossiers' (the index's).
#[derive(Debug, Clone)]
pub struct Window {
    pub from: u32,
    pub to: u32,
    pub after: Option<String>,
    pub dossiers_only: bool,
}

impl Window {
    /// `touches WHERE …` for this window's ids after the cursor, up to
    /// `last` (inclusive) when given.
    fn touches(&self, last: Option<&str>) -> (String, Vec<Param>) {
        let mut sql = "touches WHERE touched_at >= toDateTime(?) AND touched_at < toDateTime(?)".to_owned();
        let mut params = vec![Param::Seconds(self.from), Param::Seconds(self.to)];
        if self.dossiers_only {
            sql.push_str(&format!(" AND entity = {}", Entity::Dossier as u8));
        }
        if let Some(after) = &self.after {
            sql.push_str(" AND id > ?");
            params.push(Param::Id(after.clone()));
        }
        if let Some(last) = last {
            sql.push_str(" AND id <= ?");
            params.push(Param::Id(last.to_owned()));
        }
        (sql, params)
    }

    /// The id `size` touches on from the cursor (the chunk's last id, when
    /// more than `size` touches remain).
    pub fn chunk_end_sql(&self, size: u64) -> (String, Vec<Param>) {
        let (touches, params) = self.touches(None);
        (format!("SELECT id FROM {touches} ORDER BY id LIMIT 1 OFFSET {}", size.saturating_sub(1)), params)
    }

    /// The (entity, id) pairs touched in the chunk ending at `last`.
    pub fn touched_sql(&self, last: Option<&str>) -> (String, Vec<Param>) {
        let (touches, params) = self.touches(last);
        (format!("SELECT DISTINCT entity, id FROM {touches}"), params)
    }

    /// `INSERT INTO rollup_chunk …`: the chunk's ids, whatever their kind
    /// (the `chunk_rows` view reads their rows).
    pub fn fill_sql(&self, last: Option<&str>) -> (String, Vec<Param>) {
        let (touches, params) = self.touches(last);
        (format!("INSERT INTO rollup_chunk SELECT DISTINCT id FROM {touches}"), params)
    }
}

/// What `rate_rollup` holds for the ids in `rollup_chunk`: one row per
/// (kind, id, batch, place) whose `published` does not add up to 0.
pub fn published_sql() -> String {
    let sums: Vec<String> = MEASURES.iter().map(|m| format!("sum({m})")).collect();
    format!(
        "SELECT kind, id, batch, toUInt16(day), authority_code, agency_code, procedure_code, method, \
         sum(published), {} FROM rate_rollup \
         WHERE kind IN ('dossier', 'payment', 'rating') AND id IN (SELECT id FROM rollup_chunk) \
         GROUP BY kind, id, batch, day, authority_code, agency_code, procedure_code, method \
         HAVING sum(published) != 0",
        sums.join(", ")
    )
}

/// The finished rows of the ids in `rollup_chunk`, from their states.
pub fn facts_sql() -> String {
    let measures: Vec<String> = MEASURES.iter().map(|m| format!("toInt64({m})")).collect();
    format!(
        "SELECT entity, id, toUInt16(day), authority_code, agency_code, procedure_code, method, {} FROM chunk_rows",
        measures.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_question_mark_has_its_parameter() {
        for (after, dossiers_only) in [(None, false), (Some("a".to_owned()), false), (Some("a".to_owned()), true)] {
            let window = Window { from: 0, to: 5, after, dossiers_only };
            for (sql, params) in [
                window.chunk_end_sql(10),
                window.touched_sql(Some("z")),
                window.fill_sql(None),
                window.fill_sql(Some("z")),
            ] {
                assert_eq!(sql.matches('?').count(), params.len(), "{sql}");
            }
        }
        assert!(!published_sql().contains('?') && !facts_sql().contains('?'));
        assert_eq!(facts_sql().matches("toInt64(").count(), MEASURES.len());
    }
}
