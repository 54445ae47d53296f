//! Reading an uploaded iCalendar file (RFC 5545), as Google Calendar, Apple Calendar, Outlook
//! and Thunderbird export it, into [`Item`]s that the caller turns into tasks. Pure: text in,
//! values out.
//!
//! What is read:
//!
//! - **Content lines.** Unfolded (a line starting with a space or tab continues the one
//!   before), CRLF or LF line ends, an optional UTF-8 byte order mark. Names and parameter
//!   names are case-insensitive; parameter values may be quoted (`"…"`, holding `:` `;` `,`)
//!   and listed (`a,b`). TEXT values are unescaped (`\n` `\N` `\,` `\;` `\\`). A line that is
//!   not a content line (no `:` after a name) is ignored: exporters that forget to fold a long
//!   line would otherwise cost the whole file.
//! - **Items.** Each `VEVENT` and `VTODO` with its `UID`, `SUMMARY` (`(no title)` when absent or
//!   empty), `DESCRIPTION`, start (`DTSTART`; a `VTODO` without one starts at its `DUE`), end
//!   (`DTEND` or `DTSTART` + `DURATION` for an event, `DUE` for a to-do that also has a
//!   `DTSTART`), `RRULE` (one, parsed by [`Rrule::parse`]), every `EXDATE` and `RDATE` value
//!   (a `PERIOD` counts by its start), and its alarms. Components sharing a `UID` with an item
//!   and carrying a `RECURRENCE-ID` are that item's [`Override`]s (a cancelled one has no new
//!   start; one without `DTSTART` keeps the rule's); `RANGE=THISANDFUTURE` is read as that one
//!   occurrence. An override whose item is absent is an item of its own.
//! - **Date-times.** `…Z` is UTC (zone `UTC`); with `TZID` it is local on that zone; without
//!   either it is floating. A floating `DTSTART` (or the `DUE` a to-do starts at) is read on the
//!   caller's fallback zone; every other floating value of the item (`DTEND`, `EXDATE`,
//!   `RECURRENCE-ID`, an override's `DTSTART`, …) on the item's own zone, so an all-day or
//!   floating series and its exceptions agree. A `DATE` (`VALUE=DATE` or 8 digits) is all-day:
//!   local midnight on that date on the `TZID` zone, else as a floating value. A local time in a
//!   DST gap or fold resolves as Chime resolves them everywhere (jiff's `Compatible`: a gap is
//!   passed forward, a fold takes the earlier instant), and [`Start::local`] is the wall clock
//!   of the resolved instant (02:30 on Berlin's spring-forward day is 03:30).
//! - **Time zones.** A `TZID` is, in this order: (1) an IANA name, also after a prefix such as
//!   `/mozilla.org/20070129_1/` (the longest suffix of `/`-separated parts that is one);
//!   (2) for a `VTIMEZONE` of that `TZID`: its `X-LIC-LOCATION` when that is an IANA name, else
//!   a Windows name (`W. Europe Standard Time`) through a table of common ones to CLDR's zone,
//!   kept only when that zone's offsets agree with the `VTIMEZONE`'s rules (a `VTIMEZONE`
//!   without rules cannot disagree); (3) else the `VTIMEZONE`'s rules (`STANDARD`/`DAYLIGHT`
//!   onsets from `DTSTART`, `RRULE`, `RDATE` and `TZOFFSETFROM`/`TO`) compared with every zone
//!   of the bundled database at noon UTC on the 1st and 15th of each month, and an hour either
//!   side of each transition, over the value's year and the next two. Of the zones that agree
//!   everywhere, one whose name shares a word with the `TZID` wins (`Berlin` →
//!   `Europe/Berlin`), then the first of a short list of well-known zones (`UTC`,
//!   `Europe/London`, `Europe/Berlin`, `America/New_York`, …), then the first alphabetically.
//!   Only region zones (`Europe/…`, `America/…`, …, and `UTC`) are candidates, never links
//!   such as `US/Eastern`. A `VTIMEZONE` that agrees with no zone is a fixed offset when it
//!   has one offset only; otherwise its items are skipped. Every value of an item is matched
//!   over the years of the item's start, and a file has at most [`MAX_ZONE_RULES`] such
//!   matches (per `TZID` and year); items past that are skipped.
//! - **Alarms.** `VALARM`s with `ACTION` `DISPLAY`, `AUDIO` or `EMAIL` (others, such as
//!   Apple's `ACTION:NONE` placeholder, are not reminders); `TRIGGER` as a signed duration
//!   relative to the start (or, `RELATED=END`, to the end; a day counts 24 hours) or a UTC
//!   date-time. An alarm whose trigger cannot be read is dropped alone; identical alarms
//!   count once.
//!
//! What is skipped, each with its reason in [`Import::skipped`], so one bad item never fails
//! the file: a cancelled item (`STATUS:CANCELLED`), a completed to-do (`STATUS:COMPLETED` or
//! `COMPLETED`), an item with no start, an item with a value that cannot be read (a bad
//! `DTSTART`, an `RRULE` that [`Rrule::parse`] refuses, a `TZID` that resolves to no zone),
//! the overrides of a skipped item, and `VJOURNAL` and `VFREEBUSY` components (they hold no
//! time to remind at). Other components and properties are ignored.
//!
//! The whole file fails ([`ImportError`]) only when it is no calendar (no `BEGIN:VCALENDAR`),
//! larger than [`MAX_BYTES`], holds more than [`MAX_COMPONENTS`] components, or its
//! `BEGIN`/`END` structure is broken (unterminated, mismatched, nested deeper than
//! [`MAX_DEPTH`]): then nothing after the break can be trusted to belong where it stands.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp};

