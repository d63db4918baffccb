//! The Kafka side: one poll thread owns the consumer, hands records to the
//! partition tasks, pauses partitions whose queue is full, and commits the
//! offsets the tasks report.
//!
//! Exactly-once hinges on rebalances, handled here:
//! - On assignment, each partition starts at max(committed offset, highest
//!   offset stored in ClickHouse + 1): rows that reached ClickHouse are never
//!   read again, even when the crash came before the commit; records that
//!   were only dead-lettered are covered by the commit.
//! - On revocation, the partition tasks write what they hold and report their
//!   offsets, which are committed synchronously before the partitions go;
//!   a task that cannot finish within the revoke timeout is aborted, and its
//!   records are read again by the next owner. A partition paused for
//!   backpressure is resumed before it goes (`release_all`).
//!
//! A join that leaves this instance without partitions when it should have
//! some is stuck (`membership`): the poll loop closes the consumer and starts
//! a new one, a new member with a fresh join, and `/healthz` fails meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dvc_events::Stream;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::lag;
use crate::membership::AfterEmpty;
use crate::partition::{self, CHUNK, Chunk, Record};
use crate::{Commit, Shared};

pub struct IngestContext {
    shared: Arc<Shared>,
    runtime: Handle,
    topics: Vec<String>,
    state: Mutex<State>,
}

struct State {
    assigned: HashMap<(Stream, i32), Assigned>,
    commits: Receiver<Commit>,
}

/// A partition this instance owns.
struct Assigned {
    topic: Arc<str>,
    queue: tokio::sync::mpsc::UnboundedSender<Chunk>,
    task: JoinHandle<()>,
    /// Records polled since the last hand-over.
    pending: Vec<Record>,
    /// Chunks polled while the queue was full, in offset order.
    stash: VecDeque<Vec<Record>>,
}

/// Partial chunks wait at most this long on the poll thread.
const HAND_OVER_EVERY: Duration = Duration::from_millis(10);

pub type IngestConsumer = BaseConsumer<IngestContext>;

/// Consumes until the stop token fires, with a new consumer (a new group
/// member) each time the join gets stuck.
pub fn run(shared: Arc<Shared>, runtime: Handle, mut commits: Receiver<Commit>) -> anyhow::Result<()> {
    loop {
        let consumer = create(shared.clone(), runtime.clone(), commits)?;
        match poll_loop(&consumer) {
            Exit::Stopped => return Ok(()),
            Exit::Stuck => {
                // Nothing is assigned (stuck), so nothing is held or owed a commit.
                commits = consumer.context().take_commits();
                shared.metrics.rejoins.inc();
                drop(consumer); // leaves the group (as far as the coordinator answers)
                shared.membership.rejoined(Instant::now());
            }
        }
    }
}

enum Exit {
    Stopped,
    Stuck,
}

fn create(shared: Arc<Shared>, runtime: Handle, commits: Receiver<Commit>) -> anyhow::Result<IngestConsumer> {
    let config = &shared.config;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "roundrobin")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("queued.max.messages.kbytes", "32768")
        // Real time: do not let the broker hold a fetch for librdkafka's default 500 ms.
        .set("fetch.wait.max.ms", "100");
    for (key, value) in &config.kafka_options {
        client.set(key, value);
    }
    let topics = config.topics();
    let context = IngestContext {
        shared: shared.clone(),
        runtime,
        topics,
        state: Mutex::new(State { assigned: HashMap::new(), commits }),
    };
    let consumer: IngestConsumer = client.create_with_context(context)?;
    let topics: Vec<&str> = consumer.context().topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(brokers = %config.brokers, group = %config.group, ?topics, "subscribed");
    Ok(consumer)
}

/// Runs until the stop token fires, then writes what the partitions hold,
/// commits, and leaves the group; or until the join is stuck.
fn poll_loop(consumer: &IngestConsumer) -> Exit {
    let ctx = consumer.context();
    let stop = ctx.shared.stop.clone();
    let mut last_hand_over = std::time::Instant::now();
    while !stop.is_cancelled() {
        let idle = match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                ctx.route(consumer, &message);
                false
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries by itself");
                true
            }
            None => true,
        };
        if idle || last_hand_over.elapsed() >= HAND_OVER_EVERY {
            ctx.hand_over_all(consumer);
            ctx.commit_reported(consumer, CommitMode::Async);
            if ctx.stuck(consumer) {
                return Exit::Stuck;
            }
            last_hand_over = std::time::Instant::now();
        }
    }
    tracing::info!("stopping: writing the last batches");
    ctx.release_all(consumer, ctx.shared.config.shutdown_timeout());
    consumer.unsubscribe();
    Exit::Stopped
}

