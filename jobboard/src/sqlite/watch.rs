//! The watcher thread of a [`SqliteBoard`](super::SqliteBoard): one per
//! board, started by the first [`subscribe`](crate::JobBoard::subscribe)
//! or [`wait`](crate::JobBoard::wait).
//!
//! Every [`WATCH_INTERVAL`] it asks its own connection to the file for
//! `PRAGMA data_version`, which changes when any other connection (this
//! board's, another board's, another process's) commits. Only then does
//! it read the rows of `jobboard_events` after the last one it saw (the
//! schema's triggers write one per change, in commit order), hand them to
//! the board's listeners, and wake the board's waiters. An idle board
//! costs one pragma per interval and no query. A board in memory has no
//! second connection: its watcher reads the board's own connection, when
//! the board counted a write of its own.
//!
//! When a look fails (the file went away, an I/O error), the watcher tells
//! the listeners [`Disconnected`](crate::BoardEvent::Disconnected) once,
//! [`connected`](crate::JobBoard::connected) turns `false`, and it keeps
//! looking; the first look that works again says
//! [`Reconnected`](crate::BoardEvent::Reconnected) and delivers what was
//! committed meanwhile.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use taskflow_persistence::Durability;
use uuid::Uuid;

use super::{db_err, Shared, BOARD};
use crate::sync::lock;
use crate::{BoardEvent, JobBoardError, JobId};

/// How often the watcher looks at the file: a change by another process
/// is seen (by listeners and by `wait`) at most this late.
pub(super) const WATCH_INTERVAL: Duration = Duration::from_millis(5);

/// How many event rows one look reads at most (the next look reads on).
const BATCH: i64 = 1000;

/// Where the watcher reads.
enum Source {
    /// Its own connection to the file.
    Own(Connection),
    /// The board's connection (a board in memory).
    Board(Arc<Mutex<Connection>>),
}

/// Starts the watcher of the board whose file is `file` (`None`: in
/// memory, read through `conn`).
pub(super) fn start(
    file: Option<(PathBuf, Durability)>,
    conn: Arc<Mutex<Connection>>,
    shared: Arc<Shared>,
) -> Result<(), JobBoardError> {
    let source = match file {
        Some((path, durability)) => Source::Own(
            taskflow_persistence::open_sqlite(&path, durability)
                .map_err(|e| JobBoardError::from_persistence(BOARD, e))?,
        ),
        None => Source::Board(conn),
    };
    let last = with_conn(&source, last_seq)?;
    std::thread::Builder::new()
        .name("sqlite-board-watch".into())
        .spawn(move || run(&source, &shared, last))
        .map_err(|e| JobBoardError::backend(BOARD, "starting the board's watcher", e))?;
    Ok(())
}

fn with_conn<T>(
    source: &Source,
    f: impl FnOnce(&Connection) -> Result<T, JobBoardError>,
) -> Result<T, JobBoardError> {
    match source {
        Source::Own(conn) => f(conn),
        Source::Board(conn) => f(&lock(conn)),
    }
}

fn last_seq(conn: &Connection) -> Result<i64, JobBoardError> {
    conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM jobboard_events",
        [],
        |row| row.get(0),
    )
    .map_err(|e| db_err(e, "reading the last event"))
}

/// What tells the watcher the file may have changed: `data_version` of
/// its own connection, or the board's count of its own writes.
fn version(source: &Source, shared: &Shared) -> Result<i64, JobBoardError> {
    match source {
        Source::Own(conn) => conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| db_err(e, "reading data_version")),
        Source::Board(_) => Ok(i64::from_ne_bytes(lock(&shared.local_writes).to_ne_bytes())),
    }
}

fn run(source: &Source, shared: &Shared, mut last: i64) {
    let mut seen: Option<i64> = None;
    while !shared.closed.load(Ordering::Acquire) {
        match look(source, shared, &mut seen, &mut last) {
            Ok(()) => {
                if shared.failing.swap(false, Ordering::AcqRel) {
                    shared.events.emit(BoardEvent::Reconnected);
                    shared.wrote();
                }
            }
            Err(e) => {
                seen = None;
                if !shared.failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "sqlite board: watching the file failed");
                    shared.events.emit(BoardEvent::Disconnected {
                        reason: e.to_string(),
                    });
                }
            }
        }
        std::thread::sleep(WATCH_INTERVAL);
    }
}

/// One look: new event rows, if the file changed since `seen`.
fn look(
    source: &Source,
    shared: &Shared,
    seen: &mut Option<i64>,
    last: &mut i64,
) -> Result<(), JobBoardError> {
    let now = version(source, shared)?;
    if *seen == Some(now) {
        return Ok(());
    }
    loop {
        let rows = with_conn(source, |conn| rows_after(conn, *last))?;
        let n = rows.len();
        if let Some((first, _, _)) = rows.first() {
            if *last > 0 && *first > *last + 1 {
                let count = u64::try_from(*first - *last - 1).unwrap_or_default();
                shared.events.emit(BoardEvent::Missed { count });
            }
        }
        for (seq, job, kind) in rows {
            *last = seq;
            let event = Uuid::parse_str(&job)
                .ok()
                .and_then(|id| BoardEvent::from_kind(&kind, JobId::from(id)));
            match event {
                Some(event) => shared.events.emit(event),
                None => tracing::warn!(seq, job, kind, "sqlite board: an event row is corrupt"),
            }
        }
        if n > 0 {
            shared.wrote();
        }
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            break;
        }
    }
    *seen = Some(now);
    Ok(())
}

fn rows_after(conn: &Connection, last: i64) -> Result<Vec<(i64, String, String)>, JobBoardError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, job, kind FROM jobboard_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(|e| db_err(e, "preparing the event read"))?;
    let rows = stmt
        .query_map([last, BATCH], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(|e| db_err(e, "reading events"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| db_err(e, "reading events"))
}
