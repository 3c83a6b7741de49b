//! The SQLite schema, its version and its migrations.
//!
//! The version lives in the `meta` table (`key = 'schema_version'`). On
//! connect, inside one `BEGIN IMMEDIATE` transaction (so two processes
//! opening a new file at once do not both create it): a missing version is
//! version 0 (a new database; but a database that has the tables and lost
//! its version row is refused rather than guessed at); each migration from the found version up to
//! [`VERSION`] runs in order; a version newer than [`VERSION`] is refused
//! with [`PersistenceError::SchemaTooNew`], leaving the file untouched.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::db_err;
use crate::PersistenceError;

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = 2;

/// `MIGRATIONS[v]` takes a database from version `v` to `v + 1`: `v1.sql`
/// creates the tables, `v2.sql` adds the owner epoch of flow details.
const MIGRATIONS: [&str; VERSION as usize] = [include_str!("v1.sql"), include_str!("v2.sql")];

/// Creates or migrates the schema, or refuses a database that is too new.
pub(super) fn prepare(conn: &mut Connection, location: &str) -> Result<(), PersistenceError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db_err(e, format_args!("locking {location} to check its schema")))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
    )
    .map_err(|e| db_err(e, "creating the meta table"))?;
    let found: Option<String> = tx
        .query_row(
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| db_err(e, "reading the schema version"))?;
    let found = match found {
        None => {
            let has_tables = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'logbooks'",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(|e| db_err(e, "looking for existing tables"))?;
            if has_tables > 0 {
                return Err(PersistenceError::Backend {
                    backend: super::BACKEND,
                    message: format!(
                        "{location} has a logbooks table but no schema_version row in table \
                         meta; refusing to guess its schema"
                    ),
                    source: None,
                });
            }
            0
        }
        Some(text) => text
            .trim()
            .parse::<u32>()
            .map_err(|e| PersistenceError::Backend {
                backend: super::BACKEND,
                message: format!(
                    "{location}: schema_version {text:?} in table meta is not a version: {e}"
                ),
                source: None,
            })?,
    };
    if found > VERSION {
        return Err(PersistenceError::SchemaTooNew {
            backend: super::BACKEND,
            location: location.to_owned(),
            found,
            supported: VERSION,
        });
    }
    if found == VERSION {
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(|e| {
            db_err(
                e,
                format_args!("migrating {location} from schema version {from}"),
            )
        })?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [VERSION.to_string()],
    )
    .map_err(|e| db_err(e, "recording the schema version"))?;
    tx.commit()
        .map_err(|e| db_err(e, format_args!("committing the schema of {location}")))
}