impl IngestContext {
    /// True when the group left this instance without partitions when it
    /// should not have (`membership`): an empty assignment in a group too
    /// small for an idle member, or a join with no assignment for too long.
    /// Whatever kept the join from completing (a coordinator still waiting
    /// for a dead leader, a lost response), a new member starts a fresh one.
    fn stuck(&self, consumer: &IngestConsumer) -> bool {
        let membership = &self.shared.membership;
        let now = Instant::now();
        let waited = membership.waited(now).unwrap_or_default();
        self.shared.metrics.unassigned_seconds.set(i64::try_from(waited.as_secs()).unwrap_or(i64::MAX));
        if membership.take_empty_to_check() {
            let group = self.group_size(consumer);
            if let Err(e) = &group {
                tracing::warn!(error = %e, "cannot describe the consumer group to check an empty assignment");
            }
            let group = group.ok();
            let (members, partitions) = (group.map(|g| g.0), group.map(|g| g.1));
            match membership.after_empty_assignment(group) {
                AfterEmpty::Idle => {
                    tracing::info!(
                        ?members,
                        ?partitions,
                        "no partition for this instance: the group has more members than partitions"
                    );
                    return false;
                }
                AfterEmpty::Rejoin => {
                    tracing::warn!(
                        ?members,
                        ?partitions,
                        "the group gave this instance no partition although it should have one (a group coordinator \
                         fault); leaving the group and joining again as a new member"
                    );
                    return true;
                }
                AfterEmpty::Wait => {}
            }
        }
        let due = membership.rejoin_due(now);
        if due {
            tracing::warn!(
                waited_s = waited.as_secs(),
                session_timeout_s = membership.session_timeout().as_secs_f64(),
                "no partition from the consumer group for longer than a join may take; leaving the group and \
                 joining again as a new member (check the broker's group coordinator if this repeats)"
            );
        }
        due
    }

    /// The group's members, as its coordinator lists them, and the
    /// partitions of the subscribed topics.
    fn group_size(&self, consumer: &IngestConsumer) -> KafkaResult<(usize, usize)> {
        let groups = consumer.fetch_group_list(Some(&self.shared.config.group), lag::BROKER_TIMEOUT)?;
        let members = groups.groups().iter().map(|g| g.members().len()).sum();
        let partitions = lag::partitions_of(consumer, &self.topics)?.count();
        Ok((members, partitions))
    }

    /// The commit reports' receiver, for the consumer that replaces this one.
    fn take_commits(&self) -> Receiver<Commit> {
        std::mem::replace(&mut self.state().commits, std::sync::mpsc::channel().1)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is only touched from the poll thread; a poisoned lock
        // means a panic there, and the data is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn route(&self, consumer: &IngestConsumer, message: &rdkafka::message::BorrowedMessage<'_>) {
        let Some(stream) = self.shared.config.stream_of(message.topic()) else {
            return;
        };
        let mut state = self.state();
        let Some(assigned) = state.assigned.get_mut(&(stream, message.partition())) else {
            return; // revoked meanwhile: the next owner reads it again
        };
        assigned.pending.push(Record {
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
        });
        if assigned.pending.len() >= CHUNK {
            self.hand_over(consumer, message.partition(), assigned);
        }
    }

    /// Gives the partition's pending records to its task, unless the records
    /// queued across all partitions reach `queue_max_records`: then they wait
    /// here and the partition is paused until the tasks catch up (ClickHouse
    /// down or slower than Kafka). Pausing is for real backpressure only:
    /// resuming makes librdkafka fetch again what it had prefetched.
    fn hand_over(&self, consumer: &IngestConsumer, partition: i32, assigned: &mut Assigned) {
        let was_paused = !assigned.stash.is_empty();
        if !assigned.pending.is_empty() {
            let records = std::mem::replace(&mut assigned.pending, Vec::with_capacity(CHUNK));
            assigned.stash.push_back(records);
        }
        let queued = self.shared.queued.load(Ordering::Relaxed);
        let going =
            chunks_to_hand_over(queued, self.shared.config.queue_max_records, assigned.stash.iter().map(Vec::len));
        for records in assigned.stash.drain(..going).collect::<Vec<_>>() {
            if assigned.queue.send(Chunk::new(records, &self.shared.queued)).is_err() {
                // The task ended on a fatal error; the stop token is set.
                assigned.stash.clear();
                break;
            }
        }
        let paused = !assigned.stash.is_empty();
        if paused != was_paused {
            self.set_paused(consumer, &assigned.topic, partition, paused);
        }
    }

