//! What one batch writes, from what a rollup holds for the touched ids and
//! what their states say now. Pure: no I/O.
//!
//! Both rollups (`rate_rollup`, `index766_rollup`) keep, for every id, the
//! rows they counted for it, each at a place (where it is summed) with its
//! measures; [`settle`] is their one rule, and [`plan`] the rates' use of it.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::rows::{Entity, Facts, Published, RollupRow, RowKind};

/// A row a rollup holds for an id: where it counts, the batch that wrote it,
/// `published` summed (1 while counted) and its measures summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held<P, M> {
    pub place: P,
    pub batch: u64,
    pub published: i64,
    pub measures: M,
}

/// What a batch writes for the changed ids: each id's rows (the held ones
/// cancelled, published -1 at their own batch, and the new ones, published
/// 1 at this batch), and the change of the sums by place.
#[derive(Debug)]
pub struct Settled<K, P, M> {
    pub rows: Vec<(K, Held<P, M>)>,
    pub sums: BTreeMap<P, M>,
    pub changed: u64,
}

/// For every touched id: if the rows the rollup holds for it (`held`, by
/// id) differ from its rows now (`now`, by id), the rows that cancel the
/// held ones and count the new ones (written by `batch`), and their change
/// to the sums. An id's rows now without any measure are not counted.
pub fn settle<K, P, const N: usize>(
    batch: u64,
    touched: &[K],
    held: impl IntoIterator<Item = (K, Held<P, [i64; N]>)>,
    now: impl IntoIterator<Item = (K, P, [i64; N])>,
) -> Settled<K, P, [i64; N]>
where
    K: Hash + Eq + Clone,
    P: Ord + Clone,
{
    let mut held_by_id: HashMap<K, Vec<Held<P, [i64; N]>>> = HashMap::new();
    for (id, h) in held {
        held_by_id.entry(id).or_default().push(h);
    }
    let mut now_by_id: HashMap<K, Vec<(P, [i64; N])>> = HashMap::new();
    for (id, place, m) in now {
        now_by_id.entry(id).or_default().push((place, m));
    }
    let mut out = Settled { rows: Vec::new(), sums: BTreeMap::new(), changed: 0 };
    let add = |sums: &mut BTreeMap<P, [i64; N]>, place: &P, m: &[i64; N], sign: i64| {
        let sum = sums.entry(place.clone()).or_insert([0; N]);
        for (s, v) in sum.iter_mut().zip(m) {
            *s += sign * v;
        }
    };
    for id in touched {
        let before: Vec<Held<P, [i64; N]>> =
            held_by_id.remove(id).unwrap_or_default().into_iter().filter(|h| h.published != 0).collect();
        let mut after: Vec<(P, [i64; N])> =
            now_by_id.remove(id).unwrap_or_default().into_iter().filter(|(_, m)| m.iter().any(|&v| v != 0)).collect();
        after.sort_by(|a, b| a.0.cmp(&b.0));
        let mut counted: Vec<(&P, &[i64; N])> =
            before.iter().filter(|h| h.published == 1).map(|h| (&h.place, &h.measures)).collect();
        counted.sort_by(|a, b| a.0.cmp(b.0));
        let unchanged = counted.len() == before.len()
            && counted.len() == after.len()
            && counted.iter().zip(&after).all(|(c, a)| *c.0 == a.0 && *c.1 == a.1);
        if unchanged {
            continue;
        }
        out.changed += 1;
        for h in before {
            add(&mut out.sums, &h.place, &h.measures, -h.published);
            let cancel = Held { measures: h.measures.map(|v| -v), published: -h.published, ..h };
            out.rows.push((id.clone(), cancel));
        }
        for (place, measures) in after {
            add(&mut out.sums, &place, &measures, 1);
            out.rows.push((id.clone(), Held { place, batch, published: 1, measures }));
        }
    }
    out.sums.retain(|_, m| m.iter().any(|&v| v != 0));
    out
}

/// The rows of one batch of a rollup (for the rates, without its progress
/// rows) and how many ids changed.
#[derive(Debug)]
pub struct Plan<R> {
    pub rows: Vec<R>,
    pub changed: u64,
}

impl<K, P, const N: usize> Settled<K, P, [i64; N]> {
    /// The batch's rows: each id's row made by `row`, then the sums' change,
    /// each made by `sum`.
    pub fn into_plan<R>(self, row: impl Fn(K, Held<P, [i64; N]>) -> R, sum: impl Fn(&P, &[i64; N]) -> R) -> Plan<R> {
        let mut rows: Vec<R> = self.rows.into_iter().map(|(id, h)| row(id, h)).collect();
        rows.extend(self.sums.iter().map(|(place, m)| sum(place, m)));
        Plan { rows, changed: self.changed }
    }
}

