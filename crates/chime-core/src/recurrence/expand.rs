//! Expanding an RFC 5545 rule ([`Rrule`]) from its start, on the task zone's wall clock.
//!
//! The rule is evaluated on local (civil) date-times, as RFC 5545 evaluates a `DTSTART` with a
//! `TZID`: each period of `FREQ` × `INTERVAL` (a year, a month, a week starting on `WKST`, a
//! day, an hour or a minute, counted from the start's) yields the date-times its `BYxxx` parts
//! select, as RFC 5545's table says (`BYMONTH`, `BYWEEKNO`, `BYYEARDAY`, `BYMONTHDAY`, `BYDAY`
//! expand or limit the period's days, `BYHOUR` and `BYMINUTE` its times), then `BYSETPOS`
//! picks among the period's set. Occurrences are those at or after the start, until `UNTIL`
//! or `COUNT` of them. Dates a month does not have (the 30th of February) are never
//! generated, so they are skipped and not counted.
//!
//! Defaults are RFC 5545's, as python-dateutil applies them (the property test's oracle):
//! without any of `BYWEEKNO`, `BYYEARDAY`, `BYMONTHDAY`, `BYDAY`, a yearly rule falls on the
//! start's month (unless `BYMONTH`) and day, a monthly one on the start's day of month, a
//! weekly one on the start's weekday; `BYHOUR` defaults to the start's hour (rules coarser than
//! hourly), `BYMINUTE` to the start's minute (coarser than minutely); the second is always the
//! start's.
//!
//! **Bounded.** A rule that never matches again (`FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO`
//! matches every 28 years or so; `BYMONTHDAY=31;BYMONTH=4` never, but the parser refuses that
//! one) ends once 400 years of periods (a whole Gregorian cycle) have passed without an
//! occurrence, or after [`SCAN_BUDGET`] periods without one, whichever comes first: so a call
//! for the next occurrence answers in milliseconds, with what the rule has. Sub-daily rules
//! skip whole days their day parts refuse in one step.

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;

use super::rrule::{End, Freq, Rrule, Until};

/// Most periods looked at in a row without finding an occurrence.
pub const SCAN_BUDGET: u64 = 200_000;

/// Days in a 400-year Gregorian cycle: the horizon of a rule without matches.
const CYCLE_DAYS: i64 = 146_097;

/// The rule's parts with RFC 5545's defaults filled in from the start.
#[derive(Debug, Clone)]
struct Parts {
    freq: Freq,
    interval: i64,
    months: Vec<i8>,
    week_nos: Vec<i8>,
    year_days: Vec<i16>,
    month_days: Vec<i8>,
    /// Weekdays without an ordinal.
    weekdays: Vec<Weekday>,
    /// `(ordinal, weekday)` pairs.
    nth_weekdays: Vec<(i8, Weekday)>,
    hours: Vec<i8>,
    minutes: Vec<i8>,
    set_pos: Vec<i16>,
    wkst: Weekday,
}

impl Parts {
    fn of(rule: &Rrule, start: DateTime) -> Parts {
        let mut parts = Parts {
            freq: rule.freq,
            interval: i64::from(rule.interval.max(1)),
            months: rule.by_month.clone(),
            week_nos: rule.by_week_no.clone(),
            year_days: rule.by_year_day.clone(),
            month_days: rule.by_month_day.clone(),
            weekdays: rule
                .by_day
                .iter()
                .filter(|d| d.ordinal.is_none())
                .map(|d| d.weekday)
                .collect(),
            nth_weekdays: rule
                .by_day
                .iter()
                .filter_map(|d| d.ordinal.map(|n| (n, d.weekday)))
                .collect(),
            hours: rule.by_hour.clone(),
            minutes: rule.by_minute.clone(),
            set_pos: rule.by_set_pos.clone(),
            wkst: rule.wkst,
        };
        let no_day_parts = parts.week_nos.is_empty()
            && parts.year_days.is_empty()
            && parts.month_days.is_empty()
            && rule.by_day.is_empty();
        if no_day_parts {
            match parts.freq {
                Freq::Yearly => {
                    if parts.months.is_empty() {
                        parts.months = vec![start.month()];
                    }
                    parts.month_days = vec![start.day()];
                }
                Freq::Monthly => parts.month_days = vec![start.day()],
                Freq::Weekly => parts.weekdays = vec![start.weekday()],
                _ => {}
            }
        }
        if parts.hours.is_empty() && parts.freq > Freq::Hourly {
            parts.hours = vec![start.hour()];
        }
        if parts.minutes.is_empty() && parts.freq > Freq::Minutely {
            parts.minutes = vec![start.minute()];
        }
        parts.hours.sort_unstable();
        parts.hours.dedup();
        parts.minutes.sort_unstable();
        parts.minutes.dedup();
        parts
    }

