//! The board's SQLite schema, its version and its migrations.
//!
//! The version lives in table `jobboard_meta` (`key = 'schema_version'`).
//! On open, inside one `BEGIN IMMEDIATE` transaction (so two processes
//! opening a new file at once do not both create it): a missing version is
//! version 0 (a new database; but one that has the tables and lost its
//! version row is refused rather than guessed at); each migration from the
//! found version up to [`VERSION`] runs in order; a newer version is
//! refused ([`JobBoardError::SchemaTooNew`](crate::JobBoardError::SchemaTooNew)),
//! leaving the file untouched. The runner is the one of
//! [`taskflow_persistence::SqliteBackend`] ([`SqliteSchema`]).

use taskflow_persistence::SqliteSchema;

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = BOARD_SCHEMA.version();

/// `MIGRATIONS[v]` takes a database from version `v` to `v + 1`. Table
/// names start with `jobboard_`, so one file may also hold the records of a
/// `taskflow_persistence::SqliteBackend`.
pub(super) const MIGRATIONS: [&str; 3] = [
    // Version 1. `sequence` is the rowid: AUTOINCREMENT never reuses one,
    // even after a purge, so posting order is total.
    "CREATE TABLE jobboard_jobs (
        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        details TEXT NOT NULL,
        logbook TEXT,
        flow_detail TEXT,
        priority INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        epoch INTEGER NOT NULL,
        lease_expires_at INTEGER,
        outcome TEXT,
        completed_at INTEGER
    );
    CREATE INDEX jobboard_jobs_open ON jobboard_jobs (state, priority DESC, sequence);
    CREATE INDEX jobboard_jobs_completed ON jobboard_jobs (completed_at)
        WHERE state = 'COMPLETE';
    CREATE TABLE jobboard_entities (
        name TEXT NOT NULL PRIMARY KEY,
        meta TEXT NOT NULL,
        registered_at INTEGER NOT NULL
    );",
    // Version 2: scheduled, unique and keyed jobs, control requests and
    // revisions. Jobs of version 1 read as posted without any of them, at
    // revision 1. The two partial unique indexes are the board's last word
    // on keys (posts check them first, in the same transaction, to name
    // the holder): at most one job not complete per uniqueness key, at most
    // one job per execution key.
    "ALTER TABLE jobboard_jobs ADD COLUMN not_before INTEGER;
    ALTER TABLE jobboard_jobs ADD COLUMN unique_key TEXT;
    ALTER TABLE jobboard_jobs ADD COLUMN execution_key TEXT;
    ALTER TABLE jobboard_jobs ADD COLUMN control TEXT;
    ALTER TABLE jobboard_jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
    CREATE UNIQUE INDEX jobboard_jobs_unique_key ON jobboard_jobs (unique_key)
        WHERE unique_key IS NOT NULL AND state != 'COMPLETE';
    CREATE UNIQUE INDEX jobboard_jobs_execution_key ON jobboard_jobs (execution_key)
        WHERE execution_key IS NOT NULL;
    CREATE INDEX jobboard_jobs_scheduled ON jobboard_jobs (not_before)
        WHERE not_before IS NOT NULL AND control IS NULL AND state != 'COMPLETE';",
    // Version 3: board events. Triggers write every change of a job to
    // `jobboard_events` inside the transaction that makes it, whoever
    // writes (any process, any build from this one on), so the rows are in
    // commit order (`seq` is AUTOINCREMENT: never reused). Each board's
    // watcher reads the rows after the last it saw; `purge` trims the rows
    // older than a few minutes. A renewal writes no event; only a control
    // request sets `control` to a request (reopen clears it).
    "CREATE TABLE jobboard_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job TEXT NOT NULL,
        kind TEXT NOT NULL,
        at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    );
    CREATE TRIGGER jobboard_jobs_posted AFTER INSERT ON jobboard_jobs
    BEGIN
        INSERT INTO jobboard_events (job, kind) VALUES (NEW.id, 'post');
    END;
    CREATE TRIGGER jobboard_jobs_removed AFTER DELETE ON jobboard_jobs
    BEGIN
        INSERT INTO jobboard_events (job, kind) VALUES (OLD.id, 'remove');
    END;
    CREATE TRIGGER jobboard_jobs_changed AFTER UPDATE ON jobboard_jobs
    WHEN NEW.epoch > OLD.epoch
        OR (OLD.state = 'CLAIMED' AND NEW.state = 'UNCLAIMED')
        OR (OLD.state != 'COMPLETE' AND NEW.state = 'COMPLETE')
        OR (OLD.state = 'COMPLETE' AND NEW.state != 'COMPLETE')
    BEGIN
        INSERT INTO jobboard_events (job, kind) VALUES (NEW.id, CASE
            WHEN NEW.epoch > OLD.epoch THEN 'claim'
            WHEN OLD.state = 'COMPLETE' THEN 'reopen'
            WHEN NEW.state = 'COMPLETE' AND NEW.outcome = '\"consumed\"' THEN 'consume'
            WHEN NEW.state = 'COMPLETE' THEN 'trash'
            ELSE 'abandon' END);
    END;
    CREATE TRIGGER jobboard_jobs_requested AFTER UPDATE OF control ON jobboard_jobs
    WHEN NEW.control IS NOT NULL
    BEGIN
        INSERT INTO jobboard_events (job, kind) VALUES (NEW.id, 'request');
    END;",
];

/// The board's schema, created, migrated or refused (too new) by the
/// runner the persistence crate's SQLite backend uses.
pub(super) const BOARD_SCHEMA: SqliteSchema =
    SqliteSchema::new("jobboard_meta", "jobboard_jobs", &MIGRATIONS);
