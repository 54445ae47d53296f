//! The import read against hand-written files shaped as Google Calendar, Apple Calendar,
//! Outlook and Thunderbird export them, plus edge cases, broken files and fuzzing. Every
//! calendar is read with `America/Chicago` as the fallback zone, so a value read on it shows.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.

use proptest::prelude::*;

use super::*;

const GOOGLE: &str = include_str!("../../tests/fixtures/ics/google.ics");
const APPLE: &str = include_str!("../../tests/fixtures/ics/apple.ics");
const OUTLOOK: &str = include_str!("../../tests/fixtures/ics/outlook.ics");
const THUNDERBIRD: &str = include_str!("../../tests/fixtures/ics/thunderbird.ics");
const PATHOLOGICAL: &str = include_str!("../../tests/fixtures/ics/pathological.ics");

fn zone(name: &str) -> TaskZone {
    TaskZone::parse(name).unwrap()
}

fn chicago() -> TaskZone {
    zone("America/Chicago")
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn start(zone_name: &str, local: &str, instant: &str) -> Start {
    Start {
        zone: zone(zone_name),
        local: local.parse().unwrap(),
        at: at(instant),
        all_day: false,
    }
}

fn all_day(zone_name: &str, date: &str, instant: &str) -> Start {
    Start {
        all_day: true,
        ..start(zone_name, &format!("{date}T00:00"), instant)
    }
}

fn before(minutes: i64) -> Alarm {
    Alarm::Relative {
        offset: SignedDuration::from_mins(-minutes),
        to_end: false,
    }
}

fn rule(text: &str) -> Option<Rrule> {
    Some(Rrule::parse(text).unwrap())
}

fn event(uid: &str, summary: &str, start: Start) -> Item {
    Item {
        uid: Some(uid.to_owned()),
        kind: Kind::Event,
        summary: summary.to_owned(),
        description: None,
        start,
        end: None,
        rrule: None,
        exdates: vec![],
        rdates: vec![],
        overrides: vec![],
        alarms: vec![],
    }
}

fn skipped(uid: &str, summary: Option<&str>, reason: &str) -> Skipped {
    Skipped {
        uid: Some(uid.to_owned()),
        summary: summary.map(str::to_owned),
        reason: reason.to_owned(),
    }
}

fn read(text: &str) -> Import {
    parse(text, &chicago()).unwrap()
}

/// A calendar of the given lines, CRLF-terminated.
fn calendar(lines: &[&str]) -> String {
    let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

#[test]
fn a_google_export_gives_its_series_with_exception_and_override_a_birthday_and_a_utc_event() {
    let import = read(GOOGLE);
    assert_eq!(import.skipped, vec![]);
    let standup = Item {
        description: Some("Daily stand-up, weekly edition: blockers first; then news.".to_owned()),
        end: Some(start(
            "Europe/Berlin",
            "2026-01-05T09:45",
            "2026-01-05T08:45:00Z",
        )),
        rrule: rule("FREQ=WEEKLY;BYDAY=MO"),
        exdates: vec![at("2026-01-19T08:30:00Z")],
        // The override comes first in the file and still finds its series.
        overrides: vec![Override {
            recurrence_id: at("2026-01-26T08:30:00Z"),
            start: Some(at("2026-01-26T10:00:00Z")),
        }],
        alarms: vec![before(30), before(24 * 60)],
        ..event(
            "0q8k2n4r6t1v3x5z7b9d@google.com",
            "Team stand-up",
            start("Europe/Berlin", "2026-01-05T09:30", "2026-01-05T08:30:00Z"),
        )
    };
    // All-day: midnight on the fallback zone (CDT in April 1990).
    let birthday = Item {
        end: Some(all_day(
            "America/Chicago",
            "1990-04-13",
            "1990-04-13T05:00:00Z",
        )),
        rrule: rule("FREQ=YEARLY"),
        alarms: vec![before(15 * 60)],
        ..event(
            "7bq4m1c9h2e5k8n3p6s0@google.com",
            "Anna's birthday",
            all_day("America/Chicago", "1990-04-12", "1990-04-12T05:00:00Z"),
        )
    };
    let call = Item {
        description: Some("Quarterly sync with the Tokyo office.".to_owned()),
        end: Some(start("UTC", "2026-03-10T16:00", "2026-03-10T16:00:00Z")),
        alarms: vec![before(10)],
        ..event(
            "5d1f3h7j9l2n4p6r8t0v@google.com",
            "Call with Tokyo office",
            start("UTC", "2026-03-10T15:00", "2026-03-10T15:00:00Z"),
        )
    };
    assert_eq!(import.items, vec![standup, birthday, call]);
}

#[test]
fn an_apple_export_unfolds_and_unescapes_keeps_real_alarms_once_and_drops_the_none_placeholder() {
    let import = read(APPLE);
    assert_eq!(import.skipped, vec![]);
    let dentist = Item {
        description: Some(
            "Bring: insurance card, referral letter, list of medications.\nParking is behind \
             the building; use the side entrance\nCall 555-0100 if late, or write to \
             front-desk@example.com. Ask for the room on the second floor, by the window."
                .to_owned(),
        ),
        // 3 November 2026 is after the clocks fell back: EST.
        end: Some(start(
            "America/New_York",
            "2026-11-03T11:00",
            "2026-11-03T16:00:00Z",
        )),
        alarms: vec![Alarm::Absolute(at("2026-11-02T23:00:00Z")), before(60)],
        ..event(
            "5F3C2A1B-8D7E-4F6A-9B0C-1D2E3F4A5B6C",
            "Dentist",
            start(
                "America/New_York",
                "2026-11-03T10:00",
                "2026-11-03T15:00:00Z",
            ),
        )
    };
    let christmas = Item {
        end: Some(all_day(
            "America/Chicago",
            "2026-12-26",
            "2026-12-26T06:00:00Z",
        )),
        rrule: rule("FREQ=YEARLY;UNTIL=20301225"),
        alarms: vec![before(15 * 60)],
        ..event(
            "9E8D7C6B-5A4F-4E3D-8C2B-1A0F9E8D7C6B",
            "Christmas",
            all_day("America/Chicago", "2026-12-25", "2026-12-25T06:00:00Z"),
        )
    };
    assert_eq!(import.items, vec![dentist, christmas]);
}

#[test]
fn an_outlook_export_resolves_a_windows_zone_and_a_customized_zone_by_its_rules() {
    let import = read(OUTLOOK);
    assert_eq!(import.skipped, vec![]);
    let planning = Item {
        description: Some("Agenda: review last week, plan this week.\n".to_owned()),
        end: Some(start(
            "Europe/Berlin",
            "2026-03-02T10:00",
            "2026-03-02T09:00:00Z",
        )),
        rrule: rule("FREQ=WEEKLY;COUNT=10;BYDAY=MO"),
        alarms: vec![before(15)],
        ..event(
            "040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5A60100000000000000001000000\
             01234567890ABCDEF1234567890ABCDEF",
            "Weekly planning",
            start("Europe/Berlin", "2026-03-02T09:00", "2026-03-02T08:00:00Z"),
        )
    };
    // "Customized Time Zone" names no place; its rules are US Eastern's (EDT in April).
    let vendor = Item {
        end: Some(start(
            "America/New_York",
            "2026-04-15T15:00",
            "2026-04-15T19:00:00Z",
        )),
        alarms: vec![before(15)],
        ..event(
            "040000008200E00074C5B7101A82E00800000000B1C2D3E4F5A6B70100000000000000001000000\
             09876543210FEDCBA9876543210FEDCBA",
            "Vendor call (New York)",
            start(
                "America/New_York",
                "2026-04-15T14:00",
                "2026-04-15T18:00:00Z",
            ),
        )
    };
    let holiday = Item {
        end: Some(all_day(
            "America/Chicago",
            "2026-05-02",
            "2026-05-02T05:00:00Z",
        )),
        ..event(
            "040000008200E00074C5B7101A82E00800000000C2D3E4F5A6B7C80100000000000000001000000\
             0ABCDEF1234567890ABCDEF1234567890",
            "Public holiday",
            all_day("America/Chicago", "2026-05-01", "2026-05-01T05:00:00Z"),
        )
    };
    assert_eq!(import.items, vec![planning, vendor, holiday]);
}

#[test]
fn a_thunderbird_export_reads_open_todos_and_prefixed_zones_and_skips_done_and_journal() {
    let import = read(THUNDERBIRD);
    assert_eq!(
        import.skipped,
        vec![
            skipped(
                "8f2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                Some("File tax return"),
                "a completed to-do",
            ),
            skipped(
                "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                Some("Garden notes"),
                "VJOURNAL: a journal entry has no time to remind at",
            ),
        ]
    );
    // Due only: the to-do starts at its due time and has no end.
    let passport = Item {
        kind: Kind::Todo,
        alarms: vec![Alarm::Relative {
            offset: SignedDuration::from_hours(-1),
            to_end: true,
        }],
        ..event(
            "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "Renew passport",
            start("Europe/Berlin", "2026-03-20T12:00", "2026-03-20T11:00:00Z"),
        )
    };
    let plants = Item {
        kind: Kind::Todo,
        end: Some(start(
            "Europe/Berlin",
            "2026-03-02T20:00",
            "2026-03-02T19:00:00Z",
        )),
        rrule: rule("FREQ=WEEKLY;BYDAY=MO,TH"),
        alarms: vec![before(0)],
        ..event(
            "6e7f8a9b-0c1d-4e2f-a3b4-c5d6e7f8a9b0",
            "Water the plants",
            start("Europe/Berlin", "2026-03-02T08:00", "2026-03-02T07:00:00Z"),
        )
    };
    let flight = Item {
        end: Some(start(
            "Europe/London",
            "2026-06-12T09:30",
            "2026-06-12T08:30:00Z",
        )),
        ..event(
            "d4c3b2a1-9f8e-4d7c-b6a5-f4e3d2c1b0a9",
            "Flight to London",
            start("Europe/London", "2026-06-12T07:15", "2026-06-12T06:15:00Z"),
        )
    };
    assert_eq!(import.items, vec![passport, plants, flight]);
}

#[test]
fn edge_cases_are_read_or_skipped_one_by_one_in_a_bom_prefixed_lf_only_file() {
    let import = read(PATHOLOGICAL);
    assert_eq!(
        import.skipped,
        vec![
            skipped(
                "cancelled@example.com",
                Some("Cancelled meeting"),
                "cancelled (STATUS:CANCELLED)",
            ),
            skipped(
                "secondly@example.com",
                Some("Every second"),
                "RRULE refused: FREQ=SECONDLY: not supported; the smallest is MINUTELY",
            ),
            skipped(
                "mars@example.com",
                Some("Meeting on Mars"),
                "time zone `Mars/Olympus_Mons` is unknown and the calendar has no VTIMEZONE \
                 for it",
            ),
            skipped("nostart@example.com", Some("No start"), "no DTSTART"),
        ]
    );
    // Floating: read on the fallback zone (CDT).
    let lunch = Item {
        end: Some(start(
            "America/Chicago",
            "2026-04-02T13:30",
            "2026-04-02T18:30:00Z",
        )),
        ..event(
            "floating@example.com",
            "Floating lunch",
            start(
                "America/Chicago",
                "2026-04-02T12:30",
                "2026-04-02T17:30:00Z",
            ),
        )
    };
    // Lower-case names; the unreadable trigger drops that alarm only.
    let untitled = Item {
        alarms: vec![before(5)],
        ..event(
            "untitled@example.com",
            "(no title)",
            start("UTC", "2026-04-03T09:00", "2026-04-03T09:00:00Z"),
        )
    };
    // A quoted parameter holding `:` `;` `,` before TZID; two RDATE lines, one of periods.
    let sessions = Item {
        rdates: vec![
            at("2026-04-08T16:00:00Z"),
            at("2026-04-10T17:00:00Z"),
            at("2026-04-15T16:00:00Z"),
            at("2026-04-17T16:00:00Z"),
        ],
        ..event(
            "rdates@example.com",
            "Extra sessions \\ lab; room B",
            start("Europe/Berlin", "2026-04-06T18:00", "2026-04-06T16:00:00Z"),
        )
    };
    // 02:30 does not exist on Berlin's spring-forward day: due at 03:30 CEST.
    let run = event(
        "gap@example.com",
        "Early run",
        start("Europe/Berlin", "2026-03-29T03:30", "2026-03-29T01:30:00Z"),
    );
    // An override without its series is an item of its own.
    let orphan = event(
        "orphan@example.com",
        "Moved occurrence of a series not in this file",
        start("UTC", "2026-04-21T09:00", "2026-04-21T09:00:00Z"),
    );
    assert_eq!(import.items, vec![lunch, untitled, sessions, run, orphan]);
}

#[test]
fn a_rule_with_characters_outside_ascii_is_refused_not_a_panic() {
    let text = calendar(&[
        "BEGIN:VEVENT",
        "UID:u",
        "DTSTART:20260601T090000Z",
        "RRULE:FREQ=WEEKLY;BYDAY=\u{fffd}O",
        "END:VEVENT",
    ]);
    assert_eq!(
        read(&text).skipped,
        vec![skipped(
            "u",
            None,
            "RRULE refused: `FREQ=WEEKLY;BYDAY=\u{fffd}O` has characters outside ASCII",
        )]
    );
}

#[test]
fn overrides_of_a_series_keep_or_cancel_their_occurrence_and_follow_a_skipped_series() {
    let text = calendar(&[
        "BEGIN:VEVENT",
        "UID:series",
        "SUMMARY:Series",
        "DTSTART;VALUE=DATE:20260601",
        "RRULE:FREQ=DAILY",
        "EXDATE;VALUE=DATE:20260603",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:series",
        "RECURRENCE-ID;VALUE=DATE:20260604",
        "STATUS:CANCELLED",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:series",
        "RECURRENCE-ID;VALUE=DATE:20260605",
        "SUMMARY:Same day, new title",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:gone",
        "SUMMARY:Gone",
        "DTSTART:20260601T090000Z",
        "RRULE:FREQ=DAILY",
        "STATUS:CANCELLED",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:gone",
        "SUMMARY:Gone, moved",
        "RECURRENCE-ID:20260602T090000Z",
        "DTSTART:20260602T100000Z",
        "END:VEVENT",
    ]);
    let import = read(&text);
    let series = &import.items[0];
    // Dates without a zone are read on the series' zone, the fallback here (CDT).
    assert_eq!(series.exdates, vec![at("2026-06-03T05:00:00Z")]);
    assert_eq!(
        series.overrides,
        vec![
            Override {
                recurrence_id: at("2026-06-04T05:00:00Z"),
                start: None,
            },
            Override {
                recurrence_id: at("2026-06-05T05:00:00Z"),
                start: Some(at("2026-06-05T05:00:00Z")),
            },
        ]
    );
    assert_eq!(import.items.len(), 1);
    assert_eq!(
        import.skipped,
        vec![
            skipped("gone", Some("Gone"), "cancelled (STATUS:CANCELLED)"),
            skipped(
                "gone",
                Some("Gone, moved"),
                "an override (RECURRENCE-ID) of an item that was skipped",
            ),
        ]
    );
}

/// The zone of a single event at `dtstart` with a `VTIMEZONE` of the given observances.
fn zone_of(tzid: &str, observances: &[&str], dtstart: &str) -> Result<TaskZone, String> {
    let mut lines = vec!["BEGIN:VTIMEZONE".to_owned(), format!("TZID:{tzid}")];
    lines.extend(observances.iter().map(|l| (*l).to_owned()));
    lines.push("END:VTIMEZONE".to_owned());
    lines.extend([
        "BEGIN:VEVENT".to_owned(),
        "UID:e".to_owned(),
        format!("DTSTART;TZID=\"{tzid}\":{dtstart}"),
        "END:VEVENT".to_owned(),
    ]);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let import = read(&calendar(&lines));
    match (import.items.first(), import.skipped.first()) {
        (Some(item), _) => Ok(item.start.zone.clone()),
        (None, Some(s)) => Err(s.reason.clone()),
        (None, None) => panic!("nothing read"),
    }
}

/// One observance: `STANDARD` or `DAYLIGHT`, its onset, offsets and optional rule.
fn observance(kind: &str, dtstart: &str, from: &str, to: &str, rule: &str) -> String {
    let rule = if rule.is_empty() {
        String::new()
    } else {
        format!("RRULE:{rule}\r\n")
    };
    format!(
        "BEGIN:{kind}\r\nDTSTART:{dtstart}\r\nTZOFFSETFROM:{from}\r\nTZOFFSETTO:{to}\r\n\
         {rule}END:{kind}"
    )
}

fn central_european() -> [String; 2] {
    [
        observance(
            "STANDARD",
            "16011028T030000",
            "+0200",
            "+0100",
            "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
        ),
        observance(
            "DAYLIGHT",
            "16010325T020000",
            "+0100",
            "+0200",
            "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
        ),
    ]
}

#[test]
fn a_windows_name_whose_rules_disagree_is_resolved_by_the_rules_instead() {
    // Tokyo's constant +09:00 under India's Windows name.
    let tokyo = observance("STANDARD", "16010101T000000", "+0900", "+0900", "");
    assert_eq!(
        zone_of("India Standard Time", &[&tokyo], "20260601T090000"),
        Ok(zone("Asia/Tokyo"))
    );
    let cet = central_european();
    let cet: Vec<&str> = cet.iter().map(String::as_str).collect();
    assert_eq!(
        zone_of("Romance Standard Time", &cet, "20260601T090000"),
        Ok(zone("Europe/Paris"))
    );
}

#[test]
fn among_zones_with_the_same_rules_one_sharing_a_word_with_the_tzid_wins() {
    let cet = central_european();
    let cet: Vec<&str> = cet.iter().map(String::as_str).collect();
    assert_eq!(
        zone_of("Oslo Time", &cet, "20260601T090000"),
        Ok(zone("Europe/Oslo"))
    );
    // No word to go by: the first well-known zone with those offsets.
    assert_eq!(
        zone_of("Office hours", &cet, "20260601T090000"),
        Ok(zone("Europe/Berlin"))
    );
}

#[test]
fn rules_given_as_rdates_are_matched_too() {
    let daylight = "BEGIN:DAYLIGHT\r\nDTSTART:20260308T020000\r\n\
                    RDATE:20270314T020000,20280312T020000\r\nTZOFFSETFROM:-0500\r\n\
                    TZOFFSETTO:-0400\r\nEND:DAYLIGHT";
    let standard = "BEGIN:STANDARD\r\nDTSTART:20251102T020000\r\n\
                    RDATE:20261101T020000,20271107T020000,20281105T020000\r\n\
                    TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD";
    assert_eq!(
        zone_of("Eastern", &[daylight, standard], "20260601T090000"),
        Ok(zone("America/New_York"))
    );
}

#[test]
fn a_zone_no_database_zone_matches_is_a_fixed_offset_when_it_has_one_offset_else_skipped() {
    let odd = observance("STANDARD", "19700101T000000", "+0317", "+0317", "");
    assert_eq!(
        zone_of("Odd", &[&odd], "20260601T090000").map(|z| z.name().to_owned()),
        Ok("+03:17".to_owned())
    );
    let switching = [
        observance(
            "STANDARD",
            "19701025T030000",
            "+0417",
            "+0317",
            "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
        ),
        observance(
            "DAYLIGHT",
            "19700329T020000",
            "+0317",
            "+0417",
            "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
        ),
    ];
    let switching: Vec<&str> = switching.iter().map(String::as_str).collect();
    assert_eq!(
        zone_of("Odd", &switching, "20260601T090000"),
        Err("time zone `Odd` matches no known zone".to_owned())
    );
}

#[test]
fn a_tzid_is_an_iana_name_also_after_a_vendor_prefix() {
    assert_eq!(iana("europe/berlin"), Some(zone("Europe/Berlin")));
    assert_eq!(
        iana("/mozilla.org/20070129_1/America/Argentina/Buenos_Aires"),
        Some(zone("America/Argentina/Buenos_Aires"))
    );
    assert_eq!(
        iana("/freeassociation.sourceforge.net/Tzfile/Europe/Berlin"),
        Some(zone("Europe/Berlin"))
    );
    assert_eq!(iana("W. Europe Standard Time"), None);
    assert_eq!(iana("Berlin"), None);
}

#[test]
fn content_lines_take_quoted_and_listed_parameter_values() {
    let prop = content_line(
        "attendee;CN=\"Doe, Jane: PM\";delegated-from=\"mailto:a@x\",\"mailto:b@x\";\
         ROLE=CHAIR:mailto:jane@example.com",
    )
    .unwrap();
    assert_eq!(prop.name, "ATTENDEE");
    assert_eq!(
        prop.params,
        vec![
            ("CN".to_owned(), vec!["Doe, Jane: PM".to_owned()]),
            (
                "DELEGATED-FROM".to_owned(),
                vec!["mailto:a@x".to_owned(), "mailto:b@x".to_owned()]
            ),
            ("ROLE".to_owned(), vec!["CHAIR".to_owned()]),
        ]
    );
    assert_eq!(prop.value, "mailto:jane@example.com");
    assert!(content_line("no colon here").is_none());
    assert!(content_line("X;P=\"unclosed:value").is_none());
    assert_eq!(
        unescape(r"a\, b\; c\\d\ne\Nf"),
        "a, b; c\\d\ne\nf".to_owned()
    );
}

#[test]
fn durations_follow_rfc_5545_with_signs_weeks_and_days() {
    let secs = |text: &str| {
        let d = parse_duration(text)?;
        let total = d.days * 86_400 + d.seconds;
        Some(if d.negative { -total } else { total })
    };
    assert_eq!(secs("-PT15M"), Some(-900));
    assert_eq!(secs("PT0S"), Some(0));
    assert_eq!(secs("-P1D"), Some(-86_400));
    assert_eq!(secs("-P1DT2H30M"), Some(-(86_400 + 9_000)));
    assert_eq!(secs("P1W"), Some(7 * 86_400));
    assert_eq!(secs("+PT1H0M30S"), Some(3_630));
    assert_eq!(secs("-P0DT0H30M0S"), Some(-1_800));
    for bad in [
        "", "P", "PT", "-PT", "PT15", "P1H", "PT1D", "PT1M1H", "P1DT", "soon",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
    // DTSTART + DURATION: a day is a calendar day across the autumn change (25 hours).
    let text = calendar(&[
        "BEGIN:VEVENT",
        "DTSTART;TZID=Europe/Berlin:20261024T120000",
        "DURATION:P1DT1H",
        "END:VEVENT",
    ]);
    let item = &read(&text).items[0];
    assert_eq!(
        item.end,
        Some(start(
            "Europe/Berlin",
            "2026-10-25T13:00",
            "2026-10-25T12:00:00Z"
        ))
    );
}

#[test]
fn a_file_without_a_calendar_is_not_a_calendar() {
    let fallback = chicago();
    assert_eq!(parse("", &fallback), Err(ImportError::NotACalendar));
    assert_eq!(
        parse("BEGIN:VCARD\r\nFN:Jane\r\nEND:VCARD\r\n", &fallback),
        Err(ImportError::NotACalendar)
    );
}

#[test]
fn a_broken_structure_fails_the_file_naming_the_line() {
    let fallback = chicago();
    let malformed = |line, reason: &str| {
        Err(ImportError::Malformed {
            line,
            reason: reason.to_owned(),
        })
    };
    assert_eq!(
        parse(
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VCALENDAR\n",
            &fallback
        ),
        malformed(4, "END:VCALENDAR closes BEGIN:VEVENT of line 2")
    );
    assert_eq!(
        parse(
            "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:x\n",
            &fallback
        ),
        malformed(3, "BEGIN:VEVENT is never ended")
    );
    assert_eq!(
        parse("BEGIN:VCALENDAR\nEND:VCALENDAR\nEND:VCALENDAR\n", &fallback),
        malformed(3, "END:VCALENDAR without a BEGIN")
    );
    let deep = "BEGIN:VCALENDAR\n".to_owned() + &"BEGIN:X-NEST\n".repeat(MAX_DEPTH);
    assert_eq!(
        parse(&deep, &fallback),
        malformed(MAX_DEPTH + 1, "components nested more than 8 deep")
    );
}

#[test]
fn a_file_too_large_or_with_too_many_components_is_refused() {
    let fallback = chicago();
    let large = format!("BEGIN:VCALENDAR\n{}", "X".repeat(MAX_BYTES));
    assert_eq!(
        parse(&large, &fallback),
        Err(ImportError::TooLarge {
            bytes: MAX_BYTES + 16
        })
    );
    let many = calendar(&["BEGIN:VEVENT\r\nEND:VEVENT"; MAX_COMPONENTS]);
    assert_eq!(parse(&many, &fallback), Err(ImportError::TooManyComponents));
    let most = calendar(&["BEGIN:VEVENT\r\nEND:VEVENT"; MAX_COMPONENTS - 1]);
    assert_eq!(
        parse(&most, &fallback).unwrap().skipped.len(),
        MAX_COMPONENTS - 1
    );
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = parse(&text, &chicago());
    }

    #[test]
    fn parse_never_panics_on_calendar_shaped_text(
        lines in prop::collection::vec(
            prop_oneof![
                Just("BEGIN:VCALENDAR".to_owned()),
                Just("BEGIN:VEVENT".to_owned()),
                Just("END:VEVENT".to_owned()),
                Just("BEGIN:VTIMEZONE".to_owned()),
                Just("END:VTIMEZONE".to_owned()),
                "[A-Z-]{1,12}(;[A-Z]{1,5}=\"?[ -~]{0,8}\"?){0,2}:[ -~]{0,30}",
                "(DTSTART|DUE|RRULE|EXDATE|TRIGGER|TZOFFSETTO|DURATION)(;TZID=[A-Za-z/]{1,12})?:[0-9TZP+-]{0,20}",
            ],
            0..40,
        )
    ) {
        let _ = parse(&lines.join("\r\n"), &chicago());
    }

    #[test]
    fn parse_never_panics_on_a_fixture_with_bytes_changed(
        fixture in prop::sample::select(vec![GOOGLE, APPLE, OUTLOOK, THUNDERBIRD, PATHOLOGICAL]),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20),
    ) {
        let mut bytes = fixture.as_bytes().to_vec();
        for (index, byte) in changes {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = parse(&String::from_utf8_lossy(&bytes), &chicago());
    }
}

#[test]
fn a_file_works_out_at_most_so_many_zones_from_their_rules() {
    let eastern = [
        "BEGIN:VTIMEZONE".to_owned(),
        "TZID:Customized Time Zone".to_owned(),
        observance(
            "STANDARD",
            "16011104T020000",
            "-0400",
            "-0500",
            "FREQ=YEARLY;BYDAY=1SU;BYMONTH=11",
        ),
        observance(
            "DAYLIGHT",
            "16010311T020000",
            "-0500",
            "-0400",
            "FREQ=YEARLY;BYDAY=2SU;BYMONTH=3",
        ),
        "END:VTIMEZONE".to_owned(),
    ];
    // Each year is matched on its own (from 2010: these rules are the US's since 2007); the
    // same year again is remembered.
    let events = (0..=MAX_ZONE_RULES).chain([0]).map(|i| {
        format!(
            "BEGIN:VEVENT\r\nUID:{i}\r\nDTSTART;TZID=Customized Time Zone:{}0601T090000\r\n\
             END:VEVENT",
            2010 + i
        )
    });
    let lines: Vec<String> = eastern.into_iter().chain(events).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let import = read(&calendar(&lines));
    assert_eq!(import.items.len(), MAX_ZONE_RULES + 1);
    assert!(import
        .items
        .iter()
        .all(|item| item.start.zone == zone("America/New_York")));
    assert_eq!(
        import.skipped,
        vec![skipped(
            &MAX_ZONE_RULES.to_string(),
            None,
            "time zone `Customized Time Zone`: more than 100 time zones to work out from their \
             rules in one file",
        )]
    );
}
