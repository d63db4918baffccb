//! DVC Pulse on a ClickHouse cluster: the local cluster of
//! deploy/cluster/cluster.sh (ZooKeeper, three ClickHouse 18.16 servers, two
//! shards, the first with two replicas), the schema in its cluster layout,
//! ingest instances writing through different nodes, the real broker, and
//! the rates read while dossiers are touched again.
//! `make test` starts the cluster; the fault test stops and restarts its nodes
//! through the same script.

mod common;

use std::process::Command;
use std::time::Duration;

use common::rates::assert_expected_rates;
use common::{
    Keyed, SAMPLE_FILES, TestEnv, assert_counted_once_while_touched, assert_exactly_once, cluster_nodes, producer,
    publish, sample_messages, start_api, stream_traffic, traffic,
};
use dvc_events::Stream;
use dvc_portal_sim::lifecycle::{self, Faults};
use time::macros::{date, datetime};
use tokio_util::sync::CancellationToken;

const SETTLE: Duration = Duration::from_secs(240);
/// A killed member holds its partitions until its session expires; keep that short.
const FAST_GROUP: &[&str] = &["--session-timeout-ms=3000", "--kafka-option=heartbeat.interval.ms=500"];

/// The three cluster tests, one after the other: the fault test stops nodes
/// the others read through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_local_cluster() {
    sample_traffic_through_two_nodes_gives_the_expected_rates().await;
    dossiers_touched_while_the_rates_are_read_are_counted_once().await;
    faults_on_the_cluster_lose_and_repeat_nothing().await;
}

/// `deploy/cluster/cluster.sh stop N` (kill -9) or `start N`.
fn node(action: &str, n: u8) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cluster/cluster.sh");
    let status = Command::new(script).args([action, &n.to_string()]).status().expect("cluster.sh runs");
    assert!(status.success(), "cluster.sh {action} {n}");
}

/// `env` with its ingest and client talking to another node.
fn through(env: &TestEnv, url: &str) -> TestEnv {
    TestEnv {
        name: env.name.clone(),
        clickhouse: env.clickhouse_at(url),
        topics: env.topics.clone(),
        dead_letter_topic: env.dead_letter_topic.clone(),
    }
}

/// The sample keyed by its event id, not its dossier: one dossier's events
/// land on several partitions, so on both shards, as when portals hash keys
/// differently.
fn keyed_by_event(messages: Vec<Keyed>) -> Vec<Keyed> {
    messages
        .into_iter()
        .map(|(_, value)| {
            let event: serde_json::Value = serde_json::from_slice(&value).unwrap();
            (event["event_id"].as_str().map(str::to_owned), value)
        })
        .collect()
}

async fn sample_traffic_through_two_nodes_gives_the_expected_rates() {
    let env = TestEnv::on_cluster("cluster_rates").await;
    let nodes = cluster_nodes();
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    // Two instances of one group, writing through the first node of each shard.
    let ingest: Vec<_> = [&nodes[0], &nodes[2]]
        .map(|url| tokio::spawn(dvc_ingest::run(through(&env, url).ingest_config(&[]), stop.clone())))
        .into();

    let producer = producer();
    let dossier_events = sample_messages("dossier-events.jsonl");
    for (stream, file, table) in SAMPLE_FILES {
        let messages = keyed_by_event(sample_messages(file));
        publish(&producer, env.topic(stream), &messages).await;
        env.wait_for_count(&format!("SELECT count() FROM {table}"), messages.len() as u64, Duration::from_secs(90))
            .await;
    }
    // The events did cross shards: some dossier has events on both.
    let split = env
        .count(
            "SELECT count() FROM (SELECT dossier_id FROM dossier_events \
             GROUP BY dossier_id HAVING uniqExact(kafka_partition % 2) = 2)",
        )
        .await;
    assert!(split > 10, "only {split} dossiers have events on both shards");
    // ... and each dossier's state lives on one shard: the first node of each
    // shard holds disjoint sets of dossiers, together all of them.
    let per_shard: Vec<u64> = {
        let mut counts = Vec::new();
        for url in [&nodes[0], &nodes[2]] {
            counts.push(through(&env, url).count("SELECT uniqExact(dossier_id) FROM dossier_state_v2_local").await);
        }
        counts
    };
    let dossiers = env.count("SELECT uniqExact(dossier_id) FROM dossier_events").await;
    assert_eq!(per_shard.iter().sum::<u64>(), dossiers, "states per shard {per_shard:?}");
    assert!(per_shard.iter().all(|&n| n > 0), "states per shard {per_shard:?}");

    // The API reads through the node dvc-rollup writes through (README
    // "Running on a cluster").
    let (base, api) = start_api(&env, stop.clone()).await;
    common::wait_for_commits(&env, Duration::from_secs(90)).await;
    assert_expected_rates(&base).await;
    common::roll_up(&env).await;
    assert_expected_rates(&base).await;

    // The whole dossier sample again, keyed by dossier this time: new
    // coordinates, the same events; no figure moves.
    publish(&producer, env.topic(Stream::Dossier), &dossier_events).await;
    env.wait_for_count("SELECT count() FROM dossier_events", 2 * dossier_events.len() as u64, Duration::from_secs(90))
        .await;
    // Every insert has returned: a batch's raw rows on one shard are visible
    // before the states and touches it writes to the other shard.
    common::wait_for_commits(&env, Duration::from_secs(90)).await;
    assert_expected_rates(&base).await;
    common::roll_up(&env).await;
    assert_expected_rates(&base).await;

    stop.cancel();
    for handle in ingest {
        handle.await.unwrap().expect("ingest stops cleanly");
    }
    api.await.unwrap().expect("API stops cleanly");
}

