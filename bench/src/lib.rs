//! What the benchmarks share: fresh topics, a migrated database, and the
//! service binaries started as the operator would start them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dvc_events::Stream;
use dvc_warehouse::{ClickHouseArgs, GroupBy, METRICS};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use time::Date;

/// Where the local stack and the service binaries are (flags shared by the
/// benchmarks).
#[derive(clap::Args, Debug, Clone)]
pub struct StackArgs {
    #[arg(long, env = "DVC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// Folder of the release binaries.
    #[arg(long, env = "DVC_BIN_DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,
}

/// A benchmark run's own topics (one per stream, plus dead letters) and database.
pub struct Run {
    pub name: String,
    /// One topic per stream, in `Stream::ALL` order.
    pub topics: [String; 5],
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

    /// `--dossier-topic=…` and the like: this run's topic of every stream,
    /// for ingest and the simulator.
    pub fn topic_args(&self) -> Vec<String> {
        Stream::ALL.iter().zip(&self.topics).map(|(s, topic)| format!("{}={topic}", s.topic_flag())).collect()
    }

    /// `dvc-ingest` on this run's topics and database.
    pub fn spawn_ingest(&self, bin_dir: &Path, brokers: &str) -> Result<Child> {
        Command::new(bin_dir.join("dvc-ingest"))
            .args([
                format!("--brokers={brokers}"),
                format!("--group={}.ingest", self.name),
                format!("--dead-letter-topic={}", self.dead_letter),
                format!("--clickhouse-url={}", self.clickhouse.url),
                format!("--clickhouse-database={}", self.clickhouse.database),
                "--applicant-key=bench-key-0123456789abcdef".to_owned(),
                "--listen=127.0.0.1:0".to_owned(),
            ])
            .args(self.topic_args())
            .env("RUST_LOG", service_log())
            .spawn()
            .context("starting dvc-ingest (run `cargo build --release --workspace --bins`)")
    }

    /// `dvc-rollup` on this run's database (as the stack runs it beside
    /// ingest).
    pub fn spawn_rollup(&self, bin_dir: &Path) -> Result<Child> {
        let port = free_port()?;
        Command::new(bin_dir.join("dvc-rollup"))
            .args([
                format!("--listen=127.0.0.1:{port}"),
                format!("--clickhouse-url={}", self.clickhouse.url),
                format!("--clickhouse-database={}", self.clickhouse.database),
            ])
            .env("RUST_LOG", service_log())
            .spawn()
            .context("starting dvc-rollup (run `cargo build --release --workspace --bins`)")
    }

    /// The same topics with a database of its own on a ClickHouse cluster
    /// (`nodes`, every node's HTTP endpoint; migrated in the cluster layout),
    /// read and written through the first node.
    pub async fn on_cluster(&self, nodes: &[String], cluster: &str) -> Result<Run> {
        let first = nodes.first().context("a cluster of no nodes")?;
        let name = format!("{}.cluster", self.name);
        let clickhouse = ClickHouseArgs { url: first.clone(), ..self.clickhouse.clone() }
            .with_database(name.replace(['.', '-'], "_"));
        let clients: Vec<_> =
            nodes.iter().map(|url| ClickHouseArgs { url: url.clone(), ..clickhouse.clone() }.server_client()).collect();
        let cluster = dvc_warehouse::Cluster { name: cluster.to_owned() };
        dvc_warehouse::migrate_cluster(&clients, &cluster, &clickhouse.database, dvc_warehouse::Directory::official()?)
            .await?;
        Ok(Run { name, topics: self.topics.clone(), dead_letter: self.dead_letter.clone(), clickhouse })
    }

    pub async fn drop_database(&self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.clickhouse.database);
        let _ = self.clickhouse.server_client().query(&sql).execute().await;
    }
}

/// `dvc-rates-api` on a free loopback port over `clickhouse`; the child and
/// the port.
pub fn spawn_rates_api(bin_dir: &Path, clickhouse: &ClickHouseArgs, extra: &[&str]) -> Result<(Child, u16)> {
    let port = free_port()?;
    let child = Command::new(bin_dir.join("dvc-rates-api"))
        .args([
            format!("--listen=127.0.0.1:{port}"),
            format!("--clickhouse-url={}", clickhouse.url),
            format!("--clickhouse-database={}", clickhouse.database),
        ])
        .args(extra)
        .env("RUST_LOG", service_log())
        .spawn()
        .context("starting dvc-rates-api (run `cargo build --release --workspace --bins`)")?;
    Ok((child, port))
}

