-- Deliveries gain a target (one push delivery per subscription), a pending state with retry
-- bookkeeping and a lease, and the provider's message id.
CREATE TABLE deliveries_v2 (
    task_id          TEXT NOT NULL,
    due_at           INTEGER NOT NULL,
    channel          TEXT NOT NULL,
    target           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    detail           TEXT,
    provider_id      TEXT,
    message          TEXT,
    first_attempt_at INTEGER,
    next_attempt_at  INTEGER,
    leased_until     INTEGER,
    PRIMARY KEY (task_id, due_at, channel, target)
) WITHOUT ROWID;
INSERT INTO deliveries_v2 (task_id, due_at, channel, target, user_id, outcome, attempts, at, detail)
    SELECT task_id, due_at, channel, '', user_id, outcome, attempts, at, detail FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (channel, next_attempt_at) WHERE outcome = 'pending';
CREATE INDEX deliveries_pending_by_task ON deliveries (user_id, task_id) WHERE outcome = 'pending';

CREATE TABLE history_deliveries_v2 (
    task_id     TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    detail      TEXT,
    provider_id TEXT,
    PRIMARY KEY (task_id, due_at, channel, target)
) WITHOUT ROWID;
INSERT INTO history_deliveries_v2 (task_id, due_at, channel, target, outcome, attempts, at, detail)
    SELECT task_id, due_at, channel, '', outcome, attempts, at, detail FROM history_deliveries;
DROP TABLE history_deliveries;
ALTER TABLE history_deliveries_v2 RENAME TO history_deliveries;

CREATE TABLE push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

CREATE TABLE webhooks (
    user_id    TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
