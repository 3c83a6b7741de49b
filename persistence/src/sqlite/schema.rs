//! The SQLite schema of the records, and [`SqliteSchema`]: the
//! schema-version runner (see `crate::schema`) on a SQLite file, which the
//! SQLite job board uses for its own tables.
//!
//! The records' version lives in the `meta` table
//! (`key = 'schema_version'`), checked and migrated on connect inside one
//! `BEGIN IMMEDIATE` transaction.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{db_err, BACKEND};
use crate::schema::{SchemaTx, Versioned};
use crate::PersistenceError;

/// `MIGRATIONS[v]` takes a database from version `v` to `v + 1`: `v1.sql`
/// creates the tables, `v2.sql` adds the owner epoch of flow details.
const MIGRATIONS: [&str; 2] = [include_str!("v1.sql"), include_str!("v2.sql")];

/// The schema of [`SqliteBackend`](super::SqliteBackend)'s records.
pub(super) const RECORDS: SqliteSchema = SqliteSchema::new("meta", "logbooks", &MIGRATIONS);

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = RECORDS.version();

/// A versioned schema in a SQLite file: the table that holds its version
/// and the migrations that build it. [`prepare`](SqliteSchema::prepare)
/// creates or migrates it as the records of a
/// [`SqliteBackend`](super::SqliteBackend) are: inside one
/// `BEGIN IMMEDIATE` transaction (two processes opening a new file at once
/// do not both create it), a missing version is version 0 (a new file; but
/// one that has the marker table and lost its version row is refused
/// rather than guessed at), each migration from the found version up to
/// [`version`](SqliteSchema::version) runs in order, and a newer version
/// is refused with [`PersistenceError::SchemaTooNew`], leaving the file
/// untouched.
///
/// Several schemas may share one file when their tables (and meta tables)
/// have distinct names.
///
/// ```
/// use taskflow_persistence::SqliteSchema;
/// const NOTES: SqliteSchema = SqliteSchema::new(
///     "notes_meta",
///     "notes",
///     &["CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"],
/// );
/// let mut conn = rusqlite::Connection::open_in_memory().unwrap();
/// NOTES.prepare(&mut conn, ":memory:")?;
/// NOTES.prepare(&mut conn, ":memory:")?; // already at its version: nothing to do
/// assert_eq!(NOTES.version(), 1);
/// # Ok::<(), taskflow_persistence::PersistenceError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SqliteSchema {
    inner: Versioned,
}

impl SqliteSchema {
    /// A schema whose version is kept in table `meta_table` (created by
    /// [`prepare`](SqliteSchema::prepare) as `key TEXT PRIMARY KEY, value
    /// TEXT`), whose first migration creates table `marker_table`, and
    /// where `migrations[v]` (SQL statements, run as one batch) takes a
    /// file from version `v` to `v + 1`. Both names are plain SQL
    /// identifiers, written into the statements as they are.
    pub const fn new(
        meta_table: &'static str,
        marker_table: &'static str,
        migrations: &'static [&'static str],
    ) -> Self {
        SqliteSchema {
            inner: Versioned {
                backend: BACKEND,
                meta_table,
                marker_table,
                migrations,
            },
        }
    }

    /// The version this build reads and writes: the number of migrations.
    pub const fn version(&self) -> u32 {
        self.inner.version()
    }

    /// Creates or migrates the schema in the database of `conn` (at
    /// `location`, for messages), or refuses one that is too new
    /// ([`PersistenceError::SchemaTooNew`], backend `sqlite`). Other
    /// failures are [`PersistenceError::Backend`].
    pub fn prepare(&self, conn: &mut Connection, location: &str) -> Result<(), PersistenceError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(e, format_args!("locking {location} to check its schema")))?;
        self.inner.prepare(
            &mut SqliteTx {
                tx: &tx,
                schema: &self.inner,
                location,
            },
            location,
        )?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing the schema of {location}")))
    }
}

/// The runner's statements on a SQLite transaction.
struct SqliteTx<'a> {
    tx: &'a Transaction<'a>,
    schema: &'a Versioned,
    location: &'a str,
}

impl SchemaTx for SqliteTx<'_> {
    fn ensure_meta(&mut self) -> Result<(), PersistenceError> {
        let meta = self.schema.meta_table;
        self.tx
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {meta} \
                 (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)"
            ))
            .map_err(|e| db_err(e, format_args!("creating the {meta} table")))
    }

    fn recorded_version(&mut self) -> Result<Option<String>, PersistenceError> {
        self.tx
            .query_row(
                &format!(
                    "SELECT CAST(value AS TEXT) FROM {} WHERE key = 'schema_version'",
                    self.schema.meta_table
                ),
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| db_err(e, "reading the schema version"))
    }

    fn has_tables(&mut self) -> Result<bool, PersistenceError> {
        self.tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [self.schema.marker_table],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| db_err(e, "looking for existing tables"))
    }

    fn migrate(&mut self, from: u32, sql: &str) -> Result<(), PersistenceError> {
        self.tx.execute_batch(sql).map_err(|e| {
            db_err(
                e,
                format_args!("migrating {} from schema version {from}", self.location),
            )
        })
    }

    fn record_version(&mut self, version: u32) -> Result<(), PersistenceError> {
        self.tx
            .execute(
                &format!(
                    "INSERT INTO {} (key, value) VALUES ('schema_version', ?1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    self.schema.meta_table
                ),
                [version.to_string()],
            )
            .map(drop)
            .map_err(|e| db_err(e, "recording the schema version"))
    }
}
