#!/usr/bin/env python3
"""The rates API's queries on ClickHouse 18.16 and on current ClickHouse, side
by side, over the same data: the raw events query-bench loaded into the local
stack (database bench_query, 10 M dossiers over 12 months) are copied into
current ClickHouse in-process (chDB 26.x, under .local/chdb-bench; kept for
the next run), whose materialized views rebuild the state tables as the
server's did; the server's touches and rate rollup (what dvc-rollup wrote)
are copied as they are. Then every query of `dvc-rates-api --print-queries`
runs on both for the 30-day range: the exact query (`sql`) and the rollup's
sums the API shares per batch (`rollup_sql`), and the pending delta once;
and each metric's national exact query for its last day alone.
Writes bench/results/query-modern.json.

Run `target/release/query-bench` (or `make bench`) first; `make bench-modern`
runs both."""

import argparse
import json
import pathlib
import sys
import time
import urllib.parse
import uuid

from chdb import session

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from sample_db import CLICKHOUSE, bind, migrations, post, rates_queries  # noqa: E402  (the tests' ClickHouse helpers)

RAW_TABLES = ("dossier_events", "payment_events", "feedback_events")
STATE_TABLES = ("dossier_state_v2", "payment_state_v2", "rating_state_v2")
# Written by dvc-rollup on the server: copied as they are (the views' touches
# made by the copy itself are replaced by the server's).
ROLLUP_TABLES = ("touches", "rate_rollup")


class Server:
    """The local stack's ClickHouse 18.16 over HTTP, in one session (as
    chDB's): the copy of the pending ids lasts from one query to the next."""

    def __init__(self, url, database):
        self.url, self.database = url, database
        self.session = uuid.uuid4().hex

    def query(self, sql):
        return post(self.url, self.database, sql, session_id=self.session)

    def export_url(self, table):
        """A URL answering with the whole table as TabSeparated."""
        sql = f"SELECT * FROM {self.database}.{table} FORMAT TabSeparated"
        return f"{self.url}/?{urllib.parse.urlencode({'query': sql})}"

    def structure(self, table):
        rows = self.query(
            f"SELECT name, type FROM system.columns WHERE database = '{self.database}' AND table = '{table}' "
            "FORMAT TabSeparated").splitlines()
        return ", ".join(" ".join(r.split("\t")) for r in rows)


class Modern:
    """Current ClickHouse in-process, in a directory kept between runs."""

    def __init__(self, path):
        self.s = session.Session(str(path))
        self.s.query("CREATE DATABASE IF NOT EXISTS bench")

    def query(self, sql):
        self.s.query("USE bench")
        return self.s.query(sql, "TabSeparated").data()


def timed(run, sql):
    started = time.monotonic()
    answer = run(sql)
    return (time.monotonic() - started) * 1e3, answer


def percentile(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, round(p / 100 * (len(sorted_ms) - 1)))]


def summary(ms):
    ms = sorted(ms)
    return {"requests": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "max_ms": ms[-1]}


