//! The [`Backend`] trait every store of records implements.

use std::sync::Arc;

use serde_json::Value;
use taskflow_patterns::{AtomState, FlowState, Intention};

use crate::{
    AtomDetail, AtomDetailId, Epoch, FlowDetail, FlowDetailId, LogBook, LogBookId, PersistenceError,
};

/// A store of logbooks, flow details and atom details.
///
/// The engine writes through it on every transition, so the two hot
/// methods, [`update_atom_state`](Backend::update_atom_state) (a state
/// change, no data) and [`save_atom_detail`](Backend::save_atom_detail) (a
/// result or failure), must each be one cheap write; the engine hands them
/// over in batches through [`save_atom_writes`](Backend::save_atom_writes),
/// which a backend with transactions makes one commit. Every read validates
/// what it reads: a corrupt record is a [`PersistenceError::Corrupt`] naming
/// it, never a panic and never skipped.
///
/// The API is synchronous; a network backend may drive its own runtime inside.
///
/// # Owner fencing
///
/// A flow detail carries an [`owner_epoch`](FlowDetail::owner_epoch): the
/// epoch of the claim its current owner holds (a conductor gets a higher
/// epoch each time it claims a job; 0 means never claimed). The writes an
/// engine makes while it runs ([`save_atom_detail`](Backend::save_atom_detail),
/// [`update_atom_state`](Backend::update_atom_state),
/// [`update_atom_meta`](Backend::update_atom_meta),
/// [`update_flow_state`](Backend::update_flow_state)) present the writer's
/// epoch, and are refused with [`PersistenceError::Fenced`] when the stored
/// epoch is higher. A new owner raises the stored epoch with
/// [`fence_flow_detail`](Backend::fence_flow_detail) before it resumes the
/// flow; from then on, a previous owner that lost its claim (paused,
/// partitioned) cannot overwrite the new owner's work: its next checkpoint
/// fails.
///
/// Where no jobboard hands out epochs (a process that loads a flow detail
/// and runs it), [`take_flow_detail`](Backend::take_flow_detail) takes
/// ownership directly: it raises the stored epoch by one and returns it, so
/// of two processes that take the same flow detail each gets its own epoch
/// and only the later one's writes land; the other is fenced at its next
/// checkpoint. In every backend the check and the write are one atomic
/// operation, so no write at a lower epoch lands once a fence has returned.
/// Saving a whole flow detail ([`save_flow_detail`](Backend::save_flow_detail),
/// or in [`save_logbook`](Backend::save_logbook)) is a write at that
/// detail's own `owner_epoch`, fenced the same way.
pub trait Backend: Send + Sync {
    /// Saves a logbook and every flow and atom detail in it (insert or update).
    /// Each flow detail is written at its own `owner_epoch`: if one is
    /// stored with a higher epoch, nothing is saved and the error is
    /// [`PersistenceError::Fenced`].
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError>;

    /// Loads a logbook with its flow and atom details.
    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError>;

    /// Loads every logbook, with their flow and atom details, each on its
    /// own: one logbook that cannot be read (it, or one of its flow or
    /// atom details, is corrupt) is an `Err` in its place, naming the bad
    /// record, and never hides the others. The outer error is for the
    /// backend itself failing (I/O, connection), when nothing can be
    /// listed.
    ///
    /// Logbooks come in creation order (`created_at`, then id). Where an
    /// unreadable logbook falls depends on what can still be read of it:
    /// the SQL backends keep it at its place in that order when its row's
    /// times and id can be read; what is not in that order (the
    /// directory backend's corrupt files, rows that cannot be placed)
    /// comes after the rest.
    #[allow(clippy::type_complexity)]
    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError>;

    /// Removes a logbook and everything in it.
    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError>;

    /// Saves a flow detail and its atom details into the logbook `book`
    /// (which must exist), replacing its stored atom details. It is written
    /// at its own `owner_epoch`, which it stores: if the flow detail is
    /// stored with a higher epoch, nothing is saved and the error is
    /// [`PersistenceError::Fenced`].
    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError>;

    /// Loads a flow detail with its atom details.
    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError>;

    /// Changes the state of a flow detail, as a writer at `epoch`: refused
    /// with [`PersistenceError::Fenced`] if the flow detail is owned at a
    /// higher epoch.
    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError>;

    /// Raises the owner epoch of the flow detail `flow` to `epoch`, if
    /// `epoch` is at least the one stored, and returns the epoch now held
    /// (`epoch`). If the stored epoch is higher, nothing changes and the
    /// error is [`PersistenceError::Fenced`] (someone claimed the flow after
    /// the caller did). Atomic: of concurrent fences, the highest wins.
    ///
    /// Once it returns, every write presenting a lower epoch is refused.
    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError>;

