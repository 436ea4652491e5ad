-- Failed-login records shared by every instance (sessiond_core::limiter).
-- A row may be deleted once `forget_at` has passed.
CREATE TABLE login_failures (
    key        TEXT PRIMARY KEY,
    count      INTEGER NOT NULL,
    last       BIGINT NOT NULL,
    forget_at  BIGINT NOT NULL
);
CREATE INDEX login_failures_by_forget ON login_failures (forget_at);
