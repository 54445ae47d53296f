//! The task body as the API receives it: the one type that both reads a request (serde
//! deserializes every body into [`TaskIn`], then module `input` checks each field) and
//! documents it (the OpenAPI `TaskBody` schema is derived from the same struct, its fields and
//! their doc comments, which are written for API users).
//!
//! Every field is a [`Sent`](crate::sent::Sent): whatever JSON value came, kept as it came. Deserializing never
//! fails on a bad field, so serde does not stop at the first one and the parser reports every
//! refused field with its JSON pointer and value. Each field's `value_type` (beside it, on the
//! same struct) documents the shape the parser accepts; where the parser is more lenient than
//! that shape (numeric strings, any case), the field's description says so.

use serde::Deserialize;

use crate::sent::Sent;

#[cfg(feature = "openapi")]
use schemas::{EndsAt, Frequency, OnDays, PeriodName, Phone};

/// A task to create or replace. Fields not listed are ignored. Every refused field is reported
/// with a JSON pointer to it.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskBody))]
#[serde(rename_all = "camelCase")]
pub struct TaskIn {
    /// 1 to 200 characters after trimming; no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "Task Name", min_length = 1)
    )]
    #[serde(default)]
    pub(super) name: Sent,
    /// At most 4000 characters; null or blank for none. No control characters but tabs and
    /// line breaks (LF or CRLF).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "Memorable description", max_length = 4000))]
    #[serde(default)]
    pub(super) description: Sent,
    /// A date and time with an offset: `2024-08-12 11:24:53.00+0000` (space or `T`; seconds,
    /// fraction optional; offset `+0000`, `+00:00`, `+00` or `Z`) or RFC 3339.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, example = "2024-08-12 11:24:53.00+0000")
    )]
    #[serde(default)]
    pub(super) start_date: Sent,
    /// The wall clock the rule follows: an IANA name or `±HH:MM`. Default: the offset of
    /// `startDate`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "Europe/Berlin"))]
    #[serde(default)]
    pub(super) time_zone: Sent,
    /// Absent or null for a one-time task.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<RepeatsIn>))]
    #[serde(default)]
    pub(super) repeats: Sent,
    /// Delivery channels; default in-app only.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<NotifyIn>))]
    #[serde(default)]
    pub(super) notify: Sent,
    /// Email, SMS and push go out at once even inside the owner's quiet hours. Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>, example = false))]
    #[serde(default)]
    pub(super) urgent: Sent,
    /// Send the reminder again until it is acknowledged: every `everyMinutes`, at most
    /// `times` more times. Absent or null: once.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<NagIn>))]
    #[serde(default)]
    pub(super) nag: Sent,
    /// If an occurrence is still not acknowledged some minutes after it fired, send it on
    /// another channel: steps in order, each later than the one before, each a channel the
    /// task notifies on (held back from the first send), at most 4. Absent, null or empty:
    /// every channel at once. Example: `[{"afterMinutes": 1, "channel": "sms"},
    /// {"afterMinutes": 2, "channel": "email"}]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<EscalationIn>>, max_items = 4))]
    #[serde(default)]
    pub(super) escalate: Sent,
    /// Occurrences that do not fire, by the instant the rule gives them (RFC 3339). Written
    /// by the occurrence's skip action; at most 1000.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, max_items = 1000))]
    #[serde(default)]
    pub(super) skipped: Sent,
    /// Occurrences that fire at another instant: `{"from": instant the rule gives, "to":
    /// instant it fires at}`, each between its neighbours. Written by the occurrence's move
    /// action; at most 100.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<MovedIn>>, max_items = 100))]
    #[serde(default)]
    pub(super) moved: Sent,
    /// Occurrences in addition to the rule's (RFC 5545 RDATE), RFC 3339 instants, each due
    /// once. Written by the add-occurrence action; at most 100.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, max_items = 100))]
    #[serde(default)]
    pub(super) added: Sent,
    /// Follow the owner's time zone ("09:00 wherever I am"): the rule's wall clock is the zone
    /// of the owner's settings, and when they change it every pending occurrence moves to the
    /// same local time in the new zone. Needs a time zone in the settings; `timeZone` is then
    /// set from them. Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>, example = false))]
    #[serde(default)]
    pub(super) floating: Sent,
    /// What to do with occurrences missed during downtime; default `fireOnceLate`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<MissedIn>))]
    #[serde(default)]
    pub(super) missed: Sent,
}

/// One occurrence moved.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // The schema of what `parse_exceptions` reads: documented, never built.
#[schema(as = TaskBodyMoved)]
pub struct MovedIn {
    /// The instant the rule gives the occurrence.
    #[schema(example = "2026-12-17T08:00:00Z")]
    pub from: String,
    /// The instant it fires at instead.
    #[schema(example = "2026-12-18T08:00:00Z")]
    pub to: String,
}

