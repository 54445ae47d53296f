//! A user's profile: the settings that follow them from browser to phone (time zone, default
//! email and phone for new tasks, quiet hours, default channels, telemetry opt-out).
//!
//! Like a task it has two JSON forms: the API's body, read leniently by [`Profile::parse`]
//! (every refused field reported with its JSON pointer and value; absent fields take their
//! defaults, so a `PUT` is a whole replacement), and the stored form, [`Profile::to_stored`]
//! (the API's canonical shape plus `"v": 1`), read strictly by [`Profile::from_stored`]. A user
//! who never saved a profile has [`Profile::default`].
//!
//! The body (`ProfileIn` documents it in the OpenAPI document):
//!
//! - `timeZone`: an IANA name (`Europe/Berlin`), or `null` for none (the web app then uses the
//!   browser's zone). Quiet hours are read on this zone's wall clock (UTC when none), and
//!   floating tasks follow it (saving another zone moves them; see `Schedule::in_zone`).
//! - `email`, `phone`: defaults for new tasks, checked as a task's `notify.email` and
//!   `notify.sms` are (a phone is kept in E.164); empty or `null` for none.
//! - `quietHours`: a list of windows `{"days": ["mon", "tue"], "from": "22:00", "to": "07:00"}`,
//!   each starting on the listed weekdays (full names, three or two letters, any case) at
//!   `from` and ending at `to`, on the next day when `to` is not after `from` (across
//!   midnight). See [`quiet`] for how a delivery is deferred.
//! - `channels`: which channels a new task notifies by default: `email`, `sms`, `push`,
//!   `inApp`, `webhook`, booleans (defaults: in-app only).
//! - `telemetry`: `false` opts out of anonymous feature-use reports (default `true`).

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{FieldError, FieldErrors};
use crate::sent::Sent;
use crate::task::{EmailAddress, ParseOptions, PhoneNumber, WEEKDAYS};

pub mod quiet;

pub use quiet::{QuietHours, QuietWindow};

/// The version [`Profile::to_stored`] writes.
pub const PROFILE_VERSION: u32 = 1;

/// A user's settings; every field valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// An IANA zone; `None` when the user has not chosen one.
    pub time_zone: Option<ZoneName>,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    pub quiet_hours: QuietHours,
    pub channels: Channels,
    pub telemetry: bool,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            time_zone: None,
            email: None,
            phone: None,
            quiet_hours: QuietHours::default(),
            channels: Channels::default(),
            telemetry: true,
        }
    }
}

/// An IANA time zone, by its canonical name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneName(String);

impl ZoneName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|_| {
            format!("`{name}` is not an IANA time zone name such as `Europe/Berlin`")
        })?;
        Ok(Self(tz.iana_name().unwrap_or(name).to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone (UTC if the name is no longer in the time zone database).
    pub fn time_zone(&self) -> TimeZone {
        TimeZone::get(&self.0).unwrap_or(TimeZone::UTC)
    }
}

/// Which channels a new task notifies by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProfileChannels))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channels {
    pub email: bool,
    pub sms: bool,
    pub push: bool,
    pub in_app: bool,
    pub webhook: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            email: false,
            sms: false,
            push: false,
            in_app: true,
            webhook: false,
        }
    }
}

/// The profile as the API answers it (and, with `v`, as it is stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Profile))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileFields {
    /// The stored form's version; absent in the API's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub v: Option<u32>,
    /// An IANA time zone; null when none is chosen.
    #[cfg_attr(feature = "openapi", schema(example = "Europe/Berlin"))]
    pub time_zone: Option<String>,
    /// The default email address for new tasks.
    #[cfg_attr(feature = "openapi", schema(example = "someone@example.com"))]
    pub email: Option<String>,
    /// The default phone number for new tasks, in E.164.
    #[cfg_attr(feature = "openapi", schema(example = "+14075551212"))]
    pub phone: Option<String>,
    pub quiet_hours: Vec<QuietWindowFields>,
    pub channels: Channels,
    /// False: no anonymous feature-use reports.
    pub telemetry: bool,
}

