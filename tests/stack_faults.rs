//! Faults on the local stack itself, as `make up` runs it and with its
//! defaults (the 45 s session timeout, not the fault tests' 3 s): the stack's
//! `dvc-ingest` killed with -9 and brought back by `stack.sh up`, and the
//! broker killed with -9 and brought back while events stream in. These tests
//! restart the shared stack, so they run one at a time, in a test binary of
//! their own (cargo runs test binaries one after another).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{KillOnDrop, TestEnv, producer, publish, stream_traffic, traffic};
use dvc_events::{Stream, topics};
use dvc_warehouse::ClickHouseArgs;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The stack is restarted by these tests: never two at once.
static STACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The session timeout the stack's `dvc-ingest` runs with: the service's
/// default (or the environment's DVC_KAFKA_SESSION_TIMEOUT_MS, which the stack
/// inherits too).
fn stack_session_timeout() -> Duration {
    use clap::Parser;
    dvc_ingest::Config::try_parse_from(["dvc-ingest"]).expect("defaults parse").session_timeout()
}

/// The pid of a stack service, from `run/NAME.pid` in the stack's folder
/// (DVC_LOCAL_DIR, as `make test` sets it, else `.local`).
fn stack_pid(name: &str) -> u32 {
    let local = std::env::var_os("DVC_LOCAL_DIR").map_or_else(|| root().join(".local"), PathBuf::from);
    let file = local.join("run").join(format!("{name}.pid"));
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}; these tests need the stack (`make up`)", file.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Whether `pid` runs (a killed process not yet reaped by its parent does not).
fn alive(pid: u32) -> bool {
    std::process::Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .output()
        .is_ok_and(|out| out.status.success() && !out.stdout.trim_ascii().starts_with(b"Z"))
}

