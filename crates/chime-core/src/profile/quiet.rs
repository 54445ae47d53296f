//! Quiet hours: when an external delivery (push, SMS, email) due inside them waits until they
//! end. Never dropped, only deferred.
//!
//! A window starts on each of its weekdays at `from` on the user's wall clock and ends at `to`
//! the same day, or the next day when `to` is not after `from` (22:00-07:00 crosses midnight).
//! Windows that overlap or touch are one quiet period: an instant inside it waits until the
//! period's last end. Local times are resolved as recurrence resolves them: a wall time in a
//! DST gap is shifted forward by the gap (a window ending at 02:30 on the night the clocks
//! jump from 02:00 to 03:00 ends at 03:30), a repeated wall time is its first instant.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::{weekday, weekday_name, QuietWindowFields};

/// One window: starts on `days` at `from`, ends at `to` (the next day when not after `from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuietWindow {
    days: Vec<Weekday>,
    from: Time,
    to: Time,
}

impl QuietWindow {
    /// Days are sorted Monday first, duplicates dropped. `from == to` is refused: it would be
    /// either nothing or a whole day, and the user should say which.
    pub fn new(mut days: Vec<Weekday>, from: Time, to: Time) -> Result<Self, String> {
        if from == to {
            return Err(
                "`from` and `to` are the same time: a window needs a length (for a whole day, \
                 use 00:00 to 23:59 on that day)"
                    .into(),
            );
        }
        days.sort_by_key(|d| d.to_monday_zero_offset());
        days.dedup();
        Ok(Self { days, from, to })
    }

    pub(super) fn fields(&self) -> QuietWindowFields {
        let hm = |t: Time| format!("{:02}:{:02}", t.hour(), t.minute());
        QuietWindowFields {
            days: self
                .days
                .iter()
                .map(|d| weekday_name(*d).to_owned())
                .collect(),
            from: hm(self.from),
            to: hm(self.to),
        }
    }

    pub(super) fn from_fields(fields: &QuietWindowFields) -> Result<Self, String> {
        let days = fields
            .days
            .iter()
            .map(|d| weekday(d).ok_or_else(|| format!("unknown weekday `{d}`")))
            .collect::<Result<Vec<_>, _>>()?;
        let time = |s: &str| super::clock_time(s).ok_or_else(|| format!("bad time `{s}`"));
        Self::new(days, time(&fields.from)?, time(&fields.to)?)
    }

    /// The instants this window covers when it starts on local `date` (`None` when it does not
    /// start on that weekday).
    fn on(&self, date: Date, tz: &TimeZone) -> Option<(Timestamp, Timestamp)> {
        if !self.days.contains(&date.weekday()) {
            return None;
        }
        let end_date = if self.to > self.from {
            date
        } else {
            date.checked_add(1.day()).ok()?
        };
        Some((local(date, self.from, tz)?, local(end_date, self.to, tz)?))
    }
}

/// A wall time on `tz`, as recurrence resolves it: forward across a gap, first of a fold.
fn local(date: Date, time: Time, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(date.to_datetime(time))
        .compatible()
        .ok()
}

/// A user's quiet hours: any number of windows (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuietHours {
    windows: Vec<QuietWindow>,
}

/// How many chained windows [`QuietHours::until`] follows before it gives up deferring: a
/// profile that is quiet around the clock defers by at most this many windows (a week of them
/// and more), never forever.
const MAX_CHAIN: usize = 64;

impl QuietHours {
    pub fn new(windows: Vec<QuietWindow>) -> Self {
        Self { windows }
    }

