//! The task body as the OpenAPI document describes it.

// Only describes the body for the OpenAPI document; `TaskSpec::parse` does the parsing. The
// doc comments below become the schema's descriptions, so they are written for API users.
/// A task to create or replace. Fields not listed are ignored. Every refused field is reported
/// with a JSON pointer to it.
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBody)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct TaskBodySchema {
    /// 1 to 200 characters after trimming; no control characters.
    #[schema(example = "Task Name", min_length = 1)]
    name: String,
    /// At most 4000 characters; null or blank for none. No control characters but tabs and
    /// line breaks (LF or CRLF).
    #[schema(example = "Memorable description", max_length = 4000)]
    description: Option<String>,
    /// A date and time with an offset: `2024-08-12 11:24:53.00+0000` (space or `T`; seconds,
    /// fraction optional; offset `+0000`, `+00:00`, `+00` or `Z`) or RFC 3339.
    #[schema(example = "2024-08-12 11:24:53.00+0000")]
    start_date: String,
    /// The wall clock the rule follows: an IANA name or `±HH:MM`. Default: the offset of
    /// `startDate`.
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
    /// Absent or null for a one-time task.
    repeats: Option<RepeatsBodySchema>,
    /// Delivery channels; default in-app only.
    notify: Option<NotifyBodySchema>,
    /// What to do with occurrences missed during downtime; default `fireOnceLate`.
    missed: Option<MissedBodySchema>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyRepeats)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RepeatsBodySchema {
    /// Every N periods: a whole number 1 to 1000, as a number or numeric string (`2`, `"2"`).
    /// Default 1.
    frequency: Option<FrequencySchema>,
    /// `day`, `week`, `month` or `year` (any case; plurals and `daily`, `weekly`, … accepted).
    #[schema(example = "week")]
    period: PeriodSchema,
    /// For `week`: weekdays (`monday`, `mon`, `mo`; one typing slip in a name of 5 or more
    /// letters is forgiven). For `month`: days 1..31, -1..-31 from the end, or `last`. A
    /// comma-separated string or an array. Default: the start's weekday or day. Not used with
    /// `day` or `year`. Examples: `"monday, tuesday"`, `["mon", "fri"]`, `[15, "last"]`.
    on: Option<OnSchema>,
    /// Empty or null: never. A number 1..100000 (or numeric string): after that many
    /// occurrences. `YYYY-MM-DD`: last local date, inclusive. A date and time with offset:
    /// last instant, inclusive. Examples: `12`, `"2025-01-31"`, `"2025-01-31T10:00:00Z"`.
    ends: Option<EndsSchema>,
}

/// A whole number of periods, as a number or a numeric string.
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyFrequency)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum FrequencySchema {
    Number(FrequencyNumberSchema),
    Text(NumericTextSchema),
}

/// A whole number within bounds, for the schema only (utoipa takes no bounds on a newtype).
macro_rules! bounded_integer_schema {
    ($name:ident, $as:literal, $min:literal, $max:literal) => {
        #[allow(dead_code)]
        pub struct $name(u32);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .minimum(Some($min))
                    .maximum(Some($max))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($as)
            }
        }
    };
}

bounded_integer_schema!(FrequencyNumberSchema, "TaskBodyFrequencyNumber", 1, 1000);

#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyNumericText, pattern = "^[0-9]+$")]
#[allow(dead_code)]
pub struct NumericTextSchema(String);

bounded_integer_schema!(EndsCountSchema, "TaskBodyEndsCount", 1, 100000);

/// Weekdays or days of the month: a comma-separated string, one day number, or an array.
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyOn)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OnSchema {
    Text(String),
    Day(i32),
    List(Vec<OnItemSchema>),
}

/// A weekday name or a day of the month (1..31, -1..-31, `last`).
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyOnItem)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OnItemSchema {
    Text(String),
    Day(i32),
}

/// A number of occurrences, or a last date or instant (a string).
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyEnds)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EndsSchema {
    Count(EndsCountSchema),
    Text(String),
}

/// A phone number: a string, or a whole number.
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodySms)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SmsSchema {
    Text(String),
    Number(u64),
}

/// The spellings of a period the parser accepts (in any case: the schema lists lower case).
#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyPeriod)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PeriodSchema {
    Day,
    Days,
    Daily,
    Week,
    Weeks,
    Weekly,
    Month,
    Months,
    Monthly,
    Year,
    Years,
    Yearly,
}

#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyNotify)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct NotifyBodySchema {
    /// An email address; empty for none.
    #[schema(example = "someone@example.com")]
    email: Option<String>,
    /// A phone number (string or number), stored in E.164. With a leading `+` and country
    /// code, or national (read in the server's default region, US unless configured);
    /// spaces, dashes, dots and parentheses ignored. Examples: `"+1 (407) 555-1212"`,
    /// `4075551212`, `"+44 20 7946 0958"`.
    sms: Option<SmsSchema>,
    /// Default false.
    #[schema(example = true)]
    push: Option<bool>,
    /// The owner's in-app inbox. Default true.
    #[schema(example = true)]
    in_app: Option<bool>,
    /// POST to the owner's configured webhook endpoint. Default false.
    #[schema(example = false)]
    webhook: Option<bool>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = TaskBodyMissed)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct MissedBodySchema {
    /// `fireOnceLate` (default), `fireAll` or `skip` (any case).
    #[schema(
        example = "skip",
        pattern = "^([fF][iI][rR][eE][oO][nN][cC][eE][lL][aA][tT][eE]|[fF][iI][rR][eE][aA][lL][lL]|[sS][kK][iI][pP])$"
    )]
    policy: Option<String>,
    /// Required with `skip`, refused otherwise: 1 to 31536000.
    #[schema(example = 3600, minimum = 1, maximum = 31536000)]
    limit_seconds: Option<i64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.
mod openapi_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_body_schema_is_named_task_body_and_documents_every_field() {
        use utoipa::{PartialSchema, ToSchema};
        assert_eq!(TaskBodySchema::name(), "TaskBody");
        let schema = serde_json::to_value(TaskBodySchema::schema()).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        for field in [
            "name",
            "description",
            "startDate",
            "timeZone",
            "repeats",
            "notify",
            "missed",
        ] {
            assert!(properties.contains_key(field), "{field} missing: {schema}");
        }
        assert_eq!(schema["required"], json!(["name", "startDate"]));
        let mut nested = Vec::new();
        TaskBodySchema::schemas(&mut nested);
        let names: Vec<String> = nested.into_iter().map(|(name, _)| name).collect();
        for name in ["TaskBodyRepeats", "TaskBodyNotify", "TaskBodyMissed"] {
            assert!(names.iter().any(|n| n == name), "{names:?}");
        }
    }
}
