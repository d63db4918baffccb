//! DVC Pulse ingest: reads the contract topics with a consumer group and
//! writes every valid event exactly once into ClickHouse's raw tables;
//! invalid records go to the dead-letter topic with the reason.
//!
//! Layout: `consumer` (the poll thread and rebalances) hands records to
//! `partition` tasks (decode, batch), which write through `sink` (ClickHouse)
//! and `dead_letter` (Kafka), then report offsets back for commit. `rows`
//! maps events to table rows and hashes applicant IDs (`privacy`). The rules
//! that keep the exactly-once guarantee are code of their own, unit-tested
//! without a broker or ClickHouse: the batching loop over a narrow sink
//! (`partition::batch_loop`, with a property test of the commit rule), the
//! hand-over rule and the resume offset (`consumer`).

pub mod config;
mod consumer;
mod dead_letter;
mod lag;
pub mod membership;
mod partition;
pub mod privacy;
mod retry;
pub mod rows;
mod sink;
pub mod telemetry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use dvc_events::Stream;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use sink::CLUSTER_SAFE;

use crate::dead_letter::DeadLetters;
use crate::membership::Membership;
use crate::privacy::ApplicantHasher;
use crate::retry::Backoff;
use crate::sink::Writer;
use crate::telemetry::Metrics;

/// A partition task's report: everything below `next_offset` is written.
pub(crate) struct Commit {
    topic: Arc<str>,
    partition: i32,
    next_offset: i64,
}

/// What the poll thread and the partition tasks share.
pub(crate) struct Shared {
    config: Config,
    writer: Writer,
    dead_letters: DeadLetters,
    metrics: Metrics,
    membership: Arc<Membership>,
    hasher: ApplicantHasher,
    backoff: Backoff,
    commits: std::sync::mpsc::Sender<Commit>,
    /// Records handed to partition tasks and not yet decoded.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    stop: CancellationToken,
    fatal: Mutex<Option<anyhow::Error>>,
}

impl Shared {
    fn commit(&self, commit: Commit) {
        // The receiver lives as long as the consumer; after that nothing commits.
        let _ = self.commits.send(commit);
    }

    /// Stops the service with `error` (the first one wins).
    fn fail(&self, error: anyhow::Error) {
        let mut fatal = self.fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        fatal.get_or_insert(error);
        self.stop.cancel();
    }
}

/// Runs the service until `stop` fires (then drains and returns `Ok`) or a
/// fatal error occurs (returned).
pub async fn run(config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let hasher = ApplicantHasher::from_sources(config.applicant_key_file.as_deref(), config.applicant_key.as_deref())?;
    let metrics = Metrics::new();
    let backoff = Backoff::new(Duration::from_millis(config.retry_min_ms), Duration::from_millis(config.retry_max_ms));
    let client = config.clickhouse.client();
    let writer = Writer::new(client.clone(), config.insert_quorum.as_deref(), metrics.clone(), backoff);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} for /metrics", config.listen))?;
    let membership = Arc::new(Membership::new(config.session_timeout()));
    let http = tokio::spawn(telemetry::serve(listener, metrics.clone(), client, membership.clone(), stop.clone()));

    let tables: Vec<&str> = Stream::ALL.into_iter().map(rows::table_of).chain([sink::PROGRESS]).collect();
    tokio::select! {
        ready = writer.wait_ready(&tables) => ready?,
        () = stop.cancelled() => return Ok(()),
    }
    let dead_letters = DeadLetters::new(&config, metrics.clone(), backoff)?;
    let lag = tokio::spawn(lag::watch(config.clone(), metrics.clone(), stop.clone()));
    let (commits, commit_reports) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared {
        config,
        writer,
        dead_letters,
        metrics,
        membership,
        hasher,
        backoff,
        commits,
        queued: Arc::default(),
        stop: stop.clone(),
        fatal: Mutex::new(None),
    });
    shared.membership.subscribed(std::time::Instant::now());
    let (poll_shared, runtime) = (shared.clone(), tokio::runtime::Handle::current());
    let poll = std::thread::Builder::new()
        .name("kafka-poll".into())
        .spawn(move || consumer::run(poll_shared, runtime, commit_reports))?;
    let joined = tokio::task::spawn_blocking(move || poll.join()).await;
    stop.cancel();
    shared.dead_letters.flush(Duration::from_secs(5));
    if let Ok(Err(e)) = http.await {
        tracing::warn!(error = %e, "metrics endpoint failed");
    }
    if let Ok(Err(e)) = lag.await {
        tracing::warn!(error = %e, "the consumer-lag client failed");
    }
    let fatal = shared.fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(e) = fatal {
        return Err(e);
    }
    match joined {
        Ok(Ok(consumed)) => consumed,
        _ => anyhow::bail!("the Kafka poll thread panicked"),
    }
}
