"""The JSON Schemas in schemas/events accept exactly the decoder cases the Rust
decoder accepts (services/events/tests/decoder_cases.rs runs the same file)."""

import copy
import json
import pathlib

import jsonschema
import pytest
import referencing

HERE = pathlib.Path(__file__).parent
EVENTS = HERE.parent / "events"
CASES = json.loads((HERE / "decoder-cases.json").read_text(encoding="utf-8"))
# Each stream's schema, by the last part of its $id.
SCHEMAS = {
    "dossier": "dossier-event",
    "payment": "payment-event",
    "feedback": "feedback-event",
    "petition": "petition-event",
    "catalog": "catalog-entry",
}


def validators():
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in EVENTS.glob("*.schema.json")]
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas
    )
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    # Without rfc3339-validator, jsonschema silently skips date-time checks.
    assert "date-time" in checker.checkers
    by_id = {s["$id"]: s for s in schemas}
    out = {}
    for stream, name in SCHEMAS.items():
        schema = by_id[f"urn:dvc-pulse:schema:v1:{name}"]
        jsonschema.Draft202012Validator.check_schema(schema)
        out[stream] = jsonschema.Draft202012Validator(schema, registry=registry, format_checker=checker)
    return out


VALIDATORS = validators()


def apply(case):
    event = copy.deepcopy(CASES["base"][case["stream"]])
    if case.get("unset"):
        event.pop(case["field"], None)
    else:
        event[case["field"]] = case["value"]
    return event


@pytest.mark.parametrize("stream", SCHEMAS)
def test_base_events_are_valid(stream):
    VALIDATORS[stream].validate(CASES["base"][stream])


@pytest.mark.parametrize(
    "case", CASES["cases"], ids=lambda c: f"{c['stream']}.{c['field']}={'<unset>' if c.get('unset') else c['value']!r}"
)
def test_schema_agrees_with_decoder_cases(case):
    errors = list(VALIDATORS[case["stream"]].iter_errors(apply(case)))
    assert (not errors) == case["valid"], [e.message for e in errors]


def test_cases_cover_every_field_both_ways():
    """Every field of every schema has at least one passing and one failing case."""
    for stream, validator in VALIDATORS.items():
        for field in validator.schema["properties"]:
            outcomes = {c["valid"] for c in CASES["cases"] if c["stream"] == stream and c["field"] == field}
            assert outcomes == {True, False}, (stream, field, outcomes)
