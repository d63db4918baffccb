//! The touches a batch reads: a window of `touched_at` seconds, walked in
//! id order in chunks, so that each chunk's ids are a contiguous range of
//! every state table's key (a chunk of ids scattered over the key space
//! would read most of the states' marks, at a cost that grows with the
//! history); and the SQL that reads them.

use anyhow::{Context, Result};
use dvc_warehouse::MEASURES;
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

/// A bound parameter of the generated SQL, in `?` order.
#[derive(Debug, Clone)]
pub enum Param {
    Seconds(u32),
    Id(String),
}

pub fn bind(mut query: clickhouse::query::Query, params: &[Param]) -> clickhouse::query::Query {
    for p in params {
        query = match p {
            Param::Seconds(s) => query.bind(*s),
            Param::Id(id) => query.bind(id.as_str()),
        };
    }
    query
}

/// The touches of `[from, to)` whose id is above `after`.
#[derive(Debug, Clone)]
pub struct Window {
    pub from: u32,
    pub to: u32,
    pub after: Option<String>,
}

impl Window {
    /// `touches WHERE …` for this window's ids after the cursor, up to
    /// `last` (inclusive) when given.
    fn touches(&self, last: Option<&str>) -> (String, Vec<Param>) {
        let mut sql = "touches WHERE touched_at >= toDateTime(?) AND touched_at < toDateTime(?)".to_owned();
        let mut params = vec![Param::Seconds(self.from), Param::Seconds(self.to)];
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
    fn progress_round_trips() {
        let p = Progress { batch: 7, from: 10, to: 20, cursor: Some("p\"1".into()), pending: 5 };
        let json = p.to_json();
        assert!(json.ends_with(",\"pending\":5}"), "{json}");
        assert_eq!(Progress::parse(7, &json).unwrap(), p);
        assert_eq!(p.pending_since(), 10);
        assert_eq!(Progress { cursor: None, ..p }.pending_since(), 20);
    }

    #[test]
    fn every_question_mark_has_its_parameter() {
        for after in [None, Some("a".to_owned())] {
            let window = Window { from: 0, to: 5, after };
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
