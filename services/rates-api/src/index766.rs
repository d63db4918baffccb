//! `/v1/index766` and `/v1/index766/procedures` (CONTRACT.md §8): the
//! Decision 766 index of a period, read from ClickHouse through the query
//! slots and timeouts of every other answer, scored by `dvc_index766`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dvc_events::AuthorityKind;
use dvc_index766::report::{Context, Level};
use dvc_index766::{Period, PeriodData, PeriodKind, Rules, store};
use dvc_warehouse::Calendar;
use time::OffsetDateTime;

use crate::{Api, BadParameter, Unavailable, only};

/// The period asked for; the current month when absent.
fn period(params: &HashMap<String, String>, now: OffsetDateTime) -> Result<Period, BadParameter> {
    match params.get("period") {
        None => Ok(Period::holding(PeriodKind::Month, now.to_offset(dvc_index766::period::VIETNAM).date())),
        Some(text) => Period::parse(text).map_err(|e| BadParameter::new("period", e)),
    }
}

fn authority_code<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, BadParameter> {
    let code = params.get(name).ok_or_else(|| BadParameter::new(name, "required".to_owned()))?;
    if AuthorityKind::of(code).is_none() {
        return Err(BadParameter::new(name, format!("{code:?} is not an authority code (G.. or H.. and two digits)")));
    }
    Ok(code)
}

impl Api {
    /// The period's data, each read within a query slot and the timeout.
    async fn index_data(&self, period: &Period) -> Result<PeriodData, Unavailable> {
        let db = &self.clickhouse;
        Ok(PeriodData {
            counts: self.bounded(store::counts(db, period), async |q| q.fetch_all().await).await?,
            payments: self.bounded(store::payments(db, period), async |q| q.fetch_all().await).await?,
            catalogue: self.bounded(store::catalogue(db), async |q| q.fetch_all().await).await?,
            petitions: self.bounded(store::petitions(db, period), async |q| q.fetch_all().await).await?,
        })
    }

    /// Reads the period and answers with `make`'s JSON (`None`: 404).
    async fn index_answer(
        &self,
        period: Period,
        now: OffsetDateTime,
        make: impl FnOnce(&PeriodData, &Context<'_>) -> Option<serde_json::Value>,
    ) -> Response {
        let (rules, calendar) = match (Rules::official(), Calendar::official()) {
            (Ok(rules), Ok(calendar)) => (rules, calendar),
            (Err(e), _) | (_, Err(e)) => return Unavailable(format!("{e:#}")).into_response(),
        };
        let data = match self.index_data(&period).await {
            Ok(data) => data,
            Err(unavailable) => return unavailable.into_response(),
        };
        let directory = self.directory().await;
        let context =
            Context { period, now, rules: rules.in_force(period.start), calendar, directory: directory.as_deref() };
        match make(&data, &context) {
            Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
            None => (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "error": "unit: no dossier, petition or catalogue entry of the period names it" })),
            )
                .into_response(),
        }
    }
}

pub(crate) async fn ranking(State(api): State<Api>, Query(params): Query<HashMap<String, String>>) -> Response {
    let now = OffsetDateTime::now_utc();
    let parsed = (|| {
        only(&params, &["period", "level", "authority_code"])?;
        let period = period(&params, now)?;
        let level = match params.get("level").map(String::as_str) {
            None | Some("authority") => {
                if params.contains_key("authority_code") {
                    return Err(BadParameter::new("authority_code", "only with level=agency".to_owned()));
                }
                None
            }
            Some("agency") => Some(authority_code(&params, "authority_code")?.to_owned()),
            Some(other) => {
                return Err(BadParameter::new("level", format!("{other:?} is not one of authority, agency")));
            }
        };
        Ok((period, level))
    })();
    let (period, agencies_of) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => return bad.into_response(),
    };
    let level = agencies_of.as_deref().map_or(Level::Authority, Level::Agency);
    api.index_answer(period, now, |data, context| Some(dvc_index766::report::ranking(data, level, context))).await
}

pub(crate) async fn procedures(State(api): State<Api>, Query(params): Query<HashMap<String, String>>) -> Response {
    let now = OffsetDateTime::now_utc();
    let parsed = (|| {
        only(&params, &["period", "unit"])?;
        let period = period(&params, now)?;
        let unit = params.get("unit").ok_or_else(|| BadParameter::new("unit", "required".to_owned()))?;
        if unit.is_empty() {
            return Err(BadParameter::new("unit", "empty; give an authority or agency code".to_owned()));
        }
        Ok((period, unit.clone()))
    })();
    let (period, unit) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => return bad.into_response(),
    };
    api.index_answer(period, now, |data, context| dvc_index766::report::procedures(data, &unit, context)).await
}
