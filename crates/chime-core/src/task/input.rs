//! The lenient reading of a task body from the API (see the [`crate::task`] module doc for
//! what it accepts). It runs once, at the HTTP edge; what is stored or sent on the bus is the
//! strict form of [`super::stored`], never read by this module.

use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::body::{EscalationIn, MissedIn, NagIn, NotifyIn, TaskIn};
use super::datetime::{parse_date_time, EXPECTED_DATE_TIME};
use super::{
    DestinationId, EmailAddress, Escalation, MissedPolicy, Nag, Notify, ParseOptions, PhoneNumber,
    TaskName, TaskSpec,
};
use crate::error::{FieldError, FieldErrors};
use crate::sent::Sent;
mod repeats;

use crate::recurrence::{Exceptions, Schedule, TaskZone};
use repeats::{integer, parse_repeats};

pub const MAX_DESCRIPTION_CHARS: usize = 4000;
const MAX_FREQUENCY: i64 = 1000;
const MAX_COUNT: i64 = 100_000;

/// The lenient reading of a body: see the module doc of [`crate::task`].
pub(super) fn parse(body: Value, options: &ParseOptions) -> Result<TaskSpec, FieldErrors> {
    if !body.is_object() {
        return Err(FieldErrors::one(
            "",
            Some(body),
            "the body must be a JSON object",
        ));
    }
    let mut input = TaskIn::deserialize(body)
        // Cannot happen for an object: every field of `TaskIn` takes any value.
        .map_err(|e| FieldErrors::one("", None, e.to_string()))?;
    let mut errs = Errors::default();
    let name = parse_name(input.name.get(), &mut errs);
    let description = parse_description(input.description.get(), &mut errs);
    let start = parse_start(input.start_date.get(), &mut errs);
    let zone = parse_zone(input.time_zone.get(), &mut errs);
    let repeats = parse_repeats(&mut input.repeats, &mut errs);
    let notify = parse_notify(&mut input.notify, options, &mut errs);
    let missed = parse_missed(&mut input.missed, &mut errs);
    let flag = |sent: &Sent, name: &str, errs: &mut Errors| match sent.present() {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errs.push(
                &format!("/{name}"),
                sent.get(),
                format!("`{name}` is true or false"),
            );
            false
        }
    };
    let urgent = flag(&input.urgent, "urgent", &mut errs);
    let floating = flag(&input.floating, "floating", &mut errs);

    let exceptions = parse_exceptions(&input, &mut errs);
    let nag = parse_nag(&mut input.nag, &mut errs);
    let escalate = parse_escalate(&mut input.escalate, notify.as_ref(), &mut errs);

    if !errs.0.is_empty() {
        return Err(FieldErrors(errs.0));
    }
    match (
        name,
        description,
        start,
        zone,
        repeats,
        notify,
        missed,
        nag,
        escalate,
        exceptions,
    ) {
        (
            Some(name),
            Some(description),
            Some((start, offset)),
            Some(zone),
            Some(repeats),
            Some(notify),
            Some(missed),
            Some(nag),
            Some(escalate),
            Some(exceptions),
        ) => Ok(TaskSpec {
            name,
            description,
            schedule: Schedule {
                start,
                zone: zone.unwrap_or_else(|| TaskZone::fixed(offset)),
                repeats,
                exceptions,
            },
            notify,
            missed,
            urgent,
            nag,
            escalate,
            floating,
        }),
        // Every parser that returns `None` has recorded why.
        _ => Err(FieldErrors::one("", None, "the body could not be parsed")),
    }
}

/// The refused fields found so far.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, pointer: &str, value: Option<&Value>, detail: impl Into<String>) {
        self.0
            .push(FieldError::new(pointer, value.cloned(), detail));
    }
}

