//! The recurrence rules of `chime_core::recurrence`, one by one, and properties checked against
//! a naive reference that walks the calendar day by day.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.

use std::time::{Duration, Instant};

use chime_core::recurrence::{Ends, On, Period, Recurrence, Repeats, Schedule, TaskZone};
use chime_core::Occurrence;
use jiff::civil::{date, Date, Weekday};
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn schedule(
    start: &str,
    zone: &str,
    frequency: u32,
    period: Period,
    on: On,
    ends: Ends,
) -> Schedule {
    Schedule {
        start: ts(start),
        zone: TaskZone::parse(zone).unwrap(),
        repeats: Some(
            Repeats {
                frequency,
                period,
                on,
                ends,
            }
            .into(),
        ),
        exceptions: Default::default(),
    }
}

/// The design's fields of a schedule built by this file.
fn every(s: &Schedule) -> &Repeats {
    match s.repeats.as_ref() {
        Some(Recurrence::Every(r)) => r,
        other => panic!("not in the design's fields: {other:?}"),
    }
}

fn every_mut(s: &mut Schedule) -> &mut Repeats {
    match s.repeats.as_mut() {
        Some(Recurrence::Every(r)) => r,
        other => panic!("not in the design's fields: {other:?}"),
    }
}

/// The first `n` occurrences, by `first` and `after`.
/// The first `n` occurrences, walked, as (RFC 3339 instant, number).
fn numbered(s: &Schedule, n: usize) -> Vec<(String, u32)> {
    take(s, n)
        .iter()
        .map(|o| (o.at.to_string(), o.seq))
        .collect()
}

fn take(s: &Schedule, n: usize) -> Vec<Occurrence> {
    let mut out: Vec<Occurrence> = Vec::new();
    let mut next = s.first();
    while let Some(o) = next {
        if out.len() == n {
            break;
        }
        out.push(o);
        next = s.after(&o);
    }
    out
}

fn instants(s: &Schedule, n: usize) -> Vec<String> {
    take(s, n).iter().map(|o| o.at.to_string()).collect()
}

/// Local `YYYY-MM-DDTHH:MM:SS` of each of the first `n` occurrences in the schedule's zone.
fn local(s: &Schedule, n: usize) -> Vec<String> {
    take(s, n)
        .iter()
        .map(|o| {
            s.zone
                .time_zone()
                .to_datetime(o.at)
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .collect()
}

fn days(list: &[i8]) -> On {
    On::MonthDays(list.to_vec())
}

#[test]
fn a_daily_task_is_due_every_day_at_the_start_time() {
    let s = schedule(
        "2024-01-01T09:00:00Z",
        "UTC",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        instants(&s, 3),
        [
            "2024-01-01T09:00:00Z",
            "2024-01-02T09:00:00Z",
            "2024-01-03T09:00:00Z"
        ]
    );
    let seqs: Vec<u32> = take(&s, 3).iter().map(|o| o.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[test]
fn a_task_every_3_days_counts_from_the_start_date() {
    let s = schedule(
        "2024-02-27T07:15:00Z",
        "UTC",
        3,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        instants(&s, 3),
        [
            "2024-02-27T07:15:00Z",
            "2024-03-01T07:15:00Z",
            "2024-03-04T07:15:00Z"
        ]
    );
}

#[test]
fn a_weekly_task_on_several_weekdays_is_due_on_each_of_them() {
    // 2024-01-03 is a Wednesday.
    let on = On::Weekdays(vec![Weekday::Monday, Weekday::Wednesday, Weekday::Friday]);
    let s = schedule(
        "2024-01-03T10:00:00Z",
        "UTC",
        1,
        Period::Week,
        on,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 5),
        [
            "2024-01-03T10:00:00",
            "2024-01-05T10:00:00",
            "2024-01-08T10:00:00",
            "2024-01-10T10:00:00",
            "2024-01-12T10:00:00"
        ]
    );
}

#[test]
fn a_weekly_task_without_weekdays_is_due_on_the_start_weekday() {
    let s = schedule(
        "2024-01-03T10:00:00Z",
        "UTC",
        1,
        Period::Week,
        On::Start,
        Ends::Never,
    );
    assert_eq!(local(&s, 2), ["2024-01-03T10:00:00", "2024-01-10T10:00:00"]);
}

#[test]
fn an_every_other_week_task_counts_weeks_from_the_week_holding_the_start() {
    // Week 0 is Monday 2024-01-01 to Sunday 2024-01-07; its Monday and Tuesday are before
    // the start (Wednesday), so its only occurrence is Thursday. Week 1 is skipped.
    let on = On::Weekdays(vec![Weekday::Monday, Weekday::Tuesday, Weekday::Thursday]);
    let s = schedule(
        "2024-01-03T10:00:00Z",
        "UTC",
        2,
        Period::Week,
        on,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 5),
        [
            "2024-01-04T10:00:00",
            "2024-01-15T10:00:00",
            "2024-01-16T10:00:00",
            "2024-01-18T10:00:00",
            "2024-01-29T10:00:00"
        ]
    );
    assert_eq!(take(&s, 5)[4].seq, 5);
}

#[test]
fn a_weekly_task_starting_on_a_sunday_keeps_monday_as_the_first_day_of_the_week() {
    // 2024-01-07 is a Sunday: week 0 is 2024-01-01..07, so with frequency 2 the next Monday
    // (in week 1) is skipped and the first Monday is 2024-01-15.
    let on = On::Weekdays(vec![Weekday::Monday, Weekday::Sunday]);
    let s = schedule(
        "2024-01-07T10:00:00Z",
        "UTC",
        2,
        Period::Week,
        on,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2024-01-07T10:00:00",
            "2024-01-15T10:00:00",
            "2024-01-21T10:00:00"
        ]
    );
}

#[test]
fn a_monthly_task_on_the_31st_skips_short_months() {
    let s = schedule(
        "2024-01-31T12:00:00Z",
        "UTC",
        1,
        Period::Month,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 7),
        [
            "2024-01-31T12:00:00",
            "2024-03-31T12:00:00",
            "2024-05-31T12:00:00",
            "2024-07-31T12:00:00",
            "2024-08-31T12:00:00",
            "2024-10-31T12:00:00",
            "2024-12-31T12:00:00"
        ]
    );
}

