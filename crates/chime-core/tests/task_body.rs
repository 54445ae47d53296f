//! Parsing the design's POST body into a `TaskSpec`: every accepted form, every refusal with
//! its JSON pointer and value, `require_future`, and the `to_json`/`parse` round trip.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.

use chime_core::recurrence::{Ends, On, Period, Recurrence, Repeats};
use chime_core::task::{ParseOptions, PhoneNumber, TaskSpec};
use chime_core::{FieldError, FieldErrors, MissedPolicy};
use jiff::civil::{date, Weekday};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{json, Value};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn design_body() -> Value {
    json!({
        "name": "Task Name",
        "description": "Memorable description",
        "startDate": "2024-08-12 11:24:53.00+0000",
        "repeats": {
            "frequency": "1",
            "period": "week",
            "on": "mmonday, tuesday",
            "ends": "12"
        },
        "notify": {
            "email": "someone@example.com",
            "sms": "4075551212",
            "push": true
        }
    })
}

/// `design_body` with `value` at JSON pointer `pointer` (created if missing).
fn with(pointer: &str, value: Value) -> Value {
    let mut body = design_body();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        &mut body
    } else {
        if body.pointer(parent).is_none() {
            *body
                .pointer_mut(parent.rsplit_once('/').unwrap().0)
                .unwrap() = json!({});
        }
        body.pointer_mut(parent).unwrap()
    };
    parent
        .as_object_mut()
        .unwrap()
        .insert(key.to_owned(), value);
    body
}

/// `design_body` without the field at `pointer`.
fn without(pointer: &str) -> Value {
    let mut body = design_body();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).unwrap()
    };
    parent.as_object_mut().unwrap().remove(key);
    body
}

fn parse(body: &Value) -> TaskSpec {
    match TaskSpec::parse(body) {
        Ok(spec) => spec,
        Err(e) => panic!("{body} was refused: {:#?}", e.0),
    }
}

fn repeats(body: &Value) -> Repeats {
    match parse(body).schedule.repeats {
        Some(Recurrence::Every(repeats)) => repeats,
        other => panic!("not in the design's fields: {other:?}"),
    }
}

fn errors(body: &Value) -> Vec<FieldError> {
    match TaskSpec::parse(body) {
        Ok(spec) => panic!("{body} was accepted: {spec:?}"),
        Err(FieldErrors(errors)) => errors,
    }
}

/// The only error of `body`, which must be at `pointer`.
fn error_at(body: &Value, pointer: &str) -> FieldError {
    let errors = errors(body);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].pointer, pointer, "{errors:#?}");
    errors[0].clone()
}

#[test]
fn the_designs_example_body_is_accepted() {
    let spec = parse(&design_body());
    assert_eq!(spec.name.as_str(), "Task Name");
    assert_eq!(spec.description.as_deref(), Some("Memorable description"));
    assert_eq!(spec.schedule.start, ts("2024-08-12T11:24:53Z"));
    assert_eq!(spec.schedule.zone.name(), "+00:00");
    assert_eq!(
        spec.schedule.repeats,
        Some(Recurrence::Every(Repeats {
            frequency: 1,
            period: Period::Week,
            on: On::Weekdays(vec![Weekday::Monday, Weekday::Tuesday]),
            ends: Ends::AfterCount(12),
        }))
    );
    assert_eq!(spec.notify.email.unwrap().as_str(), "someone@example.com");
    assert_eq!(spec.notify.sms.unwrap().as_str(), "+14075551212");
    assert!(spec.notify.push);
    assert!(spec.notify.in_app);
    assert_eq!(spec.missed, MissedPolicy::FireOnceLate);
}

#[test]
fn the_designs_example_serializes_to_the_api_shape() {
    assert_eq!(
        parse(&design_body()).to_json(),
        json!({
            "name": "Task Name",
            "description": "Memorable description",
            "startDate": "2024-08-12T11:24:53Z",
            "timeZone": "+00:00",
            "repeats": {"frequency": 1, "period": "week", "on": ["monday", "tuesday"], "ends": 12},
            "notify": {"email": "someone@example.com", "sms": "+14075551212", "push": true, "inApp": true, "webhook": false},
            "missed": {"policy": "fireOnceLate"}
        })
    );
}

#[test]
fn a_minimal_body_is_a_one_time_in_app_task() {
    let spec = parse(&json!({"name": "x", "startDate": "2024-08-12T11:24:53Z"}));
    assert_eq!(spec.description, None);
    assert_eq!(spec.schedule.repeats, None);
    assert_eq!(spec.notify.email, None);
    assert_eq!(spec.notify.sms, None);
    assert!(!spec.notify.push);
    assert!(spec.notify.in_app);
    assert_eq!(
        spec.to_json(),
        json!({
            "name": "x", "description": null, "startDate": "2024-08-12T11:24:53Z",
            "timeZone": "+00:00", "repeats": null,
            "notify": {"email": null, "sms": null, "push": false, "inApp": true, "webhook": false},
            "missed": {"policy": "fireOnceLate"}
        })
    );
}

#[test]
fn start_dates_are_accepted_in_the_designs_format_and_rfc_3339() {
    let cases = [
        (
            "2024-08-12 11:24:53.00+0000",
            "2024-08-12T11:24:53Z",
            "+00:00",
        ),
        (
            "2024-08-12T11:24:53.00+0000",
            "2024-08-12T11:24:53Z",
            "+00:00",
        ),
        ("2024-08-12 11:24:53+0000", "2024-08-12T11:24:53Z", "+00:00"),
        (
            "2024-08-12 11:24:53+00:00",
            "2024-08-12T11:24:53Z",
            "+00:00",
        ),
        ("2024-08-12 11:24:53+00", "2024-08-12T11:24:53Z", "+00:00"),
        ("2024-08-12 11:24:53Z", "2024-08-12T11:24:53Z", "+00:00"),
        ("2024-08-12T11:24:53Z", "2024-08-12T11:24:53Z", "+00:00"),
        ("2024-08-12t11:24:53z", "2024-08-12T11:24:53Z", "+00:00"),
        (
            "2024-08-12T13:24:53+02:00",
            "2024-08-12T11:24:53Z",
            "+02:00",
        ),
        (
            "2024-08-12 13:24:53.5+0200",
            "2024-08-12T11:24:53.5Z",
            "+02:00",
        ),
        (
            // Kept to the microsecond.
            "2024-08-12T06:24:53.123456789-05:00",
            "2024-08-12T11:24:53.123456Z",
            "-05:00",
        ),
        (
            "2024-08-12 16:54:53.1+0530",
            "2024-08-12T11:24:53.1Z",
            "+05:30",
        ),
        ("2024-08-12T11:24Z", "2024-08-12T11:24:00Z", "+00:00"),
        (
            " 2024-08-12 11:24:53 +0000 ",
            "2024-08-12T11:24:53Z",
            "+00:00",
        ),
    ];
    for (given, instant, zone) in cases {
        let spec = parse(&with("/startDate", json!(given)));
        assert_eq!(spec.schedule.start, ts(instant), "{given}");
        assert_eq!(spec.schedule.zone.name(), zone, "{given}");
    }
}

