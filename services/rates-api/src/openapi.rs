//! The OpenAPI 3.1 description of the API, built from the metric catalog so
//! the documented metrics and groupings are always the served ones.

use dvc_warehouse::{GroupBy, METRICS, MetricKind};
use serde_json::{Value, json};

pub fn document() -> Value {
    let metrics: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    let groupings: Vec<&str> = GroupBy::ALL.iter().map(|g| g.as_str()).collect();
    let described: Vec<String> = METRICS
        .iter()
        .map(|m| {
            let ratio = match (m.kind, m.denominator_en) {
                (MetricKind::Rate, Some(den)) => format!("{} / {den}", m.numerator_en),
                _ => m.numerator_en.to_owned(),
            };
            format!("- `{}`: {} ({}): {ratio}", m.name, m.title_en, m.title_vi)
        })
        .collect();
    let error = json!({
        "description": "A bad parameter; the message names it",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    });
    let unavailable = json!({
        "description": "Busy (every ClickHouse query slot taken for the queue timeout), the query ran past its timeout, or ClickHouse is unreachable; retry after `Retry-After` seconds",
        "headers": { "Retry-After": { "schema": { "type": "integer" } } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    });
    // The frame of /v1/rates and /v1/series answers (CONTRACT.md §6) around rows of `row`.
    let answer = |row: Value| {
        json!({
            "type": "object",
            "required": ["metric", "from", "to", "group_by", "rows"],
            "properties": {
                "metric": { "type": "string", "enum": metrics },
                "from": { "type": "string", "format": "date" },
                "to": { "type": "string", "format": "date" },
                "group_by": { "type": "string", "enum": groupings },
                "rows": { "type": "array", "items": row }
            }
        })
    };
    let max = crate::MAX_PARAMETER_LEN;
    let parameters = json!([
        { "name": "metric", "in": "query", "required": true, "schema": { "type": "string", "enum": metrics } },
        { "name": "from", "in": "query", "required": false,
          "description": format!("First day (inclusive); default today. A range covers at most {} days (ten years)", crate::MAX_RANGE_DAYS),
          "schema": { "type": "string", "format": "date", "maxLength": max } },
        { "name": "to", "in": "query", "required": false, "description": "Last day (inclusive); default today",
          "schema": { "type": "string", "format": "date", "maxLength": max } },
        { "name": "group_by", "in": "query", "required": false,
          "schema": { "type": "string", "enum": groupings, "default": "national" } }
    ]);
    let period = json!({ "name": "period", "in": "query", "required": false,
        "description": "YYYY-MM, YYYY-Qn or YYYY (Vietnam's calendar); default the current month",
        "schema": { "type": "string", "pattern": "^20[0-9]{2}(-(0[1-9]|1[0-2]|Q[1-4]))?$", "maxLength": max } });
    let number = json!({ "type": "number" });
    let frame = |rows: Value, extra: Value| {
        let mut properties = json!({
            "period": { "type": "string" },
            "from": { "type": "string", "format": "date" },
            "to": { "type": "string", "format": "date" },
            "provisional": { "type": "boolean", "description": "the period is not over: open dossiers are judged now" },
            "rules": { "type": "string", "format": "date", "description": "the version of the rules it is scored by" },
            "rows": { "type": "array", "items": rows }
        });
        if let (Value::Object(p), Value::Object(extra)) = (&mut properties, extra) {
            p.extend(extra);
        }
        json!({ "type": "object", "required": ["period", "from", "to", "provisional", "rules", "rows"], "properties": properties })
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DVC Pulse rates API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Real-time public-service rates of Vietnamese administrative procedures (CONTRACT.md §5-6). Days are calendar days in Asia/Ho_Chi_Minh."
        },
        "paths": {
            "/v1/rates": { "get": {
                "summary": "One metric over a range of days, grouped",
                "description": format!("Metrics:\n{}", described.join("\n")),
                "parameters": parameters,
                "responses": {
                    "200": { "description": "Rows sorted by group",
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Rates" } } } },
                    "400": error,
                    "503": unavailable
                }
            } },
            "/v1/series": { "get": {
                "summary": "One metric per day over a range of days, grouped (the dashboard's trends)",
                "description": "The parameters of /v1/rates; one row per day and group, days without data absent.",
                "parameters": parameters,
                "responses": {
                    "200": { "description": "Rows by day, then group",
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Series" } } } },
                    "400": error,
                    "503": unavailable
                }
            } },
            "/v1/index766": { "get": {
                "summary": "The Decision 766 service-quality index of a period: every ministry and province, or one authority's agencies, scored and ranked",
                "description": "Indicators, points and bands follow docs/INDEX766.md with the rules in force on the period's first day (schemas/reference/index766-rules.csv). Ministries and provinces are ranked apart; ties share a rank. A period not over yet is provisional: open dossiers are judged now.",
                "parameters": [
                    period.clone(),
                    { "name": "level", "in": "query", "required": false,
                      "schema": { "type": "string", "enum": ["authority", "agency"], "default": "authority" } },
                    { "name": "authority_code", "in": "query", "required": false,
                      "description": "With level=agency (required there): the authority whose agencies are ranked",
                      "schema": { "type": "string", "pattern": "^[GH][0-9]{2}$", "maxLength": max } }
                ],
                "responses": {
                    "200": { "description": "Rows by kind (ministry, province), then rank, then code",
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Index766" } } } },
                    "400": error,
                    "503": unavailable
                }
            } },
            "/v1/index766/procedures": { "get": {
                "summary": "One unit's dossier indicators procedure by procedure, the procedures with the most dossiers not on time first",
                "description": "Each procedure is scored by the indicators' rules as if it were the unit: where the unit loses points.",
                "parameters": [
                    period,
                    { "name": "unit", "in": "query", "required": true,
                      "description": "An authority code (G.. or H..) or an agency code",
                      "schema": { "type": "string", "minLength": 1, "maxLength": max } }
                ],
                "responses": {
                    "200": { "description": "One row per procedure with dossiers in the period",
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Index766Procedures" } } } },
                    "400": error,
                    "404": { "description": "No dossier, petition or catalogue entry of the period names the unit; the message names `unit`",
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "503": unavailable
                }
            } },
            "/v1/metrics": { "get": {
                "summary": "The metric catalog, with definitions in Vietnamese and English",
                "responses": { "200": { "description": "The catalog", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } },
            "/healthz": { "get": {
                "summary": "200 while ClickHouse answers",
                "responses": { "200": { "description": "Healthy" }, "503": { "description": "ClickHouse unreachable" } }
            } },
            "/openapi.json": { "get": {
                "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } }
        },
        "components": { "schemas": {
            "Rates": answer(json!({ "$ref": "#/components/schemas/Row" })),
            "Row": {
                "type": "object",
                "required": ["group", "numerator", "denominator", "value"],
                "properties": {
                    "group": { "type": "string", "description": "national, ministry/province, or the code" },
                    "name": { "type": "string", "description": "group_by=authority_code only: the unit's name from the directory of authorities (the one it had by the range's last day); absent for a code the directory does not list" },
                    "numerator": { "type": ["integer", "null"], "description": "null for sum-only metrics" },
                    "denominator": { "type": ["integer", "null"], "description": "null for sum-only metrics" },
                    "value": { "type": ["number", "null"], "description": "numerator/denominator; null when the denominator is 0; the total for sum-only metrics" }
                }
            },
            "Series": answer(json!({ "allOf": [
                { "$ref": "#/components/schemas/Row" },
                { "type": "object", "required": ["day"], "properties": { "day": { "type": "string", "format": "date" } } }
            ] })),
            "Index766": frame(json!({ "$ref": "#/components/schemas/Index766Row" }), json!({
                "level": { "type": "string", "enum": ["authority", "agency"] },
                "authority_code": { "type": "string" },
                "authority_name": { "type": ["string", "null"] }
            })),
            "Index766Row": {
                "type": "object",
                "required": ["unit", "total", "rank", "band", "groups", "indicators"],
                "properties": {
                    "unit": { "type": "string", "description": "the authority or agency code" },
                    "name": { "type": ["string", "null"], "description": "authorities: the directory's name" },
                    "kind": { "type": ["string", "null"], "enum": ["ministry", "province", null] },
                    "authority_code": { "type": "string", "description": "agencies: their authority" },
                    "total": number, "rank": { "type": "integer", "minimum": 1 },
                    "band": { "type": ["string", "null"] }, "band_en": { "type": ["string", "null"] },
                    "open_dossiers": { "type": "integer", "description": "dossiers of H(P) not ended by the period's end (now, for the current period)" },
                    "projection": { "type": "object", "description": "provisional periods only: the total projected for the period's end, the indicators that move, the method",
                        "properties": { "total": number, "method": { "type": "string" }, "indicators": { "type": "array" } } },
                    "groups": { "type": "array", "items": {
                        "type": "object", "required": ["group", "name", "name_en", "score", "max"],
                        "properties": { "group": { "type": "string" }, "name": { "type": "string" }, "name_en": { "type": "string" },
                                        "score": number, "max": number } } },
                    "indicators": { "type": "array", "items": { "$ref": "#/components/schemas/Indicator" } }
                }
            },
            "Indicator": {
                "type": "object",
                "required": ["code", "group", "numerator", "denominator", "ratio", "score", "max", "losing", "to_full"],
                "properties": {
                    "code": { "type": "string" }, "group": { "type": "string" },
                    "name": { "type": ["string", "null"], "description": "the indicator in Vietnamese" },
                    "name_en": { "type": ["string", "null"] },
                    "numerator": { "type": "integer", "minimum": 0 }, "denominator": { "type": "integer", "minimum": 0 },
                    "ratio": { "type": ["number", "null"], "description": "numerator/denominator (3.3: times the 1.4 ratio), at most 1; null without a denominator" },
                    "score": number, "max": number,
                    "losing": { "type": "number", "description": "max - score" },
                    "to_full": { "type": "integer", "minimum": 0, "description": "how many more dossiers (procedures, petitions) in the numerator would earn the maximum" },
                    "average_days": { "type": ["number", "null"], "description": "2.2 only: mean processing time in days of the dossiers that ended in the period (numerator: their seconds)" }
                }
            },
            "Index766Procedures": frame(json!({
                "type": "object",
                "required": ["procedure_code", "handled", "received", "not_on_time", "score", "max", "indicators"],
                "properties": {
                    "procedure_code": { "type": "string" }, "name": { "type": ["string", "null"] },
                    "handled": { "type": "integer" }, "received": { "type": "integer" }, "not_on_time": { "type": "integer" },
                    "score": number, "max": number,
                    "indicators": { "type": "array", "items": { "$ref": "#/components/schemas/Indicator" } }
                }
            }), json!({ "unit": { "type": "string" }, "authority_code": { "type": "string" } })),
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } }
        } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_every_metric_and_grouping_the_api_serves() {
        let doc = document();
        let params = doc["paths"]["/v1/rates"]["get"]["parameters"].as_array().unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["metric", "from", "to", "group_by"]);
        let metrics: Vec<&str> =
            params[0]["schema"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(metrics, METRICS.iter().map(|m| m.name).collect::<Vec<_>>());
        assert_eq!(params[3]["schema"]["enum"].as_array().unwrap().len(), GroupBy::ALL.len());
        assert_eq!(doc["paths"]["/v1/series"]["get"]["parameters"], doc["paths"]["/v1/rates"]["get"]["parameters"]);
    }
}
