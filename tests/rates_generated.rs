//! Rates on generated traffic (several seeds): dossiers with changing
//! attributes, payments with failures and refunds, ratings; delivered with
//! duplicates, shuffled, some late, timestamps in UTC and +07:00 near
//! midnight. Every metric × grouping from the API equals the independent
//! in-memory recount of tests/common/recount.rs.

mod common;

use std::time::Duration;

use common::recount::{Endpoint, GROUPINGS, assert_api_matches_recount};
use common::{TestEnv, keyed, producer, publish, start_api};
use dvc_events::Stream;
use dvc_portal_sim::lifecycle::{self, Faults};
use time::macros::{date, datetime};
use tokio_util::sync::CancellationToken;

fn json<T: serde::Serialize>(events: &[T]) -> Vec<common::Keyed> {
    events.iter().map(|e| keyed(serde_json::to_vec(e).unwrap())).collect()
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

        let (base, api) = start_api(&env, stop.clone()).await;
        let client = reqwest::Client::new();

        // The whole range, one day, a range reaching past the data.
        for (from, to) in [
            (date!(2024 - 07 - 01), date!(2024 - 07 - 04)),
            (date!(2024 - 07 - 02), date!(2024 - 07 - 02)),
            (date!(2024 - 06 - 30), date!(2024 - 07 - 20)),
        ] {
            for endpoint in [Endpoint::Rates, Endpoint::Series] {
                let label = format!("seed {seed}");
                assert_api_matches_recount(&client, &base, endpoint, &sent, (from, to), &GROUPINGS, &label).await;
            }
        }
        stop.cancel();
        ingest.await.unwrap().expect("ingest stops cleanly");
        api.await.unwrap().expect("API stops cleanly");
    }
}
