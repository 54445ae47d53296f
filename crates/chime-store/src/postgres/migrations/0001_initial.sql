-- The store's schema on PostgreSQL: the same tables as the SQLite adapter's (at its schema
-- version 2), so that both adapters read alike. Instants are BIGINT microseconds since the Unix
-- epoch (what the port writes is what it reads back, with integer comparisons); JSON documents
-- are TEXT, kept as written (jsonb would refuse the `\u0000` that JSON allows). Ids and other
-- keys that are ordered or paginated on are COLLATE "C": byte order, whatever the database's
-- collation, as SQLite compares them.

CREATE TABLE tasks (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_id     TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    modified_at BIGINT NOT NULL
);
CREATE INDEX tasks_by_user ON tasks (user_id, id);

-- The execution role's schedule. A row whose due_at is NULL is a tombstone: the task is
-- finished or deleted, and its version stops replays of older events from reviving it.
CREATE TABLE schedule (
    task_id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    body    TEXT,
    due_at  BIGINT,
    seq     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX schedule_by_due ON schedule (due_at) WHERE due_at IS NOT NULL;

-- The notification role's deliveries: one per (occurrence, channel, target), ever.
CREATE TABLE deliveries (
    task_id          TEXT COLLATE "C" NOT NULL,
    due_at           BIGINT NOT NULL,
    channel          TEXT COLLATE "C" NOT NULL,
    target           TEXT COLLATE "C" NOT NULL,
    user_id          TEXT COLLATE "C" NOT NULL,
    outcome          TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    detail           TEXT,
    provider_id      TEXT,
    message          TEXT,
    first_attempt_at BIGINT,
    next_attempt_at  BIGINT,
    leased_until     BIGINT,
    PRIMARY KEY (task_id, due_at, channel, target)
);
CREATE INDEX deliveries_due ON deliveries (channel, next_attempt_at) WHERE outcome = 'pending';
CREATE INDEX deliveries_pending_by_task ON deliveries (user_id, task_id) WHERE outcome = 'pending';

CREATE TABLE inbox (
    id         TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL,
    task_id    TEXT COLLATE "C" NOT NULL,
    task_name  TEXT NOT NULL,
    due_at     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    read       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX inbox_by_user ON inbox (user_id, id);
CREATE INDEX inbox_unread ON inbox (user_id) WHERE NOT read;

-- The definition role's history, built from execute_task and notification_sent.
CREATE TABLE history (
    task_id   TEXT COLLATE "C" NOT NULL,
    due_at    BIGINT NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    fired_at  BIGINT NOT NULL,
    late      BOOLEAN NOT NULL,
    skipped   BOOLEAN NOT NULL,
    coalesced BIGINT NOT NULL,
    PRIMARY KEY (task_id, due_at)
);
CREATE TABLE history_deliveries (
    task_id     TEXT COLLATE "C" NOT NULL,
    due_at      BIGINT NOT NULL,
    channel     TEXT COLLATE "C" NOT NULL,
    target      TEXT COLLATE "C" NOT NULL,
    outcome     TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    detail      TEXT,
    provider_id TEXT,
    PRIMARY KEY (task_id, due_at, channel, target)
);

CREATE TABLE push_subscriptions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

CREATE TABLE webhooks (
    user_id    TEXT COLLATE "C" PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Sequence values are taken before commit, so seq order is not commit order here: the relay
-- acknowledges exactly the seqs it published (see `OutboxStore::outbox_ack`).
CREATE TABLE outbox (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic   TEXT NOT NULL,
    key     TEXT NOT NULL,
    payload BYTEA NOT NULL
);
