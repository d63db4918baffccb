//! The local broker's storage engines side by side: tansu with its SQLite
//! store (the local stack's) and with its in-memory store, each a broker of
//! its own on a free port and an empty folder, fed the same portal events
//! (default 5 M, the three streams' mix, into one topic):
//! - produce throughput per window (default 1 M), to see a store slow down as
//!   it grows;
//! - then, with everything stored, the produce-to-consume latency of a steady
//!   stream (default 10,000 events/s, consumer settings as `dvc-ingest`'s):
//!   what the stack's freshness pays to the broker;
//! - last (its fetches may keep the broker busy after it stops), a raw
//!   consumer reading everything back from the first offset, its throughput
//!   per window, for at most `--read-seconds` (tansu 0.6's SQLite store reads
//!   a backlog slower the longer it is: the figure is how far it got);
//! - the store's bytes on disk and the broker's resident memory.
//!
//! Not part of `make bench` (about 10 minutes for both engines): `make
//! bench-broker`. Writes bench/results/broker.json.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use dvc_bench::{assign_all, free_port, memory_mb, percentile, send};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Events to store in each broker.
    #[arg(long, default_value_t = 5_000_000)]
    messages: u64,
    /// Produce throughput is reported per this many events.
    #[arg(long, default_value_t = 1_000_000)]
    window: u64,
    /// Storage engines to measure.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,memory")]
    engines: Vec<Engine>,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Events per second of the latency probe.
    #[arg(long, default_value_t = 10_000)]
    probe_rate: u64,
    #[arg(long, default_value_t = 20)]
    probe_seconds: u64,
    /// The read-back stops after this long (seconds).
    #[arg(long, default_value_t = 300)]
    read_seconds: u64,
    /// The tansu binary (make deps installs it).
    #[arg(long, default_value = "tansu")]
    tansu: PathBuf,
    /// Each engine's broker runs in an empty folder below this one (removed after).
    #[arg(long, default_value = ".local/broker-bench")]
    dir: PathBuf,
    #[arg(long, default_value = "bench/results/broker.json")]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Engine {
    Sqlite,
    Memory,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Memory => "memory",
        }
    }

    /// tansu's `--storage-engine` (an SQLite path is resolved against the
    /// broker's working directory).
    fn url(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite://tansu.db",
            Engine::Memory => "memory://tansu/",
        }
    }
}

/// A broker of this benchmark's, killed when dropped.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start(tansu: &Path, engine: Engine, dir: &Path) -> Result<Broker> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .current_dir(dir)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", engine.url()])
            .stdout(std::fs::File::create(dir.join("tansu.log"))?)
            .stderr(std::fs::File::create(dir.join("tansu.err.log"))?)
            .spawn()
            .with_context(|| format!("starting {} (make deps installs it)", tansu.display()))?;
        let broker = Broker { child, address: format!("127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&broker.address).is_err() {
            ensure!(Instant::now() < deadline, "tansu ({}) did not listen on {port}", engine.name());
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(broker)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Produces `args.messages` events, flushing after each window; events/s per window.
fn load(args: &Args, brokers: &str, topic: &str) -> Result<Vec<f64>> {
    let producer = dvc_bench::bulk_producer(brokers)?;
    let mut rates = Vec::new();
    let mut events = dvc_portal_sim::synthetic::mixed("broker", args.messages, 42).peekable();
    while events.peek().is_some() {
        let started = Instant::now();
        let mut sent = 0u64;
        for m in events.by_ref().take(args.window as usize) {
            send(&producer, BaseRecord::to(topic).key(&m.key).payload(&m.value));
            sent += 1;
        }
        producer.flush(Duration::from_secs(600))?;
        rates.push(sent as f64 / started.elapsed().as_secs_f64());
    }
    Ok(rates)
}

fn consumer(brokers: &str, extra: &[(&str, &str)]) -> Result<BaseConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "broker-bench")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    Ok(config.create()?)
}

/// What reading back from the beginning gave.
struct ReadBack {
    read: u64,
    seconds: f64,
    /// Events/s over each window of `args.window` events read.
    by_window: Vec<f64>,
}

/// Reads everything back, or as much as `args.read_seconds` allows.
fn read_back(args: &Args, brokers: &str, topic: &str) -> Result<ReadBack> {
    let consumer = consumer(brokers, &[])?;
    assign_all(&consumer, &[topic], args.partitions, Offset::Beginning)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.read_seconds);
    let (mut read, mut window_started, mut by_window) = (0u64, started, Vec::new());
    let mut last = Instant::now();
    while read < args.messages && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(_)) => {
                read += 1;
                last = Instant::now();
                if read % args.window == 0 {
                    by_window.push(args.window as f64 / window_started.elapsed().as_secs_f64());
                    window_started = last;
                }
            }
            Some(Err(e)) => bail!("reading back: {e}"),
            None if last.elapsed() > Duration::from_secs(60) => {
                bail!("reading back: nothing for 60 s after {read} of {}", args.messages)
            }
            None => {}
        }
    }
    Ok(ReadBack { read, seconds: started.elapsed().as_secs_f64(), by_window })
}