use crate::recurrence::rrule::{End, Rrule};
use crate::recurrence::TaskZone;

/// The largest file read, in bytes (2 MiB).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// The most components (`BEGIN` lines) a file may hold.
pub const MAX_COMPONENTS: usize = 2_000;
/// The deepest nesting of components (`VCALENDAR` › `VEVENT` › `VALARM` is 3).
pub const MAX_DEPTH: usize = 8;
/// The most `VTIMEZONE`s (per `TZID` and year) worked out from their rules in one file: each
/// is compared with the whole database, and a file must not be able to ask for that without
/// end.
pub const MAX_ZONE_RULES: usize = 100;

/// What a file holds: the items read and those skipped, each in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Import {
    pub items: Vec<Item>,
    pub skipped: Vec<Skipped>,
}

/// A component not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub uid: Option<String>,
    pub summary: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    Todo,
}

/// One `VEVENT` or `VTODO`, with its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub uid: Option<String>,
    pub kind: Kind,
    /// `SUMMARY`, unescaped and trimmed; `(no title)` when absent or empty.
    pub summary: String,
    /// `DESCRIPTION`, unescaped; `None` when absent or blank (Outlook writes `\n`).
    pub description: Option<String>,
    /// `DTSTART`; for a to-do without one, `DUE`.
    pub start: Start,
    /// `DTEND` or `DTSTART` + `DURATION` (event), `DUE` (to-do with a `DTSTART`).
    pub end: Option<Start>,
    pub rrule: Option<Rrule>,
    /// Every `EXDATE` value.
    pub exdates: Vec<Timestamp>,
    /// Every `RDATE` value (a `PERIOD` by its start).
    pub rdates: Vec<Timestamp>,
    pub overrides: Vec<Override>,
    pub alarms: Vec<Alarm>,
}

/// A date-time as an item gives it: its zone, its wall clock there and its instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The `TZID`'s zone, `UTC` for a `…Z` value, else the zone floating values are read on.
    pub zone: TaskZone,
    /// `at` on the zone's wall clock (a time in a DST gap as resolved, not as written).
    pub local: DateTime,
    pub at: Timestamp,
    /// A `DATE` value: `local` is midnight.
    pub all_day: bool,
}

/// One occurrence of a recurring item changed by a `RECURRENCE-ID` component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// The instant the rule gives the occurrence.
    pub recurrence_id: Timestamp,
    /// Its new start; `None` when cancelled.
    pub start: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// Before (negative) or after the start, or the end when `to_end`.
    Relative {
        offset: SignedDuration,
        to_end: bool,
    },
    Absolute(Timestamp),
}

/// Why a whole file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("not an iCalendar file: it has no BEGIN:VCALENDAR")]
    NotACalendar,
    #[error("the file is {bytes} bytes; at most {MAX_BYTES} are read")]
    TooLarge { bytes: usize },
    #[error("the file holds more than {MAX_COMPONENTS} components")]
    TooManyComponents,
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