/// How a task repeats.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskBodyRepeats))]
#[serde(rename_all = "camelCase")]
pub struct RepeatsIn {
    /// Every N periods: a whole number 1 to 1000, as a number or numeric string (`2`, `"2"`).
    /// Default 1.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Frequency>))]
    #[serde(default)]
    pub(super) frequency: Sent,
    /// `day`, `week`, `month` or `year` (any case; plurals and `daily`, `weekly`, … accepted).
    /// Required unless `rrule` is given.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<PeriodName>))]
    #[serde(default)]
    pub(super) period: Sent,
    /// For `week`: weekdays (`monday`, `mon`, `mo`; one typing slip in a name of 5 or more
    /// letters is forgiven). For `month`: days 1..31, -1..-31 from the end, or `last`. A
    /// comma-separated string or an array. Default: the start's weekday or day. Not used with
    /// `day` or `year`. Examples: `"monday, tuesday"`, `["mon", "fri"]`, `[15, "last"]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<OnDays>))]
    #[serde(default)]
    pub(super) on: Sent,
    /// Empty or null: never. A number 1..100000 (or numeric string): after that many
    /// occurrences. `YYYY-MM-DD`: last local date, inclusive. A date and time with offset:
    /// last instant, inclusive. Examples: `12`, `"2025-01-31"`, `"2025-01-31T10:00:00Z"`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<EndsAt>))]
    #[serde(default)]
    pub(super) ends: Sent,
    /// Instead of the fields above: an RFC 5545 rule (`RRULE:` prefix optional), expanded on
    /// the wall clock of `timeZone` from `startDate`. FREQ from MINUTELY (INTERVAL at least
    /// 5) to YEARLY, INTERVAL, COUNT or UNTIL, BYMINUTE, BYHOUR, BYDAY with ordinals,
    /// BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYMONTH, BYSETPOS, WKST; at most one occurrence every
    /// 5 minutes. Examples: `FREQ=MONTHLY;BYDAY=2TU`, `FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1`,
    /// `FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,11,13,15,17`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "FREQ=MONTHLY;BYDAY=2TU"))]
    #[serde(default)]
    pub(super) rrule: Sent,
}

/// Which channels deliver each occurrence.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskBodyNotify))]
#[serde(rename_all = "camelCase")]
pub struct NotifyIn {
    /// An email address; empty for none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "someone@example.com"))]
    #[serde(default)]
    pub(super) email: Sent,
    /// A phone number (string or number), stored in E.164. With a leading `+` and country
    /// code, or national (read in the server's default region, US unless configured);
    /// spaces, dashes, dots and parentheses ignored. Examples: `"+1 (407) 555-1212"`,
    /// `4075551212`, `"+44 20 7946 0958"`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Phone>))]
    #[serde(default)]
    pub(super) sms: Sent,
    /// Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>, example = true))]
    #[serde(default)]
    pub(super) push: Sent,
    /// The owner's in-app inbox. Default true.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>, example = true))]
    #[serde(default)]
    pub(super) in_app: Sent,
    /// POST to the owner's configured webhook endpoint. Default false.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>, example = false))]
    #[serde(default)]
    pub(super) webhook: Sent,
    /// The owner's destinations (`GET /api/v1/destinations`) this task notifies, by id, each
    /// once, at most 10. Default none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, example = json!(["dst_8f3a2c"])))]
    #[serde(default)]
    pub(super) destinations: Sent,
}

/// Repeat a reminder until it is acknowledged.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskBodyNag))]
#[serde(rename_all = "camelCase")]
pub struct NagIn {
    /// Minutes between repeats: 1 to 1440.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, example = 10, minimum = 1, maximum = 1440, required = true))]
    #[serde(default)]
    pub(super) every_minutes: Sent,
    /// Repeats at most: 1 to 20.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, example = 3, minimum = 1, maximum = 20, required = true))]
    #[serde(default)]
    pub(super) times: Sent,
}

/// One escalation step.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskBodyEscalation))]
#[serde(rename_all = "camelCase")]
pub struct EscalationIn {
    /// Minutes after the occurrence fired: 1 to 1440.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, example = 5, minimum = 1, maximum = 1440, required = true))]
    #[serde(default)]
    pub(super) after_minutes: Sent,
    /// `email`, `sms`, `push` or `webhook` (any case): a channel the task notifies on.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "sms", pattern = "^([eE][mM][aA][iI][lL]|[sS][mM][sS]|[pP][uU][sS][hH]|[wW][eE][bB][hH][oO][oO][kK])$", required = true))]
    #[serde(default)]
    pub(super) channel: Sent,
}

