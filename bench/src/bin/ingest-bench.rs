//! Ingest throughput, side by side on one pre-loaded topic set and one machine:
//! (a) a raw rdkafka consumer that only reads (the broker's ceiling),
//! (b) `dvc-ingest` end to end into ClickHouse (events/s, CPU per event, peak RSS),
//! (c) a naive Python consumer batching JSONEachRow over HTTP (bench/naive_consumer.py).
//! Also: decode+convert CPU per event, to show where the ingest time goes.
//! Writes bench/results/ingest.json.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use dvc_bench::{Run, StackArgs, assign_all, cpu_seconds, memory_mb, preload};
use dvc_events::Stream;
use dvc_ingest::rows::{DossierRow, RawRow};
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Events to pre-load (spread 70/20/10 over the dossier, payment and feedback topics).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[command(flatten)]
    stack: StackArgs,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long, default_value = "bench/results/ingest.json")]
    out: PathBuf,
}

/// (a) Reads every pre-loaded record once and does nothing with it.
fn raw_consume(args: &Args, run: &str, topics: &[String; 5]) -> Result<(f64, f64)> {
    let cpu_before = cpu_seconds("self")?;
    let start = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.stack.brokers)
        .set("group.id", format!("{run}.raw"))
        .set("enable.auto.commit", "false")
        .create()?;
    assign_all(&consumer, topics, args.partitions, Offset::Beginning)?;
    let (mut n, mut bytes) = (0u64, 0usize);
    while n < args.events {
        match consumer.poll(Duration::from_secs(30)) {
            Some(Ok(m)) => {
                n += 1;
                bytes += m.payload().map_or(0, <[u8]>::len);
            }
            Some(Err(e)) => bail!("raw consumer: {e}"),
            None => bail!("raw consumer: no record for 30 s after {n}"),
        }
    }
    let eps = n as f64 / start.elapsed().as_secs_f64();
    let cpu_us = (cpu_seconds("self")? - cpu_before) * 1e6 / n as f64;
    eprintln!("raw consume: {n} records, {} MB", bytes / 1_000_000);
    Ok((eps, cpu_us))
}

/// Decode + convert CPU per dossier event, single thread (the ingest's own work per record).
fn decode_cost(run: &str) -> Result<f64> {
    let messages: Vec<_> = dvc_portal_sim::synthetic::mixed(run, 300_000, 7)
        .filter(|m| m.stream == Stream::Dossier)
        .map(|m| m.value)
        .collect();
    let hasher = dvc_ingest::privacy::ApplicantHasher::new(b"bench-key-0123456789abcdef")?;
    let at = dvc_ingest::rows::Coordinates { topic: "bench".into(), partition: 0, offset: 0 };
    let start = Instant::now();
    let mut ok = 0usize;
    for m in &messages {
        ok += usize::from(DossierRow::from_record(m, &at, &hasher).is_ok());
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / messages.len() as f64;
    anyhow::ensure!(ok == messages.len(), "bench events must all be valid");
    Ok(us)
}

struct IngestRun {
    eps: f64,
    cpu_us_per_event: f64,
    peak_rss_mb: f64,
}

/// (b) The ingest binary end to end: from process start until every row is in ClickHouse.
async fn ingest(args: &Args, run: &Run) -> Result<IngestRun> {
    let start = Instant::now();
    let mut child = run.spawn_ingest(&args.stack.bin_dir, &args.stack.brokers)?;
    let pid = child.id().to_string();
    let client = run.clickhouse.client();
    let count_sql = "SELECT (SELECT count() FROM dossier_events) + (SELECT count() FROM payment_events) \
                     + (SELECT count() FROM feedback_events)";
    loop {
        let n: u64 = client.query(count_sql).fetch_one().await.unwrap_or(0);
        if n >= args.events {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            bail!("ingest stored only {n} of {} events in 10 minutes", args.events);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&pid)?;
    let rss = memory_mb("VmHWM", &pid)?;
    Command::new("kill").args(["-TERM", &pid]).status()?;
    child.wait()?;
    Ok(IngestRun {
        eps: args.events as f64 / elapsed,
        cpu_us_per_event: cpu * 1e6 / args.events as f64,
        peak_rss_mb: rss,
    })
}

/// (c) The naive Python baseline.
fn naive(args: &Args, run: &str, topics: &[String; 5]) -> Result<serde_json::Value> {
    let out = Command::new("python3")
        .arg("bench/naive_consumer.py")
        .args([
            "--brokers",
            &args.stack.brokers,
            "--group",
            &format!("{run}.naive"),
            "--clickhouse-url",
            &args.stack.clickhouse.url,
        ])
        .args(["--database", &format!("bench_naive_{}", run.replace(['.', '-'], "_"))])
        .args(["--expect", &args.events.to_string()])
        .args(topics)
        .output()?;
    if !out.status.success() {
        bail!("naive consumer failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let run = Run::create("bench", &args.stack.brokers, args.partitions, &args.stack.clickhouse).await?;
    let topics = run.topics.clone();
    eprintln!("pre-loading {} events …", args.events);
    let preload_eps = preload(&args.stack.brokers, &run.name, &topics, args.events)?;
    eprintln!("(a) raw consumer …");
    let (raw_eps, raw_cpu_us) = raw_consume(&args, &run.name, &topics)?;
    eprintln!("decode cost …");
    let decode_us = decode_cost(&run.name)?;
    eprintln!("(b) dvc-ingest …");
    let ingest = ingest(&args, &run).await?;
    run.drop_database().await;
    eprintln!("(c) naive Python consumer …");
    let naive = naive(&args, &run.name, &topics)?;
    let naive_eps = naive["eps"].as_f64().context("naive eps")?;

    let result = json!({
        "events": args.events,
        "raw_consume_eps": raw_eps.round(),
        "ingest_eps": ingest.eps.round(),
        "naive_eps": naive_eps.round(),
        "ingest_cpu_us_per_event": (ingest.cpu_us_per_event * 100.0).round() / 100.0,
        "ingest_peak_rss_mb": ingest.peak_rss_mb.round(),
        "ingest_vs_raw": (ingest.eps / raw_eps * 1000.0).round() / 1000.0,
        "ingest_vs_naive": (ingest.eps / naive_eps * 10.0).round() / 10.0,
        "breakdown_cpu_us_per_event": {
            "kafka_consume_raw": (raw_cpu_us * 100.0).round() / 100.0,
            "decode_validate_convert_dossier": (decode_us * 100.0).round() / 100.0,
        },
        "naive_cpu_us_per_event": naive["cpu_us_per_event"],
        "preload_eps": preload_eps.round(),
        "partitions": args.partitions,
        "machine": { "cpus": std::thread::available_parallelism()?.get() },
        "broker": "tansu 0.6.0, SQLite storage",
        "clickhouse": args.stack.clickhouse.client().query("SELECT version()").fetch_one::<String>().await?,
        "finished_at_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
    });
    dvc_bench::write_result(&args.out, &result)?;
    Ok(())
}