/// `None` for absent and `null`, which every optional field treats alike.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// A nested object read into its own `*In` type: `Some(None)` when absent or `null`, `None`
/// (with the error recorded, `expected` saying what it should be) when not an object.
fn nested<T: DeserializeOwned>(
    sent: &mut Sent,
    pointer: &str,
    expected: &str,
    errs: &mut Errors,
) -> Option<Option<T>> {
    match sent.take() {
        None | Some(Value::Null) => Some(None),
        Some(value @ Value::Object(_)) => match T::deserialize(value) {
            Ok(read) => Some(Some(read)),
            // Cannot happen: every field of an `*In` type takes any value.
            Err(e) => {
                errs.push(pointer, None, e.to_string());
                None
            }
        },
        Some(other) => {
            errs.push(pointer, Some(&other), expected);
            None
        }
    }
}

fn parse_name(value: Option<&Value>, errs: &mut Errors) -> Option<TaskName> {
    const P: &str = "/name";
    match present(value) {
        None => errs.push(
            P,
            value,
            "a task name is required: a string of 1 to 200 characters",
        ),
        Some(Value::String(s)) => match TaskName::parse(s) {
            Ok(name) => return Some(name),
            Err(e) => errs.push(P, value, e.0),
        },
        Some(_) => errs.push(
            P,
            value,
            "a task name must be a string of 1 to 200 characters",
        ),
    }
    None
}

fn parse_description(value: Option<&Value>, errs: &mut Errors) -> Option<Option<String>> {
    const P: &str = "/description";
    match present(value) {
        None => Some(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            let len = s.chars().count();
            if let Some(bad) = description_control(s) {
                errs.push(
                    P,
                    value,
                    format!(
                        "a description must not contain control characters other than line \
                         breaks (LF or CRLF) and tabs; it contains U+{:04X}",
                        u32::from(bad)
                    ),
                );
                None
            } else if len > MAX_DESCRIPTION_CHARS {
                errs.push(
                    P,
                    value,
                    format!(
                        "a description is at most {MAX_DESCRIPTION_CHARS} characters, this one \
                         has {len}"
                    ),
                );
                None
            } else {
                Some((!s.is_empty()).then(|| s.to_owned()))
            }
        }
        Some(_) => {
            errs.push(P, value, "a description must be a string or null");
            None
        }
    }
}

/// The first character a description may not hold: a control character other than a tab,
/// a line feed, or a carriage return that starts a CRLF. (A NUL or a lone CR would reach an
/// email's 7-bit text part raw, which RFC 2045 forbids.)
fn description_control(s: &str) -> Option<char> {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' | '\n' => {}
            '\r' if chars.peek() == Some(&'\n') => {}
            c if c.is_control() => return Some(c),
            _ => {}
        }
    }
    None
}

fn parse_start(value: Option<&Value>, errs: &mut Errors) -> Option<(Timestamp, Offset)> {
    const P: &str = "/startDate";
    match present(value) {
        None => errs.push(
            P,
            value,
            format!("a start date is required: {EXPECTED_DATE_TIME}"),
        ),
        Some(Value::String(s)) => match parse_date_time(s) {
            Ok(parsed) => return Some(parsed),
            Err(detail) => errs.push(P, value, detail),
        },
        Some(_) => errs.push(
            P,
            value,
            format!("a start date is a string: {EXPECTED_DATE_TIME}"),
        ),
    }
    None
}

/// `Some(None)`: no zone given, use the start's offset.
fn parse_zone(value: Option<&Value>, errs: &mut Errors) -> Option<Option<TaskZone>> {
    const P: &str = "/timeZone";
    match present(value) {
        None => Some(None),
        Some(Value::String(s)) => match TaskZone::parse(s.trim()) {
            Ok(zone) => Some(Some(zone)),
            Err(e) => {
                errs.push(P, value, e.to_string());
                None
            }
        },
        Some(_) => {
            errs.push(
                P,
                value,
                "a time zone is a string: an IANA name such as `Europe/Berlin` or an offset \
                 such as `+02:00`",
            );
            None
        }
    }
}

