"""Every ClickHouse migration runs on current ClickHouse (chDB, 26.x) exactly as
the migrate step runs it: the statements come from `dvc-migrate --print`, so
this checks the same split the service applies on ClickHouse 18.16 (where the
end-to-end tests run them)."""

import json
import os
import pathlib
import subprocess

import chdb
from chdb import session

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DVC_BIN_DIR", ROOT / "target" / "release"))


def migrations():
    out = subprocess.run([BIN / "dvc-migrate", "--print"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_chdb_is_current_clickhouse():
    major = int(chdb.query("SELECT version()", "CSV").data().strip().strip('"').split(".")[0])
    assert major >= 24


def test_migrations_apply_in_order_on_current_clickhouse(tmp_path):
    all_migrations = migrations()
    assert [m["version"] for m in all_migrations] == sorted(m["version"] for m in all_migrations)
    s = session.Session(str(tmp_path / "chdb"))
    try:
        s.query("CREATE DATABASE IF NOT EXISTS dvc")
        for m in all_migrations:
            for stmt in m["statements"]:
                # Fully qualify by running inside the database, as the migrate step does.
                s.query(f"USE dvc")
                s.query(stmt)
        # Twice is harmless: every statement is IF NOT EXISTS.
        for m in all_migrations:
            for stmt in m["statements"]:
                s.query("USE dvc")
                s.query(stmt)
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
    finally:
        s.close()