    fn hand_over_all(&self, consumer: &IngestConsumer) {
        let mut state = self.state();
        for ((_, partition), assigned) in state.assigned.iter_mut() {
            if !assigned.pending.is_empty() || !assigned.stash.is_empty() {
                self.hand_over(consumer, *partition, assigned);
            }
        }
    }

    fn set_paused(&self, consumer: &IngestConsumer, topic: &str, partition: i32, paused: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let result = if paused { consumer.pause(&tpl) } else { consumer.resume(&tpl) };
        match result {
            Ok(()) if paused => {
                self.shared.metrics.paused_partitions.inc();
                tracing::debug!(topic, partition, "paused: its batch is not written yet");
            }
            Ok(()) => {
                self.shared.metrics.paused_partitions.dec();
                tracing::debug!(topic, partition, "resumed");
            }
            Err(e) => tracing::warn!(topic, partition, paused, error = %e, "pause/resume failed"),
        }
    }

    /// Commits the offsets the partition tasks reported since the last call.
    fn commit_reported(&self, consumer: &IngestConsumer, mode: CommitMode) {
        let mut latest: HashMap<(Arc<str>, i32), i64> = HashMap::new();
        for c in self.state().commits.try_iter() {
            let next = latest.entry((c.topic, c.partition)).or_insert(c.next_offset);
            *next = (*next).max(c.next_offset);
        }
        if latest.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in &latest {
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
                tracing::warn!(%topic, partition, error = %e, "bad offset to commit");
            }
        }
        if let Err(e) = consumer.commit(&tpl, mode) {
            // Not fatal: ClickHouse holds the position for inserted rows.
            tracing::warn!(error = %e, "offset commit failed; the next commit covers it");
        }
    }

    fn assign(&self, consumer: &IngestConsumer, offered: &TopicPartitionList) {
        let committed = match consumer.committed_offsets(offered.clone(), Duration::from_secs(10)) {
            Ok(tpl) => tpl,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read committed offsets; resuming from ClickHouse alone");
                TopicPartitionList::new()
            }
        };
        let mut start = TopicPartitionList::new();
        let mut spawned = Vec::new();
        for stream in Stream::ALL {
            let topic = self.shared.config.topic(stream);
            let partitions: Vec<i32> = offered.elements_for_topic(topic).iter().map(|e| e.partition()).collect();
            if partitions.is_empty() {
                continue;
            }
            let Some(stored) = self.stored_offsets(topic) else {
                return; // stopping
            };
            let topic: Arc<str> = Arc::from(topic);
            for partition in partitions {
                let committed = lag::committed_offset(&committed, &topic, partition);
                let stored = u32::try_from(partition).ok().and_then(|p| stored.get(&p)).copied();
                let offset = match resume_offset(committed, stored) {
                    Some(n) => Offset::Offset(n),
                    None => Offset::Beginning,
                };
                tracing::info!(topic = %topic, partition, ?committed, ?stored, ?offset, "assigned");
                if let Err(e) = start.add_partition_offset(&topic, partition, offset) {
                    tracing::error!(topic = %topic, partition, error = %e, "cannot set the start offset");
                    continue;
                }
                spawned.push((stream, topic.clone(), partition));
            }
        }
        if let Err(e) = consumer.assign(&start) {
            tracing::error!(error = %e, "assign failed");
            return;
        }
        let mut state = self.state();
        for (stream, topic, partition) in spawned {
            let (queue, task) = partition::spawn(self.shared.clone(), &self.runtime, stream, topic.clone(), partition);
            let pending = Vec::with_capacity(CHUNK);
            state
                .assigned
                .insert((stream, partition), Assigned { topic, queue, task, pending, stash: VecDeque::new() });
        }
        self.shared.metrics.assigned_partitions.set(state.assigned.len() as i64);
        if state.assigned.is_empty() {
            self.shared.membership.assigned_nothing(Instant::now());
        } else {
            self.shared.membership.assigned();
        }
    }

    /// The last offsets of `topic` stored whole (`Writer::stored_offsets`),
    /// waiting out a ClickHouse outage.
    /// `None` if the service stops meanwhile.
    fn stored_offsets(&self, topic: &str) -> Option<HashMap<u32, u64>> {
        let mut attempt = 0;
        loop {
            let result = self.runtime.block_on(async {
                tokio::select! {
                    r = self.shared.writer.stored_offsets(topic) => Some(r),
                    () = self.shared.stop.cancelled() => None,
                }
            })?;
            match result {
                Ok(stored) => return Some(stored),
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(topic, error = %e, attempt,
                        "cannot read stored offsets from ClickHouse; the partitions wait until it answers");
                    std::thread::sleep(self.shared.backoff.delay(attempt));
                }
            }
        }
    }

    /// Closes every partition queue, waits (up to `timeout`) for the tasks
    /// to write what they hold, and commits their offsets synchronously.
    /// A paused partition is resumed first: librdkafka keeps a pause across
    /// a revocation, so this instance, given the partition again, would
    /// never read it (its new state knows of no pause to lift).
    fn release_all(&self, consumer: &IngestConsumer, timeout: Duration) {
        let assigned: Vec<((Stream, i32), Assigned)> = self.state().assigned.drain().collect();
        self.shared.metrics.assigned_partitions.set(0);
        if assigned.is_empty() {
            return;
        }
        for ((_, partition), paused) in assigned.iter().filter(|(_, a)| !a.stash.is_empty()) {
            self.set_paused(consumer, &paused.topic, *partition, false);
        }
        let tasks: Vec<JoinHandle<()>> = assigned.into_iter().map(|(_, a)| a.task).collect();
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            for mut task in tasks {
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    tracing::warn!(
                        timeout_ms = timeout.as_millis() as u64,
                        "a partition did not finish its batch in time; its records will be read again"
                    );
                    task.abort();
                }
            }
        });
        self.commit_reported(consumer, CommitMode::Sync);
    }
}

