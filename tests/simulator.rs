//! The portal simulator: its traffic lands on the seed figures (checked with
//! the independent recount of tests/common/recount.rs), and `dvc-portal-sim`
//! publishes it, with faults, through the real broker, ingest and ClickHouse
//! to the rates API; it stops cleanly on SIGINT with everything delivered,
//! and a stop while the broker is down (librdkafka's mock cluster) ends in a
//! bounded time with every message either stored or reported as lost.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::recount::{Endpoint, Sums, assert_api_matches_recount, recount};
use common::{TestEnv, binary, start_api, topic_size, topic_size_on};
use dvc_events::{Event, Stream};
use dvc_portal_sim::catalog;
use dvc_portal_sim::lifecycle::{Portal, Traffic};
use dvc_portal_sim::timeline::{FaultRates, Sending, Timeline};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::mocking::MockCluster;
use serde_json::Value;
use time::macros::{date, datetime};
use time::{Duration as Span, OffsetDateTime};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

fn rate(sums: &Sums, group: &str) -> f64 {
    let (num, den) = sums[group];
    num as f64 / den as f64
}

fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!((got - want).abs() <= tolerance, "{what}: {got:.4}, want {want:.4} ± {tolerance}");
}

/// `dossiers` dossiers of the full country submitted over 30 days, whole lives.
fn country(seed: u64, dossiers: u32) -> Traffic {
    let start = datetime!(2024-07-01 00:00 UTC);
    let mut portal = Portal::new(seed, 85);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut traffic = Traffic::default();
    for _ in 0..dossiers {
        portal.dossier(start + Span::seconds(rng.random_range(0..30 * 86_400)), &mut traffic);
    }
    traffic
}

#[test]
fn traffic_is_calibrated_to_the_seed_figures() {
    let traffic = country(21, 120_000);
    let counted = recount(&traffic, date!(2024 - 06 - 01), date!(2024 - 12 - 31));
    let sums = |metric: &str, grouping: &str| &counted[&(metric.to_owned(), grouping.to_owned())];

    let full = sums("full_online_share", "authority_kind");
    assert_near("full-online, ministries", rate(full, "ministry"), catalog::FULL_ONLINE_MINISTRIES, 0.005);
    assert_near("full-online, provinces", rate(full, "province"), catalog::FULL_ONLINE_PROVINCES, 0.005);
    let national = |metric: &str| rate(sums(metric, "national"), "national");
    assert_near("full-online, national", national("full_online_share"), catalog::FULL_ONLINE_NATIONAL, 0.005);
    assert_near("digitized dossiers", national("digitization_rate"), catalog::DIGITIZED, 0.01);
    assert_near("digitized results", national("result_digitization_rate"), catalog::RESULT_DIGITIZED, 0.01);
    assert_near("VNeID", national("vneid_rate"), catalog::VNEID_LINKED, 0.01);
    assert_near("satisfied", national("satisfaction_rate"), catalog::SATISFIED, 0.01);

    let dossiers = sums("full_online_share", "national")["national"].1 as f64;
    let payments = sums("online_payment_count", "national")["national"].0 as f64;
    let value = sums("online_payment_value_vnd", "national")["national"].0 as f64;
    let per_dossier = payments / dossiers;
    assert!((per_dossier / catalog::ONLINE_PAYMENTS_PER_DOSSIER - 1.0).abs() < 0.02, "{per_dossier} per dossier");
    let mean = value / payments;
    assert!((mean / catalog::MEAN_ONLINE_PAYMENT_VND - 1.0).abs() < 0.02, "{mean} VND per payment");

    // Contract 1.1's flags, each set once per dossier when it is filed.
    let filed: Vec<_> = traffic.dossiers.iter().filter(|e| e.status == dvc_events::Status::Submitted).collect();
    assert_eq!(filed.len(), 120_000);
    let share = |flag: fn(&dvc_events::DossierEvent) -> Option<bool>| {
        assert!(filed.iter().all(|e| flag(e).is_some()), "every filing says");
        filed.iter().filter(|e| flag(e) == Some(true)).count() as f64 / filed.len() as f64
    };
    assert_near("reused data", share(|e| e.reused_digitized_data), catalog::REUSED_DIGITIZED_DATA, 0.01);
    assert_near("personal store", share(|e| e.from_personal_store), catalog::FROM_PERSONAL_STORE, 0.005);
    assert_near("population data", share(|e| e.population_db_used), catalog::POPULATION_DB_USED, 0.01);

    // Petitions: first ones on their share of dossiers within one (a
    // low-discrepancy pick), repeats about their share, each sent after the
    // petition it repeats had its last step, about the same dossier.
    let mut steps: std::collections::HashMap<&str, Vec<&dvc_events::PetitionEvent>> = Default::default();
    for e in &traffic.petitions {
        steps.entry(e.petition_id.as_str()).or_default().push(e);
    }
    let repeats: Vec<_> = steps.values().filter_map(|p| Some((p, p[0].repeat_of.as_deref()?))).collect();
    let firsts = (steps.len() - repeats.len()) as f64;
    let want = 120_000.0 * catalog::PETITIONS_PER_DOSSIER / (1.0 + catalog::PETITION_REPEATED);
    assert!((firsts - want).abs() <= 1.0, "{firsts} first petitions, want {want:.1}");
    assert!(!repeats.is_empty() && (repeats.len() as f64) < firsts * 0.15, "{} repeats", repeats.len());
    for (repeat, earlier) in repeats {
        let first_step = repeat.iter().map(|e| e.occurred_at).min().unwrap();
        let earlier = &steps[earlier];
        assert!(
            earlier.iter().all(|e| e.occurred_at < first_step),
            "{} after {}",
            repeat[0].petition_id,
            earlier[0].petition_id
        );
        assert_eq!(repeat[0].dossier_id, earlier[0].dossier_id);
    }
    let about_dossiers = steps.values().filter(|p| p[0].dossier_id.is_some()).count() as f64 / steps.len() as f64;
    assert_near("petitions about a dossier", about_dossiers, 1.0 - catalog::PETITION_WITHOUT_DOSSIER, 0.1);

    // Even a few thousand dossiers land within a point of each kind's target.
    let counted = recount(&country(22, 3_000), date!(2024 - 06 - 01), date!(2024 - 12 - 31));
    let full = &counted[&("full_online_share".to_owned(), "authority_kind".to_owned())];
    assert_near("small, ministries", rate(full, "ministry"), catalog::FULL_ONLINE_MINISTRIES, 0.01);
    assert_near("small, provinces", rate(full, "province"), catalog::FULL_ONLINE_PROVINCES, 0.01);
}

