-- latchkey schema, SQLite flavour. Times are Unix milliseconds (INTEGER); ids are UUID text.
-- migrations/postgres/ mirrors these files by name.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- Compared exactly as given (BINARY collation): "Alice" and "alice" are two users.
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    -- Space-separated scopes the user holds.
    scopes        TEXT NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    -- LogoutAll cutoff: access tokens issued before it are dead.
    not_before    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- A session is a token family. Exactly one refresh token of it is live: the one of `generation`.
CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    client_id           TEXT NOT NULL,
    device              TEXT NOT NULL,
    ip                  TEXT NOT NULL,
    scope               TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at          INTEGER,
    generation          INTEGER NOT NULL,
    -- When generation - 1 was spent; a retry of that token is honoured for the grace window after.
    rotated_at          INTEGER,
    -- The live refresh token, AES-GCM sealed under the master key, so a retry gets it back.
    sealed_token        BLOB NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
-- For housekeeping: sessions long expired or revoked are purged in batches.
CREATE INDEX sessions_by_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token ever issued, by hash: a spent one presented again is recognised as reuse.
CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    -- A token issued longer ago than the idle lifetime is spent or dead: purged after that.
    issued_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_issue ON refresh_tokens (issued_at);

-- The revocation feed: one global order, resumable by seq. `seq` is handed out by the one row of
-- revocation_counter inside the writing transaction (the same scheme as on PostgreSQL, where it keeps
-- sequence numbers in commit order).
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY,
    -- 'session', 'jti' or 'user'
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    -- For 'user': the cutoff.
    not_before INTEGER,
    -- When no token the event concerns can still be valid; the event may be forgotten then.
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);
CREATE TABLE revocation_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO revocation_counter (id, seq) VALUES (1, 0);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    session_id TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (at);

-- Failed-login bookkeeping per username, whether or not the user exists.
CREATE TABLE login_throttle (
    username          TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL,
    locked_until      INTEGER NOT NULL,
    lockouts          INTEGER NOT NULL
);
CREATE INDEX login_throttle_by_window ON login_throttle (window_started_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    -- PKCS#8, AES-GCM sealed under the master key (context: the kid).
    sealed_private BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);
