"""The rates API under generated requests (schemathesis, driven by the API's own
OpenAPI document): valid and invalid parameters alike, against the real
dvc-rates-api over the sample traffic. No request gets a 5xx, every 4xx
names the parameter it refuses, and every 200 matches the documented schema."""

import json
import subprocess

import pytest
import schemathesis
from schemathesis import GenerationMode

from sample_db import BIN, Stack

DOCUMENT = json.loads(subprocess.run([BIN / "dvc-rates-api", "--openapi"], check=True, capture_output=True,
                                     text=True).stdout)
PARAMETERS = {p["name"] for path in DOCUMENT["paths"].values() for p in path["get"].get("parameters", [])}

schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=60,
                                deterministic=True)


@pytest.fixture(scope="module")
def api():
    stack = Stack()
    try:
        with stack.rates_api() as base:
            yield base
    finally:
        stack.close()


@schema.parametrize()
def test_generated_requests_get_no_5xx_and_every_4xx_names_its_parameter(case, api):
    response = case.call(base_url=api)
    assert response.status_code < 500, (case.query, response.text)
    if response.status_code == 405:
        # schemathesis also tries methods the document does not list
        assert case.method != "GET", (case.path, response.status_code)
    elif 400 <= response.status_code < 500:
        documented = DOCUMENT["paths"][case.path]["get"]["responses"]
        assert str(response.status_code) in documented, (case.method, case.path, case.query, response.status_code)
        error = response.json()["error"]
        named = error.split(":", 1)[0]
        known = named in PARAMETERS
        unknown = error.startswith(f"{named}: unknown parameter") and named in (case.query or {})
        assert known or unknown, (case.query, error)
    if response.status_code == 200:
        case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])
