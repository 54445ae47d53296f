use super::*;

fn ok(text: &str) -> Rrule {
    Rrule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refused(text: &str) -> String {
    match Rrule::parse(text) {
        Ok(r) => panic!("{text} was accepted as {r}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_documented_examples_parse_and_print_back() {
    for text in [
        "FREQ=MONTHLY;BYDAY=2TU",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "FREQ=HOURLY;INTERVAL=2;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,11,13,15,17",
        "FREQ=YEARLY;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA;UNTIL=20000131T140000Z",
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        "FREQ=YEARLY;BYYEARDAY=1,100,200;COUNT=10;INTERVAL=3",
        "FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=TU,TH;COUNT=8",
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        "FREQ=DAILY;UNTIL=19971224",
        "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
    ] {
        let rule = ok(text);
        let printed = rule.to_string();
        assert_eq!(ok(&printed), rule, "{text} printed as {printed}");
    }
}

#[test]
fn printing_is_canonical() {
    let rule = ok("rrule:freq=weekly;wkst=mo;interval=1;byday=tu,th;count=8");
    assert_eq!(rule.to_string(), "FREQ=WEEKLY;COUNT=8;BYDAY=TU,TH");
    assert_eq!(
        ok("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10").to_string(),
        "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"
    );
    assert_eq!(
        ok("FREQ=DAILY;UNTIL=19971224T000000").to_string(),
        "FREQ=DAILY;UNTIL=19971224T000000"
    );
}

#[test]
fn parts_are_read_into_their_fields() {
    let rule = ok("FREQ=MONTHLY;BYDAY=2TU,-1FR,SA;COUNT=3;UNTIL_IS_NOT_HERE=1"
        .split(";UNTIL")
        .next()
        .unwrap_or(""));
    assert_eq!(rule.freq, Freq::Monthly);
    assert_eq!(rule.end, Some(End::Count(3)));
    assert_eq!(
        rule.by_day,
        vec![
            WeekdayNum {
                ordinal: Some(2),
                weekday: Weekday::Tuesday
            },
            WeekdayNum {
                ordinal: Some(-1),
                weekday: Weekday::Friday
            },
            WeekdayNum {
                ordinal: None,
                weekday: Weekday::Saturday
            },
        ]
    );
    let until = ok("FREQ=DAILY;UNTIL=20000131T140000Z").end;
    assert_eq!(
        until,
        Some(End::Until(Until::Utc(
            "2000-01-31T14:00:00Z".parse().unwrap_or_default()
        )))
    );
}

#[test]
fn errors_name_the_part_and_the_value() {
    let cases = [
        ("FREQ=MONTHLY;BYDAY=9XX", "BYDAY=9XX: 'XX' is not a weekday"),
        // A character of two bytes where the weekday code is cut off: an error, not a panic.
        (
            "FREQ=MONTHLY;BYDAY=éO",
            "BYDAY=éO: 'éO' does not end in a weekday code (MO to SU)",
        ),
        (
            "FREQ=DAILY;UNTIL=2026120éT000000Z",
            "UNTIL=2026120éT000000Z: must be YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ",
        ),
        (
            "FREQ=MONTHLY;BYDAY=9TU",
            "BYDAY=9TU: 9TU: ordinal must be within ±5",
        ),
        (
            "FREQ=MONTHLY;BYDAY=0TU",
            "BYDAY=0TU: '0' in '0TU' is not an ordinal",
        ),
        (
            "FREQ=DAILY;BYDAY=1MO",
            "BYDAY=1MO: ordinals need FREQ=MONTHLY or FREQ=YEARLY",
        ),
        (
            "FREQ=YEARLY;BYWEEKNO=1;BYDAY=1MO",
            "BYDAY=1MO: ordinals are not allowed with BYWEEKNO",
        ),
        ("FREQ=FORTNIGHTLY", "FREQ=FORTNIGHTLY: must be"),
        ("FREQ=SECONDLY", "FREQ=SECONDLY: not supported"),
        ("FREQ=DAILY;BYSECOND=0", "BYSECOND=0: not supported"),
        (
            "FREQ=MINUTELY",
            "INTERVAL=1: FREQ=MINUTELY needs INTERVAL of at least 5",
        ),
        (
            "FREQ=DAILY;INTERVAL=0",
            "INTERVAL=0: must be a whole number",
        ),
        ("FREQ=DAILY;COUNT=-2", "COUNT=-2: must be a whole number"),
        (
            "FREQ=DAILY;COUNT=2;UNTIL=20260101",
            "UNTIL=20260101: COUNT and UNTIL exclude each other",
        ),
        ("FREQ=DAILY;UNTIL=20260230", "UNTIL=20260230: not a date"),
        (
            "FREQ=DAILY;UNTIL=2026-01-01",
            "UNTIL=2026-01-01: must be YYYYMMDD",
        ),
        (
            "FREQ=DAILY;UNTIL=20260101T250000Z",
            "UNTIL=20260101T250000Z: must be YYYYMMDD",
        ),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR=24: 24 is outside 0..=23"),
        (
            "FREQ=DAILY;BYMINUTE=9.5",
            "BYMINUTE=9.5: '9.5' is not an integer",
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=0",
            "BYMONTHDAY=0: 0 is outside -31..=-1 or 1..=31",
        ),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY=32: 32 is outside"),
        (
            "FREQ=WEEKLY;BYMONTHDAY=1",
            "BYMONTHDAY=1: not allowed with FREQ=WEEKLY",
        ),
        (
            "FREQ=MONTHLY;BYYEARDAY=1",
            "BYYEARDAY=1: not allowed with FREQ=MONTHLY",
        ),
        ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO=1: needs FREQ=YEARLY"),
        ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO=54: 54 is outside"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH=13: 13 is outside 1..=12"),
        (
            "FREQ=DAILY;BYSETPOS=1",
            "BYSETPOS=1: needs another BYxxx part",
        ),
        ("FREQ=DAILY;WKST=XY", "WKST=XY: 'XY' is not a weekday"),
        (
            "FREQ=DAILY;FREQ=WEEKLY",
            "FREQ=WEEKLY: given more than once",
        ),
        ("FREQ=DAILY;COLOR=RED", "COLOR=RED: unknown rule part"),
        ("FREQ=DAILY;BYHOUR=", "BYHOUR=: empty value"),
        ("INTERVAL=2", "FREQ=: FREQ is required"),
        (
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "BYMONTHDAY=30: no month in BYMONTH=2 has such a day",
        ),
        (
            "FREQ=YEARLY;BYMONTH=2,4;BYMONTHDAY=31,-31",
            "BYMONTHDAY=31,-31: no month in BYMONTH=2,4",
        ),
    ];
    for (text, expected) in cases {
        let message = refused(text);
        assert!(
            message.starts_with(expected),
            "{text}: got {message:?}, expected it to start with {expected:?}"
        );
    }
}

#[test]
fn possible_month_days_are_kept() {
    ok("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29");
    ok("FREQ=YEARLY;BYMONTH=2,3;BYMONTHDAY=30");
    ok("FREQ=MINUTELY;INTERVAL=5");
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn weekday() -> impl Strategy<Value = Weekday> {
        (0usize..7).prop_map(|i| WEEKDAYS[i].1)
    }

    /// Rule texts built from parts in random order; most are valid, some are refused.
    fn rule_text() -> impl Strategy<Value = String> {
        let freq = prop::sample::select(vec![
            "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY",
        ]);
        let day = (prop::option::of(-6i8..=6), weekday()).prop_map(|(n, d)| {
            let code = weekday_code(d);
            match n {
                Some(n) if n != 0 => format!("{n}{code}"),
                _ => code.to_owned(),
            }
        });
        let list = |lo: i32, hi: i32| prop::collection::vec(lo..=hi, 1..4).prop_map(|v| join(&v));
        let parts = (
            1u32..30,
            prop::option::of(1u32..50),
            prop::option::of(prop::collection::vec(day, 1..4).prop_map(|v| v.join(","))),
            prop::option::of(list(-31, 31)),
            prop::option::of(list(1, 12)),
            prop::option::of(list(0, 23)),
            prop::option::of(list(-3, 3)),
            prop::option::of(weekday()),
        );
        (freq, parts).prop_map(
            |(freq, (interval, count, by_day, month_day, month, hour, set_pos, wkst))| {
                let mut parts = vec![format!("FREQ={freq}"), format!("INTERVAL={interval}")];
                let named = [
                    ("COUNT", count.map(|c| c.to_string())),
                    ("BYDAY", by_day),
                    ("BYMONTHDAY", month_day),
                    ("BYMONTH", month),
                    ("BYHOUR", hour),
                    ("BYSETPOS", set_pos),
                    ("WKST", wkst.map(|d| weekday_code(d).to_owned())),
                ];
                parts.extend(
                    named
                        .into_iter()
                        .filter_map(|(n, v)| v.map(|v| format!("{n}={v}"))),
                );
                parts.join(";")
            },
        )
    }

    proptest! {
        #[test]
        fn every_accepted_rule_prints_to_a_text_that_parses_back_to_it(text in rule_text()) {
            if let Ok(rule) = Rrule::parse(&text) {
                let printed = rule.to_string();
                prop_assert_eq!(Rrule::parse(&printed), Ok(rule), "{} printed as {}", text, printed);
            }
        }
    }
}

#[test]
fn minutes_closer_than_five_apart_are_refused_across_the_hour_too() {
    let refused = |text: &str| Rrule::parse(text).unwrap_err().part;
    assert_eq!(refused("FREQ=HOURLY;BYMINUTE=0,4"), "BYMINUTE");
    // 58 and the next hour's 0: two minutes apart when consecutive hours can both be chosen.
    assert_eq!(refused("FREQ=HOURLY;BYMINUTE=0,58"), "BYMINUTE");
    assert_eq!(refused("FREQ=DAILY;BYHOUR=9,10;BYMINUTE=0,58"), "BYMINUTE");
    assert_eq!(refused("FREQ=DAILY;BYHOUR=0,23;BYMINUTE=0,58"), "BYMINUTE");
    // ...and allowed when they cannot.
    for ok in [
        "FREQ=DAILY;BYHOUR=9,11;BYMINUTE=0,58",
        "FREQ=DAILY;BYMINUTE=0,58",
        "FREQ=HOURLY;BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55",
        "FREQ=DAILY;BYHOUR=9,10;BYMINUTE=0,55",
    ] {
        assert!(Rrule::parse(ok).is_ok(), "{ok}");
    }
}
