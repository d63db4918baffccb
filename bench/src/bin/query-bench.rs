//! Query latency of `GET /v1/rates` for a 30-day range over ≥ 10 million
//! dossiers. The portal simulator's model generates the dossiers (whole lives
//! on the office-hours curve, 85 authorities) and the ingest's own row code
//! turns each event into its raw row (decode, keyed hash, Kafka coordinates),
//! which is inserted straight into ClickHouse in large blocks: the broker
//! would take an hour for 70 million events, and what is measured here is the
//! query, not the ingest (see ingest-bench). The materialized views fill the
//! rate-state tables as in production. Then `dvc-rates-api` answers every
//! metric × grouping for the 30 days, `--repeat` times each, after one
//! warm-up request. The database is kept for the next run (loading is skipped
//! when it already holds the dossiers) unless `--drop`.
//! Writes bench/results/query.json.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use dvc_bench::{StackArgs, percentile, spawn_rates_api};
use dvc_events::topics;
use dvc_ingest::privacy::ApplicantHasher;
use dvc_ingest::rows::{Coordinates, DossierRow, FeedbackRow, PaymentRow, RawRow};
use dvc_portal_sim::lifecycle::{Portal, Traffic};
use dvc_portal_sim::synthetic::json;
use dvc_portal_sim::timeline::diurnal;
use dvc_warehouse::{ClickHouseArgs, METRICS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::macros::datetime;
use time::{Duration as Span, OffsetDateTime};
use tokio::sync::mpsc;

#[derive(Parser)]
struct Args {
    /// Dossiers to generate.
    #[arg(long, default_value_t = 10_000_000)]
    dossiers: u64,
    /// Days they are submitted over (the queried range).
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Generator threads (each its own seeded portal and Kafka partition).
    #[arg(long, default_value_t = 2)]
    threads: u64,
    /// Timed requests per metric × grouping.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Database to load (kept for the next run).
    #[arg(long, default_value = "bench_query")]
    bench_database: String,
    /// Drop the database afterwards.
    #[arg(long)]
    drop: bool,
    #[command(flatten)]
    stack: StackArgs,
    #[arg(long, default_value = "bench/results/query.json")]
    out: PathBuf,
}

const START: OffsetDateTime = datetime!(2024-06-01 00:00 +7);
/// Events per insert block and table, roughly.
const BLOCK: usize = 500_000;

/// Rows of the three raw tables, one insert block each.
#[derive(Default)]
struct Block {
    dossiers: Vec<DossierRow>,
    payments: Vec<PaymentRow>,
    ratings: Vec<FeedbackRow>,
}

/// What to generate: `dossiers` over `days`, split over `threads`.
#[derive(Clone, Copy)]
struct Plan {
    dossiers: u64,
    days: i64,
    threads: u64,
}

/// Generator `thread`'s share of the dossiers, as raw rows, sent in blocks.
fn generate(plan: Plan, thread: u64, blocks: mpsc::Sender<Block>) -> Result<()> {
    let hasher = ApplicantHasher::new(b"bench-key-0123456789abcdef")?;
    let mut portal = Portal::new(1000 + thread, 85);
    let mut rng = StdRng::seed_from_u64(thread);
    let peak = (0..24).map(|h| diurnal(START + Span::hours(h))).fold(0.0, f64::max);
    let mut coordinates = [topics::DOSSIER, topics::PAYMENT, topics::FEEDBACK].map(|topic| Coordinates {
        topic: Arc::from(topic),
        partition: thread as u32,
        offset: 0,
    });
    let mut traffic = Traffic::default();
    let mut block = Block::default();
    let mine = plan.dossiers / plan.threads + u64::from(thread < plan.dossiers % plan.threads);
    for _ in 0..mine {
        // Submission times on the office-hours curve, by rejection.
        let submitted = loop {
            let t = START + Span::seconds(rng.random_range(0..plan.days * 86_400));
            if rng.random_bool(diurnal(t) / peak) {
                break t;
            }
        };
        portal.dossier(submitted, &mut traffic);
        for e in traffic.dossiers.drain(..) {
            block.dossiers.push(DossierRow::from_record(&json(&e), &coordinates[0], &hasher)?);
            coordinates[0].offset += 1;
        }
        for e in traffic.payments.drain(..) {
            block.payments.push(PaymentRow::from_record(&json(&e), &coordinates[1], &hasher)?);
            coordinates[1].offset += 1;
        }
        for e in traffic.ratings.drain(..) {
            block.ratings.push(FeedbackRow::from_record(&json(&e), &coordinates[2], &hasher)?);
            coordinates[2].offset += 1;
        }
        if block.dossiers.len() >= BLOCK {
            blocks.blocking_send(std::mem::take(&mut block)).context("the writer stopped")?;
        }
    }
    blocks.blocking_send(block).context("the writer stopped")?;
    Ok(())
}

async fn insert<T: RawRow>(client: &clickhouse::Client, mut rows: Vec<T>) -> Result<()> {
    let now = OffsetDateTime::now_utc().unix_timestamp() as u32;
    let mut insert = client.insert::<T>(T::TABLE).await?;
    for row in &mut rows {
        row.set_ingested_at(now);
        insert.write(row).await?;
    }
    insert.end().await.with_context(|| format!("inserting into {}", T::TABLE))
}

/// Generates and inserts everything; seconds taken.
async fn load(plan: Plan, clickhouse: &ClickHouseArgs) -> Result<f64> {
    let started = Instant::now();
    let client = clickhouse.client();
    let (tx, mut rx) = mpsc::channel::<Block>(plan.threads as usize);
    let generators: Vec<_> = (0..plan.threads)
        .map(|thread| {
            let tx = tx.clone();
            std::thread::spawn(move || generate(plan, thread, tx))
        })
        .collect();
    drop(tx);
    let mut inserted = 0usize;
    while let Some(block) = rx.recv().await {
        inserted += block.dossiers.len() + block.payments.len() + block.ratings.len();
        tokio::try_join!(
            insert(&client, block.dossiers),
            insert(&client, block.payments),
            insert(&client, block.ratings)
        )?;
        eprintln!("query-bench: {inserted} events loaded, {:.0} s", started.elapsed().as_secs_f64());
    }
    for g in generators {
        g.join().map_err(|_| anyhow::anyhow!("a generator panicked"))??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Distinct dossiers stored so far.
async fn stored_dossiers(clickhouse: &ClickHouseArgs) -> Result<u64> {
    Ok(clickhouse.client().query("SELECT uniqExact(dossier_id) FROM dossier_state").fetch_one::<u64>().await?)
}

/// Waits (up to 10 minutes) until ClickHouse has no merges running in the
/// database, so queries see the settled table.
async fn settle(clickhouse: &ClickHouseArgs) -> Result<f64> {
    let started = Instant::now();
    let sql = format!("SELECT count() FROM system.merges WHERE database = '{}'", clickhouse.database);
    while clickhouse.server_client().query(&sql).fetch_one::<u64>().await? > 0
        && started.elapsed() < Duration::from_secs(600)
    {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.threads > 0 && args.days > 0, "--threads and --days must be positive");
    let plan = Plan { dossiers: args.dossiers, days: args.days, threads: args.threads };
    let clickhouse = args.stack.clickhouse.with_database(args.bench_database.clone());
    dvc_warehouse::migrate(&clickhouse.server_client(), &clickhouse.database).await?;
    let stored = stored_dossiers(&clickhouse).await?;
    let load_seconds = if stored >= args.dossiers {
        eprintln!("query-bench: {} already holds {stored} dossiers; not loading", clickhouse.database);
        None
    } else {
        ensure!(stored == 0, "{} holds {stored} dossiers, fewer than asked: drop it first", clickhouse.database);
        Some(load(plan, &clickhouse).await?)
    };
    let settle_seconds = settle(&clickhouse).await?;
    let stored = stored_dossiers(&clickhouse).await?;
    let events: u64 = clickhouse
        .client()
        .query(
            "SELECT (SELECT count() FROM dossier_events) + (SELECT count() FROM payment_events) \
             + (SELECT count() FROM feedback_events)",
        )
        .fetch_one()
        .await?;

    let (mut api, port) = spawn_rates_api(&args.stack.bin_dir, &clickhouse)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (from, to) = (START.date(), START.date() + Span::days(args.days - 1));
    // One request first, so the table's files are in the page cache.
    client.get(format!("{base}/v1/rates?metric=full_online_share&from={from}&to={to}")).send().await?;
    let groupings = ["national", "authority_kind", "authority_code", "agency_code", "procedure_code"];
    let mut by_grouping = serde_json::Map::new();
    let mut all = Vec::new();
    let mut in_range = 0;
    for grouping in groupings {
        let mut latencies = Vec::new();
        for _ in 0..args.repeat {
            for metric in METRICS {
                let url = format!("{base}/v1/rates?metric={}&from={from}&to={to}&group_by={grouping}", metric.name);
                let started = Instant::now();
                let response = client.get(&url).send().await?.error_for_status()?;
                let body: serde_json::Value = response.json().await?;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                if metric.name == "full_online_share" && grouping == "national" {
                    in_range = body["rows"][0]["denominator"].as_u64().unwrap_or(0);
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        by_grouping.insert(
            grouping.to_owned(),
            json!({
                "requests": latencies.len(),
                "p50_ms": percentile(&latencies, 50.0),
                "p95_ms": percentile(&latencies, 95.0),
                "max_ms": percentile(&latencies, 100.0),
            }),
        );
        all.extend(latencies);
    }
    api.kill()?;
    api.wait()?;
    all.sort_by(f64::total_cmp);

    let result = json!({
        "benchmark": "GET /v1/rates, 30-day range",
        "database": clickhouse.database,
        "dossiers_stored": stored,
        "dossiers_in_range": in_range,
        "events_stored": events,
        "from": from.to_string(),
        "to": to.to_string(),
        "load_seconds": load_seconds,
        "settle_seconds": settle_seconds,
        "requests": all.len(),
        "p50_ms": percentile(&all, 50.0),
        "p95_ms": percentile(&all, 95.0),
        "p99_ms": percentile(&all, 99.0),
        "max_ms": percentile(&all, 100.0),
        "by_grouping": by_grouping,
        "setup": "2 cores, ClickHouse 18.16 (Debian), every metric × grouping after one warm-up request",
    });
    std::fs::create_dir_all(args.out.parent().unwrap_or(&PathBuf::from(".")))?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    if args.drop {
        clickhouse.server_client().query(&format!("DROP DATABASE {}", clickhouse.database)).execute().await?;
    }
    Ok(())
}
