-- Account events (migrations/sqlite/ has the same): what happened to each account, for the user
-- (ListActivity), operators (ListEvents) and notification services (WatchEvents). Written in the
-- transaction of what they record. `seq` is handed out by the one row of event_counter inside the
-- writing transaction, as the revocation feed's is, so that numbers follow commit order and a
-- reader resuming after `seq` misses nothing. They replace the audit records, which carry over.
CREATE TABLE account_events (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    -- Kept after the user is deleted, for the record.
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    device     TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    new_device BOOLEAN NOT NULL DEFAULT FALSE,
    detail     TEXT NOT NULL DEFAULT ''
);
-- A user's events, newest first (ListActivity, ListEvents for one user).
CREATE INDEX account_events_by_user ON account_events (user_id, seq);
-- A user's recent logins from an address, and from a named device, for `new_device`: each
-- lookup seeks straight to the logins that match, however many logins the user has made (a
-- service account logging in every few minutes makes tens of thousands in 90 days).
CREATE INDEX account_events_by_ip ON account_events (user_id, kind, ip, at);
CREATE INDEX account_events_by_device ON account_events (user_id, kind, device, at);
-- Retention: housekeeping deletes the oldest.
CREATE INDEX account_events_by_time ON account_events (at);

CREATE TABLE event_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);

INSERT INTO account_events (seq, at, user_id, kind, session_id)
SELECT id, at, COALESCE(user_id, ''),
       CASE kind
           WHEN 'revoke' THEN 'session_revoked'
           WHEN 'refresh_token_reuse' THEN 'reuse_detected'
           WHEN 'password_change' THEN 'password_changed'
           WHEN 'disable' THEN 'disabled'
           ELSE kind
       END,
       COALESCE(session_id, '')
FROM audit_events;
INSERT INTO event_counter (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM account_events;
DROP TABLE audit_events;
