-- The near cache's invalidation channel (decision 0022): every change to a
-- session row, and to a user's supersede state, is announced on the channel
-- named after this schema, delivered when the change commits. Payloads:
-- 's' || hex of the session id, 'u' || user name.
CREATE FUNCTION notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA, 's' || encode(OLD.id, 'hex'));
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_session_change();

CREATE FUNCTION notify_user_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA, 'u' || NEW.username);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_changed AFTER INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_user_change();
