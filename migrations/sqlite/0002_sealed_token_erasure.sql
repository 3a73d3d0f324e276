-- Sealed refresh tokens are kept only while a retry may ask for them: never the first token of a
-- session, and a rotation's successor for the grace window only. Housekeeping then erases it (an
-- empty value), finding the rows still holding one by this index.
CREATE INDEX sessions_sealed_by_rotation ON sessions (rotated_at) WHERE length(sealed_token) > 0;

-- First tokens sealed by earlier releases: no retry can ask for them.
UPDATE sessions SET sealed_token = X'' WHERE rotated_at IS NULL;

-- Spent tokens now go only with their session, found through refresh_tokens_by_session.
DROP INDEX refresh_tokens_by_issue;
