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