def load(server, modern):
    """Copies the raw tables; returns the seconds it took, or None when the
    chDB copy already holds as many rows."""
    counts = {t: int(server.query(f"SELECT count() FROM {t}")) for t in RAW_TABLES}
    have = {t: int(modern.query(f"SELECT count() FROM {t}")) for t in RAW_TABLES}
    if have == counts:
        return None
    if any(have.values()):
        sys.exit(f"query_modern: the chDB copy holds {have}, the server {counts}: remove .local/chdb-bench first")
    started = time.monotonic()
    for table in RAW_TABLES:
        print(f"query_modern: copying {counts[table]} rows of {table}", file=sys.stderr)
        modern.query(f"INSERT INTO {table} SELECT * FROM url('{server.export_url(table)}', TabSeparated, "
                     f"'{server.structure(table)}')")
    for table in ROLLUP_TABLES:
        modern.query(f"TRUNCATE TABLE {table}")
        modern.query(f"INSERT INTO {table} SELECT * FROM url('{server.export_url(table)}', TabSeparated, "
                     f"'{server.structure(table)}')")
    for table in STATE_TABLES + ROLLUP_TABLES:
        modern.query(f"OPTIMIZE TABLE {table} FINAL")
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clickhouse-url", default=CLICKHOUSE)
    parser.add_argument("--bench-database", default="bench_query")
    parser.add_argument("--chdb-path", default=str(ROOT / ".local" / "chdb-bench"))
    parser.add_argument("--from", dest="first", default="2024-06-01", help="first day of the range")
    parser.add_argument("--to", dest="last", default="2024-06-30", help="last day of the range")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "query-modern.json"))
    args = parser.parse_args()

    server = Server(args.clickhouse_url, args.bench_database)
    if int(server.query("SELECT count() FROM system.tables WHERE database = '{}' AND name = 'rate_rollup'"
                        .format(args.bench_database))) == 0:
        sys.exit(f"query_modern: no {args.bench_database} on {args.clickhouse_url}; run target/release/query-bench first")
    modern = Modern(args.chdb_path)
    if not modern.query("SHOW TABLES").strip():  # a fresh copy; the backfills would redo a loaded one
        for stmt in migrations():
            modern.query(stmt)
    load_seconds = load(server, modern)
    printed = rates_queries()
    queries = printed["queries"]

    results = {}
    for name, run in (("clickhouse_18", server.query), ("clickhouse_current", modern.query)):
        version = run("SELECT version()").strip()
        # The pending ids, copied once into the session, as the rates API does.
        run("DROP TEMPORARY TABLE IF EXISTS pending_ids")
        for sql in printed["pending_ids"]:
            run(sql)
        run(bind(queries[0]["sql"], args.first, args.last))  # warm-up: files into the page cache
        by_grouping, by_metric, every, sums, answers = {}, {}, [], [], {}
        for q in queries:
            ms, answer = timed(run, bind(q["sql"], args.first, args.last))
            by_grouping.setdefault(q["group_by"], []).append(ms)
            by_metric.setdefault(q["metric"], []).append(ms)
            every.append(ms)
            answers[f"{q['metric']}/{q['group_by']}"] = answer
            ms, answer = timed(run, bind(q["rollup_sql"], args.first, args.last))
            sums.append(ms)
            # Rows in no set order: compared sorted.
            answers[f"{q['metric']}/{q['group_by']}/rollup"] = sorted(answer.splitlines())
        delta_ms, delta = timed(run, printed["pending_delta"])
        answers["pending_delta"] = sorted(delta.splitlines())
        one_day = [timed(run, bind(q["sql"], args.last, args.last))[0] for q in queries if q["group_by"] == "national"]
        results[name] = {
            "version": version,
            "range": {**summary(every), "by_grouping": {g: summary(ms) for g, ms in by_grouping.items()},
                      "by_metric": {m: summary(ms) for m, ms in by_metric.items()}},
            "rollup_sums_range": summary(sums),
            "pending_delta_ms": delta_ms,
            "one_day_national": summary(one_day),
            "answers": answers,
        }
        print(f"query_modern: {name} {version}: p50 {results[name]['range']['p50_ms']:.0f} ms", file=sys.stderr)

    same = results["clickhouse_18"].pop("answers") == results["clickhouse_current"].pop("answers")
    result = {
        "benchmark": "the rates API's SQL (dvc-rates-api --print-queries) on ClickHouse 18.16 and current ClickHouse",
        "database": args.bench_database,
        "dossiers_stored": int(server.query("SELECT uniqExact(dossier_id) FROM dossier_state_v2")),
        "from": args.first,
        "to": args.last,
        "load_seconds": load_seconds,
        "same_answers": same,
        "setup": "2 cores; 18.16 = the local stack's server over HTTP, current = chDB in-process; "
                 "each query once after one warm-up query; range = the exact queries, rollup_sums_range = "
                 "the rollup's sums, pending_delta_ms = the delta with nothing pending; one_day_national = "
                 "each metric's national exact query for the last day alone",
        **results,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not same:
        sys.exit("query_modern: the two servers answered differently")


if __name__ == "__main__":
    main()
