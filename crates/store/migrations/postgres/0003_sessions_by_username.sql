-- Ending a user in every realm (password change, deleted account) deletes
-- by user name alone; (realm, username) cannot serve that.
CREATE INDEX sessions_by_username ON sessions (username);
