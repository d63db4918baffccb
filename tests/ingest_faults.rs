//! Ingest under faults, on the real broker and ClickHouse: kill -9 and
//! SIGTERM while events stream in, rebalances as instances come and go, and a
//! ClickHouse outage. Afterwards every event is stored exactly once.

mod common;

use std::time::{Duration, Instant};

use common::own_clickhouse::OwnClickHouse;
use common::{TestEnv, assert_exactly_once, stream_traffic, traffic};
use dvc_warehouse::ClickHouseArgs;
use rand::Rng;
use tokio_util::sync::CancellationToken;

const SETTLE: Duration = Duration::from_secs(180);
/// A killed member holds its partitions until its session expires; keep that short.
const FAST_GROUP: &[&str] = &["--session-timeout-ms=3000", "--kafka-option=heartbeat.interval.ms=500"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_ten_times_then_sigterm_while_200k_events_stream() {
    let env = TestEnv::new("crash").await;
    let events = traffic(&env.name, 200_000, 1);
    let logs = std::env::temp_dir().join(format!("dvc-e2e-{}", env.name));
    std::fs::create_dir_all(&logs).unwrap();

    let producer = {
        let env_name = env.name.clone();
        let (topics, dlq, ch) = (env.topics.clone(), env.dead_letter_topic.clone(), env.clickhouse.clone());
        let events = events.clone();
        tokio::spawn(async move {
            let env = TestEnv { name: env_name, clickhouse: ch, topics, dead_letter_topic: dlq };
            stream_traffic(&env, &events, 100, Duration::from_millis(500)).await;
        })
    };

    // Each round: restart, wait until this instance is writing (its own
    // inserted-rows counter: the table's count can also move with the killed
    // instance's last insert, which the server finishes after the kill), then
    // kill -9 at a random moment within the next 1.5 s, mid-batch as often as
    // not.
    let mut rng = common::events::rng(99);
    let mut stored_at_kill = Vec::new();
    for round in 0..10 {
        let port = common::free_port();
        let listen = format!("--listen=127.0.0.1:{port}");
        let args: Vec<&str> = FAST_GROUP.iter().copied().chain([listen.as_str()]).collect();
        let mut child = env.spawn_ingest(&logs.join(format!("run-{round}.log")), &args);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let page = get(&base, "/metrics").await.map(|(_, page)| page).unwrap_or_default();
            let inserted: f64 = page
                .lines()
                .filter(|l| l.starts_with("dvc_ingest_inserted_rows_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            if inserted > 0.0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the restarted instance wrote nothing in 90 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_500))).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
        stored_at_kill.push(env.count("SELECT count() FROM dossier_events").await);
    }
    eprintln!("dossier rows stored at each kill: {stored_at_kill:?}");
    producer.await.unwrap();

    let mut last = env.spawn_ingest(&logs.join("run-final.log"), FAST_GROUP);
    assert_exactly_once(&env, &events, SETTLE).await;

    // SIGTERM: drain, commit, exit 0.
    let pid = last.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || last.wait()).await.unwrap().unwrap();
    assert!(status.success(), "SIGTERM exit status {status}");
    let final_log = std::fs::read_to_string(logs.join("run-final.log")).unwrap();
    assert!(final_log.contains("stopped cleanly"), "{final_log}");

    // No raw applicant ID in any log line of any run (logs were at debug level).
    let ids: Vec<String> =
        (0..200_000u64).filter(|i| i % 10 <= 6).map(|i| common::events::applicant_id(79, i)).collect();
    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(text.len() > 100, "logs were written");
        for id in &ids {
            assert!(!text.contains(id.as_str()), "applicant ID in a log");
        }
    }
    std::fs::remove_dir_all(&logs).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_joining_and_leaving_rebalance_without_loss_or_duplicates() {
    let env = TestEnv::new("scale").await;
    let events = traffic(&env.name, 60_000, 2);
    let start = |env: &TestEnv| {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));
        (stop, handle)
    };
    let mut instances: Vec<_> = (0..3).map(|_| start(&env)).collect();
    let guards: Vec<_> = instances.iter().map(|(s, _)| s.clone().drop_guard()).collect();

    let streaming = stream_traffic(&env, &events, 30, Duration::from_millis(500));
    let churn = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let (stop, handle) = instances.remove(0);
            stop.cancel();
            handle.await.unwrap().expect("a leaving instance stops cleanly");
            instances.push(start(&env));
        }
    };
    tokio::join!(streaming, churn);
    assert_exactly_once(&env, &events, SETTLE).await;
    for (stop, handle) in instances {
        stop.cancel();
        handle.await.unwrap().expect("instances stop cleanly");
    }
    drop(guards);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_down_for_20_seconds_loses_and_duplicates_nothing() {
    let mut server = OwnClickHouse::start(&format!("outage-{}", std::process::id()));
    let args = ClickHouseArgs { url: server.url(), ..ClickHouseArgs::default() };
    let env = TestEnv::on("outage", args).await;
    // A small queue bound, so the outage fills it and partitions pause, then resume.
    let events = traffic(&env.name, 40_000, 3);
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(
        env.ingest_config(&["--retry-max-ms=1000", "--queue-max-records=2000"]),
        stop.clone(),
    ));

    let streaming = stream_traffic(&env, &events, 40, Duration::from_millis(500));
    let outage = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        server.kill();
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(!ingest.is_finished(), "ingest must wait out the outage, not exit");
        server.resume();
    };
    tokio::join!(streaming, outage);
    // A block the server wrote just before dying may be written again on retry
    // (its answer was lost); the (topic, partition, offset) key folds it away,
    // once every batch is stored (committed), so no retry lands after the fold.
    common::wait_for_commits(&env, SETTLE).await;
    for table in ["dossier_events", "payment_events", "feedback_events"] {
        let _ = env.client().query(&format!("OPTIMIZE TABLE {table} FINAL")).execute().await;
    }
    assert_exactly_once(&env, &events, SETTLE).await;
    assert!(!ingest.is_finished());
    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
}