#[test]
fn a_start_date_without_an_offset_is_refused_as_missing_its_offset() {
    for given in ["2024-08-12 11:24:53", "2024-08-12T11:24:53.00"] {
        let e = error_at(&with("/startDate", json!(given)), "/startDate");
        assert_eq!(e.value, Some(json!(given)));
        assert!(e.detail.contains("offset is missing"), "{}", e.detail);
    }
}

#[test]
fn malformed_start_dates_are_refused_with_the_value_received() {
    for given in [
        json!("yesterday"),
        json!("2024-02-30 10:00:00Z"),
        json!("2024-08-12 25:00:00Z"),
        json!("2024-08-12 11:24:53.1234567890Z"),
        json!("2024-08-12 11:24:53+2400"),
        json!("2024-08-12"),
        json!(1_723_461_893),
        json!(null),
    ] {
        let e = error_at(&with("/startDate", given.clone()), "/startDate");
        assert_eq!(e.value, Some(given));
        assert!(e.detail.contains("2024-08-12"), "{}", e.detail);
    }
    let e = error_at(&without("/startDate"), "/startDate");
    assert_eq!(e.value, None);
}

#[test]
fn a_body_that_is_not_an_object_is_refused_at_the_root() {
    for body in [json!([]), json!("task"), json!(null)] {
        let e = error_at(&body, "");
        assert_eq!(e.value, Some(body));
    }
}

#[test]
fn every_refused_field_is_reported_not_only_the_first() {
    let body = json!({
        "name": "",
        "startDate": "soon",
        "timeZone": "Mars/Olympus",
        "repeats": {"frequency": 0, "period": "fortnight", "ends": "never"},
        "notify": {"email": "nobody", "sms": "123", "push": "yes"},
        "missed": {"policy": "later"}
    });
    let pointers: Vec<String> = errors(&body).into_iter().map(|e| e.pointer).collect();
    assert_eq!(
        pointers,
        [
            "/name",
            "/startDate",
            "/timeZone",
            "/repeats/frequency",
            "/repeats/period",
            "/repeats/ends",
            "/notify/email",
            "/notify/sms",
            "/notify/push",
            "/missed/policy"
        ]
    );
}

#[test]
fn unknown_top_level_fields_are_ignored() {
    let spec = parse(&with("/colour", json!("blue")));
    assert_eq!(spec, parse(&design_body()));
}

#[test]
fn a_name_is_trimmed_and_must_be_1_to_200_characters_without_control_characters() {
    assert_eq!(
        parse(&with("/name", json!("  Call mum  "))).name.as_str(),
        "Call mum"
    );
    assert_eq!(
        parse(&with("/name", json!("é".repeat(200))))
            .name
            .as_str()
            .chars()
            .count(),
        200
    );
    for bad in [
        json!(""),
        json!("   "),
        json!("a".repeat(201)),
        json!("a\nb"),
        json!(42),
        json!(null),
    ] {
        let e = error_at(&with("/name", bad.clone()), "/name");
        assert_eq!(e.value, Some(bad));
    }
    assert_eq!(error_at(&without("/name"), "/name").value, None);
}

#[test]
fn a_description_is_optional_trimmed_and_at_most_4000_characters() {
    assert_eq!(parse(&with("/description", json!(null))).description, None);
    assert_eq!(parse(&with("/description", json!("  "))).description, None);
    assert_eq!(parse(&without("/description")).description, None);
    assert_eq!(
        parse(&with("/description", json!(" Bring cake\n")))
            .description
            .as_deref(),
        Some("Bring cake")
    );
    assert!(parse(&with("/description", json!("d".repeat(4000))))
        .description
        .is_some());
    error_at(
        &with("/description", json!("d".repeat(4001))),
        "/description",
    );
    error_at(&with("/description", json!(["x"])), "/description");
}

#[test]
fn a_description_keeps_tabs_and_line_breaks_and_refuses_other_control_characters() {
    assert_eq!(
        parse(&with("/description", json!("Bring:\tcake\r\nand\ncandles")))
            .description
            .as_deref(),
        Some("Bring:\tcake\r\nand\ncandles")
    );
    for bad in ["a\u{0}b", "lone\rreturn", "bell\u{7}", "esc\u{1b}[31m"] {
        let e = error_at(&with("/description", json!(bad)), "/description");
        assert!(e.detail.contains("control characters"), "{e:?}");
    }
}

#[test]
fn a_start_date_past_the_supported_range_says_so() {
    let e = error_at(
        &with("/startDate", json!("9999-12-31T23:59:59Z")),
        "/startDate",
    );
    assert!(e.detail.contains("out of range"), "{e:?}");
}

#[test]
fn a_time_zone_is_an_iana_name_or_an_offset() {
    let zone = |v: Value| parse(&with("/timeZone", v)).schedule.zone.name().to_owned();
    assert_eq!(zone(json!("Europe/Berlin")), "Europe/Berlin");
    assert_eq!(zone(json!("america/new_york")), "America/New_York");
    assert_eq!(zone(json!("+05:30")), "+05:30");
    assert_eq!(zone(json!("-04:00")), "-04:00");
    assert_eq!(zone(json!("UTC")), "UTC");
    assert_eq!(zone(json!("Z")), "UTC");
    assert_eq!(zone(json!(null)), "+00:00");
    for bad in [json!("Mars/Olympus"), json!("+5"), json!(""), json!(2)] {
        let e = error_at(&with("/timeZone", bad.clone()), "/timeZone");
        assert_eq!(e.value, Some(bad));
    }
}

#[test]
fn a_frequency_is_a_whole_number_from_1_to_1000() {
    let frequency = |v: Value| repeats(&with("/repeats/frequency", v)).frequency;
    assert_eq!(frequency(json!(3)), 3);
    assert_eq!(frequency(json!("7")), 7);
    assert_eq!(frequency(json!(1000)), 1000);
    assert_eq!(frequency(json!(null)), 1);
    assert_eq!(repeats(&without("/repeats/frequency")).frequency, 1);
    for bad in [
        json!("0"),
        // As the schema says, `^[0-9]+$`: no blanks, no sign.
        json!(" 2"),
        json!("2 "),
        json!("+2"),
        json!(""),
        json!(0),
        json!(-1),
        json!(1.5),
        json!("abc"),
        json!(1001),
        json!(true),
    ] {
        let e = error_at(
            &with("/repeats/frequency", bad.clone()),
            "/repeats/frequency",
        );
        assert_eq!(e.value, Some(bad));
        assert!(e.detail.contains("1 to 1000"), "{}", e.detail);
    }
}

