//! How a SQLite file is opened by every store of the workspace that keeps
//! one (the records of [`SqliteBackend`](super::SqliteBackend), the SQLite
//! job board): WAL mode, a busy timeout, `synchronous` per [`Durability`].

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::{db_err, BACKEND};
use crate::PersistenceError;

/// How long a write waits for the other writers of the file.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How hard a [`SqliteBackend`](super::SqliteBackend) works to keep the last checkpoints across a
/// power loss. Both modes survive a crash of the process; they differ only
/// when the machine itself stops (power loss, kernel panic, hard reset).
///
/// | mode | `PRAGMA synchronous` | process crash | power loss / OS crash | cost |
/// | --- | --- | --- | --- | --- |
/// | [`Full`](Durability::Full) | `FULL` | loses nothing | loses nothing | one fsync of the WAL per write |
/// | [`Normal`](Durability::Normal) | `NORMAL` | loses nothing | may lose the latest writes, never corrupts | fsyncs only at WAL checkpoints |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// `synchronous = FULL`: every write (every checkpoint the engine takes)
    /// is fsynced to the write-ahead log before it returns. Once a save
    /// returns, the record survives a process crash, an OS crash and a power
    /// loss (on storage that honours fsync). The default.
    #[default]
    Full,
    /// `synchronous = NORMAL` (in WAL mode): writes reach the operating
    /// system before they return, but the log is fsynced only when SQLite
    /// checkpoints it into the database file. A crash of the process (even
    /// `kill -9`) loses nothing, since the OS still holds the data. A power
    /// loss or OS crash may lose the latest writes: the database then opens
    /// as it was at some earlier write, never corrupt, and a resumed flow
    /// may redo atoms whose last checkpoints were lost (at-least-once, as
    /// for atoms found `RUNNING`). Markedly faster on disks with slow fsync.
    Normal,
}

impl Durability {
    /// The value of `PRAGMA synchronous` for this mode.
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Opens (creating it if needed) the SQLite database at `path` as every
/// SQLite store of TaskFlow does: writes wait up to
/// [`SqliteBackend::BUSY_TIMEOUT`](super::SqliteBackend::BUSY_TIMEOUT) for
/// other writers, the journal is a write-ahead log (readers never block the
/// writer; the file must be on a local file system, since WAL needs shared
/// memory between processes), and `PRAGMA synchronous` is set as
/// `durability` says.
///
/// The schema is left to the caller. Failures are
/// [`PersistenceError::Backend`] (backend `sqlite`) naming the path; a file
/// whose journal cannot be switched to WAL (e.g. a read-only file that is
/// not in WAL mode already) is refused.
///
/// ```
/// use taskflow_persistence::{open_sqlite, Durability};
/// # let dir = std::env::temp_dir().join(format!("tf-open-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let conn = open_sqlite(&dir.join("store.db"), Durability::Normal)?;
/// let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
/// assert_eq!(mode, "wal");
/// # drop(conn);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), taskflow_persistence::PersistenceError>(())
/// ```
pub fn open_sqlite(path: &Path, durability: Durability) -> Result<Connection, PersistenceError> {
    let location = path.display();
    let conn = Connection::open(path).map_err(|e| db_err(e, format_args!("opening {location}")))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db_err(e, "setting busy_timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| db_err(e, format_args!("switching {location} to WAL mode")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(PersistenceError::Backend {
            backend: BACKEND,
            message: format!("{location}: cannot use WAL mode (journal_mode is {mode})"),
            source: None,
        });
    }
    conn.pragma_update(None, "synchronous", durability.pragma())
        .map_err(|e| db_err(e, "setting synchronous"))?;
    Ok(conn)
}
