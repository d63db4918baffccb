"""The naive baseline of the ingest benchmark: what a user might write first.
A confluent-kafka consumer that collects raw message values and inserts them
in batches of 50,000 as JSONEachRow over ClickHouse's HTTP interface. No
validation, no hashing, no exactly-once bookkeeping: it only moves bytes, so
it is an upper bound for such a consumer. Prints one JSON line of results."""

import argparse
import json
import time
import urllib.parse
import urllib.request

from confluent_kafka import Consumer

TABLE = ("CREATE TABLE IF NOT EXISTS naive_events (event_id String, dossier_id String, occurred_at String, "
         "procedure_code String, agency_code String, authority_code String) ENGINE = MergeTree() ORDER BY tuple()")


def post(url, sql, body=b"", database=None):
    params = {"query": sql}
    if database:
        params["database"] = database
        params["input_format_skip_unknown_fields"] = "1"
    req = urllib.request.Request(f"{url}/?{urllib.parse.urlencode(params)}", data=body, method="POST")
    with urllib.request.urlopen(req) as r:
        r.read()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--group", required=True)
    p.add_argument("--clickhouse-url", default="http://127.0.0.1:8123")
    p.add_argument("--database", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("topics", nargs="+")
    a = p.parse_args()
    post(a.clickhouse_url, f"CREATE DATABASE IF NOT EXISTS {a.database}")
    post(a.clickhouse_url, TABLE.replace("naive_events", f"{a.database}.naive_events"))

    start, cpu0 = time.monotonic(), time.process_time()
    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group, "auto.offset.reset": "earliest"})
    consumer.subscribe(a.topics)
    batch, done = [], 0
    while done < a.expect:
        for m in consumer.consume(num_messages=10_000, timeout=1.0):
            if m.error():
                continue
            batch.append(m.value())
        if len(batch) >= a.batch or (batch and done + len(batch) >= a.expect):
            post(a.clickhouse_url, "INSERT INTO naive_events FORMAT JSONEachRow", b"\n".join(batch), a.database)
            consumer.commit(asynchronous=True)
            done += len(batch)
            batch = []
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu0
    consumer.close()
    post(a.clickhouse_url, f"DROP DATABASE IF EXISTS {a.database}")
    print(json.dumps({"events": done, "seconds": elapsed, "eps": done / elapsed, "cpu_us_per_event": cpu * 1e6 / done}))


if __name__ == "__main__":
    main()