/// One quiet-hours window as the API answers it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = QuietWindow))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuietWindowFields {
    /// The weekdays a window starts on, Monday first.
    #[cfg_attr(feature = "openapi", schema(example = json!(["saturday", "sunday"])))]
    pub days: Vec<String>,
    /// `HH:MM`, local time in the profile's zone.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "22:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")
    )]
    pub from: String,
    /// `HH:MM`; on the next day when not after `from`.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "07:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")
    )]
    pub to: String,
}

/// The body of `PUT /api/v1/me`: read into this type, which the OpenAPI document's
/// `ProfileBody` schema is derived from. Fields not listed are ignored; absent ones take their
/// defaults.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProfileBody))]
#[serde(rename_all = "camelCase")]
pub struct ProfileIn {
    /// An IANA time zone name; null for none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "Europe/Berlin"))]
    #[serde(default)]
    time_zone: Sent,
    /// The default email address for new tasks; empty or null for none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "someone@example.com"))]
    #[serde(default)]
    email: Sent,
    /// The default phone number for new tasks (with `+` and country code, or national in the
    /// server's default region); empty or null for none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "+1 407 555 1212"))]
    #[serde(default)]
    phone: Sent,
    /// Windows in which external deliveries wait (at most 28).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<QuietWindowIn>>, max_items = 28))]
    #[serde(default)]
    quiet_hours: Sent,
    /// Which channels a new task notifies by default; absent members take their defaults.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ChannelsIn>))]
    #[serde(default)]
    channels: Sent,
    /// False opts out of anonymous feature-use reports. Default true.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>, example = true))]
    #[serde(default)]
    telemetry: Sent,
}

/// One window of quiet hours in a `PUT /api/v1/me` body. Fields not listed are ignored.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProfileBodyQuietWindow))]
#[serde(rename_all = "camelCase")]
pub struct QuietWindowIn {
    /// The weekdays the window starts on: full names, three or two letters, any case.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<String>, required = true, min_items = 1, example = json!(["sat", "sun"]))
    )]
    #[serde(default)]
    days: Sent,
    /// `HH:MM`, 00:00 to 23:59, on the profile's zone.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "22:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")
    )]
    #[serde(default)]
    from: Sent,
    /// `HH:MM`; on the next day when not after `from`; not equal to `from`.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "07:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")
    )]
    #[serde(default)]
    to: Sent,
}

/// The default channels in a `PUT /api/v1/me` body; absent or null members take their
/// defaults, others are ignored.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProfileBodyChannels))]
#[serde(rename_all = "camelCase")]
pub struct ChannelsIn {
    /// Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    #[serde(default)]
    email: Sent,
    /// Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    #[serde(default)]
    sms: Sent,
    /// Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    #[serde(default)]
    push: Sent,
    /// Default true.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    #[serde(default)]
    in_app: Sent,
    /// Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    #[serde(default)]
    webhook: Sent,
}

/// Why a stored profile cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredProfileError {
    #[error("the profile was stored by a newer release (version {0})")]
    Newer(u32),
    #[error("the stored profile is not valid: {0}")]
    Corrupt(String),
}

const MAX_WINDOWS: usize = 28;

