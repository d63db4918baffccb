"""Every ClickHouse migration runs on current ClickHouse (chDB, 26.x) exactly as
the migrate step runs it: the statements come from `dvc-migrate --print`, so
this checks the same split the service applies on ClickHouse 18.16 (where the
end-to-end tests run them)."""

import json
import os
import pathlib
import subprocess
import time

import chdb
from chdb import session

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DVC_BIN_DIR", ROOT / "target" / "release"))


def migrations():
    out = subprocess.run([BIN / "dvc-migrate", "--print"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def already_added(s, stmt):
    """The migrate step's rule for `ALTER TABLE t ADD COLUMN c ...` (ClickHouse
    18.16 has no IF NOT EXISTS there): skipped when the column exists."""
    words = stmt.split()
    if words[:2] != ["ALTER", "TABLE"] or words[3:5] != ["ADD", "COLUMN"]:
        return False
    found = s.query(f"SELECT count() FROM system.columns WHERE database = 'dvc' AND table = '{words[2]}'"
                    f" AND name = '{words[5]}'", "CSV").data().strip()
    return found != "0"


def migrate(s):
    """Applies every migration in database `dvc` of session `s` as the migrate step does."""
    s.query("CREATE DATABASE IF NOT EXISTS dvc")
    for m in migrations():
        for stmt in m["statements"]:
            # Fully qualify by running inside the database, as the migrate step does.
            s.query("USE dvc")
            if not already_added(s, stmt):
                s.query(stmt)


def rows(s, sql):
    return [json.loads(line) for line in s.query(sql, "JSONEachRow").data().splitlines()]


def test_chdb_is_current_clickhouse():
    major = int(chdb.query("SELECT version()", "CSV").data().strip().strip('"').split(".")[0])
    assert major >= 24


def test_migrations_apply_in_order_on_current_clickhouse(tmp_path):
    all_migrations = migrations()
    assert [m["version"] for m in all_migrations] == sorted(m["version"] for m in all_migrations)
    s = session.Session(str(tmp_path / "chdb"))
    try:
        # Twice is harmless: every statement is IF NOT EXISTS or an added
        # column the migrate step skips once it exists.
        migrate(s)
        migrate(s)
        tables = set(s.query("SELECT name FROM system.tables WHERE database = 'dvc'", "CSV").data().replace('"', "").split())
        assert {"dossier_events", "payment_events", "feedback_events"} <= tables
        # The raw tables take rows of the shape ingest writes.
        s.query(
            "INSERT INTO dvc.dossier_events (kafka_topic, kafka_partition, kafka_offset, ingested_at, event_id, dossier_id,"
            " status, occurred_at, procedure_code, agency_code, authority_code, service_level, channel, extra)"
            " VALUES ('t', 0, 1, now(), 'e1', 'd1', 2, '2024-07-01 01:00:00', '1.000001', 'a', 'H29', 'full_online', 'online', '')"
        )
        n = s.query("SELECT count() FROM dvc.dossier_events WHERE channel = 'online'", "CSV").data().strip()
        assert n == "1"
        # The materialized views fold it into the facts the rates read.
        facts = s.query("SELECT day, full_online, online, dossier FROM dvc.dossier_facts", "CSV").data().strip()
        assert facts == '"2024-07-01",1,1,1'
        for view in ("payment_facts", "rating_facts"):
            assert s.query(f"SELECT count() FROM dvc.{view}", "CSV").data().strip() == "0"

        def daily():
            return s.query("SELECT day, agency_code, dossiers, full_online, digitized FROM dvc.dossier_daily", "CSV").data().strip()

        # Nothing rolled up yet: the daily views count the touched dossier from its states.
        assert daily() == '"2024-07-01","a",1,1,0'
        # What dvc-rollup writes for it: its rollup share, its published row and
        # a progress past its touch. The views then read the rollup alone.
        measures = "dossier, full_online, online"
        s.query(f"INSERT INTO dvc.rate_rollup (kind, id, batch, day, authority_code, agency_code, procedure_code, published, {measures})"
                " VALUES ('rollup', '', 0, '2024-07-01', 'H29', 'a', '1.000001', 0, 1, 1, 1),"
                " ('dossier', 'd1', 1, '2024-07-01', 'H29', 'a', '1.000001', 1, 1, 1, 1)")
        s.query("INSERT INTO dvc.rate_rollup (kind, id, batch, day, published) SELECT 'progress',"
                " concat('{\"from\":0,\"to\":1,\"cursor\":null,\"pending\":', toString(toUInt32(now()) + 1), '}'),"
                " 1, toDate('1970-01-01'), 1")
        time.sleep(1.1)
        assert s.query("SELECT count() FROM dvc.rollup_pending", "CSV").data().strip() == "0"
        assert daily() == '"2024-07-01","a",1,1,0'
        # A later event (touched after that progress) moves the dossier to
        # another agency and marks it digitized: the views take its rollup row
        # out and count its states.
        time.sleep(1.1)
        s.query(
            "INSERT INTO dvc.dossier_events (kafka_topic, kafka_partition, kafka_offset, ingested_at, event_id, dossier_id,"
            " status, occurred_at, procedure_code, agency_code, authority_code, service_level, channel, digitized, extra)"
            " VALUES ('t', 0, 2, now(), 'e2', 'd1', 4, '2024-07-02 01:00:00', '1.000001', 'b', 'H29', 'full_online', 'online', 1, '')"
        )
        assert daily() == '"2024-07-01","b",1,1,1'
    finally:
        s.close()


def test_petitions_and_the_catalogue_fold_on_current_clickhouse(tmp_path):
    """006's petition state and current catalogue give on 26.x what the
    end-to-end test checks on 18.16: steps in any order, the same second
    ordered by the lifecycle, the newest catalogue entry (a tie: the later
    offset)."""
    s = session.Session(str(tmp_path / "chdb"))
    try:
        migrate(s)
        columns = ("kafka_topic, kafka_partition, kafka_offset, ingested_at, event_id, petition_id, occurred_at,"
                   " authority_code, agency_code, status, classification, dossier_id, likes, dislikes, extra")
        s.query(f"INSERT INTO dvc.petition_events ({columns}) VALUES"
                " ('t', 0, 3, now(), 'e3', 'p1', '2024-07-02 10:00:00', 'H29', 'a2', 'answered', NULL, NULL, 5, 0, ''),"
                " ('t', 0, 1, now(), 'e1', 'p1', '2024-07-01 10:00:00', 'H29', 'portal', 'submitted', NULL, 'd1', NULL, NULL, ''),"
                " ('t', 0, 4, now(), 'e4', 'p1', '2024-07-02 10:00:00', 'H29', 'a2', 'published', NULL, NULL, 0, 2, '')")
        s.query(f"INSERT INTO dvc.petition_events ({columns}) VALUES"
                " ('t', 0, 2, now(), 'e2', 'p1', '2024-07-01 12:00:00', 'H29', 'a2', 'received', 'regulation', NULL, NULL, NULL, ''),"
                " ('t', 0, 1, now(), 'e1', 'p1', '2024-07-01 10:00:00', 'H29', 'portal', 'submitted', NULL, 'd1', NULL, NULL, '')")
        got = rows(s, "SELECT petition_id, toString(status) AS status, agency_code, toString(classification) AS c,"
                      " dossier_id, toUInt32(likes) AS likes, toUInt32(dislikes) AS dislikes,"
                      " toString(received_at) AS received, toString(rejected_at) AS rejected FROM dvc.petitions")
        assert got == [{"petition_id": "p1", "status": "published", "agency_code": "a2", "c": "regulation",
                        "dossier_id": "d1", "likes": 0, "dislikes": 2, "received": "2024-07-01 12:00:00",
                        "rejected": None}]

        columns = "kafka_topic, kafka_partition, kafka_offset, ingested_at, authority_code, procedure_code, updated_at, name, extra"
        s.query(f"INSERT INTO dvc.catalog_entries ({columns}) VALUES"
                " ('t', 1, 5, now(), 'H29', '1.000001', '2024-06-02 00:00:00', 'new', ''),"
                " ('t', 1, 2, now(), 'H29', '1.000001', '2024-06-01 00:00:00', 'old', ''),"
                " ('t', 1, 7, now(), 'H29', '1.000002', '2024-06-01 00:00:00', 'tie, first', ''),"
                " ('t', 1, 8, now(), 'H29', '1.000002', '2024-06-01 00:00:00', 'tie, second', '')")
        got = rows(s, "SELECT procedure_code, name FROM dvc.procedure_catalog ORDER BY procedure_code")
        assert got == [{"procedure_code": "1.000001", "name": "new"}, {"procedure_code": "1.000002", "name": "tie, second"}]
    finally:
        s.close()


def test_the_index_populations_and_deadlines_on_current_clickhouse(tmp_path):
    """The index rollup's rows (010, one dvc-rollup batch) give on 26.x the
    populations and on-time verdicts of docs/INDEX766.md §3, worked out by hand for seven
    dossiers (times in UTC; Vietnam is UTC+7). The end-to-end test checks
    the same views on 18.16 against a recount of generated traffic."""
    s = session.Session(str(tmp_path / "chdb"))
    try:
        migrate(s)
        columns = ("kafka_topic, kafka_partition, kafka_offset, ingested_at, event_id, dossier_id, status, occurred_at,"
                   " procedure_code, agency_code, authority_code, service_level, channel, received_at, due_at, result_digitized, extra")
        events = [
            # A: received 5 Aug, due 10 Aug, resolved 9 Aug (with an electronic result): on time.
            ("A", 2, "2026-08-05 03:00:00", "2026-08-05 03:00:00", "2026-08-10 03:00:00", None),
            ("A", 9, "2026-08-09 03:00:00", None, None, 1),
            # B: received 20 July, due 15 August, never closed: on time in July, late from August on.
            ("B", 2, "2026-07-20 03:00:00", "2026-07-20 03:00:00", "2026-08-15 03:00:00", None),
            # C: one supplement request (3-8 Aug, 5 days with the applicant), returned 12 Aug, due 10 Aug: on time.
            ("C", 2, "2026-08-01 03:00:00", "2026-08-01 03:00:00", "2026-08-10 03:00:00", None),
            ("C", 5, "2026-08-03 03:00:00", None, None, None),
            ("C", 4, "2026-08-08 03:00:00", None, None, None),
            ("C", 10, "2026-08-12 03:00:00", None, None, None),
            # D: two supplement requests: late, though resolved before its due time.
            ("D", 2, "2026-08-01 03:00:00", "2026-08-01 03:00:00", "2026-08-30 03:00:00", None),
            ("D", 5, "2026-08-03 03:00:00", None, None, None),
            ("D", 4, "2026-08-04 03:00:00", None, None, None),
            ("D", 5, "2026-08-05 03:00:00", None, None, None),
            ("D", 9, "2026-08-06 03:00:00", None, None, None),
            # E: one request never answered (sent twice): processing ends at the request, on time.
            ("E", 2, "2026-08-01 03:00:00", "2026-08-01 03:00:00", "2026-08-30 03:00:00", None),
            ("E", 5, "2026-08-03 03:00:00", None, None, None),
            ("E", 5, "2026-08-03 03:00:00", None, None, None),
            # F: no due time; the catalogue gives 2 working days: received Monday 3 Aug, due at the end of
            # Wednesday 5 Aug, resolved Thursday: late.
            ("F", 2, "2026-08-03 03:00:00", "2026-08-03 03:00:00", None, None),
            ("F", 9, "2026-08-06 03:00:00", None, None, None),
            # G: no due time and no catalogue entry: nothing to be late for.
            ("G", 2, "2026-08-03 03:00:00", "2026-08-03 03:00:00", None, None),
        ]
        sql = lambda v: "NULL" if v is None else (str(v) if isinstance(v, int) else f"'{v}'")
        values = ", ".join(
            f"('t', 0, {i}, now(), 'e{i}', '{d}', {st}, '{at}', '{'1.000002' if d in 'FG' else '1.000001'}', '{d}', "
            f"'{'H02' if d == 'G' else 'H01'}', 'full_online', 'online', {sql(rec)}, {sql(due)}, {sql(res)}, '')"
            for i, (d, st, at, rec, due, res) in enumerate(events))
        s.query(f"INSERT INTO dvc.dossier_events ({columns}) VALUES {values}")
        s.query("INSERT INTO dvc.catalog_entries (kafka_topic, kafka_partition, kafka_offset, ingested_at, authority_code,"
                " procedure_code, updated_at, max_processing_days, extra)"
                " VALUES ('c', 0, 1, now(), 'H01', '1.000002', '2026-07-01 00:00:00', 2, '')")
        # The migrate step loads the calendar from its file; here the week that matters, by hand.
        week = [("2026-08-01", 0, 100, "weekend"), ("2026-08-02", 0, 100, "weekend")] + [
            (f"2026-08-0{d}", 1, 98 + d, "workday") for d in range(3, 8)]
        s.query("INSERT INTO dvc.working_calendar (day, working, ordinal, kind, holiday, name, provisional) VALUES "
                + ", ".join(f"('{d}', {w}, {o}, '{k}', '', '', 0)" for d, w, o, k in week))
        s.query("INSERT INTO dvc.feedback_events (kafka_topic, kafka_partition, kafka_offset, ingested_at, event_id, dossier_id,"
                " occurred_at, procedure_code, agency_code, authority_code, rating, extra)"
                " VALUES ('f', 0, 1, now(), 'r1', 'C', '2026-08-13 03:00:00', '1.000001', 'a', 'H01', 'unsatisfied', '')")

        # One dvc-rollup batch of every dossier, as the service writes its sums
        # (the first batch: nothing held yet, so the sums are the rows).
        s.query("INSERT INTO dvc.rollup_chunk SELECT DISTINCT dossier_id FROM dvc.dossier_events")
        measures = ("handled, received, received_online, received_with_fee, received_paid_online, on_time, ended,"
                    " processing_seconds, result_digitized, digitized, digitized_with_result, reused_digitized_data,"
                    " from_personal_store, population_data, satisfied, open, open_on_time, open_satisfied")
        s.query("USE dvc")
        s.query("INSERT INTO index766_rollup (kind, id, batch, period_kind, carry, period_start, late_after,"
                f" authority_code, agency_code, procedure_code, published, {measures})"
                " SELECT 'sum', '', 0, period_kind, carry, period_start, late_key, authority_code, agency_code,"
                f" procedure_code, 1, {measures} FROM index766_chunk_rows")

        # Each dossier has an agency of its own, so the counts by agency are its flags.
        def period(kind, start):
            return rows(s, "SELECT agency_code, handled, received, on_time, ended, satisfied,"
                           f" result_digitized FROM dvc.index766_counts WHERE period_kind = '{kind}'"
                           f" AND period_start = '{start}' AND handled > 0 ORDER BY agency_code")

        def flags(got):
            return {r["agency_code"]: (int(r["received"]), int(r["on_time"]), int(r["ended"])) for r in got}

        assert flags(period("month", "2026-07-01")) == {"B": (1, 1, 0)}
        august = period("month", "2026-08-01")
        assert flags(august) == {"A": (1, 1, 1), "B": (0, 0, 0), "C": (1, 1, 1), "D": (1, 0, 1), "E": (1, 1, 1),
                                 "F": (1, 0, 1), "G": (1, 1, 0)}
        # C was on time but rated unsatisfied; A carries the only electronic result.
        assert {r["agency_code"] for r in august if int(r["satisfied"])} == {"A", "E", "G"}
        assert [r["agency_code"] for r in august if int(r["result_digitized"])] == ["A"]
        # B is carried into every later month while open; the quarter holds everyone once.
        assert flags(period("quarter", "2026-07-01"))["B"] == (1, 0, 0)
        assert flags(period("month", "2026-09-01")) == {"B": (0, 0, 0), "G": (0, 1, 0)}
        counts = rows(s, "SELECT authority_code, sum(handled) AS h, sum(received) AS r, sum(on_time) AS t, sum(ended) AS e"
                         " FROM dvc.index766_counts WHERE period_kind = 'year' AND period_start = '2026-01-01'"
                         " GROUP BY authority_code ORDER BY authority_code")
        counts = [{k: (v if k == "authority_code" else int(v)) for k, v in r.items()} for r in counts]
        # The year: A-F, judged at its end (B overdue).
        assert counts == [{"authority_code": "H01", "h": 6, "r": 6, "t": 3, "e": 5},
                          {"authority_code": "H02", "h": 1, "r": 1, "t": 1, "e": 0}]

        # The reads of /v1/index766 (`dvc-rates-api --print-queries`) run on 26.x too.
        s.query("INSERT INTO dvc.petition_events (kafka_topic, kafka_partition, kafka_offset, ingested_at, event_id, petition_id,"
                " occurred_at, authority_code, agency_code, status, extra)"
                " VALUES ('p', 0, 1, now(), 'p1', 'P1', '2026-08-04 03:00:00', 'H01', 'a', 'submitted', '')")
        reads = json.loads(subprocess.run([BIN / "dvc-rates-api", "--print-queries"], check=True, capture_output=True,
                                          text=True).stdout)["index766"]

        def read(sql, *values):
            parts = sql.replace("?fields", "*").split("?")
            assert len(parts) == len(values) + 1, sql
            s.query("USE dvc")
            text = "".join(p + v for p, v in zip(parts, [*values, ""]))
            return [json.loads(line) for line in s.query(text, "JSONEachRow").data().splitlines()]

        august = ("'month'", "'2026-08-01'", "'2026-08-01'", str(1788195600))
        assert flags(read(reads["counts"], *august)) == flags(period("month", "2026-08-01")), "the API's read"
        assert read(reads["payments"], "'2026-08-01'", "'2026-09-01'") == []
        assert [r["procedure_code"] for r in read(reads["catalogue"])] == ["1.000002"]
        start, end = 1785517200, 1788195600  # 2026-08-01 and 2026-09-01, 00:00 in Vietnam
        assert [r["petition_id"] for r in read(reads["petitions"], str(start), str(end))] == ["P1"]
    finally:
        s.close()


def test_current_clickhouse_takes_ingest_settings_with_an_insert_quorum(tmp_path):
    """What `dvc-ingest --insert-quorum=auto` sends with every request
    (services/ingest/src/sink.rs: CLUSTER_SAFE and quorum_settings): current
    ClickHouse knows every one, where 18.16 refuses insert_quorum_parallel
    and ingest stops at start (tests/ingest_e2e.rs)."""
    settings = ("insert_distributed_sync = 1, insert_deduplicate = 0, load_balancing = 'in_order',"
                " insert_quorum = 'auto', insert_quorum_parallel = 1")
    s = session.Session(str(tmp_path / "chdb"))
    try:
        migrate(s)
        s.query(f"SELECT 1 SETTINGS {settings}")
        s.query(
            "INSERT INTO dvc.ingest_progress (kafka_topic, kafka_partition, kafka_offset, recorded_at)"
            f" SETTINGS {settings} VALUES ('t', 0, 41, now())"
        )
        assert rows(s, "SELECT kafka_topic, kafka_partition, kafka_offset FROM dvc.ingest_progress") == [
            {"kafka_topic": "t", "kafka_partition": 0, "kafka_offset": 41}
        ]
    finally:
        s.close()
