//! DVC Pulse's ClickHouse side: how services connect (one set of flags for
//! all), which errors are worth retrying, and the migrate step that applies
//! `schemas/clickhouse/*.sql` in order, then loads the reference data of
//! `schemas/reference/` (the working-day calendar and the directory of
//! authorities).

mod calendar;
mod cluster;
mod config;
mod directory;
mod errors;
mod metrics;
mod migrate;
mod progress;
pub mod reference;
pub mod runtime;

pub use calendar::{Calendar, CalendarDay, DayKind, FIRST_DAY, Holiday};
pub use cluster::{Cluster, Placement, placement};
pub use config::{ClickHouseArgs, flag_defaults};
pub use directory::{Directory, DirectoryRow, Unit, in_being};
pub use errors::{Retry, classify, until_session_free, when_session_free};
pub use metrics::{
    CREATE_PENDING_IDS, DROP_PENDING_IDS, GroupBy, MEASURES, METRICS, Metric, MetricKind, PENDING_IDS, Source,
    TOUCHED_SQL, catalog_query, metric, pending_counted_query, pending_delta_query, pending_now_query, pending_session,
};
pub use migrate::{Migration, ServerVersion, migrate, migrate_cluster, migrate_to, migrate_with, migrations};
pub use progress::{
    CLOCK_SQL, Clock, Progress, ProgressRow, RATES_PROGRESS_SQL, rates_progress, read_progress, window_end,
};