/// kill -9 of a stack service, and waits until it is gone.
async fn kill_9(name: &str) {
    let pid = stack_pid(name);
    assert!(alive(pid), "the stack's {name} (pid {pid}) is not running");
    let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -9 {pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{name} (pid {pid}) survived kill -9");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `deploy/local/stack.sh up`: restarts what is not running; returns once all answer.
async fn stack_up() {
    let output = tokio::task::spawn_blocking(|| {
        std::process::Command::new(root().join("deploy/local/stack.sh")).arg("up").output()
    })
    .await
    .unwrap()
    .expect("stack.sh runs");
    assert!(
        output.status.success(),
        "stack.sh up failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The stack's topics and database, with `run` naming this test's events in them.
fn stack_env(run: &str) -> TestEnv {
    TestEnv {
        name: run.to_owned(),
        clickhouse: ClickHouseArgs::default(),
        topics: Stream::ALL.map(|s| s.topic().to_owned()),
        dead_letter_topic: topics::DEAD_LETTER.to_owned(),
    }
}

/// The stack's ingest `/healthz` and the named metric's value on `/metrics`.
async fn stack_ingest_health() -> (u16, String) {
    let response = reqwest::get("http://127.0.0.1:9464/healthz").await.expect("ingest /healthz answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn stack_ingest_metric(name: &str) -> Option<f64> {
    let text = reqwest::get("http://127.0.0.1:9464/metrics").await.ok()?.text().await.ok()?;
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stack_ingest_killed_five_times_stores_new_events_within_two_session_timeouts() {
    let _stack = STACK.lock().await;
    let session = stack_session_timeout();
    let bound = session * dvc_ingest::membership::STUCK_AFTER_SESSIONS;
    let run = format!("stack-kill-{}-{}", std::process::id(), common::millis());
    let env = stack_env(&run);
    let producer = producer();
    let mut took = Vec::new();
    for round in 0..5 {
        kill_9("ingest").await;
        stack_up().await;
        let restarted = Instant::now();
        let prefix = format!("{run}-r{round}");
        let events: Vec<_> =
            traffic(&prefix, 1_000, round).into_iter().filter(|(s, _)| *s == Stream::Dossier).collect();
        let messages: Vec<_> = events.iter().map(|(_, m)| m.clone()).collect();
        publish(&producer, env.topic(Stream::Dossier), &messages).await;
        let sql = format!("SELECT uniqExact(event_id) FROM dossier_events WHERE startsWith(event_id, '{prefix}-')");
        let remaining = bound.saturating_sub(restarted.elapsed());
        env.wait_for_count(&sql, messages.len() as u64, remaining).await;
        let rejoins = stack_ingest_metric("dvc_ingest_rejoins_total").await.unwrap_or_default();
        took.push((restarted.elapsed().as_secs_f64(), rejoins));
        let rows =
            env.count(&format!("SELECT count() FROM dossier_events WHERE startsWith(event_id, '{prefix}-')")).await;
        assert_eq!(rows, messages.len() as u64, "round {round}: every event stored once");
    }
    eprintln!("per round: seconds from restart to all new events stored, and rejoins: {took:?} (bound {bound:?})");
    let (status, body) = stack_ingest_health().await;
    assert_eq!(status, 200, "healthy after the restarts: {body}");
    assert_eq!(
        stack_ingest_metric("dvc_ingest_assigned_partitions").await,
        Some(f64::from(common::ALL_PARTITIONS)),
        "the one stack instance owns every partition of the five topics"
    );
}

/// Records in `topic` now: the sum of its partitions' high minus low watermarks.
fn records_in(topic: &str) -> u64 {
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", common::brokers()).create().unwrap();
    (0..common::PARTITIONS)
        .map(|p| {
            let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30)).expect("watermarks");
            u64::try_from(high - low).unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_killed_while_events_stream_loses_and_doubles_nothing() {
    let _stack = STACK.lock().await;
    let session = stack_session_timeout();
    let env = TestEnv::new("broker_kill").await;
    let logs = std::env::temp_dir().join(format!("dvc-e2e-{}", env.name));
    std::fs::create_dir_all(&logs).unwrap();
    // This test's own instance, with the stack's settings (its session timeout).
    let _ingest: KillOnDrop =
        env.spawn_ingest(&logs.join("ingest.log"), &[&format!("--session-timeout-ms={}", session.as_millis())]);
    let events = traffic(&env.name, 60_000, 7);

    let streaming = stream_traffic(&env, &events, 40, Duration::from_millis(500));
    let outage = async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        kill_9("tansu").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        stack_up().await;
    };
    tokio::join!(streaming, outage);

    // Producers retry what the dead broker did not acknowledge, so the topics
    // may hold a record twice (at-least-once delivery, as from any portal):
    // every record is stored once by its coordinates, every event by its id.
    for stream in Stream::ALL {
        let table = dvc_ingest::rows::table_of(stream);
        let records = records_in(env.topic(stream));
        let produced = events.iter().filter(|(s, _)| *s == stream).count() as u64;
        assert!(records >= produced, "{table}: {records} records for {produced} events: the broker lost some");
        eprintln!(
            "{table}: {produced} events, {records} records in the topic (re-sent by the producer: {})",
            records - produced
        );
        env.wait_for_count(
            &format!("SELECT uniqExact(kafka_partition, kafka_offset) FROM {table}"),
            records,
            session * 4,
        )
        .await;
        assert_eq!(env.count(&format!("SELECT count() FROM {table}")).await, records, "{table}: a record stored twice");
        let distinct = format!("SELECT uniqExact({}) FROM {table}", common::identity_columns(stream));
        assert_eq!(env.count(&distinct).await, produced, "{table}: events");
    }

    // The stack's own instance resumed by itself too.
    let run = format!("stack-broker-{}", env.name);
    let stack = stack_env(&run);
    let fresh: Vec<_> =
        traffic(&run, 300, 8).into_iter().filter(|(s, _)| *s == Stream::Dossier).map(|(_, m)| m).collect();
    publish(&producer(), stack.topic(Stream::Dossier), &fresh).await;
    stack
        .wait_for_count(
            &format!("SELECT uniqExact(event_id) FROM dossier_events WHERE startsWith(event_id, '{run}-')"),
            fresh.len() as u64,
            session * dvc_ingest::membership::STUCK_AFTER_SESSIONS,
        )
        .await;
    std::fs::remove_dir_all(&logs).ok();
}