#[test]
fn a_monthly_task_on_the_30th_skips_february() {
    let s = schedule(
        "2023-01-30T12:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[30]),
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2023-01-30T12:00:00",
            "2023-03-30T12:00:00",
            "2023-04-30T12:00:00"
        ]
    );
}

#[test]
fn a_monthly_task_on_the_last_day_follows_each_months_length() {
    let s = schedule(
        "2023-12-15T08:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[-1]),
        Ends::Never,
    );
    assert_eq!(
        local(&s, 5),
        [
            "2023-12-31T08:00:00",
            "2024-01-31T08:00:00",
            "2024-02-29T08:00:00",
            "2024-03-31T08:00:00",
            "2024-04-30T08:00:00"
        ]
    );
}

#[test]
fn a_monthly_task_on_the_second_last_day_counts_from_the_end() {
    let s = schedule(
        "2023-01-01T08:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[-2]),
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2023-01-30T08:00:00",
            "2023-02-27T08:00:00",
            "2023-03-30T08:00:00"
        ]
    );
}

#[test]
fn a_negative_day_that_a_month_lacks_is_skipped() {
    // -31 is the 1st of a 31-day month and does not exist in shorter months.
    let s = schedule(
        "2024-01-01T08:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[-31]),
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2024-01-01T08:00:00",
            "2024-03-01T08:00:00",
            "2024-05-01T08:00:00"
        ]
    );
}

#[test]
fn a_date_named_twice_in_a_month_is_due_once() {
    // In April (30 days) 30 and -1 are the same day; in May they differ.
    let s = schedule(
        "2024-04-01T08:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[-1, 30]),
        Ends::Never,
    );
    assert_eq!(
        local(&s, 4),
        [
            "2024-04-30T08:00:00",
            "2024-05-30T08:00:00",
            "2024-05-31T08:00:00",
            "2024-06-30T08:00:00"
        ]
    );
    let seqs: Vec<u32> = take(&s, 4).iter().map(|o| o.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn a_task_every_3_months_counts_months_from_the_start() {
    let s = schedule(
        "2024-01-15T08:00:00Z",
        "UTC",
        3,
        Period::Month,
        days(&[1, 15]),
        Ends::Never,
    );
    assert_eq!(
        local(&s, 4),
        [
            "2024-01-15T08:00:00",
            "2024-04-01T08:00:00",
            "2024-04-15T08:00:00",
            "2024-07-01T08:00:00"
        ]
    );
}

#[test]
fn a_yearly_task_on_february_29_is_due_in_leap_years_only() {
    let s = schedule(
        "2096-02-29T08:00:00Z",
        "UTC",
        1,
        Period::Year,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2096-02-29T08:00:00",
            "2104-02-29T08:00:00",
            "2108-02-29T08:00:00"
        ]
    );
    let s = schedule(
        "2000-02-29T08:00:00Z",
        "UTC",
        100,
        Period::Year,
        On::Start,
        Ends::Never,
    );
    let found = take(&s, 2);
    assert_eq!(found[1].at, ts("2400-02-29T08:00:00Z"));
    assert_eq!(found[1].seq, 2);
}

#[test]
fn a_yearly_task_is_due_on_the_start_month_and_day() {
    let s = schedule(
        "2024-07-04T16:00:00Z",
        "UTC",
        2,
        Period::Year,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2024-07-04T16:00:00",
            "2026-07-04T16:00:00",
            "2028-07-04T16:00:00"
        ]
    );
}

#[test]
fn a_count_ends_after_exactly_that_many_occurrences() {
    let s = schedule(
        "2024-01-01T09:00:00Z",
        "UTC",
        1,
        Period::Day,
        On::Start,
        Ends::AfterCount(5),
    );
    let all = take(&s, 100);
    assert_eq!(all.len(), 5);
    assert_eq!(all[4].seq, 5);
    assert_eq!(all[4].at, ts("2024-01-05T09:00:00Z"));
    assert_eq!(
        s.first_at_or_after(ts("2024-01-05T09:00:00Z")),
        Some(all[4])
    );
    assert_eq!(s.first_at_or_after(ts("2024-01-05T09:00:01Z")), None);
    assert_eq!(s.upcoming(ts("2024-01-03T00:00:00Z"), 10).len(), 3);
}

#[test]
fn an_end_date_is_inclusive_and_read_on_the_local_calendar() {
    // 22:00 in New York on 2024-01-05 is 03:00 UTC on the 6th: still the local 5th.
    let s = schedule(
        "2024-01-02T03:00:00Z",
        "America/New_York",
        1,
        Period::Day,
        On::Start,
        Ends::OnDate(date(2024, 1, 5)),
    );
    let all = take(&s, 100);
    assert_eq!(all.len(), 5);
    assert_eq!(all[4].at, ts("2024-01-06T03:00:00Z"));
}

#[test]
fn an_end_instant_is_inclusive() {
    let end = Ends::AtInstant(ts("2024-01-03T09:00:00Z"));
    let s = schedule(
        "2024-01-01T09:00:00Z",
        "UTC",
        1,
        Period::Day,
        On::Start,
        end,
    );
    assert_eq!(take(&s, 100).len(), 3);
    let end = Ends::AtInstant(ts("2024-01-03T08:59:59Z"));
    let s = schedule(
        "2024-01-01T09:00:00Z",
        "UTC",
        1,
        Period::Day,
        On::Start,
        end,
    );
    assert_eq!(take(&s, 100).len(), 2);
}

