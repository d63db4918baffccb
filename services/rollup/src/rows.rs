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
/// per measure named in `[…]`, in that order, with `with_measures()` and
/// `measures()` to write and read them as an array of type `$array`.
macro_rules! measured {
    ($array:ty, [$($measure:ident),* $(,)?], $(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Row, Serialize, Deserialize)]
        pub struct $name {
            $(pub $field: $ty,)*
            $(pub $measure: i64,)*
        }

        impl $name {
            /// The measure columns, in order.
            pub const MEASURES: &'static [&'static str] = &[$(stringify!($measure)),*];

            /// The same row with measures `m`.
            pub fn with_measures(self, m: &$array) -> $name {
                let [$($measure),*] = *m;
                $name { $($measure,)* ..self }
            }

            pub fn measures(&self) -> $array {
                [$(self.$measure),*]
            }
        }
    };
}
pub(crate) use measured;

/// A row type with the rate measures ([`MEASURES`]).
macro_rules! with_measures {
    ($($row:tt)*) => {
        measured!(Measures, [
            dossier, full_online, online, closed_with_due, closed_on_time, digitized, resolved,
            resolved_result_digitized, vneid_verified, with_fee, with_fee_paid_online, succeeded, paid_online,
            paid_online_vnd, rated, satisfied, neutral, unsatisfied,
        ], $($row)*);
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
        RollupRow::with_kind(kind as i8, id, batch, place, published, m)
    }

    /// [`RollupRow::new`] with the kind's code.
    pub fn with_kind(kind: i8, id: String, batch: u64, place: &Place, published: i64, m: &Measures) -> RollupRow {
        RollupRow {
            kind,
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
