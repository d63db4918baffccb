//! The rate rollup (schemas/clickhouse/005_rate_rollup.sql, dvc-rollup) gives
//! every figure exactly: every metric × grouping over one day, 30 days and
//! 365 days equals the independent in-memory recount and the per-dossier
//! facts views, before and after each batch, through late events that move a
//! dossier to another day or change it after its day was rolled up, a late
//! event for a dossier closed months ago, duplicates, shuffled order, the
//! whole traffic re-sent, an insert retried after its view failed, kill -9 of
//! dvc-rollup in the middle of its work, and the upgrade of a database made
//! by the earlier migrations.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::recount::{Endpoint, GROUPINGS, assert_api_matches_recount};
use common::{TestEnv, assert_counted_once_while_touched, free_port, insert_traffic, roll_up, start_api};
use dvc_events::{DossierEvent, Status};
use dvc_portal_sim::lifecycle::{self, Faults, Traffic};
use dvc_warehouse::{GroupBy, METRICS, Source};
use rand::{Rng, SeedableRng};
use time::macros::{date, datetime};
use time::{Date, Duration as Span};
use tokio_util::sync::CancellationToken;

/// One day, 30 days and 365 days, all ending on the traffic's last day.
const RANGES: [(Date, Date); 3] = [
    (date!(2024 - 07 - 02), date!(2024 - 07 - 02)),
    (date!(2024 - 06 - 05), date!(2024 - 07 - 04)),
    (date!(2023 - 07 - 06), date!(2024 - 07 - 04)),
];

/// The figures of one metric and grouping: (group, numerator, denominator).
type Figures = Vec<(String, u64, u64)>;

/// The same sums from the per-dossier facts views, as the rates were
/// computed before the rollup.
fn facts_view_sql(metric: &dvc_warehouse::Metric, group: GroupBy) -> String {
    let view = match metric.source {
        Source::Dossiers => "dossier_facts",
        Source::Payments => "payment_facts",
        Source::Ratings => "rating_facts",
    };
    let grp = match group {
        GroupBy::National => "'national'".to_owned(),
        other => other.as_str().to_owned(),
    };
    format!(
        "SELECT {grp} AS grp, toUInt64(sum({num})) AS numerator, toUInt64({den}) AS denominator FROM {view} \
         WHERE day BETWEEN toDate(?) AND toDate(?) GROUP BY grp ORDER BY grp",
        num = metric.numerator_column,
        den = metric.denominator_column.map_or("0".to_owned(), |c| format!("sum({c})")),
    )
}

/// The rows of `sql` over `from..=to`. An empty national row is left out:
/// ClickHouse 18.16 answers a grouping by a constant over no rows with one
/// row of zeros, the rollup query with none (the API adds it).
async fn figures(client: &clickhouse::Client, sql: &str, from: Date, to: Date) -> Figures {
    let query = dvc_warehouse::catalog_query(client, sql, &from.to_string(), &to.to_string());
    let mut rows = dvc_warehouse::when_session_free(&query, async |q| q.fetch_all::<(String, u64, u64)>().await)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.retain(|row| *row != ("national".to_owned(), 0, 0));
    rows
}

/// Every metric × grouping × range from the rollup's sums alone (the groups
/// counting something): exact once nothing is pending.
async fn rollup_figures(env: &TestEnv) -> Vec<Figures> {
    let mut out = Vec::new();
    for (from, to) in RANGES {
        for metric in METRICS {
            for group in GroupBy::ALL {
                let sql = metric.rollup_query(group, false);
                let rows = dvc_warehouse::catalog_query(&env.client(), &sql, &from.to_string(), &to.to_string())
                    .fetch_all::<(String, String, i64, i64, i64, u64, String)>()
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let mut figures: Figures = rows
                    .into_iter()
                    .filter(|row| row.4 > 0)
                    .map(|(_, grp, n, d, ..)| (grp, n.try_into().unwrap(), d.try_into().unwrap()))
                    .collect();
                figures.sort();
                out.push(figures);
            }
        }
    }
    out
}

/// Every metric × grouping × range of the query `sql` builds, read through
/// `client`.
async fn every_figure(
    client: &clickhouse::Client,
    sql: impl Fn(&dvc_warehouse::Metric, GroupBy) -> String,
) -> Vec<Figures> {
    let mut out = Vec::new();
    for (from, to) in RANGES {
        for metric in METRICS {
            for group in GroupBy::ALL {
                out.push(figures(client, &sql(metric, group), from, to).await);
            }
        }
    }
    out
}