    /// Takes ownership of the flow detail `flow` without a jobboard:
    /// raises its stored owner epoch by one and returns the new epoch
    /// (`NotFound` if there is no such flow detail). The read and the raise
    /// are one atomic step: of concurrent takers, each gets a different
    /// epoch, and the last to take holds the highest.
    ///
    /// Once it returns epoch `e`, every write presenting an epoch below `e`
    /// is refused with [`PersistenceError::Fenced`], as after
    /// [`fence_flow_detail`](Backend::fence_flow_detail) at `e`; the taker
    /// writes at `e`. A stored epoch that cannot be raised (it is already
    /// the largest a backend stores) is [`PersistenceError::Encode`].
    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError>;

    /// Removes a flow detail and its atom details.
    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError>;

    /// Saves an atom detail (insert or update) into the flow detail `flow`,
    /// as a writer at `epoch`: refused with [`PersistenceError::Fenced`] if
    /// the flow detail is owned at a higher epoch.
    fn save_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError>;

    /// Changes the state and intention of an atom detail, leaving its data
    /// alone, as a writer at `epoch`: refused with
    /// [`PersistenceError::Fenced`] if the flow detail is owned at a higher
    /// epoch (whether or not the atom exists).
    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError>;

    /// Writes several atom transitions of the flow detail `flow` as a
    /// writer at `epoch`, in order: each [`AtomWrite::State`] as
    /// [`update_atom_state`](Backend::update_atom_state) does and each
    /// [`AtomWrite::Detail`] as [`save_atom_detail`](Backend::save_atom_detail)
    /// does, with the same fencing.
    ///
    /// The engine batches the transitions it takes between two hand-offs
    /// of work to its executor (an atom's `SUCCESS` with its result, and
    /// its successor's `RUNNING`; on a parallel engine, several
    /// completions) and writes them with one call before the work that
    /// depends on them starts. So a backend that can should write them as
    /// one transaction, paying for one commit (and one fsync) for them
    /// all: the SQLite and PostgreSQL backends do, all or nothing (a
    /// fenced or failed write rolls the whole batch back). The default
    /// writes them one by one, stopping at the first error; the writes
    /// before it stay written.
    fn save_atom_writes(
        &self,
        flow: FlowDetailId,
        writes: &[AtomWrite<'_>],
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        for write in writes {
            match *write {
                AtomWrite::State {
                    atom,
                    state,
                    intention,
                } => self.update_atom_state(flow, atom, state, intention, epoch)?,
                AtomWrite::Detail(detail) => self.save_atom_detail(flow, detail, epoch)?,
            }
        }
        Ok(())
    }

    /// Sets the entry `key` of an atom detail's
    /// [`meta`](AtomDetail::meta) to `value` (with `None`, removes it),
    /// leaving the rest of the record alone (state, intention, result,
    /// failures, revert result, history and the other entries), as a
    /// writer at `epoch`: refused with [`PersistenceError::Fenced`] if the
    /// flow detail is owned at a higher epoch (whether or not the atom
    /// exists), `NotFound` naming the flow detail or the atom detail that
    /// does not exist, and [`PersistenceError::TooDeep`] (nothing written)
    /// for a value nested deeper than
    /// [`MAX_RECORD_DEPTH`](crate::MAX_RECORD_DEPTH).
    ///
    /// The engine calls it from the thread running a task, to record the
    /// task's progress while it runs (under
    /// [`AtomDetail::PROGRESS_KEY`]; see [`AtomDetail::progress`]), so that a
    /// second process reading the records sees it, while the engine's own
    /// thread goes on writing the atom's transitions. So it is atomic with
    /// respect to the backend's other writes: what it reads of the record
    /// and writes back is one step (one transaction, or under the lock the
    /// backend's other writes take), and it never undoes a state or
    /// intention that [`update_atom_state`](Backend::update_atom_state)
    /// wrote meanwhile, a result that
    /// [`save_atom_detail`](Backend::save_atom_detail) saved meanwhile, nor
    /// another entry that another call set meanwhile.
    ///
    /// A save of the whole atom detail
    /// ([`save_atom_detail`](Backend::save_atom_detail), or within a flow
    /// detail or a logbook) writes the `meta` it is given, replacing the
    /// entries set here: a writer that saves the whole record keeps the
    /// entries it wants kept in its own copy. The backends that encode
    /// records read and rewrite the atom's stored body (its result
    /// included) on each call: it costs about what a save of the atom
    /// detail does.
    fn update_atom_meta(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        key: &str,
        value: Option<Value>,
        epoch: Epoch,
    ) -> Result<(), PersistenceError>;

    /// Loads one atom detail.
    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError>;

    /// Whether a write can block the calling thread for long (a file, a
    /// database, a server): true unless the backend says otherwise, as the
    /// memory backend does. An engine run from async code (the tokio
    /// executor's `run_async`) keeps the writes of a backend that blocks
    /// off the async runtime's worker threads.
    fn blocks(&self) -> bool {
        true
    }

    /// The database the records are in, when another store in the same
    /// database may write in the same transaction as them: a jobboard in the
    /// same SQLite file or PostgreSQL database posts a job and its records as
    /// one transaction (see
    /// `taskflow_jobboard::post_flow`). `None` (the default): the records
    /// share no transaction with anything.
    fn shared_database(&self) -> Option<SharedDatabase<'_>> {
        None
    }
}

