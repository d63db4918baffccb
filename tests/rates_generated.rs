//! Rates on generated traffic (several seeds): dossiers with changing
//! attributes, payments with failures and refunds, ratings; delivered with
//! duplicates, shuffled, some late, timestamps in UTC and +07:00 near
//! midnight. Every metric × grouping from the API equals the independent
//! in-memory recount of tests/common/recount.rs.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::recount::{GROUPINGS, Sums, recount};
use common::{TestEnv, keyed, producer, publish};
use dvc_events::Stream;
use dvc_portal_sim::lifecycle::{self, Faults};
use serde_json::Value;
use time::macros::{date, datetime};
use tokio_util::sync::CancellationToken;

fn json<T: serde::Serialize>(events: &[T]) -> Vec<common::Message> {
    events.iter().map(|e| keyed(serde_json::to_vec(e).unwrap())).collect()
}

/// What the API must answer for one metric and grouping, from the recount.
fn expected_rows(kind: dvc_warehouse::Kind, grouping: &str, sums: Option<&Sums>) -> Vec<Value> {
    let empty = BTreeMap::new();
    let mut sums = sums.unwrap_or(&empty).clone();
    // No rows at all: the national figure is still answered, with nothing counted.
    if sums.is_empty() && grouping == "national" {
        sums.insert("national".to_owned(), (0, 0));
    }
    sums.into_iter()
        .map(|(group, (num, den))| match kind {
            dvc_warehouse::Kind::Rate => serde_json::json!({
                "group": group, "numerator": num, "denominator": den,
                "value": (den > 0).then(|| num as f64 / den as f64),
            }),
            dvc_warehouse::Kind::Total => {
                serde_json::json!({ "group": group, "numerator": null, "denominator": null, "value": num })
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_traffic_rates_equal_an_independent_recount() {
    for seed in [11u64, 12, 13] {
        let env = TestEnv::new(&format!("generated{seed}")).await;
        let stop = CancellationToken::new();
        let _stop_on_panic = stop.clone().drop_guard();
        let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));

        let traffic = lifecycle::generate(seed, 300, datetime!(2024-07-01 00:00 UTC), 4);
        let sent = traffic.deliver(seed, Faults::default());
        assert!(sent.dossiers.len() > traffic.dossiers.len(), "duplicates were sent");
        let producer = producer();
        for (stream, messages, table) in [
            (Stream::Dossier, json(&sent.dossiers), "dossier_events"),
            (Stream::Payment, json(&sent.payments), "payment_events"),
            (Stream::Feedback, json(&sent.ratings), "feedback_events"),
        ] {
            publish(&producer, env.topic(stream), &messages).await;
            env.wait_for_count(&format!("SELECT count() FROM {table}"), messages.len() as u64, Duration::from_secs(60))
                .await;
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = dvc_rates_api::Config {
            listen: listener.local_addr().unwrap(),
            clickhouse: env.clickhouse.clone(),
            openapi: false,
        };
        let api = tokio::spawn(dvc_rates_api::serve(listener, config, stop.clone()));
        let client = reqwest::Client::new();

        // The whole range, one day, a range reaching past the data.
        for (from, to) in [
            (date!(2024 - 07 - 01), date!(2024 - 07 - 04)),
            (date!(2024 - 07 - 02), date!(2024 - 07 - 02)),
            (date!(2024 - 06 - 30), date!(2024 - 07 - 20)),
        ] {
            let expected = recount(&sent, from, to);
            for metric in dvc_warehouse::METRICS {
                for grouping in GROUPINGS {
                    let url = format!("{base}/v1/rates?metric={}&from={from}&to={to}&group_by={grouping}", metric.name);
                    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
                    let want = expected_rows(
                        metric.kind,
                        grouping,
                        expected.get(&(metric.name.to_owned(), grouping.to_owned())),
                    );
                    let got = body["rows"].as_array().unwrap_or_else(|| panic!("{url}: {body}"));
                    assert_eq!(got.len(), want.len(), "seed {seed} {url}\n got {got:?}\nwant {want:?}");
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!(
                            (&g["group"], &g["numerator"], &g["denominator"]),
                            (&w["group"], &w["numerator"], &w["denominator"]),
                            "seed {seed} {url}"
                        );
                        match (g["value"].as_f64(), w["value"].as_f64()) {
                            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "seed {seed} {url}: {a} vs {b}"),
                            (a, b) => assert_eq!(a, b, "seed {seed} {url}"),
                        }
                    }
                }
            }
        }
        stop.cancel();
        ingest.await.unwrap().expect("ingest stops cleanly");
        api.await.unwrap().expect("API stops cleanly");
    }
}
