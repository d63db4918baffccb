//! The Decision 766 service-quality index (docs/INDEX766.md): the versioned
//! rules of `schemas/reference/index766-*.csv`, the periods it is scored
//! over, the indicators' counts from what ClickHouse holds, and the scores,
//! ranks and bands made from them.

pub mod indicators;
pub mod period;
pub mod report;
pub mod rules;
pub mod score;
pub mod store;

pub use indicators::{CatalogRow, DossierCounts, PaymentCount, PeriodData, PetitionRow, UnitRef};
pub use period::{Period, PeriodKind};
pub use rules::{Group, Rule, RuleSet, Rules};
pub use score::{Count, Scorecard, Scored, as_points, points, ranks, scorecard};
