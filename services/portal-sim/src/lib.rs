//! Synthetic portal traffic.
//!
//! - `synthetic`: independent valid events, each with its own `event_id`, for
//!   load and fault tests and the ingest benchmark (expected counts are simply
//!   the number sent).
//! - `lifecycle`: dossiers moving through their statuses with payments and
//!   ratings, delivered with duplicates, shuffling and late events, for the
//!   rates tests.

pub mod lifecycle;
pub mod synthetic;
