//! What the rollup has not counted yet, followed from one pending check to
//! the next. Each pending id's rows now and the rows the rollup counts for
//! it are read when the id is touched (and once more when the reading's end
//! passes the touch, its insert then over); the counted rows are read again
//! when a rollup batch lands (it may have counted the id since), and an id
//! leaves once the rollup's pending second passes its last touch. A check
//! therefore reads the touches since the one before it, not every pending
//! id: under 10 k events a second, hundreds to a few thousand ids instead
//! of tens of thousands (schemas/clickhouse/README.md, "The pending
//! check").
//!
//! Pure: the rates API does the reads ([`Tracked::reading`] says which) and
//! hands their rows to [`Tracked::apply`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use clickhouse::Row;
use dvc_warehouse::MEASURES;
use serde::{Deserialize, Serialize};

use crate::{Batch, DeltaRow, Snapshot};

/// An id touched since the second a check reads from (`TOUCHED_SQL`), with
/// its first and last touch there (Unix seconds) and how many.
#[derive(Row, Deserialize, Debug)]
pub(crate) struct Touched {
    pub id: String,
    pub first: u32,
    pub last: u32,
    pub touches: u64,
}

/// One id into the session's `pending_ids`.
#[derive(Row, Serialize)]
pub(crate) struct PendingId<'a> {
    pub id: &'a str,
}

/// One of an id's rows now (`pending_now_query`), by day and grouping
/// columns, its measures in `MEASURES` order.
#[derive(Row, Deserialize, Debug, Clone)]
pub(crate) struct IdRow {
    pub id: String,
    pub d: String,
    pub authority_code: String,
    pub agency_code: String,
    pub procedure_code: String,
    pub measures: Vec<i64>,
}

/// One of the rows the rollup counts for an id (`pending_counted_query`),
/// with the batch the read saw; the group of the progress rows has an empty
/// id and carries only the batch.
#[derive(Row, Deserialize, Debug)]
pub(crate) struct CountedRow {
    pub id: String,
    pub d: String,
    pub authority_code: String,
    pub agency_code: String,
    pub procedure_code: String,
    pub batch: u64,
    pub progress: String,
    pub measures: Vec<i64>,
}

impl CountedRow {
    fn into_id_row(self) -> IdRow {
        let CountedRow { id, d, authority_code, agency_code, procedure_code, measures, .. } = self;
        IdRow { id, d, authority_code, agency_code, procedure_code, measures }
    }
}

/// The rollup batch the counted rows of a read were read at.
pub(crate) fn seen_batch(counted: &[CountedRow]) -> Batch {
    Batch::latest(counted.iter().map(|r| (r.batch, r.progress.as_str())))
}

/// A pending id: its last touch seen (and, in the tail, its first touch
/// since the second read from and how many, when its rows were read), its
/// rows now and what the rollup counts for it at the tracked batch.
#[derive(Debug, Default)]
struct Entry {
    first: u32,
    last: u32,
    touches: u64,
    now: Vec<IdRow>,
    counted: Vec<IdRow>,
}

/// What one check reads, decided by [`Tracked::reading`].
#[derive(Debug)]
pub(crate) struct Reading {
    /// The rollup's latest batch, and its pending second (the first second
    /// whose touches it may not hold).
    pub batch: Batch,
    pub pending_since: u32,
    /// The touches from `from` on are read; the ids touched before `to`
    /// are tracked from then on (their rows read now, their inserts over),
    /// the others (the tail: an insert still running may be writing them)
    /// read when new or touched again, until `to` passes them.
    pub from: u32,
    pub to: u32,
    /// Whether the batch changed, so the counted rows of every id still
    /// pending are read again.
    pub recount: bool,
    /// Whether the rollup started afresh (a batch number or a pending second
    /// below the tracked one, or the same number with another progress):
    /// nothing tracked holds.
    pub reset: bool,
}

/// The ids pending at the tracked batch: every id touched at or after the
/// batch's pending second and before `cut`, with its rows, and the tail:
/// the ids touched only from `cut` on, with their rows at the last check.
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    batch: Batch,
    pending_since: u32,
    cut: u32,
    ids: HashMap<String, Entry>,
    tail: HashMap<String, Entry>,
}

impl Tracked {
    /// What the next check reads, given the rollup's latest batch, its
    /// pending second, and where a reading of `touches` may end (`end`:
    /// every touch before it is visible, with the state rows its insert
    /// wrote).
    pub fn reading(&self, batch: Batch, pending_since: u32, end: u32) -> Reading {
        let reset = batch.number < self.batch.number
            || (batch.number == self.batch.number && batch.progress != self.batch.progress)
            || pending_since < self.pending_since;
        // The touches before the pending second are in the rollup at this batch.
        let from = if reset { pending_since } else { self.cut.max(pending_since) };
        Reading { recount: batch != self.batch, reset, from, to: end.max(from), batch, pending_since }
    }

