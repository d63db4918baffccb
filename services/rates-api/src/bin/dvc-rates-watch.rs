//! `dvc-rates-watch`: every metric of the catalog for the country, the
//! ministries and the provinces, read from the rates API and redrawn in the
//! terminal every few seconds (once, when the output is not a terminal or
//! with `--once`), with the contract 1.1 data stored so far for the Decision
//! 766 index (petitions by stage, catalogue entries), read from ClickHouse,
//! and the index's live ranking of the current month (the best and the
//! worst three ministries and provinces, from `/v1/index766`, read less
//! often: it costs more). Ctrl-C stops it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use clickhouse::Row;
use dvc_rates_api::RateRow;
use dvc_warehouse::{ClickHouseArgs, METRICS, Metric, MetricKind};
use num_format::{Locale, ToFormattedString};
use serde::Deserialize;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use tokio::task::JoinSet;

/// A live table of the DVC Pulse rates in the terminal.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Base URL of the rates API.
    #[arg(long, env = "DVC_RATES_URL", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// First day (YYYY-MM-DD, Vietnam calendar) [default: today].
    #[arg(long)]
    from: Option<String>,
    /// Last day [default: today].
    #[arg(long)]
    to: Option<String>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2)]
    interval: u64,
    /// Print the table once and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between reads of the Decision 766 ranking.
    #[arg(long, default_value_t = 20)]
    index_interval: u64,
    /// Where the petitions and the catalogue are counted.
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
}

/// Contract 1.1 data in the warehouse, all days: petitions by where they
/// stand and the procedure catalogue's entries.
#[derive(Debug, Row, Deserialize)]
struct Stored {
    petitions: u64,
    rejected: u64,
    answered: u64,
    catalogue: u64,
}

/// One pass over `petitions` (a view that merges every petition's state).
const STORED: &str = "SELECT count() AS petitions, \
    countIf(status = 'rejected') AS rejected, \
    countIf(status IN ('answered', 'published')) AS answered, \
    (SELECT count() FROM procedure_catalog) AS catalogue \
    FROM petitions";

#[derive(Deserialize)]
struct Rates {
    rows: Vec<RateRow>,
}

/// One metric's national, ministry and province rows.
struct Line {
    metric: &'static Metric,
    national: Option<RateRow>,
    ministry: Option<RateRow>,
    province: Option<RateRow>,
}

fn vietnam_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(UtcOffset::from_hms(7, 0, 0).unwrap_or(UtcOffset::UTC))
}

async fn rates(client: &reqwest::Client, url: String) -> Result<Vec<RateRow>> {
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    let response = response.error_for_status().with_context(|| format!("GET {url}"))?;
    Ok(response.json::<Rates>().await.with_context(|| format!("GET {url}"))?.rows)
}

/// Every metric, national and by authority kind, over `from..=to`.
async fn fetch(client: &reqwest::Client, api: &str, from: &str, to: &str) -> Result<Vec<Line>> {
    let mut requests = JoinSet::new();
    for (i, metric) in METRICS.iter().enumerate() {
        for grouping in ["national", "authority_kind"] {
            let url = format!("{api}/v1/rates?metric={}&from={from}&to={to}&group_by={grouping}", metric.name);
            let client = client.clone();
            requests.spawn(async move { (i, grouping, rates(&client, url).await) });
        }
    }
    let mut lines: Vec<Line> =
        METRICS.iter().map(|metric| Line { metric, national: None, ministry: None, province: None }).collect();
    while let Some(done) = requests.join_next().await {
        let (i, grouping, rows) = done?;
        for row in rows? {
            let line = &mut lines[i];
            match (grouping, row.group.as_str()) {
                ("national", _) => line.national = Some(row),
                (_, "ministry") => line.ministry = Some(row),
                (_, "province") => line.province = Some(row),
                _ => {}
            }
        }
    }
    Ok(lines)
}

/// `1234567` as `1,234,567`.
/// The Decision 766 ranking of a month, as `/v1/index766` answers it.
#[derive(Deserialize)]
struct Ranking {
    period: String,
    provisional: bool,
    rows: Vec<Ranked>,
}

#[derive(Deserialize)]
struct Ranked {
    unit: String,
    name: Option<String>,
    kind: Option<String>,
    total: f64,
    rank: u32,
    projection: Option<Projection>,
}

#[derive(Deserialize)]
struct Projection {
    total: f64,
}

async fn ranking(client: &reqwest::Client, api: &str, month: &str) -> Result<Ranking> {
    let url = format!("{api}/v1/index766?period={month}&level=authority");
    let response = client.get(&url).send().await.with_context(|| url.clone())?;
    response.error_for_status().with_context(|| url.clone())?.json().await.with_context(|| url)
}

