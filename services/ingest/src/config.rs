//! Flags of the ingest service. Every flag has an environment variable and a
//! default for the local stack (CONTRACT.md §7).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dvc_events::{Stream, topics};
use dvc_warehouse::ClickHouseArgs;

/// Reads the contract topics and writes every valid event exactly once into ClickHouse.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "dvc-ingest", version, args_override_self = true)]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "DVC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Consumer group; instances with the same group share the partitions.
    #[arg(long, env = "DVC_INGEST_GROUP", default_value = "dvc-ingest")]
    pub group: String,
    /// Topic of dossier events.
    #[arg(long, env = "DVC_DOSSIER_TOPIC", default_value = topics::DOSSIER)]
    pub dossier_topic: String,
    /// Topic of payment events.
    #[arg(long, env = "DVC_PAYMENT_TOPIC", default_value = topics::PAYMENT)]
    pub payment_topic: String,
    /// Topic of feedback events.
    #[arg(long, env = "DVC_FEEDBACK_TOPIC", default_value = topics::FEEDBACK)]
    pub feedback_topic: String,
    /// Where rejected messages go, unchanged, with the reason in a header.
    #[arg(long, env = "DVC_DEAD_LETTER_TOPIC", default_value = topics::DEAD_LETTER)]
    pub dead_letter_topic: String,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    /// File holding the HMAC key for applicant IDs (at least 16 bytes).
    #[arg(long, env = "DVC_APPLICANT_KEY_FILE")]
    pub applicant_key_file: Option<PathBuf>,
    /// The HMAC key itself (prefer the key file; never pass it as a flag in production).
    #[arg(long, env = "DVC_APPLICANT_KEY", hide_env_values = true)]
    pub applicant_key: Option<String>,

    /// Insert a partition's batch once it holds this many events (at most
    /// 1,000,000: one insert must stay one ClickHouse block).
    #[arg(long, env = "DVC_BATCH_MAX_ROWS", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_max_rows: u32,
    /// ... or once its first event has waited this long (ms).
    #[arg(long, env = "DVC_BATCH_MAX_WAIT_MS", default_value_t = 250)]
    pub batch_max_wait_ms: u64,
    /// Records fetched but not yet decoded, across all partitions, before
    /// fetching pauses (bounds memory while ClickHouse is down or slow).
    #[arg(long, env = "DVC_QUEUE_MAX_RECORDS", default_value_t = 200_000)]
    pub queue_max_records: usize,
    /// First retry delay after a transient ClickHouse or Kafka failure (ms); doubles up to the max.
    #[arg(long, env = "DVC_RETRY_MIN_MS", default_value_t = 100)]
    pub retry_min_ms: u64,
    /// Longest delay between retries (ms).
    #[arg(long, env = "DVC_RETRY_MAX_MS", default_value_t = 5_000)]
    pub retry_max_ms: u64,
    /// How long a revoked partition may take to flush before it is let go (ms);
    /// keep it below the session timeout.
    #[arg(long, env = "DVC_REVOKE_TIMEOUT_MS", default_value_t = 20_000)]
    pub revoke_timeout_ms: u64,
    /// How long shutdown waits for the last batches to reach ClickHouse (ms);
    /// what is not written by then is read again after the restart.
    #[arg(long, env = "DVC_SHUTDOWN_TIMEOUT_MS", default_value_t = 30_000)]
    pub shutdown_timeout_ms: u64,
    /// Consumer-group session timeout (ms): a member that sends no heartbeat
    /// for this long is dropped from the group. A join that brings no
    /// assignment for twice this long is left and made again.
    #[arg(long, env = "DVC_KAFKA_SESSION_TIMEOUT_MS", default_value_t = 45_000,
          value_parser = clap::value_parser!(u64).range(1_000..=3_600_000))]
    pub session_timeout_ms: u64,
    /// Extra librdkafka consumer settings, `key=value`, repeatable
    /// (not `session.timeout.ms`: use --session-timeout-ms).
    #[arg(long = "kafka-option", value_parser = parse_option)]
    pub kafka_options: Vec<(String, String)>,

    /// Address of `/metrics` (Prometheus) and `/healthz`.
    #[arg(long, env = "DVC_INGEST_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("{s:?} is not key=value"))?;
    let key = key.trim();
    if key == "session.timeout.ms" {
        // The stuck-join watchdog must know the timeout the group uses.
        return Err("set the session timeout with --session-timeout-ms".to_owned());
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

impl Config {
    /// The topic each stream is read from.
    pub fn topic(&self, stream: Stream) -> &str {
        match stream {
            Stream::Dossier => &self.dossier_topic,
            Stream::Payment => &self.payment_topic,
            Stream::Feedback => &self.feedback_topic,
        }
    }

    /// The stream a topic carries.
    pub fn stream_of(&self, topic: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| self.topic(*s) == topic)
    }

    pub fn batch_max_wait(&self) -> Duration {
        Duration::from_millis(self.batch_max_wait_ms)
    }

    pub fn revoke_timeout(&self) -> Duration {
        Duration::from_millis(self.revoke_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }
}