/// What to do with occurrences missed while Chime was down.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskBodyMissed))]
#[serde(rename_all = "camelCase")]
pub struct MissedIn {
    /// `fireOnceLate` (default), `fireAll` or `skip` (any case).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "skip", pattern = "^([fF][iI][rR][eE][oO][nN][cC][eE][lL][aA][tT][eE]|[fF][iI][rR][eE][aA][lL][lL]|[sS][kK][iI][pP])$"))]
    #[serde(default)]
    pub(super) policy: Sent,
    /// Required with `skip`, refused otherwise: 1 to 31536000.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, example = 3600, minimum = 1, maximum = 31536000))]
    #[serde(default)]
    pub(super) limit_seconds: Sent,
}

/// What the `TaskBodyRepeats` schema cannot say with its properties alone, added to the API
/// document: either `period` (not null) and no `rrule`, or an `rrule` string and none of the
/// design's fields (`null` counts as absent, as everywhere in the body).
#[cfg(feature = "openapi")]
pub fn refine_openapi(doc: &mut serde_json::Value) {
    use serde_json::json;
    // `json!` reads a bare `null` as JSON null: the schema of null is named `absent`.
    let absent = json!({"type": "null"});
    if let Some(repeats) = doc.pointer_mut("/components/schemas/TaskBodyRepeats") {
        repeats["oneOf"] = json!([
            {
                "required": ["period"],
                "properties": {"period": {"not": absent}, "rrule": absent},
            },
            {
                "required": ["rrule"],
                "properties": {
                    "rrule": {"type": "string"},
                    "frequency": absent,
                    "period": absent,
                    "on": absent,
                    "ends": absent,
                },
            },
        ]);
    }
}

#[cfg(feature = "openapi")]
mod schemas {
    //! The schemas of the shapes the parser accepts where no Rust type has them (alternatives,
    //! bounds): each is built here once, under the component name the API documents.

    use std::borrow::Cow;

    use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Schema, Type};
    use utoipa::openapi::{ObjectBuilder, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    // The shapes the fields' `value_type` names where no Rust type has them.

    /// A whole number of periods, as a number or a numeric string.
    pub struct Frequency;

    /// The spellings of a period the parser accepts (in any case: the schema lists lower case).
    pub struct PeriodName;

    /// Weekdays or days of the month: a comma-separated string, one day number, or an array of
    /// weekday names and day numbers (1..31, -1..-31, `last`).
    pub struct OnDays;

    /// A number of occurrences, or a last date or instant (a string).
    pub struct EndsAt;

    /// A phone number: a string, or a whole number.
    pub struct Phone;

    fn integer(min: i64, max: i64) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    }

    fn string() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String)
    }

    fn any_integer() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::Integer)
    }

    /// The schema of a shape, under its component name, with its description.
    macro_rules! shape {
        ($name:ident, $component:literal, $description:literal, $schema:expr) => {
            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    $schema.description(Some($description)).into()
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed($component)
                }
            }
        };
    }

    shape!(
        Frequency,
        "TaskBodyFrequency",
        "A whole number of periods, as a number or a numeric string.",
        OneOfBuilder::new()
            .item(integer(1, 1000))
            .item(string().pattern(Some("^[0-9]+$")))
    );

    shape!(
        PeriodName,
        "TaskBodyPeriod",
        "The spellings of a period the parser accepts (in any case: the schema lists lower case).",
        string().enum_values(Some([
            "day", "days", "daily", "week", "weeks", "weekly", "month", "months", "monthly",
            "year", "years", "yearly",
        ]))
    );

    shape!(
        OnDays,
        "TaskBodyOn",
        "Weekdays or days of the month: a comma-separated string, one day number, or an array \
         of weekday names and day numbers (1..31, -1..-31, `last`).",
        OneOfBuilder::new().item(string()).item(any_integer()).item(
            ArrayBuilder::new().items(OneOfBuilder::new().item(string()).item(any_integer()))
        )
    );

    shape!(
        EndsAt,
        "TaskBodyEnds",
        "A number of occurrences, or a last date or instant (a string).",
        OneOfBuilder::new().item(integer(1, 100_000)).item(string())
    );

    shape!(
        Phone,
        "TaskBodySms",
        "A phone number: a string, or a whole number.",
        OneOfBuilder::new()
            .item(string())
            .item(any_integer().minimum(Some(0)))
    );
}

