//! RFC 5545 RECUR (`RRULE`) values: parsing, validation and printing.
//!
//! Making RRULE the one rule language inside (ARCHITECTURE.md point 10): the value type, its
//! parser and its canonical printer here; its expansion on the wall clock in
//! [`super::expand`] (RFC 5545's examples and a property test against python-dateutil).
//! A task takes one as `repeats.rrule` ([`super::Recurrence::Rule`]).
//!
//! What is accepted:
//!
//! - `FREQ` = `MINUTELY`, `HOURLY`, `DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`. `SECONDLY` is
//!   refused: a reminder service has no use for it. `FREQ=MINUTELY` needs `INTERVAL` of at
//!   least [`MIN_MINUTELY_INTERVAL`], and `BYMINUTE` minutes that far apart (across the turn of
//!   the hour too, when consecutive hours can be chosen), so a rule cannot ask for a
//!   notification every minute.
//! - `INTERVAL` (1..), `COUNT` (1..), `UNTIL` (a `DATE`, a UTC `DATE-TIME` ending in `Z`, or a
//!   floating `DATE-TIME` read on the task zone's wall clock); `COUNT` and `UNTIL` exclude each
//!   other.
//! - `BYSECOND` is refused (occurrences are due at whole minutes).
//! - `BYMINUTE` 0..=59, `BYHOUR` 0..=23, `BYDAY` with optional ordinal ±1..=53 (±1..=5 with
//!   `FREQ=MONTHLY`; ordinals only with `MONTHLY`/`YEARLY`, and not with `BYWEEKNO`),
//!   `BYMONTHDAY` ±1..=31 (not with `WEEKLY`), `BYYEARDAY` ±1..=366 (only `HOURLY`, `MINUTELY`,
//!   `YEARLY`), `BYWEEKNO` ±1..=53 (only `YEARLY`), `BYMONTH` 1..=12, `BYSETPOS` ±1..=366
//!   (only with another `BYxxx` part), `WKST`.
//! - Part names and values are case-insensitive, an `RRULE:` prefix is allowed, each part may
//!   appear once.
//! - Rules that can never match are refused statically where that is cheap to see: every
//!   `BYMONTHDAY` beyond the length of every `BYMONTH` month (`BYMONTH=2;BYMONTHDAY=30`).
//!
//! Errors name the part and the value (`BYDAY=9XX: ...`). [`Rrule`]'s `Display` prints the
//! canonical form: parts in a fixed order, defaults (`INTERVAL=1`, `WKST=MO`) left out, so
//! `parse(print(r)) == r`.

use std::fmt;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::Timestamp;

/// The smallest `INTERVAL` accepted with `FREQ=MINUTELY`.
pub const MIN_MINUTELY_INTERVAL: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Freq {
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Freq {
    fn name(self) -> &'static str {
        match self {
            Freq::Minutely => "MINUTELY",
            Freq::Hourly => "HOURLY",
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
            Freq::Yearly => "YEARLY",
        }
    }
}

/// `UNTIL`: the last instant an occurrence may fall on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `UNTIL=20261231`: occurrences whose local date is on or before this date.
    Date(Date),
    /// `UNTIL=20261231T235900Z`.
    Utc(Timestamp),
    /// `UNTIL=20261231T235900`: on the task zone's wall clock.
    Local(DateTime),
}

/// How a rule ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Count(u32),
    Until(Until),
}

/// One `BYDAY` entry: a weekday, optionally the nth (negative: from the end) in the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayNum {
    pub ordinal: Option<i8>,
    pub weekday: Weekday,
}

/// A parsed RFC 5545 RECUR value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrule {
    pub freq: Freq,
    pub interval: u32,
    pub end: Option<End>,
    pub by_minute: Vec<i8>,
    pub by_hour: Vec<i8>,
    pub by_day: Vec<WeekdayNum>,
    pub by_month_day: Vec<i8>,
    pub by_year_day: Vec<i16>,
    pub by_week_no: Vec<i8>,
    pub by_month: Vec<i8>,
    pub by_set_pos: Vec<i16>,
    pub wkst: Weekday,
}

