//! One task per assigned topic-partition: decodes its records in offset
//! order, batches them, and writes each batch (dead letters first, then one
//! ClickHouse insert) before asking for the offset commit.
//!
//! Guarantees: a batch's offset is committed only after its rows are in
//! ClickHouse and its dead letters are acknowledged; a batch is retried until
//! it succeeds, never skipped (dead letters are not retried once the service
//! stops: the batch is left uncommitted and read again after the restart).
//! Batch n+1 fills while batch n is written; with
//! a full batch behind a write the task stops reading, its records queue up,
//! and once the records queued across all partitions reach
//! `--queue-max-records` the poll loop pauses partitions: memory stays bounded
//! by two batches per partition plus that limit. Closing the queue (on
//! revocation or shutdown) makes the task write what it holds and exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dvc_events::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::dead_letter::Rejected;
use crate::rows::{Coordinates, DossierRow, FeedbackRow, PaymentRow, RawRow};
use crate::telemetry::Metrics;
use crate::{Commit, Shared};

/// One Kafka record, copied off the consumer.
#[derive(Debug)]
pub struct Record {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// Records travel from the poll thread in chunks: one wake-up per chunk, not
/// per record. A chunk counts its records in the shared `queued` total until
/// it is dropped (consumed or discarded), so memory stays bounded even when a
/// task is aborted with chunks in its queue.
#[derive(Debug)]
pub struct Chunk {
    records: Vec<Record>,
    counted: usize,
    queued: Arc<AtomicUsize>,
}

impl Chunk {
    pub fn new(records: Vec<Record>, queued: &Arc<AtomicUsize>) -> Chunk {
        let counted = records.len();
        queued.fetch_add(counted, Ordering::Relaxed);
        Chunk { records, counted, queued: queued.clone() }
    }

    pub fn len(&self) -> usize {
        self.counted
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.counted, Ordering::Relaxed);
    }
}

/// Records per chunk handed from the poll thread to a partition task.
pub const CHUNK: usize = 500;

/// Starts the task of one partition; it ends when the returned sender is dropped.
pub fn spawn(
    shared: Arc<Shared>,
    runtime: &tokio::runtime::Handle,
    stream: Stream,
    topic: Arc<str>,
    partition: i32,
) -> (mpsc::UnboundedSender<Chunk>, JoinHandle<()>) {
    // Unbounded: the poll thread bounds what is queued (Config::queue_max_records).
    let (tx, rx) = mpsc::unbounded_channel();
    let join = match stream {
        Stream::Dossier => runtime.spawn(run::<DossierRow>(shared, topic, partition, rx)),
        Stream::Payment => runtime.spawn(run::<PaymentRow>(shared, topic, partition, rx)),
        Stream::Feedback => runtime.spawn(run::<FeedbackRow>(shared, topic, partition, rx)),
    };
    (tx, join)
}

struct Batch<T> {
    rows: Vec<T>,
    rejected: Vec<Rejected>,
    first_offset: i64,
    last_offset: Option<i64>,
    deadline: Option<tokio::time::Instant>,
}

impl<T> Batch<T> {
    fn new() -> Batch<T> {
        Batch { rows: Vec::new(), rejected: Vec::new(), first_offset: 0, last_offset: None, deadline: None }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }
}

