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
    /// Topic of petition events (contract 1.1).
    #[arg(long, env = "DVC_PETITION_TOPIC", default_value = topics::PETITION)]
    pub petition_topic: String,
    /// Topic of procedure catalogue entries (contract 1.1).
    #[arg(long, env = "DVC_CATALOG_TOPIC", default_value = topics::CATALOG)]
    pub catalog_topic: String,
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
    /// Extra librdkafka consumer settings, `key=value`, repeatable. Client
    /// settings (TLS, SASL, client id, sockets) also reach the dead-letter
    /// producer. Settings the exactly-once scheme fixes are refused.
    #[arg(long = "kafka-option", value_parser = parse_option)]
    pub kafka_options: Vec<(String, String)>,

    /// On a cluster with replicas: how many replicas of a shard must hold a
    /// batch before its insert returns and its offsets are committed
    /// (ClickHouse's `insert_quorum`): `auto` (a majority of the shard's
    /// replicas) or a number from 2. Unset: the replica that took the insert.
    /// Needs quorum inserts that run in parallel (`insert_quorum_parallel`,
    /// which ClickHouse 18.16 lacks: refused at start there).
    #[arg(long, env = "DVC_INSERT_QUORUM", value_parser = parse_quorum)]
    pub insert_quorum: Option<String>,

    /// Address of `/metrics` (Prometheus) and `/healthz`.
    #[arg(long, env = "DVC_INGEST_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
}

fn parse_quorum(s: &str) -> Result<String, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 2 => Ok(n.to_string()),
        _ if s.trim() == "auto" => Ok("auto".to_owned()),
        _ => Err(format!("{s:?} is neither `auto` nor a number of replicas from 2")),
    }
}

/// librdkafka settings `--kafka-option` may not change, and why.
pub const REFUSED_OPTIONS: [(&str, &str); 8] = [
    ("enable.auto.commit", "offsets are committed only after their records are stored"),
    ("enable.auto.offset.store", "offsets are committed only after their records are stored"),
    (
        "auto.offset.reset",
        "a partition with nothing stored or committed is read from its beginning, so nothing is skipped",
    ),
    (
        "partition.assignment.strategy",
        "the rebalance handler is eager (round-robin): a cooperative assignor would break it",
    ),
    ("group.protocol", "the rebalance handler is written for the classic group protocol"),
    ("session.timeout.ms", "use --session-timeout-ms: the stuck-join watchdog is measured in it"),
    ("group.id", "use --group"),
    ("bootstrap.servers", "use --brokers"),
];

/// Prefixes of the client settings (connection, security, identity) that
/// apply to every client of the service, not only to the consumer.
const CLIENT_OPTION_PREFIXES: [&str; 8] =
    ["security.", "ssl.", "sasl.", "client.", "socket.", "broker.", "reconnect.", "api.version"];

fn parse_option(s: &str) -> Result<(String, String), String> {
    let (key, value) = dvc_warehouse::runtime::key_value(s)?;
    if let Some((_, why)) = REFUSED_OPTIONS.iter().find(|(refused, _)| *refused == key) {
        return Err(format!("{key} cannot be set: {why}"));
    }
    Ok((key, value))
}

impl Config {
    /// The topic each stream is read from.
    pub fn topic(&self, stream: Stream) -> &str {
        match stream {
            Stream::Dossier => &self.dossier_topic,
            Stream::Payment => &self.payment_topic,
            Stream::Feedback => &self.feedback_topic,
            Stream::Petition => &self.petition_topic,
            Stream::Catalog => &self.catalog_topic,
        }
    }

    /// The topics read, one per stream.
    pub fn topics(&self) -> Vec<String> {
        Stream::ALL.iter().map(|s| self.topic(*s).to_owned()).collect()
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

    /// The `--kafka-option` settings every client takes (the dead-letter
    /// producer and the lag reader as well as the consumer).
    pub fn client_options(&self) -> impl Iterator<Item = &(String, String)> {
        self.kafka_options.iter().filter(|(key, _)| CLIENT_OPTION_PREFIXES.iter().any(|p| key.starts_with(p)))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(options: &[&str]) -> Result<Config, clap::Error> {
        let args = options.iter().map(|o| format!("--kafka-option={o}"));
        Config::try_parse_from(["dvc-ingest".to_owned()].into_iter().chain(args))
    }

    #[test]
    fn settings_the_exactly_once_scheme_fixes_are_refused_with_the_reason() {
        for (key, why) in REFUSED_OPTIONS {
            let error = parse(&[&format!("{key}=x")]).expect_err(key).to_string();
            assert!(error.contains(&format!("{key} cannot be set: {why}")), "{error}");
        }
        assert!(parse(&[" enable.auto.commit = true"]).is_err(), "spaces around the key change nothing");
        assert!(parse(&["fetch.min.bytes"]).expect_err("no value").to_string().contains("is not key=value"));
    }

    #[test]
    fn client_settings_reach_every_client_and_consumer_settings_only_the_consumer() {
        let config = parse(&[
            "security.protocol=SASL_SSL",
            "sasl.mechanism=SCRAM-SHA-512",
            "sasl.username=dvc",
            "ssl.ca.location=/etc/ca.pem",
            "client.id=ingest-1",
            "fetch.min.bytes=1024",
            "heartbeat.interval.ms=1000",
        ])
        .unwrap();
        let common: Vec<&str> = config.client_options().map(|(k, _)| k.as_str()).collect();
        assert_eq!(common, ["security.protocol", "sasl.mechanism", "sasl.username", "ssl.ca.location", "client.id"]);
        assert_eq!(config.kafka_options.len(), 7, "the consumer takes them all");
    }

    #[test]
    fn an_insert_quorum_is_auto_or_at_least_two_replicas() {
        let quorum = |value: &str| {
            Config::try_parse_from(["dvc-ingest", &format!("--insert-quorum={value}")]).map(|c| c.insert_quorum)
        };
        assert_eq!(quorum("auto").unwrap().as_deref(), Some("auto"));
        assert_eq!(quorum(" 3").unwrap().as_deref(), Some("3"));
        for refused in ["1", "0", "-2", "majority", ""] {
            let error = quorum(refused).expect_err(refused).to_string();
            assert!(error.contains("neither `auto` nor a number of replicas from 2"), "{error}");
        }
        assert_eq!(parse(&[]).unwrap().insert_quorum, None, "no quorum unless asked");
    }
}
