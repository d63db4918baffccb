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
use std::time::{Duration, Instant};

use dvc_events::Stream;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::dead_letter::Rejected;
use crate::rows::{CatalogRow, Coordinates, DossierRow, FeedbackRow, PaymentRow, PetitionRow, RawRow};
use crate::telemetry::{Metrics, TopicLabel};
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
        Stream::Petition => runtime.spawn(run::<PetitionRow>(shared, topic, partition, rx)),
        Stream::Catalog => runtime.spawn(run::<CatalogRow>(shared, topic, partition, rx)),
    };
    (tx, join)
}

/// The records of one write: their rows, the rejected ones, and the offsets
/// they span. A batch takes whole chunks: it may pass `max_rows` by up to
/// one chunk less one record.
pub struct Batch<T> {
    pub rows: Vec<T>,
    pub rejected: Vec<Rejected>,
    pub first_offset: i64,
    pub last_offset: Option<i64>,
    deadline: Option<tokio::time::Instant>,
}

impl<T> Batch<T> {
    fn new() -> Batch<T> {
        Batch { rows: Vec::new(), rejected: Vec::new(), first_offset: 0, last_offset: None, deadline: None }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }

    /// Adds a decoded record; the first one starts the batch's wait.
    fn add(&mut self, offset: i64, decoded: Result<T, Rejected>, max_wait: Duration) {
        if self.last_offset.is_none() {
            self.first_offset = offset;
            self.deadline = Some(tokio::time::Instant::now() + max_wait);
        }
        self.last_offset = Some(offset);
        match decoded {
            Ok(row) => self.rows.push(row),
            Err(rejected) => self.rejected.push(rejected),
        }
    }

    /// Empties it, keeping its allocations for the next batch.
    fn clear(&mut self) {
        self.rows.clear();
        self.rejected.clear();
        self.last_offset = None;
        self.deadline = None;
    }
}

/// Why a batch was left unwritten (and uncommitted).
#[derive(Debug, thiserror::Error)]
pub enum Unwritten {
    /// ClickHouse refused the insert: the service stops with the error.
    #[error(transparent)]
    Fatal(#[from] crate::sink::Fatal),
    /// Stopping while its dead letters were not acknowledged.
    #[error(transparent)]
    Stopped(#[from] crate::dead_letter::Unacknowledged),
}

/// Where a partition's batches go: all the batching loop needs of the
/// world, so that it runs in unit tests without Kafka or ClickHouse.
pub trait BatchSink<T>: Send + Sync + 'static {
    /// Writes a batch: its dead letters, acknowledged, then its rows in one
    /// insert; retries until done or a reason to stop.
    fn write(&self, batch: &mut Batch<T>) -> impl Future<Output = Result<(), Unwritten>> + Send;
    /// Reports that every record below `next_offset` is written (for the
    /// offset commit).
    fn written(&self, next_offset: i64);
}

/// When a batch is written: at `max_rows` records, or `max_wait` after its
/// first record.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: usize,
    pub max_wait: Duration,
}

type Flush<T> = std::pin::Pin<Box<dyn Future<Output = Result<Batch<T>, Unwritten>> + Send>>;