/// Reads an iCalendar text; floating date-times are read on `fallback_zone`.
pub fn parse(text: &str, fallback_zone: &TaskZone) -> Result<Import, ImportError> {
    if text.len() > MAX_BYTES {
        return Err(ImportError::TooLarge { bytes: text.len() });
    }
    let calendars = tree(text)?;
    let components: Vec<&Component> = calendars.iter().flat_map(|c| &c.children).collect();
    let mut zones = Zones::new(components.iter().copied().filter(|c| c.name == "VTIMEZONE"));
    let is_item = |c: &Component| c.name == "VEVENT" || c.name == "VTODO";
    let masters: HashSet<&str> = components
        .iter()
        .filter(|c| is_item(c) && c.prop("RECURRENCE-ID").is_none())
        .filter_map(|c| c.uid())
        .collect();

    let mut import = Import::default();
    let mut item_of_uid: HashMap<String, usize> = HashMap::new();
    let mut overrides = Vec::new();
    for &c in &components {
        match c.name.as_str() {
            "VEVENT" | "VTODO" => {
                let overrides_a_master = c.uid().is_some_and(|uid| masters.contains(uid));
                if c.prop("RECURRENCE-ID").is_some() && overrides_a_master {
                    overrides.push(c);
                    continue;
                }
                match item(c, &mut zones, fallback_zone) {
                    Ok(item) => {
                        if let Some(uid) = &item.uid {
                            item_of_uid.entry(uid.clone()).or_insert(import.items.len());
                        }
                        import.items.push(item);
                    }
                    Err(reason) => import.skipped.push(c.skipped(reason)),
                }
            }
            "VJOURNAL" => import
                .skipped
                .push(c.skipped("VJOURNAL: a journal entry has no time to remind at".to_owned())),
            "VFREEBUSY" => import
                .skipped
                .push(c.skipped("VFREEBUSY: free/busy time is not an event or a to-do".to_owned())),
            _ => {}
        }
    }
    for c in overrides {
        let master = c.uid().and_then(|uid| item_of_uid.get(uid)).copied();
        let Some(index) = master else {
            import.skipped.push(
                c.skipped("an override (RECURRENCE-ID) of an item that was skipped".to_owned()),
            );
            continue;
        };
        let master = import.items[index].start.clone();
        match override_of(c, &master, &mut zones) {
            Ok(o) => import.items[index].overrides.push(o),
            Err(reason) => import.skipped.push(c.skipped(reason)),
        }
    }
    Ok(import)
}

fn item(c: &Component, zones: &mut Zones<'_>, fallback: &TaskZone) -> Result<Item, String> {
    let kind = if c.name == "VTODO" {
        Kind::Todo
    } else {
        Kind::Event
    };
    if c.is_cancelled() {
        return Err("cancelled (STATUS:CANCELLED)".to_owned());
    }
    let status_completed = c
        .value("STATUS")
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("COMPLETED"));
    if kind == Kind::Todo && (status_completed || c.prop("COMPLETED").is_some()) {
        return Err("a completed to-do".to_owned());
    }
    let dtstart = c.prop("DTSTART");
    let due = match kind {
        Kind::Todo => c.prop("DUE"),
        Kind::Event => None,
    };
    let start = match (dtstart.or(due), kind) {
        (Some(p), _) => zones.read(p, &p.value, fallback, None)?,
        (None, Kind::Event) => return Err("no DTSTART".to_owned()),
        (None, Kind::Todo) => return Err("neither DTSTART nor DUE".to_owned()),
    };
    let zone = start.zone.clone();
    let year = Some(start.local.year());
    let end = match kind {
        Kind::Event => match (c.prop("DTEND"), c.prop("DURATION")) {
            (Some(p), _) => Some(zones.read(p, &p.value, &zone, year)?),
            (None, Some(p)) => Some(after(&start, &p.value)?),
            (None, None) => None,
        },
        Kind::Todo => match (dtstart, due) {
            (Some(_), Some(p)) => Some(zones.read(p, &p.value, &zone, year)?),
            _ => None,
        },
    };
    let rrule = match c.props("RRULE").collect::<Vec<_>>()[..] {
        [] => None,
        [p] => Some(rrule(&p.value).map_err(|e| format!("RRULE refused: {e}"))?),
        [..] => return Err("more than one RRULE; one is read".to_owned()),
    };
    let mut exdates = Vec::new();
    for p in c.props("EXDATE") {
        exdates.extend(zones.instants(p, &zone, year)?);
    }
    let mut rdates = Vec::new();
    for p in c.props("RDATE") {
        rdates.extend(zones.instants(p, &zone, year)?);
    }
    let mut alarms = Vec::new();
    for a in c.children.iter().filter(|a| a.name == "VALARM") {
        if let Some(alarm) = alarm(a) {
            if !alarms.contains(&alarm) {
                alarms.push(alarm);
            }
        }
    }
    Ok(Item {
        uid: c.uid().map(str::to_owned),
        kind,
        summary: c.summary().unwrap_or_else(|| "(no title)".to_owned()),
        description: c
            .value("DESCRIPTION")
            .map(unescape)
            .filter(|d| !d.trim().is_empty()),
        start,
        end,
        rrule,
        exdates,
        rdates,
        overrides: Vec::new(),
        alarms,
    })
}