    /// `reading` when the rollup's rows of every id held were read again at
    /// `seen` (pending second `since`), a batch that landed during its
    /// reads; `None` when the rollup started afresh meanwhile (check again).
    pub fn landed(reading: Reading, seen: Batch, since: u32) -> Option<Reading> {
        if seen.number < reading.batch.number || since < reading.pending_since {
            return None;
        }
        Some(Reading { batch: seen, pending_since: since, recount: true, ..reading })
    }

    /// The ids whose rows now `reading` reads, of those `touched` since its
    /// `from`: every id touched before its `to` (their inserts are over:
    /// these rows are final until the next touch), and the tail's ids
    /// touched since the last check (new, or a touch more).
    pub fn now_ids<'a>(&self, reading: &Reading, touched: &'a [Touched]) -> Vec<&'a str> {
        touched.iter().filter(|t| self.read_now(reading, t)).map(|t| t.id.as_str()).collect()
    }

    fn read_now(&self, reading: &Reading, t: &Touched) -> bool {
        t.first < reading.to
            || reading.reset
            || self.tail.get(&t.id).is_none_or(|e| (e.first, e.last, e.touches) != (t.first, t.last, t.touches))
    }

    /// Every id tracked or in the tail: what a recount reads.
    pub fn held_ids(&self) -> impl Iterator<Item = &str> {
        self.ids.keys().chain(self.tail.keys()).map(String::as_str)
    }

    /// Takes in what `reading` read: the ids `touched` since its `from`,
    /// the rows `now` of [`Tracked::now_ids`], and the `counted` rows of
    /// those and, when `reading.recount`, of every id held, read at
    /// `reading.batch` (whose pending second is `reading.pending_since`).
    pub fn apply(&mut self, reading: Reading, touched: Vec<Touched>, now: Vec<IdRow>, counted: Vec<CountedRow>) {
        if reading.reset {
            self.ids.clear();
            self.tail.clear();
        }
        let mut now_by_id = by_id(now);
        let counted_by_id = by_id(counted.into_iter().filter(|r| !r.id.is_empty()).map(CountedRow::into_id_row));
        let counted = |id: &str| counted_by_id.get(id).cloned().unwrap_or_default();
        let mut tail = HashMap::new();
        let mut read = HashSet::new();
        for t in touched {
            let rows = now_by_id.remove(&t.id).unwrap_or_default();
            if t.first < reading.to {
                let entry = self.ids.entry(t.id.clone()).or_default();
                entry.last = entry.last.max(t.last);
                entry.now = rows;
                read.insert(t.id);
            } else if self.read_now(&reading, &t) {
                let entry =
                    Entry { first: t.first, last: t.last, touches: t.touches, now: rows, counted: counted(&t.id) };
                tail.insert(t.id.clone(), entry);
            } else if let Some(mut entry) = self.tail.remove(&t.id) {
                if reading.recount {
                    entry.counted = counted(&t.id);
                }
                tail.insert(t.id, entry);
            }
        }
        self.tail = tail;
        for (id, entry) in &mut self.ids {
            if reading.recount || read.contains(id) {
                entry.counted = counted(id);
            }
        }
        // Every touch before the pending second is in the rollup at this batch.
        self.ids.retain(|_, e| e.last >= reading.pending_since);
        self.tail.retain(|_, e| e.last >= reading.pending_since);
        self.batch = reading.batch;
        self.pending_since = reading.pending_since;
        self.cut = reading.to;
    }

    /// The pending ids' share of every figure at the tracked batch: their
    /// rows now less what the rollup counts for them, by day and grouping
    /// columns (none when nothing is pending).
    pub fn snapshot(&self) -> Snapshot {
        let pending = !(self.ids.is_empty() && self.tail.is_empty());
        let delta = pending.then(|| Arc::new(self.delta()));
        Snapshot { batch: self.batch.clone(), delta }
    }

    fn delta(&self) -> Vec<DeltaRow> {
        type Place<'a> = (&'a str, &'a str, &'a str, &'a str);
        let mut sums: BTreeMap<Place, Vec<i64>> = BTreeMap::new();
        // A tracked id touched again since the cut counts as the tail has it.
        let tracked = self.ids.iter().filter(|(id, _)| !self.tail.contains_key(*id)).map(|(_, e)| e);
        let rows = tracked
            .chain(self.tail.values())
            .flat_map(|e| e.now.iter().map(|r| (r, 1)).chain(e.counted.iter().map(|r| (r, -1))));
        for (r, sign) in rows {
            let place = (r.d.as_str(), r.authority_code.as_str(), r.agency_code.as_str(), r.procedure_code.as_str());
            let sum = sums.entry(place).or_insert_with(|| vec![0; MEASURES.len()]);
            for (s, v) in sum.iter_mut().zip(&r.measures) {
                *s += sign * v;
            }
        }
        sums.into_iter()
            .filter(|(_, m)| m.iter().any(|&v| v != 0))
            .map(|((d, authority_code, agency_code, procedure_code), measures)| DeltaRow {
                d: d.to_owned(),
                authority_code: authority_code.to_owned(),
                agency_code: agency_code.to_owned(),
                procedure_code: procedure_code.to_owned(),
                measures,
            })
            .collect()
    }
}