/// One partition's task: the batching loop over ClickHouse and the
/// dead-letter topic; a fatal error stops the service.
async fn run<T: RawRow>(shared: Arc<Shared>, topic: Arc<str>, partition: i32, rx: mpsc::UnboundedReceiver<Chunk>) {
    let Ok(at_partition) = u32::try_from(partition) else {
        shared.fail(anyhow::anyhow!("{topic}: the broker assigned partition {partition}, below zero"));
        return;
    };
    let limits = Limits { max_rows: shared.config.batch_max_rows as usize, max_wait: shared.config.batch_max_wait() };
    let consumed = shared.metrics.consumed.get_or_create(&Metrics::topic(&topic)).clone();
    let mut at = Coordinates { topic: topic.clone(), partition: at_partition, offset: 0 };
    let hasher = shared.hasher.clone();
    let decode = move |record: Record| {
        let decoded = u64::try_from(record.offset)
            .map_err(|_| format!("offset {} is below zero", record.offset))
            .and_then(|offset| {
                at.offset = offset;
                T::from_record(record.payload.as_deref().unwrap_or_default(), &at, &hasher).map_err(|e| e.to_string())
            });
        decoded.map_err(|reason| Rejected { offset: record.offset, key: record.key, payload: record.payload, reason })
    };
    let sink = Arc::new(Destination {
        shared: shared.clone(),
        label: Metrics::topic(&topic),
        topic: topic.clone(),
        partition,
        stored_partition: at_partition,
    });
    match batch_loop(sink, limits, decode, rx, &consumed).await {
        Ok(()) => {}
        Err(Unwritten::Fatal(fatal)) => {
            tracing::error!(topic = %topic, partition, error = %fatal, "stopping ingest");
            shared.fail(fatal.into());
        }
        Err(Unwritten::Stopped(why)) => tracing::warn!(topic = %topic, partition, "{why}"),
    }
}