/// A `RECURRENCE-ID` component of the item that starts at `master`.
fn override_of(c: &Component, master: &Start, zones: &mut Zones<'_>) -> Result<Override, String> {
    let (zone, year) = (&master.zone, Some(master.local.year()));
    let id = c
        .prop("RECURRENCE-ID")
        .ok_or_else(|| "no RECURRENCE-ID".to_owned())?;
    let recurrence_id = zones.read(id, &id.value, zone, year)?.at;
    let start = match c.prop("DTSTART") {
        _ if c.is_cancelled() => None,
        Some(p) => Some(zones.read(p, &p.value, zone, year)?.at),
        None => Some(recurrence_id),
    };
    Ok(Override {
        recurrence_id,
        start,
    })
}

/// [`Rrule::parse`] for ASCII values only: a RECUR value is ASCII (RFC 5545 3.3.10), and
/// the parser slices `BYDAY` entries by bytes, which a multi-byte character would split.
fn rrule(value: &str) -> Result<Rrule, String> {
    if !value.is_ascii() {
        return Err(format!("`{}` has characters outside ASCII", shown(value)));
    }
    Rrule::parse(value).map_err(|e| e.to_string())
}

/// `start` + an RFC 5545 duration: days on the wall clock, hours to seconds on the timeline.
fn after(start: &Start, value: &str) -> Result<Start, String> {
    let bad = || format!("DURATION `{}` is not a duration", shown(value));
    let d = parse_duration(value).ok_or_else(bad)?;
    let sign = if d.negative { -1 } else { 1 };
    let tz = start.zone.time_zone();
    let days = Span::new().try_days(sign * d.days).map_err(|_| bad())?;
    let at = start
        .local
        .checked_add(days)
        .ok()
        .and_then(|local| tz.to_ambiguous_timestamp(local).compatible().ok())
        .and_then(|at| {
            at.checked_add(SignedDuration::from_secs(sign * d.seconds))
                .ok()
        })
        .ok_or_else(bad)?;
    Ok(Start {
        zone: start.zone.clone(),
        local: tz.to_datetime(at),
        at,
        all_day: start.all_day && d.seconds == 0,
    })
}

fn alarm(c: &Component) -> Option<Alarm> {
    let action = c.value("ACTION")?.trim().to_ascii_uppercase();
    if !matches!(action.as_str(), "DISPLAY" | "AUDIO" | "EMAIL") {
        return None;
    }
    let trigger = c.prop("TRIGGER")?;
    let absolute = trigger
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME"));
    if absolute {
        return match parse_raw(&trigger.value)? {
            Raw::Utc(t) => Some(Alarm::Absolute(t)),
            Raw::Date(_) | Raw::Local(_) => None,
        };
    }
    let d = parse_duration(&trigger.value)?;
    let secs = d.days.checked_mul(86_400)?.checked_add(d.seconds)?;
    Some(Alarm::Relative {
        offset: SignedDuration::from_secs(if d.negative { -secs } else { secs }),
        to_end: trigger
            .param("RELATED")
            .is_some_and(|r| r.eq_ignore_ascii_case("END")),
    })
}

// ---- Content lines and components ----

/// One content line: `NAME;PARAM=a,"b:c":value`, the name and parameter names upper-cased.
#[derive(Debug)]
struct Prop {
    name: String,
    params: Vec<(String, Vec<String>)>,
    value: String,
}

impl Prop {
    /// The first value of the parameter `name` (upper-case).
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, values)| values.first())
            .map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Component {
    /// Upper-cased: `VEVENT`.
    name: String,
    /// The line of its `BEGIN`.
    line: usize,
    props: Vec<Prop>,
    children: Vec<Component>,
}

impl Component {
    fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    fn props<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Prop> {
        self.props.iter().filter(move |p| p.name == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.prop(name).map(|p| p.value.as_str())
    }

    fn uid(&self) -> Option<&str> {
        self.value("UID").map(str::trim).filter(|u| !u.is_empty())
    }

    fn summary(&self) -> Option<String> {
        self.value("SUMMARY")
            .map(|s| unescape(s).trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn is_cancelled(&self) -> bool {
        self.value("STATUS")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("CANCELLED"))
    }

    fn skipped(&self, reason: String) -> Skipped {
        Skipped {
            uid: self.uid().map(str::to_owned),
            summary: self.summary(),
            reason,
        }
    }
}

/// Logical lines, unfolded, each with the number of the physical line it starts on.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ if raw.trim().is_empty() => {}
            _ => lines.push((i + 1, raw.to_owned())),
        }
    }
    lines
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `None` when the line is not a content line.
fn content_line(text: &str) -> Option<Prop> {
    let name_end = text.find([';', ':'])?;
    let name = &text[..name_end];
    if !is_name(name) {
        return None;
    }
    let mut rest = &text[name_end..];
    let mut params = Vec::new();
    while let Some(after) = rest.strip_prefix(';') {
        let (param, mut cursor) = after.split_once('=')?;
        if !is_name(param) {
            return None;
        }
        let mut values = Vec::new();
        loop {
            if let Some(quoted) = cursor.strip_prefix('"') {
                let (value, tail) = quoted.split_once('"')?;
                values.push(value.to_owned());
                cursor = tail;
            } else {
                let end = cursor.find([',', ';', ':', '"'])?;
                values.push(cursor[..end].to_owned());
                cursor = &cursor[end..];
            }
            match cursor.strip_prefix(',') {
                Some(next) => cursor = next,
                None => break,
            }
        }
        params.push((param.to_ascii_uppercase(), values));
        rest = cursor;
    }
    Some(Prop {
        name: name.to_ascii_uppercase(),
        params,
        value: rest.strip_prefix(':')?.to_owned(),
    })
}

