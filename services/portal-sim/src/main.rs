//! `dvc-portal-sim`: publishes calibrated portal traffic to Kafka as the
//! national portal and the ministry and provincial systems would. First it
//! backfills `--backfill-days` of history as fast as the broker takes it
//! (with a progress bar), then it streams live: every event when it happens,
//! until `--live-seconds` pass or SIGINT/SIGTERM. On stop it waits up to
//! `FLUSH_TIMEOUT` for the broker to acknowledge what it sent, prints a JSON
//! summary on stdout, and exits non-zero if any message went unacknowledged.

mod publisher;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use dvc_events::topics;
use dvc_portal_sim::catalog;
use dvc_portal_sim::lifecycle::Portal;
use dvc_portal_sim::timeline::{FaultRates, Timeline, events_per_dossier};
use indicatif::{ProgressBar, ProgressStyle};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::publisher::Publisher;

/// How long a stop waits for the broker's last acknowledgements.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Publishes realistic, calibrated public-service portal traffic to Kafka.
#[derive(Debug, Parser)]
#[command(version)]
struct Config {
    #[arg(long, env = "DVC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, env = "DVC_DOSSIER_TOPIC", default_value = topics::DOSSIER)]
    dossier_topic: String,
    #[arg(long, env = "DVC_PAYMENT_TOPIC", default_value = topics::PAYMENT)]
    payment_topic: String,
    #[arg(long, env = "DVC_FEEDBACK_TOPIC", default_value = topics::FEEDBACK)]
    feedback_topic: String,
    #[arg(long, env = "DVC_PETITION_TOPIC", default_value = topics::PETITION)]
    petition_topic: String,
    #[arg(long, env = "DVC_CATALOG_TOPIC", default_value = topics::CATALOG)]
    catalog_topic: String,

    /// Seed of every random choice (default: from the clock). The same seed,
    /// --now and flags give the same messages.
    #[arg(long)]
    seed: Option<u64>,
    /// Contract events per second, on average over a day [default: the
    /// national portal's volume, 13.9 million dossiers per half-year].
    #[arg(long)]
    rate: Option<f64>,
    /// Days of history to publish first, as fast as the broker takes them.
    #[arg(long, default_value_t = 0.0)]
    backfill_days: f64,
    /// Ministries and provinces publishing (2 to 85; the kinds keep their
    /// proportions).
    #[arg(long, default_value_t = 85)]
    authorities: usize,
    /// Spread arrivals evenly over the day instead of the office-hours curve.
    #[arg(long)]
    flat: bool,
    /// How long to stream live after the backfill [default: until stopped];
    /// 0 publishes the backfill only.
    #[arg(long)]
    live_seconds: Option<u64>,
    /// Keep this file up to date with the phase (backfill, live, stopped)
    /// and the counts handed to the producer (every second while live), for
    /// scripts and monitoring.
    #[arg(long)]
    status_file: Option<PathBuf>,
    /// End of the backfill instead of the clock (RFC 3339); backfill only.
    #[arg(long, value_parser = parse_time)]
    now: Option<OffsetDateTime>,
    /// Print the procedure catalogue it publishes first (JSON Lines, as
    /// dvc-catalog reads them: every procedure at every authority in being
    /// on --now's date, or today's) and exit without publishing.
    #[arg(long)]
    print_catalogue: bool,

