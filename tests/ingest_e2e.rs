//! Ingest end to end on the real broker and ClickHouse: duplicates,
//! out-of-order and late events, the dead-letter path, and privacy.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{TestEnv, events, keyed, producer, publish, read_dead_letters};
use dvc_events::Stream;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_reordering_late_events_and_dead_letters() {
    let env = TestEnv::new("basics").await;
    let mut rng = events::rng(7);
    let run = env.name.clone();

    // 300 dossier events, 30 of them re-sent; 20 arrive 3 days late; all shuffled.
    let mut dossiers: Vec<_> = (0..300).map(|i| events::dossier(&mut rng, &run, i)).collect();
    for e in dossiers.iter_mut().take(20) {
        e.occurred_at -= time::Duration::days(3);
    }
    let mut messages: Vec<_> = dossiers.iter().map(|e| keyed(events::json(e))).collect();
    messages.extend(dossiers.iter().step_by(10).map(|e| keyed(events::json(e))));
    messages.shuffle(&mut rng);

    // One of each kind of invalid message, keyed like real ones.
    let base = serde_json::to_value(&dossiers[0]).unwrap();
    let variant = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        patch(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let invalid: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad-json",
            b"{\"schema_version\": 1, \"event_id\": ".to_vec(),
            "invalid JSON: EOF while parsing a value at line 1 column 34",
        ),
        (
            "missing",
            variant(&|v| {
                v.as_object_mut().unwrap().remove("status");
            }),
            "status: required field is missing",
        ),
        (
            "bad-enum",
            variant(&|v| v["channel"] = "fax".into()),
            "channel: \"fax\" is not one of in_person, online, postal",
        ),
        ("wrong-type", variant(&|v| v["fee_vnd"] = "50000".into()), "fee_vnd: must be an integer, not a string"),
        ("empty-value", variant(&|v| v["event_id"] = "".into()), "event_id: must be 1-64 characters, got 0"),
        ("empty-message", Vec::new(), "invalid JSON: EOF while parsing a value at line 1 column 0"),
    ];
    let invalid_messages: Vec<_> = invalid.iter().map(|(k, v, _)| (Some((*k).to_owned()), v.clone())).collect();

    let payments: Vec<_> = (0..50).map(|i| keyed(events::json(&events::payment(&mut rng, &run, i)))).collect();
    let feedback: Vec<_> = (0..40).map(|i| keyed(events::json(&events::feedback(&mut rng, &run, i)))).collect();

    let stop = CancellationToken::new();
    // A failed assertion must still stop the service, or the runtime waits for it forever.
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));
    let producer = producer();
    publish(&producer, env.topic(Stream::Dossier), &messages).await;
    publish(&producer, env.topic(Stream::Dossier), &invalid_messages).await;
    publish(&producer, env.topic(Stream::Payment), &payments).await;
    publish(&producer, env.topic(Stream::Feedback), &feedback).await;

    // Every Kafka record is one row; re-sent events are rows of their own
    // (distinct offsets) with the same event_id.
    env.wait_for_count("SELECT count() FROM dossier_events", 330, WAIT).await;
    env.wait_for_count("SELECT count() FROM payment_events", 50, WAIT).await;
    env.wait_for_count("SELECT count() FROM feedback_events", 40, WAIT).await;
    assert_eq!(env.count("SELECT uniqExact(event_id) FROM dossier_events").await, 300);
    assert_eq!(env.count("SELECT uniqExact(kafka_partition, kafka_offset) FROM dossier_events").await, 330);
    assert_eq!(
        env.count(
            "SELECT count() FROM dossier_events WHERE occurred_at < toDateTime('2024-07-01 00:00:00', 'UTC') - 0"
        )
        .await,
        dossiers.iter().filter(|e| e.occurred_at.unix_timestamp() < 1_719_792_000).count() as u64
            + dossiers.iter().step_by(10).filter(|e| e.occurred_at.unix_timestamp() < 1_719_792_000).count() as u64
    );

    // Dead letters: unchanged bytes and key, reason and source in headers.
    let letters = read_dead_letters(&env, invalid.len(), WAIT);
    assert_eq!(letters.len(), invalid.len());
    for (key, value, reason) in &invalid {
        let letter = letters
            .iter()
            .find(|l| l.key.as_deref() == Some(key.as_bytes()))
            .unwrap_or_else(|| panic!("no dead letter for {key}"));
        assert_eq!(letter.value.as_deref().unwrap_or_default(), value.as_slice(), "{key}");
        assert_eq!(letter.headers["dvc-error"], *reason, "{key}");
        assert_eq!(letter.headers["dvc-source-topic"], env.topic(Stream::Dossier));
        let partition: i32 = letter.headers["dvc-source-partition"].parse().unwrap();
        let offset: i64 = letter.headers["dvc-source-offset"].parse().unwrap();
        assert!((0..common::PARTITIONS).contains(&partition) && offset >= 0, "{:?}", letter.headers);
    }
    let offsets: HashSet<(String, String)> = letters
        .iter()
        .map(|l| (l.headers["dvc-source-partition"].clone(), l.headers["dvc-source-offset"].clone()))
        .collect();
    assert_eq!(offsets.len(), invalid.len(), "each dead letter names its own source record");

    // Privacy: applicant IDs appear nowhere in ClickHouse; the stored hash is
    // HMAC-SHA256(key, id), computed here independently.
    let dump = env
        .client()
        .query("SELECT * FROM dossier_events FORMAT TabSeparated")
        .fetch_bytes("TabSeparated")
        .unwrap()
        .collect()
        .await
        .unwrap();
    let dump = String::from_utf8_lossy(&dump);
    for e in &dossiers {
        let id = e.applicant_id.as_deref().unwrap();
        assert!(!dump.contains(id), "applicant ID {id} stored in clear");
    }
    let e = &dossiers[5];
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(common::TEST_KEY.as_bytes()).unwrap();
    mac.update(e.applicant_id.as_deref().unwrap().as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes()).to_uppercase();
    // hex() of a Nullable column is Nullable(String).
    let stored: Option<String> = env
        .client()
        .query("SELECT hex(applicant_hash) FROM dossier_events WHERE event_id = ? LIMIT 1")
        .bind(&e.event_id)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(expected.as_str()));

    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_portal_traffic_lands_once_per_record() {
    let env = TestEnv::new("samples").await;
    let stop = CancellationToken::new();
    // A failed assertion must still stop the service, or the runtime waits for it forever.
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));
    let producer = producer();
    for (stream, file, table) in common::SAMPLE_FILES {
        let messages = common::sample_messages(file);
        let ids: HashSet<String> = messages
            .iter()
            .map(|(_, v)| {
                serde_json::from_slice::<serde_json::Value>(v).unwrap()["event_id"].as_str().unwrap().to_owned()
            })
            .collect();
        publish(&producer, env.topic(stream), &messages).await;
        env.wait_for_count(&format!("SELECT count() FROM {table}"), messages.len() as u64, WAIT).await;
        assert_eq!(env.count(&format!("SELECT uniqExact(event_id) FROM {table}")).await, ids.len() as u64, "{table}");
    }
    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
}

/// `--insert-quorum` needs quorum inserts that run side by side, one per
/// partition (`insert_quorum_parallel`), which ClickHouse 18.16 lacks: there
/// every partition's insert would wait for the one before (code 286). Ingest
/// refuses to start on such a server, at once and saying why, instead of
/// waiting for a server that will never take its settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_quorum_the_server_cannot_run_in_parallel_is_refused_at_start() {
    let env = TestEnv::new("quorum").await;
    let version: String = env.client().query("SELECT version()").fetch_one().await.unwrap();
    assert!(version.starts_with("18."), "the local stack runs ClickHouse 18.16, not {version}");
    let run = dvc_ingest::run(env.ingest_config(&["--insert-quorum=auto"]), CancellationToken::new());
    let error = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("refused at once, not waited for")
        .expect_err("18.16 cannot run quorum inserts in parallel");
    let text = format!("{error:#}");
    assert!(text.contains("insert_quorum_parallel"), "names the setting: {text}");
    assert!(text.contains("refuses ingest's requests"), "{text}");
}
