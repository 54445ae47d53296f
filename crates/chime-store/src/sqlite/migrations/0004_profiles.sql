-- A user's profile (issue 16: settings on the server), and in-app items that arrived during
-- the owner's quiet hours (shown without a sound).
-- The profile: `body` is the profile's stored JSON,
-- encrypted whole above the port (it holds an email address and a phone number).
CREATE TABLE profiles (
    user_id    TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE inbox ADD COLUMN silent     INTEGER NOT NULL DEFAULT 0;
