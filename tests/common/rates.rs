//! The sample's expected rates (tests/fixtures/samples/expected-rates.json,
//! computed from the contract by an independent program) and the check of an
//! API's answers against them.

use serde_json::Value;

use super::samples;

pub fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(samples().join("expected-rates.json")).unwrap()).unwrap()
}

/// The names of the sample's authorities in July 2024, from the national
/// list of administrative units and the Government's structure then.
const SAMPLE_NAMES: [(&str, &str); 5] = [
    ("G01", "Bộ Quốc phòng"),
    ("G12", "Bộ Tài nguyên và Môi trường"),
    ("H01", "Hà Nội"),
    ("H29", "Quảng Bình"),
    ("H40", "Kon Tum"),
];

/// Every metric × grouping of expected-rates.json, row by row; rows by
/// `authority_code` named as the directory of authorities names them.
pub async fn assert_expected_rates(base: &str) {
    let expected = expected();
    let (from, to) = (expected["from"].as_str().unwrap(), expected["to"].as_str().unwrap());
    let client = reqwest::Client::new();
    let mut compared = 0;
    for (key, rows) in expected["results"].as_object().unwrap() {
        let (metric, group_by) = key.split_once('/').unwrap();
        let url = format!("{base}/v1/rates?metric={metric}&from={from}&to={to}&group_by={group_by}");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["metric"], metric);
        assert_eq!(body["group_by"], group_by);
        assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some(from), Some(to)));
        let got = body["rows"].as_array().unwrap();
        let want = rows.as_array().unwrap();
        let groups = |rows: &[Value]| rows.iter().map(|r| r["group"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(groups(got), groups(want), "{key}: groups");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["numerator"], w["numerator"], "{key} {}", w["group"]);
            assert_eq!(g["denominator"], w["denominator"], "{key} {}", w["group"]);
            let name = SAMPLE_NAMES.iter().find(|(code, _)| group_by == "authority_code" && w["group"] == *code);
            assert_eq!(g["name"].as_str(), name.map(|(_, name)| *name), "{key} {}", w["group"]);
            match (g["value"].as_f64(), w["value"].as_f64()) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "{key} {}: {a} vs {b}", w["group"]),
                (a, b) => assert_eq!(a, b, "{key} {}", w["group"]),
            }
            compared += 1;
        }
    }
    assert!(compared > 200, "compared only {compared} rows");
}
