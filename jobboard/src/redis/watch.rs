//! The events stream, read: the entries `XREAD` returns, and the watcher
//! thread that hands them to a board's listeners (see `README.md`, *Board
//! events*).

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Value;
use uuid::Uuid;

use super::codec::{corrupt, items, text};
use super::pool::{Pool, BOARD, IO_TIMEOUT};
use super::BLOCK_SLICE;
use crate::events::Notifier;
use crate::{BoardEvent, JobBoardError, JobId};

/// How many entries the watcher reads at once.
const BATCH: usize = 500;

/// How long the watcher pauses after a failed read before the next.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// One entry of the events stream: its id, and the change it records
/// (`None` for an entry this build does not know).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The stream id (`<ms>-<seq>`).
    pub(super) id: String,
    /// The event.
    pub(super) event: Option<BoardEvent>,
}

impl Entry {
    /// Whether the entry may have made a job claimable (what wakes `wait`).
    pub(super) fn wakes(&self) -> bool {
        self.event
            .as_ref()
            .map_or(true, BoardEvent::may_be_claimable)
    }
}

/// The entries of an `XREAD` reply on one stream (none for a timeout).
pub(super) fn entries(reply: Value, what: &str) -> Result<Vec<Entry>, JobBoardError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        other => items(other, what)?
            .into_iter()
            .map(|stream| {
                let mut pair = items(stream, what)?;
                if pair.len() != 2 {
                    return Err(corrupt(what, "a stream of XREAD is not {name, entries}"));
                }
                Ok(pair.remove(1))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut out = Vec::new();
    for stream in streams {
        for entry in items(stream, what)? {
            let mut entry = items(entry, what)?;
            if entry.len() != 2 {
                return Err(corrupt(what, "an entry of XREAD is not {id, fields}"));
            }
            let fields = entry.remove(1);
            let id = text(&entry[0]).ok_or_else(|| corrupt(what, "an entry id is not text"))?;
            let fields = items(fields, what)?;
            let event = match (fields.first().and_then(text), fields.get(1).and_then(text)) {
                (Some(kind), Some(job)) => Uuid::parse_str(&job)
                    .ok()
                    .and_then(|u| BoardEvent::from_kind(&kind, JobId::from(u))),
                _ => None,
            };
            out.push(Entry { id, event });
        }
    }
    Ok(out)
}

/// `a < b` for two stream ids (`<ms>-<seq>`).
fn before(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    parse(a) < parse(b)
}

/// The id of the newest entry of `stream` (`0-0` when empty), or of the
/// oldest with `oldest`.
fn end_id(pool: &Pool, stream: &str, oldest: bool) -> Result<String, JobBoardError> {
    let reply: Value = pool.run("reading the events stream", |c| {
        if oldest {
            redis::cmd("XRANGE")
                .arg(stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query(c)
        } else {
            redis::cmd("XREVRANGE")
                .arg(stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query(c)
        }
    })?;
    let found = items(reply, stream)?;
    match found.into_iter().next() {
        Some(entry) => {
            let entry = items(entry, stream)?;
            entry
                .first()
                .and_then(text)
                .ok_or_else(|| corrupt(stream, "an entry id is not text"))
        }
        None => Ok("0-0".to_owned()),
    }
}

/// Starts the watcher of the board whose events stream is `stream`: it
/// reads the entries appended from now on and hands them to `events`
/// until the board is dropped or closed.
pub(super) fn start(
    pool: Arc<Pool>,
    stream: String,
    events: Weak<Notifier>,
) -> Result<(), JobBoardError> {
    let last = end_id(&pool, &stream, false)?;
    std::thread::Builder::new()
        .name("redis-board-watch".into())
        .spawn(move || run(&pool, &stream, &events, last))
        .map_err(|e| JobBoardError::backend(BOARD, "starting the board's watcher", e))?;
    Ok(())
}

fn read(pool: &Pool, stream: &str, last: &str) -> Result<Vec<Entry>, JobBoardError> {
    let reply = pool.run("watching the events stream", |c| {
        c.set_read_timeout(Some(BLOCK_SLICE + IO_TIMEOUT))?;
        let result = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK_SLICE.as_millis()).unwrap_or(1000))
            .arg("COUNT")
            .arg(BATCH)
            .arg("STREAMS")
            .arg(stream)
            .arg(last)
            .query::<Value>(c);
        c.set_read_timeout(Some(IO_TIMEOUT))?;
        result
    })?;
    entries(reply, stream)
}

fn run(pool: &Pool, stream: &str, events: &Weak<Notifier>, mut last: String) {
    let mut failing = false;
    loop {
        if pool.is_closed() {
            return;
        }
        let result = read(pool, stream, &last);
        let Some(notifier) = events.upgrade() else {
            return;
        };
        if notifier.is_closed() {
            return;
        }
        match result {
            Ok(entries) => {
                if failing {
                    failing = false;
                    notifier.emit(BoardEvent::Reconnected);
                    // Entries trimmed away while cut off are lost.
                    if let Ok(oldest) = end_id(pool, stream, true) {
                        let gap = entries.first().is_some_and(|e| before(&oldest, &e.id))
                            && before(&last, &oldest);
                        if gap {
                            notifier.emit(BoardEvent::Missed { count: 1 });
                        }
                    }
                }
                for entry in entries {
                    if let Some(event) = entry.event {
                        notifier.emit(event);
                    }
                    last = entry.id;
                }
            }
            Err(JobBoardError::Closed { .. }) => return,
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::warn!(error = %e, "redis board: watching the events stream failed");
                    notifier.emit(BoardEvent::Disconnected {
                        reason: e.to_string(),
                    });
                }
                drop(notifier);
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}
