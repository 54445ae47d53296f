//! Quick add: one line of English read into a task body, with what was understood said back,
//! so that a person sees the interpretation (and the preview its next occurrences) before
//! saving. It refuses what it cannot read exactly rather than guess.
//!
//! A line is the reminder's text followed by when: the first position from which the rest of
//! the line reads as a whole time expression splits the two (`Call mom tomorrow at 9`: "Call
//! mom", tomorrow 09:00). A leading "remind me to" is dropped. The grammar, on words in any
//! case (commas and "and" separate lists):
//!
//! - **Once.** `in N minutes|hours|days|weeks` (`min`, `mins`, `h`, `hr` too); a day —
//!   `today`, `tonight` (20:00 unless a time is given), `tomorrow`, `[on] WEEKDAY` (the next
//!   one; today's if its time is still to come), `next WEEKDAY` (the one in next week),
//!   `[on] MONTH DAY [YEAR]`, `[on] DAY MONTH [YEAR]`, `YYYY-MM-DD` — with a time before or
//!   after it.
//! - **Times.** `at 9`, `9am`, `9 pm`, `9:30`, `21:00`, `noon`, `midnight`; without one, 09:00.
//! - **Repeating** (`every` or `each`): `day` / `daily`, `N days`, `weekday(s)`, `weekend(s)`,
//!   `[other] WEEKDAY[, WEEKDAY and WEEKDAY]` (also plural `mondays`), `week` / `weekly` /
//!   `N weeks` `[on WEEKDAYS]`, `month` / `monthly` `[on the 15th]`, `N months`,
//!   `year` / `yearly` / `annually` `[on MONTH DAY]`, `N hours` (`hourly`), `N minutes`
//!   (at least 5); and `[on] the ORDINAL WEEKDAY of each|every month`, `[on] the last
//!   day|weekday|WEEKDAY of each|every month`, `[on] the DAY(st|nd|rd|th) of each|every month`.
//!   Then optionally a time, and an end: `until DATE` or `until MONTH` (the end of the month
//!   before), `for N times` / `N times`.
//!
//! The body repeats by an RFC 5545 rule (`repeats.rrule`) that starts at its first occurrence
//! (found with an interval of 1, so "every other Friday" begins with the coming Friday); the
//! task API checks it as any other body.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::{Span, Timestamp};
use serde_json::{json, Value};

use crate::recurrence::TaskZone;

/// A line read: the task body to create, and what was understood, for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct QuickAdd {
    /// The design's body: `name`, `startDate` (RFC 3339 with the zone's offset), `timeZone`,
    /// and `repeats.rrule` for a repeating reminder.
    pub body: Value,
    /// "Every other Friday at 09:00", "Once, Tue 8 Dec 2026 at 09:00".
    pub understood: String,
}

/// Why a line was not read, for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuickError(pub String);

/// Reads `text` on `zone`'s wall clock at `now`.
pub fn quick_add(text: &str, now: Timestamp, zone: &TaskZone) -> Result<QuickAdd, QuickError> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let lower: Vec<String> = words
        .iter()
        .map(|w| {
            w.to_lowercase()
                .trim_end_matches(['.', '!', '?'])
                .to_owned()
        })
        .collect();
    let skip = if lower.len() > 3 && lower[..3] == ["remind", "me", "to"] {
        3
    } else {
        0
    };
    let today = zone.time_zone().to_datetime(now);
    let mut refusal: Option<String> = None;
    for split in skip..lower.len() {
        let tokens: Vec<&str> = lower[split..].iter().map(String::as_str).collect();
        match When::read(&tokens, today) {
            // A time expression further left that was wrong is the one meant: say why rather
            // than read the rest ("Gym at 7 every day at 8").
            Ok(_) if refusal.is_some() => break,
            Ok(when) => {
                if let Some(word) = dangling(&lower[skip..split]) {
                    return Err(QuickError(format!(
                        "could not read when from `{word}`: say it as `tomorrow at 9`, `friday \
                         at 3pm`, `december 24` or `every monday`"
                    )));
                }
                if split == skip {
                    return Err(QuickError(
                        "what should the reminder say? Write it first, then when: \
                         `Call mom tomorrow at 9`"
                            .to_owned(),
                    ));
                }
                let name = capitalised(&words[skip..split].join(" "));
                return when.into_quick(name, now, zone);
            }
            Err(Refused::Invalid(why)) if refusal.is_none() => refusal = Some(why),
            Err(_) => {}
        }
    }
    Err(QuickError(refusal.unwrap_or_else(|| {
        "no date or time found: end the line with one, such as `tomorrow at 9`, `in 20 \
         minutes` or `every Monday at 8:30`"
            .to_owned()
    })))
}

