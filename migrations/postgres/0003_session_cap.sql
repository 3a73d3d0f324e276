-- The live sessions of each user, by last use (mirrors migrations/sqlite/). A login beyond the cap
-- revokes the user's least recently used live session, and LogoutAll revokes every live one: both
-- read this index, which holds live rows only, however many revoked sessions linger until
-- housekeeping purges them.
CREATE INDEX sessions_live_by_use ON sessions (user_id, last_used_at) WHERE revoked_at IS NULL;