fn malformed(line: usize, reason: String) -> ImportError {
    ImportError::Malformed { line, reason }
}

/// The file's `VCALENDAR`s, each a tree of components; other top-level components are dropped.
fn tree(text: &str) -> Result<Vec<Component>, ImportError> {
    let lines = unfold(text);
    let begins_calendar = |l: &str| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("BEGIN") && value.trim().eq_ignore_ascii_case("VCALENDAR")
        })
    };
    if !lines.iter().any(|(_, l)| begins_calendar(l)) {
        return Err(ImportError::NotACalendar);
    }
    let mut stack: Vec<Component> = Vec::new();
    let mut calendars = Vec::new();
    let mut count = 0;
    for (number, line) in lines {
        let Some(prop) = content_line(&line) else {
            continue;
        };
        match prop.name.as_str() {
            "BEGIN" => {
                count += 1;
                if count > MAX_COMPONENTS {
                    return Err(ImportError::TooManyComponents);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(
                        number,
                        format!("components nested more than {MAX_DEPTH} deep"),
                    ));
                }
                stack.push(Component {
                    name: prop.value.trim().to_ascii_uppercase(),
                    line: number,
                    ..Component::default()
                });
            }
            "END" => {
                let name = prop.value.trim().to_ascii_uppercase();
                let Some(open) = stack.pop() else {
                    return Err(malformed(number, format!("END:{name} without a BEGIN")));
                };
                if open.name != name {
                    return Err(malformed(
                        number,
                        format!(
                            "END:{name} closes BEGIN:{} of line {}",
                            open.name, open.line
                        ),
                    ));
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(open),
                    None if open.name == "VCALENDAR" => calendars.push(open),
                    None => {}
                }
            }
            _ => {
                if let Some(open) = stack.last_mut() {
                    open.props.push(prop);
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            open.line,
            format!("BEGIN:{} is never ended", open.name),
        ));
    }
    Ok(calendars)
}

/// RFC 5545 TEXT: `\n` and `\N` are line breaks; any other escaped character is itself.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A value as a reason quotes it: at most 40 characters.
fn shown(value: &str) -> String {
    let value = value.trim();
    match value.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_owned(),
    }
}

// ---- Values ----

/// A DATE or DATE-TIME value before a zone is applied.
#[derive(Debug, Clone, Copy)]
enum Raw {
    Date(Date),
    Local(DateTime),
    Utc(Timestamp),
}

/// `19980118`, `19980118T230000` or `19980118T230000Z` (a leap second 60 reads as 59).
fn parse_raw(text: &str) -> Option<Raw> {
    let text = text.trim();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let date_part = text.get(..8).filter(|d| digits(d))?;
    let num = |s: &str| s.parse::<i16>().ok();
    let date = Date::new(
        num(&date_part[..4])?,
        num(&date_part[4..6])? as i8,
        num(&date_part[6..])? as i8,
    )
    .ok()?;
    let rest = &text[8..];
    if rest.is_empty() {
        return Some(Raw::Date(date));
    }
    let (time, utc) = match rest.strip_suffix(['Z', 'z']) {
        Some(t) => (t, true),
        None => (rest, false),
    };
    let time = time
        .strip_prefix(['T', 't'])
        .filter(|t| t.len() == 6 && digits(t))?;
    let field = |r: std::ops::Range<usize>| num(&time[r]).map(|n| n as i8);
    let time = Time::new(field(0..2)?, field(2..4)?, field(4..6)?.min(59), 0).ok()?;
    let dt = date.to_datetime(time);
    if utc {
        Some(Raw::Utc(dt.to_zoned(TimeZone::UTC).ok()?.timestamp()))
    } else {
        Some(Raw::Local(dt))
    }
}

/// An RFC 5545 DURATION (3.3.6): days (weeks count 7) on the calendar, the rest in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Duration {
    negative: bool,
    days: i64,
    seconds: i64,
}

