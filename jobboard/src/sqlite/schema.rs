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
pub(super) const MIGRATIONS: [&str; 2] = [
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
];

/// The board's schema, created, migrated or refused (too new) by the
/// runner the persistence crate's SQLite backend uses.
pub(super) const BOARD_SCHEMA: SqliteSchema =
    SqliteSchema::new("jobboard_meta", "jobboard_jobs", &MIGRATIONS);
