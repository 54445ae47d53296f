-- The web role's browser sessions, by a hash of their id (the cookie's value is not kept).
CREATE TABLE sessions (
    id_hash           TEXT PRIMARY KEY,
    csrf              TEXT NOT NULL,
    user_id           TEXT,
    access_token      TEXT,
    access_expires_at INTEGER,
    pending_state     TEXT,
    pending_nonce     TEXT,
    pending_verifier  TEXT,
    pending_return_to TEXT,
    expires_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
