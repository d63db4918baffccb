"""The analyst views and the ten example queries of schemas/clickhouse/examples
run on current ClickHouse (chDB) and on the local stack's ClickHouse 18.16,
over the sample portal traffic; example 05 gives the expected rates, and so
does every query the rates API runs (`dvc-rates-api --print-queries`)."""

import json

import pytest

from sample_db import ROOT, SAMPLES, Modern, Stack, bind, rates_queries

EXAMPLES = sorted((ROOT / "schemas" / "clickhouse" / "examples").glob("*.sql"))


@pytest.fixture(scope="module", params=["clickhouse-26 (chDB)", "clickhouse-18.16 (stack)"])
def server(request, tmp_path_factory):
    if request.param.startswith("clickhouse-26"):
        yield Modern(tmp_path_factory.mktemp("chdb"))
    else:
        stack = Stack()
        yield stack
        stack.close()


def test_there_are_ten_examples():
    assert len(EXAMPLES) == 10


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(server, example):
    result = json.loads(server.query(example.read_text(encoding="utf-8")))
    assert result["meta"], "the query names its columns"


def test_ministries_vs_provinces_matches_the_expected_rates(server):
    expected = json.loads((SAMPLES / "expected-rates.json").read_text())["results"]
    rows = json.loads(server.query((EXAMPLES[4]).read_text(encoding="utf-8")))["data"]
    assert [r[0] for r in rows] == ["ministry", "province"]
    columns = ["full_online_share", "online_share", "on_time_rate", "digitization_rate", "result_digitization_rate",
               "vneid_rate", "online_payment_rate"]
    for i, kind in enumerate(["ministry", "province"]):
        want = {r["group"]: r for r in expected["full_online_share/authority_kind"]}[kind]
        assert int(rows[i][1]) == want["denominator"]
        for j, metric in enumerate(columns):
            want = {r["group"]: r for r in expected[f"{metric}/authority_kind"]}[kind]
            assert float(rows[i][2 + j]) == pytest.approx(round(want["value"], 4), abs=1e-9), (kind, metric)


def test_the_rates_api_queries_give_the_expected_rates(server):
    expected = json.loads((SAMPLES / "expected-rates.json").read_text())
    queries = rates_queries()
    assert sorted(f"{q['metric']}/{q['group_by']}" for q in queries) == sorted(expected["results"])
    for q in queries:
        sql = bind(q["sql"], expected["from"], expected["to"])
        got = [(g, int(n), int(d)) for g, n, d in json.loads(server.query(sql))["data"]]
        want = [(r["group"], r["value"], 0) if r["numerator"] is None else (r["group"], r["numerator"], r["denominator"])
                for r in expected["results"][f"{q['metric']}/{q['group_by']}"]]
        assert got == want, q["metric"] + "/" + q["group_by"]