/// One write of a batch given to [`Backend::save_atom_writes`].
#[derive(Debug, Clone, Copy)]
pub enum AtomWrite<'a> {
    /// A state and intention change of the atom detail `atom`, its data
    /// left alone (as [`Backend::update_atom_state`]).
    State {
        /// The atom detail.
        atom: AtomDetailId,
        /// Its new state.
        state: AtomState,
        /// Its new intention.
        intention: Intention,
    },
    /// The whole atom detail, inserted or updated (as
    /// [`Backend::save_atom_detail`]).
    Detail(&'a AtomDetail),
}

/// The database of a [`Backend`] whose transactions another store in the
/// same database may join (see [`Backend::shared_database`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SharedDatabase<'a> {
    /// Records in a SQLite file
    /// ([`SqliteBackend::save_logbook_then`](crate::SqliteBackend::save_logbook_then)).
    Sqlite(&'a crate::SqliteBackend),
    /// Records in a PostgreSQL database
    /// ([`PostgresBackend::save_logbook_in`](crate::PostgresBackend::save_logbook_in)).
    #[cfg(feature = "postgres")]
    Postgres(&'a crate::PostgresBackend),
}

impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn shared_database(&self) -> Option<SharedDatabase<'_>> {
        (**self).shared_database()
    }
    fn save_logbook(&self, book: &LogBook) -> Result<(), PersistenceError> {
        (**self).save_logbook(book)
    }
    fn get_logbook(&self, id: LogBookId) -> Result<LogBook, PersistenceError> {
        (**self).get_logbook(id)
    }
    fn list_logbooks(&self) -> Result<Vec<Result<LogBook, PersistenceError>>, PersistenceError> {
        (**self).list_logbooks()
    }
    fn destroy_logbook(&self, id: LogBookId) -> Result<(), PersistenceError> {
        (**self).destroy_logbook(id)
    }
    fn save_flow_detail(&self, book: LogBookId, flow: &FlowDetail) -> Result<(), PersistenceError> {
        (**self).save_flow_detail(book, flow)
    }
    fn get_flow_detail(&self, id: FlowDetailId) -> Result<FlowDetail, PersistenceError> {
        (**self).get_flow_detail(id)
    }
    fn update_flow_state(
        &self,
        flow: FlowDetailId,
        state: FlowState,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        (**self).update_flow_state(flow, state, epoch)
    }
    fn fence_flow_detail(
        &self,
        flow: FlowDetailId,
        epoch: Epoch,
    ) -> Result<Epoch, PersistenceError> {
        (**self).fence_flow_detail(flow, epoch)
    }
    fn take_flow_detail(&self, flow: FlowDetailId) -> Result<Epoch, PersistenceError> {
        (**self).take_flow_detail(flow)
    }
    fn destroy_flow_detail(&self, id: FlowDetailId) -> Result<(), PersistenceError> {
        (**self).destroy_flow_detail(id)
    }
    fn save_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: &AtomDetail,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        (**self).save_atom_detail(flow, atom, epoch)
    }
    fn update_atom_state(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        state: AtomState,
        intention: Intention,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        (**self).update_atom_state(flow, atom, state, intention, epoch)
    }
    fn update_atom_meta(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
        key: &str,
        value: Option<Value>,
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        (**self).update_atom_meta(flow, atom, key, value, epoch)
    }
    fn save_atom_writes(
        &self,
        flow: FlowDetailId,
        writes: &[AtomWrite<'_>],
        epoch: Epoch,
    ) -> Result<(), PersistenceError> {
        (**self).save_atom_writes(flow, writes, epoch)
    }
    fn get_atom_detail(
        &self,
        flow: FlowDetailId,
        atom: AtomDetailId,
    ) -> Result<AtomDetail, PersistenceError> {
        (**self).get_atom_detail(flow, atom)
    }
    fn blocks(&self) -> bool {
        (**self).blocks()
    }
}
