//! Soak: the portal simulator streams live traffic (flat, with light faults)
//! through `dvc-ingest` into ClickHouse for `--minutes`, while a reader asks
//! `dvc-rates-api` for today's rates every second. Every `--sample-seconds`
//! the resident memory (VmRSS) of ingest, the API and the simulator is
//! sampled, with the rows stored. Memory is flat when the median of the last
//! five minutes is close to that of the five minutes after warm-up, and the
//! least-squares slope after warm-up is near zero. At the end every message
//! sent must be stored exactly once (or dead-lettered, if malformed).
//! Writes bench/results/soak.json.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use dvc_bench::{Run, StackArgs, memory_mb, percentile, spawn_rates_api};
use dvc_warehouse::ClickHouseArgs;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// How long to stream.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// The simulator's --rate (events per second in steady state; a run
    /// that starts empty reaches about a quarter of it in 30 minutes, as most
    /// steps of a dossier come hours or days after its submission).
    #[arg(long, default_value_t = 4_000.0)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    sample_seconds: u64,
    #[command(flatten)]
    stack: StackArgs,
    #[arg(long, default_value = "bench/results/soak.json")]
    out: PathBuf,
}

/// Warm-up excluded from the flatness figures.
const WARM_UP_SECONDS: f64 = 120.0;
/// Window compared at the start (after warm-up) and at the end.
const WINDOW_SECONDS: f64 = 300.0;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 50.0)
}

/// Flatness of one process's RSS series of (seconds, MiB).
fn flatness(samples: &[(f64, f64)], end: f64) -> Value {
    let steady: Vec<(f64, f64)> = samples.iter().copied().filter(|(t, _)| *t >= WARM_UP_SECONDS).collect();
    let window =
        |from: f64, to: f64| median(steady.iter().filter(|(t, _)| *t >= from && *t < to).map(|s| s.1).collect());
    let first = window(WARM_UP_SECONDS, WARM_UP_SECONDS + WINDOW_SECONDS);
    let last = window(end - WINDOW_SECONDS, f64::INFINITY);
    let n = steady.len() as f64;
    let (mt, mr) = (steady.iter().map(|s| s.0).sum::<f64>() / n, steady.iter().map(|s| s.1).sum::<f64>() / n);
    let slope = steady.iter().map(|(t, r)| (t - mt) * (r - mr)).sum::<f64>()
        / steady.iter().map(|(t, _)| (t - mt).powi(2)).sum::<f64>();
    json!({
        "first_window_median_mb": first,
        "last_window_median_mb": last,
        "growth_percent": (last / first - 1.0) * 100.0,
        "slope_mb_per_hour": slope * 3600.0,
        "max_mb": samples.iter().map(|s| s.1).fold(0.0, f64::max),
    })
}

async fn count(clickhouse: &ClickHouseArgs, sql: &str) -> Result<u64> {
    Ok(clickhouse.client().query(sql).fetch_one::<u64>().await?)
}

const ROWS: &str = "SELECT (SELECT count() FROM dossier_events) + (SELECT count() FROM payment_events) \
                    + (SELECT count() FROM feedback_events)";

