-- The PostgreSQL job board, schema version 2: board events. Triggers on
-- `jobboard_jobs` write every change of a job to `jobboard_events` inside
-- the transaction that makes it, whoever writes (any board, any process,
-- plain SQL), and `pg_notify` the board's channel
-- (`taskflow_jobboard_<oid of the schema>`), so watchers wake at the
-- commit. Each board's watcher reads the rows after the last `seq` it saw;
-- `purge` trims the rows older than ten minutes. A renewal writes no
-- event; only a control request sets `control` to a request (reopen
-- clears it).
--
-- Commit order. A sequence (`bigserial`, identity) hands out values when
-- a row is inserted, not when its transaction commits: a transaction that
-- took 7 may commit after one that took 8, and a watcher that had read
-- up to 8 would skip 7 for ever. So `seq` comes from the single row of
-- `jobboard_event_seq`, which the trigger updates: the row stays locked
-- until the transaction ends, so the next writer of an event waits for
-- that commit (or rollback) before taking the next number. Numbers are
-- therefore taken in commit order and without gaps (a rollback gives its
-- number back), and a reader that sees `seq` n sees every event below it;
-- a gap a watcher finds means trimmed events (`Missed`). The price: the
-- changes that make events (not renewals, not reads) commit one at a
-- time. Every statement of the board is its own transaction and takes the
-- job rows it changes before its triggers run (row triggers fire at the
-- end of the statement), so waiting on the counter cannot deadlock.
CREATE TABLE jobboard_event_seq (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    -- The last event's `seq` (0: none yet).
    seq BIGINT NOT NULL
);
INSERT INTO jobboard_event_seq (seq) VALUES (0);
CREATE TABLE jobboard_events (
    seq BIGINT PRIMARY KEY,
    job UUID NOT NULL,
    -- post, claim, abandon, consume, trash, request, reopen or remove.
    kind TEXT NOT NULL,
    -- When it was written, on the server's clock (ms since the Unix epoch).
    at BIGINT NOT NULL
);
CREATE INDEX jobboard_events_at ON jobboard_events (at);
-- `search_path FROM CURRENT`: the board's schema (the migration runs in
-- it), whatever the writer's session says.
CREATE FUNCTION jobboard_record_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    event_kind TEXT;
    event_job UUID;
    n BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        event_kind := 'post';
        event_job := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        event_kind := 'remove';
        event_job := OLD.id;
    ELSIF TG_ARGV[0] = 'request' THEN
        event_kind := 'request';
        event_job := NEW.id;
    ELSE
        event_job := NEW.id;
        event_kind := CASE
            WHEN NEW.epoch > OLD.epoch THEN 'claim'
            WHEN OLD.state = 'COMPLETE' AND NEW.state <> 'COMPLETE' THEN 'reopen'
            WHEN OLD.state <> 'COMPLETE' AND NEW.state = 'COMPLETE'
                AND NEW.outcome = '"consumed"' THEN 'consume'
            WHEN OLD.state <> 'COMPLETE' AND NEW.state = 'COMPLETE' THEN 'trash'
            WHEN OLD.state = 'CLAIMED' AND NEW.state = 'UNCLAIMED' THEN 'abandon'
            END;
        IF event_kind IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    UPDATE jobboard_event_seq SET seq = seq + 1 RETURNING seq INTO n;
    INSERT INTO jobboard_events (seq, job, kind, at)
        VALUES (n, event_job, event_kind,
                floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    PERFORM pg_notify('taskflow_jobboard_' || (SELECT oid FROM pg_namespace
                                                WHERE nspname = TG_TABLE_SCHEMA)::text,
                      'event');
    RETURN NULL;
END
$$;
CREATE TRIGGER jobboard_jobs_posted AFTER INSERT ON jobboard_jobs
    FOR EACH ROW EXECUTE FUNCTION jobboard_record_event();
CREATE TRIGGER jobboard_jobs_removed AFTER DELETE ON jobboard_jobs
    FOR EACH ROW EXECUTE FUNCTION jobboard_record_event();
CREATE TRIGGER jobboard_jobs_changed AFTER UPDATE ON jobboard_jobs
    FOR EACH ROW
    WHEN (NEW.epoch > OLD.epoch OR NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION jobboard_record_event();
CREATE TRIGGER jobboard_jobs_requested AFTER UPDATE OF control ON jobboard_jobs
    FOR EACH ROW WHEN (NEW.control IS NOT NULL)
    EXECUTE FUNCTION jobboard_record_event('request');
