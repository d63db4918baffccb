//! Synthetic portal traffic.
//!
//! `synthetic`: independent valid events, each with its own `event_id`, for
//! load and fault tests and the ingest benchmark (expected counts are simply
//! the number sent).

pub mod synthetic;
