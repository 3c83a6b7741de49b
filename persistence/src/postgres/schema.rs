//! The PostgreSQL schema, its version and its migrations.
//!
//! Each backend lives in one PostgreSQL schema (namespace). Its `meta` table
//! holds the schema version (`key = 'schema_version'`). On connect, in one
//! transaction holding an advisory lock on the schema's name (so that
//! backends connecting at once do not race to create it), the schema is
//! created if missing, then checked and migrated by the runner every SQL
//! store shares (`crate::schema`): a missing version is version 0 (unless
//! the tables exist: a schema that lost its version row is refused), each
//! migration from the found version up to [`VERSION`] runs in order, and a
//! version newer than [`VERSION`] is refused with
//! [`PersistenceError::SchemaTooNew`].

use postgres::{Client, Transaction};

use super::{pg_err, BACKEND};
use crate::schema::{SchemaTx, Versioned};
use crate::PersistenceError;

/// `MIGRATIONS[v]` takes a schema from version `v` to `v + 1`: `v1.sql`
/// creates the tables, `v2.sql` adds the owner epoch of flow details.
const MIGRATIONS: [&str; 2] = [include_str!("v1.sql"), include_str!("v2.sql")];

/// The records' schema.
const RECORDS: Versioned = Versioned {
    backend: BACKEND,
    meta_table: "meta",
    marker_table: "logbooks",
    migrations: &MIGRATIONS,
};

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = RECORDS.version();

/// Arbitrary first key of the advisory lock taken while preparing a schema.
const LOCK_CLASS: i32 = 0x7466_6c77; // "tflw"

/// Creates or migrates the schema `name` (quoted: `ident`), or refuses one
/// that is too new.
pub(super) fn prepare(
    client: &mut Client,
    name: &str,
    ident: &str,
    location: &str,
) -> Result<(), PersistenceError> {
    let mut tx = client
        .transaction()
        .map_err(|e| pg_err(e, "starting to prepare the schema"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&LOCK_CLASS, &name],
    )
    .map_err(|e| pg_err(e, format_args!("locking schema {name}")))?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
        .map_err(|e| pg_err(e, format_args!("looking up schema {name}")))?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {ident}"))
            .map_err(|e| pg_err(e, format_args!("creating schema {name}")))?;
    }
    let mut runner = PgTx {
        tx,
        name,
        ident,
        location,
    };
    RECORDS.prepare(&mut runner, location)?;
    runner
        .tx
        .commit()
        .map_err(|e| pg_err(e, format_args!("committing the schema of {location}")))
}

/// The runner's statements on a PostgreSQL transaction, in the schema
/// `name` (quoted: `ident`).
struct PgTx<'a> {
    tx: Transaction<'a>,
    name: &'a str,
    ident: &'a str,
    location: &'a str,
}

impl SchemaTx for PgTx<'_> {
    fn ensure_meta(&mut self) -> Result<(), PersistenceError> {
        self.tx
            .batch_execute(&format!(
                "SET LOCAL search_path TO {}; \
                 CREATE TABLE IF NOT EXISTS meta \
                 (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
                self.ident
            ))
            .map_err(|e| {
                pg_err(
                    e,
                    format_args!("creating the meta table of schema {}", self.name),
                )
            })
    }

    fn recorded_version(&mut self) -> Result<Option<String>, PersistenceError> {
        self.tx
            .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
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
                &[&self.name, &RECORDS.marker_table],
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
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&version.to_string()],
            )
            .map(drop)
            .map_err(|e| pg_err(e, "recording the schema version"))
    }
}
