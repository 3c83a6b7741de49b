//! The SQLite backend: the embedded default, one database file shared by
//! every process on a host. See [`SqliteBackend`].

mod checkpointer;
mod connection;
mod rows;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use taskflow_patterns::{AtomState, FlowState, Intention};
use uuid::Uuid;

use self::checkpointer::{AfterCommit, Checkpointer};
use self::rows::{
    atoms_by_flow, bytes, decode_atom, decode_book, flows_by_book, text, ATOM_COLUMNS, BOOK_COLUMNS,
};
use crate::codec;
use crate::error::{check_epoch, epoch_at_its_largest};
use crate::sync::lock;
use crate::{
    AtomDetail, AtomDetailId, AtomWrite, Backend, Epoch, FlowDetail, FlowDetailId, LogBook,
    LogBookId, PersistenceError, RecordKind, SharedDatabase,
};

pub use connection::{open_sqlite, Durability};
pub use schema::SqliteSchema;

const BACKEND: &str = "sqlite";

/// Stores records in a SQLite database file: the embedded default, one
/// file shared by every process on a host.
///
/// # How it stores records
///
/// Three tables (`logbooks`, `flowdetails`, `atomdetails`; the DDL is in
/// `src/sqlite/v1.sql`, and `v2.sql` adds `flowdetails.owner_epoch`) plus
/// `meta`, which holds the schema version (see
/// [`SqliteBackend::SCHEMA_VERSION`]).
/// Identity and the small, often-updated fields are columns; the rest of a
/// record is JSON text. The two hot writes are single statements:
/// [`update_atom_state`](Backend::update_atom_state) is one `UPDATE` of the
/// `state` and `intention` columns (the result is not re-serialized), and
/// [`save_atom_detail`](Backend::save_atom_detail) one
/// `INSERT ... ON CONFLICT DO UPDATE`. Each checks the writer's epoch
/// against the flow detail's `owner_epoch` in the same statement (see
/// [owner fencing](Backend#owner-fencing)); only a write that changed no
/// row makes a second query, to tell a missing record from a fenced one.
/// [`save_atom_writes`](Backend::save_atom_writes) (the engine's batch of
/// the checkpoints between two hand-offs of work) runs its writes in one
/// `BEGIN IMMEDIATE` transaction: one commit for the batch, which is what
/// a commit costs most (the WAL locks and frames, and with
/// [`Durability::Full`] the fsync), not the statements. The transaction
/// holds the write lock, so it checks the epoch once, then updates the
/// rows the flow's save inserted with plain `UPDATE`s.
///
/// A file-backed backend copies the write-ahead log into the database
/// file (a *WAL checkpoint*, with its fsyncs) on a thread of its own, from
/// a second connection, instead of inside the commit that fills the log:
/// an engine's checkpoint never waits for it, so a checkpoint costs the
/// same at the ten-thousandth atom as at the first.
/// Multi-record writes (a logbook, a flow detail with its atoms) are one
/// `BEGIN IMMEDIATE` transaction, and so is
/// [`update_atom_meta`](Backend::update_atom_meta): it reads the flow's
/// epoch and the atom's body and writes the body back (never the `state`
/// and `intention` columns) under the database's write lock. Reads of
/// several rows run in one read transaction, so they see one snapshot.
///
/// # Sharing a file
///
/// The database runs in WAL mode: readers never block the writer nor the
/// writer the readers, and several processes (or several
/// [`SqliteBackend`]s in one process) may use one file. Writers take turns;
/// a writer waits up to [`SqliteBackend::BUSY_TIMEOUT`] for the others
/// before failing with a backend error (`database is locked`). WAL needs
/// shared memory between the processes, so the file must be on a local file
/// system, not a network share. Within one [`SqliteBackend`] the connection
/// sits behind a mutex: share one backend between threads (it is `Sync`).
///
/// # Example
///
/// ```
/// use taskflow_persistence::{Backend, LogBook, SqliteBackend};
/// # let dir = std::env::temp_dir().join(format!("tf-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let backend = SqliteBackend::open(dir.join("flows.db"))?;
/// let book = LogBook::new("nightly");
/// backend.save_logbook(&book)?;
/// assert_eq!(backend.get_logbook(book.uuid)?.name, "nightly");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), taskflow_persistence::PersistenceError>(())
/// ```
pub struct SqliteBackend {
    /// Copies the WAL into the file off the writer's thread (`None` in
    /// memory, or if its thread could not start: then SQLite checkpoints
    /// inside commits, as by default). Declared first, so it is dropped
    /// (its thread joined) before the writer's connection closes.
    checkpointer: Option<Checkpointer>,
    /// A panic while it is locked cannot leave a write half-done: an open
    /// transaction is rolled back when it is dropped.
    conn: Mutex<Connection>,
    /// Where atom details' rows are (their `seq`, the table's rowid), so
    /// the engine's checkpoints update a row by its integer key instead of
    /// seeking the text index on flow and atom ids: locked only while
    /// `conn` is.
    seqs: Mutex<RowSeqs>,
    /// The flow, epoch and database version of the last batch of atom
    /// writes whose fence was checked: locked only while `conn` is.
    checked: Mutex<Option<CheckedFence>>,
    location: String,
    /// The file, made absolute once it is open (`None` in memory).
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// The schema version this build reads and writes. A database with a
    /// newer version is refused ([`PersistenceError::SchemaTooNew`]); an
    /// older one is migrated when opened.
    pub const SCHEMA_VERSION: u32 = schema::VERSION;

