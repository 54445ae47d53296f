//! The examples of RFC 5545 section 3.8.5.3, each with the instants the RFC lists (local
//! times; `DTSTART;TZID=America/New_York` unless an example says otherwise). For rules without
//! an end, the first instants the RFC lists.

use jiff::tz::TimeZone;

use super::*;

fn local(text: &str) -> DateTime {
    DateTime::strptime("%Y%m%dT%H%M", text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Days of one month at 09:00: `days(1997, 9, &[2, 3])`.
fn days(year: i16, month: i8, days: &[i8]) -> Vec<DateTime> {
    days.iter()
        .map(|&d| {
            Date::new(year, month, d)
                .expect("a date")
                .to_datetime(Time::new(9, 0, 0, 0).expect("09:00"))
        })
        .collect()
}

fn range(year: i16, month: i8, from: i8, to: i8) -> Vec<DateTime> {
    days(year, month, &(from..=to).collect::<Vec<_>>())
}

fn expand(start: &str, rule: &str, n: usize) -> Vec<DateTime> {
    let zone = TimeZone::get("America/New_York").expect("the zone");
    Rrule::parse(rule)
        .unwrap_or_else(|e| panic!("{rule}: {e}"))
        .expand(local(start), &zone)
        .take(n)
        .collect()
}

/// The whole expansion of an ending rule equals `expected`.
fn all(start: &str, rule: &str, expected: Vec<DateTime>) {
    assert_eq!(expand(start, rule, 10_000), expected, "{rule}");
}

/// The first instants of a rule equal `expected`.
fn first(start: &str, rule: &str, expected: Vec<DateTime>) {
    assert_eq!(expand(start, rule, expected.len()), expected, "{rule}");
}

fn cat(parts: &[Vec<DateTime>]) -> Vec<DateTime> {
    parts.concat()
}

const START: &str = "19970902T0900";

#[test]
fn daily_examples() {
    all(START, "FREQ=DAILY;COUNT=10", range(1997, 9, 2, 11));
    all(
        START,
        "FREQ=DAILY;UNTIL=19971224T000000Z",
        cat(&[
            range(1997, 9, 2, 30),
            range(1997, 10, 1, 31),
            range(1997, 11, 1, 30),
            range(1997, 12, 1, 23),
        ]),
    );
    first(
        START,
        "FREQ=DAILY;INTERVAL=2",
        cat(&[
            days(
                1997,
                9,
                &[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30],
            ),
            days(1997, 10, &[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]),
        ]),
    );
    all(
        START,
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        cat(&[days(1997, 9, &[2, 12, 22]), days(1997, 10, &[2, 12])]),
    );
    let january = cat(&[
        range(1998, 1, 1, 31),
        range(1999, 1, 1, 31),
        range(2000, 1, 1, 31),
    ]);
    all(
        "19980101T0900",
        "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
        january.clone(),
    );
    all(
        "19980101T0900",
        "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
        january,
    );
}

#[test]
fn weekly_examples() {
    all(
        START,
        "FREQ=WEEKLY;COUNT=10",
        cat(&[
            days(1997, 9, &[2, 9, 16, 23, 30]),
            days(1997, 10, &[7, 14, 21, 28]),
            days(1997, 11, &[4]),
        ]),
    );
    all(
        START,
        "FREQ=WEEKLY;UNTIL=19971224T000000Z",
        cat(&[
            days(1997, 9, &[2, 9, 16, 23, 30]),
            days(1997, 10, &[7, 14, 21, 28]),
            days(1997, 11, &[4, 11, 18, 25]),
            days(1997, 12, &[2, 9, 16, 23]),
        ]),
    );
    first(
        START,
        "FREQ=WEEKLY;INTERVAL=2;WKST=SU",
        cat(&[
            days(1997, 9, &[2, 16, 30]),
            days(1997, 10, &[14, 28]),
            days(1997, 11, &[11, 25]),
            days(1997, 12, &[9, 23]),
            days(1998, 1, &[6, 20]),
            days(1998, 2, &[3, 17]),
        ]),
    );
    let tue_thu = cat(&[
        days(1997, 9, &[2, 4, 9, 11, 16, 18, 23, 25, 30]),
        days(1997, 10, &[2]),
    ]);
    all(
        START,
        "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
        tue_thu.clone(),
    );
    all(START, "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH", tue_thu);
    all(
        "19970901T0900",
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        cat(&[
            days(1997, 9, &[1, 3, 5, 15, 17, 19, 29]),
            days(1997, 10, &[1, 3, 13, 15, 17, 27, 29, 31]),
            days(1997, 11, &[10, 12, 14, 24, 26, 28]),
            days(1997, 12, &[8, 10, 12, 22]),
        ]),
    );
    all(
        START,
        "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
        cat(&[
            days(1997, 9, &[2, 4, 16, 18, 30]),
            days(1997, 10, &[2, 14, 16]),
        ]),
    );
    // WKST decides which days share a week with the start.
    all(
        "19970805T0900",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        days(1997, 8, &[5, 10, 19, 24]),
    );
    all(
        "19970805T0900",
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        days(1997, 8, &[5, 17, 19, 31]),
    );
}

#[test]
fn monthly_examples() {
    all(
        "19970905T0900",
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        cat(&[
            days(1997, 9, &[5]),
            days(1997, 10, &[3]),
            days(1997, 11, &[7]),
            days(1997, 12, &[5]),
            days(1998, 1, &[2]),
            days(1998, 2, &[6]),
            days(1998, 3, &[6]),
            days(1998, 4, &[3]),
            days(1998, 5, &[1]),
            days(1998, 6, &[5]),
        ]),
    );
    all(
        "19970905T0900",
        "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
        cat(&[
            days(1997, 9, &[5]),
            days(1997, 10, &[3]),
            days(1997, 11, &[7]),
            days(1997, 12, &[5]),
        ]),
    );
    all(
        "19970907T0900",
        "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
        cat(&[
            days(1997, 9, &[7, 28]),
            days(1997, 11, &[2, 30]),
            days(1998, 1, &[4, 25]),
            days(1998, 3, &[1, 29]),
            days(1998, 5, &[3, 31]),
        ]),
    );
    all(
        "19970922T0900",
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        cat(&[
            days(1997, 9, &[22]),
            days(1997, 10, &[20]),
            days(1997, 11, &[17]),
            days(1997, 12, &[22]),
            days(1998, 1, &[19]),
            days(1998, 2, &[16]),
        ]),
    );
    first(
        "19970928T0900",
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        cat(&[
            days(1997, 9, &[28]),
            days(1997, 10, &[29]),
            days(1997, 11, &[28]),
            days(1997, 12, &[29]),
            days(1998, 1, &[29]),
            days(1998, 2, &[26]),
        ]),
    );
    all(
        START,
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        cat(&[
            days(1997, 9, &[2, 15]),
            days(1997, 10, &[2, 15]),
            days(1997, 11, &[2, 15]),
            days(1997, 12, &[2, 15]),
            days(1998, 1, &[2, 15]),
        ]),
    );
    all(
        "19970930T0900",
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        cat(&[
            days(1997, 9, &[30]),
            days(1997, 10, &[1, 31]),
            days(1997, 11, &[1, 30]),
            days(1997, 12, &[1, 31]),
            days(1998, 1, &[1, 31]),
            days(1998, 2, &[1]),
        ]),
    );
    all(
        "19970910T0900",
        "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
        cat(&[range(1997, 9, 10, 15), range(1999, 3, 10, 13)]),
    );
    first(
        START,
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
        cat(&[
            days(1997, 9, &[2, 9, 16, 23, 30]),
            days(1997, 11, &[4, 11, 18, 25]),
            days(1998, 1, &[6, 13, 20, 27]),
            days(1998, 3, &[3, 10, 17, 24, 31]),
        ]),
    );
    // Every Friday the 13th (the RFC excludes its DTSTART with EXDATE; here a start that is
    // not an occurrence is not one anyway).
    first(
        START,
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        cat(&[
            days(1998, 2, &[13]),
            days(1998, 3, &[13]),
            days(1998, 11, &[13]),
            days(1999, 8, &[13]),
            days(2000, 10, &[13]),
        ]),
    );
    // The first Saturday that follows the first Sunday of the month.
    first(
        "19970913T0900",
        "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        cat(&[
            days(1997, 9, &[13]),
            days(1997, 10, &[11]),
            days(1997, 11, &[8]),
            days(1997, 12, &[13]),
            days(1998, 1, &[10]),
            days(1998, 2, &[7]),
            days(1998, 3, &[7]),
            days(1998, 4, &[11]),
            days(1998, 5, &[9]),
            days(1998, 6, &[13]),
        ]),
    );
    all(
        "19970904T0900",
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        cat(&[
            days(1997, 9, &[4]),
            days(1997, 10, &[7]),
            days(1997, 11, &[6]),
        ]),
    );
    first(
        "19970929T0900",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        cat(&[
            days(1997, 9, &[29]),
            days(1997, 10, &[30]),
            days(1997, 11, &[27]),
            days(1997, 12, &[30]),
            days(1998, 1, &[29]),
            days(1998, 2, &[26]),
            days(1998, 3, &[30]),
        ]),
    );
    // A date a month does not have is skipped, and not counted.
    all(
        "20070115T0900",
        "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        cat(&[
            days(2007, 1, &[15, 30]),
            days(2007, 2, &[15]),
            days(2007, 3, &[15, 30]),
        ]),
    );
}