#[test]
fn a_period_is_read_in_any_case_with_plurals_and_adverbs() {
    let period = |v: &str| {
        let body = with("/repeats/period", json!(v));
        let body = with_repeats_field(body, "on", json!(null));
        repeats(&body).period
    };
    assert_eq!(period("day"), Period::Day);
    assert_eq!(period(" Weeks "), Period::Week);
    assert_eq!(period("MONTHLY"), Period::Month);
    assert_eq!(period("yearly"), Period::Year);
    assert_eq!(period("daily"), Period::Day);
    let e = error_at(
        &with("/repeats/period", json!("fortnight")),
        "/repeats/period",
    );
    assert_eq!(e.value, Some(json!("fortnight")));
    assert!(
        e.detail.contains("`day`, `week`, `month` or `year`"),
        "{}",
        e.detail
    );
    assert_eq!(
        error_at(&without("/repeats/period"), "/repeats/period").value,
        None
    );
}

fn with_repeats_field(mut body: Value, key: &str, value: Value) -> Value {
    body["repeats"][key] = value;
    body
}

fn weekly_on(on: Value) -> Value {
    with("/repeats/on", on)
}

#[test]
fn weekdays_are_read_by_full_three_letter_or_two_letter_names() {
    let on = |v: Value| repeats(&weekly_on(v)).on;
    use Weekday::*;
    assert_eq!(on(json!("MO,we")), On::Weekdays(vec![Monday, Wednesday]));
    assert_eq!(
        on(json!("sunday monday")),
        On::Weekdays(vec![Monday, Sunday])
    );
    assert_eq!(
        on(json!(["sun", "Monday", "mon", "Fr"])),
        On::Weekdays(vec![Monday, Friday, Sunday])
    );
    assert_eq!(on(json!("")), On::Start);
    assert_eq!(on(json!([])), On::Start);
    assert_eq!(on(json!(null)), On::Start);
}

#[test]
fn a_weekday_one_typing_slip_from_exactly_one_name_is_forgiven() {
    let on = |v: &str| repeats(&weekly_on(json!(v))).on;
    use Weekday::*;
    assert_eq!(on("mmonday, tuesday"), On::Weekdays(vec![Monday, Tuesday]));
    assert_eq!(on("tuseday"), On::Weekdays(vec![Tuesday]));
    assert_eq!(on("wednsday"), On::Weekdays(vec![Wednesday]));
    assert_eq!(on("fridya"), On::Weekdays(vec![Friday]));
    assert_eq!(on("sundat"), On::Weekdays(vec![Sunday]));
    // `funday` is one letter from `sunday` only, so it is Sunday.
    assert_eq!(on("funday"), On::Weekdays(vec![Sunday]));
    // Too short, two edits away, or as near to two names (`tuesday`, `thursday`: neither).
    for bad in ["blursday", "tues", "mndy", "thurday's", "mondays!"] {
        let e = error_at(&weekly_on(json!(bad)), "/repeats/on");
        assert_eq!(e.value, Some(json!(bad)));
    }
}

#[test]
fn an_unknown_weekday_is_quoted_with_the_expected_names() {
    let e = error_at(&weekly_on(json!("monday, blursday")), "/repeats/on");
    assert_eq!(e.value, Some(json!("monday, blursday")));
    assert_eq!(
        e.detail,
        "unknown weekday `blursday`: expected monday..sunday, mon..sun or mo..su"
    );
    let e = error_at(&weekly_on(json!(["monday", "blursday"])), "/repeats/on/1");
    assert_eq!(e.value, Some(json!("blursday")));
    let e = error_at(&weekly_on(json!(["monday", 3])), "/repeats/on/1");
    assert_eq!(e.value, Some(json!(3)));
    let all = errors(&weekly_on(json!(["xx", "monday", "yy"])));
    let pointers: Vec<&str> = all.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/repeats/on/0", "/repeats/on/2"]);
    error_at(&weekly_on(json!({"day": "monday"})), "/repeats/on");
}

fn monthly_on(on: Value) -> Value {
    with_repeats_field(with("/repeats/period", json!("month")), "on", on)
}

#[test]
fn month_days_are_numbers_numeric_strings_or_last() {
    let on = |v: Value| repeats(&monthly_on(v)).on;
    assert_eq!(on(json!("1, 15, last")), On::MonthDays(vec![-1, 1, 15]));
    assert_eq!(
        on(json!([15, "-2", 31, 15])),
        On::MonthDays(vec![-2, 15, 31])
    );
    assert_eq!(on(json!(15)), On::MonthDays(vec![15]));
    assert_eq!(on(json!("-31")), On::MonthDays(vec![-31]));
    assert_eq!(on(json!("LAST")), On::MonthDays(vec![-1]));
    assert_eq!(on(json!("")), On::Start);
    for bad in ["0", "32", "-32", "first", "1.5"] {
        let e = error_at(&monthly_on(json!(bad)), "/repeats/on");
        assert_eq!(e.value, Some(json!(bad)));
        assert!(e.detail.contains(&format!("`{bad}`")), "{}", e.detail);
    }
    let e = error_at(&monthly_on(json!([1, 0])), "/repeats/on/1");
    assert_eq!(e.value, Some(json!(0)));
}

#[test]
fn day_and_year_periods_take_no_on() {
    for period in ["day", "year"] {
        let body = with("/repeats/period", json!(period));
        let e = error_at(&body, "/repeats/on");
        assert_eq!(e.value, Some(json!("mmonday, tuesday")));
        assert!(
            e.detail
                .starts_with(&format!("`on` is not used with period {period}")),
            "{}",
            e.detail
        );
        for empty in [json!(null), json!(""), json!([])] {
            let body = with_repeats_field(body.clone(), "on", empty);
            assert_eq!(repeats(&body).on, On::Start);
        }
    }
}

