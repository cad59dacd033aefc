//! Every query parameter the dashboard API takes, read and checked in one place: a value that
//! cannot be used is a 400 naming the parameter, never a silent default. Empty values count as
//! absent (a form's empty filter); unknown parameters are ignored.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::period::{day_start, local_date, Window};
use crate::error::AppError;
use crate::store::dashboard::tours::{SortKey, TourFilter, TourOrder};

/// The longest period or date range, in days (ten years).
const MAX_DAYS: i64 = 3660;
pub const STATUSES: [&str; 4] = ["active", "completed", "timed_out", "abandoned"];

/// A request's query parameters.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| AppError::bad_request(format!("the query string cannot be read: {e}")))?;
        Ok(Params(pairs))
    }
}

/// A 400 naming the parameter.
pub fn invalid(name: &str, why: impl std::fmt::Display) -> AppError {
    AppError::BadRequest { message: format!("{name}: {why}"), field: Some(name.to_string()), received_keys: vec![] }
}

impl Params {
    /// The parameter's value, trimmed; `None` when absent or empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(key, _)| key == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn owned(&self, name: &str) -> Option<String> {
        self.text(name).map(str::to_string)
    }

    fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, AppError> {
        let Some(text) = self.text(name) else { return Ok(None) };
        let value: i64 = text.parse().map_err(|_| invalid(name, format!("must be a whole number, got {text:?}")))?;
        if value < min || value > max {
            return Err(invalid(name, format!("must be between {min} and {max}, got {value}")));
        }
        Ok(Some(value))
    }

    /// `limit` (1..=`max`, default `default`) and the offset: `offset`, else `page` (from 1).
    pub fn page(&self, default: i64, max: i64) -> Result<(i64, i64), AppError> {
        let limit = self.integer("limit", 1, max)?.unwrap_or(default);
        let offset = match self.integer("offset", 0, i64::MAX / 2)? {
            Some(offset) => offset,
            None => (self.integer("page", 1, i64::MAX / 2 / limit)?.unwrap_or(1) - 1) * limit,
        };
        Ok((limit, offset))
    }

    /// The days asked for: `date_from` (and `date_to`, default today), else `period`, else
    /// `default`. Dates are the site's calendar days; ISO date-times count as their local day.
    pub fn window(&self, tz: Tz, default: &str) -> Result<Window, AppError> {
        let day = |name: &str| -> Result<Option<NaiveDate>, AppError> {
            Ok(self.text(name).map(|text| parse_time(name, text, tz)).transpose()?.map(|t| t.date(tz)))
        };
        let (from, to) = (day("date_from")?, day("date_to")?);
        let window = match (from, to) {
            (Some(from), to) => Window { from, to: to.unwrap_or_else(|| super::period::today(tz)) },
            (None, Some(_)) => return Err(invalid("date_from", "is required with date_to")),
            (None, None) => {
                let text = self.text("period").unwrap_or(default);
                let days = period_days(text).ok_or_else(|| {
                    invalid("period", format!("must be today, Nd, Nw, Nm or N (days), N from 1 to {MAX_DAYS} days; got {text:?}"))
                })?;
                return Ok(Window::last_days(days as u64, tz));
            }
        };
        if window.to < window.from {
            return Err(invalid("date_to", "is before date_from"));
        }
        if window.days() > MAX_DAYS {
            return Err(invalid("date_from", format!("the range is longer than {MAX_DAYS} days")));
        }
        Ok(window)
    }

    /// The period's text as given (the old API echoes it), or the default.
    pub fn period_text<'a>(&'a self, default: &'a str) -> &'a str {
        self.text("period").unwrap_or(default)
    }

    /// The tours a list or export takes.
    pub fn tour_filter(&self, tz: Tz) -> Result<TourFilter, AppError> {
        let mut filter = TourFilter {
            statuses: self.statuses()?,
            headset: self.owned("headset"),
            property_id: self.owned("property_id"),
            customer_id: self.owned("customer_id"),
            search: self.owned("q"),
            ..Default::default()
        };
        let from = self.text("date_from").map(|t| parse_time("date_from", t, tz)).transpose()?;
        let to = self.text("date_to").map(|t| parse_time("date_to", t, tz)).transpose()?;
        if from.is_some() || to.is_some() {
            filter.from_ms = from.map(|t| t.start_ms(tz));
            filter.to_ms = to.map(|t| t.end_ms(tz));
            if let (Some(from), Some(to)) = (filter.from_ms, filter.to_ms) {
                if to <= from {
                    return Err(invalid("date_to", "is before date_from"));
                }
            }
        } else if self.text("period").is_some() {
            let window = self.window(tz, "30d")?;
            (filter.from_ms, filter.to_ms) = (Some(window.start_ms(tz)), Some(window.end_ms(tz)));
        }
        Ok(filter)
    }

    /// `status`: one of the tour statuses, or several separated by commas.
    pub fn statuses(&self) -> Result<Vec<String>, AppError> {
        let Some(text) = self.text("status") else { return Ok(vec![]) };
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = s.to_ascii_lowercase();
                STATUSES
                    .contains(&s.as_str())
                    .then_some(s)
                    .ok_or_else(|| invalid("status", format!("must be one of {}", STATUSES.join(", "))))
            })
            .collect()
    }

    /// `sort` (started_at, duration, events, headset; default started_at) and `order` (desc, asc;
    /// default desc).
    pub fn tour_order(&self) -> Result<TourOrder, AppError> {
        let key = match self.text("sort").map(str::to_ascii_lowercase).as_deref() {
            None | Some("started_at") => SortKey::StartedAt,
            Some("duration" | "duration_seconds") => SortKey::Duration,
            Some("events" | "event_count") => SortKey::Events,
            Some("headset" | "headset_name" | "device_key") => SortKey::Headset,
            Some(_) => return Err(invalid("sort", "must be one of started_at, duration, events, headset")),
        };
        let descending = match self.text("order").map(str::to_ascii_lowercase).as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(invalid("order", "must be desc or asc")),
        };
        Ok(TourOrder { key, descending })
    }
}