/// A word at the end of the reminder's text that says it was meant as part of when, so that
/// reading the rest would guess: `yesterday`, `morning`, `on`, `next`, `the 25th`,
/// `on friday`.
fn dangling(name: &[String]) -> Option<String> {
    let last = name.last()?.as_str();
    let before = name.len().checked_sub(2).map(|i| name[i].as_str());
    const WORDS: [&str; 15] = [
        "yesterday",
        "morning",
        "afternoon",
        "evening",
        "ago",
        "on",
        "at",
        "in",
        "next",
        "every",
        "each",
        "until",
        "by",
        "from",
        "the",
    ];
    let ordinal_day =
        last.chars().next().is_some_and(|c| c.is_ascii_digit()) && ordinal(last).is_some();
    let said_day =
        weekday(last).is_some() && matches!(before, Some("on" | "next" | "every" | "each"));
    (WORDS.contains(&last) || ordinal_day || said_day).then(|| match before {
        Some(b) if said_day || ordinal_day => format!("{b} {last}"),
        _ => last.to_owned(),
    })
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Why the rest of a line is not a time expression.
enum Refused {
    /// It is not one (the split is elsewhere).
    NotWhen,
    /// It is one, but wrong: said rather than guessed around.
    Invalid(String),
}

type Read<T> = Result<T, Refused>;

fn invalid<T>(why: impl Into<String>) -> Read<T> {
    Err(Refused::Invalid(why.into()))
}

/// What a time expression says.
#[derive(Debug)]
enum When {
    /// A local date-time, or an exact instant (`in 20 minutes`).
    Once(DateTime),
    In(Span, String),
    Every {
        /// The rule without its end.
        rule: String,
        /// For people: "Every other Friday".
        said: String,
        time: Time,
        end: Option<End>,
    },
}

#[derive(Debug)]
enum End {
    Until(Date, String),
    Count(u32),
}

/// A cursor over the tokens of a time expression.
struct Tokens<'a> {
    words: &'a [&'a str],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.at).copied()
    }
    fn peek_at(&self, n: usize) -> Option<&'a str> {
        self.words.get(self.at + n).copied()
    }
    fn next(&mut self) -> Option<&'a str> {
        let word = self.peek()?;
        self.at += 1;
        Some(word)
    }
    fn eat(&mut self, word: &str) -> bool {
        if self.peek() == Some(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn eat_any(&mut self, words: &[&str]) -> bool {
        match self.peek() {
            Some(w) if words.contains(&w) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }
    fn done(&self) -> bool {
        self.at >= self.words.len()
    }
}

const WEEKDAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Monday, "monday", "MO"),
    (Weekday::Tuesday, "tuesday", "TU"),
    (Weekday::Wednesday, "wednesday", "WE"),
    (Weekday::Thursday, "thursday", "TH"),
    (Weekday::Friday, "friday", "FR"),
    (Weekday::Saturday, "saturday", "SA"),
    (Weekday::Sunday, "sunday", "SU"),
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A weekday's name, short name (`mon`, `tues`, `thurs`) or plural (`mondays`): the day, and
/// whether it was plural.
fn weekday(word: &str) -> Option<(Weekday, bool)> {
    let (word, plural) = match word.strip_suffix('s') {
        Some(stem) if stem.ends_with("day") => (stem, true),
        _ => (word, false),
    };
    WEEKDAYS
        .iter()
        .find(|(_, name, _)| {
            *name == word
                || (word.len() >= 3 && name.starts_with(word) && word.len() <= 5)
                || (*name == "thursday" && word == "thur")
        })
        .map(|(day, _, _)| (*day, plural))
}

fn weekday_code(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(d, _, _)| *d == day)
        .map_or("MO", |(_, _, code)| code)
}

fn weekday_name(day: Weekday) -> String {
    let name = WEEKDAYS
        .iter()
        .find(|(d, _, _)| *d == day)
        .map_or("monday", |(_, name, _)| name);
    capitalised(name)
}

