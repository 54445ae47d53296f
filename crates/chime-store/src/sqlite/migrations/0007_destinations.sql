-- A user's destinations (issue 19): named URLs of chat and push services (ntfy, Gotify,
-- Telegram, Slack, Discord, Matrix). `name` and `url` are encrypted above the port (the URL
-- carries the service's token). The id is unique across users, so a service's callback that
-- knows only the id finds its destination; the index lists one user's, oldest first.
CREATE TABLE destinations (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    url        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX destinations_by_user ON destinations (user_id, created_at, id);
