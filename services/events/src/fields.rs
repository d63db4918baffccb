//! Field-level decoding shared by the three event types.
//!
//! A message is split once into its top-level fields, each kept as borrowed
//! raw JSON; every rule of CONTRACT.md §2-4 is then checked on the one field it
//! concerns, so an error always names that field. Whatever is left once the
//! known fields are taken is kept as the event's `extra` fields.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::DecodeError;

/// The largest integer every JSON parser reads exactly (2^53 - 1); the bound
/// for money amounts, far above any real fee (VND).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Timestamps must fall in this range of years (UTC or local, as written):
/// anything else is a clock or encoding bug on the portal's side.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// Dates (`YYYY-MM-DD`, catalogue entries) must fall in these years: legal
/// bases go back further than any event, and ClickHouse's `Date` starts in
/// 1970.
pub const DATE_YEARS: std::ops::RangeInclusive<i32> = 1970..=2099;

/// A string enumeration of the contract (see `contract_enum!`).
pub trait ContractEnum: Sized + Copy + 'static {
    /// Every variant with its wire name, in contract order.
    const VARIANTS: &'static [(&'static str, Self)];

    fn from_name(name: &str) -> Option<Self> {
        Self::VARIANTS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// What an `authority_code` names (CONTRACT.md §2): `G..` a ministry or
/// ministerial-level agency, `H..` a province or centrally-run city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthorityKind {
    Ministry,
    Province,
}

impl AuthorityKind {
    /// The kind of a code of the contract's shape `^[GH]\d{2}$`, or `None`.
    pub fn of(code: &str) -> Option<AuthorityKind> {
        match code.as_bytes() {
            [kind, digits @ ..] if digits.len() == 2 && digits.iter().all(u8::is_ascii_digit) => match kind {
                b'G' => Some(AuthorityKind::Ministry),
                b'H' => Some(AuthorityKind::Province),
                _ => None,
            },
            _ => None,
        }
    }

    /// `ministry` or `province`, as the rates' `authority_kind` groups say.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityKind::Ministry => "ministry",
            AuthorityKind::Province => "province",
        }
    }
}

