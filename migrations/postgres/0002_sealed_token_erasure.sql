-- Mirrors migrations/sqlite/0002_sealed_token_erasure.sql: sealed refresh tokens are kept only
-- while a retry may ask for them, and housekeeping finds the ones to erase by this index.
CREATE INDEX sessions_sealed_by_rotation ON sessions (rotated_at) WHERE length(sealed_token) > 0;

-- First tokens sealed by earlier releases: no retry can ask for them.
UPDATE sessions SET sealed_token = ''::bytea WHERE rotated_at IS NULL;

-- Spent tokens now go only with their session, found through refresh_tokens_by_session.
DROP INDEX refresh_tokens_by_issue;