fn by_id(rows: impl IntoIterator<Item = IdRow>) -> HashMap<String, Vec<IdRow>> {
    let mut out: HashMap<String, Vec<IdRow>> = HashMap::new();
    for r in rows {
        out.entry(r.id.clone()).or_default().push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use dvc_warehouse::Progress;
    use proptest::prelude::*;

    use super::*;

    /// A world of ids, each with one row (a day and a value), touched
    /// second by second; a rollup that counts them in windows of touches;
    /// and the rates API's checks, which see every write at once (so the
    /// answer after a check is exact).
    #[derive(Default)]
    struct World {
        second: u32,
        rows: BTreeMap<u8, (u8, i64)>,
        touches: Vec<(u32, u8)>,
        /// The rollup: what it counts per id, its batch and progress.
        counted: BTreeMap<u8, (u8, i64)>,
        batch: u64,
        progress: Option<Progress>,
    }

    #[derive(Debug, Clone)]
    enum Step {
        Touch {
            id: u8,
            day: u8,
            value: i64,
        },
        Tick,
        /// A rollup batch: all of the window, or (`part`) its ids below 3.
        Batch {
            part: bool,
        },
        /// The rollup starts afresh (its tables emptied), a second later: a
        /// rollup started afresh is told apart by its batch number and
        /// progress (as the answer cache tells batches apart), and its
        /// first windows end later than the ones before.
        Restart,
        /// A check whose reading ends `lag` seconds before now; when
        /// `landing`, a batch lands between its reading of the touches and
        /// its reading of the rollup's rows.
        Check {
            lag: u32,
            landing: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..6u8, 0..3u8, 0..3i64).prop_map(|(id, day, value)| Step::Touch { id, day, value }),
            2 => Just(Step::Tick),
            2 => any::<bool>().prop_map(|part| Step::Batch { part }),
            1 => Just(Step::Restart),
            3 => (0..2u32, any::<bool>()).prop_map(|(lag, landing)| Step::Check { lag, landing }),
        ]
    }

    fn id_row(id: u8, (day, value): (u8, i64)) -> IdRow {
        let mut measures = vec![0; MEASURES.len()];
        measures[0] = 1;
        measures[1] = value;
        IdRow {
            id: format!("d{id}"),
            d: format!("2024-01-0{}", day + 1),
            authority_code: "G01".into(),
            agency_code: "a".into(),
            procedure_code: "p".into(),
            measures,
        }
    }

    impl World {
        fn batch_row(&self) -> Batch {
            self.progress.as_ref().map(|p| Batch { number: p.batch, progress: p.to_json() }).unwrap_or_default()
        }

        fn roll_up(&mut self, part: bool) {
            let last = self.progress.clone();
            let (from, after) = match &last {
                Some(p) if p.cursor.is_some() => (p.from, true),
                Some(p) => (p.to, false),
                None => (0, false),
            };
            let to = if after { last.as_ref().map_or(0, |p| p.to) } else { self.second };
            let ids: BTreeSet<u8> = self
                .touches
                .iter()
                .filter(|(s, id)| *s >= from && *s < to && (!part || *id < 3))
                .map(|t| t.1)
                .collect();
            for id in ids {
                self.counted.insert(id, self.rows[&id]);
            }
            self.batch += 1;
            let pending = last.as_ref().map_or(0, Progress::pending_since);
            let cursor = part.then(|| "d2".to_owned());
            self.progress = Some(Progress { batch: self.batch, from, to, cursor, pending });
        }

        /// One check of `tracked`, ending its reading `lag` seconds back,
        /// with a batch landing during it when `landing` (as the rates API
        /// reads: the rollup's rows again, for every id held).
        fn check(&mut self, tracked: &mut Tracked, lag: u32, landing: bool) -> Snapshot {
            let batch = self.batch_row();
            let since = self.progress.as_ref().map_or(0, Progress::pending_since);
            let reading = tracked.reading(batch.clone(), since, self.second.saturating_sub(lag));
            let mut touched: BTreeMap<u8, Touched> = BTreeMap::new();
            for &(s, id) in self.touches.iter().filter(|(s, _)| *s >= reading.from) {
                let t = touched.entry(id).or_insert(Touched { id: format!("d{id}"), first: s, last: s, touches: 0 });
                t.first = t.first.min(s);
                t.last = t.last.max(s);
                t.touches += 1;
            }
            let touched: Vec<Touched> = touched.into_values().collect();
            let read: BTreeSet<String> = tracked.now_ids(&reading, &touched).into_iter().map(str::to_owned).collect();
            let mut reading = reading;
            let mut counted_ids = read.clone();
            if reading.recount || landing {
                counted_ids.extend(tracked.held_ids().map(str::to_owned));
            }
            if landing {
                self.roll_up(false);
                let since = self.progress.as_ref().map_or(0, Progress::pending_since);
                reading = Tracked::landed(reading, self.batch_row(), since).expect("no restart during a check");
            }
            let batch = self.batch_row();
            let now = self.rows.iter().map(|(id, r)| id_row(*id, *r)).filter(|r| read.contains(&r.id)).collect();
            let mut counted: Vec<CountedRow> = self
                .counted
                .iter()
                .map(|(id, r)| id_row(*id, *r))
                .filter(|r| counted_ids.contains(&r.id))
                .map(|r| CountedRow {
                    id: r.id,
                    d: r.d,
                    authority_code: r.authority_code,
                    agency_code: r.agency_code,
                    procedure_code: r.procedure_code,
                    batch: 0,
                    progress: String::new(),
                    measures: r.measures,
                })
                .collect();
            counted.push(CountedRow {
                id: String::new(),
                d: String::new(),
                authority_code: String::new(),
                agency_code: String::new(),
                procedure_code: String::new(),
                batch: batch.number,
                progress: batch.progress.clone(),
                measures: vec![0; MEASURES.len()],
            });
            assert_eq!(seen_batch(&counted), batch);
            tracked.apply(reading, touched, now, counted);
            tracked.snapshot()
        }
    }

    /// Measures summed by place, places that add up to 0 dropped.
    fn by_place<'a>(rows: impl IntoIterator<Item = (&'a IdRow, i64)>) -> BTreeMap<String, Vec<i64>> {
        let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (r, sign) in rows {
            let sum = out.entry(r.d.clone()).or_insert_with(|| vec![0; MEASURES.len()]);
            for (s, v) in sum.iter_mut().zip(&r.measures) {
                *s += sign * v;
            }
        }
        out.retain(|_, m| m.iter().any(|&v| v != 0));
        out
    }

    proptest! {
        /// Whatever the order of touches, batches (whole windows or part of
        /// one), restarts of the rollup and checks, the rollup's sums plus
        /// the tracked delta are every id's rows now after each check.
        #[test]
        fn the_rollup_plus_the_tracked_delta_is_every_row_now(steps in prop::collection::vec(step(), 1..60)) {
            let mut world = World::default();
            let mut tracked = Tracked::default();
            for step in steps {
                match step {
                    Step::Touch { id, day, value } => {
                        world.rows.insert(id, (day, value));
                        world.touches.push((world.second, id));
                    }
                    Step::Tick => world.second += 1,
                    Step::Batch { part } => world.roll_up(part),
                    Step::Restart => {
                        world.second += 1;
                        world.counted.clear();
                        world.batch = 0;
                        world.progress = None;
                    }
                    Step::Check { lag, landing } => {
                        let snapshot = world.check(&mut tracked, lag, landing);
                        prop_assert_eq!(&snapshot.batch, &world.batch_row());
                        let sums: Vec<IdRow> = world.counted.iter().map(|(id, r)| id_row(*id, *r)).collect();
                        let delta: Vec<IdRow> = snapshot.delta.iter().flat_map(|d| d.iter()).map(|r| IdRow {
                            id: String::new(),
                            d: r.d.clone(),
                            authority_code: r.authority_code.clone(),
                            agency_code: r.agency_code.clone(),
                            procedure_code: r.procedure_code.clone(),
                            measures: r.measures.clone(),
                        }).collect();
                        let answer = by_place(sums.iter().map(|r| (r, 1)).chain(delta.iter().map(|r| (r, 1))));
                        let rows: Vec<IdRow> = world.rows.iter().map(|(id, r)| id_row(*id, *r)).collect();
                        prop_assert_eq!(answer, by_place(rows.iter().map(|r| (r, 1))));
                    }
                }
            }
        }
    }
}