/// A partition paused because ClickHouse is down (its queue full) and then
/// revoked stays paused inside librdkafka: an instance given it again must
/// resume it, or it is never read again. On librdkafka's mock cluster, whose
/// group coordinator expires a member that left at once: one of two
/// instances leaves during the outage, the other is given every partition,
/// its own paused ones among them, and stores everything once ClickHouse is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_paused_by_an_outage_are_read_again_after_a_rebalance() {
    let mut server = OwnClickHouse::start(&format!("paused-{}", std::process::id()));
    let args = ClickHouseArgs { url: server.url(), ..ClickHouseArgs::default() };
    let env = TestEnv::on("paused_rebalance", args).await;
    let cluster = mock_cluster(&env);
    let brokers = format!("--brokers={}", cluster.bootstrap_servers());
    // Small batches and queue: a few seconds of outage fill the queue and
    // pause partitions.
    let config = env.ingest_config(&[
        &brokers,
        "--retry-max-ms=1000",
        "--batch-max-rows=500",
        "--queue-max-records=2000",
        "--revoke-timeout-ms=1000",
        "--shutdown-timeout-ms=1000",
        "--session-timeout-ms=3000",
        "--kafka-option=heartbeat.interval.ms=500",
    ]);
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let staying = tokio::spawn(dvc_ingest::run(config.clone(), stop.clone()));
    let leave = stop.child_token();
    let leaving = tokio::spawn(dvc_ingest::run(config, leave.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await; // the group settles on both

    let events = traffic(&env.name, 20_000, 5);
    let producer = common::producer_to(&cluster.bootstrap_servers());
    let streaming = common::stream_traffic_through(&producer, &env, &events, 20, Duration::from_millis(500));
    let outage = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        server.kill();
        tokio::time::sleep(Duration::from_secs(6)).await;
        leave.cancel();
        leaving.await.unwrap().expect("the leaving instance stops cleanly");
        tokio::time::sleep(Duration::from_secs(5)).await;
        server.resume();
    };
    tokio::join!(streaming, outage);
    assert_exactly_once(&env, &events, Duration::from_secs(60)).await;
    assert!(!staying.is_finished(), "the staying instance waited out the outage");
    stop.cancel();
    staying.await.unwrap().expect("ingest stops cleanly");
}

/// librdkafka's mock cluster (one broker) with `env`'s topics.
fn mock_cluster(env: &TestEnv) -> rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    for topic in env.topics.iter().chain([&env.dead_letter_topic]) {
        cluster.create_topic(topic, common::PARTITIONS, 1).unwrap();
    }
    cluster
}

/// `GET base + path`: the status and the body, if the service answers.
async fn get(base: &str, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("{base}{path}")).await.ok()?;
    Some((response.status().as_u16(), response.text().await.ok()?))
}

/// The value of the first sample of metric `name` on a `/metrics` page.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name))?.rsplit(' ').next()?.parse().ok()
}

