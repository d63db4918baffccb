//! The sample portal traffic of tests/fixtures/samples, end to end: published to
//! Kafka, ingested, aggregated in ClickHouse, served by the rates API over
//! HTTP; every metric × grouping equals tests/fixtures/samples/expected-rates.json
//! (computed from the contract by an independent program).

mod common;

use std::time::Duration;

use common::rates::{assert_expected_rates, expected};
use common::{SAMPLE_FILES, TestEnv, producer, publish, sample_messages, samples, start_api, start_api_with};
use dvc_events::Stream;
use dvc_ingest::rows::{Coordinates, DossierRow, FeedbackRow, PaymentRow, RawRow};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// `dvc-rates-watch --once` shows every metric's national, ministry and
/// province figure of expected-rates.json, as a percentage or a count.
fn assert_watch_table(base: &str) {
    let expected = expected();
    let (from, to) = (expected["from"].as_str().unwrap(), expected["to"].as_str().unwrap());
    let output = std::process::Command::new(common::binary("dvc-rates-watch"))
        .args(["--api", base, "--from", from, "--to", to, "--once"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    let shown = |v: &Value, rate: bool| match v.as_f64() {
        None => "–".to_owned(),
        Some(v) if rate => format!("{:.1}%", v * 100.0),
        Some(v) => (v as u64)
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(","),
    };
    for metric in dvc_warehouse::METRICS {
        let rate = metric.kind == dvc_warehouse::MetricKind::Rate;
        let national = &expected["results"][format!("{}/national", metric.name)][0]["value"];
        let kinds = &expected["results"][format!("{}/authority_kind", metric.name)];
        let kind = |k: &str| {
            kinds.as_array().unwrap().iter().find(|r| r["group"] == k).map_or(Value::Null, |r| r["value"].clone())
        };
        let want = [shown(national, rate), shown(&kind("ministry"), rate), shown(&kind("province"), rate)];
        let line = table.lines().find(|l| l.starts_with(metric.title_en)).unwrap_or_else(|| panic!("{table}"));
        let cells: Vec<&str> = line.split_whitespace().rev().take(3).collect();
        assert_eq!(cells.into_iter().rev().collect::<Vec<_>>(), want, "{}:\n{table}", metric.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_traffic_gives_the_expected_rates() {
    let env = TestEnv::new("rates").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));

    let producer = producer();
    for (stream, file, table) in SAMPLE_FILES {
        let messages = sample_messages(file);
        publish(&producer, env.topic(stream), &messages).await;
        env.wait_for_count(&format!("SELECT count() FROM {table}"), messages.len() as u64, Duration::from_secs(60))
            .await;
    }
    let (base, api) = start_api(&env, stop.clone()).await;
    assert_expected_rates(&base).await;
    assert_watch_table(&base);

    // The served OpenAPI document is the one the binary prints.
    let client = reqwest::Client::new();
    let served: Value = client.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served, dvc_rates_api::openapi::document());

    // Re-sending the whole sample changes no figure: duplicates never count twice.
    let again = sample_messages("dossier-events.jsonl");
    publish(&producer, env.topic(Stream::Dossier), &again).await;
    env.wait_for_count("SELECT count() FROM dossier_events", 2 * again.len() as u64, Duration::from_secs(60)).await;
    assert_expected_rates(&base).await;

    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
    api.await.unwrap().expect("API stops cleanly");
}

/// The case materialized views make hard: the raw table took a block but the
/// view's insert failed, and the whole insert was retried. Reproduced
/// exactly: the view is detached while the first copy goes in (raw only),
/// re-attached, and the same block is inserted again (raw twice, states
/// once). Every figure must still be the expected one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_insert_retried_after_its_view_failed_changes_no_figure() {
    let env = TestEnv::new("partial").await;
    let client = env.client();
    let hasher = dvc_ingest::privacy::ApplicantHasher::new(common::TEST_KEY.as_bytes()).unwrap();

    async fn insert<T: RawRow>(client: &clickhouse::Client, rows: &[T]) {
        let mut insert = client.insert::<T>(T::TABLE).await.unwrap();
        for row in rows {
            insert.write(row).await.unwrap();
        }
        insert.end().await.unwrap();
    }
    fn rows<T: RawRow>(text: &str, hasher: &dvc_ingest::privacy::ApplicantHasher) -> Vec<T> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                let at = Coordinates { topic: "partial".into(), partition: 0, offset: i as u64 };
                let mut row = T::from_record(line.as_bytes(), &at, hasher).expect("sample events are valid");
                row.set_ingested_at(1_720_000_000);
                row
            })
            .collect()
    }
    let read = |f: &str| std::fs::read_to_string(samples().join(f)).unwrap();
    let dossiers: Vec<DossierRow> = rows(&read("dossier-events.jsonl"), &hasher);
    let (failed_block, rest) = dossiers.split_at(500);

    client.query("DETACH TABLE dossier_state_v2_mv").execute().await.unwrap();
    insert(&client, failed_block).await; // the raw table took it; the view did not
    assert_eq!(env.count("SELECT count() FROM dossier_events").await, 500);
    assert_eq!(env.count("SELECT count() FROM dossier_state_v2").await, 0, "the view saw nothing");
    client.query("ATTACH TABLE dossier_state_v2_mv").execute().await.unwrap();
    insert(&client, failed_block).await; // the retry: raw twice, states once
    insert(&client, rest).await;
    insert::<PaymentRow>(&client, &rows(&read("payment-events.jsonl"), &hasher)).await;
    insert::<FeedbackRow>(&client, &rows(&read("feedback-events.jsonl"), &hasher)).await;
    assert_eq!(env.count("SELECT count() FROM dossier_events").await, dossiers.len() as u64 + 500);

    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let (base, api) = start_api(&env, stop.clone()).await;
    assert_expected_rates(&base).await;
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

/// A query past the API's query timeout is answered 503 with `Retry-After`,
/// and the API goes on serving; a range past ten years is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_timeout_gets_503_with_retry_after() {
    let env = TestEnv::new("api_limits").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let limits = dvc_rates_api::Limits { query_timeout_ms: 1, ..dvc_rates_api::Limits::default() };
    let (base, api) = start_api_with(&env, stop.clone(), limits).await;
    let response = reqwest::get(format!(
        "{base}/v1/series?metric=online_share&from=2024-01-01&to=2024-12-31&group_by=agency_code"
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "the query took longer than 1 ms", "{body}");

    let response =
        reqwest::get(format!("{base}/v1/rates?metric=online_share&from=2010-01-01&to=2024-12-31")).await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("from: the range 2010-01-01 to 2024-12-31 is longer than ten years")
    );
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200);
    stop.cancel();
    api.await.unwrap().unwrap();
}
