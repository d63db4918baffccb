//! DVC Pulse's ClickHouse side: how services connect (one set of flags for
//! all), which errors are worth retrying, and the migrate step that applies
//! `schemas/clickhouse/*.sql` in order.

mod config;
mod errors;
mod metrics;
mod migrate;
pub mod runtime;

pub use config::{ClickHouseArgs, flag_defaults};
pub use errors::{Retry, classify};
pub use metrics::{GroupBy, MEASURES, METRICS, Metric, MetricKind, Source, metric, pending_delta_query, range_query};
pub use migrate::{Migration, ServerVersion, migrate, migrate_to, migrations};
