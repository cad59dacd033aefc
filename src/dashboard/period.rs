//! Times as the dashboard shows them, and periods of whole days in the site time zone.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// An instant (unix ms) as ISO 8601 UTC with milliseconds: `2026-12-04T17:08:18.123Z`.
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).unwrap_or_default()
}

/// An instant as the site's wall-clock time, `2026-12-04 22:38:18` (for spreadsheets).
pub fn local(ms: i64, tz: Tz) -> String {
    DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// The site's date at an instant.
pub fn local_date(ms: i64, tz: Tz) -> NaiveDate {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&tz).date_naive()
}

/// The site's date now.
pub fn today(tz: Tz) -> NaiveDate {
    Utc::now().with_timezone(&tz).date_naive()
}

/// The first instant of a day in the site time zone (the first existing minute when the day
/// starts in a daylight-saving gap).
pub fn day_start(date: NaiveDate, tz: Tz) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..=24 * 4)
        .find_map(|quarter| tz.from_local_datetime(&(midnight + chrono::Duration::minutes(15 * quarter))).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
}

/// Whole days `from..=to` of the site's calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// The last `days` days, today included.
    pub fn last_days(days: u64, tz: Tz) -> Window {
        let to = today(tz);
        Window { from: to.checked_sub_days(Days::new(days.saturating_sub(1))).unwrap_or(to), to }
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The window of equal length just before this one.
    pub fn previous(&self) -> Window {
        let days = Days::new(self.days() as u64);
        Window { from: self.from.checked_sub_days(days).unwrap_or(self.from), to: self.from.pred_opt().unwrap_or(self.from) }
    }

    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take(self.days() as usize)
    }

    /// The first instant of every day, then the instant the window ends.
    pub fn day_starts(&self, tz: Tz) -> Vec<i64> {
        self.from.iter_days().take(self.days() as usize + 1).map(|d| day_start(d, tz)).collect()
    }

    pub fn start_ms(&self, tz: Tz) -> i64 {
        day_start(self.from, tz)
    }

    /// The instant the window ends (the next day's start).
    pub fn end_ms(&self, tz: Tz) -> i64 {
        day_start(self.to.succ_opt().unwrap_or(self.to), tz)
    }
}

/// A date as the API writes it, `YYYY-MM-DD`.
pub fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_local_days_and_the_previous_one_is_just_before() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let w = Window { from: d("2026-03-01"), to: d("2026-03-07") };
        assert_eq!(w.days(), 7);
        assert_eq!(w.previous(), Window { from: d("2026-02-22"), to: d("2026-02-28") });
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(w.start_ms(kolkata), 1_772_303_400_000); // 2026-02-28T18:30:00Z
        assert_eq!(w.day_starts(kolkata).len(), 8);
        // 29 Mar 2026 has 23 hours in London.
        let london: Tz = "Europe/London".parse().unwrap();
        let spring = Window { from: d("2026-03-29"), to: d("2026-03-29") };
        assert_eq!(spring.end_ms(london) - spring.start_ms(london), 23 * 3_600_000);
        assert_eq!(iso(1_772_303_400_123), "2026-02-28T18:30:00.123Z");
        assert_eq!(local(1_772_303_400_123, kolkata), "2026-03-01 00:00:00");
    }
}