/// The simulator's command line for this test's topics.
fn simulator(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = Command::new(binary("dvc-portal-sim"));
    command.args(env.topic_args()).args(args).env("DVC_KAFKA_BROKERS", common::brokers()).stdout(Stdio::piped());
    command
}

/// Every sent message reached its table, and the malformed ones the dead letters.
async fn assert_all_delivered(env: &TestEnv, summary: &Value) {
    let sent = &summary["sent"];
    assert_eq!(sent["failed"], 0, "{summary}");
    let total = sent["total"].as_u64().unwrap();
    let malformed = sent["malformed"].as_u64().unwrap();
    assert!(total > 0, "{summary}");
    let rows = "SELECT (SELECT count() FROM dossier_events) + (SELECT count() FROM payment_events) \
                + (SELECT count() FROM feedback_events) + (SELECT count() FROM petition_events) \
                + (SELECT count() FROM catalog_entries)";
    env.wait_for_count(rows, total - malformed, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while topic_size(&env.dead_letter_topic) < malformed as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(topic_size(&env.dead_letter_topic), malformed as i64, "every malformed message is dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_simulated_backfill_with_faults_lands_on_target_through_the_pipeline() {
    let env = TestEnv::new("simulator").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));

    let (seed, events_per_second, days) = (5u64, 1.0, 4);
    let now = datetime!(2024-07-10 12:00 +7);
    let faults =
        FaultRates { duplicate: 0.05, out_of_order: 0.05, late: 0.02, late_max: Span::hours(48), malformed: 0.01 };
    let output = simulator(
        &env,
        &[
            "--seed=5",
            "--rate=1",
            "--backfill-days=4",
            "--live-seconds=0",
            "--now=2024-07-10T12:00:00+07:00",
            "--duplicate-rate=0.05",
            "--out-of-order-rate=0.05",
            "--late-rate=0.02",
            "--malformed-rate=0.01",
        ],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["sent"]["duplicates"].as_u64().unwrap() > 0 && summary["sent"]["malformed"].as_u64().unwrap() > 0);
    assert_all_delivered(&env, &summary).await;
    // The catalogue first: every procedure at every authority, once.
    let entries = (catalog::PROCEDURES.len() + catalog::CATALOGUE_ONLY.len()) as u64 * 85;
    assert_eq!(summary["sent"]["catalog"], entries);
    assert_eq!(env.count("SELECT count() FROM procedure_catalog").await, entries);

    // The library, given the same seed and flags, sends exactly these messages.
    let start = now - Span::days(days);
    let mut timeline = Timeline::new(seed, 85, events_per_second, true, faults, start);
    let mut out = Vec::new();
    let mut t = start;
    while t < now {
        t = (t + Span::minutes(1)).min(now);
        timeline.advance(t, &mut out);
    }
    assert_eq!(out.len() as u64, summary["sent"]["total"].as_u64().unwrap());
    let mut sent = Traffic::default();
    for o in out.iter().filter(|o| o.kind != Sending::Malformed) {
        match Event::decode(o.message.stream, &o.message.value).unwrap() {
            Event::Dossier(e) => sent.dossiers.push(e),
            Event::Payment(e) => sent.payments.push(e),
            Event::Feedback(e) => sent.ratings.push(e),
            Event::Petition(e) => sent.petitions.push(e),
            Event::Catalog(_) => {}
        }
    }
    // Each petition's latest step (by time, then lifecycle order) is its
    // status in ClickHouse.
    let mut latest = std::collections::BTreeMap::new();
    for e in &sent.petitions {
        let step = (e.occurred_at.unix_timestamp(), e.status.code());
        let entry = latest.entry(e.petition_id.clone()).or_insert((step, e.status.as_str()));
        if step > entry.0 {
            *entry = (step, e.status.as_str());
        }
    }
    assert!(!latest.is_empty(), "the backfill sends petitions");
    let stored: Vec<(String, String)> = env
        .client()
        .query("SELECT petition_id, toString(status) FROM petitions ORDER BY petition_id")
        .fetch_all()
        .await
        .unwrap();
    let want: Vec<(String, String)> = latest.into_iter().map(|(id, (_, status))| (id, status.to_owned())).collect();
    assert_eq!(stored, want);

    let (base, api) = start_api(&env, stop.clone()).await;
    let client = reqwest::Client::new();
    let (from, to) = (date!(2024 - 07 - 05), date!(2024 - 07 - 11));
    let groupings = ["national", "authority_kind", "authority_code"];
    assert_api_matches_recount(&client, &base, Endpoint::Rates, &sent, (from, to), &groupings, "simulator").await;
    let url = format!("{base}/v1/rates?metric=full_online_share&from={from}&to={to}&group_by=authority_kind");
    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let [ministry, province] = [0, 1].map(|i| body["rows"][i]["value"].as_f64().unwrap());
    assert_near("ministries", ministry, catalog::FULL_ONLINE_MINISTRIES, 0.01);
    assert_near("provinces", province, catalog::FULL_ONLINE_PROVINCES, 0.01);

    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
    api.await.unwrap().expect("API stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_streaming_stops_cleanly_on_sigint_with_everything_delivered() {
    let env = TestEnv::new("simulator_live").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));

    let started = OffsetDateTime::now_utc();
    let mut child = simulator(
        &env,
        &["--rate=20", "--flat", "--backfill-days=0.05", "--duplicate-rate=0.05", "--malformed-rate=0.01"],
    )
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(child.try_wait().unwrap().is_none(), "still streaming");
    let interrupted = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    // What is in flight is delivered first: on a slow broker store that can
    // take seconds, never longer than the simulator's 30 s flush timeout.
    let stopping = interrupted.elapsed();
    assert!(stopping < Duration::from_secs(45), "stopped within the flush timeout, took {stopping:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_all_delivered(&env, &summary).await;

    // Live events carry the present: the latest is no later than now.
    let latest: u64 = env.count("SELECT toUInt64(max(occurred_at)) FROM dossier_events").await;
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    assert!(latest >= started.unix_timestamp() as u64 && latest <= now, "{latest} within [{started}, now]");

    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
}