/// `-PT15M`, `P1D`, `-P1DT2H30M`, `P1W`, `-P0DT0H30M0S`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let date = amounts(date, &['W', 'D'])?;
    let time = match time {
        Some(time) => Some(amounts(time, &['H', 'M', 'S'])?).filter(|t| !t.is_empty())?,
        None => Vec::new(),
    };
    if date.is_empty() && time.is_empty() {
        return None;
    }
    let mut d = Duration {
        negative,
        days: 0,
        seconds: 0,
    };
    for (unit, n) in date.into_iter().chain(time) {
        match unit {
            'W' => d.days = d.days.checked_add(n.checked_mul(7)?)?,
            'D' => d.days = d.days.checked_add(n)?,
            'H' => d.seconds = d.seconds.checked_add(n.checked_mul(3600)?)?,
            'M' => d.seconds = d.seconds.checked_add(n.checked_mul(60)?)?,
            _ => d.seconds = d.seconds.checked_add(n)?,
        }
    }
    Some(d)
}

/// `1H30M` → `[('H', 1), ('M', 30)]`: units in the order given, each at most once.
fn amounts(text: &str, units: &[char]) -> Option<Vec<(char, i64)>> {
    let mut out = Vec::new();
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let n: i64 = rest[..len].parse().ok()?;
        let unit = rest[len..].chars().next()?.to_ascii_uppercase();
        let at = units.get(next_unit..)?.iter().position(|u| *u == unit)? + next_unit;
        next_unit = at + 1;
        out.push((unit, n));
        // The unit matched an ASCII letter, so it is one byte.
        rest = &rest[len + 1..];
    }
    Some(out)
}

/// `+0200`, `-0500`, `+053000`.
fn utc_offset(text: &str) -> Option<Offset> {
    let text = text.trim();
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = &text[1..];
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part = |r: std::ops::Range<usize>| digits.get(r).map_or(Some(0), |s| s.parse::<i32>().ok());
    let (h, m, s) = (part(0..2)?, part(2..4)?, part(4..6)?);
    if m > 59 || s > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60 + s)).ok()
}

// ---- Time zones ----

/// Resolves `TZID`s against the IANA database and the file's `VTIMEZONE`s, once per zone
/// and year.
struct Zones<'c> {
    timezones: HashMap<&'c str, &'c Component>,
    resolved: HashMap<(String, i16), Result<TaskZone, String>>,
    /// How many `VTIMEZONE`s were worked out from their rules.
    rules_read: usize,
}

impl<'c> Zones<'c> {
    fn new(timezones: impl Iterator<Item = &'c Component>) -> Self {
        let mut by_id = HashMap::new();
        for vtz in timezones {
            if let Some(tzid) = vtz.value("TZID") {
                by_id.entry(tzid.trim()).or_insert(vtz);
            }
        }
        Zones {
            timezones: by_id,
            resolved: HashMap::new(),
            rules_read: 0,
        }
    }

    /// One value of `prop` (which names its `TZID`), floating values on `floating`; a
    /// `VTIMEZONE` is matched over `year` (the item's start's), else the value's own.
    fn read(
        &mut self,
        prop: &Prop,
        value: &str,
        floating: &TaskZone,
        year: Option<i16>,
    ) -> Result<Start, String> {
        let bad = || {
            format!(
                "{} `{}` is not a date or date-time",
                prop.name,
                shown(value)
            )
        };
        let raw = parse_raw(value).ok_or_else(bad)?;
        let date_only = prop
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
        let (local, all_day) = match raw {
            Raw::Utc(at) if !date_only => {
                return Ok(Start {
                    zone: TaskZone::utc(),
                    local: TimeZone::UTC.to_datetime(at),
                    at,
                    all_day: false,
                })
            }
            Raw::Local(dt) if !date_only => (dt, false),
            Raw::Date(d) => (d.to_datetime(Time::midnight()), true),
            Raw::Utc(_) | Raw::Local(_) => return Err(bad()),
        };
        let zone = match prop.param("TZID") {
            Some(tzid) => self.resolve(tzid, year.unwrap_or(local.year()))?,
            None => floating.clone(),
        };
        let tz = zone.time_zone();
        let at = tz
            .to_ambiguous_timestamp(local)
            .compatible()
            .map_err(|_| bad())?;
        Ok(Start {
            local: tz.to_datetime(at),
            zone,
            at,
            all_day,
        })
    }