/// The batching loop: batch n+1 fills while batch n is written. At most one
/// write is in flight, so offsets are reported in order, each only after its
/// batch is written; with a full batch waiting behind a write, the loop
/// stops reading (and the queue, then the partition, backs up). Returns when
/// the queue is closed and everything read is written, or with the reason a
/// batch was left unwritten (nothing after it is reported).
pub async fn batch_loop<T: Send + 'static, S: BatchSink<T>>(
    sink: Arc<S>,
    limits: Limits,
    mut decode: impl FnMut(Record) -> Result<T, Rejected>,
    mut rx: mpsc::UnboundedReceiver<Chunk>,
    consumed: &Counter,
) -> Result<(), Unwritten> {
    let mut filling = Batch::<T>::new();
    let mut spare: Option<Batch<T>> = None;
    let mut writing: Option<Flush<T>> = None;
    let mut closed = false;
    loop {
        let due = filling.len() >= limits.max_rows
            || closed
            || filling.deadline.is_some_and(|d| d <= tokio::time::Instant::now());
        if writing.is_none() && filling.last_offset.is_some() && due {
            let next = spare.take().unwrap_or_else(Batch::new);
            let batch = std::mem::replace(&mut filling, next);
            writing = Some(Box::pin(flush(sink.clone(), batch)));
        }
        if closed && writing.is_none() && filling.last_offset.is_none() {
            return Ok(());
        }
        let reading = !closed && filling.len() < limits.max_rows;
        tokio::select! {
            chunk = rx.recv(), if reading => match chunk {
                Some(mut chunk) => {
                    consumed.inc_by(chunk.len() as u64);
                    for record in std::mem::take(&mut chunk.records) {
                        let offset = record.offset;
                        filling.add(offset, decode(record), limits.max_wait);
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
                let mut batch = written?;
                batch.clear();
                spare = Some(batch);
            },
            () = tokio::time::sleep_until(filling.deadline.unwrap_or_else(tokio::time::Instant::now)),
                if filling.deadline.is_some() && writing.is_none() => {}
            // Unreachable: a loop that can neither read nor write has returned above.
            else => {}
        }
    }
}

/// Writes one batch, then reports its offsets. Gives the batch back for its
/// allocations.
async fn flush<T, S: BatchSink<T>>(sink: Arc<S>, mut batch: Batch<T>) -> Result<Batch<T>, Unwritten> {
    if let Some(last_offset) = batch.last_offset {
        sink.write(&mut batch).await?;
        sink.written(last_offset + 1);
    }
    Ok(batch)
}

/// A partition's batches go to the dead-letter topic and ClickHouse; its
/// offsets to the poll thread for commit.
struct Destination {
    shared: Arc<Shared>,
    topic: Arc<str>,
    partition: i32,
    /// `partition` as ClickHouse stores it.
    stored_partition: u32,
    label: TopicLabel,
}

impl<T: RawRow> BatchSink<T> for Destination {
    async fn write(&self, batch: &mut Batch<T>) -> Result<(), Unwritten> {
        let span = tracing::info_span!("batch", topic = %self.topic, partition = self.partition,
            first_offset = batch.first_offset, last_offset = batch.last_offset,
            rows = batch.rows.len(), rejected = batch.rejected.len());
        async {
            let started = Instant::now();
            if !batch.rejected.is_empty() {
                for r in &batch.rejected {
                    tracing::debug!(offset = r.offset, reason = %r.reason, "dead-lettering");
                }
                self.shared
                    .dead_letters
                    .send_all(&self.label, self.partition, &batch.rejected, &self.shared.stop)
                    .await?;
            }
            if !batch.rows.is_empty() {
                self.shared.writer.insert(&self.label, &mut batch.rows).await?;
            }
            // An offset below zero (never from a broker; its record was
            // dead-lettered above) records nothing: the commit covers it.
            if let Some(last) = batch.last_offset.and_then(|o| u64::try_from(o).ok()) {
                self.shared.writer.record_progress(&self.label, &self.topic, self.stored_partition, last).await?;
            }
            tracing::debug!(duration_ms = started.elapsed().as_millis() as u64, "batch written");
            Ok(())
        }
        .instrument(span)
        .await
    }

    fn written(&self, next_offset: i64) {
        self.shared.commit(Commit { topic: self.topic.clone(), partition: self.partition, next_offset });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use proptest::prelude::*;

    use super::*;
    use crate::dead_letter::Unacknowledged;

    /// A sink in memory. Rows are their records' offsets; a write takes
    /// `delays_ms[n]` (cycled) and the `fail_at`-th write fails as a stop
    /// with dead letters unacknowledged would. Every report checks the
    /// commit rule: everything below it is stored, once, in order.
    #[derive(Default)]
    struct Memory {
        stored: Mutex<Vec<i64>>,
        reported: Mutex<Vec<i64>>,
        writes: Mutex<usize>,
        delays_ms: Vec<u64>,
        fail_at: Option<usize>,
    }

    impl BatchSink<i64> for Memory {
        async fn write(&self, batch: &mut Batch<i64>) -> Result<(), Unwritten> {
            let n = {
                let mut writes = self.writes.lock().unwrap();
                *writes += 1;
                *writes - 1
            };
            if !self.delays_ms.is_empty() {
                tokio::time::sleep(Duration::from_millis(self.delays_ms[n % self.delays_ms.len()])).await;
            }
            if self.fail_at == Some(n) {
                return Err(Unacknowledged(batch.rejected.len()).into());
            }
            let mut offsets: Vec<i64> =
                batch.rows.iter().copied().chain(batch.rejected.iter().map(|r| r.offset)).collect();
            offsets.sort_unstable();
            self.stored.lock().unwrap().extend(offsets);
            Ok(())
        }

        fn written(&self, next_offset: i64) {
            let stored = self.stored.lock().unwrap();
            assert_eq!(*stored, (0..next_offset).collect::<Vec<_>>(), "reported {next_offset}");
            self.reported.lock().unwrap().push(next_offset);
        }
    }

    /// Offsets ending in 3 are rejected; the others are rows.
    fn decode(record: Record) -> Result<i64, Rejected> {
        if record.offset % 10 == 3 {
            Err(Rejected { offset: record.offset, key: None, payload: None, reason: "ends in 3".into() })
        } else {
            Ok(record.offset)
        }
    }

    fn chunk(offsets: std::ops::Range<i64>, queued: &Arc<AtomicUsize>) -> Chunk {
        Chunk::new(offsets.map(|offset| Record { offset, key: None, payload: None }).collect(), queued)
    }

    fn start(
        sink: &Arc<Memory>,
        limits: Limits,
    ) -> (mpsc::UnboundedSender<Chunk>, JoinHandle<Result<(), Unwritten>>, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = sink.clone();
        let task = tokio::spawn(async move { batch_loop(sink, limits, decode, rx, &Counter::default()).await });
        (tx, task, Arc::default())
    }

    const LIMITS: Limits = Limits { max_rows: 100, max_wait: Duration::from_millis(250) };

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_written_when_full_or_when_its_wait_is_over() {
        let sink = Arc::new(Memory::default());
        let (tx, task, queued) = start(&sink, LIMITS);
        for start in (0..250).step_by(50) {
            tx.send(chunk(start..start + 50, &queued)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*sink.reported.lock().unwrap(), [100, 200], "two full batches at once");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*sink.reported.lock().unwrap(), [100, 200, 250], "the rest after 250 ms");
        assert_eq!(queued.load(Ordering::Relaxed), 0, "a consumed chunk leaves the queued count");
        drop(tx);
        task.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn closing_the_queue_writes_what_it_holds_and_ends() {
        let sink = Arc::new(Memory::default());
        let (tx, task, queued) = start(&sink, Limits { max_rows: 1_000, max_wait: Duration::from_secs(3600) });
        tx.send(chunk(0..10, &queued)).unwrap();
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(*sink.reported.lock().unwrap(), [10]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_left_unwritten_is_not_reported_nor_anything_after_it() {
        let sink = Arc::new(Memory { fail_at: Some(1), delays_ms: vec![10], ..Memory::default() });
        let (tx, task, queued) = start(&sink, LIMITS);
        for start in (0..350).step_by(50) {
            tx.send(chunk(start..start + 50, &queued)).unwrap();
        }
        drop(tx);
        let ended = task.await.unwrap();
        // The second batch (100..200, ten of them rejected) failed.
        assert!(matches!(ended, Err(Unwritten::Stopped(Unacknowledged(10)))), "{ended:?}");
        assert_eq!(*sink.reported.lock().unwrap(), [100]);
        assert_eq!(*sink.stored.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_behind_a_write_stops_the_reading() {
        let sink = Arc::new(Memory { delays_ms: vec![1_000], ..Memory::default() });
        let (tx, task, queued) = start(&sink, LIMITS);
        for start in (0..1_000).step_by(50) {
            tx.send(chunk(start..start + 50, &queued)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // One batch written, the next full: the other 800 records stay queued.
        assert_eq!(queued.load(Ordering::Relaxed), 800);
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(sink.reported.lock().unwrap().last(), Some(&1_000));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the chunking, batch size, write times, arrival gaps and
        /// the write that fails: offsets are reported in order, each only
        /// when every record below it is stored (checked in `written`), and
        /// without a failure everything is stored once and reported.
        #[test]
        fn never_reports_past_an_unstored_record(
            chunks in prop::collection::vec(1usize..80, 1..20),
            gaps_ms in prop::collection::vec(0u64..400, 1..8),
            delays_ms in prop::collection::vec(0u64..300, 1..8),
            max_rows in 1usize..150,
            fail_at in prop::option::of(0usize..12),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
            let sink = Arc::new(Memory { delays_ms, fail_at, ..Memory::default() });
            let total: i64 = chunks.iter().sum::<usize>() as i64;
            let ended = runtime.block_on(async {
                let (tx, task, queued) = start(&sink, Limits { max_rows, max_wait: Duration::from_millis(250) });
                let mut next = 0;
                for (i, size) in chunks.iter().enumerate() {
                    let end = next + *size as i64;
                    if tx.send(chunk(next..end, &queued)).is_err() {
                        break; // the loop ended on the failure
                    }
                    next = end;
                    tokio::time::sleep(Duration::from_millis(gaps_ms[i % gaps_ms.len()])).await;
                }
                drop(tx);
                task.await.unwrap()
            });
            let reported = sink.reported.lock().unwrap().clone();
            prop_assert!(reported.windows(2).all(|w| w[0] < w[1]), "in order: {reported:?}");
            let writes = *sink.writes.lock().unwrap();
            match fail_at.filter(|at| *at < writes) {
                Some(at) => {
                    prop_assert!(ended.is_err());
                    prop_assert_eq!(reported.len(), at, "nothing reported from the failed batch on");
                }
                None => {
                    prop_assert!(ended.is_ok());
                    prop_assert_eq!(reported.last().copied(), Some(total));
                    prop_assert_eq!(sink.stored.lock().unwrap().clone(), (0..total).collect::<Vec<_>>());
                }
            }
        }
    }
}