    /// How long a write waits for other writers of the same file (other
    /// processes or other backends) before failing.
    pub const BUSY_TIMEOUT: Duration = connection::BUSY_TIMEOUT;

    /// Opens (creating it if needed) the database at `path` with
    /// [`Durability::Full`], creating or migrating its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PersistenceError> {
        SqliteBackend::open_with(path, Durability::Full)
    }

    /// Opens (creating it if needed) the database at `path` with the
    /// durability given, creating or migrating its schema.
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Self, PersistenceError> {
        let path = path.as_ref();
        let conn = open_sqlite(path, durability)?;
        let location = path.display().to_string();
        // The file exists once open: its canonical path names it whatever
        // path another store opens it by.
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut backend = SqliteBackend::finish(conn, location, Some(canonical))?;
        // The schema exists: a second connection only checkpoints. If it
        // cannot open or its thread cannot start, the writer keeps
        // SQLite's automatic checkpoint.
        if let Some(checkpointer) = open_sqlite(path, durability)
            .ok()
            .and_then(Checkpointer::start)
        {
            lock(&backend.conn)
                .pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| db_err(e, "handing WAL checkpoints to a thread"))?;
            backend.checkpointer = Some(checkpointer);
        }
        Ok(backend)
    }

    /// A private in-memory database, for tests: gone when the value is.
    pub fn in_memory() -> Result<Self, PersistenceError> {
        let conn =
            Connection::open_in_memory().map_err(|e| db_err(e, "opening an in-memory database"))?;
        SqliteBackend::finish(conn, ":memory:".to_owned(), None)
    }

    fn finish(
        mut conn: Connection,
        location: String,
        path: Option<PathBuf>,
    ) -> Result<Self, PersistenceError> {
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| db_err(e, "enabling foreign keys"))?;
        conn.set_prepared_statement_cache_capacity(32);
        schema::RECORDS.prepare(&mut conn, &location)?;
        Ok(SqliteBackend {
            checkpointer: None,
            conn: Mutex::new(conn),
            seqs: Mutex::new(RowSeqs::default()),
            checked: Mutex::new(None),
            location,
            path,
        })
    }

    /// Where the database is (its path, or `:memory:`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The database file, its canonical path (symbolic links, `.` and `..`
    /// resolved when it was opened; `None` for an in-memory database).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Tells the checkpointer that `conn` committed about `pages` pages
    /// ([`checkpointer::WAKE_EVERY`] for a save of many records).
    fn committed(&self, conn: &Connection, pages: u32) {
        let Some(checkpointer) = &self.checkpointer else {
            return;
        };
        if checkpointer.committed(pages) == AfterCommit::RestoreAutoCheckpoint {
            // The thread stopped: SQLite checkpoints inside commits again.
            // A failure here leaves the log growing until the next try.
            let _ = conn.pragma_update(
                None,
                "wal_autocheckpoint",
                checkpointer::AUTO_CHECKPOINT_PAGES,
            );
        }
    }

    /// Saves `book` as [`save_logbook`](Backend::save_logbook) does, then
    /// runs `then` in the same `BEGIN IMMEDIATE` transaction, and commits
    /// only if `then` succeeds: the records and what `then` writes to the
    /// same file land together or not at all. A jobboard in the same file
    /// posts the job that points at the records this way, so a crash
    /// cannot leave records no job points at, nor a job without records.
    ///
    /// ```
    /// use taskflow_persistence::{Backend, LogBook, PersistenceError, SqliteBackend};
    /// # let dir = std::env::temp_dir().join(format!("tf-doc-{}", uuid::Uuid::new_v4()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let backend = SqliteBackend::open(dir.join("flows.db"))?;
    /// let book = LogBook::new("nightly");
    /// // What `then` refuses rolls the logbook back too.
    /// let refused: Result<(), PersistenceError> = backend.save_logbook_then(&book, |tx| {
    ///     // A statement of the caller's that fails.
    ///     tx.execute_batch("INSERT INTO no_such_table VALUES (1)")
    ///         .map_err(|e| PersistenceError::backend("sqlite", "posting", e))
    /// });
    /// assert!(refused.is_err());
    /// assert!(backend.get_logbook(book.uuid).is_err());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), PersistenceError>(())
    /// ```
    pub fn save_logbook_then<T, E: From<PersistenceError>>(
        &self,
        book: &LogBook,
        then: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut buf = Uuid::encode_buffer();
        let id = id_text(book.uuid, &mut buf);
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(e, format_args!("starting to save logbook {id}")))?;
        put_logbook(&tx, &mut lock(&self.seqs), id, book)?;
        let done = then(&tx)?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing logbook {id}")))?;
        self.committed(&conn, checkpointer::WAKE_EVERY);
        Ok(done)
    }
}