    /// Whether the day parts let `date` through (in a period of the rule's frequency).
    fn day_matches(&self, date: Date) -> bool {
        if !self.months.is_empty() && !self.months.contains(&date.month()) {
            return false;
        }
        if !self.week_nos.is_empty() && !self.week_no_matches(date) {
            return false;
        }
        let year_days = self.year_days.iter().copied();
        if !self.year_days.is_empty() && !nth(year_days, date.day_of_year(), date.days_in_year()) {
            return false;
        }
        let month_days = self.month_days.iter().map(|&n| i16::from(n));
        if !self.month_days.is_empty()
            && !nth(
                month_days,
                i16::from(date.day()),
                i16::from(date.days_in_month()),
            )
        {
            return false;
        }
        if !self.weekdays.is_empty() || !self.nth_weekdays.is_empty() {
            let weekday = date.weekday();
            let plain = self.weekdays.contains(&weekday);
            let nth = !plain
                && self.nth_weekdays.iter().any(|&(n, w)| {
                    w == weekday && {
                        // Within the month for a monthly rule or a yearly one with BYMONTH,
                        // else within the year.
                        let (index, len) = if self.freq == Freq::Monthly
                            || (self.freq == Freq::Yearly && !self.months.is_empty())
                        {
                            (i16::from(date.day()), i16::from(date.days_in_month()))
                        } else {
                            (date.day_of_year(), date.days_in_year())
                        };
                        let from_start = (index - 1) / 7 + 1;
                        let from_end = -((len - index) / 7 + 1);
                        i16::from(n) == from_start || i16::from(n) == from_end
                    }
                });
            if !plain && !nth {
                return false;
            }
        }
        true
    }

    /// `BYWEEKNO`: weeks start on `WKST`; week 1 of a year is the first with at least four of
    /// its days in that year; negative numbers count from the year's last week.
    fn week_no_matches(&self, date: Date) -> bool {
        let (_, week, weeks) = week_of(date, self.wkst);
        self.week_nos
            .iter()
            .any(|&n| i16::from(n) == week || i16::from(n) == week - weeks - 1)
    }
}

/// Whether the `index`th of `len` (1-based) is one of `list`, counted from the start
/// (positive) or from the end (negative: -1 is the last).
fn nth(mut list: impl Iterator<Item = i16>, index: i16, len: i16) -> bool {
    list.any(|n| n == index || n == index - len - 1)
}

/// The first day of week 1 of `year`, weeks starting on `wkst`.
fn week_one(year: i16, wkst: Weekday) -> Date {
    let jan1 = Date::new(year, 1, 1).expect("January 1 exists");
    let offset = i64::from(jan1.weekday().since(wkst));
    let back = jan1 - jiff::Span::new().days(offset);
    if 7 - offset >= 4 {
        back
    } else {
        back + jiff::Span::new().days(7)
    }
}

/// The week-numbering year, week number and number of weeks of that year, of `date`.
fn week_of(date: Date, wkst: Weekday) -> (i16, i16, i16) {
    let year = date.year();
    let weeks_in = |y: i16| -> i16 {
        let (this, next) = (week_one(y, wkst), week_one(y + 1, wkst));
        (days_between(this, next) / 7) as i16
    };
    let start = week_one(year, wkst);
    if date < start {
        let prev = week_one(year - 1, wkst);
        let weeks = weeks_in(year - 1);
        return (year - 1, (days_between(prev, date) / 7 + 1) as i16, weeks);
    }
    let next = week_one(year + 1, wkst);
    if date >= next {
        return (year + 1, 1, weeks_in(year + 1));
    }
    (
        year,
        (days_between(start, date) / 7 + 1) as i16,
        weeks_in(year),
    )
}

fn days_between(a: Date, b: Date) -> i64 {
    epoch_day(b) - epoch_day(a)
}

fn epoch_day(date: Date) -> i64 {
    super::epoch_day(date)
}

fn date_of(epoch_day: i64) -> Option<Date> {
    let (y, m, d) = super::civil_from_days(epoch_day);
    Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
}

/// The local date-times of a rule from its start, in order: see the module's documentation.
#[derive(Debug, Clone)]
pub struct Expansion {
    parts: Parts,
    start: DateTime,
    end: Option<End>,
    zone: TimeZone,
    /// The next period to look at, counted from the start's.
    period: i64,
    /// The current period's occurrences not yet returned.
    pending: std::collections::VecDeque<DateTime>,
    emitted: u32,
    /// The latest occurrence returned (or the start): the horizon counts from it.
    last: DateTime,
    done: bool,
}