#[test]
fn a_time_skipped_by_spring_forward_in_berlin_is_shifted_forward_by_the_gap() {
    // Berlin skips 02:00-03:00 on 2024-03-31: 02:30 is due at 03:30 CEST, 01:30 UTC.
    let s = schedule(
        "2024-03-30T01:30:00Z",
        "Europe/Berlin",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        instants(&s, 3),
        [
            "2024-03-30T01:30:00Z",
            "2024-03-31T01:30:00Z",
            "2024-04-01T00:30:00Z"
        ]
    );
    assert_eq!(
        local(&s, 3),
        [
            "2024-03-30T02:30:00",
            "2024-03-31T03:30:00",
            "2024-04-01T02:30:00"
        ]
    );
}

#[test]
fn a_time_repeated_by_fall_back_in_berlin_is_due_once_at_its_first_pass() {
    // Berlin passes 02:00-03:00 twice on 2024-10-27; 02:30 is due at the CEST pass only.
    let s = schedule(
        "2024-10-26T00:30:00Z",
        "Europe/Berlin",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        instants(&s, 3),
        [
            "2024-10-26T00:30:00Z",
            "2024-10-27T00:30:00Z",
            "2024-10-28T01:30:00Z"
        ]
    );
}

#[test]
fn new_york_shifts_the_spring_gap_forward_and_fires_the_fall_fold_once() {
    let s = schedule(
        "2024-03-09T07:30:00Z",
        "America/New_York",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    // 02:30 EST; on 2024-03-10 it does not exist and is due at 03:30 EDT.
    assert_eq!(
        instants(&s, 3),
        [
            "2024-03-09T07:30:00Z",
            "2024-03-10T07:30:00Z",
            "2024-03-11T06:30:00Z"
        ]
    );
    let s = schedule(
        "2024-11-02T05:30:00Z",
        "America/New_York",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    // 01:30 EDT; on 2024-11-03 01:30 happens at 05:30Z (EDT) and 06:30Z (EST): once, at the first.
    assert_eq!(
        instants(&s, 3),
        [
            "2024-11-02T05:30:00Z",
            "2024-11-03T05:30:00Z",
            "2024-11-04T06:30:00Z"
        ]
    );
}

#[test]
fn sydney_handles_both_transitions_of_the_southern_hemisphere() {
    // Sydney falls back on 2024-04-07 (03:00 AEDT -> 02:00 AEST) and springs forward on
    // 2024-10-06 (02:00 AEST -> 03:00 AEDT).
    let s = schedule(
        "2024-04-05T15:30:00Z",
        "Australia/Sydney",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        instants(&s, 3),
        [
            "2024-04-05T15:30:00Z",
            "2024-04-06T15:30:00Z",
            "2024-04-07T16:30:00Z"
        ]
    );
    let s = schedule(
        "2024-10-04T16:30:00Z",
        "Australia/Sydney",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    assert_eq!(
        local(&s, 3),
        [
            "2024-10-05T02:30:00",
            "2024-10-06T03:30:00",
            "2024-10-07T02:30:00"
        ]
    );
}

#[test]
fn every_monday_at_nine_in_berlin_stays_at_nine_across_daylight_saving_time() {
    let s = schedule(
        "2024-01-01T08:00:00Z",
        "Europe/Berlin",
        1,
        Period::Week,
        On::Start,
        Ends::Never,
    );
    let all = take(&s, 104);
    assert_eq!(all.len(), 104);
    let tz = s.zone.time_zone();
    for o in &all {
        let local = tz.to_datetime(o.at);
        assert_eq!(local.weekday(), Weekday::Monday);
        assert_eq!((local.hour(), local.minute()), (9, 0));
    }
    let utc_hours: std::collections::BTreeSet<i8> = all
        .iter()
        .map(|o| o.at.to_zoned(jiff::tz::TimeZone::UTC).hour())
        .collect();
    assert_eq!(utc_hours.into_iter().collect::<Vec<_>>(), [7, 8]);
}

#[test]
fn a_start_in_the_second_pass_of_a_repeated_hour_is_not_itself_an_occurrence() {
    // 01:30Z on 2024-10-27 is 02:30 CET, the second pass; 02:30 is due at its first pass
    // (00:30Z), which is before the start, so the first occurrence is the next day.
    let s = schedule(
        "2024-10-27T01:30:00Z",
        "Europe/Berlin",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    let first = s.first().unwrap();
    assert_eq!(first.at, ts("2024-10-28T01:30:00Z"));
    assert_eq!(first.seq, 1);
    assert_eq!(
        s.first_at_or_after(ts("2024-10-29T00:00:00Z")).unwrap().seq,
        2
    );
}

#[test]
fn a_one_time_task_has_one_occurrence_at_its_start() {
    let s = Schedule {
        start: ts("2024-08-12T11:24:53Z"),
        zone: TaskZone::parse("UTC").unwrap(),
        repeats: None,
        exceptions: Default::default(),
    };
    let first = s.first().unwrap();
    assert_eq!((first.at, first.seq), (ts("2024-08-12T11:24:53Z"), 1));
    assert_eq!(s.after(&first), None);
    assert_eq!(s.first_at_or_after(ts("2024-08-12T11:24:53Z")), Some(first));
    assert_eq!(s.first_at_or_after(ts("2024-08-12T11:24:54Z")), None);
    assert_eq!(s.upcoming(ts("2020-01-01T00:00:00Z"), 5), [first.at]);
    assert!(s.upcoming(ts("2020-01-01T00:00:00Z"), 0).is_empty());
}

#[test]
fn rules_that_can_never_match_have_no_occurrences_and_answer_quickly() {
    let began = Instant::now();
    // The 31st every 12 months from February: always February.
    let s = schedule(
        "2025-02-10T08:00:00Z",
        "UTC",
        12,
        Period::Month,
        days(&[31]),
        Ends::Never,
    );
    assert_eq!(s.first(), None);
    assert_eq!(s.first_at_or_after(ts("2400-01-01T00:00:00Z")), None);
    assert!(s.upcoming(ts("2025-01-01T00:00:00Z"), 3).is_empty());
    // The 30th every 24 months from February.
    let s = schedule(
        "2025-02-01T08:00:00Z",
        "UTC",
        24,
        Period::Month,
        days(&[30, -30]),
        Ends::Never,
    );
    assert_eq!(s.first(), None);
    // No listed day is a day of any month.
    let s = schedule(
        "2025-02-01T08:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[0, 40]),
        Ends::Never,
    );
    assert_eq!(s.first(), None);
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[test]
fn occurrences_beyond_the_representable_range_do_not_exist() {
    let s = schedule(
        "9999-12-29T08:00:00Z",
        "UTC",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    let all = take(&s, 10);
    assert!(all.len() <= 2, "{all:?}");
    let s = schedule(
        "9000-05-01T08:00:00Z",
        "Pacific/Kiritimati",
        1000,
        Period::Year,
        On::Start,
        Ends::Never,
    );
    assert_eq!(take(&s, 10).len(), 1);
    assert_eq!(s.first_at_or_after(Timestamp::MAX), None);
    let s = schedule(
        "-009999-01-02T08:00:00Z",
        "UTC",
        1,
        Period::Month,
        days(&[-1]),
        Ends::Never,
    );
    assert!(s.first().is_some());
    assert!(s.first_at_or_after(Timestamp::MAX).is_none());
    assert!(s.first_at_or_after(Timestamp::MIN).is_some());
}

#[test]
fn finding_todays_occurrence_of_a_task_from_1970_jumps_instead_of_walking() {
    let s = schedule(
        "1970-01-01T09:00:00Z",
        "Europe/Berlin",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    let now = ts("2026-03-15T12:00:00Z");
    let began = Instant::now();
    for _ in 0..1000 {
        s.first_at_or_after(now).unwrap();
    }
    let next = s.first_at_or_after(now).unwrap();
    assert!(began.elapsed() < Duration::from_secs(1));
    // 09:00 UTC was 10:00 in Berlin in 1970 (CET), and 10:00 CET is 09:00 UTC in March.
    assert_eq!(next.at, ts("2026-03-16T09:00:00Z"));
    let days = date(1970, 1, 1)
        .until(date(2026, 3, 16))
        .unwrap()
        .get_days();
    assert_eq!(i64::from(next.seq), i64::from(days) + 1);

    let s = schedule(
        "1970-01-31T09:00:00Z",
        "UTC",
        1,
        Period::Month,
        days_of(&[31]),
        Ends::Never,
    );
    let next = s.first_at_or_after(now).unwrap();
    assert_eq!(next.at, ts("2026-03-31T09:00:00Z"));
    // Seven months of each year have 31 days: 56 years, then January and March 2026.
    assert_eq!(next.seq, 56 * 7 + 2);
}

fn days_of(list: &[i8]) -> On {
    days(list)
}

#[test]
fn upcoming_lists_strictly_increasing_instants_at_or_after_the_given_time() {
    let on = On::Weekdays(vec![Weekday::Tuesday, Weekday::Saturday]);
    let s = schedule(
        "2024-01-02T18:00:00Z",
        "America/New_York",
        1,
        Period::Week,
        on,
        Ends::Never,
    );
    let t = ts("2024-03-01T00:00:00Z");
    let next = s.upcoming(t, 20);
    assert_eq!(next.len(), 20);
    assert!(next[0] >= t);
    assert!(next.windows(2).all(|w| w[0] < w[1]));
}

// ----- Properties, checked against a naive reference that walks every local day. -----

const ZONES: [&str; 7] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Santiago",
    "-03:30",
];

/// Whether the rule selects local date `d`, given the start's local date `sd`.
fn reference_matches(r: &Repeats, sd: Date, d: Date) -> bool {
    let n = i64::from(r.frequency);
    match (r.period, &r.on) {
        (Period::Day, _) => i64::from(sd.until(d).unwrap().get_days()) % n == 0,
        (Period::Week, on) => {
            let monday = |x: Date| {
                x.checked_sub(i64::from(x.weekday().to_monday_zero_offset()).days())
                    .unwrap()
            };
            let weeks = i64::from(monday(sd).until(monday(d)).unwrap().get_days()) / 7;
            let listed = match on {
                On::Weekdays(list) => list.contains(&d.weekday()),
                _ => d.weekday() == sd.weekday(),
            };
            weeks % n == 0 && listed
        }
        (Period::Month, on) => {
            let months = (i64::from(d.year()) - i64::from(sd.year())) * 12 + i64::from(d.month())
                - i64::from(sd.month());
            let len = i64::from(d.days_in_month());
            let listed = match on {
                On::MonthDays(list) => list.iter().any(|&k| {
                    let k = i64::from(k);
                    let day = if k > 0 { k } else { len + 1 + k };
                    day == i64::from(d.day())
                }),
                _ => d.day() == sd.day(),
            };
            months % n == 0 && listed
        }
        (Period::Year, _) => {
            (i64::from(d.year()) - i64::from(sd.year())) % n == 0
                && d.month() == sd.month()
                && d.day() == sd.day()
        }
    }
}

/// Every occurrence up to local date `until`, by walking the calendar one day at a time.
fn reference(s: &Schedule, until: Date) -> Vec<Occurrence> {
    let r = every(s);
    let tz = s.zone.time_zone();
    let local_start = tz.to_datetime(s.start);
    let (sd, time) = (local_start.date(), local_start.time());
    let mut out: Vec<Occurrence> = Vec::new();
    let mut d = sd;
    while d <= until {
        if reference_matches(r, sd, d) {
            let at = tz
                .to_ambiguous_timestamp(d.to_datetime(time))
                .compatible()
                .unwrap();
            let seq = u32::try_from(out.len()).unwrap() + 1;
            let ended = match &r.ends {
                Ends::Never => false,
                Ends::AfterCount(n) => seq > *n,
                Ends::OnDate(last) => d > *last,
                Ends::AtInstant(last) => at > *last,
            };
            if ended {
                break;
            }
            if at >= s.start && out.last().is_none_or(|o| at > o.at) {
                out.push(Occurrence { at, seq });
            }
        }
        d = d.tomorrow().unwrap();
    }
    out
}

prop_compose! {
    fn arb_repeats()(
        period in prop_oneof![Just(Period::Day), Just(Period::Week), Just(Period::Month), Just(Period::Year)],
        frequency in prop_oneof![3 => 1u32..=4, 1 => 5u32..=13],
        weekdays in proptest::collection::btree_set(0i8..7, 0..4),
        month_days in proptest::collection::btree_set(prop_oneof![1i8..=31, -31i8..=-1], 0..4),
        ends_kind in 0u8..4,
        count in 1u32..40,
        end_offset_days in 0i64..900,
    ) -> (Period, u32, On, u8, u32, i64) {
        let on = match period {
            Period::Week if !weekdays.is_empty() => On::Weekdays(
                weekdays.into_iter().map(|w| Weekday::from_monday_zero_offset(w).unwrap()).collect(),
            ),
            Period::Month if !month_days.is_empty() => On::MonthDays(month_days.into_iter().collect()),
            _ => On::Start,
        };
        (period, frequency, on, ends_kind, count, end_offset_days)
    }
}

/// The zones with unusual changes: a 30-minute shift (Lord Howe), a skipped day (Apia), a
/// negative DST (Dublin), changes at midnight (Santiago), besides the usual ones.
const UNUSUAL_ZONES: [&str; 10] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Europe/Dublin",
    "Asia/Kolkata",
    "-03:30",
];

fn arb_schedule() -> impl Strategy<Value = Schedule> {
    arb_schedule_in(&ZONES)
}

prop_compose! {
    fn arb_schedule_in(zones: &'static [&'static str])(
        zone in proptest::sample::select(zones),
        start_secs in 946_684_800i64..1_893_456_000, // 2000..2030
        // Half the starts on the hour, where transitions happen.
        on_hour in any::<bool>(),
        (period, frequency, on, ends_kind, count, end_offset_days) in arb_repeats(),
    ) -> Schedule {
        let start_secs = if on_hour { start_secs - start_secs % 1800 } else { start_secs };
        let start = Timestamp::from_second(start_secs).unwrap();
        let zone = TaskZone::parse(zone).unwrap();
        let ends = match ends_kind {
            0 => Ends::Never,
            1 => Ends::AfterCount(count),
            2 => Ends::OnDate(zone.time_zone().to_datetime(start).date().checked_add(end_offset_days.days()).unwrap()),
            _ => Ends::AtInstant(start.checked_add(jiff::SignedDuration::from_hours(24 * end_offset_days)).unwrap()),
        };
        Schedule { start, zone, repeats: Some(Repeats { frequency, period, on, ends }.into()), exceptions: Default::default() }
    }
}

/// How far the reference walks: enough for a few dozen occurrences of any generated rule.
fn horizon(s: &Schedule) -> Date {
    let r = every(s);
    let years = match r.period {
        Period::Day | Period::Week => 2,
        Period::Month => 3 + i16::try_from(r.frequency).unwrap(),
        Period::Year => 8 * i16::try_from(r.frequency).unwrap(),
    };
    let sd = s.zone.time_zone().to_datetime(s.start).date();
    date(sd.year() + years, 1, 1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn first_and_after_agree_with_walking_the_calendar(s in arb_schedule()) {
        let until = horizon(&s);
        let expected = reference(&s, until);
        let got: Vec<Occurrence> = take(&s, expected.len() + 1)
            .into_iter()
            .filter(|o| s.zone.time_zone().to_datetime(o.at).date() <= until)
            .collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn first_at_or_after_agrees_with_walking_the_calendar(s in arb_schedule(), fraction in 0.0f64..1.1, extra in 0i64..86_400) {
        let until = horizon(&s);
        let expected = reference(&s, until);
        let (Some(first), Some(last)) = (expected.first(), expected.last()) else {
            prop_assert_eq!(s.first(), None);
            return Ok(());
        };
        let span = last.at.as_second() - first.at.as_second() + 1;
        let t = first.at.as_second() - 86_400 + (span as f64 * fraction) as i64 + extra;
        let t = Timestamp::from_second(t).unwrap();
        let want = expected.iter().find(|o| o.at >= t).copied();
        let got = s.first_at_or_after(t);
        if want.is_none() {
            // The reference stops at its horizon: anything found must lie beyond it.
            prop_assert!(got.is_none_or(|o| s.zone.time_zone().to_datetime(o.at).date() > until));
        } else {
            prop_assert_eq!(got, want);
            let upcoming = s.upcoming(t, 4);
            let want: Vec<Timestamp> = expected.iter().filter(|o| o.at >= t).take(4).map(|o| o.at).collect();
            prop_assert_eq!(&upcoming[..want.len()], &want[..]);
            prop_assert!(upcoming.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn every_occurrence_matches_the_rule_and_keeps_the_local_time(s in arb_schedule()) {
        let r = every(&s).clone();
        let tz = s.zone.time_zone();
        let local_start = tz.to_datetime(s.start);
        let all = take(&s, 60);
        prop_assert!(all.windows(2).all(|w| w[0].at < w[1].at && w[0].seq + 1 == w[1].seq));
        if let Some(first) = all.first() {
            prop_assert_eq!(first.seq, 1);
            prop_assert!(first.at >= s.start);
        }
        for o in &all {
            // The rule's date is the occurrence's local date, or the day before when a gap
            // shifted the time past midnight.
            let local = tz.to_datetime(o.at).date();
            let matched = [local, local.yesterday().unwrap()].into_iter().any(|d| {
                reference_matches(&r, local_start.date(), d)
                    && tz.to_ambiguous_timestamp(d.to_datetime(local_start.time())).compatible().unwrap() == o.at
            });
            prop_assert!(matched, "{:?} does not match the rule", o);
        }
        if let Ends::AfterCount(n) = r.ends {
            prop_assert!(all.len() <= n as usize);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn first_at_or_after_counts_decades_of_occurrences_exactly(
        s in arb_schedule(),
        years_back in 20i64..60,
        ahead_secs in 0i64..(3 * 365 * 86_400),
    ) {
        // Move the start decades into the past and look for an occurrence up to 3 years on.
        let mut s = s;
        {
            let r = every_mut(&mut s);
            r.ends = Ends::Never;
            if r.period == Period::Year { r.frequency = r.frequency.min(3); }
        }
        let now = ts("2026-01-01T00:00:00Z");
        s.start = s.start.checked_sub(jiff::SignedDuration::from_hours(24 * 365 * years_back)).unwrap();
        let t = now.checked_add(jiff::SignedDuration::from_secs(ahead_secs)).unwrap();
        let until = date(2036, 1, 1);
        let expected = reference(&s, until).into_iter().find(|o| o.at >= t);
        prop_assert_eq!(s.first_at_or_after(t), expected);
    }
}

#[test]
fn a_day_skipped_by_its_zone_yields_one_occurrence_not_two_at_the_same_instant() {
    // Samoa skipped 2011-12-30 entirely: 10:00 that day is shifted 24 hours forward onto
    // 10:00 on the 31st, which is then due once; its number is not reused.
    let s = schedule(
        "2011-12-28T20:00:00Z",
        "Pacific/Apia",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    let all = take(&s, 4);
    let got: Vec<(String, u32)> = all.iter().map(|o| (o.at.to_string(), o.seq)).collect();
    assert_eq!(
        got,
        [
            ("2011-12-28T20:00:00Z".to_owned(), 1),
            ("2011-12-29T20:00:00Z".to_owned(), 2),
            ("2011-12-30T20:00:00Z".to_owned(), 3),
            ("2011-12-31T20:00:00Z".to_owned(), 5),
        ]
    );
    assert_eq!(
        s.first_at_or_after(ts("2011-12-31T00:00:00Z")),
        Some(all[3])
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// A task in the design's fields answers with its RRULE: expanded on the zone's wall clock
    /// and turned into instants the same way (a gap shifted forward, a fold at its first
    /// instant, a repeat dropped), it fires at the same instants, in zones with unusual DST
    /// and from starts at month ends, leap days and transitions.
    #[test]
    fn the_equivalent_rrule_fires_at_the_same_instants(s in arb_schedule_in(&UNUSUAL_ZONES)) {
        let rule = s.rrule().unwrap();
        let printed = rule.to_string();
        prop_assert_eq!(&chime_core::recurrence::rrule::Rrule::parse(&printed).unwrap(), &rule);
        let tz = s.zone.time_zone();
        let mut from_rule: Vec<Timestamp> = Vec::new();
        for local in rule.expand(tz.to_datetime(s.start), tz).take(60) {
            let at = tz.to_ambiguous_timestamp(local).compatible().unwrap();
            if at >= s.start && from_rule.last().is_none_or(|last| at > *last) {
                from_rule.push(at);
            }
        }
        let from_schedule: Vec<Timestamp> = take(&s, 60).into_iter().map(|o| o.at).collect();
        let n = from_rule.len().min(from_schedule.len()).min(40);
        prop_assert_eq!(&from_rule[..n], &from_schedule[..n], "{}", printed);
        if from_schedule.len() < 40 || from_rule.len() < 40 {
            // An ending rule: both end at the same place.
            prop_assert_eq!(from_rule.len().min(60), from_schedule.len().min(60), "{}", printed);
        }
    }
}

/// The schedule with its `i`-th occurrences (0-based, of the rule) skipped or moved by a
/// fraction of the way towards the next one or back towards the one before, and what its occurrences must then be: the rule's,
/// with those changed, in order.
fn with_exceptions(
    s: &Schedule,
    skips: &[usize],
    moves: &[(usize, u8)],
) -> (Schedule, Vec<Occurrence>) {
    let base = take(s, 40);
    let mut changed = s.clone();
    let mut expected: Vec<Option<Occurrence>> = base.iter().copied().map(Some).collect();
    for &i in skips.iter().filter(|&&i| i < base.len()) {
        changed.exceptions.skipped.insert(base[i].at);
        expected[i] = None;
    }
    for &(i, fraction) in moves {
        // Only occurrences with a rule neighbour after them, and never next to another move.
        if i + 1 >= base.len() || changed.exceptions.skipped.contains(&base[i].at) {
            continue;
        }
        // An odd fraction moves it back towards the one before, an even one on towards the next.
        let from = base[i].at;
        let to = if fraction % 2 == 1 && i > 0 {
            let room = base[i - 1].at.duration_until(from).as_secs() - 1;
            from - SignedDuration::from_secs(room * i64::from(fraction) / 255)
        } else {
            let room = from.duration_until(base[i + 1].at).as_secs() - 1;
            from + SignedDuration::from_secs(room * i64::from(fraction) / 255)
        };
        if to == from {
            continue;
        }
        changed.exceptions.moved.insert(from, to);
        expected[i] = Some(Occurrence {
            at: to,
            seq: base[i].seq,
        });
    }
    // The last one has no known neighbour after it among the 40: leave it out.
    let mut expected: Vec<Occurrence> = expected.into_iter().flatten().collect();
    expected.retain(|o| base.last().is_none_or(|last| o.at < last.at));
    (changed, expected)
}

/// `s` (as an RFC 5545 rule when `by_rule`) with skips on odd occurrences and moves on even
/// ones, so that no move is next to another change: the schedule, the changed one, and the
/// changed one's expected occurrences ([`with_exceptions`]).
fn by_rule_with_exceptions(
    mut s: Schedule,
    by_rule: bool,
    skips: Vec<usize>,
    moves: Vec<(usize, u8)>,
) -> (Schedule, Schedule, Vec<Occurrence>) {
    if by_rule {
        s.repeats = s.rrule().map(Recurrence::Rule);
    }
    let skips: Vec<usize> = skips.into_iter().map(|i| i | 1).collect();
    let moves: Vec<(usize, u8)> = moves.into_iter().map(|(i, f)| (i * 2, f)).collect();
    let (changed, expected) = with_exceptions(&s, &skips, &moves);
    (s, changed, expected)
}

#[test]
fn a_skipped_occurrence_does_not_fire_and_a_moved_one_fires_once_at_its_new_instant() {
    let s = schedule(
        "2026-12-01T09:00:00Z",
        "Europe/Berlin",
        1,
        Period::Day,
        On::Start,
        Ends::Never,
    );
    let mut changed = s.clone();
    changed
        .exceptions
        .skipped
        .insert(ts("2026-12-03T09:00:00Z"));
    changed
        .exceptions
        .moved
        .insert(ts("2026-12-04T09:00:00Z"), ts("2026-12-04T18:30:00Z"));
    assert_eq!(
        numbered(&changed, 5),
        [
            ("2026-12-01T09:00:00Z".to_owned(), 1),
            ("2026-12-02T09:00:00Z".to_owned(), 2),
            ("2026-12-04T18:30:00Z".to_owned(), 4),
            ("2026-12-05T09:00:00Z".to_owned(), 5),
            ("2026-12-06T09:00:00Z".to_owned(), 6),
        ]
    );
    // Asked for from inside the move's span: the moved occurrence is next.
    let o = changed
        .first_at_or_after(ts("2026-12-04T12:00:00Z"))
        .unwrap();
    assert_eq!((o.at, o.seq), (ts("2026-12-04T18:30:00Z"), 4));
    let o = changed
        .first_at_or_after(ts("2026-12-03T00:00:00Z"))
        .unwrap();
    assert_eq!(o.at, ts("2026-12-04T18:30:00Z"));

    // A move stays between its neighbours; only an occurrence moves.
    assert!(s
        .check_move(ts("2026-12-04T09:00:00Z"), ts("2026-12-05T08:59:00Z"))
        .is_ok());
    assert!(s
        .check_move(ts("2026-12-04T09:00:00Z"), ts("2026-12-03T09:01:00Z"))
        .is_ok());
    assert!(matches!(
        s.check_move(ts("2026-12-04T09:00:00Z"), ts("2026-12-05T09:00:00Z")),
        Err(chime_core::recurrence::ExceptionError::PastANeighbour { .. })
    ));
    assert!(matches!(
        s.check_move(ts("2026-12-04T09:00:00Z"), ts("2026-12-03T09:00:00Z")),
        Err(chime_core::recurrence::ExceptionError::PastANeighbour { .. })
    ));
    assert!(matches!(
        s.check_move(ts("2026-12-04T10:00:00Z"), ts("2026-12-04T11:00:00Z")),
        Err(chime_core::recurrence::ExceptionError::NotAnOccurrence(_))
    ));
    // The first occurrence may move back towards the start, not before it... of the rule's
    // neighbours there is only the next.
    assert!(s
        .check_move(ts("2026-12-01T09:00:00Z"), ts("2026-12-01T08:00:00Z"))
        .is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Skips and moves on any schedule of the design's fields or by rule: walked occurrence
    /// after occurrence (as the execution role does), and looked up from any instant (as a
    /// task change and the API do), the occurrences are the rule's with exactly those changed.
    #[test]
    fn skips_and_moves_change_exactly_those_occurrences(
        s in arb_schedule_in(&UNUSUAL_ZONES),
        by_rule in any::<bool>(),
        skips in proptest::collection::vec(0usize..40, 0..6),
        moves in proptest::collection::vec((0usize..20, 1u8..=255), 0..6),
        probe in 0usize..40,
    ) {
        let (s, changed, expected) = by_rule_with_exceptions(s, by_rule, skips, moves);
        for (from, to) in &changed.exceptions.moved {
            prop_assert!(s.check_move(*from, *to).is_ok(), "{} -> {}", from, to);
        }
        let walked = take(&changed, expected.len());
        prop_assert_eq!(&walked, &expected);
        if let Some(o) = expected.get(probe) {
            // From just after the one before it: this one comes first.
            let t = if probe == 0 { s.start } else { expected[probe - 1].at + SignedDuration::from_secs(1) };
            prop_assert_eq!(changed.first_at_or_after(t), Some(*o));
            let upcoming = changed.upcoming_occurrences(t, expected.len() - probe);
            prop_assert_eq!(&upcoming[..], &expected[probe..]);
        }
    }
}

#[test]
fn an_added_occurrence_fires_once_beside_the_rule_and_after_its_end() {
    let s = schedule(
        "2026-12-01T09:00:00Z",
        "Europe/Berlin",
        1,
        Period::Day,
        On::Start,
        Ends::AfterCount(3),
    );
    let mut changed = s.clone();
    for at in [
        "2026-12-02T15:00:00Z", // between two of the rule's
        "2026-12-03T09:00:00Z", // one of the rule's: due once, as the rule's
        "2026-12-10T07:00:00Z", // after the rule's COUNT
    ] {
        changed.exceptions.added.insert(ts(at));
    }
    changed
        .exceptions
        .skipped
        .insert(ts("2026-12-02T09:00:00Z"));
    assert_eq!(
        numbered(&changed, 10),
        [
            ("2026-12-01T09:00:00Z".to_owned(), 1),
            ("2026-12-02T15:00:00Z".to_owned(), 0),
            ("2026-12-03T09:00:00Z".to_owned(), 3),
            ("2026-12-10T07:00:00Z".to_owned(), 0),
        ]
    );
    // From any instant, as a task change and the API look it up.
    let o = changed
        .first_at_or_after(ts("2026-12-02T09:00:00Z"))
        .unwrap();
    assert_eq!((o.at, o.seq), (ts("2026-12-02T15:00:00Z"), 0));
    assert_eq!(
        changed.upcoming(ts("2026-12-03T09:00:01Z"), 5),
        [ts("2026-12-10T07:00:00Z")]
    );
    // A one-time task with one added: two times.
    let mut once = s.clone();
    once.repeats = None;
    once.exceptions.added.insert(ts("2026-11-30T10:00:00Z"));
    once.exceptions.added.insert(ts("2026-12-05T10:00:00Z"));
    assert_eq!(
        once.upcoming(ts("2026-11-01T00:00:00Z"), 5),
        [
            ts("2026-11-30T10:00:00Z"),
            ts("2026-12-01T09:00:00Z"),
            ts("2026-12-05T10:00:00Z")
        ]
    );
    assert_eq!(take(&once, 5).len(), 2, "walked from the start");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Added occurrences on top of skips and moves: walked one after another (as the execution
    /// role does) and looked up from any instant, the occurrences are the rule's, changed, with
    /// the added ones merged in order, each instant once (the rule's when both).
    #[test]
    fn added_occurrences_merge_in_order_once_each(
        s in arb_schedule_in(&UNUSUAL_ZONES),
        by_rule in any::<bool>(),
        skips in proptest::collection::vec(0usize..40, 0..4),
        moves in proptest::collection::vec((0usize..20, 1u8..=255), 0..4),
        adds in proptest::collection::vec((0usize..40, 0u8..=255), 1..6),
        probe in 0usize..40,
    ) {
        let (s, mut changed, expected) = by_rule_with_exceptions(s, by_rule, skips, moves);
        let base = take(&s, 40);
        let Some(last) = base.last().map(|o| o.at) else { return Ok(()) };
        let mut expected = expected;
        for (i, fraction) in adds {
            let (Some(o), Some(next)) = (base.get(i), base.get(i + 1)) else { continue };
            // A fraction of 0 adds the rule's own instant (skipped, moved or not).
            let room = o.at.duration_until(next.at).as_secs();
            let at = o.at + SignedDuration::from_secs(room * i64::from(fraction) / 256);
            changed.exceptions.added.insert(at);
            if at < last && expected.iter().all(|e| e.at != at) {
                expected.push(Occurrence { at, seq: 0 });
            }
        }
        expected.sort_by_key(|o| o.at);
        let walked: Vec<Occurrence> = take(&changed, expected.len());
        prop_assert_eq!(&walked, &expected);
        if let Some(o) = expected.get(probe) {
            let t = if probe == 0 { s.start } else { expected[probe - 1].at + SignedDuration::from_secs(1) };
            prop_assert_eq!(changed.first_at_or_after(t), Some(*o));
            let upcoming = changed.upcoming_occurrences(t, expected.len() - probe);
            prop_assert_eq!(&upcoming[..], &expected[probe..]);
        }
    }
}

#[test]
fn a_schedule_moved_to_another_zone_keeps_its_local_times_and_fires_each_pending_one_once() {
    let daily =
        |start: &str, zone: &str| schedule(start, zone, 1, Period::Day, On::Start, Ends::Never);
    // West at 11:00 in Berlin: today's 09:00 fired there, so today's 09:00 in New York (14:00
    // UTC, still to come) had its turn and is skipped.
    let berlin = daily("2026-12-01T08:00:00Z", "Europe/Berlin");
    let now = ts("2026-12-07T10:00:00Z");
    let ny = berlin.in_zone(&TaskZone::parse("America/New_York").unwrap(), now);
    assert_eq!(ny.start, ts("2026-12-01T14:00:00Z"));
    assert_eq!(ny.zone.name(), "America/New_York");
    assert_eq!(
        ny.exceptions.skipped.iter().copied().collect::<Vec<_>>(),
        [ts("2026-12-07T14:00:00Z")]
    );
    assert_eq!(
        ny.upcoming(now, 2),
        [ts("2026-12-08T14:00:00Z"), ts("2026-12-09T14:00:00Z")]
    );

    // East the next day at midnight in New York (14:00 in Tokyo): the 8th's 09:00 in New York
    // had not come, in Tokyo it has passed: it fires now, late, keeping its number.
    let now = ts("2026-12-08T05:00:00Z");
    let tokyo = ny.in_zone(&TaskZone::parse("Asia/Tokyo").unwrap(), now);
    let next = tokyo.first_at_or_after(now).unwrap();
    assert_eq!(next.at, now);
    assert_eq!(next.seq, 8, "the 8th daily occurrence from December 1");
    assert_eq!(tokyo.upcoming(now, 2), [now, ts("2026-12-09T00:00:00Z")]);
    // The 7th, which fired in Berlin, stays skipped on Tokyo's clock too.
    assert!(tokyo
        .exceptions
        .skipped
        .contains(&ts("2026-12-07T00:00:00Z")));
    // Back on the same zone: nothing changes.
    let same = tokyo.in_zone(&TaskZone::parse("Asia/Tokyo").unwrap(), now);
    assert_eq!(same.upcoming(now, 3), tokyo.upcoming(now, 3));
}
