//! The rates at national scale (`bench/results/query.json`). The portal
//! simulator's model generates ≥ 10 million dossiers spread over 12 months
//! (whole lives on the office-hours curve, 85 authorities) and the ingest's
//! own row code turns each event into its raw row (decode, keyed hash, Kafka
//! coordinates), inserted straight into ClickHouse in large blocks: the
//! broker would take an hour for 70 million events, and what is measured
//! here is the query, not the ingest (see ingest-bench). The materialized
//! views fill the states and touches as in production; dvc-rollup's batches
//! then roll everything up (timed: the backfill). Then `dvc-rates-api` (its
//! own process, every request a query) answers every metric × grouping for
//! the last day, 30 days and 365 days and `/v1/series` for 30 days, one
//! request at a time; a second one as deployed (answers shared per rollup
//! batch) serves 64 concurrent dashboard clients for 60 s, then for 20 s
//! with 2,000 ids pending (the exact path); the daily sums are compared with
//! the per-dossier facts views; the one-day query is timed again over a
//! smaller history at the same daily volume. Databases are kept for the next
//! run (loading and rolling up are skipped when done) unless `--drop`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use dvc_bench::{StackArgs, percentile, rates_api, time_requests, urls};
use dvc_events::topics;
use dvc_ingest::privacy::ApplicantHasher;
use dvc_ingest::rows::{Coordinates, DossierRow, FeedbackRow, PaymentRow, RawRow};
use dvc_portal_sim::lifecycle::{Portal, Traffic};
use dvc_portal_sim::synthetic::json;
use dvc_portal_sim::timeline::diurnal;
use dvc_warehouse::ClickHouseArgs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::macros::datetime;
use time::{Date, Duration as Span, OffsetDateTime};
use tokio::sync::mpsc;

#[derive(Parser)]
struct Args {
    /// Dossiers of the main history.
    #[arg(long, default_value_t = 10_000_000)]
    dossiers: u64,
    /// Days they are submitted over, ending on the last day (2024-06-30).
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Smaller histories (dossiers, at the main history's daily volume)
    /// over which the one-day query is timed again, each its own database.
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    history: Vec<u64>,
    /// Generator threads (each its own seeded portal and Kafka partition).
    #[arg(long, default_value_t = 2)]
    threads: u64,
    /// Timed requests per metric × grouping and range.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Concurrent dashboard clients, and for how long (s).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 60)]
    client_seconds: u64,
    /// Database of the main history (kept for the next run).
    #[arg(long, default_value = "bench_query")]
    bench_database: String,
    /// Drop the databases afterwards.
    #[arg(long)]
    drop: bool,
    #[command(flatten)]
    stack: StackArgs,
    #[arg(long, default_value = "bench/results/query.json")]
    out: PathBuf,
    /// Timed requests per Decision 766 period and level.
    #[arg(long, default_value_t = 5)]
    index_repeat: usize,
    #[arg(long, default_value = "bench/results/index766.json")]
    index_out: PathBuf,
}

/// The last day of every history (Vietnam's calendar): "today" here.
const LAST_DAY: OffsetDateTime = datetime!(2024-06-30 00:00 +7);
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
    start: OffsetDateTime,
    days: i64,
    threads: u64,
}