#[test]
fn ends_is_never_a_count_a_date_or_an_instant() {
    let ends = |v: Value| repeats(&with("/repeats/ends", v)).ends;
    assert_eq!(ends(json!("")), Ends::Never);
    assert_eq!(ends(json!(null)), Ends::Never);
    assert_eq!(repeats(&without("/repeats/ends")).ends, Ends::Never);
    assert_eq!(ends(json!(12)), Ends::AfterCount(12));
    assert_eq!(ends(json!(" 12 ")), Ends::AfterCount(12));
    assert_eq!(ends(json!(100_000)), Ends::AfterCount(100_000));
    assert_eq!(ends(json!("2025-01-31")), Ends::OnDate(date(2025, 1, 31)));
    assert_eq!(
        ends(json!("2025-01-31T10:00:00Z")),
        Ends::AtInstant(ts("2025-01-31T10:00:00Z"))
    );
    assert_eq!(
        ends(json!("2025-01-31 12:00:00.00+0200")),
        Ends::AtInstant(ts("2025-01-31T10:00:00Z"))
    );
    for bad in [
        json!(0),
        json!("0"),
        json!(-3),
        json!(100_001),
        json!(2.5),
        json!("soon"),
        json!("2025-02-30"),
        json!(true),
    ] {
        let e = error_at(&with("/repeats/ends", bad.clone()), "/repeats/ends");
        assert_eq!(e.value, Some(bad));
    }
    let e = error_at(
        &with("/repeats/ends", json!("2025-01-31 10:00")),
        "/repeats/ends",
    );
    assert!(e.detail.contains("offset is missing"), "{}", e.detail);
}

#[test]
fn repeats_must_be_an_object_or_null() {
    assert_eq!(parse(&with("/repeats", json!(null))).schedule.repeats, None);
    let e = error_at(&with("/repeats", json!("weekly")), "/repeats");
    assert_eq!(e.value, Some(json!("weekly")));
}

#[test]
fn an_email_is_trimmed_and_must_look_like_an_address() {
    let email = |v: Value| parse(&with("/notify/email", v)).notify.email;
    assert_eq!(
        email(json!(" a.b+c@example.co.uk ")).unwrap().as_str(),
        "a.b+c@example.co.uk"
    );
    assert_eq!(email(json!("")), None);
    assert_eq!(email(json!(null)), None);
    let long = format!("{}@example.com", "a".repeat(243));
    for bad in [
        json!("nobody"),
        json!("a@b"),
        json!("a@@b.com"),
        json!("a@b@c.com"),
        json!("@example.com"),
        json!("a b@example.com"),
        json!("a@.com"),
        json!(long),
        json!(42),
    ] {
        let e = error_at(&with("/notify/email", bad.clone()), "/notify/email");
        assert_eq!(e.value, Some(bad));
    }
}

fn sms_in(region: &str, v: Value) -> Result<String, FieldError> {
    let options = ParseOptions::new(region).unwrap();
    match TaskSpec::parse_with(with("/notify/sms", v), &options) {
        Ok(spec) => Ok(spec.notify.sms.unwrap().as_str().to_owned()),
        Err(FieldErrors(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:#?}");
            assert_eq!(errors[0].pointer, "/notify/sms", "{errors:#?}");
            Err(errors[0].clone())
        }
    }
}

#[test]
fn the_designs_example_number_takes_the_default_region_us_and_becomes_e164() {
    let sms = |v: Value| parse(&with("/notify/sms", v)).notify.sms.unwrap();
    for given in [
        json!("4075551212"),
        json!("(407) 555-1212"),
        json!("407.555.1212"),
        json!(" 1 407 555 1212 "),
        json!("+1 (407) 555-1212"),
        json!("011 1 407 555 1212"),
        json!(4_075_551_212u64),
        json!(14_075_551_212u64),
    ] {
        assert_eq!(sms(given.clone()).as_str(), "+14075551212", "{given}");
    }
    assert_eq!(ParseOptions::default().default_region, "US");
    assert_eq!(
        TaskSpec::parse(&design_body()),
        TaskSpec::parse_with(design_body(), &ParseOptions::default())
    );
}

#[test]
fn a_national_number_is_read_in_the_configured_region() {
    assert_eq!(
        sms_in("GB", json!("020 7946 0958")).unwrap(),
        "+442079460958"
    );
    assert_eq!(
        sms_in("gb", json!("07911 123456")).unwrap(),
        "+447911123456"
    );
    assert_eq!(
        sms_in("GB", json!("00 1 407 555 1212")).unwrap(),
        "+14075551212"
    );
    assert_eq!(
        sms_in("DE", json!("0151 23456789")).unwrap(),
        "+4915123456789"
    );
    // The same digits are a different number, or none, elsewhere.
    assert!(sms_in("US", json!("020 7946 0958")).is_err());
}

#[test]
fn a_number_with_a_plus_keeps_its_own_country_whatever_the_region() {
    for region in ["US", "GB", "DE", "FR", "JP"] {
        assert_eq!(
            sms_in(region, json!("+44 20 7946 0958")).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            sms_in(region, json!("+14075551212")).unwrap(),
            "+14075551212"
        );
        // A national number after the country code that starts with the region's national
        // prefix (`1` in the US) keeps it.
        assert_eq!(
            sms_in(region, json!("+49 151 23456789")).unwrap(),
            "+4915123456789"
        );
        assert_eq!(
            sms_in(region, json!("+33 1 23 45 67 89")).unwrap(),
            "+33123456789"
        );
    }
}

#[test]
fn an_international_prefix_reads_the_number_in_its_own_country() {
    assert_eq!(
        sms_in("US", json!("011 44 20 7946 0958")).unwrap(),
        "+442079460958"
    );
    assert_eq!(
        sms_in("US", json!("011 49 151 23456789")).unwrap(),
        "+4915123456789"
    );
    assert_eq!(
        sms_in("GB", json!("0049 151 23456789")).unwrap(),
        "+4915123456789"
    );
}

#[test]
fn an_empty_sms_number_is_absent() {
    let sms = |v: Value| parse(&with("/notify/sms", v)).notify.sms;
    assert_eq!(sms(json!("")), None);
    assert_eq!(sms(json!("  ")), None);
    assert_eq!(sms(json!(null)), None);
}

#[test]
fn an_invalid_sms_number_is_refused_at_notify_sms_naming_the_value() {
    for bad in [
        "123",
        "1234567",
        "5551234567",
        "1234567890123456",
        "407555121x",
        "4075551212 ext 12",
        "1-800-FLOWERS",
        "++4075551212",
        "+999 123 456 789",
        "+44 20 7946",
        "tel:+14075551212",
        "()",
    ] {
        let e = error_at(&with("/notify/sms", json!(bad)), "/notify/sms");
        assert_eq!(e.value, Some(json!(bad)));
        assert!(
            e.detail.contains(&format!("`{bad}`")),
            "{bad}: {}",
            e.detail
        );
        assert!(e.detail.contains("+14075551212"), "{bad}: {}", e.detail);
    }
    let e = error_at(&with("/notify/sms", json!("5551234567")), "/notify/sms");
    assert!(e.detail.contains("default region US"), "{}", e.detail);
    let e = error_at(&with("/notify/sms", json!("+999123456789")), "/notify/sms");
    assert!(!e.detail.contains("region US"), "{}", e.detail);
    for bad in [
        json!(40.5),
        json!(-4_075_551_212i64),
        json!(true),
        json!(["4075551212"]),
    ] {
        let e = error_at(&with("/notify/sms", bad.clone()), "/notify/sms");
        assert_eq!(e.value, Some(bad));
        assert!(e.detail.contains("4075551212"), "{}", e.detail);
    }
    let long = "1".repeat(41);
    let e = error_at(&with("/notify/sms", json!(long)), "/notify/sms");
    assert_eq!(e.value, Some(json!(long)));
}

#[test]
fn a_default_region_must_be_a_region_with_a_numbering_plan() {
    assert_eq!(ParseOptions::new(" gb ").unwrap().default_region, "GB");
    for bad in ["", "XX", "UK", "USA", "001", "us-east"] {
        let e = ParseOptions::new(bad).unwrap_err();
        assert!(e.0.contains("ISO 3166"), "{bad}: {e}");
    }
    // Set by hand to a non-region, it refuses national numbers instead of guessing.
    let options = ParseOptions {
        default_region: "XX".into(),
    };
    assert!(PhoneNumber::parse_with("4075551212", &options)
        .unwrap_err()
        .0
        .contains("`XX`"));
    assert_eq!(
        PhoneNumber::parse_with("+14075551212", &options)
            .unwrap()
            .as_str(),
        "+14075551212"
    );
}

#[test]
fn push_and_in_app_are_booleans_with_defaults() {
    let notify = |v: Value| parse(&with("/notify", v)).notify;
    let n = notify(json!({}));
    assert!(!n.push && n.in_app);
    let n = notify(json!({"push": true, "inApp": false}));
    assert!(n.push && !n.in_app);
    error_at(&with("/notify/push", json!("yes")), "/notify/push");
    error_at(&with("/notify/inApp", json!(0)), "/notify/inApp");
    error_at(&with("/notify", json!("email")), "/notify");
    assert!(parse(&without("/notify")).notify.in_app);
}

#[test]
fn the_missed_policy_takes_a_limit_only_with_skip() {
    let missed = |v: Value| parse(&with("/missed", v)).missed;
    assert_eq!(missed(json!({"policy": "fireAll"})), MissedPolicy::FireAll);
    assert_eq!(
        missed(json!({"policy": "fireOnceLate"})),
        MissedPolicy::FireOnceLate
    );
    assert_eq!(missed(json!({})), MissedPolicy::FireOnceLate);
    assert_eq!(missed(json!(null)), MissedPolicy::FireOnceLate);
    assert_eq!(
        missed(json!({"policy": "skip", "limitSeconds": 3600})),
        MissedPolicy::Skip {
            limit: SignedDuration::from_secs(3600)
        }
    );
    let e = error_at(
        &with("/missed", json!({"policy": "skip"})),
        "/missed/limitSeconds",
    );
    assert_eq!(e.value, None);
    for bad in [json!(0), json!(31_536_001), json!("soon")] {
        let body = with(
            "/missed",
            json!({"policy": "skip", "limitSeconds": bad.clone()}),
        );
        assert_eq!(error_at(&body, "/missed/limitSeconds").value, Some(bad));
    }
    let body = with("/missed", json!({"policy": "fireAll", "limitSeconds": 60}));
    assert_eq!(
        error_at(&body, "/missed/limitSeconds").value,
        Some(json!(60))
    );
    let e = error_at(
        &with("/missed", json!({"policy": "later"})),
        "/missed/policy",
    );
    assert_eq!(e.value, Some(json!("later")));
    error_at(&with("/missed", json!("skip")), "/missed");
}

#[test]
fn a_task_with_an_occurrence_at_or_after_now_is_in_the_future() {
    let spec = parse(&design_body());
    assert!(spec.require_future(ts("2024-08-12T11:24:53Z")).is_ok());
    // Twelve Mondays and Tuesdays from 2024-08-12: the last is Tuesday 2024-09-17.
    assert!(spec.require_future(ts("2024-09-17T11:24:53Z")).is_ok());
    assert!(spec.require_future(ts("2024-09-17T11:24:54Z")).is_err());
    let one_time = parse(&with("/repeats", json!(null)));
    assert!(one_time.require_future(ts("2024-08-12T11:24:53Z")).is_ok());
}

#[test]
fn a_one_time_task_in_the_past_is_refused_at_its_start_date() {
    let spec = parse(&with("/repeats", json!(null)));
    let FieldErrors(errors) = spec.require_future(ts("2026-01-01T00:00:00Z")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].pointer, "/startDate");
    assert_eq!(errors[0].value, Some(json!("2024-08-12T11:24:53Z")));
    assert_eq!(
        errors[0].detail,
        "no occurrence of this task is at or after now (2026-01-01T00:00:00Z): every occurrence \
         is in the past"
    );
}

