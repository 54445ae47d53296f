//! What a task that repeats by an RFC 5545 rule costs the schedule, in release:
//! `cargo run --release -p chime-core --example rule_cost`.
//!
//! - `after()`: the fire path, once per occurrence: the next occurrence after one that fired,
//!   which restarts the expansion just before it instead of at the start.
//! - `first_at_or_after()`: a task created, changed or listed years after its start, which
//!   walks the expansion from the start to number the occurrence exactly.

use std::time::Instant;

use chime_core::recurrence::rrule::Rrule;
use chime_core::recurrence::{Recurrence, Schedule, TaskZone};
use jiff::{SignedDuration, Timestamp};

const RULES: [(&str, i64); 4] = [
    ("FREQ=DAILY;BYHOUR=9", 10),
    ("FREQ=MINUTELY;INTERVAL=5", 10),
    ("FREQ=MONTHLY;BYDAY=2TU", 50),
    (
        "FREQ=HOURLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9,10,11,12,13,14,15,16,17",
        10,
    ),
];

fn main() {
    let start: Timestamp = "2016-01-01T08:00:00Z".parse().expect("instant");
    for (rule, years) in RULES {
        let schedule = Schedule {
            start,
            zone: TaskZone::parse("Europe/Berlin").expect("zone"),
            repeats: Some(Recurrence::Rule(Rrule::parse(rule).expect("rule"))),
            exceptions: Default::default(),
        };
        let later = start + SignedDuration::from_hours(24 * 365 * years);
        let clock = Instant::now();
        let first = schedule.first_at_or_after(later).expect("an occurrence");
        let walk = clock.elapsed();
        let clock = Instant::now();
        let mut next = first;
        const STEPS: u32 = 10_000;
        for _ in 0..STEPS {
            next = schedule.after(&next).expect("an occurrence");
        }
        let step = clock.elapsed() / STEPS;
        println!(
            "{rule}: after() {step:?} per occurrence; first_at_or_after {years} years after \
             the start (occurrence {}) {walk:?}",
            first.seq
        );
    }
}
