-- latchkey schema, PostgreSQL flavour: mirrors migrations/sqlite/0001_init.sql. Times are Unix
-- milliseconds (BIGINT); ids are UUID text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- Compared exactly as given ("C" collation: byte order, no case folding).
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    not_before    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    client_id           TEXT NOT NULL,
    device              TEXT NOT NULL,
    ip                  TEXT NOT NULL,
    scope               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT NOT NULL,
    idle_expires_at     BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    revoked_at          BIGINT,
    generation          BIGINT NOT NULL,
    rotated_at          BIGINT,
    sealed_token        BYTEA NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
-- For housekeeping: sessions long expired or revoked are purged in batches.
CREATE INDEX sessions_by_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    -- A token issued longer ago than the idle lifetime is spent or dead: purged after that.
    issued_at  BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_issue ON refresh_tokens (issued_at);

-- The revocation feed. `seq` is handed out by the one row of revocation_counter, whose row lock is
-- held until the writing transaction commits: sequence numbers are therefore in commit order, and a
-- reader that has seen seq n can never later find a committed event below n (a plain SEQUENCE
-- cannot promise that, since its numbers are taken before commit).
CREATE TABLE revocations (
    seq        BIGINT PRIMARY KEY,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    not_before BIGINT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);
CREATE TABLE revocation_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO revocation_counter (id, seq) VALUES (1, 0);

CREATE TABLE audit_events (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    session_id TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (at);

CREATE TABLE login_throttle (
    username          TEXT COLLATE "C" PRIMARY KEY,
    failures          BIGINT NOT NULL,
    window_started_at BIGINT NOT NULL,
    locked_until      BIGINT NOT NULL,
    lockouts          BIGINT NOT NULL
);
CREATE INDEX login_throttle_by_window ON login_throttle (window_started_at);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    sealed_private BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);