impl Profile {
    /// Reads the body of `PUT /api/v1/me`, collecting every refused field.
    pub fn parse(body: Value, options: &ParseOptions) -> Result<Profile, FieldErrors> {
        if !body.is_object() {
            return Err(FieldErrors::one(
                "",
                Some(body),
                "the body must be a JSON object",
            ));
        }
        let input = ProfileIn::deserialize(body)
            // Cannot happen for an object: every field of `ProfileIn` takes any value.
            .map_err(|e| FieldErrors::one("", None, e.to_string()))?;
        let mut errs = Vec::new();
        let text = |sent: &Sent| match sent.present() {
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            None => Ok(None),
            Some(_) => Err(()),
        };

        let time_zone = match text(&input.time_zone) {
            Ok(None) => None,
            Ok(Some(name)) => match ZoneName::parse(&name) {
                Ok(zone) => Some(zone),
                Err(e) => {
                    refuse(&mut errs, "/timeZone", &input.time_zone, e);
                    None
                }
            },
            Err(()) => {
                refuse(
                    &mut errs,
                    "/timeZone",
                    &input.time_zone,
                    "a time zone is a string such as `Europe/Berlin`, or null".into(),
                );
                None
            }
        };
        let email = match text(&input.email) {
            Ok(None) => None,
            Ok(Some(s)) => match EmailAddress::parse(&s) {
                Ok(email) => Some(email),
                Err(e) => {
                    refuse(&mut errs, "/email", &input.email, e.0);
                    None
                }
            },
            Err(()) => {
                refuse(
                    &mut errs,
                    "/email",
                    &input.email,
                    "an email address is a string such as `someone@example.com`".into(),
                );
                None
            }
        };
        let phone = match text(&input.phone) {
            Ok(None) => None,
            Ok(Some(s)) => match PhoneNumber::parse_with(&s, options) {
                Ok(phone) => Some(phone),
                Err(e) => {
                    refuse(&mut errs, "/phone", &input.phone, e.0);
                    None
                }
            },
            Err(()) => {
                refuse(
                    &mut errs,
                    "/phone",
                    &input.phone,
                    "a phone number is a string such as `+1 407 555 1212`".into(),
                );
                None
            }
        };
        let quiet_hours = match input.quiet_hours.present() {
            None => QuietHours::default(),
            Some(Value::Array(items)) if items.len() > MAX_WINDOWS => {
                refuse(
                    &mut errs,
                    "/quietHours",
                    &input.quiet_hours,
                    format!("at most {MAX_WINDOWS} quiet-hours windows"),
                );
                QuietHours::default()
            }
            Some(Value::Array(items)) => {
                let mut windows = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match parse_window(item, &format!("/quietHours/{i}")) {
                        Ok(window) => windows.push(window),
                        Err(e) => errs.push(e),
                    }
                }
                QuietHours::new(windows)
            }
            Some(_) => {
                refuse(
                    &mut errs,
                    "/quietHours",
                    &input.quiet_hours,
                    "quiet hours are a list of windows `{\"days\": [...], \"from\": \"22:00\", \
                     \"to\": \"07:00\"}`"
                        .into(),
                );
                QuietHours::default()
            }
        };
        let channels = match input.channels.present() {
            None => Channels::default(),
            Some(value @ Value::Object(_)) => {
                // Cannot fail for an object: every field of `ChannelsIn` takes any value.
                let members = ChannelsIn::deserialize(value).unwrap_or_default();
                let defaults = Channels::default();
                let mut flag = |sent: &Sent, key: &str, default: bool| match sent.present() {
                    None => default,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        refuse(
                            &mut errs,
                            &format!("/channels/{key}"),
                            sent,
                            format!("`{key}` is true or false"),
                        );
                        default
                    }
                };
                Channels {
                    email: flag(&members.email, "email", defaults.email),
                    sms: flag(&members.sms, "sms", defaults.sms),
                    push: flag(&members.push, "push", defaults.push),
                    in_app: flag(&members.in_app, "inApp", defaults.in_app),
                    webhook: flag(&members.webhook, "webhook", defaults.webhook),
                }
            }
            Some(_) => {
                refuse(
                    &mut errs,
                    "/channels",
                    &input.channels,
                    "`channels` is an object of booleans: `email`, `sms`, `push`, `inApp`, \
                     `webhook`"
                        .into(),
                );
                Channels::default()
            }
        };
        let telemetry = match input.telemetry.present() {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                refuse(
                    &mut errs,
                    "/telemetry",
                    &input.telemetry,
                    "`telemetry` is true or false".into(),
                );
                true
            }
        };
        if !errs.is_empty() {
            return Err(FieldErrors(errs));
        }
        Ok(Profile {
            time_zone,
            email,
            phone,
            quiet_hours,
            channels,
            telemetry,
        })
    }

    /// The API's shape.
    pub fn fields(&self) -> ProfileFields {
        ProfileFields {
            v: None,
            time_zone: self.time_zone.as_ref().map(|z| z.as_str().to_owned()),
            email: self.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: self.phone.as_ref().map(|p| p.as_str().to_owned()),
            quiet_hours: self
                .quiet_hours
                .windows()
                .iter()
                .map(QuietWindow::fields)
                .collect(),
            channels: self.channels,
            telemetry: self.telemetry,
        }
    }

    /// The stored form: the API's shape with `"v": 1`.
    pub fn to_stored(&self) -> String {
        let fields = ProfileFields {
            v: Some(PROFILE_VERSION),
            ..self.fields()
        };
        // A struct of strings, booleans and lists always serializes.
        serde_json::to_string(&fields).unwrap_or_default()
    }

    /// Reads the stored form strictly: unknown fields, a newer version or a value no release
    /// accepted are errors, never guessed at.
    pub fn from_stored(stored: &str) -> Result<Profile, StoredProfileError> {
        let corrupt = |e: String| StoredProfileError::Corrupt(e);
        let fields: ProfileFields = serde_json::from_str(stored).map_err(|e| {
            // A newer release may add fields: say "newer" when its version says so.
            match serde_json::from_str::<Value>(stored)
                .ok()
                .and_then(|v| v.get("v")?.as_u64())
            {
                Some(v) if v > u64::from(PROFILE_VERSION) => {
                    StoredProfileError::Newer(u32::try_from(v).unwrap_or(u32::MAX))
                }
                _ => corrupt(e.to_string()),
            }
        })?;
        match fields.v {
            Some(PROFILE_VERSION) => {}
            Some(v) if v > PROFILE_VERSION => return Err(StoredProfileError::Newer(v)),
            other => return Err(corrupt(format!("unknown version {other:?}"))),
        }
        let time_zone = fields
            .time_zone
            .map(|z| ZoneName::parse(&z))
            .transpose()
            .map_err(corrupt)?;
        let email = fields
            .email
            .map(|e| EmailAddress::parse(&e))
            .transpose()
            .map_err(|e| corrupt(e.0))?;
        let phone = fields
            .phone
            .map(|p| PhoneNumber::parse(&p))
            .transpose()
            .map_err(|e| corrupt(e.0))?;
        let windows = fields
            .quiet_hours
            .iter()
            .map(QuietWindow::from_fields)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        Ok(Profile {
            time_zone,
            email,
            phone,
            quiet_hours: QuietHours::new(windows),
            channels: fields.channels,
            telemetry: fields.telemetry,
        })
    }
}

