//! Ingest against a broker that requires SASL: a tansu broker of this test's
//! own (`--authentication`, SCRAM-SHA-512; tansu 0.6 authenticates every
//! request, and librdkafka's mock cluster does not require SASL at all).
//! The client settings given as `--kafka-option` must reach the consumer, the
//! dead-letter producer and the lag reader: every event stored once, the
//! invalid ones dead-lettered, the lag read from the broker.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    KillOnDrop, TestEnv, assert_exactly_once, dead_letter_keys, free_port, publish, publish_traffic, traffic,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use tokio_util::sync::CancellationToken;

const USER: &str = "dvc-ingest";
const PASSWORD: &str = "e2e-sasl-secret";
/// The client settings of a SASL/SCRAM cluster, as an operator passes them.
const SASL: [(&str, &str); 4] = [
    ("security.protocol", "SASL_PLAINTEXT"),
    ("sasl.mechanisms", "SCRAM-SHA-512"),
    ("sasl.username", USER),
    ("sasl.password", PASSWORD),
];

/// tansu on `port` with its SQLite store in `dir` (killed when dropped).
fn tansu(dir: &Path, port: u16, authentication: bool) -> KillOnDrop {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new("tansu");
    command
        .current_dir(dir)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("broker-{authentication}.log"))).unwrap());
    if authentication {
        command.arg("--authentication");
    }
    let broker = KillOnDrop(command.spawn().expect("tansu on PATH (make deps installs it)"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    broker
}

fn tansu_cli(args: &[&str]) {
    let out = Command::new("tansu").args(args).output().expect("tansu runs");
    assert!(out.status.success(), "tansu {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn with_sasl(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in SASL {
        config.set(key, value);
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_settings_of_a_sasl_cluster_reach_the_consumer_dead_letters_and_lag_reader() {
    let env = TestEnv::new("sasl").await;
    let dir = std::env::temp_dir().join(format!("dvc-e2e-{}", env.name));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let url = format!("tcp://{bootstrap}");

    // The user and the topics, made before authentication is turned on (an
    // operator's cluster has them already).
    {
        let _open = tansu(&dir, port, false);
        tansu_cli(&["user", "create", "--broker", &url, USER, PASSWORD]);
        for topic in env.topics.iter().chain([&env.dead_letter_topic]) {
            tansu_cli(&["topic", "create", "--broker", &url, "--partitions", &common::PARTITIONS.to_string(), topic]);
        }
    }
    let _broker = tansu(&dir, port, true);

    // Without credentials the broker answers nothing.
    let anonymous: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let refused = tokio::task::spawn_blocking(move || anonymous.fetch_metadata(None, Duration::from_secs(3)).err());
    assert!(refused.await.unwrap().is_some(), "an unauthenticated client read the metadata");

    let events = traffic(&env.name, 1_500, 7);
    let invalid: Vec<common::Keyed> =
        (0..3).map(|i| (Some(format!("sasl-bad-{i}")), format!("not JSON {i}").into_bytes())).collect();
    let producer: rdkafka::producer::FutureProducer = with_sasl(&bootstrap).create().unwrap();
    publish_traffic(&producer, &env, &events).await;
    publish(&producer, env.topic(dvc_events::Stream::Dossier), &invalid).await;

    let metrics_port = free_port();
    let mut flags = vec![format!("--brokers={bootstrap}"), format!("--listen=127.0.0.1:{metrics_port}")];
    flags.extend(SASL.iter().map(|(k, v)| format!("--kafka-option={k}={v}")));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&flags), stop.clone()));

    // The consumer: every valid event stored once.
    assert_exactly_once(&env, &events, Duration::from_secs(90)).await;

    // The dead-letter producer: the invalid records, keys as sent.
    let expected: Vec<String> = invalid.iter().filter_map(|(k, _)| k.clone()).collect();
    assert_eq!(dead_letter_keys(&env, with_sasl(&bootstrap), expected.len()).await, expected);

    // The lag reader: every partition of the dossier topic at lag 0, read
    // from the broker (every 10 s).
    let topic = env.topic(dvc_events::Stream::Dossier).to_owned();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let page =
            reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await.unwrap().text().await.unwrap();
        let lags: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("dvc_ingest_consumer_lag{") && l.contains(&format!("topic=\"{topic}\"")))
            .collect();
        if lags.len() == common::PARTITIONS as usize && lags.iter().all(|l| l.ends_with(" 0")) {
            break;
        }
        assert!(Instant::now() < deadline, "no lag read through SASL: {lags:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
    std::fs::remove_dir_all(&dir).ok();
}
