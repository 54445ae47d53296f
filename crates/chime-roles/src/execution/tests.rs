use chime_core::task::STORED_VERSION;
use chime_core::{TaskId, UserId};
use serde_json::json;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A daily 09:00 UTC task with `missed`, due at `due` (occurrence `seq`).
fn row(missed: serde_json::Value, due: &str, seq: u32) -> ScheduledTask {
    let body = json!({
        "name": "daily",
        "startDate": "2030-01-01T09:00:00Z",
        "repeats": {"period": "day"},
        "missed": missed,
    });
    ScheduledTask {
        task_id: TaskId::new(),
        user_id: UserId::parse("alice").unwrap(),
        version: 1,
        body: TaskSpec::parse(&body).unwrap().to_stored(),
        due_at: ts(due),
        seq,
    }
}

fn fired(fire: &Fire) -> ExecuteTask {
    match Event::from_bytes(&fire.events[0].payload).unwrap() {
        Event::ExecuteTask(e) => e,
        other => panic!("not execute_task: {other:?}"),
    }
}

const LATE: SignedDuration = SignedDuration::from_secs(10);

#[test]
fn an_occurrence_fired_on_time_advances_to_the_next_one() {
    let row = row(json!(null), "2030-01-01T09:00:00Z", 1);
    let (fire, summary) = decide(&row, ts("2030-01-01T09:00:00.003Z"), LATE).unwrap();
    let e = fired(&fire);
    assert_eq!(e.occurrence.due_at, row.due_at);
    assert_eq!(e.seq, 1);
    assert!(!e.late);
    assert_eq!(e.coalesced, 0);
    assert_eq!(fire.next, Some((ts("2030-01-02T09:00:00Z"), 2)));
    assert_eq!(
        summary,
        Some(Fired {
            occurrence: e.occurrence,
            late: false,
            skipped: false,
            coalesced: 0,
        })
    );
}

#[test]
fn fire_once_late_fires_the_first_missed_occurrence_and_folds_in_the_rest() {
    let row = row(json!({"policy": "fireOnceLate"}), "2030-01-01T09:00:00Z", 1);
    // Down for three days: the 1st, 2nd, 3rd and 4th are due at 10:00 on the 4th.
    let (fire, summary) = decide(&row, ts("2030-01-04T10:00:00Z"), LATE).unwrap();
    let e = fired(&fire);
    assert_eq!(summary.map(|s| s.coalesced), Some(3));
    assert!(e.late);
    assert!(!e.skipped);
    assert_eq!(e.occurrence.due_at, ts("2030-01-01T09:00:00Z"));
    assert_eq!(e.coalesced, 3);
    assert_eq!(fire.next, Some((ts("2030-01-05T09:00:00Z"), 5)));
}

#[test]
fn fire_all_fires_each_missed_occurrence_in_turn() {
    let row = row(json!({"policy": "fireAll"}), "2030-01-01T09:00:00Z", 1);
    let (fire, _) = decide(&row, ts("2030-01-04T10:00:00Z"), LATE).unwrap();
    let e = fired(&fire);
    assert!(e.late);
    assert_eq!(e.coalesced, 0);
    // The next one is already due: the timer fires it in its next pass.
    assert_eq!(fire.next, Some((ts("2030-01-02T09:00:00Z"), 2)));
}

#[test]
fn skip_records_an_occurrence_later_than_the_limit_as_skipped() {
    let row = row(
        json!({"policy": "skip", "limitSeconds": 3600}),
        "2030-01-01T09:00:00Z",
        1,
    );
    let (fire, summary) = decide(&row, ts("2030-01-01T11:00:00Z"), LATE).unwrap();
    let e = fired(&fire);
    assert!(e.skipped);
    assert_eq!(
        summary,
        Some(Fired {
            occurrence: e.occurrence,
            late: true,
            skipped: true,
            coalesced: 0,
        })
    );
    assert_eq!(fire.next, Some((ts("2030-01-02T09:00:00Z"), 2)));
    // Within the limit it fires, flagged late.
    let (fire, _) = decide(&row, ts("2030-01-01T09:30:00Z"), LATE).unwrap();
    let e = fired(&fire);
    assert!(!e.skipped);
    assert!(e.late);
}

#[test]
fn the_last_occurrence_of_a_task_finishes_its_row() {
    let body = json!({"name": "once", "startDate": "2030-01-01T09:00:00Z"});
    let row = ScheduledTask {
        task_id: TaskId::new(),
        user_id: UserId::parse("alice").unwrap(),
        version: 1,
        body: TaskSpec::parse(&body).unwrap().to_stored(),
        due_at: ts("2030-01-01T09:00:00Z"),
        seq: 1,
    };
    let (fire, _) = decide(&row, ts("2030-01-01T09:00:01Z"), LATE).unwrap();
    assert_eq!(fire.events.len(), 1);
    assert_eq!(fire.next, None);
}

#[test]
fn a_task_event_schedules_from_the_instant_it_was_saved_not_when_consumed() {
    let body = TaskSpec::parse(&json!({"name": "t", "startDate": "2030-01-01T09:00:00Z"}))
        .unwrap()
        .to_stored();
    let event = Event::TaskCreated(chime_core::event::TaskChanged {
        task_id: TaskId::new(),
        user_id: UserId::parse("alice").unwrap(),
        version: 1,
        task: body,
        at: ts("2030-01-01T08:00:00Z"),
    });
    match schedule_change(&event).unwrap() {
        Some(ScheduleChange::Set { next, .. }) => {
            assert_eq!(next, Some((ts("2030-01-01T09:00:00Z"), 1)));
        }
        other => panic!("{other:?}"),
    }
}

fn task_event(task: serde_json::Value) -> Event {
    Event::TaskUpdated(chime_core::event::TaskChanged {
        task_id: TaskId::new(),
        user_id: UserId::parse("alice").unwrap(),
        version: 2,
        task,
        at: ts("2030-01-01T08:00:00Z"),
    })
}

#[test]
fn a_task_event_from_a_newer_release_is_an_error_so_its_batch_is_redelivered() {
    let mut body = row(json!(null), "2030-01-01T09:00:00Z", 1).body;
    body["v"] = json!(STORED_VERSION + 1);
    assert!(matches!(
        schedule_change(&task_event(body)),
        Err(crate::Error::Task(StoredTaskError::Newer { .. }))
    ));
}

#[test]
fn a_corrupt_task_event_unschedules_the_task() {
    let mut body = row(json!(null), "2030-01-01T09:00:00Z", 1).body;
    body["repeats"]["period"] = json!("fortnight");
    match schedule_change(&task_event(body)).unwrap() {
        Some(ScheduleChange::Set { next, .. }) => assert_eq!(next, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_due_row_from_a_newer_release_is_not_decided_and_a_corrupt_one_is_unscheduled() {
    let mut newer = row(json!(null), "2030-01-01T09:00:00Z", 1);
    newer.body["v"] = json!(STORED_VERSION + 1);
    assert!(decide(&newer, ts("2030-01-01T09:00:00Z"), LATE).is_err());

    let mut corrupt = row(json!(null), "2030-01-01T09:00:00Z", 1);
    corrupt.body["startDate"] = json!("yesterday");
    let (fire, fired) = decide(&corrupt, ts("2030-01-01T09:00:00Z"), LATE).unwrap();
    assert!(fire.events.is_empty());
    assert_eq!(fire.next, None);
    assert_eq!(fired, None);
}