/// Every metric × grouping × range: the API's rates equal the recount of
/// `sent`, its series over 30 days each day's recount, and the catalog's
/// exact query equals the facts views'.
async fn assert_exact(env: &TestEnv, base: &str, sent: &Traffic, label: &str) {
    let client = reqwest::Client::new();
    for (from, to) in RANGES {
        assert_api_matches_recount(&client, base, Endpoint::Rates, sent, (from, to), &GROUPINGS, label).await;
    }
    assert_api_matches_recount(&client, base, Endpoint::Series, sent, RANGES[1], &GROUPINGS, label).await;
    let session = dvc_warehouse::pending_session(&env.client());
    for sql in dvc_warehouse::PENDING_IDS {
        dvc_warehouse::when_session_free(&session.query(sql), async |q| q.execute().await)
            .await
            .expect("the pending ids copied");
    }
    let exact = every_figure(&session, |metric, group| metric.query(group)).await;
    let facts = every_figure(&env.client(), facts_view_sql).await;
    for (i, (e, f)) in exact.iter().zip(&facts).enumerate() {
        assert_eq!(e, f, "{label}: figure {i} (range × metric × grouping) differs from the facts views'");
    }
}

fn append(into: &mut Traffic, more: &Traffic) {
    into.dossiers.extend(more.dossiers.iter().cloned());
    into.payments.extend(more.payments.iter().cloned());
    into.ratings.extend(more.ratings.iter().cloned());
}

/// A copy of `e` that happened `days` later, with a new event id.
fn later(e: &DossierEvent, days: i64, tag: &str) -> DossierEvent {
    DossierEvent {
        event_id: format!("{}-{tag}", e.event_id),
        occurred_at: e.occurred_at + Span::days(days),
        ..e.clone()
    }
}

