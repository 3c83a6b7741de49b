//! The schema-version runner of the SQL stores: the SQLite and PostgreSQL
//! backends, and (through [`SqliteSchema`](crate::SqliteSchema)) the SQLite
//! job board.
//!
//! A store's version lives in a meta table (`key = 'schema_version'`). Run
//! inside one transaction that the caller holds exclusively (SQLite's
//! `BEGIN IMMEDIATE`, a PostgreSQL advisory lock), so that two processes
//! opening a new store at once do not both create it: a missing version is
//! version 0 (a new store; but one that has the tables and lost its version
//! row is refused rather than guessed at); each migration from the found
//! version up to the newest runs in order; a version newer than the newest
//! is refused with [`PersistenceError::SchemaTooNew`], leaving the store
//! untouched. The caller commits.

use crate::PersistenceError;

/// The statements the runner needs, on a transaction of one SQL client.
/// Each maps its client's errors to a [`PersistenceError`] saying what it
/// was doing.
pub(crate) trait SchemaTx {
    /// Creates the meta table if it is missing.
    fn ensure_meta(&mut self) -> Result<(), PersistenceError>;
    /// The text of the recorded version, if there is one.
    fn recorded_version(&mut self) -> Result<Option<String>, PersistenceError>;
    /// Whether the store has the tables of a schema (its marker table).
    fn has_tables(&mut self) -> Result<bool, PersistenceError>;
    /// Runs the migration `sql` from version `from`.
    fn migrate(&mut self, from: u32, sql: &str) -> Result<(), PersistenceError>;
    /// Records `version` as the store's.
    fn record_version(&mut self, version: u32) -> Result<(), PersistenceError>;
}

/// A versioned schema: where its version is kept, and its migrations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Versioned {
    /// The backend, for errors.
    pub(crate) backend: &'static str,
    /// The table that holds the version (for messages).
    pub(crate) meta_table: &'static str,
    /// A table the first migration creates (for messages).
    pub(crate) marker_table: &'static str,
    /// `migrations[v]` takes a store from version `v` to `v + 1`.
    pub(crate) migrations: &'static [&'static str],
}

impl Versioned {
    /// The newest version: the number of migrations.
    pub(crate) const fn version(&self) -> u32 {
        self.migrations.len() as u32
    }

    /// Creates or migrates the schema of the store at `location` through
    /// `tx`, or refuses a store that is too new (see the module's
    /// documentation). The caller commits `tx`.
    pub(crate) fn prepare(
        &self,
        tx: &mut impl SchemaTx,
        location: &str,
    ) -> Result<(), PersistenceError> {
        tx.ensure_meta()?;
        let found = match tx.recorded_version()? {
            None => {
                if tx.has_tables()? {
                    return Err(PersistenceError::Backend {
                        backend: self.backend,
                        message: format!(
                            "{location} has a {} table but no schema_version row in table \
                             {}; refusing to guess its schema",
                            self.marker_table, self.meta_table
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
                    backend: self.backend,
                    message: format!(
                        "{location}: schema_version {text:?} in table {} is not a version: {e}",
                        self.meta_table
                    ),
                    source: None,
                })?,
        };
        let supported = self.version();
        if found > supported {
            return Err(PersistenceError::SchemaTooNew {
                backend: self.backend,
                location: location.to_owned(),
                found,
                supported,
            });
        }
        if found == supported {
            return Ok(());
        }
        for (from, sql) in (found..).zip(&self.migrations[found as usize..]) {
            tx.migrate(from, sql)?;
        }
        tx.record_version(supported)
    }
}