/// The top-level fields of one JSON object, in message order.
pub(crate) struct Fields<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let fields: Fields<'a> = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                DecodeError::Json("an event must be a JSON object".into())
            } else {
                DecodeError::Json(e.to_string())
            }
        })?;
        for (i, (name, _)) in fields.entries.iter().enumerate() {
            if fields.entries[..i].iter().any(|(n, _)| n == name) {
                return Err(DecodeError::field(name.to_string(), "appears more than once"));
            }
        }
        Ok(fields)
    }

    fn take(&mut self, name: &str) -> Option<&'a RawValue> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.swap_remove(i).1)
    }

    /// A required field's raw value; JSON `null` counts as missing.
    fn required(&mut self, name: &'static str) -> Result<&'a RawValue, DecodeError> {
        match self.take(name) {
            Some(raw) if raw.get() != "null" => Ok(raw),
            _ => Err(DecodeError::field(name, "required field is missing")),
        }
    }

    /// An optional field's raw value; JSON `null` counts as absent.
    fn optional(&mut self, name: &'static str) -> Option<&'a RawValue> {
        self.take(name).filter(|raw| raw.get() != "null")
    }

    pub(crate) fn schema_version(&mut self) -> Result<u8, DecodeError> {
        let name = "schema_version";
        let v = integer(name, self.required(name)?)?;
        if v != 1 {
            return Err(DecodeError::field(name, format!("{v} is not a supported version (1)")));
        }
        Ok(1)
    }

    /// A required string of 1-64 characters (identifiers and codes).
    pub(crate) fn id(&mut self, name: &'static str) -> Result<String, DecodeError> {
        id(name, self.required(name)?)
    }

    pub(crate) fn opt_id(&mut self, name: &'static str) -> Result<Option<String>, DecodeError> {
        self.optional(name).map(|raw| id(name, raw)).transpose()
    }

    /// A list of 1-64 character strings (agency codes).
    pub(crate) fn opt_ids(&mut self, name: &'static str) -> Result<Option<Vec<String>>, DecodeError> {
        self.optional(name)
            .map(|raw| {
                let items: Vec<&RawValue> =
                    serde_json::from_str(raw.get()).map_err(|_| wrong_type(name, "an array of strings", raw.get()))?;
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let s = string(name, item)
                            .map_err(|_| DecodeError::field(name, format!("item {i} must be a string")))?;
                        if let Some(problem) = id_length_problem(&s) {
                            return Err(DecodeError::field(name, format!("item {i} {problem}")));
                        }
                        Ok(s.into_owned())
                    })
                    .collect()
            })
            .transpose()
    }

    pub(crate) fn procedure_code(&mut self) -> Result<String, DecodeError> {
        procedure_code(self.required("procedure_code")?)
    }

    pub(crate) fn opt_procedure_code(&mut self) -> Result<Option<String>, DecodeError> {
        self.optional("procedure_code").map(procedure_code).transpose()
    }

    pub(crate) fn authority_code(&mut self) -> Result<String, DecodeError> {
        let name = "authority_code";
        let s = string(name, self.required(name)?)?;
        if AuthorityKind::of(&s).is_none() {
            return Err(DecodeError::field(
                name,
                format!("{} does not match ^[GH]\\d{{2}}$ (G = ministry, H = province)", quoted(&s)),
            ));
        }
        Ok(s.into_owned())
    }

    pub(crate) fn timestamp(&mut self, name: &'static str) -> Result<OffsetDateTime, DecodeError> {
        timestamp(name, self.required(name)?)
    }

    pub(crate) fn opt_timestamp(&mut self, name: &'static str) -> Result<Option<OffsetDateTime>, DecodeError> {
        self.optional(name).map(|raw| timestamp(name, raw)).transpose()
    }

    pub(crate) fn enumeration<E: ContractEnum>(&mut self, name: &'static str) -> Result<E, DecodeError> {
        enumeration(name, self.required(name)?)
    }

    pub(crate) fn opt_enumeration<E: ContractEnum>(&mut self, name: &'static str) -> Result<Option<E>, DecodeError> {
        self.optional(name).map(|raw| enumeration(name, raw)).transpose()
    }

    /// A required integer in `min..=max`; `what` describes the range in errors.
    pub(crate) fn bounded(&mut self, name: &'static str, min: u64, max: u64, what: &str) -> Result<u64, DecodeError> {
        bounded(name, self.required(name)?, min, max, what)
    }

    pub(crate) fn opt_bounded(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
        what: &str,
    ) -> Result<Option<u64>, DecodeError> {
        self.optional(name).map(|raw| bounded(name, raw, min, max, what)).transpose()
    }

    /// An optional number (integer or not) in `0..=max`.
    pub(crate) fn opt_number(&mut self, name: &'static str, max: f64, what: &str) -> Result<Option<f64>, DecodeError> {
        self.optional(name)
            .map(|raw| {
                let n: serde_json::Number =
                    serde_json::from_str(raw.get()).map_err(|_| wrong_type(name, "a number", raw.get()))?;
                match n.as_f64() {
                    Some(v) if (0.0..=max).contains(&v) => Ok(v),
                    _ => Err(DecodeError::field(name, format!("{} is not {what}", raw.get()))),
                }
            })
            .transpose()
    }

    /// An optional calendar date, `YYYY-MM-DD`.
    pub(crate) fn opt_date(&mut self, name: &'static str) -> Result<Option<Date>, DecodeError> {
        self.optional(name).map(|raw| date(name, raw)).transpose()
    }

    pub(crate) fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, DecodeError> {
        self.optional(name)
            .map(|raw| match raw.get() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(wrong_type(name, "a boolean", other)),
            })
            .transpose()
    }

    pub(crate) fn opt_string(&mut self, name: &'static str) -> Result<Option<String>, DecodeError> {
        self.optional(name).map(|raw| string(name, raw).map(Cow::into_owned)).transpose()
    }

    /// A personal identifier: checked like any string, but never echoed in
    /// an error, since error texts travel in dead-letter headers and logs.
    pub(crate) fn opt_personal_id(&mut self, name: &'static str) -> Result<Option<String>, DecodeError> {
        self.optional(name)
            .map(|raw| {
                serde_json::from_str::<Cow<'_, str>>(raw.get())
                    .map(Cow::into_owned)
                    .map_err(|_| DecodeError::field(name, format!("must be a string, not {}", json_kind(raw.get()))))
            })
            .transpose()
    }

    /// The fields no rule took: the event's unknown extra fields.
    pub(crate) fn into_extra(self) -> Map<String, Value> {
        self.entries
            .into_iter()
            .filter_map(|(name, raw)| serde_json::from_str::<Value>(raw.get()).ok().map(|v| (name.into_owned(), v)))
            .collect()
    }
}

/// An identifier: a string of 1-64 characters.
fn id(name: &'static str, raw: &RawValue) -> Result<String, DecodeError> {
    let s = string(name, raw)?;
    match id_length_problem(&s) {
        Some(problem) => Err(DecodeError::field(name, problem)),
        None => Ok(s.into_owned()),
    }
}

/// What is wrong with an identifier's length, if anything.
fn id_length_problem(s: &str) -> Option<String> {
    let chars = s.chars().count();
    (chars == 0 || chars > 64).then(|| format!("must be 1-64 characters, got {chars}"))
}

