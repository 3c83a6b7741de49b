-- The PostgreSQL job board, schema version 1. Tables start with
-- `jobboard_`, so one schema may also hold the records of a
-- `taskflow_persistence::PostgresBackend`. Times are milliseconds since the
-- Unix epoch on the server's clock.
CREATE TABLE jobboard_jobs (
    -- Posting order: an identity never reused, even after a purge.
    sequence BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- JSON text, as posted.
    details TEXT NOT NULL,
    logbook UUID,
    flow_detail UUID,
    priority INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    -- UNCLAIMED, CLAIMED or COMPLETE.
    state TEXT NOT NULL,
    owner TEXT,
    epoch BIGINT NOT NULL,
    lease_expires_at BIGINT,
    -- JSON text of the outcome, once complete.
    outcome TEXT,
    completed_at BIGINT,
    not_before BIGINT,
    unique_key TEXT,
    execution_key TEXT,
    -- stop or cancel.
    control TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    -- The token of the last claim, completion, abandon or reopen, so a
    -- call retried after its connection broke knows whether its first try
    -- committed.
    last_op UUID
);
CREATE INDEX jobboard_jobs_open ON jobboard_jobs (priority DESC, sequence)
    WHERE state <> 'COMPLETE';
CREATE INDEX jobboard_jobs_completed ON jobboard_jobs (completed_at)
    WHERE state = 'COMPLETE';
CREATE INDEX jobboard_jobs_leases ON jobboard_jobs (lease_expires_at)
    WHERE state = 'CLAIMED';
CREATE INDEX jobboard_jobs_scheduled ON jobboard_jobs (not_before)
    WHERE not_before IS NOT NULL AND control IS NULL AND state <> 'COMPLETE';
-- The database's own word on keys: at most one job not complete per
-- uniqueness key (a job completing drops out of the index, freeing the
-- key), at most one job per execution key (until purged).
CREATE UNIQUE INDEX jobboard_jobs_unique_key ON jobboard_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state <> 'COMPLETE';
CREATE UNIQUE INDEX jobboard_jobs_execution_key ON jobboard_jobs (execution_key)
    WHERE execution_key IS NOT NULL;
CREATE TABLE jobboard_entities (
    name TEXT NOT NULL PRIMARY KEY,
    -- JSON text.
    meta TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