#[test]
fn a_repeating_task_whose_end_has_passed_is_refused_at_its_end() {
    let now = ts("2026-01-01T00:00:00Z");
    for (ends, value) in [
        (json!(12), json!(12)),
        (json!("2025-01-31"), json!("2025-01-31")),
        (
            json!("2025-01-31 10:00:00+0000"),
            json!("2025-01-31T10:00:00Z"),
        ),
    ] {
        let spec = parse(&with("/repeats/ends", ends));
        let FieldErrors(errors) = spec.require_future(now).unwrap_err();
        assert_eq!(errors[0].pointer, "/repeats/ends");
        assert_eq!(errors[0].value, Some(value));
        assert!(
            errors[0].detail.contains("(2026-01-01T00:00:00Z)"),
            "{}",
            errors[0].detail
        );
    }
    let endless = parse(&with("/repeats/ends", json!(null)));
    assert!(endless.require_future(now).is_ok());
}

#[test]
fn a_repeating_task_that_can_never_match_is_refused_at_its_start_date() {
    let body = with(
        "/repeats",
        json!({"period": "month", "frequency": 12, "on": 31, "ends": 3}),
    );
    let body = with_field(body, "startDate", json!("2025-02-01T09:00:00Z"));
    let spec = parse(&body);
    let FieldErrors(errors) = spec.require_future(ts("2024-01-01T00:00:00Z")).unwrap_err();
    assert_eq!(errors[0].pointer, "/startDate");
}