/// Why a batch was left unwritten (and uncommitted).
#[derive(Debug, thiserror::Error)]
enum Unwritten {
    /// ClickHouse refused the insert: the service stops with the error.
    #[error(transparent)]
    Fatal(#[from] crate::sink::Fatal),
    /// Stopping while its dead letters were not acknowledged.
    #[error(transparent)]
    Stopped(#[from] crate::dead_letter::Unacknowledged),
}

type Flush<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Batch<T>, Unwritten>> + Send>>;

/// The partition's loop: batch n+1 fills while batch n is written. At most
/// one write is in flight, so offsets are committed in order; with a full
/// batch waiting behind it, the task stops reading (and the queue, then the
/// partition, backs up).
async fn run<T: RawRow>(shared: Arc<Shared>, topic: Arc<str>, partition: i32, mut rx: mpsc::UnboundedReceiver<Chunk>) {
    let max_rows = shared.config.batch_max_rows as usize;
    let consumed = shared.metrics.consumed.get_or_create(&Metrics::topic(&topic)).clone();
    let mut at = Coordinates { topic: topic.clone(), partition: u32::try_from(partition).unwrap_or(0), offset: 0 };
    let mut filling = Batch::<T>::new();
    let mut spare: Option<Batch<T>> = None;
    let mut writing: Option<Flush<T>> = None;
    let mut closed = false;
    loop {
        let due =
            filling.len() >= max_rows || closed || filling.deadline.is_some_and(|d| d <= tokio::time::Instant::now());
        if writing.is_none() && filling.last_offset.is_some() && due {
            let next = spare.take().unwrap_or_else(Batch::new);
            let batch = std::mem::replace(&mut filling, next);
            writing = Some(Box::pin(flush(shared.clone(), topic.clone(), partition, batch)));
        }
        if closed && writing.is_none() && filling.last_offset.is_none() {
            return;
        }
        let reading = !closed && filling.len() < max_rows;
        tokio::select! {
            chunk = rx.recv(), if reading => match chunk {
                Some(mut chunk) => {
                    consumed.inc_by(chunk.len() as u64);
                    for record in std::mem::take(&mut chunk.records) {
                        add(&mut filling, record, &mut at, &shared);
                    }
                }
                None => closed = true,
            },
            written = async {
                match writing.as_mut() {
                    Some(write) => write.await,
                    None => std::future::pending().await,
                }
            }, if writing.is_some() => {
                writing = None;
                match written {
                    Ok(mut batch) => {
                        batch.rows.clear();
                        batch.rejected.clear();
                        batch.last_offset = None;
                        batch.deadline = None;
                        spare = Some(batch);
                    }
                    Err(Unwritten::Fatal(fatal)) => {
                        tracing::error!(topic = %topic, partition, error = %fatal, "stopping ingest");
                        shared.fail(fatal.into());
                        return;
                    }
                    Err(Unwritten::Stopped(why)) => {
                        tracing::warn!(topic = %topic, partition, "{why}");
                        return;
                    }
                }
            },
            () = tokio::time::sleep_until(filling.deadline.unwrap_or_else(tokio::time::Instant::now)),
                if filling.deadline.is_some() && writing.is_none() => {}
            // Unreachable: a task that can neither read nor write has returned above.
            else => {}
        }
    }
}

fn add<T: RawRow>(batch: &mut Batch<T>, record: Record, at: &mut Coordinates, shared: &Shared) {
    if batch.last_offset.is_none() {
        batch.first_offset = record.offset;
        batch.deadline = Some(tokio::time::Instant::now() + shared.config.batch_max_wait());
    }
    batch.last_offset = Some(record.offset);
    at.offset = u64::try_from(record.offset).unwrap_or(0);
    match T::from_record(record.payload.as_deref().unwrap_or_default(), at, &shared.hasher) {
        Ok(row) => batch.rows.push(row),
        Err(e) => batch.rejected.push(Rejected {
            offset: record.offset,
            key: record.key,
            payload: record.payload,
            reason: e.to_string(),
        }),
    }
}

/// Writes one batch: dead letters first (acknowledged), then one insert, then
/// reports the offset for commit. Gives the batch back for its allocations.
async fn flush<T: RawRow>(
    shared: Arc<Shared>,
    topic: Arc<str>,
    partition: i32,
    mut batch: Batch<T>,
) -> Result<Batch<T>, Unwritten> {
    let Some(last_offset) = batch.last_offset else {
        return Ok(batch);
    };
    let span = tracing::info_span!("batch", topic = %topic, partition, first_offset = batch.first_offset,
        last_offset, rows = batch.rows.len(), rejected = batch.rejected.len());
    async {
        let started = Instant::now();
        let label = Metrics::topic(&topic);
        if !batch.rejected.is_empty() {
            for r in &batch.rejected {
                tracing::debug!(offset = r.offset, reason = %r.reason, "dead-lettering");
            }
            shared.dead_letters.send_all(&label, partition, &batch.rejected, &shared.stop).await?;
        }
        if !batch.rows.is_empty() {
            shared.writer.insert(&label, &mut batch.rows).await?;
        }
        shared.commit(Commit { topic: topic.clone(), partition, next_offset: last_offset + 1 });
        tracing::debug!(duration_ms = started.elapsed().as_millis() as u64, "batch written");
        Ok::<(), Unwritten>(())
    }
    .instrument(span)
    .await?;
    Ok(batch)
}