/// Records a refused field of the body.
fn refuse(errs: &mut Vec<FieldError>, pointer: &str, sent: &Sent, detail: String) {
    errs.push(FieldError::new(pointer, sent.get().cloned(), detail));
}

fn parse_window(item: &Value, pointer: &str) -> Result<QuietWindow, FieldError> {
    let refuse = |at: &str, value: Option<&Value>, detail: String| {
        FieldError::new(format!("{pointer}{at}"), value.cloned(), detail)
    };
    let window = match item {
        // Cannot fail for an object: every field of `QuietWindowIn` takes any value.
        Value::Object(_) => QuietWindowIn::deserialize(item).unwrap_or_default(),
        _ => {
            return Err(refuse(
                "",
                Some(item),
                "a window is an object with `days`, `from` and `to`".into(),
            ))
        }
    };
    let days = match window.days.get() {
        Some(Value::Array(names)) if !names.is_empty() => names
            .iter()
            .map(|n| n.as_str().and_then(weekday))
            .collect::<Option<Vec<_>>>(),
        _ => None,
    }
    .ok_or_else(|| {
        refuse(
            "/days",
            window.days.get(),
            "`days` is a non-empty list of weekdays such as `[\"mon\", \"tue\"]`".into(),
        )
    })?;
    let time = |sent: &Sent, key: &str| {
        sent.get()
            .and_then(Value::as_str)
            .and_then(clock_time)
            .ok_or_else(|| {
                refuse(
                    &format!("/{key}"),
                    sent.get(),
                    format!("`{key}` is a time of day `HH:MM`, 00:00 to 23:59"),
                )
            })
    };
    let (from, to) = (time(&window.from, "from")?, time(&window.to, "to")?);
    QuietWindow::new(days, from, to).map_err(|e| refuse("/to", window.to.get(), e))
}

