//! Recurrence: the instants at which a task is due, computed on the wall clock of the task's
//! time zone and stored as UTC instants.
//!
//! A [`Schedule`] is a start instant, a [`TaskZone`] and, for a repeating task, a [`Repeats`]
//! rule. Its occurrences follow these rules, which are the API's definition of recurrence:
//!
//! - **Zone.** A zone is an IANA name resolved in the bundled time zone database
//!   (`Europe/Berlin`, stored under the database's canonical spelling, so `europe/berlin` is
//!   `Europe/Berlin`), `UTC` (also spelled `Z`), or a fixed offset `±HH:MM` (optionally
//!   `±HH:MM:SS`). A task whose body names no zone uses the fixed offset its `startDate` was
//!   written with, named `±HH:MM` (`+00:00`, `-04:00`, `+05:30`).
//! - **Wall clock.** Occurrences are computed on the zone's wall clock. Take the start's local
//!   date and time of day in the zone; every occurrence is due at that same local time of day
//!   on the dates the rule selects, so "every Monday 09:00 Europe/Berlin" stays 09:00 in Berlin
//!   in summer and in winter.
//! - **Only at or after the start.** Occurrences are the instants matching the rule at or after
//!   `start`; a candidate whose instant is before `start` is not an occurrence.
//! - **day**: every `frequency` days, counting from the start's local date.
//! - **week**: weeks start on Monday (RFC 5545 `WKST=MO`); the week holding the start's local
//!   date is week 0, and occurrences fall in weeks 0, N, 2N, … on the listed weekdays
//!   ([`On::Start`]: the start's weekday). Days of week 0 before the start are not
//!   occurrences.
//! - **month**: every `frequency` months counting from the start's month, on the listed days
//!   of the month: 1..=31, or negative numbers counted from the end (-1 is the last day, -2
//!   the second last); [`On::Start`]: the start's day of month. A day that a month does not
//!   have (the 31st in April, the 30th in February, -31 in April) is skipped, never moved to
//!   another day (RFC 5545). Within a month, occurrences are in date order and a date named
//!   twice (30 and -1 in a 30-day month) is due once.
//! - **year**: every `frequency` years on the start's month and day; February 29 is due only
//!   in leap years.
//! - **Local time to instant** follows RFC 5545 and jiff's `Disambiguation::Compatible`: a
//!   local time that does not exist because the clocks sprang forward is shifted forward by
//!   the length of the gap (02:30 on Berlin's spring-forward day is due at 03:30 local, 01:30
//!   UTC), and a local time that happens twice because the clocks fell back is due once, at
//!   the first (earlier) instant.
//! - **Numbering.** [`Occurrence::seq`] is the 1-based position of an occurrence in the
//!   sequence that starts at the first occurrence at or after `start`. A one-time task has one
//!   occurrence, `start`, numbered 1.
//! - **Ends.** [`Ends::Never`]; [`Ends::AfterCount`]`(n)`: occurrences 1..=n;
//!   [`Ends::OnDate`]`(d)`: occurrences whose local date is on or before `d`;
//!   [`Ends::AtInstant`]`(t)`: occurrences at or before `t`.
//! - **Rules that never match** (day 31 every 12 months starting in February; February 29
//!   every 4 years starting in 2025) have no occurrences: the search gives up once a whole
//!   400-year Gregorian cycle of periods has passed without a match. Occurrences beyond the
//!   range jiff represents (the year 9999) do not exist either.
//! - **Strictly increasing.** Occurrences are strictly increasing instants. The one case where
//!   the rules above could produce a repeat is a zone that skipped a whole calendar day
//!   (Pacific/Apia skipped 2011-12-30): the shifted time lands on the next day's occurrence.
//!   Such a duplicate is dropped, and its number is not reused, so `seq` then jumps by two.
//!
//! - **Hand-built schedules.** [`TaskSpec::parse`](crate::task::TaskSpec::parse) only builds
//!   schedules whose `on` suits the period. A `Schedule` built in code with an `on` that does
//!   not suit its period, or with an empty list, behaves as [`On::Start`]; a frequency of 0
//!   behaves as 1; month days outside ±1..=31 never match.
//!
//! Lookups are arithmetic: [`Schedule::first_at_or_after`] jumps to the period holding the
//! requested instant and counts the occurrences of the skipped periods (exactly, month by
//! month when months can lack some of the listed days) instead of walking every occurrence
//! since the start.
//!
//! It is one file because it is one definition: the rules above, the day arithmetic they are
//! counted in and the lookups that apply them change together, and read side by side they are
//! what a reader checks the API's recurrence against.

pub mod expand;
pub mod rrule;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// A task's time zone: an IANA zone (`Europe/Berlin`) or, when the body names none, the fixed
/// offset its `startDate` was written with (`+02:00`). Compared by name.
#[derive(Clone, Debug)]
pub struct TaskZone {
    name: String,
    tz: TimeZone,
}