fn month(word: &str) -> Option<i8> {
    MONTHS
        .iter()
        .position(|m| {
            *m == word
                || (word.len() >= 3 && m.starts_with(word))
                || word == "sept" && *m == "september"
        })
        .map(|i| i as i8 + 1)
}

fn number(word: &str) -> Option<i64> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    if let Some(i) = WORDS.iter().position(|w| *w == word) {
        return Some(i as i64 + 1);
    }
    if word == "a" || word == "an" {
        return Some(1);
    }
    if !word.is_empty() && word.len() <= 6 && word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse().ok();
    }
    None
}

/// `1st`, `2nd`, `15th`, `first`, …, `fifth`, `last` (-1).
fn ordinal(word: &str) -> Option<i64> {
    const WORDS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];
    if let Some(i) = WORDS.iter().position(|w| *w == word) {
        return Some(i as i64 + 1);
    }
    if word == "last" {
        return Some(-1);
    }
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))?;
    number(digits)
}

fn ordinal_name(n: i64) -> String {
    match n {
        -1 => "last".to_owned(),
        1 => "first".to_owned(),
        2 => "second".to_owned(),
        3 => "third".to_owned(),
        4 => "fourth".to_owned(),
        5 => "fifth".to_owned(),
        n => {
            let suffix = match (n % 10, n % 100) {
                (1, r) if r != 11 => "st",
                (2, r) if r != 12 => "nd",
                (3, r) if r != 13 => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        }
    }
}

/// A time of day: `9am`, `9 pm`, `9:30`, `21:00`, `noon`, `midnight`; a bare number only when
/// `bare` (after `at`).
fn time(t: &mut Tokens<'_>, bare: bool) -> Read<Option<Time>> {
    let Some(word) = t.peek() else {
        return Ok(None);
    };
    match word {
        "noon" | "midday" => {
            t.next();
            return Ok(Some(Time::constant(12, 0, 0, 0)));
        }
        "midnight" => {
            t.next();
            return Ok(Some(Time::constant(0, 0, 0, 0)));
        }
        _ => {}
    }
    let (clock, mut meridiem) = match word.strip_suffix("am").or_else(|| word.strip_suffix("a.m")) {
        Some(clock) => (clock, Some(false)),
        None => match word.strip_suffix("pm").or_else(|| word.strip_suffix("p.m")) {
            Some(clock) => (clock, Some(true)),
            None => (word, None),
        },
    };
    let (hour, minute) = match clock.split_once([':', '.']) {
        Some((h, m)) => match (number(h), m.parse::<i64>().ok().filter(|_| m.len() == 2)) {
            (Some(h), Some(m)) => (h, m),
            _ => return Ok(None),
        },
        None => match number(clock) {
            Some(h) if !clock.is_empty() && clock.len() <= 2 => (h, 0),
            _ => return Ok(None),
        },
    };
    let colon = clock.contains([':', '.']);
    t.next();
    if meridiem.is_none() {
        if t.eat_any(&["am", "a.m"]) {
            meridiem = Some(false);
        } else if t.eat_any(&["pm", "p.m"]) {
            meridiem = Some(true);
        }
    }
    if meridiem.is_none() && !colon && !bare {
        return Err(Refused::NotWhen);
    }
    let hour = match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&hour) {
                return invalid(format!("{word}: an hour with am or pm is 1 to 12"));
            }
            hour % 12 + if pm { 12 } else { 0 }
        }
        None => hour,
    };
    if !(0..=23).contains(&hour) || !(0..=59).contains(&minute) {
        return invalid(format!("{word} is not a time of day"));
    }
    Ok(Some(Time::constant(hour as i8, minute as i8, 0, 0)))
}

