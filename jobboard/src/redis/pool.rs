//! Connections to Redis: a small pool of synchronous connections that
//! reconnects after the server restarts or a connection breaks.
//!
//! A call takes an idle connection (or opens one), runs, and puts the
//! connection back. On an I/O error the connection is dropped, and so are
//! all idle ones (after a server restart every one of them is dead); the
//! call is then tried again on a fresh connection, a few times with short
//! pauses while the server refuses connections or is still loading its
//! data. Retrying is safe because every write the board makes is
//! idempotent: each script call carries an op token that the script stores
//! with the job, and a script that finds its own token returns what it did
//! the first time instead of doing it again (see `README.md`).

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, ErrorKind, RedisError, RedisResult};

use crate::sync::lock;
use crate::JobBoardError;

/// The board's name in errors.
pub(super) const BOARD: &str = "redis";

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one reply may take (a blocking read sets its own).
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How many idle connections are kept.
const MAX_IDLE: usize = 32;

/// The pauses before the retries of a call whose connection failed (the
/// first retry reconnects at once): a call rides out a server restart of
/// up to about 0.7 s, and fails after that.
const PAUSES_MS: [u64; 4] = [0, 100, 200, 400];

/// The pool.
pub(super) struct Pool {
    client: Client,
    /// A panic while it is locked leaves only a list of connections.
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// A pool for the server at `url` (nothing is opened yet).
    pub(super) fn new(url: &str) -> Result<Self, JobBoardError> {
        let client = Client::open(url).map_err(|e| {
            JobBoardError::backend(BOARD, format!("invalid url `{}`: {e}", redact(url)), e)
        })?;
        Ok(Pool {
            client,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> RedisResult<Connection> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Ok(conn);
        }
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Drops every idle connection.
    pub(super) fn clear(&self) {
        lock(&self.idle).clear();
    }

    /// Runs `f` on a connection, reconnecting and trying again on
    /// connection failures; `what` names the operation in errors.
    pub(super) fn run<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, JobBoardError> {
        let mut retries = PAUSES_MS.iter();
        loop {
            let result = self.take().and_then(|mut conn| {
                let result = f(&mut conn);
                match &result {
                    Err(e) if broken(e) => {}
                    _ => self.give_back(conn),
                }
                result
            });
            match result {
                Ok(value) => return Ok(value),
                Err(e) if retryable(&e) => {
                    let Some(&pause) = retries.next() else {
                        return Err(JobBoardError::backend(BOARD, format!("{what}: {e}"), e));
                    };
                    tracing::debug!(error = %e, "redis board: {what}: retrying");
                    if broken(&e) {
                        self.clear();
                    }
                    // A loading server is up: no point asking again at once.
                    let pause = if broken(&e) { pause } else { pause.max(50) };
                    std::thread::sleep(Duration::from_millis(pause));
                }
                Err(e) => return Err(JobBoardError::backend(BOARD, format!("{what}: {e}"), e)),
            }
        }
    }
}

/// Whether the connection that returned `e` is unusable: an I/O failure
/// (reset, closed, timed out: a late reply could still arrive on it) or a
/// reply it could not parse.
fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.kind() == ErrorKind::ParseError
}

/// Whether a call that failed with `e` is worth trying again: on a new
/// connection, or on a server still loading its data. Errors the server
/// answered with (a failing script, bad credentials) are not.
fn retryable(e: &RedisError) -> bool {
    broken(e)
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError | ErrorKind::TryAgain | ErrorKind::MasterDown
        )
}

/// `url` without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact("redis://u@h"), "redis://u@h");
    }
}