impl TaskZone {
    /// An IANA name (`Europe/Berlin`, `UTC`) or a fixed offset `±HH:MM`.
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        let error = || ZoneError(name.to_owned());
        if name == "Z" || name == "z" {
            return Ok(Self::utc());
        }
        if name.starts_with(['+', '-']) {
            return parse_offset_name(name).map(Self::fixed).ok_or_else(error);
        }
        let tz = TimeZone::get(name).map_err(|_| error())?;
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Self { name, tz })
    }

    /// The IANA zone `UTC`.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    /// The zone of a fixed UTC offset; its name is `±HH:MM` (`+00:00` for UTC offsets).
    pub fn fixed(offset: Offset) -> Self {
        Self {
            name: offset_name(offset),
            tz: TimeZone::fixed(offset),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

impl PartialEq for TaskZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for TaskZone {}

/// `±HH:MM`, or `±HH:MM:SS` for the rare offset with seconds, so the name parses back to the
/// same offset.
fn offset_name(offset: Offset) -> String {
    let secs = offset.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// `±HH:MM` or `±HH:MM:SS`, hours below 24.
fn parse_offset_name(name: &str) -> Option<Offset> {
    let (sign, rest) = match name.as_bytes().first()? {
        b'+' => (1, &name[1..]),
        b'-' => (-1, &name[1..]),
        _ => return None,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let mut values = [0i32; 3];
    for (value, part) in values.iter_mut().zip(&parts) {
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *value = part.parse().ok()?;
    }
    let [h, m, s] = values;
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60 + s)).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{0}`: expected an IANA name such as `Europe/Berlin` or an offset such as `+02:00`")]
pub struct ZoneError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The API's name: `day`, `week`, `month` or `year`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
        }
    }
}

/// Which days of a period a repeating task falls on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    /// Not given: the weekday (week), day of month (month) or month and day (year) of `startDate`.
    Start,
    /// For `week`: sorted Monday first, no duplicates, not empty.
    Weekdays(Vec<Weekday>),
    /// For `month`: 1..=31, or -1..=-31 counted from the end (-1 is the last day); sorted, no
    /// duplicates, not empty.
    MonthDays(Vec<i8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ends {
    Never,
    /// Total number of occurrences, counted from the first one at or after `startDate`.
    AfterCount(u32),
    /// Last local date (inclusive) in the task's zone.
    OnDate(Date),
    /// Last instant (inclusive).
    AtInstant(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeats {
    /// Every N periods, 1..=1000.
    pub frequency: u32,
    pub period: Period,
    pub on: On,
    pub ends: Ends,
}

/// How a repeating task repeats: in the design's fields, or as an RFC 5545 rule
/// (`repeats.rrule`). Either is an RRULE ([`Schedule::rrule`]); the design's fields keep their
/// arithmetic lookups (this module), which a property test holds equal to the rule's expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    Every(Repeats),
    Rule(rrule::Rrule),
}

impl Recurrence {
    /// The same rule with its end instant (if any) mapped by `local`.
    fn in_zone(self, local: &impl Fn(Timestamp) -> Timestamp) -> Recurrence {
        match self {
            Recurrence::Every(mut r) => {
                if let Ends::AtInstant(t) = r.ends {
                    r.ends = Ends::AtInstant(local(t));
                }
                Recurrence::Every(r)
            }
            Recurrence::Rule(mut rule) => {
                if let Some(rrule::End::Until(rrule::Until::Utc(t))) = rule.end {
                    rule.end = Some(rrule::End::Until(rrule::Until::Utc(local(t))));
                }
                Recurrence::Rule(rule)
            }
        }
    }
}

impl From<Repeats> for Recurrence {
    fn from(repeats: Repeats) -> Self {
        Recurrence::Every(repeats)
    }
}

/// When a task is due: a start instant, the zone whose wall clock the rule follows, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub start: Timestamp,
    pub zone: TaskZone,
    /// `None`: one-time, due at `start`.
    pub repeats: Option<Recurrence>,
    /// Occurrences skipped or moved one at a time.
    pub exceptions: Exceptions,
}

/// Single occurrences that differ from the rule (RFC 5545's EXDATE, RECURRENCE-ID and RDATE),
/// each a skipped or moved one named by the instant the rule gives it.
///
/// - A **skipped** occurrence does not fire; its number is not reused.
/// - A **moved** occurrence fires at its new instant instead, once, keeping its number. A move
///   stays between the occurrence's neighbours (after the one before, before the one after,
///   as the rule gives them; [`Schedule::check_move`]), so occurrences stay in the rule's order.
/// - An **added** occurrence fires once at its instant, in addition to the rule's (also after
///   the rule's `COUNT` or `UNTIL`, as RFC 5545's RDATE), numbered 0: it is outside the rule's
///   count. One at the instant of an occurrence of the rule is that occurrence (due once).
///
/// A skipped or moved entry that names no occurrence of the rule has no effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exceptions {
    pub skipped: std::collections::BTreeSet<Timestamp>,
    /// The rule's instant → the instant it fires at instead.
    pub moved: std::collections::BTreeMap<Timestamp, Timestamp>,
    pub added: std::collections::BTreeSet<Timestamp>,
}

impl Exceptions {
    pub fn is_empty(&self) -> bool {
        self.skipped.is_empty() && self.moved.is_empty() && self.added.is_empty()
    }

    /// The first added instant after `t`.
    fn added_after(&self, t: Timestamp) -> Option<Occurrence> {
        use std::ops::Bound::{Excluded, Unbounded};
        let at = *self.added.range((Excluded(t), Unbounded)).next()?;
        Some(Occurrence { at, seq: 0 })
    }

    /// The rule's instant of the occurrence that fires at `at` (itself unless moved there).
    fn original_of(&self, at: Timestamp) -> Timestamp {
        self.moved
            .iter()
            .find(|(_, to)| **to == at)
            .map_or(at, |(from, _)| *from)
    }

    /// The occurrence as it fires: `None` when skipped, at its new instant when moved.
    fn apply(&self, o: Occurrence) -> Option<Occurrence> {
        if self.skipped.contains(&o.at) {
            return None;
        }
        Some(Occurrence {
            at: self.moved.get(&o.at).copied().unwrap_or(o.at),
            seq: o.seq,
        })
    }
}

/// The earlier of two occurrences; the rule's (`a`) when both are at one instant.
fn earlier(a: Option<Occurrence>, b: Option<Occurrence>) -> Option<Occurrence> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Why one occurrence cannot be skipped or moved as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExceptionError {
    #[error("{0} is not an occurrence of this task")]
    NotAnOccurrence(Timestamp),
    #[error("an occurrence moves only between its neighbours: after {before} and before {after}")]
    PastANeighbour { before: String, after: String },
}

/// One due instant and its 1-based position in the task's sequence of occurrences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub at: Timestamp,
    pub seq: u32,
}

impl Schedule {
    /// The first occurrence (at or after `start`), if any.
    pub fn first(&self) -> Option<Occurrence> {
        self.first_at_or_after(self.start)
    }

    /// The occurrence after `prev` (which this schedule produced), if any.
    pub fn after(&self, prev: &Occurrence) -> Option<Occurrence> {
        if self.exceptions.added.is_empty() {
            return self.changed_after(prev);
        }
        // An added occurrence (numbered 0) is not one of the rule's: the rule's next is found
        // from its instant.
        let from_rule = if prev.seq == 0 {
            self.changed_upcoming(prev.at, 2)
                .into_iter()
                .find(|o| o.at > prev.at)
        } else {
            self.changed_after(prev)
        };
        earlier(from_rule, self.exceptions.added_after(prev.at))
    }

    /// The occurrence of the rule after `prev`, skipped and moved ones applied, added aside.
    fn changed_after(&self, prev: &Occurrence) -> Option<Occurrence> {
        if self.exceptions.skipped.is_empty() && self.exceptions.moved.is_empty() {
            return self.rule_after(prev);
        }
        // Moves keep the rule's order, so the next one is the rule's next after `prev`'s own
        // instant, past any skipped.
        let mut at = Occurrence {
            at: self.exceptions.original_of(prev.at),
            seq: prev.seq,
        };
        loop {
            let next = self.rule_after(&at)?;
            if let Some(o) = self.exceptions.apply(next) {
                return Some(o);
            }
            at = next;
        }
    }

    /// The rule's occurrence after `prev`, exceptions aside.
    fn rule_after(&self, prev: &Occurrence) -> Option<Occurrence> {
        let plan = match &self.repeats {
            None => return None,
            Some(Recurrence::Rule(rule)) => return RuleWalk::after(self, rule, prev).next(),
            Some(Recurrence::Every(repeats)) => Plan::new(self, repeats)?,
        };
        let mut cursor = plan.cursor_near(prev.at);
        loop {
            let occurrence = cursor.next_occurrence()?;
            if occurrence.at > prev.at {
                return Some(occurrence);
            }
        }
    }

    /// The RFC 5545 rule this schedule's repeats are, to be expanded from the start's local
    /// date-time in the task's zone (`None` for a one-time task): `day` is `DAILY`, `week`
    /// `WEEKLY` (`WKST=MO`) with its weekdays, `month` `MONTHLY` with its days, `year`
    /// `YEARLY`, every `frequency` as `INTERVAL`; ends as `COUNT` or `UNTIL` (a date, or a UTC
    /// instant). Expanded ([`rrule::Rrule::expand`]) and turned into instants as this module
    /// does, it gives the same instants (a property test).
    pub fn rrule(&self) -> Option<rrule::Rrule> {
        use rrule::{End, Freq, Rrule, Until, WeekdayNum};
        let repeats = match self.repeats.as_ref()? {
            Recurrence::Rule(rule) => return Some(rule.clone()),
            Recurrence::Every(repeats) => repeats,
        };
        let mut rule = Rrule {
            interval: repeats.frequency.max(1),
            end: match repeats.ends {
                Ends::Never => None,
                Ends::AfterCount(n) => Some(End::Count(n)),
                Ends::OnDate(d) => Some(End::Until(Until::Date(d))),
                Ends::AtInstant(t) => Some(End::Until(Until::Utc(t))),
            },
            ..Rrule::every(Freq::Daily)
        };
        match (repeats.period, &repeats.on) {
            (Period::Day, _) => rule.freq = Freq::Daily,
            (Period::Week, on) => {
                rule.freq = Freq::Weekly;
                if let On::Weekdays(days) = on {
                    rule.by_day = days
                        .iter()
                        .map(|&weekday| WeekdayNum {
                            ordinal: None,
                            weekday,
                        })
                        .collect();
                }
            }
            (Period::Month, on) => {
                rule.freq = Freq::Monthly;
                if let On::MonthDays(days) = on {
                    rule.by_month_day = days.clone();
                }
            }
            (Period::Year, _) => rule.freq = Freq::Yearly,
        }
        Some(rule)
    }

    /// The first occurrence at or after `t`, if any, with its correct `seq`.
    pub fn first_at_or_after(&self, t: Timestamp) -> Option<Occurrence> {
        self.upcoming_occurrences(t, 1).into_iter().next()
    }

    /// Up to `n` due instants at or after `t`, strictly increasing.
    pub fn upcoming(&self, t: Timestamp, n: usize) -> Vec<Timestamp> {
        self.upcoming_occurrences(t, n)
            .into_iter()
            .map(|o| o.at)
            .collect()
    }

    /// Up to `n` occurrences at or after `t`, in order, with their numbers.
    pub fn upcoming_occurrences(&self, t: Timestamp, n: usize) -> Vec<Occurrence> {
        let changed = self.changed_upcoming(t, n);
        if self.exceptions.added.is_empty() {
            return changed;
        }
        let mut added = self
            .exceptions
            .added
            .range(t..)
            .map(|&at| Occurrence { at, seq: 0 });
        let mut changed = changed.into_iter();
        let mut out = Vec::new();
        let (mut a, mut c) = (added.next(), changed.next());
        while out.len() < n {
            match earlier(c, a) {
                None => break,
                Some(o) => {
                    out.push(o);
                    if c.is_some_and(|c| c.at == o.at) {
                        c = changed.next();
                    }
                    if a.is_some_and(|a| a.at == o.at) {
                        a = added.next();
                    }
                }
            }
        }
        out
    }

    /// Up to `n` occurrences of the rule at or after `t`, skipped and moved ones applied,
    /// added aside.
    fn changed_upcoming(&self, t: Timestamp, n: usize) -> Vec<Occurrence> {
        if self.exceptions.skipped.is_empty() && self.exceptions.moved.is_empty() {
            return self.rule_upcoming(t, n);
        }
        let mut out: Vec<Occurrence> = Vec::new();
        // An occurrence moved from before `t` to `t` or later comes first: it can only be the
        // one just before the rule's first at or after `t`.
        let moved_in = self
            .exceptions
            .moved
            .iter()
            .filter(|(from, to)| **from < t && **to >= t)
            .find_map(|(from, _)| {
                let o = self.rule_upcoming(*from, 1).into_iter().next()?;
                (o.at == *from).then_some(o)
            })
            .and_then(|o| self.exceptions.apply(o));
        let mut next = match moved_in {
            Some(o) => Some(o),
            None => {
                let mut first = self.rule_upcoming(t, 1).into_iter().next();
                loop {
                    match first {
                        Some(o) => match self.exceptions.apply(o) {
                            Some(applied) if applied.at >= t => break Some(applied),
                            _ => first = self.rule_after(&o),
                        },
                        None => break None,
                    }
                }
            }
        };
        while let Some(o) = next {
            if out.len() >= n {
                break;
            }
            out.push(o);
            next = self.changed_after(&o);
        }
        out
    }

    /// The same schedule on another zone's wall clock, as a floating task follows its owner
    /// from one zone to another at `now`: every instant it names (the start, an end instant,
    /// each skipped, moved and added one) keeps its local date and time, read on `zone`.
    ///
    /// Each occurrence still pending at `now` then fires exactly once:
    /// - one whose local time had already come on the old zone's clock but is still to come on
    ///   the new one (flying west) had its turn: it is skipped (an added one is dropped);
    /// - one still to come on the old clock whose new instant has passed (flying east) would
    ///   never fire: it is moved to `now`, so it fires at once, late.
    ///
    /// Entries more than two days in the past are dropped (they cannot matter again).
    pub fn in_zone(&self, zone: &TaskZone, now: Timestamp) -> Schedule {
        let old = self.zone.time_zone();
        let new = zone.time_zone();
        let local = |t: Timestamp| -> Timestamp {
            new.to_ambiguous_timestamp(old.to_datetime(t))
                .compatible()
                .unwrap_or(t)
        };
        // Offsets differ by at most 26 hours: nothing outside this window can change sides.
        let window = SignedDuration::from_hours(27);
        let horizon = now.checked_sub(window * 2).unwrap_or(now);
        let exceptions = &self.exceptions;
        let recent = |set: &std::collections::BTreeSet<Timestamp>| {
            set.range(horizon..).map(|t| local(*t)).collect()
        };
        let mut out = Schedule {
            start: local(self.start),
            zone: zone.clone(),
            repeats: self.repeats.clone().map(|r| r.in_zone(&local)),
            exceptions: Exceptions {
                skipped: recent(&exceptions.skipped),
                moved: exceptions
                    .moved
                    .iter()
                    .filter(|(from, to)| **from >= horizon || **to >= horizon)
                    .map(|(from, to)| (local(*from), local(*to)))
                    .collect(),
                added: recent(&exceptions.added),
            },
        };
        let from = now.checked_sub(window).unwrap_or(now);
        let until = now.checked_add(window).unwrap_or(now);
        let mut next = out.first_at_or_after(from);
        let mut changes = Vec::new();
        while let Some(o) = next.filter(|o| o.at <= until) {
            // Where this occurrence was due on the old clock.
            let was = self.zone_instant_of(zone, o.at);
            if o.at > now && was <= now {
                changes.push((o, None));
            } else if o.at <= now && was > now {
                changes.push((o, Some(now)));
            }
            next = out.after(&o);
        }
        for (o, to) in changes {
            let rule_at = out.exceptions.original_of(o.at);
            match (o.seq, to) {
                (0, None) => {
                    out.exceptions.added.remove(&o.at);
                }
                (0, Some(to)) => {
                    out.exceptions.added.remove(&o.at);
                    out.exceptions.added.insert(to);
                }
                (_, None) => {
                    out.exceptions.moved.remove(&rule_at);
                    out.exceptions.skipped.insert(rule_at);
                }
                (_, Some(to)) => {
                    out.exceptions.moved.insert(rule_at, to);
                }
            }
        }
        out
    }

    /// The instant on this schedule's zone with the local time `at` has on `zone`.
    fn zone_instant_of(&self, zone: &TaskZone, at: Timestamp) -> Timestamp {
        self.zone
            .time_zone()
            .to_ambiguous_timestamp(zone.time_zone().to_datetime(at))
            .compatible()
            .unwrap_or(at)
    }

    /// Whether the occurrence the rule gives at `from` may move to `to`: it must be one, and
    /// `to` must stay strictly between its neighbours (as they fire, moves included).
    pub fn check_move(&self, from: Timestamp, to: Timestamp) -> Result<(), ExceptionError> {
        let Some(o) = self
            .rule_upcoming(from, 1)
            .into_iter()
            .next()
            .filter(|o| o.at == from)
        else {
            return Err(ExceptionError::NotAnOccurrence(from));
        };
        let mut rest = Exceptions {
            moved: self.exceptions.moved.clone(),
            ..Exceptions::default()
        };
        rest.moved.remove(&from);
        let next = self
            .rule_after(&o)
            .map(|n| rest.moved.get(&n.at).copied().unwrap_or(n.at));
        let before = self
            .rule_before(from)
            .map(|p| rest.moved.get(&p).copied().unwrap_or(p));
        let ok = before.is_none_or(|b| to > b) && next.is_none_or(|n| to < n);
        if ok {
            Ok(())
        } else {
            Err(ExceptionError::PastANeighbour {
                before: before.map_or_else(|| "the start".to_owned(), |b| b.to_string()),
                after: next.map_or_else(|| "the end".to_owned(), |n| n.to_string()),
            })
        }
    }

    /// The rule's occurrence just before `t`, exceptions aside.
    fn rule_before(&self, t: Timestamp) -> Option<Timestamp> {
        // Look back in growing windows for the first one that holds an occurrence.
        let mut back = SignedDuration::from_hours(1);
        loop {
            let from = t.checked_sub(back).unwrap_or(self.start).max(self.start);
            let mut last = None;
            let mut next = self.rule_upcoming(from, 1).into_iter().next();
            while let Some(o) = next.filter(|o| o.at < t) {
                last = Some(o.at);
                next = self.rule_after(&o);
            }
            if last.is_some() || from <= self.start {
                return last;
            }
            back = back.checked_mul(8).unwrap_or(SignedDuration::MAX);
        }
    }

    /// The rule's occurrences at or after `t`, exceptions aside.
    fn rule_upcoming(&self, t: Timestamp, n: usize) -> Vec<Occurrence> {
        if n == 0 {
            return Vec::new();
        }
        let plan = match &self.repeats {
            None if self.start >= t => {
                return vec![Occurrence {
                    at: self.start,
                    seq: 1,
                }]
            }
            None => return Vec::new(),
            Some(Recurrence::Rule(rule)) => {
                return RuleWalk::from_start(self, rule)
                    .filter(|o| o.at >= t)
                    .take(n)
                    .collect()
            }
            Some(Recurrence::Every(repeats)) => match Plan::new(self, repeats) {
                Some(plan) => plan,
                None => return Vec::new(),
            },
        };
        let mut cursor = plan.cursor_near(t);
        let mut out = Vec::new();
        while out.len() < n {
            match cursor.next_occurrence() {
                Some(o) if o.at >= t => out.push(o),
                Some(_) => {}
                None => break,
            }
        }
        out
    }
}

/// The occurrences of a task that repeats by an RFC 5545 rule: its expansion on the zone's wall
/// clock ([`rrule::Rrule::expand`]) turned into instants as for the design's fields (a gap
/// shifted forward, a fold at its first instant). `seq` is the position in the rule's expansion,
/// the count that `COUNT` limits (RFC 5545); an instant before the start or not after the one
/// before it (a fold's repeat, a skipped day) is dropped and its number not reused.
struct RuleWalk {
    expansion: expand::Expansion,
    tz: TimeZone,
    start: Timestamp,
    /// `COUNT`, enforced here so that a walk started part way counts from a known number.
    count: Option<u32>,
    /// The number of the last local date-time taken from the expansion.
    seq: u32,
    last_at: Option<Timestamp>,
    /// Started part way: the occurrence after this one is the first to return.
    after: Option<Occurrence>,
}

impl RuleWalk {
    fn count(rule: &rrule::Rrule) -> Option<u32> {
        match rule.end {
            Some(rrule::End::Count(n)) => Some(n),
            _ => None,
        }
    }

    /// From the start: every occurrence.
    fn from_start(schedule: &Schedule, rule: &rrule::Rrule) -> RuleWalk {
        let tz = schedule.zone.time_zone().clone();
        let start_local = tz.to_datetime(schedule.start);
        RuleWalk {
            expansion: rule.expand_near(start_local, &tz, start_local),
            tz,
            start: schedule.start,
            count: Self::count(rule),
            seq: 0,
            last_at: None,
            after: None,
        }
    }

    /// The occurrences after `prev` (which this schedule produced), without walking from the
    /// start: the expansion starts at the period before the one holding the earliest local
    /// date-time `prev` can have been computed from, and `prev` is found again as the first
    /// local date-time whose instant is not before it: every one before it had an earlier
    /// instant, or it would not have been due. Numbers continue from `prev.seq`.
    ///
    /// A local time in a gap was shifted forward by the gap, so `prev`'s local date-time is
    /// its instant read with the offset before the transition: the smaller of the offsets at
    /// `prev` and 36 hours earlier (a gap is at most a day, Apia's 2011-12-30; no zone has
    /// two transitions within 36 hours).
    fn after(schedule: &Schedule, rule: &rrule::Rrule, prev: &Occurrence) -> RuleWalk {
        let tz = schedule.zone.time_zone().clone();
        let start_local = tz.to_datetime(schedule.start);
        let earlier = prev.at.checked_sub(jiff::SignedDuration::from_hours(36));
        let offset = earlier.map_or(tz.to_offset(prev.at), |t| {
            tz.to_offset(t).min(tz.to_offset(prev.at))
        });
        let near = offset.to_datetime(prev.at).max(start_local);
        RuleWalk {
            expansion: rule.expand_near(start_local, &tz, near),
            tz,
            start: schedule.start,
            count: Self::count(rule),
            seq: prev.seq,
            last_at: Some(prev.at),
            after: Some(*prev),
        }
    }
}

impl Iterator for RuleWalk {
    type Item = Occurrence;

    fn next(&mut self) -> Option<Occurrence> {
        loop {
            let local = self.expansion.next()?;
            let at = self.tz.to_ambiguous_timestamp(local).compatible().ok()?;
            if let Some(prev) = self.after {
                if at < prev.at {
                    continue;
                }
                self.after = None;
                if at == prev.at {
                    // `prev` itself: its number is known.
                    continue;
                }
                // `prev` is not in this rule's expansion (it cannot be, unless the rule
                // changed under it): the first later instant is the next one.
            }
            self.seq = self.seq.checked_add(1)?;
            if self.count.is_some_and(|n| self.seq > n) {
                return None;
            }
            if at < self.start || self.last_at.is_some_and(|last| at <= last) {
                continue;
            }
            self.last_at = Some(at);
            return Some(Occurrence { at, seq: self.seq });
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); plain
/// integer arithmetic so that skipping periods costs nothing.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn epoch_day(date: Date) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Months and years in one 400-year Gregorian cycle, after which month lengths repeat.
const CYCLE_MONTHS: i64 = 4800;
const CYCLE_YEARS: i64 = 400;

/// The rule, normalised for arithmetic. A `Schedule` built by hand with an `on` that does not
/// suit its period (or an empty list) is read as [`On::Start`].
enum Kind {
    Day,
    /// Monday-zero weekday offsets, sorted, no duplicates, not empty.
    Week(Vec<i64>),
    /// Days of month as given; values outside ±1..=31 never match.
    Month(Vec<i8>),
    Year {
        month: i64,
        day: i64,
    },
}

/// One repeating schedule, prepared: the start's local date as a day number, its local time
/// of day, and where period 0 begins.
struct Plan<'a> {
    tz: &'a TimeZone,
    start: Timestamp,
    ends: &'a Ends,
    kind: Kind,
    frequency: i64,
    /// The start's local date (days since 1970-01-01).
    start_day: i64,
    time: Time,
    /// Day: `start_day`; week: the Monday of week 0; month: year × 12 + month − 1 of period
    /// 0; year: the start's year.
    origin: i64,
    /// Longest run of periods without an occurrence before the rule is known never to match.
    max_empty_run: i64,
    /// 1 when the start's own local date is a candidate whose instant is before `start` (the
    /// start is the second pass through a repeated hour), so numbering begins one later.
    offset0: i64,
}

impl<'a> Plan<'a> {
    fn new(schedule: &'a Schedule, repeats: &'a Repeats) -> Option<Self> {
        let tz = schedule.zone.time_zone();
        let local = tz.to_datetime(schedule.start);
        let date = local.date();
        let start_day = epoch_day(date);
        let frequency = i64::from(repeats.frequency.max(1));
        let (kind, origin, max_empty_run) = match (repeats.period, &repeats.on) {
            (Period::Day, _) => (Kind::Day, start_day, 2),
            (Period::Week, on) => {
                let mut offsets: Vec<i64> = match on {
                    On::Weekdays(days) if !days.is_empty() => days
                        .iter()
                        .map(|d| i64::from(d.to_monday_zero_offset()))
                        .collect(),
                    _ => vec![i64::from(date.weekday().to_monday_zero_offset())],
                };
                offsets.sort_unstable();
                offsets.dedup();
                let monday = start_day - i64::from(date.weekday().to_monday_zero_offset());
                (Kind::Week(offsets), monday, 2)
            }
            (Period::Month, on) => {
                let days = match on {
                    On::MonthDays(days) if !days.is_empty() => days.clone(),
                    _ => vec![date.day()],
                };
                let origin = i64::from(date.year()) * 12 + i64::from(date.month()) - 1;
                let run = CYCLE_MONTHS / gcd(frequency, CYCLE_MONTHS) + 2;
                (Kind::Month(days), origin, run)
            }
            (Period::Year, _) => {
                let kind = Kind::Year {
                    month: i64::from(date.month()),
                    day: i64::from(date.day()),
                };
                let run = CYCLE_YEARS / gcd(frequency, CYCLE_YEARS) + 2;
                (kind, i64::from(date.year()), run)
            }
        };
        let mut plan = Plan {
            tz,
            start: schedule.start,
            ends: &repeats.ends,
            kind,
            frequency,
            start_day,
            time: local.time(),
            origin,
            max_empty_run,
            offset0: 0,
        };
        let starts_on_start_day = plan.period_days(0)?.first() == Some(&start_day);
        if starts_on_start_day && plan.instant(start_day).is_some_and(|at| at < plan.start) {
            plan.offset0 = 1;
        }
        Some(plan)
    }

    /// The candidate dates of period `p` (day numbers), sorted, none before the start's date.
    /// `None` when the period lies beyond any representable date.
    fn period_days(&self, p: i64) -> Option<Vec<i64>> {
        let step = p.checked_mul(self.frequency)?;
        let mut days = match &self.kind {
            Kind::Day => vec![self.origin.checked_add(step)?],
            Kind::Week(offsets) => {
                let monday = self.origin.checked_add(step.checked_mul(7)?)?;
                offsets.iter().map(|o| monday + o).collect()
            }
            Kind::Month(list) => {
                let index = self.origin.checked_add(step)?;
                let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
                if y.abs() > 9999 {
                    return None;
                }
                let mask = month_mask(list, days_in_month(y, m));
                (1..=31)
                    .filter(|d| mask & (1 << d) != 0)
                    .map(|d| days_from_civil(y, m, d))
                    .collect()
            }
            Kind::Year { month, day } => {
                let y = self.origin.checked_add(step)?;
                if y.abs() > 9999 {
                    return None;
                }
                if *day <= days_in_month(y, *month) {
                    vec![days_from_civil(y, *month, *day)]
                } else {
                    Vec::new()
                }
            }
        };
        if days.iter().any(|d| d.abs() > 5_000_000) {
            // Beyond jiff's dates (years -9999..=9999 are days -4.37 to +2.93 million).
            return None;
        }
        days.retain(|&d| d >= self.start_day);
        Some(days)
    }

    /// The number of candidate dates in periods `0..p`.
    fn count_before(&self, p: i64) -> Option<i64> {
        if p <= 0 {
            return Some(0);
        }
        match &self.kind {
            Kind::Day => Some(p),
            Kind::Week(offsets) => {
                let in_week0 = i64::try_from(self.period_days(0)?.len()).ok()?;
                let per_week = i64::try_from(offsets.len()).ok()?;
                in_week0.checked_add((p - 1).checked_mul(per_week)?)
            }
            Kind::Month(list) => {
                let mut count = i64::try_from(self.period_days(0)?.len()).ok()?;
                for k in 1..p {
                    let index = self.origin.checked_add(k.checked_mul(self.frequency)?)?;
                    let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
                    count += i64::from(month_mask(list, days_in_month(y, m)).count_ones());
                }
                Some(count)
            }
            Kind::Year { month, day } => {
                let mut count = 1;
                for k in 1..p {
                    let y = self.origin.checked_add(k.checked_mul(self.frequency)?)?;
                    count += i64::from(*day <= days_in_month(y, *month));
                }
                Some(count)
            }
        }
    }

    /// The period holding day `day` (at or after the start's date).
    fn period_of(&self, day: i64) -> i64 {
        let p = match &self.kind {
            Kind::Day => (day - self.origin).div_euclid(self.frequency),
            Kind::Week(_) => (day - self.origin).div_euclid(7 * self.frequency),
            Kind::Month(_) => {
                let (y, m, _) = civil_from_days(day);
                (y * 12 + m - 1 - self.origin).div_euclid(self.frequency)
            }
            Kind::Year { .. } => {
                let (y, _, _) = civil_from_days(day);
                (y - self.origin).div_euclid(self.frequency)
            }
        };
        p.max(0)
    }

    /// The due instant of candidate date `day`: the start's local time of day on that date,
    /// gaps shifted forward and folds taken at their first pass.
    fn instant(&self, day: i64) -> Option<Timestamp> {
        let (y, m, d) = civil_from_days(day);
        let date = Date::new(
            i16::try_from(y).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(d).ok()?,
        )
        .ok()?;
        self.tz
            .to_ambiguous_timestamp(DateTime::from_parts(date, self.time))
            .compatible()
            .ok()
    }

    /// A cursor positioned a little before the occurrences near `t`: at the period holding
    /// the day two days before `t`'s local date, which no shift of a local time can cross.
    fn cursor_near(&self, t: Timestamp) -> Cursor<'_, 'a> {
        let target = epoch_day(self.tz.to_datetime(t).date()) - 2;
        let start = Cursor {
            plan: self,
            period: 0,
            pending: Vec::new(),
            raw: 0,
            last_at: None,
            empty_run: 0,
            done: false,
        };
        if target <= self.start_day {
            return start;
        }
        let period = self.period_of(target);
        let Some(raw) = self.count_before(period) else {
            return Cursor {
                done: true,
                ..start
            };
        };
        // The instant of the candidate just before this period, to keep dropping duplicates.
        let last_at = (1..=self.max_empty_run)
            .map(|back| period - back)
            .take_while(|&q| q >= 0)
            .find_map(|q| self.period_days(q).and_then(|days| days.last().copied()))
            .and_then(|day| self.instant(day));
        Cursor {
            period,
            raw,
            last_at,
            ..start
        }
    }
}

/// The days of a month (bit `d` for day `d`) that `list` names in a month of `len` days.
fn month_mask(list: &[i8], len: i64) -> u64 {
    list.iter().fold(0, |mask, &k| {
        let k = i64::from(k);
        let day = if k > 0 { k } else { len + 1 + k };
        if (1..=len).contains(&day) {
            mask | (1 << day)
        } else {
            mask
        }
    })
}

/// Walks the candidate dates from some period on, numbering them and applying the ends.
struct Cursor<'p, 'a> {
    plan: &'p Plan<'a>,
    /// The next period to expand.
    period: i64,
    /// Candidate dates of the current period not yet consumed, in reverse order.
    pending: Vec<i64>,
    /// Candidates consumed so far, counting from the start's period.
    raw: i64,
    /// The latest instant of any candidate consumed so far.
    last_at: Option<Timestamp>,
    empty_run: i64,
    done: bool,
}

impl Cursor<'_, '_> {
    fn next_occurrence(&mut self) -> Option<Occurrence> {
        let plan = self.plan;
        loop {
            if self.done {
                return None;
            }
            let Some(day) = self.pending.pop() else {
                self.expand();
                continue;
            };
            self.raw += 1;
            let seq = self.raw - plan.offset0;
            let ended = match plan.ends {
                Ends::Never | Ends::AtInstant(_) => false,
                Ends::AfterCount(n) => seq > i64::from(*n),
                Ends::OnDate(last) => day > epoch_day(*last),
            };
            let at = match plan.instant(day) {
                Some(at) if !ended => at,
                _ => {
                    self.done = true;
                    return None;
                }
            };
            if let Ends::AtInstant(last) = plan.ends {
                if at > *last {
                    self.done = true;
                    return None;
                }
            }
            let duplicate = self.last_at.is_some_and(|last| at <= last);
            self.last_at = Some(self.last_at.map_or(at, |last| last.max(at)));
            if duplicate || at < plan.start {
                continue;
            }
            return match u32::try_from(seq) {
                Ok(seq) if seq >= 1 => Some(Occurrence { at, seq }),
                _ => {
                    self.done = true;
                    None
                }
            };
        }
    }

    fn expand(&mut self) {
        let Some(mut days) = self.plan.period_days(self.period) else {
            self.done = true;
            return;
        };
        self.period += 1;
        if days.is_empty() {
            self.empty_run += 1;
            if self.empty_run > self.plan.max_empty_run {
                self.done = true;
            }
            return;
        }
        self.empty_run = 0;
        days.reverse();
        self.pending = days;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_through_civil_dates() {
        for z in (-3_700_000..3_700_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19_000), (2022, 1, 8));
    }

    #[test]
    fn epoch_day_agrees_with_jiff() {
        let date = jiff::civil::date(2024, 2, 29);
        let days = date
            .since(jiff::civil::date(1970, 1, 1))
            .unwrap()
            .get_days();
        assert_eq!(epoch_day(date), i64::from(days));
    }

    #[test]
    fn zone_names_are_canonical_and_offsets_formatted() {
        assert_eq!(
            TaskZone::parse("europe/berlin").unwrap().name(),
            "Europe/Berlin"
        );
        assert_eq!(TaskZone::parse("Z").unwrap().name(), "UTC");
        assert_eq!(TaskZone::parse("UTC").unwrap().name(), "UTC");
        assert_eq!(TaskZone::parse("+05:30").unwrap().name(), "+05:30");
        assert_eq!(TaskZone::parse("-04:00").unwrap().name(), "-04:00");
        assert_eq!(
            TaskZone::fixed(Offset::from_seconds(0).unwrap()).name(),
            "+00:00"
        );
        assert!(TaskZone::parse("Mars/Olympus").is_err());
        assert!(TaskZone::parse("+5:30").is_err());
        assert!(TaskZone::parse("+24:00").is_err());
        assert!(TaskZone::parse("").is_err());
    }
}
