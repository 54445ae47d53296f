CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tasks_by_user ON tasks (user_id, id);

-- The execution role's schedule. A row whose due_at is NULL is a tombstone: the task is
-- finished or deleted, and its version stops replays of older events from reviving it.
CREATE TABLE schedule (
    task_id  TEXT PRIMARY KEY,
    user_id  TEXT NOT NULL,
    version  INTEGER NOT NULL,
    body     TEXT,
    due_at   INTEGER,
    seq      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX schedule_by_due ON schedule (due_at) WHERE due_at IS NOT NULL;

-- The notification role's deliveries: one per (occurrence, channel), ever.
CREATE TABLE deliveries (
    task_id   TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    channel   TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT,
    PRIMARY KEY (task_id, due_at, channel)
) WITHOUT ROWID;

CREATE TABLE inbox (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    task_name  TEXT NOT NULL,
    due_at     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX inbox_by_user ON inbox (user_id, id);
CREATE INDEX inbox_unread ON inbox (user_id) WHERE read = 0;

-- The definition role's history, built from execute_task and notification_sent.
CREATE TABLE history (
    task_id   TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    user_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    fired_at  INTEGER NOT NULL,
    late      INTEGER NOT NULL,
    skipped   INTEGER NOT NULL,
    coalesced INTEGER NOT NULL,
    PRIMARY KEY (task_id, due_at)
) WITHOUT ROWID;
CREATE TABLE history_deliveries (
    task_id   TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    channel   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT,
    PRIMARY KEY (task_id, due_at, channel)
) WITHOUT ROWID;

CREATE TABLE outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    key     TEXT NOT NULL,
    payload BLOB NOT NULL
);