impl Rrule {
    /// The rule's occurrences from `start` (the `DTSTART`, a local date-time in `zone`), as
    /// local date-times in order. `zone` only serves a `UTC` `UNTIL`.
    pub fn expand(&self, start: DateTime, zone: &TimeZone) -> Expansion {
        Expansion {
            parts: Parts::of(self, start),
            start,
            end: self.end,
            zone: zone.clone(),
            period: 0,
            pending: Default::default(),
            emitted: 0,
            last: start,
            done: false,
        }
    }
}

impl Rrule {
    /// The rule's occurrences from `start`, beginning at the period a little before `near`
    /// (earlier ones may be skipped, none at or after `near` is), with `COUNT` left to the
    /// caller, who alone knows how many came before: how a schedule continues after an
    /// occurrence without expanding from the start again.
    pub fn expand_near(&self, start: DateTime, zone: &TimeZone, near: DateTime) -> Expansion {
        let mut expansion = self.expand(start, zone);
        if let Some(End::Count(_)) = expansion.end {
            expansion.end = None;
        }
        if near > start {
            expansion.period = (expansion.period_of(near) - 1).max(0);
            expansion.last = near;
        }
        expansion
    }
}

impl Expansion {
    /// The period holding the local date-time `at` (negative before the start's).
    fn period_of(&self, at: DateTime) -> i64 {
        let start = self.start.date();
        let interval = self.parts.interval;
        match self.parts.freq {
            Freq::Yearly => i64::from(at.year() - start.year()).div_euclid(interval),
            Freq::Monthly => {
                let months = |d: Date| i64::from(d.year()) * 12 + i64::from(d.month());
                (months(at.date()) - months(start)).div_euclid(interval)
            }
            Freq::Weekly => {
                let week_start =
                    epoch_day(start) - i64::from(start.weekday().since(self.parts.wkst));
                (epoch_day(at.date()) - week_start).div_euclid(7 * interval)
            }
            Freq::Daily => days_between(start, at.date()).div_euclid(interval),
            Freq::Hourly | Freq::Minutely => {
                let minute = epoch_day(at.date()) * 1440
                    + i64::from(at.hour()) * 60
                    + i64::from(at.minute());
                let step = self.period_minute(1) - self.period_minute(0);
                (minute - self.period_minute(0)).div_euclid(step)
            }
        }
    }

    fn past_until(&self, at: DateTime) -> bool {
        match self.end {
            Some(End::Until(Until::Date(d))) => at.date() > d,
            Some(End::Until(Until::Local(t))) => at > t,
            Some(End::Until(Until::Utc(t))) => self
                .zone
                .to_ambiguous_zoned(at)
                .compatible()
                .is_ok_and(|z| z.timestamp() > t),
            _ => false,
        }
    }

    /// The period `k`'s first day, and the span of days it covers (1 for sub-daily ones).
    fn period_days(&self, k: i64) -> Option<(i64, i64)> {
        let start = self.start.date();
        let step = self.parts.interval * k;
        Some(match self.parts.freq {
            Freq::Yearly => {
                let year = i64::from(start.year()) + step;
                let first = Date::new(i16::try_from(year).ok()?, 1, 1).ok()?;
                (epoch_day(first), i64::from(first.days_in_year()))
            }
            Freq::Monthly => {
                let index = i64::from(start.year()) * 12 + i64::from(start.month()) - 1 + step;
                let first = Date::new(
                    i16::try_from(index.div_euclid(12)).ok()?,
                    (index.rem_euclid(12) + 1) as i8,
                    1,
                )
                .ok()?;
                (epoch_day(first), i64::from(first.days_in_month()))
            }
            Freq::Weekly => {
                let back = i64::from(start.weekday().since(self.parts.wkst));
                (epoch_day(start) - back + 7 * step, 7)
            }
            Freq::Daily => (epoch_day(start) + step, 1),
            // Sub-daily periods are minutes (`period_minute`), never days.
            Freq::Hourly | Freq::Minutely => return None,
        })
    }

    /// The occurrences of period `k` of a daily-or-coarser rule, sorted, before `BYSETPOS`.
    fn day_period(&self, k: i64) -> Option<Vec<DateTime>> {
        let (first, len) = self.period_days(k)?;
        let mut out = Vec::new();
        for day in first..first + len {
            let date = date_of(day)?;
            if !self.parts.day_matches(date) {
                continue;
            }
            for &hour in &self.parts.hours {
                for &minute in &self.parts.minutes {
                    let time = Time::new(hour, minute, self.start.second(), 0).ok()?;
                    out.push(date.to_datetime(time));
                }
            }
        }
        Some(out)
    }