fn stop(child: &mut Child) -> Result<()> {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    child.wait()?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.minutes * 60 > (WARM_UP_SECONDS + 2.0 * WINDOW_SECONDS) as u64, "--minutes must be at least 13");
    let run = Run::create("soak", &args.stack.brokers, 4, &args.stack.clickhouse).await?;
    let mut ingest = run.spawn_ingest(&args.stack.bin_dir, &args.stack.brokers)?;
    let mut rollup = run.spawn_rollup(&args.stack.bin_dir)?;
    let (mut api, port) = spawn_rates_api(&args.stack.bin_dir, &run.clickhouse, &[])?;
    let mut simulator = Command::new(args.stack.bin_dir.join("dvc-portal-sim"))
        .args([
            format!("--brokers={}", args.stack.brokers),
            format!("--rate={}", args.rate),
            "--flat".to_owned(),
            format!("--live-seconds={}", args.minutes * 60),
            "--duplicate-rate=0.01".to_owned(),
            "--out-of-order-rate=0.01".to_owned(),
            "--malformed-rate=0.001".to_owned(),
            "--seed=42".to_owned(),
        ])
        .args(run.topic_args())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dvc-portal-sim")?;

    let answered = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let answered = answered.clone();
        async move {
            let client = reqwest::Client::new();
            loop {
                for group_by in ["national", "authority_kind", "authority_code"] {
                    let url = format!("http://127.0.0.1:{port}/v1/rates?metric=full_online_share&group_by={group_by}");
                    if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });

    let started = Instant::now();
    let pids =
        [("ingest", ingest.id()), ("rollup", rollup.id()), ("rates_api", api.id()), ("simulator", simulator.id())];
    let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); pids.len()];
    let mut samples = Vec::new();
    while simulator.try_wait()?.is_none() {
        let t = started.elapsed().as_secs_f64();
        let mut sample = json!({ "seconds": t.round(), "rows": count(&run.clickhouse, ROWS).await? });
        for (i, (name, pid)) in pids.iter().enumerate() {
            if let Ok(rss) = memory_mb("VmRSS", &pid.to_string()) {
                series[i].push((t, rss));
                sample[format!("{name}_rss_mb")] = json!(rss);
            }
        }
        eprintln!("soak: {sample}");
        samples.push(sample);
        tokio::time::sleep(Duration::from_secs(args.sample_seconds)).await;
    }
    let end = started.elapsed().as_secs_f64();
    reader.abort();
    let output = simulator.wait_with_output()?;
    ensure!(output.status.success(), "the simulator failed: {:?}", output.status);
    let summary: Value = serde_json::from_slice(&output.stdout).context("the simulator's summary")?;
    let sent = summary["sent"]["total"].as_u64().context("sent")?;
    let malformed = summary["sent"]["malformed"].as_u64().context("malformed")?;

    // Everything sent ends up stored (the malformed in the dead letters).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stored = count(&run.clickhouse, ROWS).await?;
    while stored < sent - malformed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stored = count(&run.clickhouse, ROWS).await?;
    }
    let distinct = count(
        &run.clickhouse,
        "SELECT (SELECT uniqExact(kafka_partition, kafka_offset) FROM dossier_events) \
         + (SELECT uniqExact(kafka_partition, kafka_offset) FROM payment_events) \
         + (SELECT uniqExact(kafka_partition, kafka_offset) FROM feedback_events)",
    )
    .await?;
    stop(&mut ingest)?;
    stop(&mut rollup)?;
    stop(&mut api)?;
    run.drop_database().await;

    let mut memory = serde_json::Map::new();
    for (i, (name, _)) in pids.iter().enumerate() {
        memory.insert((*name).to_owned(), flatness(&series[i], end));
    }
    let result = json!({
        "benchmark": "soak: live simulator traffic through ingest, API read every second",
        "minutes": args.minutes,
        "simulator_rate_flag": args.rate,
        "messages_sent": sent,
        "malformed_sent": malformed,
        "events_per_second": sent as f64 / end,
        "api_requests_answered": answered.load(Ordering::Relaxed),
        "rows_stored": stored,
        "distinct_kafka_records_stored": distinct,
        "every_message_stored_once": stored == sent - malformed && distinct == stored,
        "warm_up_seconds": WARM_UP_SECONDS,
        "window_seconds": WINDOW_SECONDS,
        "rss": memory,
        "samples": samples,
    });
    std::fs::create_dir_all(args.out.parent().unwrap_or(&PathBuf::from(".")))?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({ "rss": result["rss"], "every_message_stored_once": result["every_message_stored_once"] })
        )?
    );
    Ok(())
}
