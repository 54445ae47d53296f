//! Hostile input to the task parsers: arbitrary and near-valid `startDate` strings, arbitrary
//! recurrence rules (valid or not) evaluated from arbitrary instants, and JSON values at the
//! edges (huge numbers, deep nesting). Nothing may panic; every refusal is a `FieldError`
//! naming the field; every accepted rule yields strictly increasing instants.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.

use chime_core::task::TaskSpec;
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Accepted `startDate` forms, as mutation seeds.
const VALID_DATES: &[&str] = &[
    "2024-08-12 11:24:53.00+0000",
    "2024-08-12T11:24:53Z",
    "2031-01-01T09:00:00+05:30",
    "2024-02-29T23:59:59.999999999-12:00",
    "2024-08-12 11:24",
];

fn body_with_start(start: Value) -> Value {
    json!({"name": "x", "startDate": start})
}

/// Every error of a body whose only doubtful field is `startDate` must name it.
fn assert_only_start_date_refused(start: &Value) -> Result<(), TestCaseError> {
    if let Err(errors) = TaskSpec::parse(&body_with_start(start.clone())) {
        prop_assert!(!errors.0.is_empty());
        for e in &errors.0 {
            prop_assert!(
                e.pointer.starts_with("/startDate") || e.pointer == "/timeZone",
                "{:?} refused at {} ({})",
                start,
                e.pointer,
                e.detail
            );
            prop_assert!(!e.detail.is_empty());
        }
    }
    Ok(())
}

/// A valid date with one edit: a character deleted, replaced, inserted, or the string cut.
fn near_valid_date() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(VALID_DATES),
        any::<prop::sample::Index>(),
        0u8..4,
        prop_oneof![
            proptest::char::range('0', '9'),
            proptest::sample::select(vec![
                '-', ':', '+', 'T', 'Z', ' ', '.', '\u{0}', '\u{660}', '\u{ff10}', 'é'
            ]),
        ],
    )
        .prop_map(|(base, at, kind, c)| {
            let mut chars: Vec<char> = base.chars().collect();
            let i = at.index(chars.len());
            match kind {
                0 => {
                    chars.remove(i);
                }
                1 => chars[i] = c,
                2 => chars.insert(i, c),
                _ => chars.truncate(i),
            }
            chars.into_iter().collect()
        })
}

fn huge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(f64::MAX)),
        Just(json!(-f64::MAX)),
        Just(json!(f64::MIN_POSITIVE)),
        Just(serde_json::from_str::<Value>("1e308").unwrap()),
        Just(serde_json::from_str::<Value>("123456789012345678901234567890").unwrap()),
        Just(serde_json::from_str::<Value>("-0.0").unwrap()),
    ]
}

/// Any value a client could send for a recurrence field: numbers at the edges, strings near
/// the accepted forms, and the wrong types.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        huge_number(),
        (-5i64..40).prop_map(Value::from),
        (-5i64..40).prop_map(|n| Value::from(n.to_string())),
        proptest::sample::select(vec![
            "day",
            "days",
            "daily",
            "week",
            "weeks",
            "weekly",
            "month",
            "Monthly",
            "year",
            "yearly",
            "hour",
            "",
            " ",
            "last",
            "-1",
            "0",
            "mon",
            "monday, tuesday",
            "mmonday",
            "1,15,31",
            "31,-1,last",
            "2031-01-01",
            "2024-08-12 11:24:53.00+0000",
            "1e9",
            "99999999999999999999",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        proptest::collection::vec((-40i64..40).prop_map(Value::from), 0..5).prop_map(Value::from),
        proptest::collection::vec(
            proptest::sample::select(vec!["monday", "Tue", "sa", "x", "last", "-1"]),
            0..5
        )
        .prop_map(|v| json!(v)),
    ]
}

fn arb_repeats() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(field_value()),
        proptest::option::of(field_value()),
        proptest::option::of(field_value()),
        proptest::option::of(field_value()),
    )
        .prop_map(|(frequency, period, on, ends)| {
            let mut repeats = serde_json::Map::new();
            for (key, value) in [
                ("frequency", frequency),
                ("period", period),
                ("on", on),
                ("ends", ends),
            ] {
                if let Some(value) = value {
                    repeats.insert(key.to_owned(), value);
                }
            }
            Value::Object(repeats)
        })
}

/// Any instant jiff can hold, with extra weight near the task's start.
fn arb_instant() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second())
            .prop_map(|s| Timestamp::from_second(s).unwrap()),
        (-86_400 * 800i64..86_400 * 800).prop_map(|d| {
            Timestamp::from_second(1_924_938_000 + d).unwrap() // around 2031-01-01
        }),
    ]
}

fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, i| {
        if i % 2 == 0 {
            json!([inner])
        } else {
            json!({ "on": inner })
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_arbitrary_start_date_string_is_accepted_or_refused_at_start_date(s in "\\PC{0,40}") {
        assert_only_start_date_refused(&Value::from(s))?;
    }

    #[test]
    fn a_near_valid_start_date_is_accepted_or_refused_at_start_date(s in near_valid_date()) {
        assert_only_start_date_refused(&Value::from(s))?;
    }

    #[test]
    fn a_start_date_of_the_wrong_type_is_refused_at_start_date(v in prop_oneof![
        huge_number(),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!([])),
        Just(json!({"date": "2031-01-01"})),
    ]) {
        let errors = TaskSpec::parse(&body_with_start(v.clone())).unwrap_err();
        prop_assert!(errors.0.iter().all(|e| e.pointer == "/startDate"), "{:?}: {:?}", v, errors);
    }
}

proptest! {
    // Each accepted case walks a schedule; keep it quick in debug builds.
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_arbitrary_recurrence_rule_is_refused_under_repeats_or_yields_increasing_instants(
        repeats in arb_repeats(),
        t in arb_instant(),
        n in 1usize..12,
    ) {
        let body = json!({"name": "x", "startDate": "2031-01-01T09:00:00Z", "repeats": repeats});
        match TaskSpec::parse(&body) {
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert!(e.pointer.starts_with("/repeats"), "{} refused at {}: {}", body, e.pointer, e.detail);
                }
            }
            Ok(spec) => {
                let s = &spec.schedule;
                let first = s.first_at_or_after(t);
                if let Some(first) = first {
                    prop_assert!(first.at >= t, "{} from {}: {:?}", body, t, first);
                }
                let upcoming = s.upcoming(t, n);
                prop_assert!(upcoming.len() <= n);
                prop_assert!(upcoming.windows(2).all(|w| w[0] < w[1]), "{}: {:?}", body, upcoming);
                prop_assert!(upcoming.iter().all(|at| *at >= t));
                prop_assert_eq!(upcoming.first().copied(), first.map(|o| o.at));
            }
        }
    }

    #[test]
    fn deep_nesting_and_huge_numbers_anywhere_in_the_body_are_refused_not_panicked_on(
        depth in 0usize..120,
        leaf in huge_number(),
        key in proptest::sample::select(vec!["name", "startDate", "repeats", "notify", "missed", "description", "timeZone"]),
    ) {
        let mut body = json!({"name": "x", "startDate": "2031-01-01T09:00:00Z"});
        body[key] = nested(depth, leaf);
        if let Err(errors) = TaskSpec::parse(&body) {
            prop_assert!(errors.0.iter().all(|e| !e.detail.is_empty()));
            let field = format!("/{key}");
            prop_assert!(errors.0.iter().any(|e| e.pointer.starts_with(&field)), "{:?}", errors);
        }
    }
}