/// librdkafka's mock cluster answers every JoinGroup with an error for as long
/// as the test says: a join that never completes, whatever the reason. The
/// instance reports it on `/healthz` once it has lasted twice the session
/// timeout, leaves and joins again, and once the broker lets it join it
/// takes every partition and stores what waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_that_never_completes_fails_healthz_and_is_made_again() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    let env = TestEnv::new("stuck_join").await;
    let cluster = mock_cluster(&env);
    // librdkafka retries a refused join every few seconds: six refusals keep
    // the instance out of the group for well over twice the session timeout.
    let joins_refused = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 6];
    cluster.request_errors(RDKafkaApiKey::JoinGroup, &joins_refused);

    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let session = Duration::from_secs(3);
    let log = std::env::temp_dir().join(format!("dvc-e2e-{}.log", env.name));
    let mut ingest = env.spawn_ingest(
        &log,
        &[
            &format!("--brokers={}", cluster.bootstrap_servers()),
            &format!("--listen=127.0.0.1:{port}"),
            &format!("--session-timeout-ms={}", session.as_millis()),
            "--kafka-option=heartbeat.interval.ms=500",
        ],
    );

    let get = |path: &'static str| get(&base, path);

    // Healthy at first (the join is young), then failing with the reason.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let unhealthy = loop {
        assert!(Instant::now() < deadline, "/healthz never reported the stuck join");
        if let Some((503, body)) = get("/healthz").await {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(started.elapsed() > session * 2, "reported only past twice the session timeout");
    assert!(unhealthy.contains("no partition assignment"), "{unhealthy}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rejoins = get("/metrics").await.and_then(|(_, m)| metric(&m, "dvc_ingest_rejoins_total"));
        if rejoins.is_some_and(|r| r >= 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the instance never joined again: {rejoins:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The broker lets the new member join: every partition, everything stored.
    let events = traffic(&env.name, 3_000, 4);
    let producer = common::producer_to(&cluster.bootstrap_servers());
    common::publish_traffic(&producer, &env, &events).await;
    assert_exactly_once(&env, &events, Duration::from_secs(60)).await;
    let (status, body) = get("/healthz").await.expect("/healthz answers");
    assert_eq!(status, 200, "{body}");
    let metrics = get("/metrics").await.expect("/metrics answers").1;
    assert_eq!(metric(&metrics, "dvc_ingest_assigned_partitions"), Some(f64::from(common::ALL_PARTITIONS)));
    assert_eq!(metric(&metrics, "dvc_ingest_unassigned_seconds"), Some(0.0));
    assert!(ingest.try_wait().unwrap().is_none(), "ingest still runs");
    std::fs::remove_file(&log).ok();
}

/// librdkafka's mock cluster refuses every Produce (topic authorization
/// failed, a permanent error) once the test's events are in: only the
/// dead-letter producer sends then. The rejected records wait in
/// `dvc_ingest_dead_letters_unacknowledged`, `/healthz` fails, and their
/// partition commits nothing; SIGTERM stops the instance at once (no retry
/// after the stop, far within the shutdown timeout). Once the broker
/// accepts again, a new instance dead-letters them and stores every valid
/// event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_the_broker_refuses_fail_healthz_and_do_not_hold_up_a_stop() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    let env = TestEnv::new("dlq_refused").await;
    let cluster = mock_cluster(&env);
    let events = traffic(&env.name, 2_000, 6);
    let invalid: Vec<common::Keyed> =
        (0..5).map(|i| (Some(format!("bad-{i}")), format!("not JSON {i}").into_bytes())).collect();
    let producer = common::producer_to(&cluster.bootstrap_servers());
    common::publish_traffic(&producer, &env, &events).await;
    common::publish(&producer, env.topic(dvc_events::Stream::Dossier), &invalid).await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 100_000],
    );

    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let args = [
        format!("--brokers={}", cluster.bootstrap_servers()),
        format!("--listen=127.0.0.1:{port}"),
        "--shutdown-timeout-ms=60000".to_owned(),
        "--retry-max-ms=500".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = std::env::temp_dir().join(format!("dvc-e2e-{}.log", env.name));
    let mut refused = env.spawn_ingest(&log, &args);
    let deadline = Instant::now() + Duration::from_secs(60);
    let unhealthy = loop {
        assert!(Instant::now() < deadline, "/healthz never reported the refused dead letters");
        if let Some((503, body)) = get(&base, "/healthz").await {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(unhealthy.contains("dead letter(s) not acknowledged"), "{unhealthy}");
    let page = get(&base, "/metrics").await.expect("/metrics answers").1;
    let waiting = metric(&page, "dvc_ingest_dead_letters_unacknowledged").expect("the gauge");
    assert!((1.0..=5.0).contains(&waiting), "{waiting} records wait for a retry");

    let pid = refused.id().to_string();
    let stopping = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || refused.wait()).await.unwrap().unwrap();
    assert!(status.success(), "SIGTERM exit status {status}");
    assert!(stopping.elapsed() < Duration::from_secs(15), "stopped in {:?}, not at once", stopping.elapsed());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("dead letter(s) not acknowledged; their batch is read again"), "{text}");

    // The broker accepts again: a new instance dead-letters the five and
    // stores every valid event once.
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let _accepted = env.spawn_ingest(&log, &args);
    assert_exactly_once(&env, &events, Duration::from_secs(60)).await;
    let expected: Vec<String> = invalid.iter().filter_map(|(k, _)| k.clone()).collect();
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", cluster.bootstrap_servers());
    let keys = common::dead_letter_keys(&env, client, expected.len()).await;
    assert_eq!(keys, expected, "each refused record dead-lettered once the broker accepts");
    let (status, body) = get(&base, "/healthz").await.expect("/healthz answers");
    assert_eq!(status, 200, "{body}");
    std::fs::remove_file(&log).ok();
}
