//! Synthetic portal traffic.
//!
//! - `catalog`: the simulated country and the seed figures it is calibrated to.
//! - `lifecycle`: dossiers moving through their statuses with payments and
//!   ratings (the calibrated model), and a test delivery with duplicates,
//!   shuffling and late events.
//! - `petition`: petitions about dossiers and agencies, their lifecycle and
//!   working-day deadlines.
//! - `timeline`: the model in time, as the simulator publishes it: arrivals on
//!   a diurnal curve, each event sent when it happens, with injected faults.
//! - `synthetic`: independent valid events, each with its own `event_id`, for
//!   load and fault tests and the ingest benchmark (expected counts are simply
//!   the number sent).

pub mod catalog;
pub mod lifecycle;
pub mod petition;
pub mod synthetic;
pub mod timeline;