fn procedure_code(raw: &RawValue) -> Result<String, DecodeError> {
    let name = "procedure_code";
    let s = string(name, raw)?;
    let b = s.as_bytes();
    let ok = b.len() == 8 && b[0].is_ascii_digit() && b[1] == b'.' && b[2..].iter().all(u8::is_ascii_digit);
    if !ok {
        return Err(DecodeError::field(name, format!("{} does not match ^\\d\\.\\d{{6}}$", quoted(&s))));
    }
    Ok(s.into_owned())
}

fn string<'a>(name: &'static str, raw: &'a RawValue) -> Result<Cow<'a, str>, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    BorrowedStr::deserialize(&mut de).map(|s| s.0).map_err(|_| wrong_type(name, "a string", raw.get()))
}

fn enumeration<E: ContractEnum>(name: &'static str, raw: &RawValue) -> Result<E, DecodeError> {
    let s = string(name, raw)?;
    E::from_name(&s).ok_or_else(|| {
        let names: Vec<&str> = E::VARIANTS.iter().map(|(n, _)| *n).collect();
        DecodeError::field(name, format!("{} is not one of {}", quoted(&s), names.join(", ")))
    })
}

fn timestamp(name: &'static str, raw: &RawValue) -> Result<OffsetDateTime, DecodeError> {
    let s = string(name, raw)?;
    // RFC 3339's grammar separates date and time with `T`; the `time` crate
    // also takes the space its prose allows, which JSON Schema rejects. Leap
    // seconds (`:60`) are refused too: no storage type downstream holds one.
    let strict = matches!(s.as_bytes().get(10), Some(b'T' | b't')) && s.get(17..19) != Some("60");
    let parsed = OffsetDateTime::parse(&s, &Rfc3339).ok().filter(|_| strict);
    let t = parsed.ok_or_else(|| {
        DecodeError::field(
            name,
            format!("{} is not an RFC 3339 timestamp with offset (e.g. 2024-07-01T08:30:00+07:00)", quoted(&s)),
        )
    })?;
    if !YEARS.contains(&t.year()) {
        return Err(DecodeError::field(
            name,
            format!("{} is outside the supported years {}-{}", quoted(&s), YEARS.start(), YEARS.end()),
        ));
    }
    Ok(t)
}

fn date(name: &'static str, raw: &RawValue) -> Result<Date, DecodeError> {
    let s = string(name, raw)?;
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let parsed = Date::parse(&s, format_description!("[year]-[month]-[day]")).ok().filter(|_| shaped);
    let d = parsed.ok_or_else(|| {
        DecodeError::field(name, format!("{} is not a date YYYY-MM-DD (e.g. 2024-07-01)", quoted(&s)))
    })?;
    if !DATE_YEARS.contains(&d.year()) {
        return Err(DecodeError::field(
            name,
            format!("{} is outside the supported years {}-{}", quoted(&s), DATE_YEARS.start(), DATE_YEARS.end()),
        ));
    }
    Ok(d)
}

/// Any JSON integer (`7`, `7.0`, `7e0` alike, as JSON Schema counts them).
fn integer(name: &'static str, raw: &RawValue) -> Result<i128, DecodeError> {
    let n: serde_json::Number =
        serde_json::from_str(raw.get()).map_err(|_| wrong_type(name, "an integer", raw.get()))?;
    if let Some(v) = n.as_u64() {
        return Ok(v.into());
    }
    if let Some(v) = n.as_i64() {
        return Ok(v.into());
    }
    match n.as_f64() {
        // Exact for every integer the contract allows (≤ 2^53); larger
        // values only need to compare as out of range.
        Some(f) if f.fract() == 0.0 && f.abs() < 1e30 => Ok(f as i128),
        _ => Err(DecodeError::field(name, format!("{} is not an integer", raw.get()))),
    }
}

fn bounded(name: &'static str, raw: &RawValue, min: u64, max: u64, what: &str) -> Result<u64, DecodeError> {
    let v = integer(name, raw)?;
    if v < i128::from(min) || v > i128::from(max) {
        return Err(DecodeError::field(name, format!("{} is not {what}", raw.get())));
    }
    // In range, so it fits.
    Ok(v as u64)
}

fn wrong_type(name: &'static str, expected: &str, raw: &str) -> DecodeError {
    DecodeError::field(name, format!("must be {expected}, not {}", json_kind(raw)))
}

/// The JSON type of a raw value, for error messages.
fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// A value for an error message: quoted, and cut short so a hostile message
/// cannot blow up a header.
fn quoted(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

/// A string borrowed from the message when it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BorrowedStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(20));
                while let Some(BorrowedStr(name)) = map.next_key()? {
                    let raw: &'de RawValue = map.next_value()?;
                    entries.push((name, raw));
                }
                Ok(Fields { entries })
            }
        }
        d.deserialize_map(V)
    }
}