fn parse_notify(sent: &mut Sent, options: &ParseOptions, errs: &mut Errors) -> Option<Notify> {
    let notify = nested::<NotifyIn>(
        sent,
        "/notify",
        "`notify` is an object with optional `email`, `sms`, `push`, `inApp`, `webhook` and `destinations`",
        errs,
    )?;
    let Some(notify) = notify else {
        return Some(Notify::default());
    };
    let before = errs.0.len();
    let email_value = notify.email.get();
    let email = match present(email_value) {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => match EmailAddress::parse(s) {
            Ok(email) => Some(email),
            Err(e) => {
                errs.push("/notify/email", email_value, e.0);
                None
            }
        },
        Some(_) => {
            errs.push(
                "/notify/email",
                email_value,
                "an email address is a string such as `someone@example.com`",
            );
            None
        }
    };

    let sms_value = notify.sms.get();
    let sms_text = match present(sms_value) {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(Ok(s.clone())),
        Some(Value::Number(n)) => Some(n.as_u64().map(|n| n.to_string()).ok_or(())),
        Some(_) => Some(Err(())),
    };
    let sms = match sms_text {
        None => None,
        Some(Ok(s)) => match PhoneNumber::parse_with(&s, options) {
            Ok(phone) => Some(phone),
            Err(e) => {
                errs.push("/notify/sms", sms_value, e.0);
                None
            }
        },
        Some(Err(())) => {
            errs.push(
                "/notify/sms",
                sms_value,
                "a phone number is a string or a whole number such as `4075551212`",
            );
            None
        }
    };

    let mut flag = |sent: &Sent, key: &str, default: bool| -> bool {
        match present(sent.get()) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errs.push(
                    &format!("/notify/{key}"),
                    sent.get(),
                    format!("`{key}` is true or false"),
                );
                default
            }
        }
    };
    let push = flag(&notify.push, "push", false);
    let in_app = flag(&notify.in_app, "inApp", true);
    let webhook = flag(&notify.webhook, "webhook", false);
    let destinations = parse_destinations(notify.destinations.get(), errs);

    (errs.0.len() == before).then_some(Notify {
        email,
        sms,
        push,
        in_app,
        webhook,
        destinations,
    })
}

/// `notify.destinations`: ids of the owner's destinations, each once (whether the owner has
/// them is the definition role's check: it knows the store).
fn parse_destinations(value: Option<&Value>, errs: &mut Errors) -> Vec<DestinationId> {
    const WHAT: &str = "`destinations` is an array of at most 10 destination ids (`dst_…`)";
    let items = match present(value) {
        None => return Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_DESTINATIONS => items,
        Some(_) => {
            errs.push("/notify/destinations", value, WHAT);
            return Vec::new();
        }
    };
    let mut ids: Vec<DestinationId> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("/notify/destinations/{i}");
        match item.as_str().and_then(|s| DestinationId::parse(s.trim())) {
            None => errs.push(&at, Some(item), WHAT),
            Some(id) if ids.contains(&id) => {
                errs.push(&at, Some(item), "each destination is named once")
            }
            Some(id) => ids.push(id),
        }
    }
    ids
}

/// `nag`: `Some(None)` when absent or null, `None` when refused (recorded).
fn parse_nag(sent: &mut Sent, errs: &mut Errors) -> Option<Option<Nag>> {
    let nag = nested::<NagIn>(
        sent,
        "/nag",
        "`nag` is an object with `everyMinutes` and `times`",
        errs,
    )?;
    let Some(nag) = nag else {
        return Some(None);
    };
    let mut field = |value: Option<&Value>, pointer: &str, max: u32, what: &str| {
        let n = present(value)
            .and_then(integer)
            .filter(|n| (1..=i64::from(max)).contains(n));
        if n.is_none() {
            errs.push(
                pointer,
                value,
                format!("`{what}` is a whole number from 1 to {max}"),
            );
        }
        n.map(|n| n as u32)
    };
    let every = field(
        nag.every_minutes.get(),
        "/nag/everyMinutes",
        Nag::MAX_EVERY_MINUTES,
        "everyMinutes",
    );
    let times = field(nag.times.get(), "/nag/times", Nag::MAX_TIMES, "times");
    Some(Some(Nag {
        every_minutes: every?,
        times: times?,
    }))
}

