//! The Kafka side of the simulator: a threaded librdkafka producer, keyed by
//! dossier, that counts what it sent and what the broker refused. Messages
//! never expire in the producer: a slow or restarting broker holds traffic
//! back (the queue is bounded, so the simulator waits) instead of losing it.
//! Only a stop bounds the wait: what is still unacknowledged after the flush
//! timeout is dropped and counted as `failed`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dvc_events::Stream;
use dvc_portal_sim::timeline::{Outgoing, Sending};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use serde::Serialize;

/// Delivery reports, counted.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result
            && self.failed.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::error!(%error, "the broker refused a message (further failures are only counted)");
        }
    }
}

/// Messages handed to the producer, by stream and kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sent {
    pub total: u64,
    pub dossier: u64,
    pub payment: u64,
    pub feedback: u64,
    pub petition: u64,
    pub catalog: u64,
    pub duplicates: u64,
    pub malformed: u64,
    /// Messages the broker did not acknowledge (known once flushed).
    pub failed: u64,
}

pub struct Publisher {
    producer: ThreadedProducer<Deliveries>,
    /// The topic of each stream, in `Stream::ALL` order.
    topics: [String; 5],
    sent: Sent,
}

impl Publisher {
    /// Connects and checks that the topics (one per stream, in
    /// `Stream::ALL` order) exist: the broker may not create them, and a
    /// producer would wait for them forever.
    pub fn new(brokers: &str, topics: [&str; 5]) -> Result<Publisher> {
        let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // The contract's partitioner (CONTRACT.md §1): the Java client's murmur2.
            .set("partitioner", "murmur2_random")
            .set("acks", "all")
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "100000")
            .set("message.timeout.ms", "0")
            .create_with_context(Deliveries::default())
            .context("creating the Kafka producer")?;
        for topic in topics {
            let metadata = producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(15))
                .with_context(|| format!("reaching the broker at {brokers}"))?;
            let found = metadata.topics().iter().find(|t| t.name() == topic);
            if found.is_none_or(|t| t.error().is_some() || t.partitions().is_empty()) {
                bail!("topic {topic} does not exist on {brokers}: create it first (make up does)");
            }
        }
        Ok(Publisher { producer, topics: topics.map(str::to_owned), sent: Sent::default() })
    }

    pub fn sent(&self) -> Sent {
        self.sent
    }

    /// Hands every message of `out` to the producer (waiting while its queue
    /// is full, unless `stop` is raised: then the rest is not sent) and empties
    /// `out`.
    pub fn send_all(&mut self, out: &mut Vec<Outgoing>, stop: &AtomicBool) {
        'messages: for o in out.drain(..) {
            let count = match o.message.stream {
                Stream::Dossier => &mut self.sent.dossier,
                Stream::Payment => &mut self.sent.payment,
                Stream::Feedback => &mut self.sent.feedback,
                Stream::Petition => &mut self.sent.petition,
                Stream::Catalog => &mut self.sent.catalog,
            };
            let topic = &self.topics[o.message.stream as usize];
            let mut record = BaseRecord::to(topic).key(o.message.key.as_str()).payload(o.message.value.as_slice());
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if stop.load(Ordering::Relaxed) =>
                    {
                        break 'messages;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((error, _)) => {
                        tracing::error!(%error, "could not queue a message");
                        self.sent.failed += 1;
                        continue 'messages;
                    }
                }
            }
            *count += 1;
            self.sent.total += 1;
            match o.kind {
                Sending::Duplicate => self.sent.duplicates += 1,
                Sending::Malformed => self.sent.malformed += 1,
                Sending::Event => {}
            }
        }
    }

    /// Waits up to `timeout` for every acknowledgement, drops what is still
    /// pending after it; the final counts.
    pub fn finish(mut self, timeout: Duration) -> Sent {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::error!(
                %error,
                pending = self.producer.in_flight_count(),
                "the broker did not acknowledge every message in time; dropping the rest"
            );
            self.producer.purge(PurgeConfig::default().queue().inflight());
            // The purged messages' delivery reports, counted as failures.
            let _ = self.producer.flush(Duration::from_secs(5));
        }
        self.sent.failed += self.producer.context().failed.load(Ordering::Relaxed);
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use dvc_portal_sim::synthetic::Message;
    use rdkafka::Message as _;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::mocking::MockCluster;
    use rdkafka::{Offset, TopicPartitionList};
    use time::OffsetDateTime;

    use super::*;

    /// Apache Kafka's own murmur2 vectors (the Java client's
    /// `UtilsTest.testMurmur2`): each key's hash, from which the Java
    /// client's default partitioner picks partition (hash & 0x7fffffff) % n.
    const JAVA_MURMUR2: [(&str, i32); 6] = [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        ("abc", 479_470_107),
    ];

    #[test]
    fn a_key_goes_to_the_partition_the_java_client_chooses() {
        const PARTITIONS: i32 = 4;
        let cluster = MockCluster::new(1).unwrap();
        let brokers = cluster.bootstrap_servers();
        let topics = Stream::ALL.map(|s| format!("murmur2.{}", s.name()));
        for topic in &topics {
            cluster.create_topic(topic, PARTITIONS, 1).unwrap();
        }
        let mut publisher = Publisher::new(&brokers, topics.each_ref().map(String::as_str)).unwrap();
        let mut out: Vec<Outgoing> = JAVA_MURMUR2
            .iter()
            .map(|(key, _)| Outgoing {
                at: OffsetDateTime::UNIX_EPOCH,
                kind: Sending::Event,
                message: Message { stream: Stream::Dossier, key: (*key).to_owned(), value: b"{}".to_vec() },
            })
            .collect();
        publisher.send_all(&mut out, &AtomicBool::new(false));
        assert_eq!(publisher.finish(Duration::from_secs(10)).failed, 0);

        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "murmur2").create().unwrap();
        let mut partitions = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            partitions.add_partition_offset(&topics[0], p, Offset::Beginning).unwrap();
        }
        consumer.assign(&partitions).unwrap();
        let mut landed = std::collections::BTreeMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while landed.len() < JAVA_MURMUR2.len() && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                landed.insert(String::from_utf8(m.key().unwrap().to_vec()).unwrap(), m.partition());
            }
        }
        for (key, hash) in JAVA_MURMUR2 {
            assert_eq!(landed.get(key), Some(&((hash & 0x7fff_ffff) % PARTITIONS)), "{key}");
        }
    }
}
