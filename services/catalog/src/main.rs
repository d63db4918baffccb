//! `dvc-catalog`: publishes a procedure catalogue file (JSON Lines, one
//! entry per line; CONTRACT.md §8) to the catalogue topic, each entry keyed
//! `authority_code/procedure_code` and sent as written. Every line is checked
//! first: if any is invalid, each is named with its reason and nothing is
//! published. Prints a JSON summary on stdout; exits non-zero unless every
//! entry was acknowledged by the broker.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use dvc_events::topics;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// How long the broker may take to answer the topic check.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Publishes a procedure catalogue file to DVC Pulse's catalogue topic.
#[derive(Debug, Parser)]
#[command(version)]
struct Config {
    /// The catalogue: JSON Lines, one entry per line (`-` reads stdin).
    file: PathBuf,
    #[arg(long, env = "DVC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, env = "DVC_CATALOG_TOPIC", default_value = topics::CATALOG)]
    catalog_topic: String,
    /// Check every line and say how many entries there are; publish nothing.
    #[arg(long)]
    dry_run: bool,
    /// Extra librdkafka producer settings, `key=value`, repeatable (TLS,
    /// SASL, client id).
    #[arg(long = "kafka-option", value_parser = dvc_warehouse::runtime::key_value)]
    kafka_options: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> Result<()> {
    dvc_warehouse::runtime::init_tracing("info,librdkafka=warn,rdkafka=warn");
    let config = Config::parse();
    let mut text = String::new();
    if config.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading the catalogue from stdin")?;
    } else {
        text = std::fs::read_to_string(&config.file)
            .with_context(|| format!("reading the catalogue {}", config.file.display()))?;
    }
    let lines = match dvc_catalog::read(&text) {
        Ok(lines) => lines,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            bail!("{} invalid line(s) in {}: nothing was published", errors.len(), config.file.display());
        }
    };
    if config.dry_run {
        println!("{}", serde_json::json!({ "entries": lines.len(), "published": 0 }));
        return Ok(());
    }

    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers).set("acks", "all").set("enable.idempotence", "true");
    for (key, value) in &config.kafka_options {
        client.set(key, value);
    }
    let producer: FutureProducer = client.create().context("creating the Kafka producer")?;
    // A producer waits forever for a topic the broker does not create.
    let metadata = producer
        .client()
        .fetch_metadata(Some(&config.catalog_topic), METADATA_TIMEOUT)
        .with_context(|| format!("reaching the broker at {}", config.brokers))?;
    if metadata.topics().iter().all(|t| t.name() != config.catalog_topic || t.partitions().is_empty()) {
        bail!("topic {} does not exist on {}: create it first (make up does)", config.catalog_topic, config.brokers);
    }

    // Everything is queued first (waiting while the queue is full), then
    // every acknowledgement awaited.
    let mut deliveries = Vec::with_capacity(lines.len());
    for line in &lines {
        let mut record = FutureRecord::to(&config.catalog_topic).key(line.key.as_str()).payload(line.value.as_slice());
        loop {
            match producer.send_result(record) {
                Ok(delivery) => break deliveries.push((line, delivery)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => bail!(
                    "line {}: cannot queue the entry: {error}; entries before it may be published (publishing the \
                     file again is harmless)",
                    line.number
                ),
            }
        }
    }
    let mut failed = 0usize;
    for (line, delivery) in deliveries {
        let error = match delivery.await {
            Ok(Ok(_)) => continue,
            Ok(Err((error, _))) => error.to_string(),
            Err(_) => "the producer stopped first".to_owned(),
        };
        failed += 1;
        tracing::error!(line = line.number, key = %line.key, %error, "the broker did not acknowledge this entry");
    }
    println!(
        "{}",
        serde_json::json!({ "entries": lines.len(), "published": lines.len() - failed, "topic": config.catalog_topic })
    );
    if failed > 0 {
        bail!("{failed} of {} entries were not published; publishing the file again is harmless", lines.len());
    }
    Ok(())
}