/// A weekday by full name, three or two letters, in any case.
fn weekday(name: &str) -> Option<Weekday> {
    let name = name.trim().to_lowercase();
    WEEKDAYS
        .iter()
        .find(|(_, full)| {
            *full == name || (name.len() >= 2 && full.starts_with(&name) && name.len() <= 3)
        })
        .map(|(day, _)| *day)
}

/// `HH:MM`.
fn clock_time(s: &str) -> Option<Time> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

/// The lower-case full name of a weekday, as the API writes it.
pub(crate) fn weekday_name(day: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(d, _)| *d == day)
        .map_or("monday", |(_, name)| name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<Profile, FieldErrors> {
        Profile::parse(body, &ParseOptions::default())
    }

    #[test]
    fn an_empty_body_is_the_default_profile() {
        assert_eq!(parse(json!({})).unwrap(), Profile::default());
    }

    #[test]
    fn a_full_profile_round_trips_through_the_stored_form() {
        let profile = parse(json!({
            "timeZone": "Europe/Berlin",
            "email": " someone@example.com ",
            "phone": "+44 20 7946 0958",
            "quietHours": [
                {"days": ["MO", "tue", "Wednesday", "thu", "fri"], "from": "22:00", "to": "07:00"},
                {"days": ["sat", "sun"], "from": "22:00", "to": "09:00"}
            ],
            "channels": {"email": true, "inApp": false},
            "telemetry": false,
            "unknown": "ignored"
        }))
        .unwrap();
        assert_eq!(profile.phone.as_ref().unwrap().as_str(), "+442079460958");
        assert!(profile.channels.email && !profile.channels.in_app && !profile.channels.push);
        let stored = profile.to_stored();
        assert!(stored.contains("\"v\":1"), "{stored}");
        assert_eq!(Profile::from_stored(&stored).unwrap(), profile);
        let answer = serde_json::to_value(profile.fields()).unwrap();
        assert_eq!(
            answer["quietHours"][1],
            json!({"days": ["saturday", "sunday"], "from": "22:00", "to": "09:00"})
        );
        assert!(answer.get("v").is_none());
        // The answer is a valid body: it parses back to the same profile.
        assert_eq!(parse(answer).unwrap(), profile);
    }

    #[test]
    fn every_refused_field_is_named_with_its_value() {
        let errors = parse(json!({
            "timeZone": "Mars/Olympus",
            "email": "nope",
            "phone": 12,
            "quietHours": [{"days": [], "from": "22:00", "to": "07:00"},
                           {"days": ["mon"], "from": "25:00", "to": "07:00"},
                           {"days": ["mon"], "from": "07:00", "to": "07:00"}],
            "channels": {"push": "yes"},
            "telemetry": "no"
        }))
        .unwrap_err();
        let pointers: Vec<&str> = errors.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/timeZone",
                "/email",
                "/phone",
                "/quietHours/0/days",
                "/quietHours/1/from",
                "/quietHours/2/to",
                "/channels/push",
                "/telemetry"
            ]
        );
        assert_eq!(errors.0[0].value, Some(json!("Mars/Olympus")));
        assert_eq!(errors.0[6].value, Some(json!("yes")));
    }

    #[test]
    fn a_non_object_body_is_refused_whole() {
        let errors = parse(json!([1])).unwrap_err();
        assert_eq!(errors.0[0].pointer, "");
    }

    #[test]
    fn the_stored_form_is_strict_and_knows_a_newer_release() {
        let stored = Profile::default().to_stored();
        assert!(Profile::from_stored(&stored).is_ok());
        let mut newer: Value = serde_json::from_str(&stored).unwrap();
        newer["v"] = json!(2);
        newer["later"] = json!(1);
        let newer = newer.to_string();
        assert!(matches!(
            Profile::from_stored(&newer),
            Err(StoredProfileError::Newer(2))
        ));
        let mut unknown: Value = serde_json::from_str(&stored).unwrap();
        unknown["later"] = json!(1);
        let unknown = unknown.to_string();
        assert!(matches!(
            Profile::from_stored(&unknown),
            Err(StoredProfileError::Corrupt(_))
        ));
        assert!(matches!(
            Profile::from_stored("{\"v\":1}"),
            Err(StoredProfileError::Corrupt(_))
        ));
    }
}