fn with_field(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[test]
fn the_canonical_shape_of_every_kind_of_field_parses_back_to_the_same_task() {
    let bodies = [
        design_body(),
        json!({
            "name": "Rent", "startDate": "2024-01-31T09:00:00+01:00", "timeZone": "Europe/Berlin",
            "repeats": {"period": "monthly", "frequency": "2", "on": "15, last", "ends": "2030-12-31"},
            "notify": {"inApp": false, "email": "me@example.org"},
            "missed": {"policy": "skip", "limitSeconds": "600"}
        }),
        json!({
            "name": "Birthday", "startDate": "2024-02-29 08:00:00.25-0500",
            "repeats": {"period": "year", "ends": "2080-02-29T13:00:00.25Z"},
            "missed": {"policy": "FIREALL"}
        }),
    ];
    for body in bodies {
        let spec = parse(&body);
        let json = spec.to_json();
        assert_eq!(TaskSpec::parse(&json), Ok(spec), "{json}");
        assert_eq!(parse(&json).to_json(), json);
    }
}

// ----- The round trip as a property over generated bodies. -----

const ZONES: [&str; 6] = [
    "Europe/Berlin",
    "America/New_York",
    "UTC",
    "Asia/Kolkata",
    "+05:45",
    "-09:30",
];

/// Valid in the default region (US), in the forms people write.
const SMS_NUMBERS: [&str; 10] = [
    "4075551212",
    "(407) 555-1212",
    "1 201.555.0123",
    "+1 212 555 0100",
    "011 44 20 7946 0958",
    "+44 7911 123456",
    "+49 151 23456789",
    "+33 1 23 45 67 89",
    "+39 06 1234 5678",
    "+81 3-1234-5678",
];

fn arb_start() -> impl Strategy<Value = String> {
    (
        0i64..4_102_444_800,
        0u32..1_000_000_000,
        prop_oneof![Just(0), -720i32..=840],
        0usize..5,
    )
        .prop_map(|(secs, nanos, offset_minutes, format)| {
            let at = Timestamp::new(secs, i32::try_from(nanos).unwrap()).unwrap();
            let offset = jiff::tz::Offset::from_seconds(offset_minutes * 60).unwrap();
            let local = offset.to_datetime(at);
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let (h, m) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
            let base = local.strftime("%Y-%m-%d %H:%M:%S%.f").to_string();
            match format {
                0 => format!("{base}{sign}{h:02}{m:02}"),
                1 => format!("{}{sign}{h:02}:{m:02}", base.replacen(' ', "T", 1)),
                2 if m == 0 => format!("{base}{sign}{h:02}"),
                3 => at.to_string(),
                _ => format!("{base}{sign}{h:02}:{m:02}"),
            }
        })
}

fn arb_repeats() -> impl Strategy<Value = Value> {
    let weekday = proptest::sample::select(vec![
        "monday", "Tue", "we", "THURSDAY", "fri", "sa", "Sunday", "mmonday",
    ]);
    let month_day = prop_oneof![
        (1i64..=31).prop_map(|d| json!(d)),
        (-31i64..=-1).prop_map(|d| json!(d.to_string())),
        Just(json!("last")),
    ];
    let ends = prop_oneof![
        Just(json!(null)),
        Just(json!("")),
        (1u32..=100_000).prop_map(|n| json!(n)),
        (1u32..=100_000).prop_map(|n| json!(n.to_string())),
        (2000i16..2100, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| json!(date(y, m, d).to_string())),
        arb_start().prop_map(|s| json!(s)),
    ];
    (
        prop_oneof![Just(None), (1u32..=1000).prop_map(Some)],
        0usize..4,
        proptest::collection::vec(weekday, 0..4),
        proptest::collection::vec(month_day, 0..4),
        any::<bool>(),
        ends,
    )
        .prop_map(
            |(frequency, period, weekdays, month_days, as_string, ends)| {
                let period_name = ["days", "week", "Monthly", "year"][period];
                let on = match period {
                    1 if as_string => json!(weekdays.join(", ")),
                    1 => json!(weekdays),
                    2 if as_string => json!(month_days
                        .iter()
                        .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(",")),
                    2 => json!(month_days),
                    _ => json!(null),
                };
                let mut repeats = json!({"period": period_name, "on": on, "ends": ends});
                if let Some(frequency) = frequency {
                    repeats["frequency"] = json!(frequency);
                }
                repeats
            },
        )
}

/// Rules as people write them: prefixed or not, any case, parts in any order.
const RULES: [&str; 6] = [
    "FREQ=MONTHLY;BYDAY=2TU",
    "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "freq=daily;byday=mo,tu,we,th,fr;byhour=9,11,13,15,17;byminute=0",
    "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;COUNT=10",
    "FREQ=MINUTELY;INTERVAL=90;UNTIL=20990101T000000Z",
    "INTERVAL=2;FREQ=WEEKLY;WKST=SU;BYDAY=SU,TU",
];

fn arb_body() -> impl Strategy<Value = Value> {
    (
        "[A-Za-z][A-Za-z0-9 ,.!?'-]{0,40}",
        proptest::option::of("[ -~\n]{0,80}"),
        arb_start(),
        proptest::option::of(proptest::sample::select(&ZONES[..])),
        proptest::option::of(prop_oneof![
            3 => arb_repeats(),
            1 => proptest::sample::select(&RULES[..]).prop_map(|rule| json!({"rrule": rule})),
        ]),
        (
            proptest::option::of("[a-z0-9.+_-]{1,12}@[a-z0-9-]{1,12}\\.[a-z]{2,6}"),
            proptest::option::of(proptest::sample::select(&SMS_NUMBERS[..])),
            any::<bool>(),
            any::<bool>(),
        ),
        prop_oneof![
            Just(json!(null)),
            Just(json!({"policy": "fireAll"})),
            Just(json!({"policy": "fireOnceLate"})),
            (1i64..=31_536_000).prop_map(|s| json!({"policy": "skip", "limitSeconds": s})),
        ],
    )
        .prop_map(
            |(name, description, start, zone, repeats, notify, missed)| {
                let (email, sms, push, in_app) = notify;
                json!({
                    "name": name,
                    "description": description,
                    "startDate": start,
                    "timeZone": zone,
                    "repeats": repeats,
                    "notify": {"email": email, "sms": sms, "push": push, "inApp": in_app},
                    "missed": missed,
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_body_parses_and_its_canonical_shape_parses_back_to_the_same_task(body in arb_body()) {
        let spec = TaskSpec::parse(&body);
        prop_assert!(spec.is_ok(), "{} was refused: {:?}", body, spec);
        let spec = spec.unwrap();
        let json = spec.to_json();
        prop_assert_eq!(TaskSpec::parse(&json), Ok(spec), "{}", json);
        prop_assert_eq!(parse(&json).to_json(), json);
    }

    #[test]
    fn every_valid_task_is_stored_and_read_back_as_the_same_task(body in arb_body()) {
        let spec = parse(&body);
        let stored = spec.to_stored();
        prop_assert_eq!(TaskSpec::from_stored(&stored), Ok(spec), "{}", stored);
    }

    #[test]
    fn reading_arbitrary_json_as_a_stored_task_never_panics(body in arb_json()) {
        let _ = TaskSpec::from_stored(&body);
        let _ = TaskSpec::from_stored(&json!({"v": 1, "name": "x", "startDate": "2024-01-01T00:00:00Z", "timeZone": "UTC", "repeats": body.clone(), "notify": body.clone(), "missed": body}));
    }

    #[test]
    fn the_canonical_shape_parses_back_to_the_same_task_whatever_the_region(
        body in arb_body(),
        region in proptest::sample::select(vec!["US", "GB", "DE", "IT", "JP", "BR"]),
    ) {
        let spec = parse(&body);
        let json = spec.to_json();
        let options = ParseOptions::new(region).unwrap();
        prop_assert_eq!(TaskSpec::parse_with(json.clone(), &options), Ok(spec), "{}", json);
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(body in arb_json()) {
        let _ = TaskSpec::parse(&body);
        let _ = TaskSpec::parse(&json!({"name": "x", "startDate": "2024-01-01T00:00:00Z", "repeats": body.clone()}));
        let _ = TaskSpec::parse(&json!({"name": "x", "startDate": body.clone(), "notify": body.clone(), "missed": body}));
    }
}

proptest! {
    // Each case consults the numbering plan up to eight times; slow in debug builds.
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_phone_number_is_e164_and_parses_back_to_itself_in_any_region(
        digits in "[1-9][0-9]{5,14}",
        region in proptest::sample::select(vec!["US", "GB", "DE", "IT", "JP", "BR", "IN", "AU"]),
    ) {
        let options = ParseOptions::new(region).unwrap();
        for given in [format!("+{digits}"), digits.clone()] {
            if let Ok(phone) = PhoneNumber::parse_with(&given, &options) {
                let e164 = phone.as_str();
                prop_assert!(e164.starts_with('+') && e164.len() <= 16, "{}", e164);
                prop_assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()), "{}", e164);
                for other in ["US", "GB", "IT"] {
                    let again = PhoneNumber::parse_with(e164, &ParseOptions::new(other).unwrap());
                    prop_assert_eq!(again.as_ref(), Ok(&phone), "{} from {} in {}", e164, given, other);
                }
            }
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[0-9 :.+TZ-]{0,30}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "name",
                    "startDate",
                    "period",
                    "on",
                    "ends",
                    "frequency",
                    "policy",
                    "limitSeconds",
                    "email",
                    "sms",
                    "push",
                    "inApp",
                    "repeats",
                    "timeZone",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn escalation_steps_parse_in_any_case_and_round_trip_through_the_stored_form() {
    use chime_core::event::Channel;
    let body = with(
        "/escalate",
        json!([{"afterMinutes": 1, "channel": "SMS"}, {"afterMinutes": "2", "channel": " email "}]),
    );
    let spec = parse(&body);
    let steps: Vec<(u32, Channel)> = spec
        .escalate
        .iter()
        .map(|s| (s.after_minutes, s.channel))
        .collect();
    assert_eq!(steps, [(1, Channel::Sms), (2, Channel::Email)]);
    assert!(spec.escalates_to(Channel::Sms) && !spec.escalates_to(Channel::Push));
    let fired = ts("2030-01-01T09:00:00Z");
    assert_eq!(
        spec.escalation_at(fired, 1),
        Some(ts("2030-01-01T09:02:00Z"))
    );
    assert_eq!(spec.escalation_at(fired, 2), None);
    let stored = spec.to_stored();
    assert_eq!(stored["v"], 2, "an escalating task is stored as version 2");
    assert_eq!(TaskSpec::from_stored(&stored).unwrap(), spec);
    assert_eq!(parse(&spec.to_json()), spec);
    // Absent, null and empty are no escalation, stored as version 1.
    for none in [json!(null), json!([])] {
        let spec = parse(&with("/escalate", none));
        assert!(spec.escalate.is_empty());
        assert_eq!(spec.to_stored().get("v"), Some(&json!(1)));
    }
}

#[test]
fn bad_escalation_steps_are_refused_at_their_pointer_with_their_value() {
    let cases = [
        (json!("sms"), "/escalate", json!("sms")),
        (json!([1]), "/escalate/0", json!(1)),
        (
            json!([{"afterMinutes": 0, "channel": "sms"}]),
            "/escalate/0/afterMinutes",
            json!(0),
        ),
        (
            json!([{"afterMinutes": 1441, "channel": "sms"}]),
            "/escalate/0/afterMinutes",
            json!(1441),
        ),
        (
            json!([{"afterMinutes": 5, "channel": "pigeon"}]),
            "/escalate/0/channel",
            json!("pigeon"),
        ),
        (
            json!([{"afterMinutes": 5, "channel": "inApp"}]),
            "/escalate/0/channel",
            json!("inApp"),
        ),
        // Not later than the step before.
        (
            json!([{"afterMinutes": 5, "channel": "sms"}, {"afterMinutes": 5, "channel": "email"}]),
            "/escalate/1/afterMinutes",
            json!(5),
        ),
        // The same channel twice.
        (
            json!([{"afterMinutes": 5, "channel": "sms"}, {"afterMinutes": 9, "channel": "sms"}]),
            "/escalate/1/channel",
            json!("sms"),
        ),
        // A channel the task does not notify on.
        (
            json!([{"afterMinutes": 5, "channel": "webhook"}]),
            "/escalate/0/channel",
            json!("webhook"),
        ),
        (
            json!([
                {"afterMinutes": 1, "channel": "sms"},
                {"afterMinutes": 2, "channel": "email"},
                {"afterMinutes": 3, "channel": "push"},
                {"afterMinutes": 4, "channel": "webhook"},
                {"afterMinutes": 5, "channel": "sms"}
            ]),
            "/escalate",
            json!(null),
        ),
    ];
    for (escalate, pointer, value) in cases {
        let body = with("/escalate", escalate.clone());
        let error = error_at(&body, pointer);
        if !value.is_null() {
            assert_eq!(error.value, Some(value), "{escalate}");
        }
    }
    // No `sms` in `notify`: escalating to it is refused.
    let mut body = without("/notify/sms");
    body["escalate"] = json!([{"afterMinutes": 5, "channel": "sms"}]);
    let error = error_at(&body, "/escalate/0/channel");
    assert!(error.detail.contains("does not notify by sms"), "{error:?}");
}

#[test]
fn a_stored_escalation_that_breaks_the_rules_is_corrupt_not_trusted() {
    let mut stored = parse(&design_body()).to_stored();
    stored["v"] = json!(2);
    stored["escalate"] = json!([{"afterMinutes": 5, "channel": "inApp"}]);
    assert!(TaskSpec::from_stored(&stored).is_err());
    stored["escalate"] = json!([{"afterMinutes": 5, "channel": "sms", "extra": 1}]);
    assert!(TaskSpec::from_stored(&stored).is_err());
    stored["escalate"] = json!([{"afterMinutes": 5, "channel": "sms"}]);
    assert!(TaskSpec::from_stored(&stored).is_ok());
}

fn with_rrule(rule: Value) -> Value {
    with("/repeats", json!({ "rrule": rule }))
}

#[test]
fn a_task_repeats_by_an_rfc_5545_rule_and_answers_it_in_canonical_form() {
    let spec = parse(&with_rrule(json!("RRULE:byday=2tu;freq=monthly")));
    let json = spec.to_json();
    assert_eq!(json["repeats"], json!({"rrule": "FREQ=MONTHLY;BYDAY=2TU"}));
    assert_eq!(
        spec.schedule.rrule().unwrap().to_string(),
        "FREQ=MONTHLY;BYDAY=2TU"
    );
    // The second Tuesdays from the start (Monday 2024-08-12 11:24:53 UTC).
    let upcoming = spec.schedule.upcoming(ts("2024-08-01T00:00:00Z"), 3);
    assert_eq!(
        upcoming,
        [
            ts("2024-08-13T11:24:53Z"),
            ts("2024-09-10T11:24:53Z"),
            ts("2024-10-08T11:24:53Z")
        ]
    );
    // Stored in version 3, which releases before rules hold as newer instead of corrupt.
    let stored = spec.to_stored();
    assert_eq!(stored["v"], 3);
    assert_eq!(TaskSpec::from_stored(&stored), Ok(spec));
    assert_eq!(parse(&design_body()).to_stored()["v"], 1);
}

#[test]
fn a_rule_is_refused_with_the_part_and_value_that_are_wrong() {
    let e = error_at(
        &with_rrule(json!("FREQ=MONTHLY;BYDAY=9TU")),
        "/repeats/rrule",
    );
    assert_eq!(e.value, Some(json!("FREQ=MONTHLY;BYDAY=9TU")));
    assert!(e.detail.contains("BYDAY=9TU"), "{}", e.detail);
    let e = error_at(&with_rrule(json!("FREQ=SECONDLY")), "/repeats/rrule");
    assert!(e.detail.contains("FREQ=SECONDLY"), "{}", e.detail);
    let e = error_at(&with_rrule(json!("FREQ=MINUTELY")), "/repeats/rrule");
    assert!(e.detail.contains("INTERVAL"), "{}", e.detail);
    let e = error_at(
        &with_rrule(json!("FREQ=HOURLY;BYMINUTE=0,2")),
        "/repeats/rrule",
    );
    assert!(e.detail.contains("5 minutes"), "{}", e.detail);
    let e = error_at(&with_rrule(json!(12)), "/repeats/rrule");
    assert_eq!(e.value, Some(json!(12)));
    error_at(&with_rrule(json!("")), "/repeats/rrule");
}

#[test]
fn a_rule_stands_alone_in_repeats() {
    let body = with(
        "/repeats",
        json!({"rrule": "FREQ=DAILY", "period": "week", "ends": 3}),
    );
    let pointers: Vec<String> = errors(&body).into_iter().map(|e| e.pointer).collect();
    assert_eq!(pointers, ["/repeats/period", "/repeats/ends"]);
    // Null is absent, as everywhere in the body.
    let body = with("/repeats", json!({"rrule": "FREQ=DAILY", "period": null}));
    parse(&body);
    let body = with("/repeats", json!({"rrule": null, "period": "day"}));
    assert!(matches!(
        parse(&body).schedule.repeats,
        Some(Recurrence::Every(_))
    ));
}

#[test]
fn a_rule_that_ends_before_now_or_never_matches_is_refused_at_the_rule() {
    let ended = parse(&with_rrule(json!("FREQ=DAILY;COUNT=3")));
    let FieldErrors(errors) = ended
        .require_future(ts("2026-01-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(errors[0].pointer, "/repeats/rrule");
    assert_eq!(errors[0].value, Some(json!("FREQ=DAILY;COUNT=3")));
    assert!(
        errors[0].detail.contains("ends before then"),
        "{}",
        errors[0].detail
    );
    // The 200th day of the year in January can be written (the parser refuses only what it
    // sees cheaply) and never comes: said so, after a bounded search, at the rule.
    let never = parse(&with_rrule(json!("FREQ=YEARLY;BYMONTH=1;BYYEARDAY=200")));
    let FieldErrors(errors) = never
        .require_future(ts("2024-01-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(errors[0].pointer, "/repeats/rrule");
    assert!(
        errors[0].detail.contains("matches no date"),
        "{}",
        errors[0].detail
    );
    let ongoing = parse(&with_rrule(json!("FREQ=WEEKLY;BYDAY=FR")));
    assert!(ongoing.require_future(ts("2030-01-01T00:00:00Z")).is_ok());
}

#[test]
fn skipped_and_moved_occurrences_are_read_checked_stored_and_answered() {
    let body = json!({
        "name": "Stand-up",
        "startDate": "2030-01-07T09:00:00Z",
        "repeats": {"period": "day"},
        "skipped": ["2030-01-08T09:00:00Z"],
        "moved": [{"from": "2030-01-09T09:00:00Z", "to": "2030-01-09T14:00:00+00:00"}],
    });
    let spec = parse(&body);
    let upcoming = spec.schedule.upcoming(ts("2030-01-07T10:00:00Z"), 2);
    assert_eq!(
        upcoming,
        [ts("2030-01-09T14:00:00Z"), ts("2030-01-10T09:00:00Z")]
    );
    assert!(spec.check_moves().is_ok());
    let json = spec.to_json();
    assert_eq!(json["skipped"], json!(["2030-01-08T09:00:00Z"]));
    assert_eq!(
        json["moved"],
        json!([{"from": "2030-01-09T09:00:00Z", "to": "2030-01-09T14:00:00Z"}])
    );
    assert_eq!(TaskSpec::parse(&json), Ok(spec.clone()));
    let stored = spec.to_stored();
    assert_eq!(stored["v"], 3);
    assert_eq!(TaskSpec::from_stored(&stored), Ok(spec));

    // A move past the next occurrence is refused at its entry, with the pair.
    let mut past = body.clone();
    past["moved"][0]["to"] = json!("2030-01-10T10:00:00Z");
    let FieldErrors(errors) = parse(&past).check_moves().unwrap_err();
    assert_eq!(errors[0].pointer, "/moved/0");
    assert!(
        errors[0].detail.contains("between its neighbours"),
        "{}",
        errors[0].detail
    );
    // Not instants, or moved twice: refused where they are.
    let mut bad = body.clone();
    bad["skipped"] = json!(["tomorrow"]);
    error_at(&bad, "/skipped/0");
    let mut bad = body;
    bad["moved"] = json!([
        {"from": "2030-01-09T09:00:00Z", "to": "2030-01-09T10:00:00Z"},
        {"from": "2030-01-09T09:00:00Z", "to": "2030-01-09T11:00:00Z"},
    ]);
    error_at(&bad, "/moved/1/from");
}