    /// Sub-daily rules: the minute (since the epoch's midnight) of period `k`.
    fn period_minute(&self, k: i64) -> i64 {
        let step = match self.parts.freq {
            Freq::Hourly => 60 * self.parts.interval,
            _ => self.parts.interval,
        };
        let start_minute = epoch_day(self.start.date()) * 1440
            + i64::from(self.start.hour()) * 60
            + match self.parts.freq {
                // An hourly rule's periods are whole hours; BYMINUTE picks inside them.
                Freq::Hourly => 0,
                _ => i64::from(self.start.minute()),
            };
        start_minute + step * k
    }

    /// The occurrences of period `k` of a sub-daily rule, and the next period worth looking at
    /// (past whole days the day parts refuse).
    fn minute_period(&self, k: i64) -> Option<(Vec<DateTime>, i64)> {
        let minute = self.period_minute(k);
        let date = date_of(minute.div_euclid(1440))?;
        let of_day = minute.rem_euclid(1440);
        let step = self.period_minute(k + 1) - minute;
        if !self.parts.day_matches(date) {
            // Jump to the first period on a later day.
            let to_midnight = 1440 - of_day;
            let skip = (to_midnight + step - 1) / step;
            return Some((Vec::new(), k + skip.max(1)));
        }
        let hour = (of_day / 60) as i8;
        if !self.parts.hours.is_empty() && !self.parts.hours.contains(&hour) {
            return Some((Vec::new(), k + 1));
        }
        let mut out = Vec::new();
        match self.parts.freq {
            Freq::Hourly => {
                let minutes: Vec<i8> = if self.parts.minutes.is_empty() {
                    vec![self.start.minute()]
                } else {
                    self.parts.minutes.clone()
                };
                for m in minutes {
                    let time = Time::new(hour, m, self.start.second(), 0).ok()?;
                    out.push(date.to_datetime(time));
                }
            }
            _ => {
                let m = (of_day % 60) as i8;
                if self.parts.minutes.is_empty() || self.parts.minutes.contains(&m) {
                    let time = Time::new(hour, m, self.start.second(), 0).ok()?;
                    out.push(date.to_datetime(time));
                }
            }
        }
        Some((out, k + 1))
    }

    /// `BYSETPOS` over a period's sorted set.
    fn select(&self, set: Vec<DateTime>) -> Vec<DateTime> {
        if self.parts.set_pos.is_empty() || set.is_empty() {
            return set;
        }
        let len = set.len() as i64;
        let picked: BTreeSet<DateTime> = self
            .parts
            .set_pos
            .iter()
            .filter_map(|&p| {
                let p = i64::from(p);
                let index = if p > 0 { p - 1 } else { len + p };
                (0..len).contains(&index).then(|| set[index as usize])
            })
            .collect();
        picked.into_iter().collect()
    }

    /// Fills `pending` with the next period that has occurrences; false when there are none.
    fn refill(&mut self) -> bool {
        let mut scanned = 0u64;
        let horizon = epoch_day(self.last.date()) + CYCLE_DAYS;
        loop {
            let (set, next) = match self.parts.freq {
                Freq::Hourly | Freq::Minutely => match self.minute_period(self.period) {
                    Some(found) => found,
                    None => return false,
                },
                _ => match self.day_period(self.period) {
                    Some(set) => (set, self.period + 1),
                    None => return false,
                },
            };
            let first_day = match self.parts.freq {
                Freq::Hourly | Freq::Minutely => self.period_minute(self.period).div_euclid(1440),
                _ => match self.period_days(self.period) {
                    Some((first, _)) => first,
                    None => return false,
                },
            };
            self.period = next;
            let mut set = self.select(set);
            set.retain(|at| *at >= self.start);
            set.sort_unstable();
            set.dedup();
            if !set.is_empty() {
                self.pending.extend(set);
                return true;
            }
            scanned += 1;
            if scanned >= SCAN_BUDGET || first_day > horizon {
                return false;
            }
        }
    }
}

impl Iterator for Expansion {
    type Item = DateTime;

    fn next(&mut self) -> Option<DateTime> {
        if self.done {
            return None;
        }
        if let Some(End::Count(n)) = self.end {
            if self.emitted >= n {
                self.done = true;
                return None;
            }
        }
        if self.pending.is_empty() && !self.refill() {
            self.done = true;
            return None;
        }
        let at = self.pending.pop_front()?;
        if self.past_until(at) {
            self.done = true;
            return None;
        }
        self.emitted += 1;
        self.last = at;
        Some(at)
    }
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
