//! The decoder against `schemas/tests/decoder-cases.json`, the case file the
//! JSON Schemas are checked against too (schemas/tests/test_event_schemas.py):
//! both must accept exactly the valid cases, and every rejection must name the
//! field the case broke.

use dvc_events::{DecodeError, Event, Stream};
use serde_json::Value;

fn cases() -> Value {
    let text = include_str!("../../../schemas/tests/decoder-cases.json");
    serde_json::from_str(text).expect("decoder-cases.json is JSON")
}

fn stream(name: &str) -> Stream {
    Stream::ALL.into_iter().find(|s| s.name() == name).unwrap_or_else(|| panic!("unknown stream {name}"))
}

#[test]
fn base_events_decode_with_every_field() {
    let cases = cases();
    for s in Stream::ALL {
        let base = &cases["base"][s.name()];
        let bytes = serde_json::to_vec(base).unwrap();
        let event = Event::decode(s, &bytes).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
        // Re-encoding gives back the same fields and values.
        let reencoded = serde_json::to_value(&event).unwrap();
        let (a, b) = (base.as_object().unwrap(), reencoded.as_object().unwrap());
        assert_eq!(a.keys().collect::<std::collections::BTreeSet<_>>(), b.keys().collect());
        for (k, v) in a {
            if k.ends_with("_at") {
                let parse = |v: &Value| {
                    time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
                        .unwrap()
                };
                assert_eq!(parse(v), parse(&b[k]), "{k}");
            } else if v.is_number() {
                // A number of days may come back as 15.0 for 15: the same number.
                assert_eq!(v.as_f64(), b[k].as_f64(), "{k}");
            } else {
                assert_eq!(v, &b[k], "{k}");
            }
        }
    }
}

#[test]
fn decoder_agrees_with_case_file() {
    let cases = cases();
    let mut checked = 0;
    for case in cases["cases"].as_array().unwrap() {
        let s = stream(case["stream"].as_str().unwrap());
        let field = case["field"].as_str().unwrap();
        let mut event = cases["base"][s.name()].clone();
        if case.get("unset").is_some() {
            event.as_object_mut().unwrap().remove(field);
        } else {
            event[field] = case["value"].clone();
        }
        let result = Event::decode(s, &serde_json::to_vec(&event).unwrap());
        let valid = case["valid"].as_bool().unwrap();
        match result {
            Ok(Event::Dossier(e)) if field == "extra_field_kept" => {
                assert_eq!(e.extra.get(field), Some(&case["value"]));
            }
            Ok(_) => assert!(valid, "accepted {case}"),
            Err(e) => {
                assert!(!valid, "rejected {case}: {e}");
                assert_eq!(e.field_name(), Some(field), "{case}: {e}");
                // The reason names the field first, as the dead-letter header shows it.
                assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
            }
        }
        checked += 1;
    }
    assert!(checked > 200, "only {checked} cases");
}

#[test]
fn raw_cases_are_rejected_as_json_errors() {
    let cases = cases();
    for case in cases["raw"].as_array().unwrap() {
        let s = stream(case["stream"].as_str().unwrap());
        let err = Event::decode(s, case["bytes"].as_str().unwrap().as_bytes()).unwrap_err();
        assert!(matches!(err, DecodeError::Json(_)), "{case}: {err}");
    }
}

#[test]
fn messages_name_the_rule() {
    let decode = |patch: &str| {
        let mut base = cases()["base"]["dossier"].clone();
        let patch: Value = serde_json::from_str(patch).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            base[k] = v.clone();
        }
        Event::decode(Stream::Dossier, &serde_json::to_vec(&base).unwrap()).unwrap_err().to_string()
    };
    assert_eq!(decode(r#"{"status": 11}"#), "status: 11 is not a status code (1-10)");
    assert_eq!(decode(r#"{"channel": "fax"}"#), r#"channel: "fax" is not one of in_person, online, postal"#);
    assert_eq!(decode(r#"{"event_id": ""}"#), "event_id: must be 1-64 characters, got 0");
    assert_eq!(decode(r#"{"fee_vnd": "100"}"#), "fee_vnd: must be an integer, not a string");
    assert_eq!(decode(r#"{"schema_version": 2}"#), "schema_version: 2 is not a supported version (1)");
    assert_eq!(decode(r#"{"procedure_code": "1.23"}"#), r#"procedure_code: "1.23" does not match ^\d\.\d{6}$"#);
    assert_eq!(decode(r#"{"due_at": null, "dossier_id": null}"#), "dossier_id: required field is missing");
}

#[test]
fn duplicate_fields_are_rejected() {
    let err = Event::decode(Stream::Feedback, br#"{"rating":"neutral","rating":"satisfied"}"#).unwrap_err();
    assert_eq!(err.to_string(), "rating: appears more than once");
}

#[test]
fn errors_never_echo_the_applicant_id() {
    for bad in [r#"12345678901"#, r#"["079123456789"]"#, r#"{"id":"079123456789"}"#] {
        let text = format!(
            r#"{{"schema_version":1,"event_id":"e","dossier_id":"d","status":1,"occurred_at":"2024-07-01T08:00:00Z","procedure_code":"1.000001","service_level":"offline","channel":"online","agency_code":"a","authority_code":"H01","applicant_id":{bad}}}"#
        );
        let err = Event::decode(Stream::Dossier, text.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("applicant_id: must be a string"), "{err}");
        assert!(!err.contains("12345678901") && !err.contains("079123456789"), "{err}");
    }
}
