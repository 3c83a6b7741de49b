//! The PostgreSQL schema of the records, and [`PostgresSchema`]: the
//! schema-version runner (see `crate::schema`) on a PostgreSQL schema
//! (namespace), which the PostgreSQL job board uses for its own tables.
//!
//! Each store lives in one PostgreSQL schema. Its meta table holds the
//! schema version (`key = 'schema_version'`). On connect, in one
//! transaction holding an advisory lock on the schema's name (so that
//! stores connecting at once do not race to create it), the schema is
//! created if missing, then checked and migrated by the runner every SQL
//! store shares (`crate::schema`): a missing version is version 0 (unless
//! the tables exist: a schema that lost its version row is refused), each
//! migration from the found version up to the newest runs in order, and a
//! newer version is refused with [`PersistenceError::SchemaTooNew`].

use postgres::{Client, Transaction};

use super::{pg_err, quote_ident, BACKEND};
use crate::schema::{SchemaTx, Versioned};
use crate::PersistenceError;

/// `MIGRATIONS[v]` takes a schema from version `v` to `v + 1`: `v1.sql`
/// creates the tables, `v2.sql` adds the owner epoch of flow details.
const MIGRATIONS: [&str; 2] = [include_str!("v1.sql"), include_str!("v2.sql")];

/// The records' schema.
pub(super) const RECORDS: PostgresSchema = PostgresSchema::new("meta", "logbooks", &MIGRATIONS);

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = RECORDS.version();

/// Arbitrary first key of the advisory lock taken while preparing a schema.
const LOCK_CLASS: i32 = 0x7466_6c77; // "tflw"

/// A versioned set of tables in a PostgreSQL schema (namespace): the table
/// that holds its version and the migrations that build it.
/// [`prepare`](PostgresSchema::prepare) creates or migrates it as the
/// records of a [`PostgresBackend`](super::PostgresBackend) are: in one
/// transaction holding an advisory lock on the schema's name (stores
/// connecting at once do not both create it), the schema is created if
/// missing; a missing version is version 0 (but tables whose marker table
/// exists without a version row are refused rather than guessed at), each
/// migration from the found version up to [`version`](PostgresSchema::version)
/// runs in order with the schema as `search_path`, and a newer version is
/// refused with [`PersistenceError::SchemaTooNew`], leaving it untouched.
///
/// Several sets of tables may share one schema when their tables (and meta
/// tables) have distinct names.
#[derive(Debug, Clone, Copy)]
pub struct PostgresSchema {
    inner: Versioned,
}

impl PostgresSchema {
    /// Tables whose version is kept in table `meta_table` (created by
    /// [`prepare`](PostgresSchema::prepare) as `key TEXT PRIMARY KEY, value
    /// TEXT`), whose first migration creates table `marker_table`, and
    /// where `migrations[v]` (SQL statements, run as one batch) takes a
    /// schema from version `v` to `v + 1`. Both names are plain SQL
    /// identifiers, written into the statements as they are.
    pub const fn new(
        meta_table: &'static str,
        marker_table: &'static str,
        migrations: &'static [&'static str],
    ) -> Self {
        PostgresSchema {
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

    /// Creates or migrates the tables in the PostgreSQL schema `schema`
    /// (created if missing) of the database of `client` (at `location`, for
    /// messages), or refuses them when too new
    /// ([`PersistenceError::SchemaTooNew`], backend `postgres`). Other
    /// failures are [`PersistenceError::Backend`]. The session's
    /// `search_path` is left as it was.
    pub fn prepare(
        &self,
        client: &mut Client,
        schema: &str,
        location: &str,
    ) -> Result<(), PersistenceError> {
        let ident = quote_ident(schema);
        let mut tx = client
            .transaction()
            .map_err(|e| pg_err(e, "starting to prepare the schema"))?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &schema],
        )
        .map_err(|e| pg_err(e, format_args!("locking schema {schema}")))?;
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .map_err(|e| pg_err(e, format_args!("looking up schema {schema}")))?
            .is_some();
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA {ident}"))
                .map_err(|e| pg_err(e, format_args!("creating schema {schema}")))?;
        }
        let mut runner = PgTx {
            tx,
            name: schema,
            ident: &ident,
            location,
            tables: &self.inner,
        };
        self.inner.prepare(&mut runner, location)?;
        runner
            .tx
            .commit()
            .map_err(|e| pg_err(e, format_args!("committing the schema of {location}")))
    }
}

/// The runner's statements on a PostgreSQL transaction, in the schema
/// `name` (quoted: `ident`).
struct PgTx<'a> {
    tx: Transaction<'a>,
    name: &'a str,
    ident: &'a str,
    location: &'a str,
    tables: &'a Versioned,
}

impl SchemaTx for PgTx<'_> {
    fn ensure_meta(&mut self) -> Result<(), PersistenceError> {
        let meta = self.tables.meta_table;
        self.tx
            .batch_execute(&format!(
                "SET LOCAL search_path TO {}; \
                 CREATE TABLE IF NOT EXISTS {meta} \
                 (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
                self.ident
            ))
            .map_err(|e| {
                pg_err(
                    e,
                    format_args!("creating the {meta} table of schema {}", self.name),
                )
            })
    }

    fn recorded_version(&mut self) -> Result<Option<String>, PersistenceError> {
        self.tx
            .query_opt(
                &format!(
                    "SELECT value FROM {} WHERE key = 'schema_version'",
                    self.tables.meta_table
                ),
                &[],
            )
            .map_err(|e| pg_err(e, "reading the schema version"))?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(|e| pg_err(e, "reading the schema version"))
    }

    fn has_tables(&mut self) -> Result<bool, PersistenceError> {
        Ok(self
            .tx
            .query_opt(
                "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
                &[&self.name, &self.tables.marker_table],
            )
            .map_err(|e| pg_err(e, "looking for existing tables"))?
            .is_some())
    }

    fn migrate(&mut self, from: u32, sql: &str) -> Result<(), PersistenceError> {
        self.tx.batch_execute(sql).map_err(|e| {
            pg_err(
                e,
                format_args!("migrating {} from schema version {from}", self.location),
            )
        })
    }

    fn record_version(&mut self, version: u32) -> Result<(), PersistenceError> {
        self.tx
            .execute(
                &format!(
                    "INSERT INTO {} (key, value) VALUES ('schema_version', $1) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    self.tables.meta_table
                ),
                &[&version.to_string()],
            )
            .map(drop)
            .map_err(|e| pg_err(e, "recording the schema version"))
    }
}
