"""The Decision 766 page in a real browser: headless Chromium loads /index766
from dvc-rates-api (read-only user) over the sample traffic, and the ranking
of ministries and provinces and one unit's page (groups, indicators,
agencies, months, procedures) show exactly what /v1/index766 answers; those
answers are checked against an independent recount in tests/index766.rs."""

import json
import os
import urllib.request
from html.parser import HTMLParser

import pytest

from browser import render
from sample_db import Stack

PERIOD = "2024-07"


class Tagged(HTMLParser):
    """Every element's data-* attributes and the text it holds, in page order."""

    def __init__(self):
        super().__init__()
        self.elements, self.stack, self.loaded = [], [], False

    def handle_starttag(self, tag, attrs):
        a = {k[5:]: v for k, v in attrs if k.startswith("data-")}
        if tag == "body" and a.get("loaded") == "true":
            self.loaded = True
        if tag in ("tr", "td", "h2"):
            self.elements.append((tag, a))

    def rows(self, key):
        """For each <tr data-key>, the data-* of its cells: {key value: [cell attrs]}."""
        out, current = {}, None
        for tag, a in self.elements:
            if tag == "tr":
                current = a.get(key)
                if current is not None:
                    out.setdefault(current, [])
            elif tag == "td" and current is not None:
                out[current].append(a)
        return out


def get(url):
    with urllib.request.urlopen(url) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    stack = Stack()
    try:
        stack.roll_up()
        with stack.rates_api() as base:
            profile = tmp_path_factory.mktemp("chromium")
            ranking = get(f"{base}/v1/index766?period={PERIOD}")
            unit = next(r for r in ranking["rows"] if r["kind"] == "province" and r["indicators"][4]["denominator"] > 0)
            parsed = {}
            for name, query in [("ranking", f"period={PERIOD}"), ("unit", f"period={PERIOD}&unit={unit['unit']}")]:
                screenshot = os.environ.get(f"DVC_SCREENSHOT_{name.upper()}", str(profile / f"{name}.png"))
                parser = Tagged()
                parser.feed(render(f"{base}/index766?{query}", profile, screenshot, height=2600))
                assert os.path.getsize(screenshot) > 10_000
                parsed[name] = parser
            agencies = get(f"{base}/v1/index766?period={PERIOD}&level=agency&authority_code={unit['unit']}")
            procedures = get(f"{base}/v1/index766/procedures?period={PERIOD}&unit={unit['unit']}")
            yield parsed, ranking, unit, agencies, procedures
    finally:
        stack.close()


def test_both_pages_load(pages):
    parsed, *_ = pages
    assert parsed["ranking"].loaded and parsed["unit"].loaded, "the page's script finished without error"


def test_the_ranking_shows_every_unit_with_its_rank_total_and_groups(pages):
    parsed, ranking, *_ = pages
    shown = parsed["ranking"].rows("unit")
    assert set(shown) == {r["unit"] for r in ranking["rows"]}
    for r in ranking["rows"]:
        cells = shown[r["unit"]]
        assert int(cells[0]["rank"]) == r["rank"], r["unit"]
        assert float(cells[2]["total"]) == r["total"], r["unit"]
        groups = {c["group"]: float(c["score"]) for c in cells if "group" in c}
        assert groups == {g["group"]: g["score"] for g in r["groups"]}, r["unit"]


def test_a_units_page_shows_its_indicators_agencies_and_procedures(pages):
    parsed, _, unit, agencies, procedures = pages
    page = parsed["unit"]
    indicators = page.rows("code")
    assert set(indicators) == {i["code"] for i in unit["indicators"]}
    for i in unit["indicators"]:
        values = {k: v for c in indicators[i["code"]] for k, v in c.items()}
        assert int(values["numerator"]) == i["numerator"] and int(values["denominator"]) == i["denominator"], i["code"]
        assert float(values["score"]) == i["score"] and float(values["losing"]) == i["losing"], i["code"]
        assert int(values["to-full"]) == i["to_full"], i["code"]
    shown = page.rows("unit")
    assert {a["unit"]: a["total"] for a in agencies["rows"]} == {u: float(c[2]["total"]) for u, c in shown.items()}
    rows = page.rows("procedure")
    assert list(rows) == [p["procedure_code"] for p in procedures["rows"]], "worst first, as the API orders them"
    for p in procedures["rows"]:
        cells = {k: v for c in rows[p["procedure_code"]] for k, v in c.items()}
        assert (int(cells["handled"]), int(cells["not-on-time"])) == (p["handled"], p["not_on_time"])
    months = page.rows("month")
    assert list(months) == [f"2024-{m:02}" for m in range(1, 13)]
    assert float(months[PERIOD][1]["total"]) == unit["total"], "the period's month shows its total"
