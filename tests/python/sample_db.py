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
import urllib.error
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


def bind(sql, first, last):
    """A rates query with its `?` filled in: pairs of the first and last day."""
    parts = sql.split("?")
    assert len(parts) % 2 == 1, sql
    days = [f"'{first}'", f"'{last}'"] * (len(parts) // 2)
    return "".join(p + d for p, d in zip(parts, days + [""]))


def post(url, database, sql, body=None, **settings):
    """One statement to a ClickHouse server over HTTP. Always POST: ClickHouse
    runs GET requests read-only. The statement goes in the request's body
    unless `body` holds the rows it inserts. In a session (`session_id`), a
    statement that finds the session still held by the one before it (code
    373: ClickHouse releases a session after its answer has gone out) is
    sent again."""
    params = {"database": database, **settings}
    if body is None:
        body = sql.encode()
    else:
        params["query"] = sql
    request = urllib.request.Request(f"{url}/?{urllib.parse.urlencode(params)}", data=body)
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            if "Code: 373" not in text or attempt == 19:
                raise RuntimeError(f"{sql[:200]}: {text}") from e
        time.sleep(0.005)


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

    def execute(self, sql):
        self.query(sql)


class Stack:
    """The local stack's ClickHouse (18.16), in a database of this test's own,
    every statement in one session (as chDB's), so a temporary table lasts
    from one statement to the next."""

    def __init__(self):
        self.db = f"analyst_{uuid.uuid4().hex[:8]}"
        self.session = uuid.uuid4().hex
        subprocess.run([BIN / "dvc-migrate", f"--clickhouse-url={CLICKHOUSE}", f"--clickhouse-database={self.db}"],
                       check=True, capture_output=True)
        for table, rows in sample_rows():
            self.post(f"INSERT INTO {table} FORMAT JSONEachRow", rows.encode(), input_format_skip_unknown_fields=1)

    def post(self, sql, body=None, **settings):
        return post(CLICKHOUSE, self.db, sql, body, session_id=self.session, **settings)

    def roll_up(self):
        """dvc-rollup's batches until every touch so far is rolled up."""
        subprocess.run([BIN / "dvc-rollup", "--catch-up", f"--clickhouse-url={CLICKHOUSE}",
                        f"--clickhouse-database={self.db}"], check=True, capture_output=True)

    def query(self, sql):
        return self.post(sql + "\nFORMAT JSONCompact")

    def execute(self, sql):
        self.post(sql)

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