/// The `RUST_LOG` of the services a benchmark starts: `DVC_BENCH_LOG`, or
/// `warn`.
fn service_log() -> String {
    std::env::var("DVC_BENCH_LOG").unwrap_or_else(|_| "warn".into())
}

/// A loopback port free at the time of asking.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Assigns `consumer` every partition of `topics` (each with `partitions`),
/// starting at `offset`.
pub fn assign_all(consumer: &BaseConsumer, topics: &[impl AsRef<str>], partitions: i32, offset: Offset) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for topic in topics {
        for p in 0..partitions {
            list.add_partition_offset(topic.as_ref(), p, offset)?;
        }
    }
    Ok(consumer.assign(&list)?)
}

/// Sends `record`, polling for delivery reports while the producer's queue
/// is full.
pub fn send<K, P>(producer: &BaseProducer, mut record: BaseRecord<'_, K, P>)
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                producer.poll(std::time::Duration::from_millis(1));
            }
        }
    }
}

/// The `p`-th percentile (nearest rank) of ascending `sorted`; NaN if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU seconds (user + system) of a process, from /proc.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    let hz: f64 = String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?.trim().parse()?;
    Ok(ticks / hz)
}

/// A memory figure of a process from /proc/PID/status, in MiB: `VmRSS`
/// (resident now) or `VmHWM` (peak resident).
pub fn memory_mb(field: &str, pid: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line =
        status.lines().find(|l| l.split(':').next() == Some(field)).with_context(|| format!("{field} of {pid}"))?;
    let kb: f64 = line.split_whitespace().nth(1).context("a value in kB")?.parse()?;
    Ok(kb / 1024.0)
}

/// Publishes `events` synthetic contract events of run `run` (70% dossier, 20%
/// payment, 10% feedback; lz4 batches, as a portal's producer sends them)
/// to `topics`; events/s.
pub fn preload(brokers: &str, run: &str, topics: &[String; 5], events: u64) -> Result<f64> {
    let producer = bulk_producer(brokers)?;
    let start = Instant::now();
    for m in dvc_portal_sim::synthetic::mixed(run, events, 42) {
        let topic = &topics[m.stream as usize];
        send(&producer, BaseRecord::to(topic).key(&m.key).payload(&m.value));
    }
    producer.flush(Duration::from_secs(300))?;
    Ok(events as f64 / start.elapsed().as_secs_f64())
}

/// `dvc-rates-api` with `extra` flags over `clickhouse`, once it answers:
/// the child and its base URL.
pub async fn rates_api(
    client: &reqwest::Client,
    stack: &StackArgs,
    clickhouse: &ClickHouseArgs,
    extra: &[&str],
) -> Result<(std::process::Child, String)> {
    let (api, port) = spawn_rates_api(&stack.bin_dir, clickhouse, extra)?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((api, base))
}

/// Latencies (ms, sorted) of `urls`, one request at a time, each `repeat` times.
pub async fn time_requests(client: &reqwest::Client, urls: &[String], repeat: usize) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    for _ in 0..repeat {
        for url in urls {
            let started = Instant::now();
            client.get(url).send().await?.error_for_status().with_context(|| url.clone())?.bytes().await?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Every metric × grouping of `endpoint` over `from..=to`.
pub fn urls(base: &str, endpoint: &str, from: Date, to: Date) -> Vec<String> {
    METRICS
        .iter()
        .flat_map(|m| {
            GroupBy::ALL
                .map(|g| format!("{base}/v1/{endpoint}?metric={}&from={from}&to={to}&group_by={}", m.name, g.as_str()))
        })
        .collect()
}

/// A producer for loading many events fast: large lz4 batches, as a portal's
/// producer sends them.
pub fn bulk_producer(brokers: &str) -> Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "2000000")
        .set("compression.type", "lz4")
        .create()?)
}

/// Writes a benchmark's `result` to `out` (its folder made if missing) and
/// prints it.
pub fn write_result(out: &Path, result: &serde_json::Value) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(result)?;
    std::fs::write(out, text.clone() + "\n")?;
    println!("{text}");
    Ok(())
}