#[test]
fn yearly_examples() {
    all(
        "19970610T0900",
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        (1997..=2001)
            .flat_map(|y| cat(&[days(y, 6, &[10]), days(y, 7, &[10])]))
            .collect(),
    );
    all(
        "19970310T0900",
        "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
        cat(&[
            days(1997, 3, &[10]),
            days(1999, 1, &[10]),
            days(1999, 2, &[10]),
            days(1999, 3, &[10]),
            days(2001, 1, &[10]),
            days(2001, 2, &[10]),
            days(2001, 3, &[10]),
            days(2003, 1, &[10]),
            days(2003, 2, &[10]),
            days(2003, 3, &[10]),
        ]),
    );
    all(
        "19970101T0900",
        "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        cat(&[
            days(1997, 1, &[1]),
            days(1997, 4, &[10]),
            days(1997, 7, &[19]),
            days(2000, 1, &[1]),
            days(2000, 4, &[9]),
            days(2000, 7, &[18]),
            days(2003, 1, &[1]),
            days(2003, 4, &[10]),
            days(2003, 7, &[19]),
            days(2006, 1, &[1]),
        ]),
    );
    first(
        "19970519T0900",
        "FREQ=YEARLY;BYDAY=20MO",
        cat(&[
            days(1997, 5, &[19]),
            days(1998, 5, &[18]),
            days(1999, 5, &[17]),
        ]),
    );
    first(
        "19970512T0900",
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        cat(&[
            days(1997, 5, &[12]),
            days(1998, 5, &[11]),
            days(1999, 5, &[17]),
        ]),
    );
    first(
        "19970313T0900",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
        cat(&[
            days(1997, 3, &[13, 20, 27]),
            days(1998, 3, &[5, 12, 19, 26]),
            days(1999, 3, &[4, 11, 18, 25]),
        ]),
    );
    first(
        "19970605T0900",
        "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
        cat(&[
            days(1997, 6, &[5, 12, 19, 26]),
            days(1997, 7, &[3, 10, 17, 24, 31]),
            days(1997, 8, &[7, 14, 21, 28]),
            days(1998, 6, &[4, 11, 18, 25]),
            days(1998, 7, &[2, 9, 16, 23, 30]),
            days(1998, 8, &[6, 13, 20, 27]),
        ]),
    );
    // US Presidential Election day: the Tuesday after the first Monday of November.
    first(
        "19961105T0900",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        cat(&[
            days(1996, 11, &[5]),
            days(2000, 11, &[7]),
            days(2004, 11, &[2]),
        ]),
    );
}