/// `escalate`: empty when absent or null, `None` when refused (recorded). The channels are
/// checked against `notify` when it was read.
fn parse_escalate(
    sent: &mut Sent,
    notify: Option<&Notify>,
    errs: &mut Errors,
) -> Option<Vec<Escalation>> {
    const EXPECTED: &str =
        "`escalate` is an array of at most 4 steps, each `{\"afterMinutes\": 5, \"channel\": \"sms\"}`";
    let items = match sent.take() {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) if items.len() <= Escalation::MAX_STEPS => items,
        Some(other) => {
            errs.push("/escalate", Some(&other), EXPECTED);
            return None;
        }
    };
    let before = errs.0.len();
    let mut steps = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("/escalate/{i}");
        // Every field of `EscalationIn` takes any value: only a non-object is refused here.
        let Some(step) = item
            .is_object()
            .then(|| EscalationIn::deserialize(item.clone()).ok())
            .flatten()
        else {
            errs.push(&at, Some(&item), EXPECTED);
            continue;
        };
        let after_value = step.after_minutes.get();
        let after = present(after_value)
            .and_then(integer)
            .filter(|n| (1..=i64::from(Escalation::MAX_AFTER_MINUTES)).contains(n));
        if after.is_none() {
            errs.push(
                &format!("{at}/afterMinutes"),
                after_value,
                format!(
                    "`afterMinutes` is a whole number from 1 to {}",
                    Escalation::MAX_AFTER_MINUTES
                ),
            );
        }
        let channel_value = step.channel.get();
        let channel = match present(channel_value) {
            Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "email" => Some(crate::event::Channel::Email),
                "sms" => Some(crate::event::Channel::Sms),
                "push" => Some(crate::event::Channel::Push),
                "webhook" => Some(crate::event::Channel::Webhook),
                _ => None,
            },
            _ => None,
        };
        if channel.is_none() {
            errs.push(
                &format!("{at}/channel"),
                channel_value,
                "`channel` is `email`, `sms`, `push` or `webhook`",
            );
        }
        if let (Some(after), Some(channel)) = (after, channel) {
            steps.push(Escalation {
                after_minutes: after as u32,
                channel,
            });
        }
    }
    if errs.0.len() != before {
        return None;
    }
    // The rules between steps and against `notify` (which, when refused, was reported).
    if let Some(notify) = notify {
        if let Err((i, field, why)) = Escalation::check(&steps, notify) {
            let (pointer, value) = match field {
                "afterMinutes" => (
                    format!("/escalate/{i}/afterMinutes"),
                    Value::from(steps[i].after_minutes),
                ),
                _ => (
                    format!("/escalate/{i}/channel"),
                    Value::from(steps[i].channel.as_str()),
                ),
            };
            errs.push(&pointer, Some(&value), why);
            return None;
        }
    }
    Some(steps)
}

fn parse_missed(sent: &mut Sent, errs: &mut Errors) -> Option<MissedPolicy> {
    let missed = nested::<MissedIn>(
        sent,
        "/missed",
        "`missed` is an object with `policy` and, for `skip`, `limitSeconds`",
        errs,
    )?;
    let Some(missed) = missed else {
        return Some(MissedPolicy::default());
    };
    let policy_value = missed.policy.get();
    let limit_value = missed.limit_seconds.get();
    let policy = match present(policy_value) {
        None => Some("fireoncelate".to_owned()),
        Some(Value::String(s)) => Some(s.trim().to_lowercase()),
        Some(_) => None,
    };
    let before = errs.0.len();
    let policy = match policy.as_deref() {
        Some("fireoncelate") => Some(MissedPolicy::FireOnceLate),
        Some("fireall") => Some(MissedPolicy::FireAll),
        Some("skip") => {
            let limit = present(limit_value)
                .and_then(integer)
                .filter(|n| (1..=MissedPolicy::MAX_LIMIT_SECONDS).contains(n));
            match limit {
                Some(secs) => Some(MissedPolicy::Skip {
                    limit: SignedDuration::from_secs(secs),
                }),
                None => {
                    errs.push(
                        "/missed/limitSeconds",
                        limit_value,
                        format!(
                            "the policy `skip` needs `limitSeconds`: a whole number of seconds \
                             from 1 to {}",
                            MissedPolicy::MAX_LIMIT_SECONDS
                        ),
                    );
                    None
                }
            }
        }
        _ => {
            errs.push(
                "/missed/policy",
                policy_value,
                "unknown policy: expected `fireOnceLate`, `fireAll` or `skip`",
            );
            None
        }
    };
    if let Some(MissedPolicy::FireOnceLate | MissedPolicy::FireAll) = policy {
        if present(limit_value).is_some() {
            errs.push(
                "/missed/limitSeconds",
                limit_value,
                "`limitSeconds` is used only with the policy `skip`",
            );
        }
    }
    if errs.0.len() > before {
        return None;
    }
    policy
}

