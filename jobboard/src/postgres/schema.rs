//! The board's PostgreSQL schema, its version and its migrations, run on
//! connect by the persistence crate's runner
//! ([`PostgresSchema`](taskflow_persistence::PostgresSchema)): in one
//! transaction holding an advisory lock on the schema's name, the schema is
//! created if missing, a missing version is version 0, each migration up
//! to [`VERSION`] runs in order, and a newer version is refused.

use taskflow_persistence::PostgresSchema;

/// `MIGRATIONS[v]` takes a schema from version `v` to `v + 1`: `v1.sql`
/// creates the tables, `v2.sql` adds the board events (the change table,
/// its counter and the triggers that fill it; the file says why a counter
/// row and not a sequence), `v3.sql` keeps each job's flow factory in a
/// column of its own (for `claim_next`).
const MIGRATIONS: [&str; 3] = [
    include_str!("v1.sql"),
    include_str!("v2.sql"),
    include_str!("v3.sql"),
];

/// The board's tables: version in `jobboard_meta`, so the schema may also
/// hold the records of a `PostgresBackend` (whose version is in `meta`).
pub(super) const BOARD_SCHEMA: PostgresSchema =
    PostgresSchema::new("jobboard_meta", "jobboard_jobs", &MIGRATIONS);

/// The schema version this build reads and writes.
pub(super) const VERSION: u32 = BOARD_SCHEMA.version();