#[test]
fn hourly_and_minutely_examples() {
    let at = |times: &[&str]| -> Vec<DateTime> {
        times
            .iter()
            .map(|t| local(&format!("19970902T{t}")))
            .collect()
    };
    // The RFC's example ends at 17:00 local (its `170000Z` is a known erratum for EDT).
    all(
        START,
        "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z",
        at(&["0900", "1200", "1500"]),
    );
    all(
        START,
        "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        at(&["0900", "0915", "0930", "0945", "1000", "1015"]),
    );
    all(
        START,
        "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        at(&["0900", "1030", "1200", "1330"]),
    );
    let every_20: Vec<DateTime> = (9..=16)
        .flat_map(|h| [0, 20, 40].map(move |m| (h, m)))
        .map(|(h, m)| local(&format!("19970902T{h:02}{m:02}")))
        .chain(["19970903T0900", "19970903T0920"].map(local))
        .collect();
    first(
        START,
        "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
        every_20.clone(),
    );
    first(
        START,
        "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
        every_20,
    );
}

/// Bounded: these end (the test would hang otherwise) with what they have; the bound is work,
/// not time ([`SCAN_BUDGET`] periods, 400 years past the last occurrence).
#[test]
fn a_rule_that_almost_never_matches_ends_with_what_it_has() {
    // February 29 on a Monday: every 28 years or so.
    let found = expand(START, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", 3);
    assert_eq!(
        found,
        ["20160229T0900", "20440229T0900", "20720229T0900"].map(local)
    );
    // Minutes that the step never reaches: nothing.
    assert!(expand(START, "FREQ=MINUTELY;INTERVAL=10;BYMINUTE=5", 1).is_empty());
    // A week 53 Saturday in January: whatever there is.
    let some = expand(START, "FREQ=YEARLY;BYWEEKNO=53;BYDAY=SA;BYMONTH=1", 3);
    assert!(some
        .iter()
        .all(|d| d.month() == 1 && d.weekday() == Weekday::Saturday));
}

/// A `BYDAY` list is a union, also when it mixes weekdays with and without an ordinal (the
/// first Friday, and every Saturday). python-dateutil intersects such a list and yields
/// nothing; RFC 5545's lists are unions everywhere.
#[test]
fn a_byday_list_mixing_ordinals_is_a_union() {
    first(
        "20120201T0900",
        "FREQ=MONTHLY;BYDAY=1FR,SA",
        cat(&[
            days(2012, 2, &[3, 4, 11, 18, 25]),
            days(2012, 3, &[2, 3, 10, 17, 24, 31]),
        ]),
    );
}

/// Week numbers are ISO 8601's with `WKST`: week 1 is the first with four days in its year, so
/// it may begin in late December, and the days of early January before it belong to the
/// previous year's last week (52 or 53).
#[test]
fn week_numbers_cross_the_years_ends_as_iso_8601_says() {
    // 1993 has 52 weeks: January 1-2, 1994 are in its week 52, and there is no week 53 until
    // 1998 (December 28 to January 3, 1999).
    first(
        "19931206T0900",
        "FREQ=YEARLY;BYWEEKNO=53",
        cat(&[range(1998, 12, 28, 31), range(1999, 1, 1, 3)]),
    );
    // Week 1 of 2009 begins on Monday, December 29, 2008.
    first(
        "20080229T0900",
        "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
        cat(&[
            days(2008, 12, &[29]),
            days(2010, 1, &[4]),
            days(2011, 1, &[3]),
        ]),
    );
    // The Sunday of week 52: January 2, 2011 (week 52 of 2010), then January 1, 2012.
    first(
        "20100101T0900",
        "FREQ=YEARLY;BYWEEKNO=52;BYDAY=SU",
        cat(&[
            days(2011, 1, &[2]),
            days(2012, 1, &[1]),
            days(2012, 12, &[30]),
        ]),
    );
}

/// `BYSETPOS` counts in whole periods: a weekly period is the week from `WKST`, also the
/// first, whose instants before the start are counted and then dropped.
#[test]
fn bysetpos_counts_the_whole_first_week() {
    // Wednesday, July 13, 1994: its week (from Monday the 11th) holds Monday the 11th,
    // Saturday the 16th and Sunday the 17th. The first of them is before the start, so that
    // week has no occurrence (python-dateutil, starting the week at the start, picks the 16th).
    first(
        "19940713T2135",
        "FREQ=WEEKLY;BYDAY=MO,SA,SU;BYSETPOS=1",
        cat(&[days(1994, 7, &[18, 25]), days(1994, 8, &[1])])
            .into_iter()
            .map(|d| d.with().hour(21).minute(35).build().expect("a time"))
            .collect(),
    );
}