/// A backend error for a failed SQLite call.
fn db_err(e: rusqlite::Error, what: impl fmt::Display) -> PersistenceError {
    PersistenceError::backend(BACKEND, what.to_string(), e)
}

fn not_found(kind: RecordKind, id: impl Into<Uuid>) -> PersistenceError {
    PersistenceError::NotFound {
        kind,
        id: id.into(),
    }
}

fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// The canonical text of an id (lower-case, hyphenated), without allocating.
fn id_text(id: impl Into<Uuid>, buf: &mut [u8; 45]) -> &str {
    id.into().hyphenated().encode_lower(buf)
}

/// Inserts (or, for an id already there, replaces) an atom detail of the
/// flow `flow` (text `key`) whose JSON body is `body`, unfenced: for a
/// caller whose transaction has checked the writer's epoch, or has just
/// written the flow detail itself. Returns the row's `seq` as a hint for
/// [`RowSeqs`]: the last row inserted, which is another row's when the id
/// was there already (a hint that misses, see [`RowSeqs`]). `RETURNING`
/// would be exact, but it doubled the cost of a flow's first save.
fn insert_atom(
    conn: &Connection,
    flow: FlowDetailId,
    key: &str,
    atom: &AtomDetail,
    body: &str,
) -> Result<i64, PersistenceError> {
    let mut buf = Uuid::encode_buffer();
    let id = id_text(atom.uuid, &mut buf);
    conn.prepare_cached(
        "INSERT INTO atomdetails (flow_uuid, uuid, name, kind, state, intention, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (flow_uuid, uuid) DO UPDATE SET name = excluded.name, \
         kind = excluded.kind, state = excluded.state, \
         intention = excluded.intention, body = excluded.body",
    )
    .and_then(|mut s| {
        s.execute(params![
            key,
            id,
            atom.name.as_str(),
            codec::atom_kind_str(atom.kind),
            codec::atom_state_str(atom.state),
            codec::intention_str(atom.intention),
            body
        ])
    })
    .map_err(|e| {
        if is_foreign_key_violation(&e) {
            not_found(RecordKind::FlowDetail, flow)
        } else {
            db_err(
                e,
                format_args!("saving atom detail {id} of flow detail {flow}"),
            )
        }
    })?;
    Ok(conn.last_insert_rowid())
}

/// Upserts an atom detail of the flow `flow` (text `key`) as a writer at
/// `epoch`: one statement, which inserts nothing when the flow is missing
/// or owned at a higher epoch.
fn put_atom(
    conn: &Connection,
    flow: FlowDetailId,
    key: &str,
    atom: &AtomDetail,
    epoch: Epoch,
) -> Result<(), PersistenceError> {
    let body = codec::encode_atom_body(atom)?;
    let presented = codec::encode_epoch(flow, epoch)?;
    let mut buf = Uuid::encode_buffer();
    let id = id_text(atom.uuid, &mut buf);
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO atomdetails (flow_uuid, uuid, name, kind, state, intention, body) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
             WHERE (SELECT owner_epoch FROM flowdetails WHERE uuid = ?1) <= ?8 \
             ON CONFLICT (flow_uuid, uuid) DO UPDATE SET name = excluded.name, \
             kind = excluded.kind, state = excluded.state, \
             intention = excluded.intention, body = excluded.body",
        )
        .map_err(|e| db_err(e, "preparing the atom upsert"))?;
    let n = stmt
        .execute(params![
            key,
            id,
            atom.name.as_str(),
            codec::atom_kind_str(atom.kind),
            codec::atom_state_str(atom.state),
            codec::intention_str(atom.intention),
            body,
            presented
        ])
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                // The only foreign key of an atom is its flow.
                not_found(RecordKind::FlowDetail, flow)
            } else {
                db_err(
                    e,
                    format_args!("saving atom detail {id} of flow detail {flow}"),
                )
            }
        })?;
    if n == 0 {
        return Err(refusal(conn, flow, key, epoch)?
            .unwrap_or_else(|| not_found(RecordKind::FlowDetail, flow)));
    }
    Ok(())
}

/// Why a fenced write to the flow `flow` (text `key`) at `epoch` changed no
/// row: the flow is missing (`NotFound`) or owned at a higher epoch
/// (`Fenced`); `None` when neither (the row written to is what is missing).
fn refusal(
    conn: &Connection,
    flow: FlowDetailId,
    key: &str,
    epoch: Epoch,
) -> Result<Option<PersistenceError>, PersistenceError> {
    let held: Option<i64> = conn
        .prepare_cached("SELECT owner_epoch FROM flowdetails WHERE uuid = ?1")
        .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional())
        .map_err(|e| {
            db_err(
                e,
                format_args!("reading the owner epoch of flow detail {flow}"),
            )
        })?;
    let Some(held) = held else {
        return Ok(Some(not_found(RecordKind::FlowDetail, flow)));
    };
    Ok(check_epoch(flow, codec::decode_epoch(flow, held)?, epoch).err())
}

