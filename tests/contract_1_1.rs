//! Contract 1.1 (CONTRACT.md §8) end to end, on the real broker and
//! ClickHouse: petition events, catalogue entries and the three new dossier
//! flags are stored exactly once through kill -9 and re-sent messages;
//! invalid ones are dead-lettered with their reason; a catalogue updated out
//! of order keeps each procedure's newest entry; a petition's steps, shuffled
//! and duplicated, fold into the state recomputed here from the events; the
//! working-day calendar the migrate step loads counts across Tết, a swap and
//! a compensating day as the Government's notices say.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Keyed, Routed, TestEnv, events, read_dead_letters, stream_traffic};
use dvc_events::{
    CatalogEntry, ContractEnum, PetitionClassification, PetitionEvent, PetitionStatus, ServiceLevel, Stream,
};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::Value;
use time::Duration as Span;
use time::macros::{date, datetime};

const SETTLE: Duration = Duration::from_secs(180);
/// A killed member holds its partitions until its session expires; keep that short.
const FAST_GROUP: &[&str] = &["--session-timeout-ms=3000", "--kafka-option=heartbeat.interval.ms=500"];

/// One petition's life: submitted, maybe forwarded, received, maybe asked
/// for a supplement, then rejected, or processed, answered and maybe
/// published; likes and dislikes grow on the answer and the publication.
/// Some steps share a second with the step before; some petitions are still
/// on their way (their life so far).
fn petition(rng: &mut StdRng, run: &str, i: usize) -> Vec<PetitionEvent> {
    let id = format!("{run}-pakn-{i}");
    let mut t = datetime!(2024-07-01 00:00 UTC) + Span::minutes(i as i64 * 7);
    let mut path = vec![PetitionStatus::Submitted];
    if rng.random_bool(0.5) {
        path.push(PetitionStatus::Forwarded);
    }
    path.push(PetitionStatus::Received);
    if rng.random_bool(0.1) {
        path.push(PetitionStatus::Rejected);
    } else {
        if rng.random_bool(0.2) {
            path.extend([PetitionStatus::SupplementRequested, PetitionStatus::Processing]);
        }
        path.extend([PetitionStatus::Processing, PetitionStatus::Answered]);
        if rng.random_bool(0.7) {
            path.push(PetitionStatus::Published);
        }
    }
    if rng.random_bool(0.2) {
        path.truncate(rng.random_range(1..path.len()));
    }
    let (mut likes, mut dislikes) = (0u64, 0u64);
    path.into_iter()
        .enumerate()
        .map(|(step, status)| {
            if step > 0 && !rng.random_bool(0.1) {
                t += Span::minutes(rng.random_range(10..5_000));
            }
            let counted = matches!(status, PetitionStatus::Answered | PetitionStatus::Published);
            if counted {
                likes += rng.random_range(0..20);
                dislikes += rng.random_range(0..8);
            }
            PetitionEvent {
                schema_version: 1,
                event_id: format!("{id}#{step}"),
                petition_id: id.clone(),
                occurred_at: t,
                authority_code: if i.is_multiple_of(3) { "G05".into() } else { "H29".into() },
                // The receiving agency takes over from the portal's.
                agency_code: if step == 0 { "portal".into() } else { format!("agency-{}", i % 4) },
                status,
                classification: (status == PetitionStatus::Received)
                    .then(|| [PetitionClassification::Regulation, PetitionClassification::StaffConduct][i % 2]),
                dossier_id: (step == 0 && i.is_multiple_of(2)).then(|| format!("{run}-dossier-{i}")),
                procedure_code: (step == 0 && i % 4 == 1).then(|| "1.001234".to_owned()),
                likes: counted.then_some(likes),
                dislikes: counted.then_some(dislikes),
                repeat_of: (step == 0 && i % 10 == 9).then(|| format!("{run}-pakn-{}", i - 1)),
                extra: serde_json::Map::new(),
            }
        })
        .collect()
}