impl ClientContext for IngestContext {}

impl ConsumerContext for IngestContext {
    fn rebalance(&self, consumer: &IngestConsumer, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            other => {
                if other != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    tracing::error!(error = ?other, "rebalance error; releasing all partitions");
                }
                self.shared.membership.waiting(Instant::now());
                self.release_all(consumer, self.shared.config.revoke_timeout());
                if let Err(e) = consumer.unassign() {
                    tracing::warn!(error = %e, "unassign failed");
                }
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::warn!(error = %e, partitions = offsets.count(), "offset commit failed");
        }
    }
}

/// How many of a partition's stashed chunks (their sizes, in order) go to
/// its task now, with `queued` records queued across all partitions and
/// `limit` at most: while the total stays within the limit. With nothing
/// queued one chunk always goes, even one larger than the limit, so a small
/// limit slows ingest but never wedges it.
fn chunks_to_hand_over(queued: usize, limit: usize, sizes: impl IntoIterator<Item = usize>) -> usize {
    let (mut total, mut going) = (queued, 0);
    for size in sizes {
        if total > 0 && total + size > limit {
            break;
        }
        total += size;
        going += 1;
    }
    going
}

/// Where an assigned partition resumes: after the last offset stored whole
/// (`stored`, from `ingest_progress`), or at the committed offset if that is
/// further (the commit can also run ahead of a progress row lost with its
/// process); `None` (the beginning) when neither is known.
fn resume_offset(committed: Option<i64>, stored: Option<u64>) -> Option<i64> {
    let after_stored = stored.and_then(|max| i64::try_from(max).ok()).map(|max| max + 1);
    committed.max(after_stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_limit_below_the_chunk_size_never_wedges_a_partition() {
        assert_eq!(chunks_to_hand_over(0, 100, [500, 500]), 1, "nothing queued: one chunk goes");
        assert_eq!(chunks_to_hand_over(1, 100, [500]), 0, "something queued: it waits");
        assert_eq!(chunks_to_hand_over(0, 10_000, [500; 30]), 20);
        assert_eq!(chunks_to_hand_over(9_500, 10_000, [500, 500]), 1);
        assert_eq!(chunks_to_hand_over(9_600, 10_000, [500]), 0);
        assert_eq!(chunks_to_hand_over(0, 10_000, []), 0);
    }

    #[test]
    fn a_partition_resumes_after_what_clickhouse_holds_or_the_commit() {
        assert_eq!(resume_offset(None, None), None, "from the beginning");
        assert_eq!(resume_offset(Some(5), None), Some(5));
        assert_eq!(resume_offset(None, Some(9)), Some(10));
        assert_eq!(resume_offset(Some(5), Some(9)), Some(10), "written, not yet committed");
        assert_eq!(resume_offset(Some(20), Some(9)), Some(20), "the last records were dead-lettered");
    }
}