/// A steady stream at `args.probe_rate` read by a consumer set as dvc-ingest's;
/// each event's latency = when read − its producer timestamp (ms).
fn probe(args: &Args, brokers: &str, topic: &str) -> Result<(Vec<f64>, u64)> {
    let consumer = consumer(brokers, &[("fetch.wait.max.ms", "100"), ("queued.max.messages.kbytes", "32768")])?;
    assign_all(&consumer, &[topic], args.partitions, Offset::End)?;
    // Resolve the end offsets before the stream starts.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(3) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            bail!("probe consumer: {e}");
        }
    }
    let streaming = Arc::new(AtomicBool::new(true));
    let total = args.probe_rate * args.probe_seconds;
    let producer_thread = {
        let (brokers, topic, streaming) = (brokers.to_owned(), topic.to_owned(), streaming.clone());
        let (rate, seconds) = (args.probe_rate, args.probe_seconds);
        std::thread::spawn(move || -> Result<()> {
            let producer: BaseProducer =
                ClientConfig::new().set("bootstrap.servers", &brokers).set("linger.ms", "5").create()?;
            let per_tick = rate / 100;
            let started = Instant::now();
            let mut events = dvc_portal_sim::synthetic::mixed("probe", rate * seconds, 7);
            for tick in 0..seconds * 100 {
                for m in events.by_ref().take(per_tick as usize) {
                    send(&producer, BaseRecord::to(&topic).key(&m.key).payload(&m.value).timestamp(now_ms()));
                }
                producer.poll(Duration::ZERO);
                let next = started + Duration::from_millis((tick + 1) * 10);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            producer.flush(Duration::from_secs(60))?;
            streaming.store(false, Ordering::Relaxed);
            Ok(())
        })
    };
    let mut latencies = Vec::with_capacity(total as usize);
    let mut idle = Instant::now();
    while (latencies.len() as u64) < total {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if let Timestamp::CreateTime(ts) = m.timestamp() {
                    latencies.push((now_ms() - ts) as f64);
                }
                idle = Instant::now();
            }
            Some(Err(e)) => bail!("probe consumer: {e}"),
            None if !streaming.load(Ordering::Relaxed) && idle.elapsed() > Duration::from_secs(30) => break,
            None => {}
        }
    }
    producer_thread.join().map_err(|_| anyhow::anyhow!("the probe producer panicked"))??;
    let missing = total - latencies.len() as u64;
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, missing))
}

fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            bytes += meta.len();
        }
    }
    Ok(bytes)
}

async fn measure(args: &Args, engine: Engine) -> Result<serde_json::Value> {
    let dir = args.dir.join(engine.name());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let broker = Broker::start(&args.tansu, engine, &dir)?;
    let topic = "broker-bench";
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &broker.address).create()?;
    for r in admin
        .create_topics(&[NewTopic::new(topic, args.partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    eprintln!("broker-bench {}: producing {} events", engine.name(), args.messages);
    let produce = load(args, &broker.address, topic)?;
    eprintln!("broker-bench {}: produce events/s per window {produce:.0?}; latency probe", engine.name());
    let (latencies, missing) = probe(args, &broker.address, topic)?;
    eprintln!("broker-bench {}: probe done; reading back", engine.name());
    let back = read_back(args, &broker.address, topic)?;
    let result = json!({
        "storage_engine": engine.url(),
        "produce_events_per_s_by_window": produce.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "read_back": {
            "events": back.read,
            "seconds": back.seconds.round(),
            "events_per_s": (back.read as f64 / back.seconds).round(),
            "events_per_s_by_window": back.by_window.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "complete": back.read == args.messages,
        },
        "probe": {
            "rate_per_s": args.probe_rate,
            "seconds": args.probe_seconds,
            "p50_ms": percentile(&latencies, 50.0),
            "p99_ms": percentile(&latencies, 99.0),
            "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
            "missing": missing,
        },
        "store_bytes": folder_bytes(&dir)?,
        "broker_rss_mb": memory_mb("VmRSS", &broker.pid())?,
        "broker_peak_rss_mb": memory_mb("VmHWM", &broker.pid())?,
    });
    drop(broker);
    std::fs::remove_dir_all(&dir)?;
    Ok(result)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.window > 0 && args.probe_rate >= 100, "--window > 0 and --probe-rate ≥ 100");
    let version = Command::new(&args.tansu).arg("--version").output().context("tansu --version")?;
    let mut engines = serde_json::Map::new();
    for &engine in &args.engines {
        let result = measure(&args, engine).await?;
        eprintln!("broker-bench {}: {result}", engine.name());
        engines.insert(engine.name().to_owned(), result);
    }
    let out = json!({
        "benchmark": "tansu storage engines: produce, read back and a steady stream's latency over the same portal events",
        "tansu": String::from_utf8_lossy(&version.stdout).trim(),
        "messages": args.messages,
        "window": args.window,
        "partitions": args.partitions,
        "engines": engines,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&out)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
