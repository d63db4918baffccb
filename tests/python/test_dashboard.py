"""The dashboard in a real browser: headless Chromium loads the page from
dvc-rates-api (through the read-only user) over the sample traffic, and every
figure it shows equals tests/fixtures/samples/expected-rates.json."""

import csv
import json
import os
from html.parser import HTMLParser

import pytest

from browser import render
from sample_db import ROOT, SAMPLES, Stack

FROM, TO = "2024-07-01", "2024-07-03"


class Figures(HTMLParser):
    """Every element with data-metric: (metric, group) -> (raw value, shown text)."""

    def __init__(self):
        super().__init__()
        self.figures, self.open, self.loaded, self.texts = {}, None, False, set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and a.get("data-loaded") == "true":
            self.loaded = True
        if "data-metric" in a:
            self.open = (a["data-metric"], a["data-group"], a["data-value"])

    def handle_data(self, data):
        self.texts.add(data.strip())
        if self.open:
            metric, group, raw = self.open
            self.figures[(metric, group)] = (None if raw == "" else float(raw), data.strip())
            self.open = None


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    stack = Stack()
    try:
        with stack.rates_api() as base:
            profile = tmp_path_factory.mktemp("chromium")
            screenshot = os.environ.get("DVC_SCREENSHOT", str(profile / "dashboard.png"))
            dom = render(f"{base}/?from={FROM}&to={TO}", profile, screenshot)
            parser = Figures()
            parser.feed(dom)
            yield parser, screenshot
    finally:
        stack.close()


def expected(metric, grouping):
    results = json.loads((SAMPLES / "expected-rates.json").read_text())["results"]
    return {r["group"]: r["value"] for r in results[f"{metric}/{grouping}"]}


METRICS = ["full_online_share", "online_share", "on_time_rate", "digitization_rate", "result_digitization_rate",
           "vneid_rate", "online_payment_rate", "online_payment_value_vnd", "online_payment_count", "satisfaction_rate"]


def test_page_loaded_every_figure(page):
    figures, screenshot = page
    assert figures.loaded, "the page's script finished without error"
    assert os.path.getsize(screenshot) > 10_000


@pytest.mark.parametrize("metric", METRICS)
def test_cards_show_national_ministry_and_province_figures(page, metric):
    figures, _ = page
    want = expected(metric, "national") | expected(metric, "authority_kind")
    for group in ("national", "ministry", "province"):
        value, text = figures.figures[(metric, group)]
        assert value == pytest.approx(want[group], abs=1e-9), (metric, group)
        shown = f"{100 * want[group]:.1f}%" if metric.endswith(("rate", "share")) else f"{want[group]:,}".replace(",", ".")
        assert text == shown, (metric, group)


@pytest.mark.parametrize("metric", METRICS)
def test_authority_table_matches(page, metric):
    figures, _ = page
    for group, value in expected(metric, "authority_code").items():
        assert figures.figures[(metric, group)][0] == pytest.approx(value, abs=1e-9), (metric, group)


def test_figures_are_formatted_for_people(page):
    figures, _ = page
    assert figures.figures[("full_online_share", "national")][1] == "20.4%"
    assert figures.figures[("online_payment_value_vnd", "national")][1] == "21.100.000"


def directory_names(day):
    """Each code's name on `day`, read from the shipped directory of authorities."""
    lines = (ROOT / "schemas" / "reference" / "authorities.csv").read_text(encoding="utf-8").splitlines()
    rows = csv.DictReader(l for l in lines if not l.startswith("#"))
    return {r["code"]: r["name"] for r in rows
            if (r["valid_from"] or "0000") <= day <= (r["valid_to"] or "9999")}


def test_the_authority_table_names_each_unit_as_the_directory_does(page):
    figures, _ = page
    names = directory_names(TO)
    for code in expected("full_online_share", "authority_code"):
        assert f"{names[code]} ({code})" in figures.texts, code
