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
const MIGRATIONS: [&str; 1] = [
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
];

/// The board's schema, created, migrated or refused (too new) by the
/// runner the persistence crate's SQLite backend uses.
pub(super) const BOARD_SCHEMA: SqliteSchema =
    SqliteSchema::new("jobboard_meta", "jobboard_jobs", &MIGRATIONS);