/// The best and the worst three of each kind.
fn render_ranking(ranking: &Result<Ranking>) -> String {
    let ranking = match ranking {
        Ok(r) => r,
        Err(e) => return format!("\nDecision 766 index: not readable: {e:#}\n"),
    };
    let state = if ranking.provisional { "provisional, projected at the month's end in brackets" } else { "final" };
    let mut out = format!("\nDecision 766 index, {} ({state})\n", ranking.period);
    for (kind, title) in [("ministry", "Ministries"), ("province", "Provinces")] {
        let rows: Vec<&Ranked> = ranking.rows.iter().filter(|r| r.kind.as_deref() == Some(kind)).collect();
        let shown: Vec<&Ranked> = if rows.len() > 6 {
            rows[..3].iter().chain(&rows[rows.len() - 3..]).copied().collect()
        } else {
            rows.clone()
        };
        out += &format!("  {title} ({} ranked)\n", rows.len());
        for r in shown {
            let name: String = r.name.as_deref().unwrap_or("").chars().take(40).collect();
            let projected = r.projection.as_ref().map_or(String::new(), |p| format!(" ({:.2})", p.total));
            out += &format!("    {:>3}. {:<46} {:>7.2}{projected}\n", r.rank, format!("{name} ({})", r.unit), r.total);
        }
    }
    out
}

fn thousands(n: u64) -> String {
    n.to_formatted_string(&Locale::en)
}

fn cell(metric: &Metric, row: Option<&RateRow>) -> String {
    let value = row.and_then(|r| r.value.as_ref());
    match (metric.kind, value) {
        (_, None) => "–".to_owned(),
        (MetricKind::Rate, Some(v)) => format!("{:.1}%", v.as_f64().unwrap_or(f64::NAN) * 100.0),
        (MetricKind::Total, Some(v)) => thousands(v.as_u64().unwrap_or(0)),
    }
}

fn render(lines: &[Line], stored: &Result<Stored>, from: &str, to: &str) -> String {
    let mut out = format!(
        "DVC Pulse: rates from {from} to {to} (Vietnam days), refreshed {}\n\n",
        vietnam_now().format(format_description!("[hour]:[minute]:[second]")).unwrap_or_default()
    );
    out += &format!("{:<64} {:>16} {:>16} {:>16}\n", "metric", "national", "ministries", "provinces");
    for line in lines {
        let title: String = line.metric.title_en.chars().take(64).collect();
        out += &format!(
            "{title:<64} {:>16} {:>16} {:>16}\n",
            cell(line.metric, line.national.as_ref()),
            cell(line.metric, line.ministry.as_ref()),
            cell(line.metric, line.province.as_ref())
        );
    }
    let dossiers = |row: &Option<RateRow>| row.as_ref().and_then(|r| r.denominator).map_or("–".to_owned(), thousands);
    let count = &lines[0];
    out += &format!(
        "{:<64} {:>16} {:>16} {:>16}\n",
        "Dossiers",
        dossiers(&count.national),
        dossiers(&count.ministry),
        dossiers(&count.province)
    );
    out += "\nStored for the Decision 766 index (all days)\n";
    match stored {
        Ok(s) => {
            let open = s.petitions.saturating_sub(s.rejected + s.answered);
            out += &format!(
                "{:<64} {:>16}   {} open, {} answered, {} rejected\n",
                "Petitions (phản ánh, kiến nghị)",
                thousands(s.petitions),
                thousands(open),
                thousands(s.answered),
                thousands(s.rejected)
            );
            out += &format!("{:<64} {:>16}\n", "Procedure catalogue entries", thousands(s.catalogue));
        }
        Err(e) => out += &format!("  not readable: {e:#}\n"),
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let api = args.api.trim_end_matches('/');
    let live = !args.once && std::io::stdout().is_terminal();
    let db = args.clickhouse.client();
    let mut index: Option<(std::time::Instant, String)> = None;
    loop {
        let today = vietnam_now().date().to_string();
        let to = args.to.clone().unwrap_or_else(|| today.clone());
        let from = args.from.clone().unwrap_or(today);
        let stored = db.query(STORED).fetch_one::<Stored>().await.context("counting in ClickHouse");
        if index.as_ref().is_none_or(|(read, _)| read.elapsed() >= Duration::from_secs(args.index_interval)) {
            let month: String = to.chars().take(7).collect();
            index = Some((std::time::Instant::now(), render_ranking(&ranking(&client, api, &month).await)));
        }
        let ranked = index.as_ref().map_or("", |(_, text)| text.as_str());
        let screen = match fetch(&client, api, &from, &to).await {
            Ok(lines) => render(&lines, &stored, &from, &to) + ranked,
            Err(e) if live => format!("waiting for the rates API at {api}: {e:#}\n"),
            Err(e) => return Err(e),
        };
        let mut stdout = std::io::stdout().lock();
        if live {
            // Home, clear the screen, draw.
            write!(stdout, "\x1b[H\x1b[2J{screen}\nDashboards: {api}/ and {api}/index766    Ctrl-C to stop.\n")?;
        } else {
            write!(stdout, "{screen}")?;
        }
        stdout.flush()?;
        drop(stdout);
        if !live {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
