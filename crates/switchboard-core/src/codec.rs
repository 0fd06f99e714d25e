//! JSON payload encoding and the value encodings the wire uses for datetimes, durations and bytes.
//!
//! The encodings are StingerIPC's (see docs/interface-format.md): datetimes as ISO 8601 with a `Z`,
//! durations as ISO 8601 durations such as `PT1.5S`, binary as padded standard base64.
//! The adapters plug into `serde_with::As` so they compose with `Option`, `Vec` and maps.

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};
use serde_with::{DeserializeAs, SerializeAs};

/// Encodes a value as a JSON object payload.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(value).map(Bytes::from)
}

/// Decodes a JSON payload.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// Decodes a JSON payload; the error names the field that did not match, e.g.
/// `extraCelsius: invalid type: string "hot", expected f64 at line 1 column 21`.
pub fn decode_explained<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    // Most payloads match: decode them plainly. Only a failure is decoded again, tracking the
    // path so the error can name the field; that second pass fails the same way.
    if let Ok(value) = serde_json::from_slice(payload) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            error.into_inner().to_string()
        } else {
            format!("{path}: {}", error.into_inner())
        }
    })?;
    deserializer.end().map_err(|error| error.to_string())?;
    Ok(value)
}

/// The value of a reply or payload with no fields: `{}` on the wire.
///
/// Decoding accepts any JSON object, so a peer that adds fields later still interoperates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Empty {}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Empty {})
    }
}

/// Encodes a `DateTime<Utc>` as `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, keeping every nanosecond.
///
/// Decoding accepts any RFC 3339 offset, a space instead of `T`, and naive times (taken as UTC).
#[derive(Debug, Clone, Copy)]
pub struct IsoDateTime;

impl SerializeAs<DateTime<Utc>> for IsoDateTime {
    fn serialize_as<S: Serializer>(
        source: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_datetime(source))
    }
}

impl<'de> DeserializeAs<'de, DateTime<Utc>> for IsoDateTime {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse_datetime(&text).map_err(serde::de::Error::custom)
    }
}

/// Formats a datetime the way switchboard sends it.
pub fn format_datetime(value: &DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a datetime in any of the accepted forms.
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    let normalized: std::borrow::Cow<'_, str> = match text.as_bytes().get(10) {
        Some(b' ') => format!("{}T{}", &text[..10], &text[11..]).into(),
        _ => text.into(),
    };
    if let Ok(value) = DateTime::parse_from_rfc3339(&normalized) {
        return Ok(value.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|_| format!("`{text}` is not an ISO 8601 datetime such as 2024-02-29T12:00:00Z"))
}

/// Encodes a `TimeDelta` as an ISO 8601 duration: `PT1.5S`, `PT2M3S`, `P1DT2H`, `-PT1S`, `PT0S`.
///
/// Decoding accepts `[-]P[nW][nD][T[nH][nM][n[.f]S]]` (with `nY` as 365 days and `nM` before `T`
/// as 30 days, as StingerIPC's Python peers do) and `HH:MM:SS[.f]`.
#[derive(Debug, Clone, Copy)]
pub struct IsoDuration;

impl SerializeAs<TimeDelta> for IsoDuration {
    fn serialize_as<S: Serializer>(source: &TimeDelta, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(source))
    }
}

impl<'de> DeserializeAs<'de, TimeDelta> for IsoDuration {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<TimeDelta, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Formats a duration the way switchboard sends it.
pub fn format_duration(value: &TimeDelta) -> String {
    let negative = *value < TimeDelta::zero();
    let magnitude = value.abs();
    let total_secs = magnitude.num_seconds();
    let nanos = magnitude.subsec_nanos();
    let (days, rest) = (total_secs / 86_400, total_secs % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, seconds) = (rest / 60, rest % 60);

    let mut out = String::with_capacity(16);
    if negative {
        out.push('-');
    }
    out.push('P');
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || nanos > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if seconds > 0 || nanos > 0 || (hours == 0 && minutes == 0) {
            out.push_str(&seconds.to_string());
            if nanos > 0 {
                let fraction = format!("{nanos:09}");
                out.push('.');
                out.push_str(fraction.trim_end_matches('0'));
            }
            out.push('S');
        }
    }
    out
}

/// Parses a duration in any of the accepted forms.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let invalid = || format!("`{text}` is not an ISO 8601 duration such as PT1.5S");
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = if let Some(body) = body.strip_prefix('P') {
        parse_designators(body).ok_or_else(invalid)?
    } else {
        parse_clock(body).ok_or_else(invalid)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

fn parse_designators(body: &str) -> Option<TimeDelta> {
    if body.is_empty() {
        return None;
    }
    let (date, time) = match body.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut total = TimeDelta::zero();
    for (number, unit) in components(date)? {
        let whole = whole_number(number)?;
        let days = match unit {
            'Y' => whole.checked_mul(365)?,
            'M' => whole.checked_mul(30)?,
            'W' => whole.checked_mul(7)?,
            'D' => whole,
            _ => return None,
        };
        total = total.checked_add(&TimeDelta::try_days(days)?)?;
    }
    for (number, unit) in time.map(components).unwrap_or(Some(Vec::new()))? {
        let part = match unit {
            'H' => TimeDelta::try_hours(whole_number(number)?)?,
            'M' => TimeDelta::try_minutes(whole_number(number)?)?,
            'S' => seconds_with_fraction(number)?,
            _ => return None,
        };
        total = total.checked_add(&part)?;
    }
    Some(total)
}

/// Splits `1D2H` into `[("1", 'D'), ("2", 'H')]`.
fn components(text: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        if ch.is_ascii_alphabetic() {
            let number = &text[start..index];
            if number.is_empty() {
                return None;
            }
            out.push((number, ch));
            start = index + ch.len_utf8();
        }
    }
    (start == text.len()).then_some(out)
}

fn whole_number(text: &str) -> Option<i64> {
    if text.bytes().all(|b| b.is_ascii_digit()) { text.parse().ok() } else { None }
}

fn seconds_with_fraction(text: &str) -> Option<TimeDelta> {
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = whole_number(whole)?;
    let digits: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = digits.parse().ok()?;
    TimeDelta::new(seconds, nanos)
}

fn parse_clock(text: &str) -> Option<TimeDelta> {
    let mut parts = text.split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || minutes.len() != 2 {
        return None;
    }
    TimeDelta::try_hours(whole_number(hours)?)?
        .checked_add(&TimeDelta::try_minutes(whole_number(minutes)?)?)?
        .checked_add(&seconds_with_fraction(seconds)?)
}

/// Padded standard base64 (RFC 4648 §4), the wire form of `binary`.
pub type Base64 =
    serde_with::base64::Base64<serde_with::base64::Standard, serde_with::formats::Padded>;

#[cfg(test)]
mod tests;