/// Sends SIGINT to the simulator and waits for it: its exit status, its JSON
/// summary and its log.
async fn interrupt(child: std::process::Child) -> (std::process::ExitStatus, Value, String) {
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let summary = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status, summary, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_holds_traffic_back_and_a_stop_during_one_reports_what_was_lost() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let topics = Stream::ALL.map(|s| format!("outage.{}", s.name()));
    for topic in &topics {
        cluster.create_topic(topic, common::PARTITIONS, 1).unwrap();
    }
    let stored = || topics.iter().map(|t| topic_size_on(&brokers, t)).sum::<i64>();
    let status_file = std::env::temp_dir().join(format!("dvc-sim-outage-{}.json", std::process::id()));
    let handed_over = || -> i64 {
        let status: Value = serde_json::from_slice(&std::fs::read(&status_file).unwrap()).unwrap();
        status["sent"]["total"].as_i64().unwrap()
    };
    let child = Command::new(binary("dvc-portal-sim"))
        .args(Stream::ALL.iter().zip(&topics).map(|(s, topic)| format!("{}={topic}", s.topic_flag())))
        .args(["--brokers", &brokers, "--rate=300", "--flat", "--seed=11"])
        .arg("--status-file")
        .arg(&status_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_outage = stored();
    assert!(before_outage > 0, "streaming");

    // An outage the broker recovers from: traffic waits in the producer,
    // then everything handed over during the outage is stored.
    cluster.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during_outage = handed_over();
    assert!(during_outage > before_outage, "the simulator kept generating: {before_outage} → {during_outage}");
    cluster.broker_up(1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored() < during_outage && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(stored() >= during_outage, "{} stored of {during_outage} handed over", stored());

    // A stop while the broker is down: the flush gives up after its timeout.
    cluster.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let interrupted = Instant::now();
    let (status, summary, log) = interrupt(child).await;
    assert!(interrupted.elapsed() < Duration::from_secs(45), "the flush timeout bounds the stop");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("not acknowledged by the broker"), "{log}");
    let sent = &summary["sent"];
    let (total, failed) = (sent["total"].as_i64().unwrap(), sent["failed"].as_i64().unwrap());
    assert!(failed > 0 && failed <= total - during_outage, "{summary}");
    cluster.broker_up(1).unwrap();
    std::fs::remove_file(&status_file).unwrap();
    // Each message is stored or counted as lost (one in flight when the
    // broker went down may be both).
    assert!(stored() >= total - failed, "{} stored, {summary}", stored());
}
