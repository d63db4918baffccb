//! The dead-letter topic: a rejected record goes there unchanged (key and
//! value as received) with the reason and its source in headers
//! (CONTRACT.md §1). Sends are acknowledged before the source offset can be
//! committed, so a rejection is never lost; after a crash it may be sent
//! twice (at-least-once). The value may hold an applicant ID in clear, so the
//! topic needs the same access control as the source topics.

use std::time::Duration;

use dvc_events::topics::headers;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::retry::Backoff;
use crate::telemetry::{Metrics, TopicLabel};

/// One rejected record.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
}

/// Stopping with dead letters not acknowledged: their batch is not
/// committed, so its records are read (and rejected) again after the restart.
#[derive(Debug, thiserror::Error)]
#[error("stopping with {0} dead letter(s) not acknowledged; their batch is read again after the restart")]
pub struct Unacknowledged(pub usize);

/// The records of one [`DeadLetters::send_all`] call that wait for a retry,
/// counted in the gauge until the call ends, even when its task is aborted.
struct Waiting<'a> {
    gauge: &'a Gauge,
    counted: i64,
}

impl Waiting<'_> {
    fn set(&mut self, records: usize) {
        let records = i64::try_from(records).unwrap_or(i64::MAX);
        self.gauge.inc_by(records - self.counted);
        self.counted = records;
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gauge.dec_by(self.counted);
    }
}

#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    metrics: Metrics,
    backoff: Backoff,
}

impl DeadLetters {
    /// A producer to `config`'s dead-letter topic, with its client settings
    /// (TLS, SASL, client id).
    pub fn new(config: &Config, metrics: Metrics, backoff: Backoff) -> anyhow::Result<DeadLetters> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        for (key, value) in config.client_options() {
            client.set(key, value);
        }
        let producer: FutureProducer = client.create()?;
        Ok(DeadLetters { producer, topic: config.dead_letter_topic.clone(), metrics, backoff })
    }

    /// Sends every record and waits for all acknowledgements, retrying
    /// failed sends until they succeed or `stop` fires (a send already made
    /// is still awaited). While a retry waits, the records count in
    /// `dvc_ingest_dead_letters_unacknowledged` and `/healthz` fails.
    pub async fn send_all(
        &self,
        label: &TopicLabel,
        source_partition: i32,
        records: &[Rejected],
        stop: &CancellationToken,
    ) -> Result<(), Unacknowledged> {
        let mut pending: Vec<&Rejected> = records.iter().collect();
        let mut waiting = Waiting { gauge: &self.metrics.dead_letters_unacknowledged, counted: 0 };
        let mut attempt = 0;
        while !pending.is_empty() {
            // Enqueue everything first, then wait: the sends travel together.
            let deliveries: Vec<_> =
                pending.iter().map(|r| (*r, self.enqueue(&label.topic, source_partition, r))).collect();
            let mut failed = Vec::new();
            for (record, delivery) in deliveries {
                let outcome = match delivery {
                    Ok(future) => match future.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((e, _))) => Err(e.to_string()),
                        Err(_) => Err("producer dropped the delivery".to_owned()),
                    },
                    Err(e) => Err(e),
                };
                if let Err(error) = outcome {
                    tracing::warn!(topic = %label.topic, partition = source_partition, offset = record.offset, %error,
                        "dead letter not acknowledged; retrying before the offset is committed");
                    failed.push(record);
                }
            }
            self.metrics.dead_lettered.get_or_create(label).inc_by((pending.len() - failed.len()) as u64);
            pending = failed;
            waiting.set(pending.len());
            if !pending.is_empty() {
                attempt += 1;
                self.metrics.retries.get_or_create(label).inc_by(pending.len() as u64);
                tokio::select! {
                    () = tokio::time::sleep(self.backoff.delay(attempt)) => {}
                    () = stop.cancelled() => {}
                }
                if stop.is_cancelled() {
                    return Err(Unacknowledged(pending.len()));
                }
            }
        }
        Ok(())
    }

    fn enqueue(
        &self,
        source_topic: &str,
        source_partition: i32,
        r: &Rejected,
    ) -> Result<rdkafka::producer::DeliveryFuture, String> {
        let partition = source_partition.to_string();
        let offset = r.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header { key: headers::ERROR, value: Some(r.reason.as_str()) })
            .insert(Header { key: headers::SOURCE_TOPIC, value: Some(source_topic) })
            .insert(Header { key: headers::SOURCE_PARTITION, value: Some(partition.as_str()) })
            .insert(Header { key: headers::SOURCE_OFFSET, value: Some(offset.as_str()) });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = &r.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &r.payload {
            record = record.payload(payload.as_slice());
        }
        self.producer.send_result(record).map_err(|(e, _)| format!("cannot enqueue: {e}"))
    }

    /// Waits for queued sends (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "dead-letter producer did not flush");
        }
    }
}