/// A petition's state recomputed from its events: the last step by
/// (occurred_at, step code); each attribute from the last step that
/// carried it; the first time of each step.
fn expected_petition(events: &[&PetitionEvent]) -> Value {
    let order = |e: &&&PetitionEvent| (e.occurred_at, e.status.code());
    let last = events.iter().max_by_key(order).unwrap();
    let latest = |field: fn(&PetitionEvent) -> Option<Value>| {
        events.iter().filter(|e| field(e).is_some()).max_by_key(order).and_then(|e| field(e)).unwrap_or(Value::Null)
    };
    let mut state = serde_json::json!({
        "petition_id": last.petition_id,
        "first_event_at": events.iter().map(|e| e.occurred_at.unix_timestamp()).min(),
        "last_event_at": events.iter().map(|e| e.occurred_at.unix_timestamp()).max(),
        "status": last.status.as_str(),
        "authority_code": last.authority_code,
        "agency_code": last.agency_code,
        "classification": latest(|e| e.classification.map(|c| c.as_str().into())),
        "dossier_id": latest(|e| e.dossier_id.clone().map(Value::from)),
        "procedure_code": latest(|e| e.procedure_code.clone().map(Value::from)),
        "likes": latest(|e| e.likes.map(Value::from)),
        "dislikes": latest(|e| e.dislikes.map(Value::from)),
        "repeat_of": latest(|e| e.repeat_of.clone().map(Value::from)),
    });
    for (name, status) in PetitionStatus::VARIANTS {
        let first = events.iter().filter(|e| e.status == *status).map(|e| e.occurred_at.unix_timestamp()).min();
        state[format!("{name}_at")] = first.into();
    }
    state
}

/// Three versions of each procedure's entry, a day apart, that differ in
/// every optional field; the last version of every fifth one withdraws it
/// and leaves its name out.
fn catalogue(procedures: usize) -> Vec<CatalogEntry> {
    let levels = [ServiceLevel::FullOnline, ServiceLevel::PartialOnline, ServiceLevel::Offline];
    let mut out = Vec::new();
    for p in 0..procedures {
        for version in 0..3usize {
            let withdrawn = version == 2 && p % 5 == 0;
            out.push(CatalogEntry {
                schema_version: 1,
                authority_code: if p % 2 == 0 { "H29".into() } else { "G05".into() },
                procedure_code: format!("1.{:06}", 1_000 + p),
                updated_at: datetime!(2024-06-01 08:00 UTC) + Span::days(version as i64),
                name: (!withdrawn).then(|| format!("Thủ tục {p}, bản {version}")),
                online_level: Some(levels[(p + version) % 3]),
                has_fee: Some((p + version) % 2 == 0),
                written_result_required: Some(version != 1),
                citizen_applicants: Some(p % 3 != 0),
                max_processing_days: Some(version as f64 * 2.5 + 1.0),
                applying_agencies: Some((0..version).map(|a| format!("agency-{a}")).collect()),
                announced_on: Some(date!(2024 - 03 - 01) + Span::days(version as i64)),
                legal_basis_effective_on: (version > 0).then_some(date!(2024 - 04 - 01)),
                published_on: Some(date!(2024 - 03 - 06) + Span::days(p as i64)),
                components_complete: Some(version == 2),
                withdrawn: Some(withdrawn),
                extra: serde_json::Map::new(),
            });
        }
    }
    out
}

/// What the current catalogue must say of `e`, in the JSON the test's
/// query writes.
fn expected_entry(e: &CatalogEntry) -> Value {
    let day = |d: Option<time::Date>| d.map(|d| d.to_string());
    let flag = |b: Option<bool>| b.map(u8::from);
    serde_json::json!({
        "authority_code": e.authority_code,
        "procedure_code": e.procedure_code,
        "updated_at": e.updated_at.unix_timestamp(),
        "name": e.name,
        "online_level": e.online_level.map(ServiceLevel::as_str),
        "has_fee": flag(e.has_fee),
        "written_result_required": flag(e.written_result_required),
        "citizen_applicants": flag(e.citizen_applicants),
        "max_processing_days": e.max_processing_days.map(|d| d.to_string()),
        "applying_agencies": e.applying_agencies.clone().unwrap_or_default(),
        "announced_on": day(e.announced_on),
        "legal_basis_effective_on": day(e.legal_basis_effective_on),
        "published_on": day(e.published_on),
        "components_complete": flag(e.components_complete),
        "withdrawn": flag(e.withdrawn),
    })
}

