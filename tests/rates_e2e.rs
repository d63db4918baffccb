//! The sample portal traffic of shared/samples, end to end: published to
//! Kafka, ingested, aggregated in ClickHouse, served by the rates API over
//! HTTP; every metric × grouping equals shared/samples/expected-rates.json
//! (computed from the contract by an independent program).

mod common;

use std::time::Duration;

use common::{TestEnv, keyed, producer, publish};
use dvc_events::Stream;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_traffic_gives_the_expected_rates() {
    let env = TestEnv::new("rates").await;
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples");
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));

    let producer = producer();
    for (stream, file, table) in [
        (Stream::Dossier, "dossier-events.jsonl", "dossier_events"),
        (Stream::Payment, "payment-events.jsonl", "payment_events"),
        (Stream::Feedback, "feedback-events.jsonl", "feedback_events"),
    ] {
        let text = std::fs::read_to_string(samples.join(file)).expect("shared/samples beside the repository");
        let messages: Vec<_> =
            text.lines().filter(|l| !l.trim().is_empty()).map(|l| keyed(l.as_bytes().to_vec())).collect();
        publish(&producer, env.topic(stream), &messages).await;
        env.wait_for_count(&format!("SELECT count() FROM {table}"), messages.len() as u64, Duration::from_secs(60))
            .await;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Through the read-only user of deploy/local/clickhouse/users.xml, as deployed.
    let reader = dvc_warehouse::ClickHouseArgs { user: "dvc_reader".into(), ..env.clickhouse.clone() };
    let config = dvc_rates_api::Config { listen: listener.local_addr().unwrap(), clickhouse: reader, openapi: false };
    let api = tokio::spawn(dvc_rates_api::serve(listener, config, stop.clone()));

    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(samples.join("expected-rates.json")).unwrap()).unwrap();
    let (from, to) = (expected["from"].as_str().unwrap(), expected["to"].as_str().unwrap());
    let client = reqwest::Client::new();
    let mut compared = 0;
    for (key, rows) in expected["results"].as_object().unwrap() {
        let (metric, group_by) = key.split_once('/').unwrap();
        let url = format!("{base}/v1/rates?metric={metric}&from={from}&to={to}&group_by={group_by}");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["metric"], metric);
        assert_eq!(body["group_by"], group_by);
        assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some(from), Some(to)));
        let got = body["rows"].as_array().unwrap();
        let want = rows.as_array().unwrap();
        let groups = |rows: &[Value]| rows.iter().map(|r| r["group"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(groups(got), groups(want), "{key}: groups");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["numerator"], w["numerator"], "{key} {}", w["group"]);
            assert_eq!(g["denominator"], w["denominator"], "{key} {}", w["group"]);
            let (gv, wv) = (g["value"].as_f64(), w["value"].as_f64());
            match (gv, wv) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "{key} {}: {a} vs {b}", w["group"]),
                (a, b) => assert_eq!(a, b, "{key} {}", w["group"]),
            }
            compared += 1;
        }
    }
    assert!(compared > 200, "compared only {compared} rows");

    // The served OpenAPI document is the one the binary prints.
    let served: Value = client.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served, dvc_rates_api::openapi::document());

    // Re-sending the whole sample changes no figure: duplicates never count twice.
    let text = std::fs::read_to_string(samples.join("dossier-events.jsonl")).unwrap();
    let again: Vec<_> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| keyed(l.as_bytes().to_vec())).collect();
    publish(&producer, env.topic(Stream::Dossier), &again).await;
    env.wait_for_count("SELECT count() FROM dossier_events", 2 * again.len() as u64, Duration::from_secs(60)).await;
    let url = format!("{base}/v1/rates?metric=full_online_share&from={from}&to={to}&group_by=authority_code");
    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["rows"], expected["results"]["full_online_share/authority_code"]);

    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
    api.await.unwrap().expect("API stops cleanly");
}
