"""The analyst views and the thirteen example queries of schemas/clickhouse/examples
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


def test_there_are_thirteen_examples():
    assert len(EXAMPLES) == 13


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
    printed = rates_queries()
    queries = printed["queries"]
    assert sorted(f"{q['metric']}/{q['group_by']}" for q in queries) == sorted(expected["results"])
    copy_pending_ids(server, printed)
    for q in queries:
        sql = bind(q["sql"], expected["from"], expected["to"])
        got = [(g, int(n), int(d)) for g, n, d in json.loads(server.query(sql))["data"]]
        assert got == expected_figures(expected, f"{q['metric']}/{q['group_by']}"), q["metric"] + "/" + q["group_by"]


def copy_pending_ids(server, printed):
    """`printed["pending_ids"]` run in the server's session, a copy made
    afresh: every id stored, as nothing is rolled up here."""
    server.execute("DROP TEMPORARY TABLE IF EXISTS pending_ids")
    for sql in printed["pending_ids"]:
        server.execute(sql)
    ids = {id for [id] in json.loads(server.query("SELECT id FROM pending_ids"))["data"]}
    dossiers = {json.loads(line)["dossier_id"] for line in (SAMPLES / "dossier-events.jsonl").open() if line.strip()}
    assert dossiers <= ids, "every dossier of the sample is pending"


def expected_figures(expected, key):
    """(group, numerator, denominator) of expected-rates.json (a total's value as numerator, 0 as denominator)."""
    return [(r["group"], r["value"], 0) if r["numerator"] is None else (r["group"], r["numerator"], r["denominator"])
            for r in expected["results"][key]]


def group_key(group_by, authority_code, agency_code, procedure_code):
    """CONTRACT.md §6's groups, from a row's grouping columns."""
    return {
        "national": "national",
        "authority_kind": "ministry" if authority_code.startswith("G") else "province",
        "authority_code": authority_code,
        "agency_code": agency_code,
        "procedure_code": procedure_code,
    }[group_by]


def test_the_rollup_sums_plus_the_pending_delta_give_the_expected_rates(server):
    """How the API answers: the rollup's sums of the range plus the pending
    ids' delta rows in it, read at the same batch (nothing writes here)."""
    expected = json.loads((SAMPLES / "expected-rates.json").read_text())
    printed = rates_queries()
    index = {name: i for i, name in enumerate(printed["measures"])}
    copy_pending_ids(server, printed)
    delta = json.loads(server.query(printed["pending_delta"]))["data"]
    assert delta, "nothing is rolled up here: every dossier is pending"
    for q in printed["queries"]:
        rolled_up = json.loads(server.query(bind(q["rollup_sql"], expected["from"], expected["to"])))["data"]
        batches = {(int(r[5]), r[6]) for r in rolled_up} | {(int(r[4]), r[5]) for r in delta}
        assert len(batches) == 1, f"both reads saw the same batch: {batches}"
        sums = {}
        for _, grp, n, d, c, _, _ in rolled_up:
            sums[grp] = [a + int(b) for a, b in zip(sums.get(grp, [0, 0, 0]), (n, d, c))]
        for day, authority, agency, procedure, _, _, measures in delta:
            if expected["from"] <= day <= expected["to"]:
                den = int(measures[index[q["denominator"]]]) if q["denominator"] else 0
                add = (int(measures[index[q["numerator"]]]), den, int(measures[index[q["count"]]]))
                grp = group_key(q["group_by"], authority, agency, procedure)
                sums[grp] = [a + b for a, b in zip(sums.get(grp, [0, 0, 0]), add)]
        got = sorted((grp, n, d) for grp, (n, d, c) in sums.items() if c > 0)
        key = f"{q['metric']}/{q['group_by']}"
        assert got == expected_figures(expected, key), key


def test_the_pending_ids_rows_id_by_id_sum_to_the_pending_delta(server):
    """How the API keeps the pending ids' share: each id's rows now less
    what the rollup counts for it, summed, is `pending_delta`'s share; the
    ids touched since the start of time are every id of the copy."""
    printed = rates_queries()
    copy_pending_ids(server, printed)
    touched = json.loads(server.query(printed["pending_touched"].replace("?", "0")))["data"]
    copied = {id for [id] in json.loads(server.query("SELECT DISTINCT id FROM pending_ids"))["data"]}
    assert {t[0] for t in touched} == copied
    assert all(int(first) <= int(last) and int(n) >= 1 for _, first, last, n in touched)
    share = {}
    now = json.loads(server.query(printed["pending_now"]))["data"]
    counted = json.loads(server.query(printed["pending_counted"]))["data"]
    assert {r[0] for r in now} <= copied and now, "the pending rows are read id by id"
    rows = [(r[1:5], r[5], 1) for r in now] + [(r[1:5], r[7], -1) for r in counted if r[0]]
    for place, measures, sign in rows:
        sums = share.setdefault(tuple(place), [0] * len(printed["measures"]))
        share[tuple(place)] = [s + sign * int(m) for s, m in zip(sums, measures)]
    delta = json.loads(server.query(printed["pending_delta"]))["data"]
    want = {tuple(r[0:4]): [int(m) for m in r[6]] for r in delta if r[0] and any(int(m) for m in r[6])}
    assert {k: v for k, v in share.items() if any(v)} == want
    batches = {(int(r[5]), r[6]) for r in counted if not r[0]}
    assert batches == {(int(r[4]), r[5]) for r in delta if not r[0]}, "the counted rows see the delta's batch"