    pub fn windows(&self) -> &[QuietWindow] {
        &self.windows
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// When a delivery due at `at` may go out: `None` if `at` is outside every window, else
    /// the end of the quiet period around it (windows that overlap or touch chained).
    pub fn until(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut end = self.containing(at, tz)?;
        for _ in 0..MAX_CHAIN {
            match self.containing(end, tz) {
                Some(later) if later > end => end = later,
                _ => break,
            }
        }
        Some(end)
    }

    /// The latest end of the windows that contain `at` (start inclusive, end exclusive).
    fn containing(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let today = tz.to_datetime(at).date();
        // A window reaches at most into the day after it starts.
        let days = [today.checked_sub(1.day()).ok(), Some(today)];
        days.into_iter()
            .flatten()
            .flat_map(|date| self.windows.iter().filter_map(move |w| w.on(date, tz)))
            .filter(|(start, end)| *start <= at && at < *end)
            .map(|(_, end)| end)
            .max()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use jiff::civil::time;

    use super::*;

    const EVERY_DAY: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    fn nights(from: Time, to: Time) -> QuietHours {
        QuietHours::new(vec![QuietWindow::new(EVERY_DAY.to_vec(), from, to).unwrap()])
    }

    /// `at` given and the answer shown on the zone's wall clock, as `YYYY-MM-DDTHH:MM`.
    fn until(quiet: &QuietHours, zone: &str, at: &str) -> Option<String> {
        let tz = TimeZone::get(zone).unwrap();
        let at = tz
            .to_ambiguous_timestamp(at.parse().unwrap())
            .compatible()
            .unwrap();
        quiet
            .until(at, &tz)
            .map(|t| tz.to_datetime(t).strftime("%Y-%m-%dT%H:%M").to_string())
    }

    #[test]
    fn a_night_window_defers_across_midnight_to_its_end() {
        let quiet = nights(time(22, 0, 0, 0), time(7, 0, 0, 0));
        let berlin = "Europe/Berlin";
        assert_eq!(
            until(&quiet, berlin, "2026-03-10T23:30"),
            Some("2026-03-11T07:00".into())
        );
        assert_eq!(
            until(&quiet, berlin, "2026-03-11T06:59"),
            Some("2026-03-11T07:00".into())
        );
        assert_eq!(
            until(&quiet, berlin, "2026-03-10T22:00"),
            Some("2026-03-11T07:00".into())
        );
        assert_eq!(until(&quiet, berlin, "2026-03-11T07:00"), None);
        assert_eq!(until(&quiet, berlin, "2026-03-10T21:59"), None);
        assert_eq!(until(&quiet, berlin, "2026-03-10T12:00"), None);
    }

    #[test]
    fn weekends_can_end_later_and_windows_chain() {
        let weekdays = QuietWindow::new(
            EVERY_DAY[..4].to_vec(), // Monday to Thursday nights
            time(22, 0, 0, 0),
            time(7, 0, 0, 0),
        )
        .unwrap();
        let weekend_nights = QuietWindow::new(
            EVERY_DAY[4..].to_vec(), // Friday to Sunday nights
            time(23, 0, 0, 0),
            time(9, 0, 0, 0),
        )
        .unwrap();
        let saturday_morning = QuietWindow::new(
            vec![Weekday::Saturday],
            time(8, 30, 0, 0),
            time(11, 0, 0, 0),
        )
        .unwrap();
        let quiet = QuietHours::new(vec![weekdays, weekend_nights, saturday_morning]);
        let zone = "America/New_York";
        // 2026-12-04 is a Friday: its night ends at 09:00 Saturday, then the morning window
        // it overlaps carries on to 11:00.
        assert_eq!(
            until(&quiet, zone, "2026-12-04T23:15"),
            Some("2026-12-05T11:00".into())
        );
        // Thursday night ends at 07:00 Friday.
        assert_eq!(
            until(&quiet, zone, "2026-12-03T22:30"),
            Some("2026-12-04T07:00".into())
        );
        // Friday 22:30 is not quiet: the weekend window starts at 23:00.
        assert_eq!(until(&quiet, zone, "2026-12-04T22:30"), None);
    }

    #[test]
    fn across_dst_changes_the_window_keeps_its_wall_clock() {
        let quiet = nights(time(22, 0, 0, 0), time(7, 0, 0, 0));
        // Berlin springs forward on 2026-03-29 (02:00 → 03:00) and falls back on 2026-10-25.
        let berlin = "Europe/Berlin";
        assert_eq!(
            until(&quiet, berlin, "2026-03-28T23:00"),
            Some("2026-03-29T07:00".into())
        );
        assert_eq!(
            until(&quiet, berlin, "2026-10-24T23:00"),
            Some("2026-10-25T07:00".into())
        );
        // New York: 2026-03-08 and 2026-11-01.
        assert_eq!(
            until(&quiet, "America/New_York", "2026-11-01T01:30"),
            Some("2026-11-01T07:00".into())
        );
    }

    #[test]
    fn an_end_inside_a_dst_gap_moves_forward_by_the_gap() {
        let quiet = nights(time(23, 0, 0, 0), time(2, 30, 0, 0));
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let at: Timestamp = "2026-03-28T23:30:00+01:00".parse().unwrap();
        // 02:30 does not exist on 2026-03-29; it is read as 03:30 CEST (01:30 UTC).
        assert_eq!(
            quiet.until(at, &tz),
            Some("2026-03-29T01:30:00Z".parse().unwrap())
        );
        // Lord Howe shifts by 30 minutes: 02:00 → 02:30 on 2026-10-04.
        let quiet = nights(time(22, 0, 0, 0), time(2, 15, 0, 0));
        let tz = TimeZone::get("Australia/Lord_Howe").unwrap();
        let at: Timestamp = "2026-10-03T23:00:00+10:30".parse().unwrap();
        assert_eq!(
            quiet.until(at, &tz),
            Some("2026-10-03T15:45:00Z".parse().unwrap())
        );
    }

    #[test]
    fn quiet_around_the_clock_defers_a_bounded_time() {
        let quiet = nights(time(0, 0, 0, 0), time(23, 59, 0, 0));
        let mut with_gap = quiet.clone();
        with_gap.windows.push(
            QuietWindow::new(EVERY_DAY.to_vec(), time(23, 59, 0, 0), time(0, 0, 0, 0)).unwrap(),
        );
        let tz = TimeZone::UTC;
        let at: Timestamp = "2026-12-05T12:00:00Z".parse().unwrap();
        assert_eq!(
            quiet.until(at, &tz),
            Some("2026-12-05T23:59:00Z".parse().unwrap())
        );
        let end = with_gap.until(at, &tz).unwrap();
        assert!(end > at && end < at + jiff::SignedDuration::from_hours(24 * 40));
    }
}
