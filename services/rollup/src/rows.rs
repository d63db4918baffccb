//! The rows dvc-rollup reads and writes: one entity's finished row (its place
//! and its measures) and the rows of `rate_rollup`.

use clickhouse::Row;
use dvc_warehouse::MEASURES;
use serde::{Deserialize, Serialize};

/// What a touch names (`touches.entity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Dossier = 1,
    Payment = 2,
    Rating = 3,
}

impl Entity {
    pub const ALL: [Entity; 3] = [Entity::Dossier, Entity::Payment, Entity::Rating];

    pub fn from_code(code: u8) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| *e as u8 == code)
    }

    /// Its `rate_rollup.kind`.
    pub const fn kind(self) -> RowKind {
        match self {
            Entity::Dossier => RowKind::Dossier,
            Entity::Payment => RowKind::Payment,
            Entity::Rating => RowKind::Rating,
        }
    }
}

/// `rate_rollup.kind` (an `Enum8`, written as its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum RowKind {
    Rollup = 1,
    Dossier = 2,
    Payment = 3,
    Rating = 4,
    Progress = 5,
}

/// Declares a row type with the given leading fields followed by one `i64`
/// per measure, in `MEASURES` order, with `measures()` to read them.
macro_rules! with_measures {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Row, Serialize, Deserialize)]
        pub struct $name {
            $(pub $field: $ty,)*
            pub dossier: i64,
            pub full_online: i64,
            pub online: i64,
            pub closed_with_due: i64,
            pub closed_on_time: i64,
            pub digitized: i64,
            pub resolved: i64,
            pub resolved_result_digitized: i64,
            pub vneid_verified: i64,
            pub with_fee: i64,
            pub with_fee_paid_online: i64,
            pub succeeded: i64,
            pub paid_online: i64,
            pub paid_online_vnd: i64,
            pub rated: i64,
            pub satisfied: i64,
            pub neutral: i64,
            pub unsatisfied: i64,
        }

        impl $name {
            /// The same row with measures `m`.
            pub fn with_measures(self, m: &Measures) -> $name {
                $name {
                    dossier: m[0],
                    full_online: m[1],
                    online: m[2],
                    closed_with_due: m[3],
                    closed_on_time: m[4],
                    digitized: m[5],
                    resolved: m[6],
                    resolved_result_digitized: m[7],
                    vneid_verified: m[8],
                    with_fee: m[9],
                    with_fee_paid_online: m[10],
                    succeeded: m[11],
                    paid_online: m[12],
                    paid_online_vnd: m[13],
                    rated: m[14],
                    satisfied: m[15],
                    neutral: m[16],
                    unsatisfied: m[17],
                    ..self
                }
            }

            pub fn measures(&self) -> Measures {
                [
                    self.dossier, self.full_online, self.online, self.closed_with_due, self.closed_on_time,
                    self.digitized, self.resolved, self.resolved_result_digitized, self.vneid_verified,
                    self.with_fee, self.with_fee_paid_online, self.succeeded, self.paid_online,
                    self.paid_online_vnd, self.rated, self.satisfied, self.neutral, self.unsatisfied,
                ]
            }
        }
    };
}

/// One value per [`MEASURES`] column, in its order.
pub type Measures = [i64; MEASURES.len()];

/// Where a row is counted: its day (days since 1970-01-01, Vietnam's
/// calendar) and the grouping columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub day: u16,
    pub authority_code: String,
    pub agency_code: String,
    pub procedure_code: String,
    pub method: String,
}

with_measures! {
    /// One entity's finished row as its states give it now.
    Facts {
        entity: u8, id: String, day: u16, authority_code: String, agency_code: String, procedure_code: String,
        method: String,
    }
}

with_measures! {
    /// What `rate_rollup` holds for one (kind, id, batch, place), summed.
    Published {
        kind: i8, id: String, batch: u64, day: u16, authority_code: String, agency_code: String,
        procedure_code: String, method: String, published: i64,
    }
}

with_measures! {
    /// One row written to `rate_rollup`.
    RollupRow {
        kind: i8, id: String, batch: u64, day: u16, authority_code: String, agency_code: String,
        procedure_code: String, method: String, published: i64,
    }
}

impl Facts {
    pub fn place(&self) -> Place {
        place(self.day, &self.authority_code, &self.agency_code, &self.procedure_code, &self.method)
    }
}

impl Published {
    pub fn place(&self) -> Place {
        place(self.day, &self.authority_code, &self.agency_code, &self.procedure_code, &self.method)
    }
}

fn place(day: u16, authority_code: &str, agency_code: &str, procedure_code: &str, method: &str) -> Place {
    Place {
        day,
        authority_code: authority_code.to_owned(),
        agency_code: agency_code.to_owned(),
        procedure_code: procedure_code.to_owned(),
        method: method.to_owned(),
    }
}

impl RollupRow {
    /// A row of `kind` at `place` with `measures` (`published` separate).
    pub fn new(kind: RowKind, id: String, batch: u64, place: &Place, published: i64, m: &Measures) -> RollupRow {
        RollupRow {
            kind: kind as i8,
            id,
            batch,
            day: place.day,
            authority_code: place.authority_code.clone(),
            agency_code: place.agency_code.clone(),
            procedure_code: place.procedure_code.clone(),
            method: place.method.clone(),
            published,
            ..RollupRow::default()
        }
        .with_measures(m)
    }

    pub fn place(&self) -> Place {
        place(self.day, &self.authority_code, &self.agency_code, &self.procedure_code, &self.method)
    }
}

/// `-m`.
pub fn negate(m: &Measures) -> Measures {
    m.map(|v| -v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_fields_follow_the_table_order() {
        let names = <RollupRow as Row>::COLUMN_NAMES;
        assert_eq!(&names[names.len() - MEASURES.len()..], &MEASURES);
        let names = <Facts as Row>::COLUMN_NAMES;
        assert_eq!(&names[names.len() - MEASURES.len()..], &MEASURES);
        let m: Measures = std::array::from_fn(|i| i as i64 + 1);
        let place = Place { day: 1, ..Place::default() };
        assert_eq!(RollupRow::new(RowKind::Rollup, String::new(), 0, &place, 0, &m).measures(), m);
    }
}
