//! Headset timestamp and duration formats.
//!
//! Real headsets send unix seconds as strings, the en-IN layout `02-Dec-2025, 2:54:12 pm`,
//! Unreal's `FDateTime::ToString()` layout and ISO 8601; durations come as `M:SS`, `H:MM:SS` and,
//! from uninitialised timers, hours with locale digit grouping (`1,77,50,078:30:03`).

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

/// Values above this many seconds can only be milliseconds (1e11 s is the year 5138).
const MILLIS_THRESHOLD: f64 = 1e11;

/// Layouts without a zone, tried in order; the site time zone applies to them.
const NAIVE_LAYOUTS: &[&str] = &[
    "%d-%b-%Y, %I:%M:%S %p",
    "%d-%b-%Y, %I:%M:%S%p",
    "%d-%b-%Y %I:%M:%S %p",
    "%d-%b-%Y %I:%M:%S%p",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y.%m.%d-%H.%M.%S%.f",
    "%Y.%m.%d-%H.%M.%S:%3f",
    "%d-%b-%Y, %H:%M:%S",
];

/// Layouts that carry their own offset.
const ZONED_LAYOUTS: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"];

/// Parses a timestamp given as a JSON number or string into unix milliseconds.
pub fn timestamp_ms(value: &Value, tz: Tz) -> Result<i64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a finite number".to_string()).and_then(epoch_ms),
        Value::String(s) => timestamp_str_ms(s, tz),
        other => Err(format!("expected a timestamp string or number, got {}", json_type(other))),
    }
}

pub fn timestamp_str_ms(raw: &str, tz: Tz) -> Result<i64, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Ok(n) = s.parse::<f64>() {
        return epoch_ms(n);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.timestamp_millis());
    }
    for layout in ZONED_LAYOUTS {
        if let Ok(dt) = DateTime::parse_from_str(s, layout) {
            return Ok(dt.timestamp_millis());
        }
    }
    let trimmed_z = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'));
    for layout in NAIVE_LAYOUTS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, layout) {
            return local_ms(naive, tz);
        }
        if let Some(utc_text) = trimmed_z {
            if let Ok(naive) = NaiveDateTime::parse_from_str(utc_text, layout) {
                return Ok(naive.and_utc().timestamp_millis());
            }
        }
    }
    Err(format!(
        "unrecognised timestamp {raw:?}: expected unix seconds or milliseconds, ISO 8601, \
         \"02-Dec-2025, 2:54:12 pm\" or \"2025.12.02-14.54.12\""
    ))
}

fn epoch_ms(n: f64) -> Result<i64, String> {
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{n} is not a unix time"));
    }
    let ms = if n >= MILLIS_THRESHOLD { n } else { n * 1000.0 };
    if ms >= 1e14 * 1000.0 {
        return Err(format!("{n} is too far in the future to be a unix time"));
    }
    Ok(ms.round() as i64)
}

fn local_ms(naive: NaiveDateTime, tz: Tz) -> Result<i64, String> {
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|dt| dt.timestamp_millis())
        .ok_or_else(|| format!("{naive} does not exist in time zone {tz} (daylight-saving gap)"))
}

/// Parses a duration into milliseconds. The value may be absurd (garbage timers); judging it is
/// left to the caller, which knows the limits.
pub fn duration_ms(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a finite number".to_string()).and_then(seconds_ms),
        Value::String(s) => duration_str_ms(s),
        other => Err(format!("expected a duration string or number, got {}", json_type(other))),
    }
}

pub fn duration_str_ms(raw: &str) -> Result<i64, String> {
    let s = raw.trim();
    let bad = || format!("unrecognised duration {raw:?}: expected \"M:SS\", \"H:MM:SS\" or seconds");
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<f64>() {
        return seconds_ms(n);
    }
    if let Some(ms) = unit_duration_ms(s) {
        return Ok(ms);
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [m, sec] => (0, whole(m).ok_or_else(bad)?, fraction(sec).ok_or_else(bad)?),
        [h, m, sec] => {
            let minutes = whole(m).filter(|m| *m < 60).ok_or_else(bad)?;
            (grouped_hours(h).ok_or_else(bad)?, minutes, fraction(sec).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    };
    if seconds >= 60.0 {
        return Err(bad());
    }
    let total = hours as f64 * 3600.0 + minutes as f64 * 60.0 + seconds;
    seconds_ms(total)
}

/// "21m 33s", "1h 2m", "45s" (the layout in the upstream pipeline documentation).
fn unit_duration_ms(s: &str) -> Option<i64> {
    let mut total = 0.0;
    let mut any = false;
    for token in s.split_whitespace() {
        let split = token.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, unit) = token.split_at(split);
        let n: f64 = number.parse().ok()?;
        total += n * match unit.to_ascii_lowercase().as_str() {
            "h" | "hr" | "hrs" => 3600.0,
            "m" | "min" | "mins" => 60.0,
            "s" | "sec" | "secs" => 1.0,
            _ => return None,
        };
        any = true;
    }
    any.then(|| (total * 1000.0).round() as i64)
}

fn whole(s: &str) -> Option<u64> {
    let s = s.trim();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn fraction(s: &str) -> Option<f64> {
    let s = s.trim();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')).then(|| s.parse().ok()).flatten()
}

/// Hours may carry the device locale's digit grouping: "1,77,50,078", "17.750.078", "17 750 078".
fn grouped_hours(s: &str) -> Option<u64> {
    let digits: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'' | '\u{2019}'))
        .collect();
    whole(&digits)
}

