"""The rates API's OpenAPI document is a valid OpenAPI 3.1 description and
documents the contract's parameters (CONTRACT.md §6)."""

import json
import os
import pathlib
import subprocess

from openapi_spec_validator import validate

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DVC_BIN_DIR", ROOT / "target" / "release"))


def document():
    return json.loads(subprocess.run([BIN / "dvc-rates-api", "--openapi"], check=True, capture_output=True, text=True).stdout)


def test_document_is_valid_openapi():
    doc = document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_document_names_the_contract_parameters_and_metrics():
    doc = document()
    params = {p["name"]: p for p in doc["paths"]["/v1/rates"]["get"]["parameters"]}
    assert set(params) == {"metric", "from", "to", "group_by"}
    assert params["metric"]["required"] is True
    assert set(params["group_by"]["schema"]["enum"]) == {"national", "authority_kind", "authority_code", "agency_code", "procedure_code"}
    assert set(params["metric"]["schema"]["enum"]) == {
        "full_online_share", "online_share", "on_time_rate", "digitization_rate", "result_digitization_rate",
        "vneid_rate", "online_payment_rate", "online_payment_value_vnd", "online_payment_count", "satisfaction_rate",
    }
    assert set(doc["paths"]) == {"/v1/rates", "/v1/series", "/v1/metrics", "/v1/index766", "/v1/index766/procedures",
                                 "/healthz", "/openapi.json"}
    assert doc["paths"]["/v1/series"]["get"]["parameters"] == doc["paths"]["/v1/rates"]["get"]["parameters"]
    assert "Retry-After" in doc["paths"]["/v1/rates"]["get"]["responses"]["503"]["headers"]
