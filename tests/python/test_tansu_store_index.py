"""deploy/local/tansu-store-index.py on a real tansu 0.6 SQLite store: the
broker creates its header table without an index (so each record served
scans every header), the script adds one that SQLite uses for a record's
headers, running it again changes nothing, and a file that is no tansu
store gets a clear error."""

import pathlib
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "tansu-store-index.py"
# A record's headers, as the broker looks them up for every record it serves.
HEADERS_OF_A_RECORD = "SELECT k, v FROM header WHERE topition = 1 AND offset_id = 5"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def store(tmp_path):
    """A tansu broker on a free port, its store in tmp_path, until the test ends."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        ["tansu", "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "sqlite://tansu.db"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "tansu did not listen"
                time.sleep(0.1)
        yield tmp_path / "tansu.db"
    finally:
        broker.kill()
        broker.wait()


def plan(db):
    with sqlite3.connect(db) as c:
        return " ".join(row[-1] for row in c.execute("EXPLAIN QUERY PLAN " + HEADERS_OF_A_RECORD))


def index_script(db):
    return subprocess.run([sys.executable, SCRIPT, db], capture_output=True, text=True)


def test_the_index_serves_a_records_headers_and_is_idempotent(store):
    assert plan(store) == "SCAN header", "tansu's own schema changed: is the index still needed?"
    for _ in range(2):
        done = index_script(store)
        assert done.returncode == 0, done.stderr
    assert plan(store) == "SEARCH header USING INDEX header_record (topition=? AND offset_id=?)"
    with sqlite3.connect(store) as c:
        indexes = c.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'header'").fetchall()
    assert indexes == [("header_record",)]


def test_a_file_that_is_no_tansu_store_is_refused(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    done = index_script(other)
    assert done.returncode != 0
    assert "no header table" in done.stderr