fn seconds_ms(n: f64) -> Result<i64, String> {
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{n} is not a duration"));
    }
    if n > 1e12 {
        return Err(format!("{n} seconds is not a duration"));
    }
    Ok((n * 1000.0).round() as i64)
}

/// A number sent as text (`"2500"`, `" 1.5 "`, `"-3"`), as Unreal's VaRest sends every value a
/// blueprint built from text. Only finite numbers: `"NaN"`, `"inf"` and `""` are not numbers.
pub fn number_str(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UTC: Tz = chrono_tz::UTC;

    fn ts(s: &str) -> i64 {
        timestamp_str_ms(s, UTC).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn unix_seconds_strings_numbers_and_fractions() {
        assert_eq!(ts("1727653800"), 1_727_653_800_000);
        assert_eq!(ts("1727653800.5"), 1_727_653_800_500);
        assert_eq!(timestamp_ms(&json!(1727653800), UTC), Ok(1_727_653_800_000));
        assert_eq!(timestamp_ms(&json!(1727653800.25), UTC), Ok(1_727_653_800_250));
        // Milliseconds are recognised by size instead of being read as the year 56000.
        assert_eq!(timestamp_ms(&json!(1764686052123_i64), UTC), Ok(1_764_686_052_123));
        assert_eq!(ts("1764686052123"), 1_764_686_052_123);
    }

    #[test]
    fn human_layouts_in_any_case() {
        let expected = 1_764_687_252_000; // 2025-12-02T14:54:12Z
        for s in [
            "02-Dec-2025, 2:54:12 pm",
            "02-Dec-2025, 2:54:12 PM",
            "02-dec-2025, 2:54:12pm",
            "02-DEC-2025, 02:54:12 Pm",
            "2025.12.02-14.54.12",
            "2025-12-02T14:54:12",
            "2025-12-02 14:54:12",
            "2025-12-02T14:54:12Z",
            "2025-12-02T14:54:12+00:00",
            "2025-12-02T20:24:12+05:30",
        ] {
            assert_eq!(ts(s), expected, "{s}");
        }
        assert_eq!(ts("2025-12-02T14:54:12.250Z"), expected + 250);
        assert_eq!(ts("2025-12-02T14:54:12.5"), expected + 500);
        assert_eq!(ts("2025.12.02-14.54.12:123"), expected + 123);
        assert_eq!(ts("02-Dec-2025, 12:00:00 am"), 1_764_633_600_000);
    }

    #[test]
    fn zone_less_values_use_the_site_zone() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let utc = ts("02-Dec-2025, 2:54:12 pm");
        assert_eq!(timestamp_str_ms("02-Dec-2025, 2:54:12 pm", kolkata), Ok(utc - 5 * 3_600_000 - 30 * 60_000));
        // An explicit offset is never overridden by the site zone.
        assert_eq!(timestamp_str_ms("2025-12-02T14:54:12Z", kolkata), Ok(utc));
    }

    #[test]
    fn rejects_garbage_timestamps() {
        for s in ["", "yesterday", "02-Foo-2025, 2:54:12 pm", "-5", "2025-13-02 10:00:00"] {
            assert!(timestamp_str_ms(s, UTC).is_err(), "{s}");
        }
        assert!(timestamp_ms(&json!({"a": 1}), UTC).is_err());
    }

    #[test]
    fn durations() {
        let d = |s: &str| duration_str_ms(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(d("0:45"), 45_000);
        assert_eq!(d("1:30"), 90_000);
        assert_eq!(d("75:10"), 4_510_000);
        assert_eq!(d("1:02:03"), 3_723_000);
        assert_eq!(d("45"), 45_000);
        assert_eq!(d("2.5"), 2_500);
        assert_eq!(d("21m 33s"), 1_293_000);
        assert_eq!(d("1,77,50,078:30:03"), (17_750_078 * 3600 + 30 * 60 + 3) * 1000);
        assert_eq!(d("17.750.078:30:03"), (17_750_078 * 3600 + 30 * 60 + 3) * 1000);
        assert_eq!(duration_ms(&json!(12)), Ok(12_000));
        for bad in ["", "abc", "1:60:00", "1:2:3:4", "0:75", "-3", ":"] {
            assert!(duration_str_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_as_text() {
        assert_eq!(number_str("2500"), Some(2500.0));
        assert_eq!(number_str(" 1.5 "), Some(1.5));
        assert_eq!(number_str("-3"), Some(-3.0));
        assert_eq!(number_str("1e3"), Some(1000.0));
        for bad in ["", " ", "abc", "1,5", "NaN", "inf", "-infinity", "1e400", "12px"] {
            assert_eq!(number_str(bad), None, "{bad}");
        }
    }
}
