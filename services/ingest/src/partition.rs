//! One task per assigned topic-partition: decodes its records in offset
//! order, batches them, and writes each batch (dead letters first, then one
//! ClickHouse insert) before asking for the offset commit.
//!
//! Guarantees: a batch's offset is committed only after its rows are in
//! ClickHouse and its dead letters are acknowledged; a batch is retried until
//! it succeeds, never skipped. While a batch waits, the task stops reading its
//! queue, the queue fills, and the poll loop pauses the partition: memory stays
//! bounded by the batch size plus the queue length. Closing the queue (on
//! revocation or shutdown) makes the task write what it holds and exit.

use std::sync::Arc;
use std::time::Instant;

use dvc_events::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::dead_letter::Rejected;
use crate::metrics::Metrics;
use crate::rows::{Coordinates, DossierRow, FeedbackRow, PaymentRow, RawRow};
use crate::{Commit, Shared};

/// One Kafka record, copied off the consumer.
#[derive(Debug)]
pub struct Record {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// Starts the task of one partition; it ends when the returned sender is dropped.
pub fn spawn(
    shared: Arc<Shared>,
    runtime: &tokio::runtime::Handle,
    stream: Stream,
    topic: Arc<str>,
    partition: i32,
) -> (mpsc::Sender<Record>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(shared.config.partition_queue.max(1));
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

async fn run<T: RawRow>(shared: Arc<Shared>, topic: Arc<str>, partition: i32, mut rx: mpsc::Receiver<Record>) {
    let max_rows = shared.config.batch_max_rows as usize;
    let label = Metrics::topic(&topic);
    let consumed = shared.metrics.consumed.get_or_create(&label).clone();
    let mut at = Coordinates { topic: topic.clone(), partition: u32::try_from(partition).unwrap_or(0), offset: 0 };
    let mut batch = Batch::<T>::new();
    loop {
        let next = match batch.deadline {
            Some(deadline) => tokio::select! {
                r = rx.recv() => Some(r),
                () = tokio::time::sleep_until(deadline) => None,
            },
            None => Some(rx.recv().await),
        };
        let closed = match next {
            Some(Some(record)) => {
                consumed.inc();
                if batch.last_offset.is_none() {
                    batch.first_offset = record.offset;
                    batch.deadline = Some(tokio::time::Instant::now() + shared.config.batch_max_wait());
                }
                batch.last_offset = Some(record.offset);
                at.offset = u64::try_from(record.offset).unwrap_or(0);
                match T::from_record(record.payload.as_deref().unwrap_or_default(), &at, &shared.hasher) {
                    Ok(row) => batch.rows.push(row),
                    Err(e) => batch.rejected.push(Rejected {
                        offset: record.offset,
                        key: record.key,
                        payload: record.payload,
                        reason: e.to_string(),
                    }),
                }
                if batch.len() < max_rows {
                    continue;
                }
                false
            }
            Some(None) => true,
            None => false,
        };
        if let Err(fatal) = flush(&shared, &topic, partition, &mut batch).await {
            tracing::error!(topic = %topic, partition, error = %fatal, "stopping ingest");
            shared.fail(fatal.into());
            return;
        }
        if closed {
            return;
        }
    }
}

async fn flush<T: RawRow>(
    shared: &Shared,
    topic: &Arc<str>,
    partition: i32,
    batch: &mut Batch<T>,
) -> Result<(), crate::sink::Fatal> {
    let Some(last_offset) = batch.last_offset else {
        return Ok(());
    };
    let span = tracing::info_span!("batch", topic = %topic, partition, first_offset = batch.first_offset,
        last_offset, rows = batch.rows.len(), rejected = batch.rejected.len());
    async {
        let started = Instant::now();
        let label = Metrics::topic(topic);
        if !batch.rejected.is_empty() {
            for r in &batch.rejected {
                tracing::debug!(offset = r.offset, reason = %r.reason, "dead-lettering");
            }
            shared.dead_letters.send_all(&label, partition, &batch.rejected).await;
        }
        if !batch.rows.is_empty() {
            shared.writer.insert(&label, &mut batch.rows).await?;
        }
        shared.commit(Commit { topic: topic.clone(), partition, next_offset: last_offset + 1 });
        tracing::debug!(duration_ms = started.elapsed().as_millis() as u64, "batch written");
        Ok(())
    }
    .instrument(span)
    .await?;
    batch.rows.clear();
    batch.rejected.clear();
    batch.last_offset = None;
    batch.deadline = None;
    Ok(())
}
