//! Shared harness of the end-to-end tests: the real tansu broker and
//! ClickHouse started by `make up` (addresses from DVC_KAFKA_BROKERS and
//! DVC_CLICKHOUSE_URL, defaults the local stack). Each test gets its own
//! topics, consumer group and database, so tests run in parallel.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod own_clickhouse;
pub mod rates;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dvc_events::Stream;
use dvc_ingest::Config;
pub use dvc_portal_sim::synthetic as events;

pub mod recount;
use dvc_warehouse::ClickHouseArgs;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

pub const PARTITIONS: i32 = 4;
/// The partitions one ingest instance reads: every stream's topic.
pub const ALL_PARTITIONS: i32 = PARTITIONS * Stream::ALL.len() as i32;
/// A fixed key for tests; production keys come from a secret file.
pub const TEST_KEY: &str = "e2e-test-key-0123456789abcdef";

pub fn brokers() -> String {
    std::env::var("DVC_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// The HTTP endpoints of the local cluster's nodes (deploy/cluster/cluster.sh),
/// or DVC_CLICKHOUSE_NODES (comma-separated), the first of shard 1 first.
pub fn cluster_nodes() -> Vec<String> {
    std::env::var("DVC_CLICKHOUSE_NODES")
        .unwrap_or_else(|_| "http://127.0.0.1:8124,http://127.0.0.1:8125,http://127.0.0.1:8126".into())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A free loopback port, for a server's or a service's `--listen`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A clock reading that, with the process id, tells runs apart in names.
pub fn millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000_000
}

/// One test's own slice of the stack.
pub struct TestEnv {
    pub name: String,
    pub clickhouse: ClickHouseArgs,
    /// One topic per stream, in `Stream::ALL` order.
    pub topics: [String; 5],
    pub dead_letter_topic: String,
}

impl TestEnv {
    /// Creates the topics and the migrated database of test `name`.
    pub async fn new(name: &str) -> TestEnv {
        TestEnv::on(name, ClickHouseArgs::default()).await
    }

    /// The same, on another ClickHouse server.
    pub async fn on(name: &str, server: ClickHouseArgs) -> TestEnv {
        require_stack(&server.url).await;
        let env = TestEnv::named(name, server).await;
        dvc_warehouse::migrate(&env.clickhouse.server_client(), &env.clickhouse.database)
            .await
            .expect("migrations apply");
        env
    }

    /// The topics and the names of test `name` on `server`, no tables yet.
    async fn named(name: &str, server: ClickHouseArgs) -> TestEnv {
        let suffix = format!("{name}_{}_{}", std::process::id(), millis());
        let clickhouse = server.with_database(format!("e2e_{suffix}"));
        let topics = Stream::ALL.map(|s| format!("e2e.{suffix}.{}", s.name()));
        let dead_letter_topic = format!("e2e.{suffix}.dead-letter");
        let env = TestEnv { name: suffix, clickhouse, topics, dead_letter_topic };
        let mut all: Vec<&str> = env.topics.iter().map(String::as_str).collect();
        all.push(&env.dead_letter_topic);
        create_topics(&all).await;
        env
    }

    /// The same on the local cluster (deploy/cluster/cluster.sh), its tables
    /// in the cluster layout; the test's client talks to the first node.
    pub async fn on_cluster(name: &str) -> TestEnv {
        let nodes = cluster_nodes();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("HTTP client");
        for node in &nodes {
            let up = client.get(format!("{node}/ping")).send().await.is_ok_and(|r| r.status().is_success());
            assert!(
                up,
                "no local cluster (ClickHouse at {node} down): run `make cluster-up` first, or `make test`, which starts it"
            );
        }
        let env = TestEnv::named(name, ClickHouseArgs { url: nodes[0].clone(), ..ClickHouseArgs::default() }).await;
        let clients: Vec<_> = nodes.iter().map(|url| env.clickhouse_at(url).server_client()).collect();
        let cluster = dvc_warehouse::Cluster { name: "dvc".into() };
        dvc_warehouse::migrate_cluster(
            &clients,
            &cluster,
            &env.clickhouse.database,
            dvc_warehouse::Directory::official().unwrap(),
        )
        .await
        .expect("migrations apply on the cluster");
        env
    }

    /// This test's database on another server (a node of the cluster).
    pub fn clickhouse_at(&self, url: &str) -> ClickHouseArgs {
        ClickHouseArgs { url: url.to_owned(), ..self.clickhouse.clone() }
    }

    pub fn topic(&self, stream: Stream) -> &str {
        &self.topics[stream as usize]
    }

    /// The consumer group of this test's ingest.
    pub fn group(&self) -> String {
        format!("e2e.{}", self.name)
    }

    /// `--dossier-topic=…` and the like: this test's topic of every stream,
    /// for ingest and the simulator.
    pub fn topic_args(&self) -> Vec<String> {
        Stream::ALL.iter().map(|s| format!("{}={}", s.topic_flag(), self.topic(*s))).collect()
    }

    /// Ingest configuration for this test: its topics, group, database;
    /// small batches and short timeouts so tests move quickly.
    pub fn ingest_args(&self) -> Vec<String> {
        let mut args = vec![
            "dvc-ingest".to_owned(),
            format!("--brokers={}", brokers()),
            format!("--group={}", self.group()),
            format!("--dead-letter-topic={}", self.dead_letter_topic),
            format!("--clickhouse-url={}", self.clickhouse.url),
            format!("--clickhouse-database={}", self.clickhouse.database),
            format!("--applicant-key={TEST_KEY}"),
            "--listen=127.0.0.1:0".to_owned(),
            "--batch-max-wait-ms=100".to_owned(),
            "--session-timeout-ms=6000".to_owned(),
            "--kafka-option=heartbeat.interval.ms=1000".to_owned(),
        ];
        args.extend(self.topic_args());
        args.extend(
            std::env::var("DVC_E2E_EXTRA_ARGS")
                .ok()
                .into_iter()
                .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>()),
        );
        args
    }

    pub fn ingest_config(&self, extra: &[&str]) -> Config {
        use clap::Parser;
        let mut args = self.ingest_args();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Config::try_parse_from(args).expect("valid ingest flags")
    }

    /// Starts the ingest binary as a child process (for kill -9 and SIGTERM tests).
    pub fn spawn_ingest(&self, log: &std::path::Path, extra: &[&str]) -> KillOnDrop {
        let log = std::fs::File::create(log).expect("log file");
        let child = Command::new(binary("dvc-ingest"))
            .args(&self.ingest_args()[1..])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("DVC_E2E_RUST_LOG")
                    .unwrap_or("debug,librdkafka=info,rdkafka=info,hyper=info,h2=info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dvc-ingest starts");
        KillOnDrop(child)
    }

    pub fn client(&self) -> clickhouse::Client {
        self.clickhouse.client()
    }

    /// A single number from ClickHouse.
    pub async fn count(&self, sql: &str) -> u64 {
        self.client().query(sql).fetch_one::<u64>().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until `sql` returns `expected`, or fails the test after `timeout`.
    pub async fn wait_for_count(&self, sql: &str, expected: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            let got = self.client().query(sql).fetch_one::<u64>().await.ok();
            if got == Some(expected) {
                return;
            }
            assert!(start.elapsed() < timeout, "{sql}: still {got:?} after {timeout:?}, expected {expected}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Stops the test with one line saying what to start when the broker or
/// ClickHouse does not answer (a plain `cargo test` without the stack).
async fn require_stack(clickhouse_url: &str) {
    let kafka = brokers();
    let first_broker = kafka.split(',').next().unwrap_or_default().trim().to_owned();
    let broker_up = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&first_broker))
        .await
        .is_ok_and(|c| c.is_ok());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("HTTP client");
    let clickhouse_up =
        client.get(format!("{clickhouse_url}/ping")).send().await.is_ok_and(|r| r.status().is_success());
    assert!(
        broker_up && clickhouse_up,
        "no local stack (Kafka at {kafka}: {}, ClickHouse at {clickhouse_url}: {}): run `make up` first, or `make test`, which starts it",
        if broker_up { "up" } else { "down" },
        if clickhouse_up { "up" } else { "down" },
    );
}

/// The rates API on a free port, reading through the read-only user of
/// deploy/local/clickhouse/users.xml, as deployed.
pub async fn start_api(
    env: &TestEnv,
    stop: tokio_util::sync::CancellationToken,
) -> (String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    start_api_with(env, stop, dvc_rates_api::Limits::default()).await
}

/// The same, with its own limits on the work it gives ClickHouse.
pub async fn start_api_with(
    env: &TestEnv,
    stop: tokio_util::sync::CancellationToken,
    limits: dvc_rates_api::Limits,
) -> (String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let reader = dvc_warehouse::ClickHouseArgs { user: "dvc_reader".into(), ..env.clickhouse.clone() };
    let config = dvc_rates_api::Config {
        listen: listener.local_addr().unwrap(),
        clickhouse: reader,
        limits,
        openapi: false,
        print_queries: false,
    };
    (base, tokio::spawn(dvc_rates_api::serve(listener, config, stop)))
}

/// A workspace binary built by `cargo build --release --bins` (the Makefile
/// does it before the tests); DVC_BIN_DIR overrides the folder.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("DVC_BIN_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release"), PathBuf::from);
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --release --bins` first", path.display());
    path
}

pub async fn create_topics(names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let topics: Vec<NewTopic<'_>> =
        names.iter().map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1))).collect();
    let results = admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics");
    for r in results {
        if let Err((topic, code)) = r {
            assert_eq!(code, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists, "creating {topic}");
        }
    }
}

/// One generated event and the stream it goes to.
pub type Routed = (Stream, Keyed);

/// A Kafka message to publish: key and value.
pub type Keyed = (Option<String>, Vec<u8>);

pub fn producer() -> FutureProducer {
    producer_to(&brokers())
}

/// A producer to `bootstrap` (another cluster than the local broker).
pub fn producer_to(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "10")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

/// Publishes `messages` (key, value) to `topic` and waits for every ack.
pub async fn publish(producer: &FutureProducer, topic: &str, messages: &[Keyed]) {
    let mut pending = Vec::with_capacity(messages.len());
    for (key, value) in messages {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(value.as_slice());
        if let Some(key) = key {
            record = record.key(key.as_str());
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((e, r)) => {
                    assert!(
                        matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)),
                        "produce: {e}"
                    );
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery future").expect("message acknowledged");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Keys a payload by its `dossier_id`, as portals do.
pub fn keyed(value: Vec<u8>) -> Keyed {
    let key = serde_json::from_slice::<serde_json::Value>(&value)
        .ok()
        .and_then(|v| v.get("dossier_id").and_then(|d| d.as_str()).map(str::to_owned));
    (key, value)
}

/// Generated traffic for the fault tests: `n` distinct events over the three streams.
pub fn traffic(run: &str, n: u64, seed: u64) -> Vec<Routed> {
    events::mixed(run, n, seed).map(|m| (m.stream, (Some(m.key), m.value))).collect()
}

/// Publishes `traffic` in `chunks` equal parts, `pause` apart, so faults can
/// strike while events stream in.
pub async fn stream_traffic(env: &TestEnv, traffic: &[Routed], chunks: usize, pause: Duration) {
    stream_traffic_through(&producer(), env, traffic, chunks, pause).await;
}

/// The same through `producer` (another broker's).
pub async fn stream_traffic_through(
    producer: &FutureProducer,
    env: &TestEnv,
    traffic: &[Routed],
    chunks: usize,
    pause: Duration,
) {
    let size = traffic.len().div_ceil(chunks);
    for chunk in traffic.chunks(size) {
        publish_traffic(producer, env, chunk).await;
        tokio::time::sleep(pause).await;
    }
}

/// The keys (sorted) of the dead letters `env`'s ingest wrote, read from
/// the topic's beginning through `client` (its bootstrap servers and any
/// security settings) until `expected` arrived or 30 s passed.
pub async fn dead_letter_keys(env: &TestEnv, mut client: ClientConfig, expected: usize) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let reader: BaseConsumer = client
        .set("group.id", format!("e2e.{}.dlq-reader", env.name))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("dead-letter reader");
    reader.subscribe(&[env.dead_letter_topic.as_str()]).expect("subscribed to the dead-letter topic");
    tokio::task::spawn_blocking(move || {
        let mut keys = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while keys.len() < expected && Instant::now() < deadline {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
                keys.push(String::from_utf8_lossy(rdkafka::Message::key(&m).unwrap_or_default()).into_owned());
            }
        }
        keys.sort();
        keys
    })
    .await
    .expect("the reader thread")
}

/// A dead letter as read back from the topic.
#[derive(Debug)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: std::collections::BTreeMap<String, String>,
}

/// The dead letters `env`'s ingest wrote, from the topic's beginning: waits
/// up to `wait` for `expected` of them, then checks that no more arrive.
pub fn read_dead_letters(env: &TestEnv, expected: usize, wait: Duration) -> Vec<DeadLetter> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};
    use std::collections::BTreeMap;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("e2e.{}.dlq-reader", env.name))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&env.dead_letter_topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + wait;
    while out.len() < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m.headers().map_or_else(BTreeMap::new, |h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            });
            out.push(DeadLetter { key: m.key().map(<[u8]>::to_vec), value: m.payload().map(<[u8]>::to_vec), headers });
        }
    }
    // Nothing more than expected arrives.
    let extra = consumer.poll(Duration::from_secs(2));
    assert!(extra.is_none(), "an unexpected extra dead letter: {extra:?}");
    out
}

/// Messages in a topic of the stack's broker (the sum of its partitions'
/// high watermarks).
pub fn topic_size(topic: &str) -> i64 {
    topic_size_on(&brokers(), topic)
}

/// The same on the broker at `brokers`.
pub fn topic_size_on(brokers: &str, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    (0..PARTITIONS).map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1).sum()
}

/// Waits until `env`'s ingest group has committed every message of its
/// topics. Ingest commits a batch only once it is stored, so then no insert
/// is left to retry.
pub async fn wait_for_commits(env: &TestEnv, timeout: Duration) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", env.group()).create().unwrap();
    let mut partitions = TopicPartitionList::new();
    for topic in &env.topics {
        for p in 0..PARTITIONS {
            partitions.add_partition(topic, p);
        }
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let committed = consumer.committed_offsets(partitions.clone(), Duration::from_secs(10)).unwrap();
        let behind: Vec<String> = committed
            .elements()
            .iter()
            .filter_map(|e| {
                let end = consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10)).unwrap().1;
                let at = match e.offset() {
                    Offset::Offset(n) => n,
                    _ => 0,
                };
                (at < end).then(|| format!("{}[{}] at {at} of {end}", e.topic(), e.partition()))
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not committed after {timeout:?}: {behind:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `traffic` to `env`'s topics, stream by stream.
pub async fn publish_traffic(producer: &FutureProducer, env: &TestEnv, traffic: &[Routed]) {
    for stream in Stream::ALL {
        let messages: Vec<_> = traffic.iter().filter(|(s, _)| *s == stream).map(|(_, m)| m.clone()).collect();
        publish(producer, env.topic(stream), &messages).await;
    }
}

/// The columns of a stream's raw table that tell one message from another
/// (what `Event::identity` is made of): the event id, or for a catalogue
/// entry its key and `updated_at`.
pub fn identity_columns(stream: Stream) -> &'static str {
    match stream {
        Stream::Catalog => "authority_code, procedure_code, updated_at",
        Stream::Dossier | Stream::Payment | Stream::Feedback | Stream::Petition => "event_id",
    }
}

/// After a fault test: every produced message is stored exactly once, by
/// Kafka coordinates and by identity (one row per coordinates once the
/// table has collapsed repeats: `FINAL`).
pub async fn assert_exactly_once(env: &TestEnv, traffic: &[Routed], timeout: Duration) {
    for stream in Stream::ALL {
        let table = dvc_ingest::rows::table_of(stream);
        let produced = traffic.iter().filter(|(s, _)| *s == stream).count() as u64;
        env.wait_for_count(&format!("SELECT uniqExact(kafka_partition, kafka_offset) FROM {table}"), produced, timeout)
            .await;
        assert_eq!(
            env.count(&format!("SELECT uniqExact({}) FROM {table}", identity_columns(stream))).await,
            produced,
            "{table}: distinct messages"
        );
        // A batch stored again after its insert failed half-way (ingest
        // resumes after the last batch stored whole, `ingest_progress`)
        // repeats rows with the same coordinates, which the table collapses.
        assert_eq!(env.count(&format!("SELECT count() FROM {table} FINAL")).await, produced, "{table}: duplicate rows");
    }
}

/// The sample portal traffic and its expected rates (tests/fixtures/samples).
pub fn samples() -> std::path::PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples")
}

/// The stream, file and raw table of each sample file.
pub const SAMPLE_FILES: [(Stream, &str, &str); 3] = [
    (Stream::Dossier, "dossier-events.jsonl", "dossier_events"),
    (Stream::Payment, "payment-events.jsonl", "payment_events"),
    (Stream::Feedback, "feedback-events.jsonl", "feedback_events"),
];

/// One sample file's lines as messages keyed by dossier.
pub fn sample_messages(file: &str) -> Vec<Keyed> {
    let text = std::fs::read_to_string(samples().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| keyed(l.as_bytes().to_vec())).collect()
}

/// A service process the test started: killed (and reaped) when the test
/// ends, so a failing assertion leaves no instance behind in the consumer
/// group or on the machine.
pub struct KillOnDrop(pub Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

/// Runs dvc-rollup's batches in this process until every touch made before
/// this call is in the rollup and the daily views read them from it.
pub async fn roll_up(env: &TestEnv) {
    tokio::time::timeout(Duration::from_secs(120), dvc_rollup::catch_up(&env.client(), 50_000))
        .await
        .expect("the rollup catches up within 2 minutes")
        .expect("rollup batches");
}

/// Inserts `traffic` and rolls it up, then re-sends its dossier events in
/// a loop while dvc-rollup runs batches and the API at `base` is asked every
/// metric, nationally, over `range`, for 40 s and at least five reads (a
/// loaded cluster answers a read of every metric in about 13 s). The events
/// re-sent change no figure, so every answer must stay the recount of
/// `traffic`. A query reading the pending ids once per place it takes them
/// would see an id touched in between in one place and not in another, and
/// count that dossier twice (README.md, "The pending set, read once per
/// answer").
pub async fn assert_counted_once_while_touched(
    env: &std::sync::Arc<TestEnv>,
    base: &str,
    traffic: &dvc_portal_sim::lifecycle::Traffic,
    range: (time::Date, time::Date),
) {
    use dvc_portal_sim::lifecycle::Traffic;
    let mut offset = 0;
    insert_traffic(env, traffic, &mut offset).await;
    roll_up(env).await;
    let touching = tokio_util::sync::CancellationToken::new();
    let _stop_on_panic = touching.clone().drop_guard();
    let writer = {
        let (env, dossiers, touching) = (std::sync::Arc::clone(env), traffic.dossiers.clone(), touching.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !touching.is_cancelled() {
                for chunk in dossiers.chunks(50) {
                    insert_traffic(&env, &Traffic { dossiers: chunk.to_vec(), ..Traffic::default() }, &mut offset)
                        .await;
                }
                rounds += 1;
            }
            rounds
        })
    };
    let rollup = {
        let (client, touching) = (env.client(), touching.clone());
        tokio::spawn(async move {
            let mut batches = 0;
            while !touching.is_cancelled() {
                let steps = dvc_rollup::catch_up(&client, 200).await.expect("rollup batches");
                batches += steps.rates.iter().filter(|s| matches!(s, dvc_rollup::Step::Wrote { .. })).count();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            batches
        })
    };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut reads = 0;
    while started.elapsed() < Duration::from_secs(40) || reads < 5 {
        recount::assert_api_matches_recount(
            &client,
            base,
            recount::Endpoint::Rates,
            traffic,
            range,
            &["national"],
            "touched while read",
        )
        .await;
        reads += 1;
    }
    touching.cancel();
    let (rounds, batches) = (writer.await.unwrap(), rollup.await.unwrap());
    assert!(
        rounds >= 3 && batches >= 3,
        "{rounds} rounds of touches, {batches} batches in {reads} reads: too few to race"
    );
}

/// Inserts `traffic` straight into the raw tables as ingest would write it
/// (the rows ingest makes, Kafka coordinates from `next_offset` on, with
/// ingest's settings: on a cluster an insert returns once every shard holds
/// the rows its views made, touches included; queued ones could land after
/// a rollup batch has passed their second).
pub async fn insert_traffic(env: &TestEnv, traffic: &dvc_portal_sim::lifecycle::Traffic, next_offset: &mut u64) {
    use dvc_ingest::rows::{Coordinates, DossierRow, FeedbackRow, PaymentRow, RawRow};
    async fn insert<T: RawRow, E: serde::Serialize>(env: &TestEnv, events: &[E], next_offset: &mut u64) {
        let hasher = dvc_ingest::privacy::ApplicantHasher::new(TEST_KEY.as_bytes()).expect("test key");
        let client =
            dvc_ingest::CLUSTER_SAFE.into_iter().fold(env.client(), |c, (name, value)| c.with_setting(name, value));
        let mut insert = client.insert::<T>(T::TABLE).await.expect("insert");
        for e in events {
            let at = Coordinates { topic: "direct".into(), partition: 0, offset: *next_offset };
            *next_offset += 1;
            let mut row = T::from_record(&serde_json::to_vec(e).expect("JSON"), &at, &hasher).expect("valid event");
            row.set_ingested_at(1_720_000_000);
            insert.write(&row).await.expect("row written");
        }
        insert.end().await.expect("insert ends");
    }
    insert::<DossierRow, _>(env, &traffic.dossiers, next_offset).await;
    insert::<PaymentRow, _>(env, &traffic.payments, next_offset).await;
    insert::<FeedbackRow, _>(env, &traffic.ratings, next_offset).await;
}
