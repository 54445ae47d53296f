-- The web role's browser sessions, shared by every web instance: by a hash of their id (the
-- cookie's value is not kept). Instants in microseconds, as everywhere else.
CREATE TABLE sessions (
    id_hash           TEXT PRIMARY KEY,
    csrf              TEXT NOT NULL,
    user_id           TEXT,
    access_token      TEXT,
    access_expires_at BIGINT,
    pending_state     TEXT,
    pending_nonce     TEXT,
    pending_verifier  TEXT,
    pending_return_to TEXT,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
