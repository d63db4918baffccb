//! What the benchmarks share: fresh topics, a migrated database, and the
//! service binaries started as the operator would start them.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::{Context, Result};
use dvc_events::Stream;
use dvc_warehouse::ClickHouseArgs;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// A benchmark run's own topics (one per stream, plus dead letters) and database.
pub struct Run {
    pub name: String,
    pub topics: [String; 3],
    pub dead_letter: String,
    pub clickhouse: ClickHouseArgs,
}

impl Run {
    pub async fn create(prefix: &str, brokers: &str, partitions: i32, clickhouse: &ClickHouseArgs) -> Result<Run> {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let name = format!("{prefix}.{secs}");
        let topics = Stream::ALL.map(|s| format!("{name}.{}", s.name()));
        let dead_letter = format!("{name}.dead-letter");
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", brokers).create()?;
        let new: Vec<_> = topics
            .iter()
            .chain(std::iter::once(&dead_letter))
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        for r in admin.create_topics(&new, &AdminOptions::new()).await? {
            r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
        let clickhouse = clickhouse.with_database(name.replace(['.', '-'], "_"));
        dvc_warehouse::migrate(&clickhouse.server_client(), &clickhouse.database).await?;
        Ok(Run { name, topics, dead_letter, clickhouse })
    }

    /// `dvc-ingest` on this run's topics and database.
    pub fn spawn_ingest(&self, bin_dir: &Path, brokers: &str) -> Result<Child> {
        Command::new(bin_dir.join("dvc-ingest"))
            .args([
                format!("--brokers={brokers}"),
                format!("--group={}.ingest", self.name),
                format!("--dossier-topic={}", self.topics[0]),
                format!("--payment-topic={}", self.topics[1]),
                format!("--feedback-topic={}", self.topics[2]),
                format!("--dead-letter-topic={}", self.dead_letter),
                format!("--clickhouse-url={}", self.clickhouse.url),
                format!("--clickhouse-database={}", self.clickhouse.database),
                "--applicant-key=bench-key-0123456789abcdef".to_owned(),
                "--listen=127.0.0.1:0".to_owned(),
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .context("starting dvc-ingest (run `cargo build --release --workspace --bins`)")
    }

    pub async fn drop_database(&self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.clickhouse.database);
        let _ = self.clickhouse.server_client().query(&sql).execute().await;
    }
}
