-- Occurrence state (issue 16): one row per fired occurrence (task id + due instant), written
-- in the `fire_due` claim that fires it, so an acknowledgement can never race ahead of it.
-- `acked_at` NULL: open until `expires_at` (then expired); otherwise acknowledged on
-- `acked_channel`.
--
-- Snooze: a snoozed occurrence returns as a new occurrence of its task due when the snooze
-- ends. `wake_at` is set while that return is still to fire and cleared by the claim that
-- fires it (`wake_due`), so it returns exactly once; `snoozed_until` stays for the timeline.
-- A return records `snoozed_from` (the original's due instant) and keeps the original's `seq`.
-- Nag: a nagging task's occurrence is written with `wake_at` one `nag_every` (microseconds)
-- after it fired and `nags_left` repeats; when that wake fires with no snooze set, it is a
-- repeat: the occurrence is marked `nagged` (superseded by its repeat, `snoozed_until` the
-- repeat's instant) and the repeat carries `nags_left - 1`. A snooze's return keeps the count.
-- Escalation: an escalating task's occurrence is written with `escalate_at`, when its first
-- step is due; the claim that fires a step (`escalate_due`) counts it in `escalated` and sets
-- `escalate_at` to the next step's instant, or NULL after the last. Acknowledging or snoozing
-- clears `escalate_at` in the same statement, so no step fires after either. A repeat takes
-- over its original's pending step and count; a snooze's return starts the chain again.
CREATE TABLE occurrences (
    task_id       TEXT NOT NULL,
    due_at        INTEGER NOT NULL,
    user_id       TEXT NOT NULL,
    fired_at      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    acked_at      INTEGER,
    acked_channel TEXT,
    seq           INTEGER NOT NULL,
    snoozed_until INTEGER,
    wake_at       INTEGER,
    snoozed_from  INTEGER,
    nag_every     INTEGER,
    nags_left     INTEGER NOT NULL DEFAULT 0,
    nagged        INTEGER NOT NULL DEFAULT 0,
    escalate_at   INTEGER,
    escalated     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, due_at)
) WITHOUT ROWID;
CREATE INDEX occurrences_open ON occurrences (user_id, due_at) WHERE acked_at IS NULL;
CREATE INDEX occurrences_wake ON occurrences (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX occurrences_escalate ON occurrences (escalate_at) WHERE escalate_at IS NOT NULL;

-- SMS replies: which occurrence the latest SMS to a number was about, so that a reply from
-- that number acts on it. The number is kept only as a keyed hash (HMAC with the action-token
-- key), never in the clear.
CREATE TABLE sms_reply_targets (
    number_hash TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    sent_at     INTEGER NOT NULL
) WITHOUT ROWID;