/// Late events for dossiers already rolled up: an acceptance days later
/// that moves the dossier's day, a step that moves it to another agency and
/// marks it digitized, and a result for a dossier closed months ago.
fn late_events(july: &Traffic, march: &Traffic) -> Traffic {
    let accepted: Vec<&DossierEvent> =
        july.dossiers.iter().filter(|e| e.status == Status::Accepted && e.received_at.is_some()).take(6).collect();
    assert_eq!(accepted.len(), 6, "the traffic has accepted dossiers");
    let mut out = Traffic::default();
    for e in &accepted[..3] {
        let mut moved = later(e, 3, "reaccepted");
        moved.received_at = e.received_at.map(|t| t + Span::days(3));
        out.dossiers.push(moved);
    }
    for e in &accepted[3..] {
        let mut changed = later(e, 5, "moved");
        changed.status = Status::Processing;
        changed.received_at = None;
        changed.place.agency_code = format!("{}-X", e.place.agency_code);
        changed.place.authority_code = "G99".to_owned();
        changed.digitized = Some(true);
        out.dossiers.push(changed);
    }
    let closed = march.dossiers.iter().find(|e| e.status == Status::ResultReturned).expect("a closed dossier");
    let mut reopened = later(closed, 120, "late-result");
    reopened.status = Status::Resolved;
    reopened.result_digitized = Some(!closed.result_digitized.unwrap_or(false));
    reopened.vneid_verified = Some(true);
    out.dossiers.push(reopened);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollup_figures_stay_exact_through_late_events_duplicates_and_replays() {
    let env = TestEnv::new("rollup_exact").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let (base, api) = start_api(&env, stop.clone()).await;
    let faults = Faults { duplicate_rate: 0.05, late_rate: 0.1, shuffle: true };
    let july = lifecycle::generate(21, 400, datetime!(2024-07-01 00:00 UTC), 4).deliver(21, faults);
    let march = lifecycle::generate(22, 60, datetime!(2024-03-04 00:00 UTC), 3).deliver(22, faults);
    let mut offset = 0;
    let mut sent = Traffic::default();

    // March and most of July, then rolled up.
    let split = |t: &Traffic, share: f64| {
        let cut = |n: usize| (n as f64 * share) as usize;
        (
            Traffic {
                dossiers: t.dossiers[..cut(t.dossiers.len())].to_vec(),
                payments: t.payments[..cut(t.payments.len())].to_vec(),
                ratings: t.ratings[..cut(t.ratings.len())].to_vec(),
                petitions: Vec::new(),
            },
            Traffic {
                dossiers: t.dossiers[cut(t.dossiers.len())..].to_vec(),
                payments: t.payments[cut(t.payments.len())..].to_vec(),
                ratings: t.ratings[cut(t.ratings.len())..].to_vec(),
                petitions: Vec::new(),
            },
        )
    };
    let (first, rest) = split(&july, 0.6);
    for part in [&march, &first] {
        insert_traffic(&env, part, &mut offset).await;
        append(&mut sent, part);
    }
    assert_exact(&env, &base, &sent, "nothing rolled up yet").await;
    roll_up(&env).await;
    assert_eq!(env.count("SELECT count() FROM rate_rollup WHERE kind = 'dossier'").await, {
        let ids: std::collections::HashSet<&str> = sent.dossiers.iter().map(|e| e.dossier_id.as_str()).collect();
        ids.len() as u64
    });
    assert_exact(&env, &base, &sent, "rolled up").await;

    // Late events for rolled-up dossiers: exact at once (their states are
    // read until the next batch), and after it.
    let late = late_events(&first, &march);
    insert_traffic(&env, &late, &mut offset).await;
    append(&mut sent, &late);
    assert_exact(&env, &base, &sent, "late events, before the batch").await;
    roll_up(&env).await;
    assert_exact(&env, &base, &sent, "late events, rolled up").await;

    // The rest, then everything again.
    insert_traffic(&env, &rest, &mut offset).await;
    append(&mut sent, &rest);
    roll_up(&env).await;
    let everything = sent.clone();
    insert_traffic(&env, &everything, &mut offset).await;
    append(&mut sent, &everything);
    assert_exact(&env, &base, &sent, "all re-sent, before the batch").await;
    roll_up(&env).await;
    assert_exact(&env, &base, &sent, "all re-sent, rolled up").await;
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

/// The insert whose view failed: the raw rows and their touches went in,
/// the dossier states did not, and a batch rolled those dossiers up from
/// the states it had. The retried insert touches them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_between_a_failed_view_and_the_retry_changes_no_figure() {
    let env = TestEnv::new("rollup_retry").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let (base, api) = start_api(&env, stop.clone()).await;
    let july = lifecycle::generate(23, 200, datetime!(2024-07-01 00:00 UTC), 4).deliver(23, Faults::default());
    let (mut offset, mut sent) = (0, Traffic::default());
    let early = Traffic { dossiers: july.dossiers[..july.dossiers.len() / 2].to_vec(), ..Traffic::default() };
    insert_traffic(&env, &early, &mut offset).await;
    append(&mut sent, &early);
    roll_up(&env).await;

    let failed = Traffic { dossiers: july.dossiers[july.dossiers.len() / 2..].to_vec(), ..july.clone() };
    env.client().query("DETACH TABLE dossier_state_v2_mv").execute().await.unwrap();
    let retry_from = offset;
    insert_traffic(&env, &failed, &mut offset).await;
    roll_up(&env).await;
    env.client().query("ATTACH TABLE dossier_state_v2_mv").execute().await.unwrap();
    offset = retry_from;
    insert_traffic(&env, &failed, &mut offset).await; // the retry: same rows
    append(&mut sent, &failed);
    assert_exact(&env, &base, &sent, "retried, before the batch").await;
    roll_up(&env).await;
    assert_exact(&env, &base, &sent, "retried, rolled up").await;
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

/// Dossiers touched again and again while the API answers and dvc-rollup
/// runs batches (`common::assert_counted_once_while_touched`), then rolled
/// up: every figure exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dossiers_touched_while_the_rates_are_read_are_counted_once() {
    let env = std::sync::Arc::new(TestEnv::new("rollup_touched").await);
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let (base, api) = start_api(&env, stop.clone()).await;
    let july = lifecycle::generate(25, 600, datetime!(2024-07-01 00:00 UTC), 4).deliver(25, Faults::default());
    assert_counted_once_while_touched(&env, &base, &july, RANGES[1]).await;
    roll_up(&env).await;
    assert_exact(&env, &base, &july, "touched, rolled up").await;
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

/// dvc-rollup killed with SIGKILL five times in the middle of a backlog of
/// small batches, the rates' and the index's in turn, restarted each time:
/// no batch is half written, none counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_rollup_in_the_middle_of_its_work_changes_no_figure() {
    let env = TestEnv::new("rollup_kill").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let (base, api) = start_api(&env, stop.clone()).await;
    let sent = lifecycle::generate(24, 2_000, datetime!(2024-07-01 00:00 UTC), 4).deliver(24, Faults::default());
    let mut offset = 0;
    insert_traffic(&env, &sent, &mut offset).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the touches' second is over

    let mut rng = rand::rngs::StdRng::seed_from_u64(24);
    let log = std::env::temp_dir().join(format!("{}-rollup.log", env.name));
    for round in 0..5 {
        // The rates' batches in even rounds, the index's (which follow the
        // rates' backlog) in odd ones.
        let track = if round % 2 == 0 { dvc_rollup::Track::Rates } else { dvc_rollup::Track::Index };
        let batch = async || track.progress(&env.client()).await.unwrap().map_or(0, |p| p.batch);
        let before = batch().await;
        let mut rollup = common::KillOnDrop(
            std::process::Command::new(common::binary("dvc-rollup"))
                .args([
                    format!("--clickhouse-database={}", env.clickhouse.database),
                    format!("--listen=127.0.0.1:{}", free_port()),
                    "--batch=300".to_owned(),
                    "--interval-ms=50".to_owned(),
                    // The index's batches between each two of the rates' windows.
                    "--index-interval-ms=0".to_owned(),
                    "--index-batch=300".to_owned(),
                ])
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("dvc-rollup starts"),
        );
        // Once this run has written a batch of the track, at a random moment
        // of the next ones.
        let started = std::time::Instant::now();
        while batch().await <= before {
            assert!(started.elapsed() < Duration::from_secs(60), "round {round}: no {track:?} batch written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        rollup.kill().unwrap(); // SIGKILL
        rollup.wait().unwrap();
        // Whatever the rollup holds, the figures are exact meanwhile.
        if round == 2 {
            assert_exact(&env, &base, &sent, &format!("after kill {round}")).await;
        }
    }
    let published: u64 = env.count("SELECT count() FROM rate_rollup WHERE kind = 'dossier'").await;
    assert!(published > 0, "the killed runs rolled up part of the backlog");

    roll_up(&env).await;
    assert_eq!(env.count("SELECT count() FROM rollup_pending").await, 0, "every figure comes from the rollup");
    // Every id counted once, and the rollup is the sum of what it counted.
    assert_eq!(
        env.count(
            "SELECT count() FROM (SELECT kind, id, sum(published) AS p FROM rate_rollup \
             WHERE kind IN ('dossier', 'payment', 'rating') GROUP BY kind, id HAVING p != 1)"
        )
        .await,
        0
    );
    for measure in dvc_warehouse::MEASURES {
        let sql = format!(
            "SELECT toUInt64(sumIf({measure}, kind = 'rollup') = sumIf({measure}, kind != 'rollup')) FROM rate_rollup"
        );
        assert_eq!(env.count(&sql).await, 1, "{measure}: the rollup is the sum of the rows it counted");
    }
    assert_exact(&env, &base, &sent, "after five kills, rolled up").await;

    // The index rollup, in batches of its own: its sums are the sum of the
    // rows it counted, every accepted dossier has rows, and a batch over
    // every dossier again finds each one's rows as they are now.
    for measure in dvc_rollup::index::IndexRow::MEASURES {
        let sql = format!(
            "SELECT toUInt64(sumIf({measure}, kind = 'sum') = sumIf({measure}, kind = 'dossier')) FROM index766_rollup"
        );
        assert_eq!(env.count(&sql).await, 1, "{measure}: the index's sums are the sum of the rows it counted");
    }
    let accepted: BTreeSet<&str> =
        sent.dossiers.iter().filter(|e| e.received_at.is_some()).map(|e| e.dossier_id.as_str()).collect();
    let counted = env
        .count(
            "SELECT uniqExact(id) FROM (SELECT id, batch, sum(published) AS p FROM index766_rollup \
             WHERE kind = 'dossier' GROUP BY id, batch, period_kind, carry, period_start, late_after, \
             authority_code, agency_code, procedure_code HAVING p != 0)",
        )
        .await;
    assert_eq!(counted, accepted.len() as u64, "every accepted dossier is counted in the index");
    env.client()
        .query("INSERT INTO touches SELECT now(), 1, dossier_id FROM dossier_state_v2 GROUP BY dossier_id")
        .execute()
        .await
        .unwrap();
    let rewritten: u64 = dvc_rollup::catch_up(&env.client(), 50_000)
        .await
        .expect("batches")
        .index
        .iter()
        .map(|s| match s {
            dvc_rollup::Step::Wrote { changed, .. } => *changed,
            dvc_rollup::Step::CaughtUp { .. } => 0,
        })
        .sum();
    assert_eq!(rewritten, 0, "no dossier's index rows were stale or counted twice");
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

/// A database made by migrations 001–004 with data in it upgrades through
/// 005 (states copied, everything touched) to the same figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_the_earlier_migrations_upgrades_to_the_same_figures() {
    let env = TestEnv::new("rollup_upgrade").await;
    let stop = CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let server = env.clickhouse.server_client();
    let old = env.clickhouse.with_database(format!("{}_old", env.clickhouse.database));
    dvc_warehouse::migrate_to(&server, &old.database, 4).await.expect("migrations 001-004 apply");
    // The rows the test inserts are today's ingest rows, which carry the
    // contract 1.1 dossier columns: they are added as 006 adds them, and the
    // upgrade then skips those statements (as it does for a 006 that stopped
    // half-way).
    let alters: Vec<String> = dvc_warehouse::migrations()
        .unwrap()
        .into_iter()
        .filter(|m| m.version == 6)
        .flat_map(|m| m.statements)
        .filter(|s| s.starts_with("ALTER TABLE dossier_events ADD COLUMN"))
        .collect();
    assert_eq!(alters.len(), 3);
    for alter in &alters {
        old.client().query(alter).execute().await.expect("column added");
    }
    let old_env = TestEnv {
        name: env.name.clone(),
        clickhouse: old.clone(),
        topics: env.topics.clone(),
        dead_letter_topic: env.dead_letter_topic.clone(),
    };
    let sent = lifecycle::generate(25, 300, datetime!(2024-07-01 00:00 UTC), 4).deliver(25, Faults::default());
    let mut offset = 0;
    insert_traffic(&old_env, &sent, &mut offset).await;
    let before = every_figure(&old_env.client(), facts_view_sql).await;

    let applied = dvc_warehouse::migrate(&server, &old.database).await.expect("005 and 006 apply");
    assert!(applied.contains(&5) && applied.contains(&6), "{applied:?}");
    let (base, api) = start_api(&old_env, stop.clone()).await;
    assert_exact(&old_env, &base, &sent, "upgraded, before the first batch").await;
    roll_up(&old_env).await;
    assert_exact(&old_env, &base, &sent, "upgraded and rolled up").await;
    let after = rollup_figures(&old_env).await;
    assert_eq!(before, after, "the upgrade changes no figure");
    server.query(&format!("DROP DATABASE {}", old.database)).execute().await.unwrap();
    stop.cancel();
    api.await.unwrap().expect("API stops cleanly");
}

/// A database at 011, whose index dvc-rollup wrote in the rates' batches,
/// upgrades through 012: the index's progress starts at the rates' latest
/// batch, so no touch is rolled up into the index again, and the next index
/// batch reads on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_012_starts_the_index_where_the_rates_are() {
    let env = TestEnv::new("rollup_012").await;
    let server = env.clickhouse.server_client();
    let old = env.clickhouse.with_database(format!("{}_011", env.clickhouse.database));
    dvc_warehouse::migrate_to(&server, &old.database, 11).await.expect("migrations 001-011 apply");
    let old_env = TestEnv { clickhouse: old.clone(), ..env };
    let sent = lifecycle::generate(26, 100, datetime!(2024-07-01 00:00 UTC), 2).deliver(26, Faults::default());
    insert_traffic(&old_env, &sent, &mut 0).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the touches' second is over
    let client = old.client();
    let step = dvc_rollup::step(&client, 50).await.expect("a rates batch on 011");
    assert!(step.mid_window(), "the traffic's touches take more than one batch of 50");
    let rates = dvc_warehouse::rates_progress(&client).await.unwrap().expect("the rates' progress");

    let applied = dvc_warehouse::migrate(&server, &old.database).await.expect("012 applies");
    assert_eq!(applied, [12]);
    let index = dvc_rollup::Track::Index.progress(&client).await.unwrap();
    assert_eq!(index.as_ref(), Some(&rates), "the index starts where the rates are");
    match dvc_rollup::Track::Index.step(&client, 50).await.expect("an index batch") {
        dvc_rollup::Step::Wrote { progress, .. } => {
            assert_eq!(progress.batch, rates.batch + 1);
            assert_eq!((progress.from, progress.to), (rates.from, rates.to), "the same window, after its cursor");
        }
        other => panic!("no index batch: {other:?}"),
    }
    server.query(&format!("DROP DATABASE {}", old.database)).execute().await.unwrap();
}