/// Most occurrences one task may skip, move, and add.
pub const MAX_SKIPPED: usize = 1000;
pub const MAX_MOVED: usize = 100;
pub const MAX_ADDED: usize = 100;
/// Most destinations one task notifies.
pub const MAX_DESTINATIONS: usize = 10;

/// `skipped` and `added` (instants) and `moved` (`{"from", "to"}` instants): what the API's
/// occurrence actions write, read back strictly (each an RFC 3339 instant with its offset).
fn parse_exceptions(input: &TaskIn, errs: &mut Errors) -> Option<Exceptions> {
    let before = errs.0.len();
    let mut exceptions = Exceptions::default();
    let instant = |pointer: &str, value: &Value, errs: &mut Errors| -> Option<Timestamp> {
        match value.as_str().map(parse_date_time) {
            Some(Ok((at, _))) => Some(at),
            Some(Err(detail)) => {
                errs.push(pointer, Some(value), detail);
                None
            }
            None => {
                errs.push(pointer, Some(value), EXPECTED_DATE_TIME);
                None
            }
        }
    };
    let list = |pointer: &str, sent: &Sent, max: usize, what: &str, errs: &mut Errors| match present(
        sent.get(),
    ) {
        None => Some(Vec::new()),
        Some(Value::Array(items)) if items.len() <= max => Some(items.clone()),
        Some(other) => {
            errs.push(
                pointer,
                Some(other),
                format!("`{}` is an array of at most {max} {what}", &pointer[1..]),
            );
            None
        }
    };
    let instants = |field: &str, sent: &Sent, max: usize, errs: &mut Errors| {
        let mut out = std::collections::BTreeSet::new();
        let pointer = format!("/{field}");
        for (i, item) in list(&pointer, sent, max, "instants", errs)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            out.extend(instant(&format!("{pointer}/{i}"), item, errs));
        }
        out
    };
    exceptions.skipped = instants("skipped", &input.skipped, MAX_SKIPPED, errs);
    exceptions.added = instants("added", &input.added, MAX_ADDED, errs);
    let moves = list(
        "/moved",
        &input.moved,
        MAX_MOVED,
        "`{\"from\", \"to\"}` pairs of instants",
        errs,
    );
    for (i, item) in moves.unwrap_or_default().iter().enumerate() {
        let pointer = format!("/moved/{i}");
        let Some(pair) = item.as_object() else {
            errs.push(
                &pointer,
                Some(item),
                "a move is `{\"from\": instant, \"to\": instant}`",
            );
            continue;
        };
        let field = |name: &str, errs: &mut Errors| match pair.get(name) {
            Some(v) => instant(&format!("{pointer}/{name}"), v, errs),
            None => {
                errs.push(&format!("{pointer}/{name}"), None, "required");
                None
            }
        };
        if let (Some(from), Some(to)) = (field("from", errs), field("to", errs)) {
            if exceptions.moved.insert(from, to).is_some() {
                errs.push(&format!("{pointer}/from"), pair.get("from"), "moved twice");
            }
        }
    }
    (errs.0.len() == before).then_some(exceptions)
}