    /// Every value of an `EXDATE` or `RDATE` line (a `PERIOD` by its start).
    fn instants(
        &mut self,
        prop: &Prop,
        floating: &TaskZone,
        year: Option<i16>,
    ) -> Result<Vec<Timestamp>, String> {
        prop.value
            .split(',')
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                let start = v.split('/').next().unwrap_or(v);
                self.read(prop, start, floating, year).map(|s| s.at)
            })
            .collect()
    }

    fn resolve(&mut self, tzid: &str, year: i16) -> Result<TaskZone, String> {
        let tzid = tzid.trim();
        let key = (tzid.to_owned(), year);
        if let Some(found) = self.resolved.get(&key) {
            return found.clone();
        }
        let found = self.lookup(tzid, year);
        self.resolved.insert(key, found.clone());
        found
    }

    fn lookup(&mut self, tzid: &str, year: i16) -> Result<TaskZone, String> {
        if let Some(zone) = iana(tzid) {
            return Ok(zone);
        }
        let Some(vtz) = self.timezones.get(tzid) else {
            return Err(format!(
                "time zone `{}` is unknown and the calendar has no VTIMEZONE for it",
                shown(tzid)
            ));
        };
        if let Some(zone) = vtz.value("X-LIC-LOCATION").and_then(iana) {
            return Ok(zone);
        }
        if self.rules_read == MAX_ZONE_RULES {
            return Err(format!(
                "time zone `{}`: more than {MAX_ZONE_RULES} time zones to work out from their \
                 rules in one file",
                shown(tzid)
            ));
        }
        self.rules_read += 1;
        let rules = Rules::of(vtz, year);
        if let Some(zone) = windows_zone(tzid) {
            if rules
                .as_ref()
                .is_none_or(|r| r.agrees(zone.time_zone(), year))
            {
                return Ok(zone);
            }
        }
        let no_match = || format!("time zone `{}` matches no known zone", shown(tzid));
        let rules = rules.ok_or_else(no_match)?;
        let tzid_words = words(tzid);
        let agreeing: Vec<&TaskZone> = candidates()
            .iter()
            .filter(|z| rules.agrees(z.time_zone(), year))
            .collect();
        agreeing
            .iter()
            .find(|z| tzid_words.iter().any(|w| words(z.name()).contains(w)))
            .or(agreeing.first())
            .map(|z| (*z).clone())
            .or_else(|| rules.single_offset().map(TaskZone::fixed))
            .ok_or_else(no_match)
    }
}

/// An IANA name, or the longest suffix of its `/`-separated parts that is one
/// (`/mozilla.org/20070129_1/Europe/Berlin` → `Europe/Berlin`). IANA names have at most
/// three parts (`America/Argentina/Buenos_Aires`), so longer suffixes are not tried.
fn iana(tzid: &str) -> Option<TaskZone> {
    let tzid = tzid.trim();
    if let Ok(zone) = TaskZone::parse(tzid) {
        return Some(zone);
    }
    let parts: Vec<&str> = tzid.split('/').filter(|p| !p.is_empty()).collect();
    (parts.len().saturating_sub(3)..parts.len())
        .find_map(|i| TaskZone::parse(&parts[i..].join("/")).ok())
}

/// The lower-case words of a name that may tell a zone's city or region.
fn words(name: &str) -> Vec<String> {
    const GENERIC: [&str; 8] = [
        "standard",
        "daylight",
        "time",
        "zone",
        "custom",
        "customized",
        "summer",
        "winter",
    ];
    name.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !GENERIC.contains(&w.as_str()))
        .collect()
}

/// Windows zone names as Outlook writes them, to CLDR's zone for them (`windowsZones.xml`,
/// territory `001`).
const WINDOWS_ZONES: [(&str, &str); 56] = [
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time", "America/Denver"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Eastern Standard Time", "America/New_York"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("UTC", "UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("FLE Standard Time", "Europe/Kyiv"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Kolkata"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Kathmandu"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
];

fn windows_zone(tzid: &str) -> Option<TaskZone> {
    WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(tzid))
        .and_then(|(_, iana)| TaskZone::parse(iana).ok())
}

/// Well-known zones, chosen first among zones with the same offsets (Berlin over Paris or
/// Oslo, New York over Detroit or Toronto).
const PREFERRED: [&str; 40] = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Helsinki",
    "Europe/Athens",
    "Europe/Moscow",
    "Europe/Istanbul",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Cairo",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Brisbane",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Perth",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Denver",
    "America/Chicago",
    "America/Mexico_City",
    "America/New_York",
    "America/Halifax",
    "America/St_Johns",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "America/Santiago",
];

/// The zones a `VTIMEZONE` may be matched to, in order of preference: [`PREFERRED`], then the
/// bundled database's region zones alphabetically.
fn candidates() -> &'static [TaskZone] {
    static CANDIDATES: OnceLock<Vec<TaskZone>> = OnceLock::new();
    CANDIDATES.get_or_init(|| {
        const REGIONS: [&str; 9] = [
            "Africa/",
            "America/",
            "Antarctica/",
            "Asia/",
            "Atlantic/",
            "Australia/",
            "Europe/",
            "Indian/",
            "Pacific/",
        ];
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|name| name.as_str().to_owned())
            .filter(|name| REGIONS.iter().any(|r| name.starts_with(r)))
            .filter(|name| !PREFERRED.contains(&name.as_str()))
            .collect();
        names.sort();
        names.dedup();
        PREFERRED
            .iter()
            .copied()
            .chain(names.iter().map(String::as_str))
            .filter_map(|name| TaskZone::parse(name).ok())
            .collect()
    })
}