/// `today`, `Nd`, `Nw` (×7), `Nm` (×30) or a bare `N` days, as the old API took them.
fn period_days(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    if text == "today" {
        return Some(1);
    }
    let (number, unit) = match text.char_indices().last()? {
        (i, 'd') => (&text[..i], 1),
        (i, 'w') => (&text[..i], 7),
        (i, 'm') => (&text[..i], 30),
        _ => (text.as_str(), 1),
    };
    let days = number.parse::<i64>().ok()?.checked_mul(unit)?;
    (1..=MAX_DAYS).contains(&days).then_some(days)
}

/// A bound of a time filter: a whole local day, or an instant.
#[derive(Clone, Copy, Debug)]
enum TimeBound {
    Day(NaiveDate),
    Instant(i64),
}

impl TimeBound {
    fn date(self, tz: Tz) -> NaiveDate {
        match self {
            TimeBound::Day(date) => date,
            TimeBound::Instant(ms) => local_date(ms, tz),
        }
    }

    /// From this bound on: the day's start, or the instant.
    fn start_ms(self, tz: Tz) -> i64 {
        match self {
            TimeBound::Day(date) => day_start(date, tz),
            TimeBound::Instant(ms) => ms,
        }
    }

    /// Up to this bound, included: the next day's start, or just after the instant.
    fn end_ms(self, tz: Tz) -> i64 {
        match self {
            TimeBound::Day(date) => day_start(date.succ_opt().unwrap_or(date), tz),
            TimeBound::Instant(ms) => ms + 1,
        }
    }
}

/// `YYYY-MM-DD` (a local day), an ISO date-time with an offset or `Z`, or one without (local).
fn parse_time(name: &str, text: &str, tz: Tz) -> Result<TimeBound, AppError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(TimeBound::Day(date));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(TimeBound::Instant(t.timestamp_millis()));
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
            if let Some(t) = tz.from_local_datetime(&t).earliest() {
                return Ok(TimeBound::Instant(t.timestamp_millis()));
            }
        }
    }
    Err(invalid(name, format!("must be a date (YYYY-MM-DD) or an ISO 8601 date-time, got {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::period_days;

    #[test]
    fn periods_as_the_old_api_wrote_them() {
        assert_eq!(period_days("today"), Some(1));
        assert_eq!(period_days("7d"), Some(7));
        assert_eq!(period_days("2w"), Some(14));
        assert_eq!(period_days("3M"), Some(90));
        assert_eq!(period_days("45"), Some(45));
        for bad in ["", "d", "0d", "-3d", "abc", "7x", "99999d", "1.5d"] {
            assert_eq!(period_days(bad), None, "{bad}");
        }
    }
}