/// A refused RRULE: the part, its value (upper-cased, as parts are case-insensitive), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}={value}: {reason}")]
pub struct RruleError {
    pub part: String,
    pub value: String,
    pub reason: String,
}

fn err(part: &str, value: &str, reason: impl Into<String>) -> RruleError {
    RruleError {
        part: part.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("MO", Weekday::Monday),
    ("TU", Weekday::Tuesday),
    ("WE", Weekday::Wednesday),
    ("TH", Weekday::Thursday),
    ("FR", Weekday::Friday),
    ("SA", Weekday::Saturday),
    ("SU", Weekday::Sunday),
];

fn weekday_code(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(_, d)| *d == day)
        .map_or("MO", |(c, _)| c)
}

fn parse_weekday(part: &str, value: &str, code: &str) -> Result<Weekday, RruleError> {
    WEEKDAYS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            err(
                part,
                value,
                format!("'{code}' is not a weekday (MO, TU, WE, TH, FR, SA, SU)"),
            )
        })
}

/// Parses a comma list of integers, each in `lo..=hi` and, when `signed`, not zero.
fn int_list<T>(part: &str, value: &str, lo: i32, hi: i32) -> Result<Vec<T>, RruleError>
where
    T: TryFrom<i32>,
{
    value
        .split(',')
        .map(|item| {
            let n: i32 = item
                .parse()
                .map_err(|_| err(part, value, format!("'{item}' is not an integer")))?;
            if n < lo || n > hi || (lo < 0 && n == 0) {
                let range = if lo < 0 {
                    format!("{lo}..=-1 or 1..={hi}")
                } else {
                    format!("{lo}..={hi}")
                };
                return Err(err(part, value, format!("{n} is outside {range}")));
            }
            T::try_from(n).map_err(|_| err(part, value, format!("{n} is out of range")))
        })
        .collect()
}

fn positive(part: &str, value: &str) -> Result<u32, RruleError> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(err(part, value, "must be a whole number of at least 1")),
    }
}

fn parse_until(value: &str) -> Result<Until, RruleError> {
    let bad = || {
        err(
            "UNTIL",
            value,
            "must be YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ",
        )
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let num = |s: &str| s.parse::<i16>().map_err(|_| bad());
    let (date_part, rest) = value.split_at_checked(value.len().min(8)).ok_or_else(bad)?;
    if date_part.len() != 8 || !digits(date_part) {
        return Err(bad());
    }
    let date = Date::new(
        num(&date_part[..4])?,
        num(&date_part[4..6])? as i8,
        num(&date_part[6..])? as i8,
    )
    .map_err(|e| err("UNTIL", value, format!("not a date: {e}")))?;
    if rest.is_empty() {
        return Ok(Until::Date(date));
    }
    let (time, utc) = match rest.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (rest, false),
    };
    let time = time.strip_prefix('T').ok_or_else(bad)?;
    if time.len() != 6 || !digits(time) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| num(&time[range]).map(|n| n as i8);
    let dt = DateTime::new(
        date.year(),
        date.month(),
        date.day(),
        field(0..2)?,
        field(2..4)?,
        field(4..6)?,
        0,
    )
    .map_err(|_| bad())?;
    if utc {
        let ts = dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| err("UNTIL", value, e.to_string()))?
            .timestamp();
        Ok(Until::Utc(ts))
    } else {
        Ok(Until::Local(dt))
    }
}

