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
