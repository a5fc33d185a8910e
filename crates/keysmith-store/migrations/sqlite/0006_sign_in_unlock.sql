-- When an operator last cleared a user's sign-in throttle (`keysmith admin unlock`,
-- `keysmith admin reset-password`). The throttle itself lives in each server's
-- memory; a server ignores failures it counted for this user before this time, so the
-- command works on a running server without reaching it. Unix milliseconds (UTC);
-- NULL: never.
ALTER TABLE users ADD COLUMN sign_in_unlocked_at INTEGER;