/// Where the pending set's reads cross the network, each in its own
/// `GLOBAL IN` (README.md, "The pending set, read once per answer").
async fn dossiers_touched_while_the_rates_are_read_are_counted_once() {
    let env = std::sync::Arc::new(TestEnv::on_cluster("cluster_touched").await);
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let (base, api) = start_api(&env, stop.clone()).await;
    let july = lifecycle::generate(26, 300, datetime!(2024-07-01 00:00 UTC), 4).deliver(26, Faults::default());
    assert_counted_once_while_touched(&env, &base, &july, (date!(2024 - 06 - 05), date!(2024 - 07 - 04))).await;
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

async fn faults_on_the_cluster_lose_and_repeat_nothing() {
    let env = TestEnv::on_cluster("cluster_faults").await;
    let nodes = cluster_nodes();
    let events = traffic(&env.name, 200_000, 16);
    let logs = std::env::temp_dir().join(format!("dvc-e2e-{}", env.name));
    std::fs::create_dir_all(&logs).unwrap();
    let spawn = |url: &str, log: &str| through(&env, url).spawn_ingest(&logs.join(log), FAST_GROUP);

    let mut first = spawn(&nodes[0], "first-0.log");
    let mut second = spawn(&nodes[2], "second.log");
    // 100 chunks 500 ms apart: events still stream in when the last fault ends.
    let streaming = stream_traffic(&env, &events, 100, Duration::from_millis(500));
    // Each fault strikes while ingest is writing: it waits until the
    // dossier rows stored pass a mark (counted through the first node).
    let stored_past = |mark: u64| {
        let (client, logs) = (env.client(), &logs);
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while client.query("SELECT count() FROM dossier_events").fetch_one::<u64>().await.unwrap_or(0) < mark {
                assert!(
                    std::time::Instant::now() < deadline,
                    "fewer than {mark} dossier rows after 120 s; ingest's logs are in {}",
                    logs.display()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let faults = async {
        // Shard 2 (one replica) down for 20 s.
        stored_past(20_000).await;
        node("stop", 3);
        tokio::time::sleep(Duration::from_secs(20)).await;
        node("start", 3);
        // kill -9 of an ingest instance, restarted 2 s later.
        stored_past(70_000).await;
        first.kill().expect("kill -9");
        first.wait().unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        first = spawn(&nodes[0], "first-1.log");
        // kill -9 of shard 1's second replica, restarted 5 s later.
        stored_past(100_000).await;
        node("stop", 2);
        tokio::time::sleep(Duration::from_secs(5)).await;
        node("start", 2);
    };
    tokio::join!(streaming, faults);
    // No fault stopped an instance: each was a wait, not an error.
    assert!(first.try_wait().unwrap().is_none(), "the first ingest instance stopped");
    assert!(second.try_wait().unwrap().is_none(), "the second ingest instance stopped");

    // Every batch is committed (a partition left behind is named with its
    // offsets), then stored exactly once.
    common::wait_for_commits(&env, SETTLE).await;
    assert_exactly_once(&env, &events, SETTLE).await;
    // Every dossier's state is complete: what its merged state says equals
    // what its stored events say, for every dossier.
    let dossiers = env.count("SELECT uniqExact(dossier_id) FROM dossier_events").await;
    let agreeing = env
        .count(
            "SELECT count() FROM \
             (SELECT dossier_id, minMerge(first_event_at) AS first, minIfMerge(first_closed_at) AS closed, \
                     maxMerge(resolved) AS resolved FROM dossier_state_v2 GROUP BY dossier_id) \
             ANY INNER JOIN \
             (SELECT dossier_id, min(occurred_at) AS first_, minIf(occurred_at, status IN (3, 7, 8, 9, 10)) AS closed_, \
                     max(toUInt8(status IN (9, 10))) AS resolved_ FROM dossier_events GROUP BY dossier_id) \
             USING dossier_id WHERE first = first_ AND closed = closed_ AND resolved = resolved_",
        )
        .await;
    assert_eq!(agreeing, dossiers, "dossiers whose state matches their events");
    // Shard 1's replicas agree once the restarted one has caught up.
    let replica = |url: &str| through(&env, url);
    let on_first = replica(&nodes[0]).count("SELECT count() FROM dossier_events_local").await;
    replica(&nodes[1]).wait_for_count("SELECT count() FROM dossier_events_local", on_first, SETTLE).await;
    // The shard's outage struck while ingest was writing: inserts (or the
    // offset lookup of a rebalance) failed and were retried; nothing crashed.
    drop(first);
    let logs_text: String =
        std::fs::read_dir(&logs).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(
        logs_text.contains("ClickHouse insert failed; the partition stays paused")
            || logs_text.contains("cannot read stored offsets from ClickHouse"),
        "ingest never met the shard's outage"
    );
    assert!(!logs_text.contains("panicked"), "an instance panicked");
    std::fs::remove_dir_all(&logs).ok();

    // The same traffic on one server, no faults: once each has rolled up,
    // the cluster's every rate is the single node's. (Before the rollups
    // each answer merges the states of all 67 k dossiers, about 3 s a
    // query on either side; the sample test covers that path on the cluster.)
    let single = TestEnv::new("cluster_faults_single").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let single_ingest = tokio::spawn(dvc_ingest::run(single.ingest_config(&[]), stop.clone()));
    common::publish_traffic(&producer(), &single, &events).await;
    assert_exactly_once(&single, &events, SETTLE).await;
    let (on_cluster, cluster_api) = start_api(&env, stop.clone()).await;
    let (on_single, single_api) = start_api(&single, stop.clone()).await;
    common::roll_up(&env).await;
    common::roll_up(&single).await;
    assert_same_answers(&on_cluster, &on_single).await;
    stop.cancel();
    single_ingest.await.unwrap().expect("ingest stops cleanly");
    for api in [cluster_api, single_api] {
        api.await.unwrap().expect("API stops cleanly");
    }
}

/// Every metric × grouping, `/v1/rates` over the generated traffic's month
/// (July 2024, with a day either side for the +07:00 timestamps) and
/// `/v1/series` over its first week: the API at `cluster` answers exactly
/// what the API at `single` answers.
async fn assert_same_answers(cluster: &str, single: &str) {
    let client = reqwest::Client::new();
    let answer = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let mut rows = 0;
    for metric in dvc_warehouse::METRICS {
        for group in dvc_warehouse::GroupBy::ALL {
            for (path, from, to) in [("rates", "2024-06-30", "2024-08-01"), ("series", "2024-07-01", "2024-07-07")] {
                let query =
                    format!("/v1/{path}?metric={}&from={from}&to={to}&group_by={}", metric.name, group.as_str());
                let want = answer(format!("{single}{query}")).await;
                assert_eq!(answer(format!("{cluster}{query}")).await, want, "{query}");
                rows += want["rows"].as_array().unwrap().len();
            }
        }
    }
    assert!(rows > 1_000, "compared only {rows} rows");
}
