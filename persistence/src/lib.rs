//! Records of what happened, and the backends that store them.
//!
//! As in TaskFlow, a [`LogBook`] holds [`FlowDetail`]s, each holding the
//! [`AtomDetail`]s of its atoms (state, intention, result, failure, revert
//! result, revert failure, retry history). Engines write through a
//! [`Backend`] on every transition.
//!
//! # Backends
//!
//! | backend | where records live | cargo feature |
//! | --- | --- | --- |
//! | [`MemoryBackend`] | in memory, as long as the value | always |
//! | [`SqliteBackend`] | one SQLite file (WAL), shared by the processes of a host: the embedded default | always |
//! | [`DirBackend`] | a directory, one JSON file per record, written atomically | always |
//! | `PostgresBackend` | a PostgreSQL schema, shared by many hosts | `postgres` |
//!
//! The `postgres` feature compiles the synchronous `postgres` client (and
//! its network stack); without it the crate has no network dependency.
//!
//! Every backend validates what it reads: a corrupt or truncated record, or
//! one with a value this build does not know, is a
//! [`PersistenceError::Corrupt`] naming the record. Stored schemas carry a
//! version; a store written by a newer version is refused with
//! [`PersistenceError::SchemaTooNew`], an older one is migrated on connect.
//!
//! What a backend writes it reads back: a record holding a value nested
//! deeper than [`MAX_RECORD_DEPTH`] levels is refused when written
//! ([`PersistenceError::TooDeep`]), and a record read that nests deeper
//! than any is written is `Corrupt`, refused before it is parsed.
//!
//! # Owner fencing
//!
//! Beyond TaskFlow, a [`FlowDetail`] carries an
//! [`owner_epoch`](FlowDetail::owner_epoch): the epoch of the claim its
//! current owner holds. The writes an engine makes present its epoch and
//! are refused with [`PersistenceError::Fenced`] once the flow detail was
//! fenced at a higher one ([`Backend::fence_flow_detail`]), so a conductor
//! that lost its claim (paused, partitioned) cannot overwrite the work of
//! the one that took over. See [`Backend`] for the rules.

mod backend;
mod codec;
mod dir;
mod error;
mod grouped;
mod ids;
mod memory;
mod model;
#[cfg(feature = "postgres")]
mod postgres;
mod schema;
mod sqlite;
mod sync;
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::unwrap_used)]
pub mod testkit;

pub use backend::{AtomWrite, Backend, SharedDatabase};
pub use codec::MAX_RECORD_DEPTH;
pub use dir::DirBackend;
pub use error::{PersistenceError, RecordKind, WithCauses};
pub use ids::{AtomDetailId, Epoch, FlowDetailId, LogBookId};
pub use memory::MemoryBackend;
pub use model::{now_millis, AtomDetail, FlowDefinition, FlowDetail, LogBook, RunSpec};
#[cfg(feature = "postgres")]
pub use postgres::{describe as describe_postgres, quote_ident, PostgresBackend, PostgresSchema};
pub use sqlite::{open_sqlite, Durability, SqliteBackend, SqliteSchema};