/// `at TIME` or a time that says it is one (`9am`, `18:00`).
fn time_part(t: &mut Tokens<'_>) -> Read<Option<Time>> {
    let start = t.at;
    if t.eat("at") {
        return match time(t, true)? {
            Some(time) => Ok(Some(time)),
            None => {
                t.at = start;
                Err(Refused::NotWhen)
            }
        };
    }
    match time(t, false) {
        Ok(found) => Ok(found),
        Err(Refused::NotWhen) => {
            t.at = start;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `MONTH DAY [YEAR]`, `DAY [of] MONTH [YEAR]` or `YYYY-MM-DD`: the date, on or after
/// `today` when no year is given.
fn date(t: &mut Tokens<'_>, today: Date) -> Read<Option<Date>> {
    let start = t.at;
    t.eat("the");
    let Some(word) = t.peek() else {
        t.at = start;
        return Ok(None);
    };
    if let Ok(date) = word.parse::<Date>() {
        if word.len() == 10 {
            t.next();
            return Ok(Some(date));
        }
    }
    let (m, d) = if let Some(m) = month(word) {
        t.next();
        match t
            .peek()
            .and_then(|w| number(w).or_else(|| ordinal(w).filter(|n| *n > 0)))
        {
            Some(d) => {
                t.next();
                (m, d)
            }
            None => {
                t.at = start;
                return Ok(None);
            }
        }
    } else if let Some(d) = number(word).or_else(|| ordinal(word).filter(|n| *n > 0)) {
        t.next();
        t.eat("of");
        match t.peek().and_then(month) {
            Some(m) => {
                t.next();
                (m, d)
            }
            None => {
                t.at = start;
                return Ok(None);
            }
        }
    } else {
        t.at = start;
        return Ok(None);
    };
    let year = match t
        .peek()
        .and_then(number)
        .filter(|y| (1000..=9999).contains(y))
    {
        Some(y) => {
            t.next();
            Some(y as i16)
        }
        None => None,
    };
    let name = capitalised(MONTHS[(m - 1) as usize]);
    let make = |y: i16| Date::new(y, m, d as i8);
    if !(1..=31).contains(&d) {
        return invalid(format!("{name} {d} is not a date"));
    }
    match year {
        Some(y) => match make(y) {
            Ok(date) => Ok(Some(date)),
            Err(_) => invalid(format!("{name} {y} has no day {d}")),
        },
        None => {
            // The next such date: this year's, or next year's once it has passed (Feb 29 in
            // the next leap year).
            for y in today.year()..today.year() + 8 {
                if let Ok(date) = make(y) {
                    if date >= today {
                        return Ok(Some(date));
                    }
                }
            }
            invalid(format!("{name} has no day {d}"))
        }
    }
}

/// A day of a one-time reminder, with the time it defaults to.
fn day(t: &mut Tokens<'_>, today: DateTime) -> Read<Option<(Date, Option<Time>)>> {
    let start = t.at;
    let word = t.peek();
    match word {
        Some("today") => {
            t.next();
            return Ok(Some((today.date(), None)));
        }
        Some("tonight") => {
            t.next();
            return Ok(Some((today.date(), Some(Time::constant(20, 0, 0, 0)))));
        }
        Some("tomorrow") => {
            t.next();
            return Ok(Some((
                today.date().tomorrow().map_err(|_| Refused::NotWhen)?,
                None,
            )));
        }
        _ => {}
    }
    let on = t.eat("on");
    let next = t.eat("next");
    if let Some((day, false)) = t.peek().and_then(weekday) {
        t.next();
        let ahead =
            i64::from(day.to_monday_zero_offset() - today.weekday().to_monday_zero_offset());
        let mut days = ahead.rem_euclid(7);
        if next {
            // "next Friday": the Friday of next week.
            let to_next_monday = 7 - i64::from(today.weekday().to_monday_zero_offset());
            days = to_next_monday + i64::from(day.to_monday_zero_offset());
        }
        let date = today
            .date()
            .checked_add(Span::new().days(days))
            .map_err(|_| Refused::NotWhen)?;
        // Today's weekday with a time already past means next week's: decided by the caller
        // once the time is known (a zero offset is marked by returning today's date).
        return Ok(Some((date, None)));
    }
    if next {
        t.at = start;
        return Ok(None);
    }
    if let Some(date) = date(t, today.date())? {
        return Ok(Some((date, None)));
    }
    if on {
        t.at = start;
    }
    Ok(None)
}

/// A list of weekdays: `monday`, `mon, wed and fri`; with whether any was plural.
fn weekday_list(t: &mut Tokens<'_>) -> Option<(Vec<Weekday>, bool)> {
    let mut days = Vec::new();
    let mut plural = false;
    // Commas were split away: a weekday after a weekday continues the list, as does one
    // after `and`.
    while let Some((day, p)) = t.peek().and_then(weekday) {
        t.next();
        plural |= p;
        if !days.contains(&day) {
            days.push(day);
        }
        if t.peek() == Some("and") && t.peek_at(1).and_then(weekday).is_some() {
            t.next();
        }
    }
    days.sort_by_key(|d| d.to_monday_zero_offset());
    (!days.is_empty()).then_some((days, plural))
}

fn said_days(days: &[Weekday]) -> String {
    let names: Vec<String> = days.iter().map(|d| weekday_name(*d)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

fn by_day(days: &[Weekday]) -> String {
    let mut sorted = days.to_vec();
    sorted.sort_by_key(|d| d.to_monday_zero_offset());
    sorted
        .iter()
        .map(|d| weekday_code(*d))
        .collect::<Vec<_>>()
        .join(",")
}

/// `each|every month` after `of`.
fn each_month(t: &mut Tokens<'_>) -> bool {
    let start = t.at;
    if t.eat("of") && t.eat_any(&["each", "every", "the"]) && t.eat("month") {
        return true;
    }
    t.at = start;
    false
}

/// The repeating part: the rule (without its end) and how it is said.
fn every(t: &mut Tokens<'_>) -> Read<Option<(String, String)>> {
    let start = t.at;
    // Forms without "every".
    match t.peek() {
        Some("daily") => {
            t.next();
            return Ok(Some(("FREQ=DAILY".into(), "Every day".into())));
        }
        Some("weekdays") => {
            t.next();
            return Ok(Some((
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into(),
                "Every weekday".into(),
            )));
        }
        Some("weekends") => {
            t.next();
            return Ok(Some((
                "FREQ=WEEKLY;BYDAY=SA,SU".into(),
                "Every weekend day".into(),
            )));
        }
        Some("hourly") => {
            t.next();
            return Ok(Some(("FREQ=HOURLY".into(), "Every hour".into())));
        }
        Some("yearly" | "annually") => {
            t.next();
            return Ok(Some(("FREQ=YEARLY".into(), "Every year".into())));
        }
        Some("weekly" | "monthly") => {
            let monthly = t.next() == Some("monthly");
            return if monthly {
                month_days(t, "FREQ=MONTHLY", "Every month").map(Some)
            } else {
                week_days(t, "FREQ=WEEKLY", "Every week").map(Some)
            };
        }
        _ => {}
    }
    // "[on] the 2nd tuesday of every month", "the last day of each month", "the 15th of …".
    let on = t.eat("on");
    if t.eat("the") || t.peek() == Some("last") {
        if let Some(n) = t.peek().and_then(ordinal) {
            t.next();
            let target = t.peek();
            let found = match target {
                Some("day") => Some((
                    format!("BYMONTHDAY={n}"),
                    format!("the {} day", ordinal_name(n)),
                )),
                Some("weekday") => Some((
                    format!("BYDAY=MO,TU,WE,TH,FR;BYSETPOS={n}"),
                    format!("the {} weekday", ordinal_name(n)),
                )),
                Some(w) => weekday(w).filter(|(_, p)| !p).map(|(d, _)| {
                    (
                        format!("BYDAY={n}{}", weekday_code(d)),
                        format!("the {} {}", ordinal_name(n), weekday_name(d)),
                    )
                }),
                None => None,
            };
            if let Some((part, said)) = found {
                t.next();
                if each_month(t) {
                    let valid = match target {
                        Some("day") => (1..=31).contains(&n) || n == -1,
                        _ => (1..=5).contains(&n) || n == -1,
                    };
                    if !valid {
                        return invalid(format!(
                            "a month has no {} {}",
                            ordinal_name(n),
                            target.unwrap_or("day")
                        ));
                    }
                    return Ok(Some((
                        format!("FREQ=MONTHLY;{part}"),
                        format!("Every month on {said}"),
                    )));
                }
            } else if each_month(t) {
                if !(1..=31).contains(&n) {
                    return invalid(format!("a month has no {} day", ordinal_name(n)));
                }
                return Ok(Some((
                    format!("FREQ=MONTHLY;BYMONTHDAY={n}"),
                    format!("Every month on the {}", ordinal_name(n)),
                )));
            }
        }
        t.at = start;
        return Ok(None);
    }
    if on {
        t.at = start;
    }
    // Plural weekdays alone: "mondays and thursdays".
    if let Some((days, true)) = {
        let at = t.at;
        let list = weekday_list(t);
        if !matches!(list, Some((_, true))) {
            t.at = at;
        }
        list
    } {
        return Ok(Some((
            format!("FREQ=WEEKLY;BYDAY={}", by_day(&days)),
            format!("Every {}", said_days(&days)),
        )));
    }
    if !t.eat_any(&["every", "each"]) {
        return Ok(None);
    }
    let other = t.eat("other");
    let n = if other {
        Some(2)
    } else {
        match t.peek().and_then(number) {
            Some(n) if t.peek_at(1).is_some() => {
                t.next();
                Some(n)
            }
            _ => None,
        }
    };
    let interval = n.unwrap_or(1);
    if !(1..=1000).contains(&interval) {
        return invalid(format!("every {interval}: a count from 1 to 1000"));
    }
    let every_n = |unit: &str| -> String {
        match (other, interval) {
            (true, _) => format!("Every other {unit}"),
            (_, 1) => format!("Every {unit}"),
            (_, n) => format!("Every {n} {unit}s"),
        }
    };
    let with_interval = |freq: &str| -> String {
        if interval > 1 {
            format!("FREQ={freq};INTERVAL={interval}")
        } else {
            format!("FREQ={freq}")
        }
    };
    let Some(unit) = t.next() else {
        return Err(Refused::NotWhen);
    };
    let found = match unit {
        "day" | "days" => (with_interval("DAILY"), every_n("day")),
        "weekday" | "weekdays" if interval == 1 => (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into(),
            "Every weekday".into(),
        ),
        "weekend" | "weekends" if interval == 1 => {
            ("FREQ=WEEKLY;BYDAY=SA,SU".into(), "Every weekend day".into())
        }
        "week" | "weeks" => {
            return week_days(t, &with_interval("WEEKLY"), &every_n("week")).map(Some)
        }
        "month" | "months" => {
            return month_days(t, &with_interval("MONTHLY"), &every_n("month")).map(Some)
        }
        "year" | "years" => {
            let mut rule = with_interval("YEARLY");
            let mut said = every_n("year");
            let at = t.at;
            if t.eat("on") {
                match date(t, Date::constant(2000, 1, 1))? {
                    Some(d) => {
                        rule = format!("{rule};BYMONTH={};BYMONTHDAY={}", d.month(), d.day());
                        said = format!(
                            "{said} on {} {}",
                            capitalised(MONTHS[(d.month() - 1) as usize]),
                            d.day()
                        );
                    }
                    None => t.at = at,
                }
            }
            (rule, said)
        }
        "hour" | "hours" => (with_interval("HOURLY"), every_n("hour")),
        "minute" | "minutes" | "min" | "mins" => {
            if interval < 5 {
                return invalid(format!(
                    "every {interval} minute{}: at most one reminder every 5 minutes",
                    if interval == 1 { "" } else { "s" }
                ));
            }
            (
                format!("FREQ=MINUTELY;INTERVAL={interval}"),
                format!("Every {interval} minutes"),
            )
        }
        w => {
            t.at -= 1;
            match weekday(w) {
                Some(_) if n.is_none() || other => {
                    let (days, _) = weekday_list(t).ok_or(Refused::NotWhen)?;
                    let rule = if other {
                        format!("FREQ=WEEKLY;INTERVAL=2;BYDAY={}", by_day(&days))
                    } else {
                        format!("FREQ=WEEKLY;BYDAY={}", by_day(&days))
                    };
                    let said = if other {
                        format!("Every other {}", said_days(&days))
                    } else {
                        format!("Every {}", said_days(&days))
                    };
                    (rule, said)
                }
                _ => {
                    t.at = start;
                    return Err(Refused::NotWhen);
                }
            }
        }
    };
    Ok(Some(found))
}

/// `… [on WEEKDAYS]` after a weekly rule.
fn week_days(t: &mut Tokens<'_>, rule: &str, said: &str) -> Read<(String, String)> {
    let at = t.at;
    if t.eat("on") {
        if let Some((days, _)) = weekday_list(t) {
            return Ok((
                format!("{rule};BYDAY={}", by_day(&days)),
                format!("{said} on {}", said_days(&days)),
            ));
        }
        t.at = at;
    }
    Ok((rule.to_owned(), said.to_owned()))
}

/// `… [on the 15th]` after a monthly rule.
fn month_days(t: &mut Tokens<'_>, rule: &str, said: &str) -> Read<(String, String)> {
    let at = t.at;
    if t.eat("on") && t.eat("the") {
        if let Some(n) = t.peek().and_then(ordinal) {
            t.next();
            t.eat("day");
            if !(1..=31).contains(&n) && n != -1 {
                return invalid(format!("a month has no {} day", ordinal_name(n)));
            }
            let day = if n == -1 { " day" } else { "" };
            return Ok((
                format!("{rule};BYMONTHDAY={n}"),
                format!("{said} on the {}{day}", ordinal_name(n)),
            ));
        }
    }
    t.at = at;
    Ok((rule.to_owned(), said.to_owned()))
}

/// `until DATE`, `until MONTH`, `for N times`, `N times`.
fn end(t: &mut Tokens<'_>, today: Date) -> Read<Option<End>> {
    let start = t.at;
    if t.eat("until") || t.eat("till") {
        if let Some(date) = date(t, today)? {
            return Ok(Some(End::Until(
                date,
                date.strftime("%-d %b %Y").to_string(),
            )));
        }
        if let Some(m) = t.peek().and_then(month) {
            t.next();
            // "until March": until the month begins, the last day of the one before.
            let mut year = today.year();
            if m <= today.month() {
                year += 1;
            }
            let first = Date::new(year, m, 1).map_err(|_| Refused::NotWhen)?;
            let last = first.yesterday().map_err(|_| Refused::NotWhen)?;
            return Ok(Some(End::Until(
                last,
                last.strftime("%-d %b %Y").to_string(),
            )));
        }
        return invalid("until when? Give a date such as `March 31` or a month such as `June`");
    }
    t.eat("for");
    if let Some(n) = t.peek().and_then(number) {
        if t.peek_at(1) == Some("times") {
            t.at += 2;
            if !(1..=100_000).contains(&n) {
                return invalid(format!("{n} times: from 1 to 100000"));
            }
            return Ok(Some(End::Count(n as u32)));
        }
    }
    t.at = start;
    Ok(None)
}

impl When {
    fn read(words: &[&str], now: DateTime) -> Read<When> {
        let mut t = Tokens { words, at: 0 };
        // "in 20 minutes"
        if t.eat("in") {
            let n = t.next().and_then(number).ok_or(Refused::NotWhen)?;
            let unit = t.next().ok_or(Refused::NotWhen)?;
            let span = match unit {
                "minute" | "minutes" | "min" | "mins" => Span::new().minutes(n),
                "hour" | "hours" | "h" | "hr" | "hrs" => Span::new().hours(n),
                "day" | "days" => Span::new().days(n),
                "week" | "weeks" => Span::new().weeks(n),
                _ => return Err(Refused::NotWhen),
            };
            if !t.done() {
                return Err(Refused::NotWhen);
            }
            if n == 0 || n > 10_000 {
                return invalid(format!("in {n} {unit}: from 1 to 10000"));
            }
            return Ok(When::In(span, format!("in {n} {unit}")));
        }
        let leading_time = time_part(&mut t)?;
        if let Some((rule, said)) = every(&mut t)? {
            let time = match (leading_time, time_part(&mut t)?) {
                (Some(_), Some(_)) => return invalid("two times of day: give one"),
                (a, b) => a.or(b).unwrap_or(Time::constant(9, 0, 0, 0)),
            };
            let end = end(&mut t, now.date())?;
            if !t.done() {
                return Err(Refused::NotWhen);
            }
            return Ok(When::Every {
                rule,
                said,
                time,
                end,
            });
        }
        let day = day(&mut t, now)?;
        let trailing_time = time_part(&mut t)?;
        if !t.done() {
            return Err(Refused::NotWhen);
        }
        let time = match (leading_time, trailing_time) {
            (Some(_), Some(_)) => return invalid("two times of day: give one"),
            (a, b) => a.or(b),
        };
        match (day, time) {
            (None, None) => Err(Refused::NotWhen),
            (Some((date, default)), time) => {
                let time = time.or(default).unwrap_or(Time::constant(9, 0, 0, 0));
                let mut at = date.to_datetime(time);
                let by_weekday = words.iter().any(|w| weekday(w).is_some());
                if at <= now && by_weekday && date == now.date() {
                    // "Friday at 9" on a Friday after 9: next week's.
                    at = at
                        .checked_add(Span::new().days(7))
                        .map_err(|_| Refused::NotWhen)?;
                }
                Ok(When::Once(at))
            }
            (None, Some(time)) => {
                // "at 9": today's if still to come, else tomorrow's.
                let mut at = now.date().to_datetime(time);
                if at <= now {
                    at = at
                        .checked_add(Span::new().days(1))
                        .map_err(|_| Refused::NotWhen)?;
                }
                Ok(When::Once(at))
            }
        }
    }

    fn into_quick(
        self,
        name: String,
        now: Timestamp,
        zone: &TaskZone,
    ) -> Result<QuickAdd, QuickError> {
        let tz = zone.time_zone();
        let instant = |local: DateTime| {
            tz.to_ambiguous_timestamp(local)
                .compatible()
                .map_err(|e| QuickError(format!("{local}: {e}")))
        };
        let zoned = |at: Timestamp| at.to_zoned(tz.clone());
        let (start, repeats, understood) = match self {
            When::In(span, said) => {
                let at = now
                    .to_zoned(tz.clone())
                    .checked_add(span)
                    .map_err(|e| QuickError(format!("{said}: {e}")))?;
                let at = Timestamp::from_second(at.timestamp().as_second())
                    .map_err(|e| QuickError(e.to_string()))?;
                let understood = format!(
                    "Once, {said} ({})",
                    zoned(at).strftime("%a %-d %b %Y at %H:%M")
                );
                (at, None, understood)
            }
            When::Once(local) => {
                let at = instant(local)?;
                if at <= now {
                    return Err(QuickError(format!(
                        "{} is in the past",
                        local.strftime("%a %-d %b %Y at %H:%M")
                    )));
                }
                (
                    at,
                    None,
                    format!("Once, {}", zoned(at).strftime("%a %-d %b %Y at %H:%M")),
                )
            }
            When::Every {
                rule,
                said,
                time,
                end,
            } => {
                // The next such time of day: so that a count starts with one still to come.
                let local_now = tz.to_datetime(now);
                let today = local_now.date();
                let mut first = today.to_datetime(time);
                if first <= local_now {
                    first = first
                        .checked_add(Span::new().days(1))
                        .map_err(|e| QuickError(e.to_string()))?;
                }
                // The task starts at the rule's first occurrence from then, found with an
                // interval of 1: "every other Friday" said on a Sunday means the coming Friday
                // and every second one after it, not the Friday after next (which counting
                // periods from a Sunday start would give).
                let provisional = instant(first)?;
                let mut anchor = crate::recurrence::rrule::Rrule::parse(&rule)
                    .map_err(|e| QuickError(e.to_string()))?;
                anchor.interval = 1;
                let start = crate::recurrence::Schedule {
                    start: provisional,
                    zone: zone.clone(),
                    repeats: Some(crate::recurrence::Recurrence::Rule(anchor)),
                    exceptions: Default::default(),
                }
                .first()
                .map_or(provisional, |o| o.at);
                let said = if rule.contains("HOURLY") || rule.contains("MINUTELY") {
                    format!("{said} from {}", time.strftime("%H:%M"))
                } else {
                    format!("{said} at {}", time.strftime("%H:%M"))
                };
                let (rule, said) = match end {
                    None => (rule, said),
                    Some(End::Count(n)) => {
                        (format!("{rule};COUNT={n}"), format!("{said}, {n} times"))
                    }
                    Some(End::Until(date, shown)) => {
                        if date < today {
                            return Err(QuickError(format!("until {shown}: that date has passed")));
                        }
                        (
                            format!("{rule};UNTIL={}", date.strftime("%Y%m%d")),
                            format!("{said}, until {shown}"),
                        )
                    }
                };
                (start, Some(json!({ "rrule": rule })), said)
            }
        };
        let mut body = json!({
            "name": name,
            "startDate": zoned(start).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            "timeZone": zone.name(),
        });
        if let Some(repeats) = repeats {
            body["repeats"] = repeats;
        }
        Ok(QuickAdd { body, understood })
    }
}

#[cfg(test)]
#[path = "quick_tests.rs"]
mod tests;
