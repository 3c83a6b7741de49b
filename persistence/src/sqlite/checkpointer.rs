//! Copying the write-ahead log into the database file on a thread of its
//! own, off the engine's checkpoint path.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a *WAL
//! checkpoint* copies them back into the database file and, with
//! `synchronous` `NORMAL` or `FULL`, fsyncs both files. SQLite runs one
//! inside the commit that takes the log past `wal_autocheckpoint` pages
//! (1,000 by default): every few hundred atoms, one atom's checkpoint
//! waited for two fsyncs. That is why W4's cost per atom grew with N
//! (measured: 44 fsyncs in a 10,000-atom run on `Normal`, 36 µs per atom of
//! fsync wait on a loaded disk, none at N = 100). So a file-backed
//! [`SqliteBackend`](super::SqliteBackend) turns the automatic checkpoint off
//! on its own connection and runs a `PASSIVE` checkpoint from a second
//! connection on this thread, woken every [`WAKE_EVERY`] commits and after
//! every multi-record save. `PASSIVE` never waits for the writer: the
//! engine goes on appending while the copy and the fsyncs happen.
//!
//! SQLite has no way to run the automatic checkpoint elsewhere (its WAL
//! hook takes a bare function pointer), hence this small thread.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;

/// Commits between two wakes of the checkpointer: an atom's checkpoint
/// adds one to three pages to the log, so the log stays near SQLite's own
/// threshold of 1,000 pages.
pub(super) const WAKE_EVERY: u32 = 256;

/// The automatic checkpoint's threshold, restored on the writer's
/// connection if the checkpointer stops.
pub(super) const AUTO_CHECKPOINT_PAGES: i64 = 1_000;

/// The background checkpointer of one backend: dropped, it finishes the
/// checkpoint it is running and its thread ends.
pub(super) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    commits: AtomicU32,
    /// Set by the thread when a checkpoint failed for a reason other than
    /// another checkpointer holding the lock; the writer then turns the
    /// automatic checkpoint back on.
    failed: Arc<AtomicBool>,
}

/// What the writer does after a commit (see [`Checkpointer::committed`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AfterCommit {
    /// Nothing.
    Nothing,
    /// The checkpointer stopped: turn the automatic checkpoint back on.
    RestoreAutoCheckpoint,
}

impl Checkpointer {
    /// Starts a checkpointer on `conn`, a second connection to the
    /// backend's file (opened with the same durability, so the checkpoint
    /// fsyncs as the writer's would have). `None` if the thread cannot be
    /// started: the writer then keeps SQLite's automatic checkpoint.
    pub(super) fn start(conn: Connection) -> Option<Checkpointer> {
        let (wake, woken) = sync_channel::<()>(1);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("taskflow-sqlite-checkpoint".to_owned())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    match copied {
                        Ok(()) => {}
                        // Another connection (of this or another process)
                        // is checkpointing: it does the work.
                        Err(e)
                            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                        }
                        Err(_) => {
                            // Nobody to tell but the writer, which then
                            // checkpoints itself, as SQLite does by default.
                            flag.store(true, Ordering::Release);
                            return;
                        }
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
            commits: AtomicU32::new(0),
            failed,
        })
    }

    /// Counts a commit of `pages_hint` pages or so (1 for an atom's
    /// checkpoint; [`WAKE_EVERY`] for a save of many records, which wakes
    /// the thread at once), waking the thread every [`WAKE_EVERY`] commits.
    /// Never blocks: a wake while a checkpoint runs is folded into it.
    pub(super) fn committed(&self, pages_hint: u32) -> AfterCommit {
        let before = self.commits.fetch_add(pages_hint, Ordering::Relaxed);
        if before / WAKE_EVERY == before.wrapping_add(pages_hint) / WAKE_EVERY
            && pages_hint < WAKE_EVERY
        {
            return AfterCommit::Nothing;
        }
        if self.failed.load(Ordering::Acquire) {
            return AfterCommit::RestoreAutoCheckpoint;
        }
        if let Some(wake) = &self.wake {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => return AfterCommit::RestoreAutoCheckpoint,
            }
        }
        AfterCommit::Nothing
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            // A panic on the thread has nothing left to undo.
            let _ = thread.join();
        }
    }
}