/// The most onsets of one observance looked at (a yearly rule from 1601 to today is ~430).
const MAX_ONSETS: usize = 2_000;

/// A `VTIMEZONE`'s offsets as its observances define them around the years looked at.
#[derive(Debug)]
struct Rules {
    /// The offset before the first transition.
    initial: Offset,
    /// Transitions in order: the instant and the offset from then on.
    transitions: Vec<(Timestamp, Offset)>,
}

impl Rules {
    /// The rules over `year` and the next two; `None` without a readable observance.
    fn of(vtz: &Component, year: i16) -> Option<Rules> {
        let last_year = year.saturating_add(2);
        let near = Date::new(year.saturating_sub(1), 1, 1)
            .ok()?
            .to_datetime(Time::midnight());
        let mut onsets: Vec<(Timestamp, Offset, Offset)> = Vec::new();
        let observances = vtz
            .children
            .iter()
            .filter(|c| c.name == "STANDARD" || c.name == "DAYLIGHT");
        for obs in observances {
            let offset = |name| obs.value(name).and_then(utc_offset);
            let (Some(from), Some(to)) = (offset("TZOFFSETFROM"), offset("TZOFFSETTO")) else {
                continue;
            };
            let start = match obs.value("DTSTART").and_then(parse_raw) {
                Some(Raw::Local(dt)) => dt,
                Some(Raw::Date(d)) => d.to_datetime(Time::midnight()),
                Some(Raw::Utc(t)) => TimeZone::fixed(from).to_datetime(t),
                None => continue,
            };
            // Onsets are local times on the offset in force before them.
            let before = TimeZone::fixed(from);
            let at = |local: DateTime| before.to_ambiguous_timestamp(local).compatible().ok();
            let mut locals = vec![start];
            if let Some(rule) = obs.value("RRULE").and_then(|r| rrule(r).ok()) {
                let expansion = match rule.end {
                    Some(End::Count(_)) => rule.expand(start, &before),
                    _ => rule.expand_near(start, &before, near),
                };
                locals.extend(
                    expansion
                        .take_while(|dt| dt.year() <= last_year)
                        .take(MAX_ONSETS),
                );
            }
            for rdate in obs.props("RDATE") {
                for value in rdate.value.split(',') {
                    match parse_raw(value.split('/').next().unwrap_or(value)) {
                        Some(Raw::Utc(t)) => onsets.push((t, from, to)),
                        Some(Raw::Local(dt)) => locals.push(dt),
                        Some(Raw::Date(d)) => locals.push(d.to_datetime(Time::midnight())),
                        None => {}
                    }
                }
            }
            onsets.extend(locals.into_iter().filter_map(at).map(|t| (t, from, to)));
        }
        onsets.sort_by_key(|(t, ..)| *t);
        let &(_, initial, _) = onsets.first()?;
        Some(Rules {
            initial,
            transitions: onsets.into_iter().map(|(t, _, to)| (t, to)).collect(),
        })
    }

    fn offset_at(&self, t: Timestamp) -> Offset {
        match self.transitions.partition_point(|(at, _)| *at <= t) {
            0 => self.initial,
            n => self.transitions[n - 1].1,
        }
    }

    /// The one offset of rules that never change it.
    fn single_offset(&self) -> Option<Offset> {
        self.transitions
            .iter()
            .all(|(_, to)| *to == self.initial)
            .then_some(self.initial)
    }

    /// Whether `zone` has these rules' offset at noon UTC on the 1st and 15th of each month of
    /// `year` and the next two, and an hour either side of each transition in those years.
    fn agrees(&self, zone: &TimeZone, year: i16) -> bool {
        let years = year..=year.saturating_add(2);
        let noons = years.clone().flat_map(|y| {
            (1..=12).flat_map(move |m| {
                [1, 15].into_iter().filter_map(move |d| {
                    let noon = Date::new(y, m, d)
                        .ok()?
                        .to_datetime(Time::new(12, 0, 0, 0).ok()?);
                    noon.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
                })
            })
        });
        let hour = SignedDuration::from_hours(1);
        let around_transitions = self
            .transitions
            .iter()
            .filter(|(t, _)| years.contains(&t.to_zoned(TimeZone::UTC).year()))
            .flat_map(|(t, _)| [t.checked_sub(hour).ok(), t.checked_add(hour).ok()])
            .flatten();
        noons
            .chain(around_transitions)
            .all(|t| zone.to_offset(t) == self.offset_at(t))
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
