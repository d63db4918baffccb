//! DVC Pulse on the local ClickHouse cluster (deploy/cluster/cluster.sh: two
//! shards, three servers) next to the local stack's single server, on the
//! same machine and the same pre-loaded topics: ingest throughput, the
//! rollup's catch-up, and `/v1/rates` latency over every metric × grouping,
//! with the answers of both compared. Three servers share two cores here,
//! so only the ratios mean anything. Writes bench/results/cluster.json.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use dvc_bench::{Run, StackArgs, percentile, preload, rates_api, time_requests, urls};
use serde_json::json;
use time::Date;
use time::macros::format_description;

#[derive(Parser)]
struct Args {
    /// Events to pre-load (the ingest benchmark's mix).
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    #[command(flatten)]
    stack: StackArgs,
    /// Every node of the cluster (HTTP), the first of shard 1 first.
    #[arg(
        long,
        env = "DVC_CLICKHOUSE_NODES",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8124,http://127.0.0.1:8125,http://127.0.0.1:8126"
    )]
    nodes: Vec<String>,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Times each metric × grouping is asked.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    #[arg(long, default_value = "bench/results/cluster.json")]
    out: PathBuf,
}

/// What one layout measured.
struct Measured {
    ingest_eps: f64,
    rollup_seconds: f64,
    latencies: Vec<f64>,
    answers: Vec<String>,
}

async fn measure(args: &Args, run: &Run, from: Option<(Date, Date)>) -> Result<(Measured, (Date, Date))> {
    let client = run.clickhouse.client();
    let count_sql = "SELECT (SELECT count() FROM dossier_events) + (SELECT count() FROM payment_events) \
                     + (SELECT count() FROM feedback_events)";
    let started = Instant::now();
    let mut ingest = run.spawn_ingest(&args.stack.bin_dir, &args.stack.brokers)?;
    loop {
        let n: u64 = client.query(count_sql).fetch_one().await.unwrap_or(0);
        if n >= args.events {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            let _ = ingest.kill();
            bail!("{}: ingest stored only {n} of {} events in 15 minutes", run.clickhouse.database, args.events);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ingest_eps = args.events as f64 / started.elapsed().as_secs_f64();
    ingest.kill()?;
    ingest.wait()?;

    let started = Instant::now();
    dvc_rollup::catch_up(&client, 50_000).await?;
    let rollup_seconds = started.elapsed().as_secs_f64();

    let range = match from {
        Some(range) => range,
        None => {
            let (first, last): (String, String) = client
                .query(
                    "SELECT toString(min(toDate(occurred_at))), toString(max(toDate(occurred_at))) FROM dossier_events",
                )
                .fetch_one()
                .await?;
            let day = format_description!("[year]-[month]-[day]");
            (Date::parse(&first, day)?, Date::parse(&last, day)?)
        }
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let reader = dvc_warehouse::ClickHouseArgs { user: "dvc_reader".into(), ..run.clickhouse.clone() };
    let (mut api, base) = rates_api(&http, &args.stack, &reader, &["--answer-cache-mb=0"]).await?;
    let asked = urls(&base, "rates", range.0, range.1);
    let mut answers = Vec::with_capacity(asked.len());
    for url in &asked {
        let body: serde_json::Value = http.get(url).send().await?.error_for_status()?.json().await?;
        answers.push(body["rows"].to_string());
    }
    let latencies = time_requests(&http, &asked, args.repeat).await?;
    api.kill()?;
    api.wait()?;
    Ok((Measured { ingest_eps, rollup_seconds, latencies, answers }, range))
}

fn ms(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let single = Run::create("bench-cluster", &args.stack.brokers, args.partitions, &args.stack.clickhouse).await?;
    let cluster = single.on_cluster(&args.nodes, "dvc").await.context("the local cluster (make cluster-up)")?;
    eprintln!("cluster-bench: pre-loading {} events …", args.events);
    preload(&args.stack.brokers, &single.name, &single.topics, args.events)?;
    eprintln!("cluster-bench: one server …");
    let (one, range) = measure(&args, &single, None).await?;
    eprintln!("cluster-bench: the cluster …");
    let (many, _) = measure(&args, &cluster, Some(range)).await?;
    ensure!(one.answers.len() == many.answers.len(), "asked different things");
    let same_answers = one.answers == many.answers;

    let figures = |m: &Measured| {
        json!({
            "ingest_eps": m.ingest_eps.round(),
            "rollup_seconds": ms(m.rollup_seconds),
            "rates_p50_ms": ms(percentile(&m.latencies, 50.0)),
            "rates_p95_ms": ms(percentile(&m.latencies, 95.0)),
        })
    };
    let result = json!({
        "events": args.events,
        "range": [range.0.to_string(), range.1.to_string()],
        "requests_per_layout": one.latencies.len(),
        "single_node": figures(&one),
        "cluster": figures(&many),
        "cluster_vs_single": {
            "ingest_eps": (many.ingest_eps / one.ingest_eps * 100.0).round() / 100.0,
            "rollup_seconds": (many.rollup_seconds / one.rollup_seconds * 100.0).round() / 100.0,
            "rates_p50_ms": (percentile(&many.latencies, 50.0) / percentile(&one.latencies, 50.0) * 100.0).round() / 100.0,
            "rates_p95_ms": (percentile(&many.latencies, 95.0) / percentile(&one.latencies, 95.0) * 100.0).round() / 100.0,
        },
        "same_answers": same_answers,
        "cluster_layout": "2 shards (2 + 1 replicas), ZooKeeper, all on this machine",
        "machine": { "cpus": std::thread::available_parallelism()?.get() },
        "clickhouse": args.stack.clickhouse.client().query("SELECT version()").fetch_one::<String>().await?,
        "finished_at_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
    });
    dvc_bench::write_result(&args.out, &result)?;
    ensure!(same_answers, "the cluster's answers differ from the single server's");
    Ok(())
}
