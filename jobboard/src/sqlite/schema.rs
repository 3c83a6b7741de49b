//! The board's SQLite schema, its version and its migrations.
//!
//! The version lives in table `jobboard_meta` (`key = 'schema_version'`).
//! On open, inside one `BEGIN IMMEDIATE` transaction (so two processes
//! opening a new file at once do not both create it): a missing version is
//! version 0 (a new database; but one that has the tables and lost its
//! version row is refused rather than guessed at); each migration from the
//! found version up to [`VERSION`] runs in order; a newer version is
//! refused, leaving the file untouched.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{db_err, BOARD};
use crate::JobBoardError;

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = 1;

/// `MIGRATIONS[v]` takes a database from version `v` to `v + 1`. Table
/// names start with `jobboard_`, so one file may also hold the records of a
/// `taskflow_persistence::SqliteBackend`.
const MIGRATIONS: [&str; VERSION as usize] = [
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

/// Creates or migrates the schema, or refuses a database that is too new,
/// in one `BEGIN IMMEDIATE` transaction (two processes opening a new file
/// at once do not both create it).
pub(super) fn prepare(conn: &mut Connection, location: &str) -> Result<(), JobBoardError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_err(e, format_args!("locking {location} to check its schema")))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS jobboard_meta \
         (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
    )
    .map_err(|e| db_err(e, "creating the jobboard_meta table"))?;
    let found: Option<String> = tx
        .query_row(
            "SELECT CAST(value AS TEXT) FROM jobboard_meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| db_err(e, "reading the schema version"))?;
    let found = match found {
        None => {
            let has_jobs: i64 = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
                     AND name = 'jobboard_jobs'",
                    [],
                    |row| row.get(0),
                )
                .map_err(|e| db_err(e, "looking for existing tables"))?;
            if has_jobs > 0 {
                return Err(JobBoardError::Backend {
                    board: BOARD,
                    message: format!(
                        "{location} has a jobboard_jobs table but no schema_version row in \
                         table jobboard_meta; refusing to guess its schema"
                    ),
                    source: None,
                });
            }
            0
        }
        Some(text) => text
            .trim()
            .parse::<u32>()
            .map_err(|e| JobBoardError::Backend {
                board: BOARD,
                message: format!(
                    "{location}: schema_version {text:?} in table jobboard_meta is not a \
                     version: {e}"
                ),
                source: None,
            })?,
    };
    if found > VERSION {
        return Err(JobBoardError::Backend {
            board: BOARD,
            message: format!(
                "{location} has board schema version {found}, newer than this build \
                 supports ({VERSION}); upgrade taskflow-jobboard"
            ),
            source: None,
        });
    }
    if found == VERSION {
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(|e| {
            db_err(
                e,
                format_args!("migrating {location} from board schema version {from}"),
            )
        })?;
    }
    tx.execute(
        "INSERT INTO jobboard_meta (key, value) VALUES ('schema_version', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [VERSION.to_string()],
    )
    .map_err(|e| db_err(e, "recording the schema version"))?;
    tx.commit()
        .map_err(|e| db_err(e, format_args!("committing the schema of {location}")))
}
