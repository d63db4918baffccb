//! Consumer lag per partition, from the broker: each partition's high
//! watermark minus the group's committed offset. A client of its own (no
//! subscription, so it never joins the group) measures it every
//! `LAG_EVERY`, so the lag shows on every instance, including one that holds
//! no partition: a group that stopped consuming shows as lag that grows.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::telemetry::{Metrics, PartitionLabel};

const LAG_EVERY: Duration = Duration::from_secs(10);
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Records behind the end of a partition: everything from the committed
/// offset (or, with none committed, from the oldest record kept) up to the
/// high watermark.
pub fn records_behind(committed: Option<i64>, low: i64, high: i64) -> i64 {
    (high - committed.unwrap_or(low).max(low)).max(0)
}

/// Measures the lag of `config`'s group until `stop`.
pub async fn watch(config: Config, metrics: Metrics, stop: CancellationToken) -> anyhow::Result<()> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers).set("group.id", &config.group);
    for (key, value) in config.client_options() {
        client.set(key, value);
    }
    let consumer: Arc<BaseConsumer> = Arc::new(client.create()?);
    let topics = config.topics();
    loop {
        let (consumer, topics, metrics) = (consumer.clone(), topics.clone(), metrics.clone());
        let measured = tokio::task::spawn_blocking(move || measure(&consumer, &topics, &metrics)).await?;
        if let Err(e) = measured {
            tracing::debug!(error = %e, "cannot measure the consumer lag now; trying again");
        }
        tokio::select! {
            () = tokio::time::sleep(LAG_EVERY) => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}

/// Every partition of `topics`, from the broker's metadata.
pub fn partitions_of<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    topics: &[String],
) -> KafkaResult<TopicPartitionList> {
    let mut partitions = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT)?;
        for t in metadata.topics() {
            for p in t.partitions() {
                partitions.add_partition(topic, p.id());
            }
        }
    }
    Ok(partitions)
}

/// The offset committed for `topic`/`partition` in `committed`, if any.
pub fn committed_offset(committed: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    committed.find_partition(topic, partition).and_then(|e| match e.offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    })
}

fn measure(consumer: &BaseConsumer, topics: &[String], metrics: &Metrics) -> KafkaResult<()> {
    let partitions = partitions_of(consumer, topics)?;
    let committed = consumer.committed_offsets(partitions.clone(), BROKER_TIMEOUT)?;
    for element in partitions.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, high) = consumer.fetch_watermarks(topic, partition, BROKER_TIMEOUT)?;
        let committed = committed_offset(&committed, topic, partition);
        let Ok(partition) = u32::try_from(partition) else { continue };
        let label = PartitionLabel { topic: topic.to_owned(), partition };
        metrics.lag.get_or_create(&label).set(records_behind(committed, low, high));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::records_behind;

    #[test]
    fn lag_counts_from_the_commit_or_from_the_oldest_record_kept() {
        assert_eq!(records_behind(Some(40), 0, 100), 60);
        assert_eq!(records_behind(None, 10, 100), 90);
        assert_eq!(records_behind(Some(5), 10, 100), 90, "a commit below the retained log counts from its start");
        assert_eq!(records_behind(Some(100), 0, 100), 0);
        assert_eq!(records_behind(Some(120), 0, 100), 0, "never negative");
    }
}