/// [`settle`] for the rates: each touched dossier, payment and rating has
/// at most one row, its finished row.
pub fn plan(batch: u64, touched: &[(Entity, String)], published: Vec<Published>, facts: Vec<Facts>) -> Plan<RollupRow> {
    let touched: Vec<(i8, String)> = touched.iter().map(|(e, id)| (e.kind() as i8, id.clone())).collect();
    let held = published.into_iter().map(|p| {
        let row = Held { place: p.place(), batch: p.batch, published: p.published, measures: p.measures() };
        ((p.kind, p.id), row)
    });
    let now = facts
        .into_iter()
        .filter_map(|f| Some(((Entity::from_code(f.entity)?.kind() as i8, f.id.clone()), f.place(), f.measures())));
    settle(batch, &touched, held, now).into_plan(
        |(kind, id), h| RollupRow::with_kind(kind, id, h.batch, &h.place, h.published, &h.measures),
        |place, m| RollupRow::new(RowKind::Rollup, String::new(), 0, place, 0, m),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::rows::{Measures, Place};

    fn facts(id: &str, day: u16, agency: &str, m: &Measures) -> Facts {
        Facts {
            entity: Entity::Dossier as u8,
            id: id.to_owned(),
            day,
            agency_code: agency.to_owned(),
            ..Facts::default()
        }
        .with_measures(m)
    }

    /// What `rate_rollup` holds for the counted rows, as a batch reads it:
    /// summed by (kind, id, batch, place), rows that add up to 0 dropped.
    fn published(table: &[RollupRow]) -> Vec<Published> {
        let mut sums: BTreeMap<(i8, String, u64, Place), (i64, Measures)> = BTreeMap::new();
        for r in table.iter().filter(|r| r.kind != RowKind::Rollup as i8) {
            let sum = sums.entry((r.kind, r.id.clone(), r.batch, r.place())).or_insert((0, [0; 18]));
            sum.0 += r.published;
            for (s, v) in sum.1.iter_mut().zip(r.measures()) {
                *s += v;
            }
        }
        sums.into_iter()
            .filter(|(_, (p, _))| *p != 0)
            .map(|((kind, id, batch, place), (published, m))| {
                Published {
                    kind,
                    id,
                    batch,
                    day: place.day,
                    authority_code: place.authority_code,
                    agency_code: place.agency_code,
                    procedure_code: place.procedure_code,
                    method: place.method,
                    published,
                    ..Published::default()
                }
                .with_measures(&m)
            })
            .collect()
    }

    /// Measures summed by place, places that add up to 0 dropped.
    fn by_place(rows: impl IntoIterator<Item = (Place, Measures)>) -> BTreeMap<Place, Measures> {
        let mut out: BTreeMap<Place, Measures> = BTreeMap::new();
        for (place, m) in rows {
            let sum = out.entry(place).or_insert([0; 18]);
            for (s, v) in sum.iter_mut().zip(m) {
                *s += v;
            }
        }
        out.retain(|_, m| m.iter().any(|&v| v != 0));
        out
    }

    fn rollup(table: &[RollupRow]) -> BTreeMap<Place, Measures> {
        by_place(table.iter().filter(|r| r.kind == RowKind::Rollup as i8).map(|r| (r.place(), r.measures())))
    }

    #[test]
    fn a_moved_dossier_is_cancelled_where_it_was_and_counted_where_it_is() {
        let mut m = [0; 18];
        m[0] = 1;
        m[2] = 1;
        let touched = vec![(Entity::Dossier, "d1".to_owned())];
        let first = plan(1, &touched, vec![], vec![facts("d1", 10, "a", &m)]);
        assert_eq!((first.changed, first.rows.len()), (1, 2), "{:?}", first.rows);
        let again = plan(2, &touched, published(&first.rows), vec![facts("d1", 10, "a", &m)]);
        assert_eq!((again.changed, again.rows.len()), (0, 0), "an unchanged row writes nothing");
        let moved = plan(2, &touched, published(&first.rows), vec![facts("d1", 13, "a", &m)]);
        assert_eq!(moved.changed, 1);
        let table: Vec<RollupRow> = first.rows.into_iter().chain(moved.rows).collect();
        let live = published(&table);
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].day, live[0].batch, live[0].published), (13, 2, 1));
        let day13 = Place { day: 13, agency_code: "a".into(), ..Place::default() };
        assert_eq!(rollup(&table), BTreeMap::from([(day13, m)]));
    }

    #[test]
    fn a_row_without_a_measure_is_not_counted() {
        let touched = vec![(Entity::Dossier, "p1".to_owned())];
        let none = plan(1, &touched, vec![], vec![facts("p1", 0, "a", &[0; 18])]);
        assert_eq!((none.changed, none.rows.len()), (0, 0));
    }

    proptest! {
        /// Whatever the order and repetition of changes, after every batch
        /// the rollup is the sum of the ids' current rows, each id has at
        /// most one counted row, and a batch repeated writes nothing.
        #[test]
        fn the_rollup_is_always_the_sum_of_the_current_rows(
            steps in prop::collection::vec(
                prop::collection::vec((0..6u8, 0..3u16, 0..2u8, 0..3i64, any::<bool>()), 1..6),
                1..12,
            )
        ) {
            let mut table: Vec<RollupRow> = Vec::new();
            let mut current: BTreeMap<String, Facts> = BTreeMap::new();
            for (batch, changes) in steps.iter().enumerate() {
                let mut touched = Vec::new();
                for &(id, day, agency, value, present) in changes {
                    let id = format!("d{id}");
                    let mut m = [0; 18];
                    m[0] = i64::from(present);
                    m[1] = value * i64::from(present);
                    current.insert(id.clone(), facts(&id, day, &format!("a{agency}"), &m));
                    touched.push((Entity::Dossier, id));
                }
                touched.sort();
                touched.dedup();
                let now: Vec<Facts> = touched.iter().map(|(_, id)| current[id].clone()).collect();
                let out = plan(batch as u64 + 1, &touched, published(&table), now.clone());
                table.extend(out.rows);
                prop_assert_eq!(rollup(&table), by_place(current.values().map(|f| (f.place(), f.measures()))));
                let live = published(&table);
                let mut ids: Vec<&str> = live.iter().map(|p| p.id.as_str()).collect();
                let n = ids.len();
                ids.dedup();
                prop_assert_eq!(ids.len(), n, "one counted row per id");
                prop_assert!(live.iter().all(|p| p.published == 1));
                let repeated = plan(batch as u64 + 2, &touched, live, now);
                prop_assert_eq!(repeated.rows.len(), 0, "a batch read twice writes nothing more");
            }
        }
    }
}