/// `procedure_catalog` holds, for each procedure, the newest of `sent`
/// (of two with the same `updated_at`, the later in `sent`), field by field.
async fn assert_catalogue_is_the_newest(env: &TestEnv, sent: &[CatalogEntry]) {
    let mut newest: BTreeMap<String, &CatalogEntry> = BTreeMap::new();
    for e in sent {
        let kept = newest.entry(e.key()).or_insert(e);
        if e.updated_at >= kept.updated_at {
            *kept = e;
        }
    }
    let current = json_rows(
        env,
        "SELECT authority_code, procedure_code, toUInt32(updated_at) AS updated_at, name, \
         CAST(online_level AS Nullable(String)) AS online_level, has_fee, written_result_required, \
         citizen_applicants, CAST(max_processing_days AS Nullable(String)) AS max_processing_days, applying_agencies, \
         CAST(announced_on AS Nullable(String)) AS announced_on, \
         CAST(legal_basis_effective_on AS Nullable(String)) AS legal_basis_effective_on, \
         CAST(published_on AS Nullable(String)) AS published_on, components_complete, withdrawn \
         FROM procedure_catalog ORDER BY authority_code, procedure_code FORMAT JSONEachRow",
    )
    .await;
    let expected: Vec<Value> = newest.values().map(|e| expected_entry(e)).collect();
    assert_eq!(current.len(), expected.len());
    for (got, want) in current.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

/// The name `procedure_catalog` gives the procedure with message key `key`.
async fn current_names(env: &TestEnv, key: &str) -> Vec<String> {
    let (authority, procedure) = key.split_once('/').unwrap();
    env.client()
        .query("SELECT ifNull(name, '') FROM procedure_catalog WHERE authority_code = ? AND procedure_code = ?")
        .bind(authority)
        .bind(procedure)
        .fetch_all()
        .await
        .unwrap()
}

/// The rows of `sql` (which must end in `FORMAT JSONEachRow`), parsed.
async fn json_rows(env: &TestEnv, sql: &str) -> Vec<Value> {
    let bytes = env
        .client()
        .query(sql)
        .fetch_bytes("JSONEachRow")
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn routed<T: serde::Serialize>(stream: Stream, key: &str, message: &T) -> Routed {
    (stream, (Some(key.to_owned()), events::json(message)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn petitions_catalogue_and_dossier_flags_land_once_through_kill_9_and_keep_the_newest_state() {
    let env = TestEnv::new("c11").await;
    let mut rng = events::rng(1101);
    let run = env.name.clone();

    // 400 petitions, 60 procedures in three versions, 300 dossier events;
    // a tenth of each re-sent; everything shuffled (late versions of an entry
    // and early steps of a petition arrive after later ones).
    let petitions: Vec<PetitionEvent> = (0..400).flat_map(|i| petition(&mut rng, &run, i)).collect();
    let entries = catalogue(60);
    let dossiers: Vec<_> = (0..300).map(|i| events::dossier(&mut rng, &run, i)).collect();
    let mut traffic: Vec<Routed> = Vec::new();
    traffic.extend(petitions.iter().map(|e| routed(Stream::Petition, &e.petition_id, e)));
    traffic.extend(entries.iter().map(|e| routed(Stream::Catalog, &e.key(), e)));
    traffic.extend(dossiers.iter().map(|e| routed(Stream::Dossier, &e.dossier_id, e)));
    let resent: Vec<Routed> = traffic.iter().step_by(10).cloned().collect();
    traffic.extend(resent);
    traffic.shuffle(&mut rng);

    // Invalid ones, keyed like real ones: each goes to the dead-letter topic
    // with the reason naming its field.
    let patch = |message: &Routed, field: &str, value: Value| -> Keyed {
        let mut v: Value = serde_json::from_slice(&message.1.1).unwrap();
        v[field] = value;
        (Some(format!("invalid-{field}")), serde_json::to_vec(&v).unwrap())
    };
    let sample = |stream: Stream| traffic.iter().find(|(s, _)| *s == stream).unwrap();
    let invalid: Vec<(Stream, Keyed, &str)> = vec![
        (
            Stream::Petition,
            patch(sample(Stream::Petition), "status", "closed".into()),
            "status: \"closed\" is not one of submitted, forwarded, received, supplement_requested, rejected, \
             processing, answered, published",
        ),
        (
            Stream::Petition,
            patch(sample(Stream::Petition), "likes", (-1).into()),
            "likes: -1 is not a count from 0 to 9007199254740991",
        ),
        (
            Stream::Catalog,
            patch(sample(Stream::Catalog), "published_on", "2024-02-30".into()),
            "published_on: \"2024-02-30\" is not a date YYYY-MM-DD (e.g. 2024-07-01)",
        ),
        (
            Stream::Catalog,
            patch(sample(Stream::Catalog), "applying_agencies", serde_json::json!(["ok", ""])),
            "applying_agencies: item 1 must be 1-64 characters, got 0",
        ),
        (
            Stream::Dossier,
            patch(sample(Stream::Dossier), "reused_digitized_data", "yes".into()),
            "reused_digitized_data: must be a boolean, not a string",
        ),
    ];

    // Two entries of one procedure with the same updated_at: the one
    // published later wins. Sent after everything else, in this order.
    let mut tie = entries[0].clone();
    tie.updated_at += Span::days(30);
    tie.name = Some("first of a tie".into());
    let mut tie_winner = tie.clone();
    tie_winner.name = Some("second of a tie".into());

    // Ingest is killed twice (-9) while the traffic streams in, each time
    // once it has written something, then runs to the end. The invalid
    // messages and the tie come after the kills: a dead letter sent before a
    // kill is sent again after it (at least once), which would blur what
    // this test reads back.
    let logs = std::env::temp_dir().join(format!("dvc-e2e-{}", env.name));
    std::fs::create_dir_all(&logs).unwrap();
    let streaming = {
        let (name, topics, dlq, ch) =
            (env.name.clone(), env.topics.clone(), env.dead_letter_topic.clone(), env.clickhouse.clone());
        let traffic = traffic.clone();
        tokio::spawn(async move {
            let env = TestEnv { name, clickhouse: ch, topics, dead_letter_topic: dlq };
            stream_traffic(&env, &traffic, 40, Duration::from_millis(250)).await;
        })
    };
    let stored = "SELECT (SELECT count() FROM petition_events) + (SELECT count() FROM catalog_entries)";
    for round in 0..2 {
        let mut child = env.spawn_ingest(&logs.join(format!("run-{round}.log")), FAST_GROUP);
        let before = env.count(stored).await;
        let deadline = Instant::now() + Duration::from_secs(90);
        while env.count(stored).await == before {
            assert!(Instant::now() < deadline, "round {round}: the instance wrote nothing in 90 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
        child.kill().expect("kill -9");
        child.wait().unwrap();
    }
    streaming.await.unwrap();
    let producer = common::producer();
    for (stream, message, _) in &invalid {
        common::publish(&producer, env.topic(*stream), std::slice::from_ref(message)).await;
    }
    for tied in [&tie, &tie_winner] {
        common::publish(&producer, env.topic(Stream::Catalog), &[(Some(tied.key()), events::json(tied))]).await;
    }
    let _last = env.spawn_ingest(&logs.join("run-final.log"), FAST_GROUP);

    // Exactly once per Kafka record; re-sent messages are records of their own.
    let sent = |stream: Stream| traffic.iter().filter(|(s, _)| *s == stream).count() as u64;
    for (stream, table, extra) in [
        (Stream::Petition, "petition_events", 0),
        (Stream::Catalog, "catalog_entries", 2),
        (Stream::Dossier, "dossier_events", 0),
    ] {
        let records = sent(stream) + extra;
        // FINAL: a batch stored again after a kill -9 (its progress unrecorded)
        // is absorbed by the table's key (topic, partition, offset) on merge.
        env.wait_for_count(&format!("SELECT count() FROM {table} FINAL"), records, SETTLE).await;
        let coordinates = format!("SELECT uniqExact(kafka_partition, kafka_offset) FROM {table}");
        assert_eq!(env.count(&coordinates).await, records, "{table}: one row per record");
    }
    assert_eq!(env.count("SELECT uniqExact(event_id) FROM petition_events").await, petitions.len() as u64);
    assert_eq!(env.count("SELECT uniqExact(event_id) FROM dossier_events").await, dossiers.len() as u64);
    let versions =
        "SELECT uniqExact(authority_code, procedure_code, updated_at, ifNull(name, '')) FROM catalog_entries";
    assert_eq!(env.count(versions).await, entries.len() as u64 + 2);

    // The dossier flags, as sent.
    for (column, flag) in [
        ("reused_digitized_data", (|e| e.reused_digitized_data) as fn(&dvc_events::DossierEvent) -> Option<bool>),
        ("population_db_used", |e| e.population_db_used),
    ] {
        let set = dossiers.iter().filter(|e| flag(e) == Some(true)).count() as u64;
        let sql = format!("SELECT uniqExact(event_id) FROM dossier_events WHERE {column} = 1");
        assert_eq!(env.count(&sql).await, set, "{column}");
        assert!(set > 0 && set < dossiers.len() as u64, "{column} takes both values");
    }
    assert_eq!(env.count("SELECT count() FROM dossier_events WHERE from_personal_store IS NOT NULL").await, 0);

    // Every petition's state, whatever order and how many times its steps came.
    let mut by_petition: HashMap<&str, Vec<&PetitionEvent>> = HashMap::new();
    for e in &petitions {
        by_petition.entry(e.petition_id.as_str()).or_default().push(e);
    }
    let times = PetitionStatus::VARIANTS
        .iter()
        .map(|(name, _)| format!("toUInt32({name}_at) AS {name}_at"))
        .collect::<Vec<_>>()
        .join(", ");
    let stored = json_rows(
        &env,
        &format!(
            "SELECT petition_id, toUInt32(first_event_at) AS first_event_at, toUInt32(last_event_at) AS last_event_at, \
             toString(status) AS status, authority_code, agency_code, \
             CAST(classification AS Nullable(String)) AS classification, dossier_id, procedure_code, \
             CAST(likes AS Nullable(UInt32)) AS likes, CAST(dislikes AS Nullable(UInt32)) AS dislikes, repeat_of, \
             {times} FROM petitions ORDER BY petition_id FORMAT JSONEachRow"
        ),
    )
    .await;
    assert_eq!(stored.len(), by_petition.len(), "one state row per petition");
    let statuses: HashSet<&str> = stored.iter().filter_map(|r| r["status"].as_str()).collect();
    assert!(statuses.len() >= 6, "the petitions stand at many steps: {statuses:?}");
    for row in &stored {
        let id = row["petition_id"].as_str().unwrap();
        assert_eq!(row, &expected_petition(&by_petition[id]), "{id}");
    }

    // The current catalogue: the newest version of every procedure.
    let mut sent = entries.clone();
    sent.push(tie_winner);
    assert_catalogue_is_the_newest(&env, &sent).await;
    assert_eq!(current_names(&env, &tie.key()).await, ["second of a tie"]);

    // Dead letters: the bytes as sent, the reason naming the field.
    let letters = read_dead_letters(&env, invalid.len(), Duration::from_secs(60));
    for (stream, (key, value), reason) in &invalid {
        let letter = letters
            .iter()
            .find(|l| l.key.as_deref() == key.as_deref().map(str::as_bytes) && l.value.as_deref() == Some(value))
            .unwrap_or_else(|| panic!("no dead letter for {key:?}"));
        assert_eq!(letter.headers["dvc-error"], *reason);
        assert_eq!(letter.headers["dvc-source-topic"], env.topic(*stream));
    }

    // The demo's live view counts them: petitions by where they stand (as
    // recounted from the events) and the catalogue's procedures.
    let stop = tokio_util::sync::CancellationToken::new();
    let (base, api) = common::start_api(&env, stop.clone()).await;
    let output = std::process::Command::new(common::binary("dvc-rates-watch"))
        .args(["--api", &base, "--once", "--clickhouse-database", &env.clickhouse.database])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    let status = |steps: &Vec<&PetitionEvent>| expected_petition(steps)["status"].as_str().unwrap().to_owned();
    let standing = |wanted: &[&str]| by_petition.values().filter(|s| wanted.contains(&status(s).as_str())).count();
    let (answered, rejected) = (standing(&["answered", "published"]), standing(&["rejected"]));
    let open = by_petition.len() - answered - rejected;
    assert!(open > 0 && answered > 0 && rejected > 0);
    let line = table.lines().find(|l| l.starts_with("Petitions")).unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.ends_with(&format!(" {}   {open} open, {answered} answered, {rejected} rejected", by_petition.len())),
        "{line}"
    );
    let procedures = sent.iter().map(CatalogEntry::key).collect::<HashSet<_>>().len();
    let line = table.lines().find(|l| l.starts_with("Procedure catalogue entries")).unwrap();
    assert!(line.ends_with(&format!(" {procedures}")), "{line}");
    stop.cancel();
    api.await.unwrap().unwrap();
    std::fs::remove_dir_all(&logs).ok();
}

/// `dvc-catalog` with this test's topic and broker; its status and output.
fn dvc_catalog(env: &TestEnv, args: &[&str]) -> (bool, Value, String) {
    let output = std::process::Command::new(common::binary("dvc-catalog"))
        .arg(format!("--brokers={}", common::brokers()))
        .arg(format!("--catalog-topic={}", env.topic(Stream::Catalog)))
        .args(args)
        .output()
        .expect("dvc-catalog runs");
    let summary = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), summary, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dvc_catalog_publishes_a_whole_file_and_refuses_a_broken_one() {
    let env = TestEnv::new("catalog_file").await;
    let mut rng = events::rng(1102);
    let mut entries = catalogue(20);
    entries.shuffle(&mut rng);
    let lines: Vec<String> = entries.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let dir = std::env::temp_dir().join(format!("dvc-e2e-{}", env.name));
    std::fs::create_dir_all(&dir).unwrap();

    // One bad line among good ones: named with its reason, nothing sent.
    let mut broken = lines.clone();
    broken[2] = broken[2].replace("\"published_on\":\"", "\"published_on\":\"2024-13-01\",\"x\":\"");
    let broken_file = dir.join("broken.jsonl");
    std::fs::write(&broken_file, broken.join("\n")).unwrap();
    let (ok, _, stderr) = dvc_catalog(&env, &[broken_file.to_str().unwrap()]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("line 3: published_on: \"2024-13-01\" is not a date YYYY-MM-DD"), "{stderr}");
    assert!(stderr.contains("1 invalid line(s)") && stderr.contains("nothing was published"), "{stderr}");

    let file = dir.join("catalogue.jsonl");
    std::fs::write(&file, lines.join("\r\n") + "\r\n").unwrap();
    let (ok, summary, stderr) = dvc_catalog(&env, &["--dry-run", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(summary, serde_json::json!({ "entries": 60, "published": 0 }));
    assert_eq!(common::topic_size(env.topic(Stream::Catalog)), 0, "a broken file and a dry run send nothing");

    let (ok, summary, stderr) = dvc_catalog(&env, &[file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(summary, serde_json::json!({ "entries": 60, "published": 60, "topic": env.topic(Stream::Catalog) }));
    assert_eq!(common::topic_size(env.topic(Stream::Catalog)), 60);

    // Ingested like any portal's entries: the newest version of each procedure.
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_on_panic = stop.clone().drop_guard();
    let ingest = tokio::spawn(dvc_ingest::run(env.ingest_config(&[]), stop.clone()));
    env.wait_for_count("SELECT count() FROM catalog_entries", 60, SETTLE).await;
    assert_catalogue_is_the_newest(&env, &entries).await;
    stop.cancel();
    ingest.await.unwrap().expect("ingest stops cleanly");
    std::fs::remove_dir_all(&dir).ok();
}

/// Deadlines in SQL the way the index computes them, against the dates of
/// the Government's notices: Tết Bính Ngọ 2026 ran 14-22/2; National Day
/// 2023 was Friday 1/9 and Saturday 2/9 with Monday 4/9 in compensation;
/// Monday 31/8/2026 was given off for Saturday 22/8. A calendar table that
/// drifted from the shipped file is put back by the next migrate.
#[tokio::test]
async fn the_working_day_calendar_counts_across_tet_a_swap_and_a_compensating_day_in_clickhouse() {
    let env = TestEnv::new("cal").await;
    let due = |from: &str, n: u32| {
        format!(
            "SELECT '{from}' AS sent, {n} AS n, toString(due) AS due FROM \
             (SELECT toUInt32(ordinal + {n}) AS target FROM working_calendar WHERE day = toDate('{from}')) \
             ANY LEFT JOIN (SELECT ordinal AS target, day AS due FROM working_calendar WHERE working = 1) USING target"
        )
    };
    let cases = [
        ("2026-02-13", 1, "2026-02-23"),
        ("2026-02-13", 5, "2026-02-27"),
        ("2026-02-15", 1, "2026-02-23"),
        ("2023-08-31", 1, "2023-09-05"),
        ("2023-08-31", 2, "2023-09-06"),
        ("2026-08-21", 1, "2026-08-22"),
        ("2026-08-21", 2, "2026-08-24"),
        ("2026-08-28", 1, "2026-09-03"),
    ];
    let union = cases.iter().map(|(from, n, _)| due(from, *n)).collect::<Vec<_>>().join(" UNION ALL ");
    let mut got: Vec<(String, u64, String)> = json_rows(&env, &format!("SELECT * FROM ({union}) FORMAT JSONEachRow"))
        .await
        .iter()
        .map(|r| {
            (r["sent"].as_str().unwrap().to_owned(), r["n"].as_u64().unwrap(), r["due"].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u64, String)> =
        cases.iter().map(|(from, n, due)| (from.to_string(), u64::from(*n), due.to_string())).collect();
    want.sort();
    assert_eq!(got, want);

    let between = |a: &str, b: &str| {
        format!(
            "SELECT toInt32((SELECT ordinal FROM working_calendar WHERE day = toDate('{b}')) \
             - (SELECT ordinal FROM working_calendar WHERE day = toDate('{a}'))) AS days FORMAT JSONEachRow"
        )
    };
    for (a, b, days) in
        [("2026-02-13", "2026-02-23", 1), ("2026-02-01", "2026-02-28", 15), ("2023-08-28", "2023-09-08", 7)]
    {
        let rows = json_rows(&env, &between(a, b)).await;
        assert_eq!(rows[0]["days"], days, "working days after {a} through {b}");
    }
    let names = json_rows(
        &env,
        "SELECT toString(day) AS date, kind, name FROM working_calendar \
         WHERE day IN (toDate('2026-02-17'), toDate('2023-09-04'), toDate('2026-08-22')) ORDER BY day FORMAT JSONEachRow",
    )
    .await;
    assert_eq!(
        names,
        [
            serde_json::json!({"date": "2023-09-04", "kind": "compensating", "name": "Quốc khánh 2/9"}),
            serde_json::json!({"date": "2026-02-17", "kind": "holiday", "name": "Tết Nguyên đán"}),
            serde_json::json!({"date": "2026-08-22", "kind": "makeup_workday", "name": "Quốc khánh 2/9"}),
        ]
    );

    let shipped = dvc_warehouse::Calendar::official().unwrap().days().len() as u64;
    assert_eq!(env.count("SELECT count() FROM working_calendar").await, shipped);
    env.client()
        .query("INSERT INTO working_calendar (day, working, ordinal, kind) VALUES ('2028-01-03', 1, 99999, 'workday')")
        .execute()
        .await
        .unwrap();
    dvc_warehouse::migrate(&env.clickhouse.server_client(), &env.clickhouse.database).await.unwrap();
    assert_eq!(env.count("SELECT count() FROM working_calendar").await, shipped);
    assert_eq!(env.count("SELECT count() FROM working_calendar WHERE ordinal = 99999").await, 0);
}

/// `dvc-migrate` on this test's database, with `args`; its status and stderr.
fn dvc_migrate(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(common::binary("dvc-migrate"))
        .arg(format!("--clickhouse-database={}", env.clickhouse.database))
        .args(args)
        .env_remove("DVC_AUTHORITIES")
        .output()
        .expect("dvc-migrate runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The directory in ClickHouse follows Resolutions 176/2025/QH15 and
/// 202/2025/QH15: 24 ministry codes and 63 province codes, each mapped to
/// the unit that carries it today, 17 ministries and 34 provinces; a
/// deployment's own file replaces the shipped one whole, a broken one is
/// refused with the line at fault and changes nothing, and a run without
/// the flag puts the shipped one back.
#[tokio::test]
async fn the_directory_maps_merged_units_to_their_successors_and_a_deployment_loads_its_own() {
    let env = TestEnv::new("dir").await;
    let successors = |sql: &str| {
        let env = &env;
        let sql = sql.to_owned();
        async move {
            json_rows(env, &format!("{sql} FORMAT JSONEachRow"))
                .await
                .into_iter()
                .map(|r| (r["code"].as_str().unwrap().to_owned(), r["now"].as_str().unwrap().to_owned()))
                .collect::<Vec<_>>()
        }
    };
    let merged = successors(
        "SELECT authority_code AS code, successor_name AS now FROM authority_successors \
         WHERE authority_code IN ('H02', 'H47', 'H49', 'H50', 'H31', 'G06', 'G09', 'G12', 'G19') ORDER BY code",
    )
    .await;
    let want = [
        ("G06", "Bộ Tài chính"),
        ("G09", "Bộ Nông nghiệp và Môi trường"),
        ("G12", "Bộ Nông nghiệp và Môi trường"),
        ("G19", "Bộ Dân tộc và Tôn giáo"),
        ("H02", "Tuyên Quang"),
        ("H31", "Huế"),
        ("H47", "TP. Hồ Chí Minh"),
        ("H49", "TP. Hồ Chí Minh"),
        ("H50", "TP. Hồ Chí Minh"),
    ];
    assert_eq!(merged, want.map(|(c, n)| (c.to_owned(), n.to_owned())));
    let kinds = successors(
        "SELECT kind AS code, toString(uniqExact(successor_code)) AS now FROM authority_successors \
         GROUP BY kind ORDER BY kind",
    )
    .await;
    let want = [("ministry", "17"), ("province", "34")];
    assert_eq!(kinds, want.map(|(c, n)| (c.to_owned(), n.to_owned())));
    assert_eq!(env.count("SELECT count() FROM authority_successors").await, 24 + 63);
    let renamed = json_rows(
        &env,
        "SELECT name, toString(valid_to) AS until FROM authorities WHERE authority_code = 'H31' \
         AND valid_to IS NOT NULL FORMAT JSONEachRow",
    )
    .await;
    assert_eq!(renamed, [serde_json::json!({"name": "Thừa Thiên Huế", "until": "2024-12-31"})]);

    let dir = std::env::temp_dir().join(format!("dvc-directory-{}", env.clickhouse.database));
    std::fs::create_dir_all(&dir).unwrap();
    let own = dir.join("own.csv");
    std::fs::write(
        &own,
        "# a deployment's codes\ncode,kind,name,valid_from,valid_to,successor\n\
         G01,ministry,\"Bộ A, B\",,2025-02-28,G02\nG02,ministry,Bộ C,,,\nH01,province,Tỉnh D,,,\n",
    )
    .unwrap();
    let (ok, stderr) = dvc_migrate(&env, &["--authorities", own.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let loaded = successors("SELECT name AS code, successor_name AS now FROM authority_successors ORDER BY name").await;
    let want = [("Bộ A, B", "Bộ C"), ("Bộ C", "Bộ C"), ("Tỉnh D", "Tỉnh D")];
    assert_eq!(loaded, want.map(|(c, n)| (c.to_owned(), n.to_owned())));

    let broken = dir.join("broken.csv");
    std::fs::write(&broken, "code,kind,name,valid_from,valid_to,successor\nG01,ministry,Bộ A,,2025-02-28,\n").unwrap();
    let (ok, stderr) = dvc_migrate(&env, &["--authorities", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("broken.csv") && stderr.contains("G01: ends 2025-02-28 without a successor"), "{stderr}");
    assert_eq!(env.count("SELECT count() FROM authorities").await, 3, "the loaded directory stays");

    let (ok, stderr) = dvc_migrate(&env, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(env.count("SELECT count() FROM authority_successors").await, 24 + 63);
    std::fs::remove_dir_all(&dir).ok();
}