impl Rrule {
    /// `FREQ=freq` and nothing else: every period, no `BYxxx` part, no end, `WKST=MO`.
    pub fn every(freq: Freq) -> Rrule {
        Rrule {
            freq,
            interval: 1,
            end: None,
            by_minute: vec![],
            by_hour: vec![],
            by_day: vec![],
            by_month_day: vec![],
            by_year_day: vec![],
            by_week_no: vec![],
            by_month: vec![],
            by_set_pos: vec![],
            wkst: Weekday::Monday,
        }
    }

    /// Parses and validates an RFC 5545 RECUR value such as `FREQ=MONTHLY;BYDAY=2TU`.
    pub fn parse(text: &str) -> Result<Rrule, RruleError> {
        let text = text.trim();
        let body = match text.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("RRULE:") => &text[6..],
            _ => text,
        };
        let upper = body.to_ascii_uppercase();
        let mut seen: Vec<&str> = Vec::new();
        let mut freq = None;
        let mut rule = Rrule::every(Freq::Daily);
        for item in upper.split(';').filter(|p| !p.is_empty()) {
            let (part, value) = item
                .split_once('=')
                .ok_or_else(|| err(item, "", "a rule part is NAME=VALUE"))?;
            if seen.contains(&part) {
                return Err(err(part, value, "given more than once"));
            }
            seen.push(part);
            if value.is_empty() {
                return Err(err(part, value, "empty value"));
            }
            match part {
                "FREQ" => {
                    freq = Some(match value {
                        "MINUTELY" => Freq::Minutely,
                        "HOURLY" => Freq::Hourly,
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        "YEARLY" => Freq::Yearly,
                        "SECONDLY" => {
                            return Err(err(part, value, "not supported; the smallest is MINUTELY"))
                        }
                        _ => {
                            return Err(err(
                                part,
                                value,
                                "must be MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY",
                            ))
                        }
                    })
                }
                "INTERVAL" => rule.interval = positive(part, value)?,
                "COUNT" => rule.end = Some(End::Count(positive(part, value)?)),
                "UNTIL" => rule.end = Some(End::Until(parse_until(value)?)),
                "BYSECOND" => {
                    return Err(err(
                        part,
                        value,
                        "not supported; occurrences are due at whole minutes",
                    ))
                }
                "BYMINUTE" => rule.by_minute = int_list(part, value, 0, 59)?,
                "BYHOUR" => rule.by_hour = int_list(part, value, 0, 23)?,
                "BYDAY" => rule.by_day = parse_by_day(value)?,
                "BYMONTHDAY" => rule.by_month_day = int_list(part, value, -31, 31)?,
                "BYYEARDAY" => rule.by_year_day = int_list(part, value, -366, 366)?,
                "BYWEEKNO" => rule.by_week_no = int_list(part, value, -53, 53)?,
                "BYMONTH" => rule.by_month = int_list(part, value, 1, 12)?,
                "BYSETPOS" => rule.by_set_pos = int_list(part, value, -366, 366)?,
                "WKST" => rule.wkst = parse_weekday(part, value, value)?,
                _ => return Err(err(part, value, "unknown rule part")),
            }
        }
        if seen.contains(&"COUNT") && seen.contains(&"UNTIL") {
            let value = upper
                .split(';')
                .find_map(|p| p.strip_prefix("UNTIL="))
                .unwrap_or("");
            return Err(err("UNTIL", value, "COUNT and UNTIL exclude each other"));
        }
        rule.freq = freq.ok_or_else(|| err("FREQ", "", "FREQ is required"))?;
        rule.validate()?;
        Ok(rule)
    }

    /// Why `BYMINUTE` would fire more often than every [`MIN_MINUTELY_INTERVAL`] minutes of the
    /// wall clock: two of its minutes closer than that within an hour, or across the turn of
    /// the hour when two consecutive hours can both be chosen.
    fn minutes_too_close(&self) -> Option<String> {
        let mut minutes = self.by_minute.clone();
        minutes.sort_unstable();
        minutes.dedup();
        let gap = i8::try_from(MIN_MINUTELY_INTERVAL).unwrap_or(i8::MAX);
        if minutes.windows(2).any(|w| w[1] - w[0] < gap) {
            return Some(format!(
                "minutes less than {MIN_MINUTELY_INTERVAL} apart: a rule fires at most once \
                 every {MIN_MINUTELY_INTERVAL} minutes"
            ));
        }
        let mut hours = self.by_hour.clone();
        hours.sort_unstable();
        hours.dedup();
        let consecutive_hours = if hours.is_empty() {
            self.freq <= Freq::Hourly
        } else {
            hours.windows(2).any(|w| w[1] - w[0] == 1)
                || (hours.first() == Some(&0) && hours.last() == Some(&23))
        };
        match (minutes.first(), minutes.last()) {
            (Some(&first), Some(&last)) if consecutive_hours && first + 60 - last < gap => {
                Some(format!(
                    "minute {last} and minute {first} of the next hour are less than \
                     {MIN_MINUTELY_INTERVAL} minutes apart: a rule fires at most once every \
                     {MIN_MINUTELY_INTERVAL} minutes"
                ))
            }
            _ => None,
        }
    }

    /// The RFC 5545 constraints between parts, and statically impossible rules.
    fn validate(&self) -> Result<(), RruleError> {
        let list = |v: &[String]| v.join(",");
        let freq = self.freq;
        if freq == Freq::Minutely && self.interval < MIN_MINUTELY_INTERVAL {
            return Err(err(
                "INTERVAL",
                &self.interval.to_string(),
                format!("FREQ=MINUTELY needs INTERVAL of at least {MIN_MINUTELY_INTERVAL}"),
            ));
        }
        if let Some(reason) = self.minutes_too_close() {
            let v = list(&self.by_minute.iter().map(i8::to_string).collect::<Vec<_>>());
            return Err(err("BYMINUTE", &v, reason));
        }
        let by_day = self
            .by_day
            .iter()
            .map(print_weekday_num)
            .collect::<Vec<_>>()
            .join(",");
        if self.by_day.iter().any(|d| d.ordinal.is_some()) {
            let max = match freq {
                Freq::Monthly => 5,
                Freq::Yearly if self.by_week_no.is_empty() => 53,
                Freq::Yearly => {
                    return Err(err(
                        "BYDAY",
                        &by_day,
                        "ordinals are not allowed with BYWEEKNO",
                    ))
                }
                _ => {
                    return Err(err(
                        "BYDAY",
                        &by_day,
                        "ordinals need FREQ=MONTHLY or FREQ=YEARLY",
                    ))
                }
            };
            if let Some(d) = self
                .by_day
                .iter()
                .find(|d| d.ordinal.is_some_and(|n| n.abs() > max))
            {
                let bad = print_weekday_num(d);
                return Err(err(
                    "BYDAY",
                    &by_day,
                    format!("{bad}: ordinal must be within ±{max}"),
                ));
            }
        }
        let nums = |v: &[i8]| list(&v.iter().map(i8::to_string).collect::<Vec<_>>());
        if !self.by_month_day.is_empty() && freq == Freq::Weekly {
            return Err(err(
                "BYMONTHDAY",
                &nums(&self.by_month_day),
                "not allowed with FREQ=WEEKLY",
            ));
        }
        if !self.by_year_day.is_empty()
            && matches!(freq, Freq::Daily | Freq::Weekly | Freq::Monthly)
        {
            let v = list(
                &self
                    .by_year_day
                    .iter()
                    .map(i16::to_string)
                    .collect::<Vec<_>>(),
            );
            return Err(err(
                "BYYEARDAY",
                &v,
                format!("not allowed with FREQ={}", freq.name()),
            ));
        }
        if !self.by_week_no.is_empty() && freq != Freq::Yearly {
            return Err(err(
                "BYWEEKNO",
                &nums(&self.by_week_no),
                "needs FREQ=YEARLY",
            ));
        }
        let others = !(self.by_minute.is_empty()
            && self.by_hour.is_empty()
            && self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_year_day.is_empty()
            && self.by_week_no.is_empty()
            && self.by_month.is_empty());
        if !self.by_set_pos.is_empty() && !others {
            let v = list(
                &self
                    .by_set_pos
                    .iter()
                    .map(i16::to_string)
                    .collect::<Vec<_>>(),
            );
            return Err(err(
                "BYSETPOS",
                &v,
                "needs another BYxxx part to select from",
            ));
        }
        if !self.by_month.is_empty() && !self.by_month_day.is_empty() {
            // The longest each month can be (February: 29).
            let longest = |m: i8| match m {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let possible = self.by_month.iter().any(|&m| {
                self.by_month_day
                    .iter()
                    .any(|&d| d.unsigned_abs() <= longest(m))
            });
            if !possible {
                return Err(err(
                    "BYMONTHDAY",
                    &nums(&self.by_month_day),
                    format!(
                        "no month in BYMONTH={} has such a day; the rule never matches",
                        nums(&self.by_month)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn parse_by_day(value: &str) -> Result<Vec<WeekdayNum>, RruleError> {
    value
        .split(',')
        .map(|item| {
            // The last two characters are the weekday; a cut inside a character (`éO`)
            // leaves no weekday code to read.
            let split = item.len().saturating_sub(2);
            let Some((ord, code)) = item.split_at_checked(split) else {
                return Err(err(
                    "BYDAY",
                    value,
                    format!("'{item}' does not end in a weekday code (MO to SU)"),
                ));
            };
            let weekday = parse_weekday("BYDAY", value, code)?;
            let ordinal = if ord.is_empty() {
                None
            } else {
                match ord.parse::<i8>() {
                    Ok(n) if n != 0 && n.abs() <= 53 => Some(n),
                    _ => {
                        return Err(err(
                            "BYDAY",
                            value,
                            format!("'{ord}' in '{item}' is not an ordinal within ±53"),
                        ))
                    }
                }
            };
            Ok(WeekdayNum { ordinal, weekday })
        })
        .collect()
}

fn print_weekday_num(d: &WeekdayNum) -> String {
    match d.ordinal {
        Some(n) => format!("{n}{}", weekday_code(d.weekday)),
        None => weekday_code(d.weekday).to_owned(),
    }
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Rrule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FREQ={}", self.freq.name())?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        match self.end {
            None => {}
            Some(End::Count(n)) => write!(f, ";COUNT={n}")?,
            Some(End::Until(Until::Date(d))) => write!(f, ";UNTIL={}", d.strftime("%Y%m%d"))?,
            Some(End::Until(Until::Local(d))) => {
                write!(f, ";UNTIL={}", d.strftime("%Y%m%dT%H%M%S"))?
            }
            Some(End::Until(Until::Utc(t))) => {
                write!(f, ";UNTIL={}", t.strftime("%Y%m%dT%H%M%SZ"))?
            }
        }
        let parts: [(&str, String); 9] = [
            ("BYMONTH", join(&self.by_month)),
            ("BYWEEKNO", join(&self.by_week_no)),
            ("BYYEARDAY", join(&self.by_year_day)),
            ("BYMONTHDAY", join(&self.by_month_day)),
            (
                "BYDAY",
                self.by_day
                    .iter()
                    .map(print_weekday_num)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("BYHOUR", join(&self.by_hour)),
            ("BYMINUTE", join(&self.by_minute)),
            ("BYSETPOS", join(&self.by_set_pos)),
            (
                "WKST",
                if self.wkst == Weekday::Monday {
                    String::new()
                } else {
                    weekday_code(self.wkst).to_owned()
                },
            ),
        ];
        for (name, value) in parts.iter().filter(|(_, v)| !v.is_empty()) {
            write!(f, ";{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "rrule_tests.rs"]
mod tests;