/// Generator `thread`'s share of the dossiers, as raw rows, sent in blocks.
fn generate(plan: Plan, thread: u64, blocks: mpsc::Sender<Block>) -> Result<()> {
    let hasher = ApplicantHasher::new(b"bench-key-0123456789abcdef")?;
    let mut portal = Portal::new(1000 + thread, 85);
    let start = plan.start;
    let mut rng = StdRng::seed_from_u64(thread);
    let peak = (0..24).map(|h| diurnal(start + Span::hours(h))).fold(0.0, f64::max);
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
            let t = start + Span::seconds(rng.random_range(0..plan.days * 86_400));
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
    Ok(clickhouse.client().query("SELECT uniqExact(dossier_id) FROM dossier_state_v2").fetch_one::<u64>().await?)
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

/// dvc-rollup's batches (the service's own code, in this process) until
/// every touch is rolled up; seconds taken.
async fn roll_up(clickhouse: &ClickHouseArgs) -> Result<f64> {
    let started = Instant::now();
    eprintln!("query-bench: rolling up {}", clickhouse.database);
    let caught = dvc_rollup::catch_up(&clickhouse.client(), 200_000).await?;
    eprintln!(
        "query-bench: {} rates and {} index batches, {:.0} s",
        caught.rates.len(),
        caught.index.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(started.elapsed().as_secs_f64())
}

/// A history in its own database, loaded and rolled up if not yet.
struct History {
    clickhouse: ClickHouseArgs,
    dossiers: u64,
    load_seconds: Option<f64>,
    rollup_seconds: f64,
}

async fn prepare(stack: &StackArgs, database: &str, plan: Plan) -> Result<History> {
    let clickhouse = stack.clickhouse.with_database(database);
    dvc_warehouse::migrate(&clickhouse.server_client(), &clickhouse.database).await?;
    let stored = stored_dossiers(&clickhouse).await?;
    let load_seconds = if stored >= plan.dossiers {
        eprintln!("query-bench: {database} already holds {stored} dossiers; not loading");
        None
    } else {
        ensure!(stored == 0, "{database} holds {stored} dossiers, fewer than asked: drop it first");
        Some(load(plan, &clickhouse).await?)
    };
    settle(&clickhouse).await?;
    let rollup_seconds = roll_up(&clickhouse).await?;
    settle(&clickhouse).await?;
    Ok(History { dossiers: stored_dossiers(&clickhouse).await?, clickhouse, load_seconds, rollup_seconds })
}

/// `clients` dashboards asking, back to back for `seconds`, for a random
/// metric and grouping: today's rates, then the 30-day series. (latencies
/// sorted, errors).
async fn dashboards(base: &str, clients: usize, seconds: u64, today: Date) -> Result<(Vec<f64>, u64)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let today_urls = Arc::new(urls(base, "rates", today, today));
    let series_urls = Arc::new(urls(base, "series", today - Span::days(29), today));
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (client, today_urls, series_urls) = (client.clone(), today_urls.clone(), series_urls.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(i as u64);
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < until {
                    for list in [&today_urls, &series_urls] {
                        let url = &list[rng.random_range(0..list.len())];
                        let started = Instant::now();
                        let ok = match client.get(url).send().await {
                            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        latencies.push(started.elapsed().as_secs_f64() * 1e3);
                        errors += u64::from(!ok);
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    Ok((all, errors))
}

/// `/v1/index766` over the main history: every ministry and province, and
/// one authority's agencies, for the last month, quarter and year (the
/// year is half over on the last day). (period, level) -> sorted latencies.
async fn time_index(client: &reqwest::Client, base: &str, repeat: usize) -> Result<BTreeMap<String, Vec<f64>>> {
    let periods = [("month", "2024-06"), ("quarter", "2024-Q2"), ("year", "2024")];
    let first: serde_json::Value =
        client.get(format!("{base}/v1/index766?period=2024-06")).send().await?.error_for_status()?.json().await?;
    let busiest = first["rows"]
        .as_array()
        .and_then(|rows| rows.iter().max_by_key(|r| r["indicators"][4]["denominator"].as_u64()))
        .and_then(|r| r["unit"].as_str())
        .context("a ranked authority")?
        .to_owned();
    let mut out = BTreeMap::new();
    for (kind, period) in periods {
        for (level, query) in
            [("authority", String::new()), ("agency", format!("&level=agency&authority_code={busiest}"))]
        {
            let url = format!("{base}/v1/index766?period={period}{query}");
            out.insert(format!("{kind}_{level}"), time_requests(client, &[url], repeat).await?);
        }
    }
    Ok(out)
}

/// The daily sums of the per-dossier facts views (how the rates were computed
/// before the rollup) and of `rate_days`, each as (rows, order-free hash),
/// per family: equal when every figure of every range and grouping is.
async fn same_answers(clickhouse: &ClickHouseArgs) -> Result<bool> {
    let keys = "day, authority_code, agency_code, procedure_code";
    let families: [(&str, &str, &str, &str); 3] = [
        (
            "sum(dossier), sum(full_online), sum(online), sum(closed_with_due), sum(closed_on_time), sum(digitized), \
             sum(resolved), sum(resolved_result_digitized), sum(vneid_verified), sum(with_fee), sum(with_fee_paid_online)",
            "dossier_facts",
            "sum(dossiers), sum(full_online), sum(online), sum(closed_with_due), sum(closed_on_time), sum(digitized), \
             sum(resolved), sum(resolved_result_digitized), sum(vneid_verified), sum(with_fee), sum(with_fee_paid_online)",
            "method = '' GROUP BY day, authority_code, agency_code, procedure_code HAVING sum(dossiers) > 0",
        ),
        (
            "toString(method), count(), sum(paid_online), sum(paid_online_vnd)",
            "payment_facts WHERE succeeded = 1",
            "method, sum(succeeded), sum(paid_online), sum(paid_online_vnd)",
            "method != '' GROUP BY day, authority_code, agency_code, procedure_code, method HAVING sum(succeeded) > 0",
        ),
        (
            "sum(rated), sum(satisfied), sum(neutral), sum(unsatisfied)",
            "rating_facts",
            "sum(ratings), sum(satisfied), sum(neutral), sum(unsatisfied)",
            "method = '' GROUP BY day, authority_code, agency_code, procedure_code HAVING sum(ratings) > 0",
        ),
    ];
    // The facts views merge every state at once: more memory than the
    // server's default per query, spilled to disk past 6 GB.
    let db = clickhouse
        .client()
        .with_setting("max_execution_time", "1800")
        .with_setting("max_memory_usage", "20000000000")
        .with_setting("max_bytes_before_external_group_by", "6000000000");
    let mut same = true;
    for (facts_sums, facts_from, days_sums, days_rest) in families {
        let hash = |cols: &str| {
            let n = cols.split(", ").count();
            let cast: Vec<String> = (0..n).map(|i| format!("toString(c{i})")).collect();
            let named: Vec<String> = cols.split(", ").enumerate().map(|(i, c)| format!("{c} AS c{i}")).collect();
            (named.join(", "), cast.join(", "))
        };
        let (facts_named, facts_cast) = hash(facts_sums);
        let (days_named, days_cast) = hash(days_sums);
        let facts_group = if facts_from.starts_with("payment") { format!("{keys}, method") } else { keys.to_owned() };
        let facts_sql = format!(
            "SELECT count(), sum(cityHash64(toString(day), authority_code, agency_code, procedure_code, {facts_cast})) \
             FROM (SELECT {keys}, {facts_named} FROM {facts_from} GROUP BY {facts_group})"
        );
        let days_sql = format!(
            "SELECT count(), sum(cityHash64(toString(day), authority_code, agency_code, procedure_code, {days_cast})) \
             FROM (SELECT {keys}, {days_named} FROM rate_days WHERE {days_rest})"
        );
        let facts: (u64, u64) = db.query(&facts_sql).fetch_one().await.with_context(|| facts_sql.clone())?;
        let days: (u64, u64) = db.query(&days_sql).fetch_one().await.with_context(|| days_sql.clone())?;
        eprintln!("query-bench: {facts_from}: facts views {facts:?}, rollup {days:?}");
        same &= facts == days;
    }
    Ok(same)
}

/// Bytes on disk per dossier, by table family.
async fn bytes_per_dossier(history: &History) -> Result<serde_json::Value> {
    let families = [
        ("raw_events", "('dossier_events', 'payment_events', 'feedback_events')"),
        ("states", "('dossier_state_v2', 'payment_state_v2', 'rating_state_v2', 'payment_dossiers')"),
        ("touches", "('touches')"),
        ("rollup", "('rate_rollup')"),
    ];
    let mut out = serde_json::Map::new();
    let mut total = 0.0;
    for (name, tables) in families {
        let sql = format!(
            "SELECT sum(bytes) FROM system.parts WHERE active AND database = '{}' AND table IN {tables}",
            history.clickhouse.database
        );
        let bytes: u64 = history.clickhouse.server_client().query(&sql).fetch_one().await?;
        let per = bytes as f64 / history.dossiers.max(1) as f64;
        total += per;
        out.insert(name.to_owned(), json!((per * 10.0).round() / 10.0));
    }
    out.insert("total".to_owned(), json!((total * 10.0).round() / 10.0));
    Ok(out.into())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.threads > 0 && args.days > 0, "--threads and --days must be positive");
    let last = LAST_DAY.date();
    let plan_for = |dossiers: u64| {
        let days = ((dossiers as f64 / args.dossiers as f64) * args.days as f64).round().max(1.0) as i64;
        Plan { dossiers, start: LAST_DAY - Span::days(days - 1), days, threads: args.threads }
    };
    let main_history = prepare(&args.stack, &args.bench_database, plan_for(args.dossiers)).await?;
    let events: u64 = main_history
        .clickhouse
        .client()
        .query(
            "SELECT (SELECT count() FROM dossier_events) + (SELECT count() FROM payment_events) \
             + (SELECT count() FROM feedback_events)",
        )
        .fetch_one()
        .await?;

    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    // Every request a query (no answers shared), for what the storage costs.
    let (mut api, base) = rates_api(&client, &args.stack, &main_history.clickhouse, &["--answer-cache-mb=0"]).await?;
    // One pass first, so the files are in the page cache.
    time_requests(&client, &urls(&base, "rates", last - Span::days(364), last), 1).await?;
    let today = time_requests(&client, &urls(&base, "rates", last, last), args.repeat).await?;
    let d30 = time_requests(&client, &urls(&base, "rates", last - Span::days(29), last), args.repeat).await?;
    let d365 = time_requests(&client, &urls(&base, "rates", last - Span::days(364), last), args.repeat).await?;
    let series = time_requests(&client, &urls(&base, "series", last - Span::days(29), last), args.repeat).await?;
    // The Decision 766 index: its own API process, queries allowed to run
    // long (the measure is how long they take).
    let (mut index_api, index_base) =
        rates_api(&client, &args.stack, &main_history.clickhouse, &["--query-timeout-ms=1200000"]).await?;
    eprintln!("query-bench: /v1/index766, {} requests per period and level", args.index_repeat);
    let index = time_index(&client, &index_base, args.index_repeat).await?;
    index_api.kill()?;
    index_api.wait()?;
    let ms = |v: f64| (v * 10.0).round() / 10.0;
    let index_result = json!({
        "benchmark": "GET /v1/index766 over the query benchmark's history: every ministry and province, and the busiest authority's agencies",
        "database": main_history.clickhouse.database,
        "dossiers_stored": main_history.dossiers,
        "periods": { "month": "2024-06", "quarter": "2024-Q2", "year": "2024 (January-June: the history ends on 30 June)" },
        "requests_each": args.index_repeat,
        "p50_ms": index.iter().map(|(k, v)| (k.clone(), json!(ms(percentile(v, 50.0))))).collect::<serde_json::Map<_, _>>(),
        "p95_ms": index.iter().map(|(k, v)| (k.clone(), json!(ms(percentile(v, 95.0))))).collect::<serde_json::Map<_, _>>(),
        "setup": "2 cores, ClickHouse 18.16 (Debian); dvc-rates-api with 4 query slots, one request at a time, the first period's request untimed",
    });
    std::fs::create_dir_all(args.index_out.parent().unwrap_or(&PathBuf::from(".")))?;
    std::fs::write(&args.index_out, serde_json::to_string_pretty(&index_result)? + "\n")?;
    eprintln!("query-bench: {}", serde_json::to_string_pretty(&index_result)?);
    // The dashboards ask the API as deployed (default settings).
    let (mut shared_api, shared_base) = rates_api(&client, &args.stack, &main_history.clickhouse, &[]).await?;
    eprintln!("query-bench: {} dashboards for {} s", args.clients, args.client_seconds);
    let (concurrent, concurrent_errors) = dashboards(&shared_base, args.clients, args.client_seconds, last).await?;
    // As under live traffic: ids touched since the last batch, whose rows
    // the API reads from their states (the pending delta; 2,000 dossiers: a
    // few seconds of a national day's touches).
    let db = main_history.clickhouse.client();
    db.query("INSERT INTO touches SELECT now(), 1, dossier_id FROM dossier_state_v2 LIMIT 2000").execute().await?;
    let pending: u64 = db.query("SELECT count() FROM rollup_pending").fetch_one().await?;
    ensure!(pending > 0, "the touches are pending");
    let today_pending = time_requests(&client, &urls(&base, "rates", last, last), args.repeat).await?;
    let d30_pending = time_requests(&client, &urls(&base, "rates", last - Span::days(29), last), args.repeat).await?;
    let pending_seconds = args.client_seconds.min(20);
    eprintln!("query-bench: {} dashboards for {pending_seconds} s with ids pending", args.clients);
    let (concurrent_pending, concurrent_pending_errors) =
        dashboards(&shared_base, args.clients, pending_seconds, last).await?;
    roll_up(&main_history.clickhouse).await?;
    for child in [&mut api, &mut shared_api] {
        child.kill()?;
        child.wait()?;
    }
    let same = same_answers(&main_history.clickhouse).await?;
    let bytes = bytes_per_dossier(&main_history).await?;

    let mut by_history = BTreeMap::new();
    by_history.insert(main_history.dossiers, percentile(&today, 95.0));
    let mut histories = Vec::new();
    for &n in &args.history {
        let h = prepare(&args.stack, &format!("{}_{n}", args.bench_database), plan_for(n)).await?;
        let (mut api, base) = rates_api(&client, &args.stack, &h.clickhouse, &["--answer-cache-mb=0"]).await?;
        time_requests(&client, &urls(&base, "rates", last, last), 1).await?;
        let one_day = time_requests(&client, &urls(&base, "rates", last, last), args.repeat).await?;
        api.kill()?;
        api.wait()?;
        by_history.insert(h.dossiers, percentile(&one_day, 95.0));
        histories.push(json!({
            "database": h.clickhouse.database, "dossiers_stored": h.dossiers,
            "load_seconds": h.load_seconds, "rollup_seconds": h.rollup_seconds,
        }));
        if args.drop {
            h.clickhouse.server_client().query(&format!("DROP DATABASE {}", h.clickhouse.database)).execute().await?;
        }
    }
    let result = json!({
        "benchmark": "rates over a national-scale history: GET /v1/rates and /v1/series, every metric × grouping",
        "database": main_history.clickhouse.database,
        "dossiers_stored": main_history.dossiers,
        "events_stored": events,
        "history_days": args.days,
        "last_day": last.to_string(),
        "load_seconds": main_history.load_seconds,
        "rollup_seconds": main_history.rollup_seconds,
        "rollup_seconds_per_10m_dossiers": ms(main_history.rollup_seconds * 1e7 / main_history.dossiers.max(1) as f64),
        "requests_per_range": today.len(),
        "today_p50_ms": ms(percentile(&today, 50.0)),
        "today_p95_ms": ms(percentile(&today, 95.0)),
        "d30_p50_ms": ms(percentile(&d30, 50.0)),
        "d30_p95_ms": ms(percentile(&d30, 95.0)),
        "d365_p50_ms": ms(percentile(&d365, 50.0)),
        "d365_p95_ms": ms(percentile(&d365, 95.0)),
        "pending_ids": pending,
        "today_pending_p95_ms": ms(percentile(&today_pending, 95.0)),
        "d30_pending_p95_ms": ms(percentile(&d30_pending, 95.0)),
        "series_30d_p50_ms": ms(percentile(&series, 50.0)),
        "series_30d_p95_ms": ms(percentile(&series, 95.0)),
        "same_answers": same,
        "one_day_p95_ms_by_history": by_history.iter().map(|(k, v)| (k.to_string(), json!(ms(*v)))).collect::<serde_json::Map<_, _>>(),
        "histories": histories,
        "concurrent_clients": args.clients,
        "concurrent_seconds": args.client_seconds,
        "concurrent_requests": concurrent.len(),
        "concurrent_p50_ms": ms(percentile(&concurrent, 50.0)),
        "concurrent_p99_ms": ms(percentile(&concurrent, 99.0)),
        "concurrent_errors": concurrent_errors,
        "concurrent_pending_seconds": pending_seconds,
        "concurrent_pending_requests": concurrent_pending.len(),
        "concurrent_pending_p50_ms": ms(percentile(&concurrent_pending, 50.0)),
        "concurrent_pending_p99_ms": ms(percentile(&concurrent_pending, 99.0)),
        "concurrent_pending_errors": concurrent_pending_errors,
        "bytes_per_dossier": bytes,
        "setup": "2 cores, ClickHouse 18.16 (Debian); single requests: dvc-rates-api with 4 query slots and no shared answers (--answer-cache-mb=0), after one warm-up pass; dashboards: default settings (4 query slots; the rollup's sums shared per batch, the pending delta per check)",
    });
    std::fs::create_dir_all(args.out.parent().unwrap_or(&PathBuf::from(".")))?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    if args.drop {
        main_history
            .clickhouse
            .server_client()
            .query(&format!("DROP DATABASE {}", main_history.clickhouse.database))
            .execute()
            .await?;
    }
    Ok(())
}
