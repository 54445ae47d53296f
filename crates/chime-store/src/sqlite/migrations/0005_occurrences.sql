-- Occurrence state (issue 16): one row per fired occurrence (task id + due instant), written
-- in the `fire_due` claim that fires it, so an acknowledgement can never race ahead of it.
-- `acked_at` NULL: open until `expires_at` (then expired); otherwise acknowledged on
-- `acked_channel`.
CREATE TABLE occurrences (
    task_id       TEXT NOT NULL,
    due_at        INTEGER NOT NULL,
    user_id       TEXT NOT NULL,
    fired_at      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    acked_at      INTEGER,
    acked_channel TEXT,
    PRIMARY KEY (task_id, due_at)
) WITHOUT ROWID;
CREATE INDEX occurrences_open ON occurrences (user_id, due_at) WHERE acked_at IS NULL;
