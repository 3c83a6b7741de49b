//! The PostgreSQL schema, its version and its migrations.
//!
//! Each backend lives in one PostgreSQL schema (namespace). Its `meta` table
//! holds the schema version (`key = 'schema_version'`). On connect, in one
//! transaction holding an advisory lock on the schema's name (so that
//! backends connecting at once do not race to create it): the schema is
//! created if missing, a missing version is version 0 (unless the tables
//! exist: a schema that lost its version row is refused), each migration from
//! the found version up to [`VERSION`] runs in order, and a version newer
//! than [`VERSION`] is refused with [`PersistenceError::SchemaTooNew`].

use postgres::Client;

use super::{pg_err, BACKEND};
use crate::PersistenceError;

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = 2;

/// `MIGRATIONS[v]` takes a schema from version `v` to `v + 1`: `v1.sql`
/// creates the tables, `v2.sql` adds the owner epoch of flow details.
const MIGRATIONS: [&str; VERSION as usize] = [include_str!("v1.sql"), include_str!("v2.sql")];

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
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {ident}; \
         CREATE TABLE IF NOT EXISTS meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)"
    ))
    .map_err(|e| pg_err(e, format_args!("creating the meta table of schema {name}")))?;
    let found: Option<String> = tx
        .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .map_err(|e| pg_err(e, "reading the schema version"))?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(|e| pg_err(e, "reading the schema version"))?;
    let found = match found {
        None => {
            let has_tables = tx
                .query_opt(
                    "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'logbooks'",
                    &[&name],
                )
                .map_err(|e| pg_err(e, "looking for existing tables"))?
                .is_some();
            if has_tables {
                return Err(PersistenceError::Backend {
                    backend: BACKEND,
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
                backend: BACKEND,
                message: format!(
                    "{location}: schema_version {text:?} in table meta is not a version: {e}"
                ),
                source: None,
            })?,
    };
    if found > VERSION {
        return Err(PersistenceError::SchemaTooNew {
            backend: BACKEND,
            location: location.to_owned(),
            found,
            supported: VERSION,
        });
    }
    if found == VERSION {
        return tx
            .commit()
            .map_err(|e| pg_err(e, "committing the schema check"));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).map_err(|e| {
            pg_err(
                e,
                format_args!("migrating {location} from schema version {from}"),
            )
        })?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&VERSION.to_string()],
    )
    .map_err(|e| pg_err(e, "recording the schema version"))?;
    tx.commit()
        .map_err(|e| pg_err(e, format_args!("committing the schema of {location}")))
}