#[cfg(all(test, feature = "openapi"))]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod tests {
    use serde_json::{json, Value};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::*;
    use crate::task::TaskSpec;

    /// The document's schemas of the body and its nested objects, by component name.
    fn components() -> serde_json::Map<String, Value> {
        let mut schemas = vec![(TaskIn::name().into_owned(), TaskIn::schema())];
        TaskIn::schemas(&mut schemas);
        schemas
            .into_iter()
            .map(|(name, schema): (String, RefOr<_>)| (name, serde_json::to_value(schema).unwrap()))
            .collect()
    }

    fn valid_body() -> Value {
        json!({
            "name": "n",
            "startDate": "2030-01-01T09:00:00Z",
            "repeats": {"period": "week"},
            "notify": {"push": true},
            "missed": {"policy": "fireAll"},
            "nag": {"everyMinutes": 10, "times": 3},
            "escalate": [{"afterMinutes": 5, "channel": "push"}],
        })
    }

    #[test]
    fn the_body_schema_is_named_task_body_and_requires_name_and_start_date() {
        let components = components();
        let body = &components["TaskBody"];
        assert_eq!(body["required"], json!(["name", "startDate"]));
        assert!(components["TaskBodyRepeats"].get("required").is_none());
        for name in [
            "TaskBodyRepeats",
            "TaskBodyNotify",
            "TaskBodyMissed",
            "TaskBodyNag",
            "TaskBodyEscalation",
            "TaskBodyFrequency",
            "TaskBodyPeriod",
            "TaskBodyOn",
            "TaskBodyEnds",
            "TaskBodySms",
        ] {
            assert!(components.contains_key(name), "{name} missing");
        }
    }

    #[test]
    fn the_document_says_repeats_is_a_period_or_a_rule_alone() {
        let mut doc = json!({"components": {"schemas": components()}});
        super::refine_openapi(&mut doc);
        let one_of = &doc["components"]["schemas"]["TaskBodyRepeats"]["oneOf"];
        let null = json!({"type": "null"});
        assert_eq!(one_of[0]["required"], json!(["period"]));
        assert_eq!(one_of[0]["properties"]["period"]["not"], null);
        assert_eq!(one_of[0]["properties"]["rrule"], null);
        assert_eq!(one_of[1]["required"], json!(["rrule"]));
        for field in ["frequency", "period", "on", "ends"] {
            assert_eq!(one_of[1]["properties"][field], null, "{field}");
        }
    }

    /// One type parses and documents: every property the schema names is one the parser reads
    /// (a bad value there is refused at that pointer), at every level.
    #[test]
    fn every_documented_property_is_read_by_the_parser() {
        let components = components();
        let objects = [
            ("TaskBody", ""),
            ("TaskBodyRepeats", "/repeats"),
            ("TaskBodyNotify", "/notify"),
            ("TaskBodyMissed", "/missed"),
            ("TaskBodyNag", "/nag"),
            ("TaskBodyEscalation", "/escalate/0"),
        ];
        let mut checked = 0;
        for (component, at) in objects {
            let properties = components[component]["properties"].as_object().unwrap();
            assert!(!properties.is_empty(), "{component}");
            for (property, schema) in properties {
                let pointer = format!("{at}/{property}");
                let nested = schema
                    .to_string()
                    .contains("$ref\":\"#/components/schemas/TaskBody")
                    && ["repeats", "notify", "missed", "nag"].contains(&property.as_str());
                let bad = if nested {
                    json!([1])
                } else {
                    json!({"bad": true})
                };
                let mut body = valid_body();
                if at.is_empty() {
                    body[property.as_str()] = bad.clone();
                } else {
                    body.pointer_mut(at).unwrap()[property.as_str()] = bad.clone();
                }
                let errors = TaskSpec::parse(&body).unwrap_err();
                assert!(
                    errors
                        .0
                        .iter()
                        .any(|e| e.pointer == pointer && e.value == Some(bad.clone())),
                    "{pointer} is documented but a bad value there was not refused: {errors:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 14 + 5 + 6 + 2 + 2 + 2);
    }

    /// The examples the schema gives, put together, are a body the parser accepts.
    #[test]
    fn a_body_of_the_documented_examples_parses() {
        let components = components();
        let examples = |component: &str| -> Value {
            let properties = components[component]["properties"].as_object().unwrap();
            properties
                .iter()
                .filter_map(|(name, schema)| Some((name.clone(), schema.get("example")?.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let mut body = examples("TaskBody");
        body["notify"] = examples("TaskBodyNotify");
        body["missed"] = examples("TaskBodyMissed");
        body["nag"] = examples("TaskBodyNag");
        body["notify"]["sms"] = json!("+14075551212");
        body["escalate"] = json!([examples("TaskBodyEscalation")]);
        assert_eq!(
            body["missed"],
            json!({"policy": "skip", "limitSeconds": 3600})
        );
        let spec = TaskSpec::parse(&body).unwrap();
        assert!(spec.notify.push && spec.notify.in_app && !spec.notify.webhook);
        assert_eq!(
            spec.nag,
            Some(crate::task::Nag {
                every_minutes: 10,
                times: 3
            })
        );
        assert_eq!(spec.escalate.len(), 1);
    }
}
