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
