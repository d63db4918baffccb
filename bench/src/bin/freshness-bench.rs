//! Freshness: how long after an event is produced to Kafka it shows in
//! `GET /v1/rates` for today. Streams today's dossier events at a fixed rate
//! (default 10,000/s) through `dvc-ingest` and `dvc-rates-api` (default
//! settings, own topics and database); every 100 ms one event is a marker
//! with an agency code of its own, and a poller asks
//! `/v1/rates?metric=online_share&group_by=agency_code` (today) every 100 ms
//! for the markers (the query's time is kept for the polls made while
//! events stream). Latency = first poll answer that lists the marker − its
//! send time (so it includes up to one poll interval and the query itself).
//! Writes bench/results/freshness.json, naming the broker (`--broker`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use clap::Parser;
use dvc_bench::{Run, StackArgs, percentile, send, spawn_rates_api};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;
use time::OffsetDateTime;

#[derive(Parser)]
struct Args {
    /// Events per second to produce.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to stream (seconds).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[command(flatten)]
    stack: StackArgs,
    /// What the broker is, as the results file records it (`bench/run.sh`
    /// passes its memory-store tansu's version).
    #[arg(long, default_value = "the local stack's tansu, SQLite storage")]
    broker: String,
    #[arg(long, default_value = "bench/results/freshness.json")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let run = Run::create("fresh", &args.stack.brokers, 4, &args.stack.clickhouse).await?;
    let mut ingest = run.spawn_ingest(&args.stack.bin_dir, &args.stack.brokers)?;
    let mut rollup = run.spawn_rollup(&args.stack.bin_dir)?;
    let (mut api, port) = spawn_rates_api(&args.stack.bin_dir, &run.clickhouse, &[])?;
    tokio::time::sleep(Duration::from_secs(3)).await; // group join, API bind

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let query_ms: Arc<Mutex<Vec<f64>>> = Arc::default();
    let streaming = Arc::new(std::sync::atomic::AtomicBool::new(true));

    let poller = {
        let (sent, seen, query_ms, streaming) = (sent.clone(), seen.clone(), query_ms.clone(), streaming.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let url = format!("http://127.0.0.1:{port}/v1/rates?metric=online_share&group_by=agency_code");
            let mut idle_after_stream = 0;
            while idle_after_stream < 50 {
                // The queries' times count while events stream, not the
                // polls after, which wait for the last markers.
                let during_stream = streaming.load(std::sync::atomic::Ordering::Relaxed);
                if !during_stream {
                    idle_after_stream += 1;
                }
                let started = Instant::now();
                let answer = client.get(&url).send().await.and_then(|r| r.error_for_status());
                if let Ok(response) = answer
                    && let Ok(body) = response.json::<serde_json::Value>().await
                {
                    let now = Instant::now();
                    if during_stream {
                        query_ms.lock().unwrap().push(now.duration_since(started).as_secs_f64() * 1e3);
                    }
                    let sent = sent.lock().unwrap();
                    let mut seen = seen.lock().unwrap();
                    for row in body["rows"].as_array().into_iter().flatten() {
                        let group = row["group"].as_str().unwrap_or_default();
                        if let (Some(at), false) = (sent.get(group), seen.contains_key(group)) {
                            seen.insert(group.to_owned(), now.duration_since(*at).as_secs_f64() * 1e3);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100).saturating_sub(started.elapsed())).await;
            }
        })
    };

    // Produce `rate` events per second in 10 ms slices, a marker every 100 ms.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.stack.brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut rng = dvc_portal_sim::synthetic::rng(5);
    let per_slice = (args.rate / 100).max(1);
    let slices = args.seconds * 100;
    let start = Instant::now();
    let mut produced = 0u64;
    for slice in 0..slices {
        for k in 0..per_slice {
            let mut e = dvc_portal_sim::synthetic::dossier(&mut rng, &run.name, produced);
            let now = OffsetDateTime::now_utc();
            e.occurred_at = now;
            e.received_at = Some(now);
            let marker = k == 0 && slice % 10 == 0;
            if marker {
                // A dossier of its own, so its agency is not overridden by a later event.
                e.place.agency_code = format!("FRESH-{slice:06}");
                e.dossier_id = e.place.agency_code.clone();
            }
            let value = serde_json::to_vec(&e)?;
            send(&producer, BaseRecord::to(&run.topics[0]).key(&e.dossier_id).payload(&value));
            if marker {
                sent.lock().unwrap().insert(e.place.agency_code.clone(), Instant::now());
            }
            produced += 1;
        }
        producer.poll(Duration::ZERO);
        let due = start + Duration::from_millis(10 * (slice + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    producer.flush(Duration::from_secs(30))?;
    let achieved_eps = produced as f64 / start.elapsed().as_secs_f64();
    streaming.store(false, std::sync::atomic::Ordering::Relaxed);
    poller.await?;

    let markers = sent.lock().unwrap().len();
    let mut latencies: Vec<f64> = seen.lock().unwrap().values().copied().collect();
    latencies.sort_by(f64::total_cmp);
    let mut queries = query_ms.lock().unwrap().clone();
    queries.sort_by(f64::total_cmp);
    ensure!(!latencies.is_empty(), "no marker ever showed in /v1/rates");
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let result = json!({
        "target_eps": args.rate,
        "achieved_eps": achieved_eps.round(),
        "seconds": args.seconds,
        "events": produced,
        "markers": markers,
        "markers_seen": latencies.len(),
        "freshness_p50_ms": round(percentile(&latencies, 50.0)),
        "freshness_p99_ms": round(percentile(&latencies, 99.0)),
        "freshness_max_ms": round(percentile(&latencies, 100.0)),
        "api_query_p50_ms": round(percentile(&queries, 50.0)),
        "api_query_p99_ms": round(percentile(&queries, 99.0)),
        "poll_interval_ms": 100,
        "ingest_batch_max_wait_ms": 250,
        "broker": args.broker,
        "clickhouse": run.clickhouse.client().query("SELECT version()").fetch_one::<String>().await?,
    });
    Command::new("kill").args(["-TERM", &ingest.id().to_string()]).status()?;
    ingest.wait()?;
    for child in [&mut api, &mut rollup] {
        child.kill()?;
        child.wait()?;
    }
    run.drop_database().await;
    dvc_bench::write_result(&args.out, &result)?;
    Ok(())
}
