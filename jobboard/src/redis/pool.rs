//! Connections to Redis: an [`r2d2`] pool of synchronous connections that
//! reconnects after the server restarts or a connection breaks.
//!
//! r2d2 owns the idle set and opens connections (on its own threads, as
//! calls need them; none is opened ahead). It checks each connection taken
//! ([`is_valid`](r2d2::ManageConnection::is_valid)) and given back
//! ([`has_broken`](r2d2::ManageConnection::has_broken)) without a round
//! trip, and closes those idle for 10 minutes or open for 30. At most
//! [`MAX_SIZE`] are open at once (a blocking `wait` holds one); a caller
//! beyond waits for one, and a call while the server refuses connections
//! waits for r2d2 to reconnect, both up to [`CHECKOUT_TIMEOUT`], then fails.
//! (The `redis` crate's own `r2d2` manager is not used: it checks each
//! connection taken with a `PING`, a second round trip on every call, sets
//! no timeouts, and cannot drop every idle connection after a restart.)
//!
//! Above the pool: on an I/O error the connection is dropped, and so is
//! every one opened before it (after a server restart every one of them is
//! dead: a generation count, checked when a connection is taken or given
//! back); the call is then tried again, a few times with short pauses while
//! the server is still loading its data. Retrying is safe because every
//! write the board makes is idempotent: each script call carries an op
//! token that the script stores with the job, and a script that finds its
//! own token returns what it did the first time instead of doing it again
//! (see `README.md`).
//!
//! Measured against the hand-written `Mutex<Vec>` pool this replaced, back
//! to back on a 2-core machine with the server on loopback: r2d2's checkout
//! and give-back cost 0.2-0.4 µs more per call in a loop without I/O;
//! through the board, throughput new/old was 0.97-1.05 for `get` and
//! `renew` (50,000 calls on 1 and 4 threads, medians of 10 alternating
//! runs, calls of 18-50 µs) and 0.93-1.00 for claim + consume (the
//! `throughput` test of `tests/redis.rs`, 12 runs): within the noise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError, RedisResult};

use crate::JobBoardError;

/// The board's name in errors.
pub(super) const BOARD: &str = "redis";

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one reply may take (a blocking read sets its own).
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections may be open at once.
const MAX_SIZE: u32 = 64;

/// How long a call waits for a connection: r2d2 tries to reconnect every
/// 0.4-0.5 s meanwhile, so a call rides out a server restart of up to
/// about 1 s, and fails after that.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// The pauses before the retries of a call whose connection failed (the
/// first retry takes a connection at once; a loading server is asked again
/// after 50 ms at least).
const PAUSES_MS: [u64; 4] = [0, 100, 200, 400];

/// One connection, and the pool's generation when it was opened.
struct Conn {
    conn: Connection,
    generation: u64,
}

/// Opens and checks connections for r2d2.
struct Manager {
    client: Client,
    /// Shared with the pool: raised past a connection found broken.
    generation: Arc<AtomicU64>,
}

impl Manager {
    fn is_stale(&self, conn: &Conn) -> bool {
        !conn.conn.is_open() || conn.generation < self.generation.load(Ordering::Relaxed)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<Conn> {
        // Read first: a connection opened as a restart is noticed is
        // dropped rather than kept.
        let generation = self.generation.load(Ordering::Relaxed);
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn { conn, generation })
    }

    fn is_valid(&self, conn: &mut Conn) -> RedisResult<()> {
        if self.is_stale(conn) {
            return Err(RedisError::from((
                ErrorKind::ClientError,
                "dropped a connection closed or older than one found broken",
            )));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.is_stale(conn)
    }
}

/// The pool.
pub(super) struct Pool {
    pool: r2d2::Pool<Manager>,
    generation: Arc<AtomicU64>,
    /// Set by `close`: every call then fails with `Closed`.
    closed: AtomicBool,
    /// Whether the last call reached the server (or, failing, failed for
    /// a reason other than the connection).
    reachable: AtomicBool,
}

impl Pool {
    /// A pool for the server at `url` (nothing is opened yet).
    pub(super) fn new(url: &str) -> Result<Self, JobBoardError> {
        let client = Client::open(url).map_err(|e| {
            JobBoardError::backend(BOARD, format!("invalid url `{}`: {e}", redact(url)), e)
        })?;
        let generation = Arc::new(AtomicU64::new(0));
        let manager = Manager {
            client,
            generation: generation.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(MAX_SIZE)
            .min_idle(Some(0))
            // `is_valid` makes no round trip.
            .test_on_check_out(true)
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(Pool {
            pool,
            generation,
            closed: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
        })
    }

    /// Drops every idle connection, and every busy one when given back.
    pub(super) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        // Taking idle connections drops the stale ones met (`is_valid`);
        // any newer are given back.
        let newer: Vec<_> = std::iter::from_fn(|| self.pool.try_get()).collect();
        drop(newer);
    }

    /// Makes every later call fail with `Closed`, and drops the idle
    /// connections.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.clear();
    }

    /// Whether the pool was closed.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the last call reached the server (and the pool is open).
    pub(super) fn is_connected(&self) -> bool {
        !self.is_closed() && self.reachable.load(Ordering::Acquire)
    }

    /// Runs `f` on a connection, reconnecting and trying again on
    /// connection failures; `what` names the operation in errors.
    /// `Closed` once the pool is closed.
    pub(super) fn run<T>(
        &self,
        what: &str,
        f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, JobBoardError> {
        if self.is_closed() {
            return Err(JobBoardError::Closed { board: BOARD });
        }
        let result = self.run_open(what, f);
        match &result {
            Ok(_) => self.reachable.store(true, Ordering::Release),
            Err(JobBoardError::Backend { source, .. }) => {
                let lost = source.as_ref().map_or(true, |s| {
                    s.downcast_ref::<RedisError>().map_or(true, broken)
                });
                if lost {
                    self.reachable.store(false, Ordering::Release);
                }
            }
            Err(_) => {}
        }
        result
    }

    fn run_open<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, JobBoardError> {
        let mut retries = PAUSES_MS.iter();
        loop {
            // Not retried: r2d2 has been reconnecting while it waited.
            let mut conn = self
                .pool
                .get()
                .map_err(|e| JobBoardError::backend(BOARD, format!("{what}: {e}"), e))?;
            let e = match f(&mut conn.conn) {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if broken(&e) {
                // This connection and every older one are stale.
                self.generation
                    .fetch_max(conn.generation + 1, Ordering::Relaxed);
            }
            drop(conn);
            let pause = match retries.next() {
                Some(&pause) if retryable(&e) => pause,
                _ => return Err(JobBoardError::backend(BOARD, format!("{what}: {e}"), e)),
            };
            tracing::debug!(error = %e, "redis board: {what}: retrying");
            // A loading server is up: no point asking again at once.
            let pause = if broken(&e) { pause } else { pause.max(50) };
            std::thread::sleep(Duration::from_millis(pause));
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