    /// Share of events sent twice (the same event_id).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    duplicate_rate: f64,
    /// Share of events sent after the dossier's next event.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    out_of_order_rate: f64,
    /// Share of events held back for between an hour and --late-max-hours.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    late_rate: f64,
    #[arg(long, default_value_t = 48.0)]
    late_max_hours: f64,
    /// Share of events also sent as a mangled copy (not JSON, a missing field,
    /// a timestamp without offset, an unknown schema version).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    malformed_rate: f64,
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("a share between 0 and 1".into()),
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")),
        )
        .init();
    let config = Config::parse();
    if !(2..=usize::from(catalog::MINISTRIES) + usize::from(catalog::PROVINCES)).contains(&config.authorities) {
        bail!("--authorities must be between 2 and 85");
    }
    if config.print_catalogue {
        // The catalogue is the same whatever the seed.
        let at = config.now.unwrap_or_else(OffsetDateTime::now_utc);
        let mut out = std::io::stdout().lock();
        for entry in Portal::new(0, config.authorities).catalogue(at) {
            serde_json::to_writer(&mut out, &entry)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if config.now.is_some() && config.live_seconds != Some(0) {
        bail!("--now sets the end of a backfill: add --live-seconds 0");
    }
    if !(config.backfill_days >= 0.0 && config.rate.is_none_or(|r| r > 0.0)) {
        bail!("--backfill-days must be ≥ 0 and --rate > 0");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let seed = config.seed.unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp_nanos() as u64);
    let rate = config.rate.unwrap_or_else(|| {
        catalog::NATIONAL_DOSSIERS_PER_DAY * events_per_dossier(seed, config.authorities) / 86_400.0
    });
    let faults = FaultRates {
        duplicate: config.duplicate_rate,
        out_of_order: config.out_of_order_rate,
        late: config.late_rate,
        late_max: Duration::seconds_f64(config.late_max_hours * 3600.0),
        malformed: config.malformed_rate,
    };
    let end = config.now.unwrap_or_else(OffsetDateTime::now_utc);
    let start = end - Duration::seconds_f64(config.backfill_days * 86_400.0);
    let mut timeline = Timeline::new(seed, config.authorities, rate, !config.flat, faults, start);
    let mut publisher = Publisher::new(
        &config.brokers,
        [
            config.dossier_topic.as_str(),
            config.payment_topic.as_str(),
            config.feedback_topic.as_str(),
            config.petition_topic.as_str(),
            config.catalog_topic.as_str(),
        ],
    )?;
    tracing::info!(seed, rate, backfill_days = config.backfill_days, authorities = config.authorities, "publishing");

    let status = Status { file: config.status_file.as_deref() };
    backfill(&mut timeline, &mut publisher, start, end, &stop);
    if config.now.is_none() && config.live_seconds != Some(0) {
        status.write("live", &publisher)?;
        live(&mut timeline, &mut publisher, config.live_seconds, &stop, &status)?;
    }
    let sent = publisher.finish(FLUSH_TIMEOUT);
    status.write_sent("stopped", sent)?;
    let summary = serde_json::json!({
        "seed": seed,
        "events_per_second": rate,
        "sent": sent,
        "generated": timeline.stats(),
        "open_dossiers": timeline.open_dossiers(),
    });
    println!("{summary}");
    if sent.failed > 0 {
        bail!("{} of {} messages were not acknowledged by the broker", sent.failed, sent.total);
    }
    Ok(())
}

/// Publishes everything due from `start` to `end`, a simulated minute at a
/// time, as fast as the broker takes it.
fn backfill(
    timeline: &mut Timeline,
    publisher: &mut Publisher,
    start: OffsetDateTime,
    end: OffsetDateTime,
    stop: &AtomicBool,
) {
    let span = (end - start).whole_seconds().max(0) as u64;
    let bar = ProgressBar::new(span).with_style(
        ProgressStyle::with_template(
            "backfill {bar:40} {percent:>3}% of the history, {msg} [{elapsed_precise}, ~{eta} left]",
        )
        .expect("a valid template"),
    );
    let mut out = Vec::new();
    let mut cursor = start;
    while cursor < end && !stop.load(Ordering::Relaxed) {
        cursor = (cursor + Duration::minutes(1)).min(end);
        timeline.advance(cursor, &mut out);
        publisher.send_all(&mut out, stop);
        bar.set_position((cursor - start).whole_seconds() as u64);
        bar.set_message(format!("{} messages", publisher.sent().total));
    }
    bar.finish();
    if span > 0 {
        tracing::info!(sent = publisher.sent().total, "backfill published");
    }
}

/// The `--status-file`, replaced whole on each write.
struct Status<'a> {
    file: Option<&'a Path>,
}

impl Status<'_> {
    fn write(&self, phase: &str, publisher: &Publisher) -> Result<()> {
        self.write_sent(phase, publisher.sent())
    }

    fn write_sent(&self, phase: &str, sent: publisher::Sent) -> Result<()> {
        let Some(file) = self.file else { return Ok(()) };
        let next = file.with_extension("tmp");
        std::fs::write(&next, serde_json::json!({ "phase": phase, "sent": sent }).to_string())?;
        std::fs::rename(&next, file).with_context(|| format!("writing {}", file.display()))
    }
}

/// Publishes each message when it is due, until `seconds` pass or a stop.
fn live(
    timeline: &mut Timeline,
    publisher: &mut Publisher,
    seconds: Option<u64>,
    stop: &AtomicBool,
    status: &Status<'_>,
) -> Result<()> {
    let started = Instant::now();
    let mut logged = Instant::now();
    let mut written = Instant::now();
    let mut out = Vec::new();
    let at_start = publisher.sent().total;
    tracing::info!("streaming live");
    while !stop.load(Ordering::Relaxed) && seconds.is_none_or(|s| started.elapsed().as_secs() < s) {
        let now = OffsetDateTime::now_utc();
        timeline.advance(now, &mut out);
        publisher.send_all(&mut out, stop);
        if written.elapsed().as_secs() >= 1 {
            written = Instant::now();
            status.write("live", publisher)?;
        }
        if logged.elapsed().as_secs() >= 10 {
            logged = Instant::now();
            let sent = publisher.sent().total - at_start;
            tracing::info!(sent, per_second = sent as f64 / started.elapsed().as_secs_f64(), "live");
        }
        let wait = (timeline.next_due() - OffsetDateTime::now_utc()).clamp(Duration::ZERO, Duration::milliseconds(100));
        std::thread::sleep(wait.unsigned_abs());
    }
    Ok(())
}
