//! The quick-add grammar as a table: each phrase with what it must be read as (the name, the
//! local start in Berlin, the rule), or the words its refusal must contain. `now` is Saturday
//! 2026-12-05 11:00 in Berlin (10:00 UTC).

use super::*;

enum Expect {
    Once(&'static str, &'static str),
    Rule(&'static str, &'static str, &'static str),
    Refused(&'static str),
}
use Expect::{Once, Refused, Rule};

const TABLE: &[(&str, Expect)] = &[
    // Once, relative.
    (
        "Tea in 20 minutes",
        Once("Tea", "2026-12-05T11:20:00+01:00"),
    ),
    ("Tea in 20 min", Once("Tea", "2026-12-05T11:20:00+01:00")),
    ("Tea in twenty minutes", Refused("no date or time")),
    (
        "Stretch in 2 hours",
        Once("Stretch", "2026-12-05T13:00:00+01:00"),
    ),
    (
        "Check the oven in 1 hour",
        Once("Check the oven", "2026-12-05T12:00:00+01:00"),
    ),
    (
        "Check the oven in an hour",
        Once("Check the oven", "2026-12-05T12:00:00+01:00"),
    ),
    (
        "Renew passport in 3 weeks",
        Once("Renew passport", "2026-12-26T11:00:00+01:00"),
    ),
    (
        "Water plants in 5 days",
        Once("Water plants", "2026-12-10T11:00:00+01:00"),
    ),
    (
        "Call back in 2 h",
        Once("Call back", "2026-12-05T13:00:00+01:00"),
    ),
    ("Tea in 0 minutes", Refused("from 1 to 10000")),
    // Once, a day and a time.
    (
        "Call mom tomorrow at 9",
        Once("Call mom", "2026-12-06T09:00:00+01:00"),
    ),
    (
        "call mom tomorrow",
        Once("Call mom", "2026-12-06T09:00:00+01:00"),
    ),
    (
        "Call mom tomorrow 8am",
        Once("Call mom", "2026-12-06T08:00:00+01:00"),
    ),
    (
        "Call mom tomorrow at 8 am",
        Once("Call mom", "2026-12-06T08:00:00+01:00"),
    ),
    (
        "Call mom tomorrow at 6pm",
        Once("Call mom", "2026-12-06T18:00:00+01:00"),
    ),
    (
        "Call mom tomorrow at 6:45pm",
        Once("Call mom", "2026-12-06T18:45:00+01:00"),
    ),
    (
        "Meeting at 3pm tomorrow",
        Once("Meeting", "2026-12-06T15:00:00+01:00"),
    ),
    (
        "Remind me to call mom tomorrow at 6pm",
        Once("Call mom", "2026-12-06T18:00:00+01:00"),
    ),
    (
        "CALL MOM TOMORROW AT 9AM",
        Once("CALL MOM", "2026-12-06T09:00:00+01:00"),
    ),
    (
        "Take 2 pills tomorrow",
        Once("Take 2 pills", "2026-12-06T09:00:00+01:00"),
    ),
    ("Standup at 9", Once("Standup", "2026-12-06T09:00:00+01:00")),
    ("Lunch at noon", Once("Lunch", "2026-12-05T12:00:00+01:00")),
    ("Lunch at 12:30", Once("Lunch", "2026-12-05T12:30:00+01:00")),
    ("Lunch 12:30", Once("Lunch", "2026-12-05T12:30:00+01:00")),
    ("Lunch at 12.30", Once("Lunch", "2026-12-05T12:30:00+01:00")),
    ("Movie tonight", Once("Movie", "2026-12-05T20:00:00+01:00")),
    (
        "Movie tonight at 21:30",
        Once("Movie", "2026-12-05T21:30:00+01:00"),
    ),
    (
        "Report at 5pm today",
        Once("Report", "2026-12-05T17:00:00+01:00"),
    ),
    (
        "Report today at 5 pm",
        Once("Report", "2026-12-05T17:00:00+01:00"),
    ),
    (
        "Report today at 17:00.",
        Once("Report", "2026-12-05T17:00:00+01:00"),
    ),
    (
        "Midnight snack at midnight",
        Once("Midnight snack", "2026-12-06T00:00:00+01:00"),
    ),
    (
        "Dentist on friday at 3pm",
        Once("Dentist", "2026-12-11T15:00:00+01:00"),
    ),
    (
        "Dentist friday 3pm",
        Once("Dentist", "2026-12-11T15:00:00+01:00"),
    ),
    (
        "Dentist fri at 15:00",
        Once("Dentist", "2026-12-11T15:00:00+01:00"),
    ),
    (
        "Dentist next friday at 10am",
        Once("Dentist", "2026-12-11T10:00:00+01:00"),
    ),
    (
        "Dentist next monday",
        Once("Dentist", "2026-12-07T09:00:00+01:00"),
    ),
    (
        "Brunch sunday at 11",
        Once("Brunch", "2026-12-06T11:00:00+01:00"),
    ),
    (
        "Brunch on sun at 11:30",
        Once("Brunch", "2026-12-06T11:30:00+01:00"),
    ),
    (
        "Gym on saturday at 18:00",
        Once("Gym", "2026-12-05T18:00:00+01:00"),
    ),
    (
        "Gym saturday at 9",
        Once("Gym", "2026-12-12T09:00:00+01:00"),
    ),
    (
        "Gym on thurs at 7",
        Once("Gym", "2026-12-10T07:00:00+01:00"),
    ),
    ("Gym tues 7am", Once("Gym", "2026-12-08T07:00:00+01:00")),
    (
        "Party on december 24 at 7pm",
        Once("Party", "2026-12-24T19:00:00+01:00"),
    ),
    (
        "Party 24 december",
        Once("Party", "2026-12-24T09:00:00+01:00"),
    ),
    (
        "Party on the 24th of december at 20:00",
        Once("Party", "2026-12-24T20:00:00+01:00"),
    ),
    (
        "Party dec 24th at 8pm",
        Once("Party", "2026-12-24T20:00:00+01:00"),
    ),
    ("Taxes april 15", Once("Taxes", "2027-04-15T09:00:00+02:00")),
    (
        "Taxes on 2027-04-30 at 10:00",
        Once("Taxes", "2027-04-30T10:00:00+02:00"),
    ),
    (
        "Taxes 30 april 2027 at 10am",
        Once("Taxes", "2027-04-30T10:00:00+02:00"),
    ),
    (
        "New year call january 1 at midnight",
        Once("New year call", "2027-01-01T00:00:00+01:00"),
    ),
    (
        "Leap day feb 29",
        Once("Leap day", "2028-02-29T09:00:00+01:00"),
    ),
    (
        "Spring forward march 28 2027 at 2:30",
        Once("Spring forward", "2027-03-28T03:30:00+02:00"),
    ),
    (
        "Book flights on sept 1",
        Once("Book flights", "2027-09-01T09:00:00+02:00"),
    ),
    // Once, refused.
    ("Call mom", Refused("no date or time")),
    ("tomorrow at 9", Refused("what should the reminder say")),
    (
        "Remind me to tomorrow at 9",
        Refused("what should the reminder say"),
    ),
    ("Meeting at 25:00", Refused("25:00 is not a time of day")),
    ("Meeting at 13pm", Refused("1 to 12")),
    ("Meeting at 9:75", Refused("not a time of day")),
    ("Party on february 30", Refused("February has no day 30")),
    (
        "Party february 30 2027",
        Refused("February 2027 has no day 30"),
    ),
    (
        "Party on april 31 2027",
        Refused("April 2027 has no day 31"),
    ),
    ("Report today at 9", Refused("in the past")),
    ("Lunch at 9 at 10", Refused("two times of day")),
    ("Report yesterday at 9", Refused("`yesterday`")),
    ("Meeting on the 25th at 9", Refused("`the 25th`")),
    ("Meeting on friday the 13th at 9", Refused("`the 13th`")),
    (
        "Call Jan at 9",
        Once("Call Jan", "2026-12-06T09:00:00+01:00"),
    ),
    (
        "Plan the week at 9",
        Once("Plan the week", "2026-12-06T09:00:00+01:00"),
    ),
    ("Meeting sometime next week", Refused("no date or time")),
    ("Meeting tomorrow morning", Refused("no date or time")),
    ("Taxes on 2026-01-01", Refused("in the past")),
    // Repeating.
    (
        "Vitamins every day at 8",
        Rule("Vitamins", "2026-12-06T08:00:00+01:00", "FREQ=DAILY"),
    ),
    (
        "Vitamins daily at 8am",
        Rule("Vitamins", "2026-12-06T08:00:00+01:00", "FREQ=DAILY"),
    ),
    (
        "Vitamins every day",
        Rule("Vitamins", "2026-12-06T09:00:00+01:00", "FREQ=DAILY"),
    ),
    (
        "Vitamins each day at 20:00",
        Rule("Vitamins", "2026-12-05T20:00:00+01:00", "FREQ=DAILY"),
    ),
    (
        "Vitamins at 8 every day",
        Rule("Vitamins", "2026-12-06T08:00:00+01:00", "FREQ=DAILY"),
    ),
    (
        "Water every 3 days",
        Rule(
            "Water",
            "2026-12-06T09:00:00+01:00",
            "FREQ=DAILY;INTERVAL=3",
        ),
    ),
    (
        "Water every other day",
        Rule(
            "Water",
            "2026-12-06T09:00:00+01:00",
            "FREQ=DAILY;INTERVAL=2",
        ),
    ),
    (
        "Standup every weekday at 9:15",
        Rule(
            "Standup",
            "2026-12-07T09:15:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        ),
    ),
    (
        "Standup weekdays at 9:15",
        Rule(
            "Standup",
            "2026-12-07T09:15:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        ),
    ),
    (
        "Standup weekdays at 7:30 until march",
        Rule(
            "Standup",
            "2026-12-07T07:30:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20270228",
        ),
    ),
    (
        "Long run every weekend at 8",
        Rule(
            "Long run",
            "2026-12-06T08:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=SA,SU",
        ),
    ),
    (
        "Long run weekends",
        Rule(
            "Long run",
            "2026-12-06T09:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=SA,SU",
        ),
    ),
    (
        "Trash every monday at 7pm",
        Rule("Trash", "2026-12-07T19:00:00+01:00", "FREQ=WEEKLY;BYDAY=MO"),
    ),
    (
        "Trash every monday and thursday at 19:00",
        Rule(
            "Trash",
            "2026-12-07T19:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,TH",
        ),
    ),
    (
        "Trash mondays and thursdays at 19:00",
        Rule(
            "Trash",
            "2026-12-07T19:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,TH",
        ),
    ),
    (
        "Trash thursdays, mondays at 19:00",
        Rule(
            "Trash",
            "2026-12-07T19:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,TH",
        ),
    ),
    (
        "Piano every tue, thu at 17:30",
        Rule(
            "Piano",
            "2026-12-08T17:30:00+01:00",
            "FREQ=WEEKLY;BYDAY=TU,TH",
        ),
    ),
    (
        "Piano every mon, wed and fri at 6pm",
        Rule(
            "Piano",
            "2026-12-07T18:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        ),
    ),
    (
        "Payroll every other friday at 9",
        Rule(
            "Payroll",
            "2026-12-11T09:00:00+01:00",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
        ),
    ),
    (
        "Sync every 2 weeks on wednesday",
        Rule(
            "Sync",
            "2026-12-09T09:00:00+01:00",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE",
        ),
    ),
    (
        "Sync every week",
        Rule("Sync", "2026-12-06T09:00:00+01:00", "FREQ=WEEKLY"),
    ),
    (
        "Sync weekly on monday at 10",
        Rule("Sync", "2026-12-07T10:00:00+01:00", "FREQ=WEEKLY;BYDAY=MO"),
    ),
    (
        "Sync every week on tue and thu",
        Rule(
            "Sync",
            "2026-12-08T09:00:00+01:00",
            "FREQ=WEEKLY;BYDAY=TU,TH",
        ),
    ),
    (
        "Newsletter monthly",
        Rule("Newsletter", "2026-12-06T09:00:00+01:00", "FREQ=MONTHLY"),
    ),
    (
        "Newsletter monthly on the 15th at 8",
        Rule(
            "Newsletter",
            "2026-12-15T08:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=15",
        ),
    ),
    (
        "Rent every month on the 1st",
        Rule(
            "Rent",
            "2027-01-01T09:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=1",
        ),
    ),
    (
        "Rent every month on the last day",
        Rule(
            "Rent",
            "2026-12-31T09:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
        ),
    ),
    (
        "Pay rent on the 1st of every month",
        Rule(
            "Pay rent",
            "2027-01-01T09:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=1",
        ),
    ),
    (
        "Pay rent the first of each month at 8",
        Rule(
            "Pay rent",
            "2027-01-01T08:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=1",
        ),
    ),
    (
        "Check meters every 3 months",
        Rule(
            "Check meters",
            "2026-12-06T09:00:00+01:00",
            "FREQ=MONTHLY;INTERVAL=3",
        ),
    ),
    (
        "Book club on the 2nd tuesday of every month at 19:00",
        Rule(
            "Book club",
            "2026-12-08T19:00:00+01:00",
            "FREQ=MONTHLY;BYDAY=2TU",
        ),
    ),
    (
        "Book club the second tuesday of each month",
        Rule(
            "Book club",
            "2026-12-08T09:00:00+01:00",
            "FREQ=MONTHLY;BYDAY=2TU",
        ),
    ),
    (
        "Review the last friday of every month",
        Rule(
            "Review",
            "2026-12-25T09:00:00+01:00",
            "FREQ=MONTHLY;BYDAY=-1FR",
        ),
    ),
    (
        "Invoices the last weekday of each month",
        Rule(
            "Invoices",
            "2026-12-31T09:00:00+01:00",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        ),
    ),
    (
        "Invoices on the first weekday of every month",
        Rule(
            "Invoices",
            "2027-01-01T09:00:00+01:00",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
        ),
    ),
    (
        "Backup last day of each month at 18:00",
        Rule(
            "Backup",
            "2026-12-31T18:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
        ),
    ),
    (
        "Backup on the last day of every month at 18:00",
        Rule(
            "Backup",
            "2026-12-31T18:00:00+01:00",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
        ),
    ),
    (
        "Birthday every year on march 3",
        Rule(
            "Birthday",
            "2027-03-03T09:00:00+01:00",
            "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3",
        ),
    ),
    (
        "Birthday every year on 29 february",
        Rule(
            "Birthday",
            "2028-02-29T09:00:00+01:00",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        ),
    ),
    (
        "Anniversary yearly",
        Rule("Anniversary", "2026-12-06T09:00:00+01:00", "FREQ=YEARLY"),
    ),
    (
        "Anniversary annually at 18:00",
        Rule("Anniversary", "2026-12-05T18:00:00+01:00", "FREQ=YEARLY"),
    ),
    (
        "Stand up every 2 hours",
        Rule(
            "Stand up",
            "2026-12-06T09:00:00+01:00",
            "FREQ=HOURLY;INTERVAL=2",
        ),
    ),
    (
        "Drink water every hour at 12:00",
        Rule("Drink water", "2026-12-05T12:00:00+01:00", "FREQ=HOURLY"),
    ),
    (
        "Drink water hourly",
        Rule("Drink water", "2026-12-06T09:00:00+01:00", "FREQ=HOURLY"),
    ),
    (
        "Stretch every 30 minutes",
        Rule(
            "Stretch",
            "2026-12-06T09:00:00+01:00",
            "FREQ=MINUTELY;INTERVAL=30",
        ),
    ),
    (
        "Stretch every 45 mins at 13:00",
        Rule(
            "Stretch",
            "2026-12-05T13:00:00+01:00",
            "FREQ=MINUTELY;INTERVAL=45",
        ),
    ),
    (
        "Pills every day at 8 for 10 times",
        Rule("Pills", "2026-12-06T08:00:00+01:00", "FREQ=DAILY;COUNT=10"),
    ),
    (
        "Pills every day 10 times",
        Rule("Pills", "2026-12-06T09:00:00+01:00", "FREQ=DAILY;COUNT=10"),
    ),
    (
        "Pills daily until december 31",
        Rule(
            "Pills",
            "2026-12-06T09:00:00+01:00",
            "FREQ=DAILY;UNTIL=20261231",
        ),
    ),
    (
        "Pills daily at 21:00 until 2027-01-15",
        Rule(
            "Pills",
            "2026-12-05T21:00:00+01:00",
            "FREQ=DAILY;UNTIL=20270115",
        ),
    ),
    (
        "Pills every 8 hours until jan 10",
        Rule(
            "Pills",
            "2026-12-06T09:00:00+01:00",
            "FREQ=HOURLY;INTERVAL=8;UNTIL=20270110",
        ),
    ),
    // Repeating, refused.
    (
        "Stretch every 2 minutes",
        Refused("at most one reminder every 5 minutes"),
    ),
    (
        "Stretch every minute",
        Refused("at most one reminder every 5 minutes"),
    ),
    ("Water every 0 days", Refused("a count from 1 to 1000")),
    (
        "Book club the 6th tuesday of every month",
        Refused("a month has no 6th tuesday"),
    ),
    (
        "Rent on the 32nd of every month",
        Refused("a month has no 32nd day"),
    ),
    (
        "Rent monthly on the 40th",
        Refused("a month has no 40th day"),
    ),
    ("Pills daily until yesterday", Refused("until when")),
    (
        "Pills daily until december 1 2026",
        Refused("that date has passed"),
    ),
    ("Pills daily for 0 times", Refused("from 1 to 100000")),
    ("Meeting every blue moon", Refused("no date or time")),
    ("Gym at 7 every day at 8", Refused("two times of day")),
    ("Read every evening", Refused("no date or time")),
];

#[test]
fn the_quick_add_grammar_reads_each_phrase_as_documented() {
    let zone = TaskZone::parse("Europe/Berlin").expect("zone");
    let now: Timestamp = "2026-12-05T10:00:00Z".parse().expect("now");
    assert!(TABLE.len() >= 100, "{} phrases", TABLE.len());
    let mut failures = Vec::new();
    for (phrase, expect) in TABLE {
        let got = quick_add(phrase, now, &zone);
        let ok = match (expect, &got) {
            (Once(name, start), Ok(q)) => {
                q.body["name"] == *name
                    && q.body["startDate"] == *start
                    && q.body.get("repeats").is_none()
            }
            (Rule(name, start, rule), Ok(q)) => {
                q.body["name"] == *name
                    && q.body["startDate"] == *start
                    && q.body["repeats"]["rrule"] == *rule
            }
            (Refused(words), Err(e)) => e.0.contains(words),
            _ => false,
        };
        if !ok {
            failures.push(format!("{phrase:?}: {got:?}"));
            continue;
        }
        // Every body quick add makes is one the task API takes, with an occurrence to come.
        if let Ok(q) = &got {
            let spec = crate::TaskSpec::parse(&q.body)
                .unwrap_or_else(|e| panic!("{phrase:?}: {} refused: {e:?}", q.body));
            assert!(
                spec.require_future(now).is_ok(),
                "{phrase:?}: nothing to come"
            );
            assert!(!q.understood.is_empty());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        TABLE.len(),
        failures.join("\n")
    );
}

#[test]
fn what_was_understood_is_said_back_in_words() {
    let zone = TaskZone::parse("Europe/Berlin").expect("zone");
    let now: Timestamp = "2026-12-05T10:00:00Z".parse().expect("now");
    let said = |phrase: &str| quick_add(phrase, now, &zone).expect(phrase).understood;
    assert_eq!(
        said("Payroll every other friday at 9"),
        "Every other Friday at 09:00"
    );
    assert_eq!(
        said("Standup weekdays at 7:30 until march"),
        "Every weekday at 07:30, until 28 Feb 2027"
    );
    assert_eq!(
        said("Book club on the 2nd tuesday of every month at 19:00"),
        "Every month on the second Tuesday at 19:00"
    );
    assert_eq!(
        said("Call mom tomorrow at 6pm"),
        "Once, Sun 6 Dec 2026 at 18:00"
    );
    assert_eq!(
        said("Tea in 20 minutes"),
        "Once, in 20 minutes (Sat 5 Dec 2026 at 11:20)"
    );
}