/// Runs `sql`, one statement that changes a row of the flow detail `flow`
/// or of one of its atoms only if the flow is owned at no more than
/// `epoch`; if it changed no row, says why: `Fenced`, `NotFound` of the
/// flow, or else `NotFound` of `missing` (the row written to).
fn fenced_write(
    conn: &Connection,
    flow: FlowDetailId,
    epoch: Epoch,
    sql: &str,
    params: impl rusqlite::Params,
    missing: (RecordKind, Uuid),
    what: &dyn fmt::Display,
) -> Result<(), PersistenceError> {
    let n = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(|e| db_err(e, what))?;
    if n == 0 {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        return Err(
            refusal(conn, flow, key, epoch)?.unwrap_or_else(|| not_found(missing.0, missing.1))
        );
    }
    Ok(())
}

/// Writes a flow detail (at its own owner epoch) and replaces its atoms,
/// inside a transaction.
fn put_flow(
    conn: &Connection,
    seqs: &mut RowSeqs,
    book: &str,
    flow: &FlowDetail,
) -> Result<(), PersistenceError> {
    let meta = codec::encode_meta(RecordKind::FlowDetail, flow.uuid, &flow.stored_meta())?;
    let epoch = codec::encode_epoch(flow.uuid, flow.owner_epoch)?;
    let mut buf = Uuid::encode_buffer();
    let id = id_text(flow.uuid, &mut buf);
    fenced_write(
        conn,
        flow.uuid,
        flow.owner_epoch,
        "INSERT INTO flowdetails (uuid, book_uuid, name, state, meta, owner_epoch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (uuid) DO UPDATE SET book_uuid = excluded.book_uuid, \
         name = excluded.name, state = excluded.state, meta = excluded.meta, \
         owner_epoch = excluded.owner_epoch \
         WHERE flowdetails.owner_epoch <= excluded.owner_epoch",
        params![
            id,
            book,
            flow.name,
            codec::flow_state_str(flow.state),
            meta,
            epoch
        ],
        (RecordKind::FlowDetail, flow.uuid.into()),
        &format_args!("saving flow detail {id}"),
    )?;
    conn.prepare_cached("DELETE FROM atomdetails WHERE flow_uuid = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(|e| db_err(e, format_args!("replacing the atoms of flow detail {id}")))?;
    // The flow detail was just written at its own epoch, in this
    // transaction: its atoms need no fence of their own.
    for atom in &flow.atom_details {
        let seq = insert_atom(conn, flow.uuid, id, atom, &codec::encode_atom_body(atom)?)?;
        seqs.remember(atom.uuid, seq);
    }
    Ok(())
}

/// Changes the state and intention of an atom detail of the flow `flow`
/// (text `key`) as a writer at `epoch`: one statement, which changes
/// nothing when the flow is owned at a higher epoch.
fn put_atom_state(
    conn: &Connection,
    flow: FlowDetailId,
    key: &str,
    atom: AtomDetailId,
    state: AtomState,
    intention: Intention,
    epoch: Epoch,
) -> Result<(), PersistenceError> {
    let presented = codec::encode_epoch(flow, epoch)?;
    let mut abuf = Uuid::encode_buffer();
    let atom_key = id_text(atom, &mut abuf);
    fenced_write(
        conn,
        flow,
        epoch,
        "UPDATE atomdetails SET state = ?3, intention = ?4 \
         WHERE flow_uuid = ?1 AND uuid = ?2 \
         AND (SELECT owner_epoch FROM flowdetails WHERE uuid = ?1) <= ?5",
        params![
            key,
            atom_key,
            codec::atom_state_str(state),
            codec::intention_str(intention),
            presented
        ],
        (RecordKind::AtomDetail, atom.into()),
        &format_args!("updating the state of atom detail {atom}"),
    )
}

/// A `BEGIN IMMEDIATE` transaction on a borrowed connection, rolled back
/// when dropped uncommitted. Its `BEGIN` and `COMMIT` are cached prepared
/// statements: rusqlite's `Transaction` runs them through `execute_batch`,
/// which parses them again at every call, and on the engine's checkpoint
/// path (one transaction per atom) that parsing cost about a quarter of
/// the instructions of a checkpoint (callgrind, W4 on SQLite).
struct WriteTransaction<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> WriteTransaction<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(WriteTransaction { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the error that dropped the transaction
            // is what the caller sees. A connection whose rollback failed
            // is left in its transaction, and SQLite rolls that back when
            // the next `BEGIN` fails or the connection closes.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A batch of atom writes whose epoch passed the fence, and the state of
/// the database after it: nothing can have changed the flow's owner epoch
/// while neither another connection committed (SQLite's `data_version`,
/// read inside the next batch's write transaction, is the same) nor this
/// one changed a row (its `total_changes` is the same). A batch for the
/// same flow at the same epoch then needs no read of the epoch: along a
/// flow run by one engine, that read was the most costly of each batch's
/// statements. Anything else, a takeover through this backend or any
/// other, makes the next batch read it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CheckedFence {
    flow: FlowDetailId,
    epoch: Epoch,
    data_version: i64,
    total_changes: u64,
}

impl CheckedFence {
    /// What a batch for `flow` at `epoch` finds now, inside its write
    /// transaction.
    fn now(conn: &Connection, flow: FlowDetailId, epoch: Epoch) -> rusqlite::Result<Self> {
        let data_version = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        Ok(CheckedFence {
            flow,
            epoch,
            data_version,
            total_changes: conn.total_changes(),
        })
    }
}

/// Where atom details' rows are: `seq` (the rowid) by atom id. A `seq`
/// found here is only a hint: a write by it also matches the flow and atom
/// ids, so a row deleted since (or its `seq` reused by another row) is
/// missed, never overwritten, and the write falls back to the ids' index.
#[derive(Default)]
struct RowSeqs(std::collections::HashMap<AtomDetailId, i64>);

impl RowSeqs {
    /// Ids remembered at most: about 10 MiB. A backend shared by many
    /// flows forgets them all when full and relearns them as it writes.
    const MAX: usize = 1 << 18;

    fn remember(&mut self, atom: impl Into<AtomDetailId>, seq: i64) {
        if self.0.len() >= RowSeqs::MAX {
            self.0.clear();
        }
        self.0.insert(atom.into(), seq);
    }
}

/// Runs `by_seq` (parameters: `seq`, the flow's and the atom's ids, then
/// `rest`) on the row `seqs` remembers for `atom`, and if that changes no
/// row, `by_ids` (`... WHERE flow_uuid = ?1 AND uuid = ?2 ... RETURNING
/// seq`; parameters: the ids, then `rest`), remembering the row it found.
/// Whether a row changed.
fn update_atom_row(
    conn: &Connection,
    seqs: &mut RowSeqs,
    (flow_key, atom, atom_key): (&str, AtomDetailId, &str),
    (by_seq, by_ids): (&str, &str),
    rest: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<bool> {
    if let Some(&seq) = seqs.0.get(&atom) {
        let mut stmt = conn.prepare_cached(by_seq)?;
        stmt.raw_bind_parameter(1, seq)?;
        stmt.raw_bind_parameter(2, flow_key)?;
        stmt.raw_bind_parameter(3, atom_key)?;
        for (i, value) in rest.iter().enumerate() {
            stmt.raw_bind_parameter(i + 4, value)?;
        }
        if stmt.raw_execute()? == 1 {
            return Ok(true);
        }
    }
    let mut stmt = conn.prepare_cached(by_ids)?;
    stmt.raw_bind_parameter(1, flow_key)?;
    stmt.raw_bind_parameter(2, atom_key)?;
    for (i, value) in rest.iter().enumerate() {
        stmt.raw_bind_parameter(i + 3, value)?;
    }
    let seq: Option<i64> = stmt.raw_query().next()?.map(|row| row.get(0)).transpose()?;
    match seq {
        Some(seq) => {
            seqs.remember(atom, seq);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// One write of a batch whose transaction holds the write lock and has
/// checked the writer's epoch (see [`Backend::save_atom_writes`]): the
/// statements need no fence of their own. A state change of an atom that
/// does not exist is `NotFound`; a detail that does not exist yet is
/// inserted.
fn put_checked_atom_write(
    conn: &Connection,
    seqs: &mut RowSeqs,
    flow: FlowDetailId,
    key: &str,
    write: &AtomWrite<'_>,
) -> Result<(), PersistenceError> {
    let mut buf = Uuid::encode_buffer();
    match *write {
        AtomWrite::State {
            atom,
            state,
            intention,
        } => {
            let id = id_text(atom, &mut buf);
            let found = update_atom_row(
                conn,
                seqs,
                (key, atom, id),
                (
                    "UPDATE atomdetails SET state = ?4, intention = ?5 \
                     WHERE seq = ?1 AND flow_uuid = ?2 AND uuid = ?3",
                    "UPDATE atomdetails SET state = ?3, intention = ?4 \
                     WHERE flow_uuid = ?1 AND uuid = ?2 RETURNING seq",
                ),
                &[
                    &codec::atom_state_str(state),
                    &codec::intention_str(intention),
                ],
            )
            .map_err(|e| db_err(e, format_args!("updating the state of atom detail {id}")))?;
            if !found {
                return Err(not_found(RecordKind::AtomDetail, atom));
            }
            Ok(())
        }
        AtomWrite::Detail(atom) => {
            let body = codec::encode_atom_body(atom)?;
            let id = id_text(atom.uuid, &mut buf);
            // An update finds the row the flow's save inserted; only a
            // detail added since is inserted.
            let found = update_atom_row(
                conn,
                seqs,
                (key, atom.uuid, id),
                (
                    "UPDATE atomdetails SET name = ?4, kind = ?5, state = ?6, \
                     intention = ?7, body = ?8 WHERE seq = ?1 AND flow_uuid = ?2 AND uuid = ?3",
                    "UPDATE atomdetails SET name = ?3, kind = ?4, state = ?5, \
                     intention = ?6, body = ?7 WHERE flow_uuid = ?1 AND uuid = ?2 RETURNING seq",
                ),
                &[
                    &&*atom.name,
                    &codec::atom_kind_str(atom.kind),
                    &codec::atom_state_str(atom.state),
                    &codec::intention_str(atom.intention),
                    &body,
                ],
            )
            .map_err(|e| {
                db_err(
                    e,
                    format_args!("saving atom detail {id} of flow detail {flow}"),
                )
            })?;
            if !found {
                let seq = insert_atom(conn, flow, key, atom, &body)?;
                seqs.remember(atom.uuid, seq);
            }
            Ok(())
        }
    }
}

/// One write of a batch (see [`Backend::save_atom_writes`]).
fn put_atom_write(
    conn: &Connection,
    flow: FlowDetailId,
    key: &str,
    write: &AtomWrite<'_>,
    epoch: Epoch,
) -> Result<(), PersistenceError> {
    match *write {
        AtomWrite::State {
            atom,
            state,
            intention,
        } => put_atom_state(conn, flow, key, atom, state, intention, epoch),
        AtomWrite::Detail(detail) => put_atom(conn, flow, key, detail, epoch),
    }
}

/// Writes a logbook and its flow details, inside a transaction.
fn put_logbook(
    conn: &Connection,
    seqs: &mut RowSeqs,
    id: &str,
    book: &LogBook,
) -> Result<(), PersistenceError> {
    let kind = RecordKind::LogBook;
    let meta = codec::encode_meta(kind, book.uuid, &book.meta)?;
    let created = codec::encode_millis(kind, book.uuid, book.created_at)?;
    let updated = codec::encode_millis(kind, book.uuid, book.updated_at)?;
    conn.prepare_cached(
        "INSERT INTO logbooks (uuid, name, created_at, updated_at, meta) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, \
         created_at = excluded.created_at, updated_at = excluded.updated_at, \
         meta = excluded.meta",
    )
    .and_then(|mut s| s.execute(params![id, book.name, created, updated, meta]))
    .map_err(|e| db_err(e, format_args!("saving logbook {id}")))?;
    for flow in &book.flow_details {
        put_flow(conn, seqs, id, flow)?;
    }
    Ok(())
}

fn book_exists(conn: &Connection, book: &str) -> Result<bool, PersistenceError> {
    conn.prepare_cached("SELECT 1 FROM logbooks WHERE uuid = ?1")
        .and_then(|mut s| s.exists([book]))
        .map_err(|e| db_err(e, format_args!("looking up logbook {book}")))
}

fn flow_exists(conn: &Connection, flow: &str) -> Result<bool, PersistenceError> {
    conn.prepare_cached("SELECT 1 FROM flowdetails WHERE uuid = ?1")
        .and_then(|mut s| s.exists([flow]))
        .map_err(|e| db_err(e, format_args!("looking up flow detail {flow}")))
}

impl Backend for SqliteBackend {
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        self.save_logbook_then(book, |_| Ok::<(), PersistenceError>(()))
    }

    fn shared_database(&self) -> Option<SharedDatabase<'_>> {
        self.path.is_some().then_some(SharedDatabase::Sqlite(self))
    }

    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(id, &mut buf);
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction()
            .map_err(|e| db_err(e, format_args!("starting to read logbook {id}")))?;
        let mut book = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT uuid, name, created_at, updated_at, meta FROM logbooks WHERE uuid = ?1",
                )
                .map_err(|e| db_err(e, "preparing the logbook query"))?;
            let mut rows = stmt
                .query([key])
                .map_err(|e| db_err(e, format_args!("reading logbook {id}")))?;
            match rows
                .next()
                .map_err(|e| db_err(e, format_args!("reading logbook {id}")))?
            {
                Some(row) => decode_book(row)?,
                None => return Err(not_found(RecordKind::LogBook, id)),
            }
        };
        let atoms = atoms_by_flow(
            &tx,
            "SELECT a.flow_uuid, a.uuid, a.name, a.kind, a.state, a.intention, a.body \
             FROM atomdetails a JOIN flowdetails f ON f.uuid = a.flow_uuid \
             WHERE f.book_uuid = ?1 ORDER BY a.seq",
            [key],
        )?;
        let mut flows = flows_by_book(
            &tx,
            "SELECT book_uuid, uuid, name, state, meta, owner_epoch FROM flowdetails \
             WHERE book_uuid = ?1 ORDER BY seq",
            [key],
            atoms,
        )?;
        book.flow_details = flows.take(key)?;
        Ok(book)
    }

    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction()
            .map_err(|e| db_err(e, "starting to list logbooks"))?;
        let atoms = atoms_by_flow(
            &tx,
            "SELECT flow_uuid, uuid, name, kind, state, intention, body \
             FROM atomdetails ORDER BY seq",
            [],
        )?;
        let mut flows = flows_by_book(
            &tx,
            "SELECT book_uuid, uuid, name, state, meta, owner_epoch FROM flowdetails ORDER BY seq",
            [],
            atoms,
        )?;
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {BOOK_COLUMNS} FROM logbooks ORDER BY created_at, uuid"
            ))
            .map_err(|e| db_err(e, "preparing the logbook list"))?;
        let mut rows = stmt.query([]).map_err(|e| db_err(e, "listing logbooks"))?;
        let mut books = Vec::new();
        while let Some(row) = rows.next().map_err(|e| db_err(e, "listing logbooks"))? {
            let book = decode_book(row).and_then(|mut book| {
                let key = text(row, 0, RecordKind::LogBook, &book.uuid, "uuid")?;
                if let Some(group) = flows.groups.remove(key) {
                    book.flow_details = group?;
                }
                Ok(book)
            });
            books.push(book);
        }
        books.extend(flows.orphans.drain(..).map(Err));
        Ok(books)
    }

    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(id, &mut buf);
        let conn = lock(&self.conn);
        let n = conn
            .prepare_cached("DELETE FROM logbooks WHERE uuid = ?1")
            .and_then(|mut s| s.execute([key]))
            .map_err(|e| db_err(e, format_args!("destroying logbook {id}")))?;
        if n == 0 {
            return Err(not_found(RecordKind::LogBook, id));
        }
        Ok(())
    }

    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(book, &mut buf);
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| {
                db_err(
                    e,
                    format_args!("starting to save flow detail {}", flow.uuid),
                )
            })?;
        if !book_exists(&tx, key)? {
            return Err(not_found(RecordKind::LogBook, book));
        }
        put_flow(&tx, &mut lock(&self.seqs), key, flow)?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing flow detail {}", flow.uuid)))?;
        self.committed(&conn, checkpointer::WAKE_EVERY);
        Ok(())
    }

    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(id, &mut buf);
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction()
            .map_err(|e| db_err(e, format_args!("starting to read flow detail {id}")))?;
        let atoms = atoms_by_flow(
            &tx,
            "SELECT flow_uuid, uuid, name, kind, state, intention, body \
             FROM atomdetails WHERE flow_uuid = ?1 ORDER BY seq",
            [key],
        )?;
        let mut flows = flows_by_book(
            &tx,
            "SELECT book_uuid, uuid, name, state, meta, owner_epoch FROM flowdetails WHERE uuid = ?1",
            [key],
            atoms,
        )?;
        if let Some(e) = flows.orphans.pop() {
            return Err(e);
        }
        // One row at most: the group of its logbook, whatever that is.
        let group = flows.groups.into_values().next().unwrap_or(Ok(Vec::new()));
        group?
            .into_iter()
            .next()
            .ok_or_else(|| not_found(RecordKind::FlowDetail, id))
    }

    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let presented = codec::encode_epoch(flow, epoch)?;
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        fenced_write(
            &lock(&self.conn),
            flow,
            epoch,
            "UPDATE flowdetails SET state = ?2 WHERE uuid = ?1 AND owner_epoch <= ?3",
            params![key, codec::flow_state_str(state), presented],
            (RecordKind::FlowDetail, flow.into()),
            &format_args!("updating the state of flow detail {flow}"),
        )
    }

    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError> {
        let presented = codec::encode_epoch(flow, epoch)?;
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        fenced_write(
            &lock(&self.conn),
            flow,
            epoch,
            "UPDATE flowdetails SET owner_epoch = ?2 WHERE uuid = ?1 AND owner_epoch <= ?2",
            params![key, presented],
            (RecordKind::FlowDetail, flow.into()),
            &format_args!("fencing flow detail {flow} at epoch {epoch}"),
        )?;
        Ok(epoch)
    }

    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        let conn = lock(&self.conn);
        // One statement: SQLite runs it under the database's write lock, so
        // two takers (of any process) never read the same epoch. The
        // largest epoch a column holds is not raised (no row), and said so.
        let taken: Option<i64> = conn
            .prepare_cached(
                "UPDATE flowdetails SET owner_epoch = owner_epoch + 1 \
                 WHERE uuid = ?1 AND owner_epoch < ?2 RETURNING owner_epoch",
            )
            .and_then(|mut s| {
                s.query_row(params![key, i64::MAX], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| db_err(e, format_args!("taking flow detail {flow}")))?;
        match taken {
            Some(epoch) => codec::decode_epoch(flow, epoch),
            None => match refusal(&conn, flow, key, Epoch::new(u64::MAX))? {
                Some(missing) => Err(missing),
                None => Err(epoch_at_its_largest(
                    flow,
                    Epoch::new(i64::MAX.unsigned_abs()),
                )),
            },
        }
    }

    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(id, &mut buf);
        let conn = lock(&self.conn);
        let n = conn
            .prepare_cached("DELETE FROM flowdetails WHERE uuid = ?1")
            .and_then(|mut s| s.execute([key]))
            .map_err(|e| db_err(e, format_args!("destroying flow detail {id}")))?;
        if n == 0 {
            return Err(not_found(RecordKind::FlowDetail, id));
        }
        Ok(())
    }

    fn save_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        let conn = lock(&self.conn);
        put_atom(&conn, flow, key, atom, epoch)?;
        self.committed(&conn, 1);
        Ok(())
    }

    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        let conn = lock(&self.conn);
        put_atom_state(&conn, flow, key, atom, state, intention, epoch)?;
        self.committed(&conn, 1);
        Ok(())
    }

    fn save_atom_writes(
        &self,
        flow: FlowDetailId,
        writes: &[AtomWrite<'_>],
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let mut buf = Uuid::encode_buffer();
        let key = id_text(flow, &mut buf);
        let conn = lock(&self.conn);
        if let [one] = writes {
            // One statement commits on its own: no transaction around it.
            put_atom_write(&conn, flow, key, one, epoch)?;
            self.committed(&conn, 1);
            return Ok(());
        }
        // One transaction, so one commit (one fsync with `Full`) for the
        // batch; an error drops `tx`, which rolls every write back. The
        // write lock is held from `BEGIN IMMEDIATE` to the commit, so the
        // epoch is checked once, before the writes, instead of in each.
        let tx = WriteTransaction::begin(&conn)
            .map_err(|e| db_err(e, format_args!("starting to checkpoint flow detail {flow}")))?;
        let mut checked = lock(&self.checked);
        let now = CheckedFence::now(&conn, flow, epoch).map_err(|e| {
            db_err(
                e,
                format_args!("reading the data version to checkpoint flow detail {flow}"),
            )
        })?;
        if checked.as_ref() != Some(&now) {
            *checked = None;
            if let Some(refused) = refusal(&conn, flow, key, epoch)? {
                return Err(refused);
            }
        }
        let mut seqs = lock(&self.seqs);
        for write in writes {
            put_checked_atom_write(&conn, &mut seqs, flow, key, write)?;
        }
        tx.commit().map_err(|e| {
            db_err(
                e,
                format_args!("committing checkpoints of flow detail {flow}"),
            )
        })?;
        *checked = Some(CheckedFence {
            total_changes: conn.total_changes(),
            ..now
        });
        self.committed(&conn, 1);
        Ok(())
    }

    fn update_atom_meta(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        key: &str,
        value: Option<Value>,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        let value = codec::checked_meta_entry(atom, key, value)?;
        let mut fbuf = Uuid::encode_buffer();
        let mut abuf = Uuid::encode_buffer();
        let flow_key = id_text(flow, &mut fbuf);
        let atom_key = id_text(atom, &mut abuf);
        let mut conn = lock(&self.conn);
        // `BEGIN IMMEDIATE`: the database's write lock is held from the
        // read of the epoch and the body to the write of the body, so no
        // other writer (of any process) comes between them.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| {
                db_err(
                    e,
                    format_args!("starting to update the meta of atom detail {atom}"),
                )
            })?;
        if let Some(refused) = refusal(&tx, flow, flow_key, epoch)? {
            return Err(refused);
        }
        let body = {
            let mut stmt = tx
                .prepare_cached("SELECT body FROM atomdetails WHERE flow_uuid = ?1 AND uuid = ?2")
                .map_err(|e| db_err(e, "preparing the atom body query"))?;
            let mut rows = stmt
                .query([flow_key, atom_key])
                .map_err(|e| db_err(e, format_args!("reading atom detail {atom}")))?;
            let row = rows
                .next()
                .map_err(|e| db_err(e, format_args!("reading atom detail {atom}")))?
                .ok_or_else(|| not_found(RecordKind::AtomDetail, atom))?;
            let bytes = bytes(row, 0, RecordKind::AtomDetail, &atom, "body")?;
            codec::body_with_meta_entry(atom, bytes, key, value.as_ref())?
        };
        // Only the body: the state and intention columns stay as they are.
        tx.prepare_cached("UPDATE atomdetails SET body = ?3 WHERE flow_uuid = ?1 AND uuid = ?2")
            .and_then(|mut s| s.execute(params![flow_key, atom_key, body]))
            .map_err(|e| db_err(e, format_args!("updating the meta of atom detail {atom}")))?;
        tx.commit()
            .map_err(|e| db_err(e, format_args!("committing the meta of atom detail {atom}")))?;
        self.committed(&conn, 1);
        Ok(())
    }

    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        let mut fbuf = Uuid::encode_buffer();
        let mut abuf = Uuid::encode_buffer();
        let flow_key = id_text(flow, &mut fbuf);
        let atom_key = id_text(atom, &mut abuf);
        let conn = lock(&self.conn);
        let found = {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ATOM_COLUMNS} FROM atomdetails WHERE flow_uuid = ?1 AND uuid = ?2"
                ))
                .map_err(|e| db_err(e, "preparing the atom query"))?;
            let mut rows = stmt
                .query([flow_key, atom_key])
                .map_err(|e| db_err(e, format_args!("reading atom detail {atom}")))?;
            match rows
                .next()
                .map_err(|e| db_err(e, format_args!("reading atom detail {atom}")))?
            {
                Some(row) => Some(decode_atom(row, 0)?),
                None => None,
            }
        };
        match found {
            Some(detail) => Ok(detail),
            None if flow_exists(&conn, flow_key)? => Err(not_found(RecordKind::AtomDetail, atom)),
            None => Err(not_found(RecordKind::FlowDetail, flow)),
        }
    }
}

#[cfg(test)]
mod tests;
