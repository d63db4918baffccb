"""Sample portal traffic loaded into ClickHouse for tests that need known data:
on current ClickHouse in-process (chDB) or on the local stack's server, each
in a database of its own."""

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone

from chdb import session

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DVC_BIN_DIR", ROOT / "target" / "release"))
SAMPLES = ROOT / "tests" / "fixtures" / "samples"
CLICKHOUSE = os.environ.get("DVC_CLICKHOUSE_URL", "http://127.0.0.1:8123")


def utc_seconds(value):
    """RFC 3339 with offset -> 'YYYY-MM-DD hh:mm:ss' UTC, which both servers parse."""
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] in "Tt":
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return value


def sample_rows():
    for name, table in [("dossier", "dossier_events"), ("payment", "payment_events"), ("feedback", "feedback_events")]:
        lines = (SAMPLES / f"{name}-events.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [{k: utc_seconds(v) for k, v in json.loads(l).items() if k != "applicant_id"} for l in lines if l.strip()]
        yield table, "\n".join(json.dumps(r) for r in rows)


def migrations():
    out = subprocess.run([BIN / "dvc-migrate", "--print"], check=True, capture_output=True, text=True).stdout
    return [stmt for m in json.loads(out) for stmt in m["statements"]]


def rates_queries():
    """The SQL `/v1/rates` runs, from `dvc-rates-api --print-queries`: {measures, pending_ids,
    pending_delta, queries: [{metric, group_by, numerator, denominator, count, sql, rollup_sql}]}."""
    out = subprocess.run([BIN / "dvc-rates-api", "--print-queries"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bind(sql, first, last, ids=()):
    """A rates query with its `?` filled in as the rates API binds them: the
    pending ids (`pending_ids`' answer) right after `CAST(`, elsewhere pairs of
    the first and last day."""
    parts = sql.split("?")
    ids_literal = "[" + ",".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in ids) + "]"
    days = [p for p in parts[:-1] if not p.endswith("CAST(")]
    assert len(days) % 2 == 0, sql
    day = iter([f"'{first}'", f"'{last}'"] * (len(days) // 2))
    return parts[0] + "".join((ids_literal if before.endswith("CAST(") else next(day)) + part
                              for before, part in zip(parts, parts[1:]))


def post(url, database, sql, body=None, **settings):
    """One statement to a ClickHouse server over HTTP. Always POST: ClickHouse
    runs GET requests read-only. The statement goes in the request's body
    (a long one, such as a query over many pending ids, fits no URL) unless
    `body` holds the rows it inserts."""
    params = {"database": database, **settings}
    if body is None:
        body = sql.encode()
    else:
        params["query"] = sql
    with urllib.request.urlopen(urllib.request.Request(f"{url}/?{urllib.parse.urlencode(params)}", data=body)) as r:
        return r.read().decode()


class Modern:
    def __init__(self, path):
        self.s = session.Session(str(path))
        self.s.query("CREATE DATABASE IF NOT EXISTS a")
        for stmt in migrations():
            self.query(stmt)
        for table, rows in sample_rows():
            self.query(f"INSERT INTO {table} SETTINGS input_format_skip_unknown_fields = 1 FORMAT JSONEachRow\n{rows}")

    def query(self, sql):
        self.s.query("USE a")
        return self.s.query(sql, "JSONCompact").data()


class Stack:
    """The local stack's ClickHouse (18.16), in a database of this test's own."""

    def __init__(self):
        self.db = f"analyst_{uuid.uuid4().hex[:8]}"
        subprocess.run([BIN / "dvc-migrate", f"--clickhouse-url={CLICKHOUSE}", f"--clickhouse-database={self.db}"],
                       check=True, capture_output=True)
        for table, rows in sample_rows():
            self.post(f"INSERT INTO {table} FORMAT JSONEachRow", rows.encode(), input_format_skip_unknown_fields=1)

    def post(self, sql, body=None, **settings):
        return post(CLICKHOUSE, self.db, sql, body, **settings)

    def roll_up(self):
        """dvc-rollup's batches until every touch so far is rolled up."""
        subprocess.run([BIN / "dvc-rollup", "--catch-up", f"--clickhouse-url={CLICKHOUSE}",
                        f"--clickhouse-database={self.db}"], check=True, capture_output=True)

    def query(self, sql):
        return self.post(sql + "\nFORMAT JSONCompact")

    def close(self):
        self.post(f"DROP DATABASE IF EXISTS {self.db}")

    @contextlib.contextmanager
    def rates_api(self):
        """dvc-rates-api over this database, through the read-only user as
        deployed, on a free port: its base URL once /healthz answers."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        process = subprocess.Popen([BIN / "dvc-rates-api", f"--listen=127.0.0.1:{port}",
                                    f"--clickhouse-url={CLICKHOUSE}", f"--clickhouse-database={self.db}",
                                    "--clickhouse-user=dvc_reader"], stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/healthz")
                    break
                except OSError:
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(10)
