//! The board's connections: an [`r2d2`] pool whose connections each keep
//! their prepared statements and have the board's schema as `search_path`.
//!
//! As in the persistence crate's PostgreSQL backend: r2d2 opens
//! connections as calls need them and checks them without a round trip; a
//! call that failed because its connection broke (the server restarted, or
//! an administrator terminated the session) is run again once, on a new
//! connection, and every connection opened before the broken one is
//! dropped when next taken (a generation count). The retry is told it is
//! one ([`Attempt::Retry`]): a write that may have committed on its first
//! try (the reply was lost) looks for the token it wrote before writing
//! again (see the board's documentation).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Row, Statement};

use super::BOARD;
use crate::JobBoardError;

/// How many connections may be open at once.
const MAX_SIZE: u32 = 16;

/// Whether a call runs for the first time, or again after its connection
/// broke (its first try may have committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// The first try.
    First,
    /// The second, on a new connection.
    Retry,
}

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    generation: u64,
}

impl Conn {
    /// Opens a transaction on the connection (its statements run
    /// unprepared: the cache is the connection's).
    pub(super) fn transaction(&mut self) -> Result<postgres::Transaction<'_>, postgres::Error> {
        self.client.transaction()
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, JobBoardError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .prepare(sql)
            .map_err(|e| pg_err(e, "preparing a statement"))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs the statement `sql` (prepared once) and returns its rows.
    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        what: &dyn std::fmt::Display,
    ) -> Result<Vec<Row>, JobBoardError> {
        let statement = self.statement(sql)?;
        self.client
            .query(&statement, params)
            .map_err(|e| pg_err(e, what))
    }

    /// Runs the statement `sql` (prepared once) and returns how many rows
    /// it changed.
    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        what: &dyn std::fmt::Display,
    ) -> Result<u64, JobBoardError> {
        let statement = self.statement(sql)?;
        self.client
            .execute(&statement, params)
            .map_err(|e| pg_err(e, what))
    }
}

/// A backend error for a failed PostgreSQL call.
pub(super) fn pg_err(e: postgres::Error, what: impl std::fmt::Display) -> JobBoardError {
    JobBoardError::backend(BOARD, what.to_string(), e)
}

/// What opening a connection takes.
struct Shared {
    config: Config,
    /// `SET search_path ...` for each new connection.
    setup: String,
    /// Raised past a connection found broken: older ones are stale.
    generation: AtomicU64,
}

impl Shared {
    fn open(&self) -> Result<Conn, postgres::Error> {
        let generation = self.generation.load(Ordering::Relaxed);
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&self.setup)?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
            generation,
        })
    }

    fn is_stale(&self, conn: &Conn) -> bool {
        conn.client.is_closed() || conn.generation < self.generation.load(Ordering::Relaxed)
    }
}

/// Why r2d2 could not open or keep a connection.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("connecting: {0}")]
    Failed(#[source] postgres::Error),
    #[error("dropped a connection closed or older than one found broken")]
    Stale,
}

struct Manager(Arc<Shared>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnectError;

    fn connect(&self) -> Result<Conn, ConnectError> {
        self.0.open().map_err(ConnectError::Failed)
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnectError> {
        if self.0.is_stale(conn) {
            return Err(ConnectError::Stale);
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.is_stale(conn)
    }
}

/// Connections to one database, set to one schema.
pub(super) struct Pool {
    pool: r2d2::Pool<Manager>,
    shared: Arc<Shared>,
}

impl Pool {
    /// A pool (opening nothing yet) of connections to `config` that each
    /// run `setup` first.
    pub(super) fn new(config: Config, setup: String, timeout: Duration) -> Self {
        let shared = Arc::new(Shared {
            config,
            setup,
            generation: AtomicU64::new(0),
        });
        let pool = r2d2::Pool::builder()
            .max_size(MAX_SIZE)
            .min_idle(Some(0))
            .test_on_check_out(true)
            .connection_timeout(timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager(shared.clone()));
        Pool { pool, shared }
    }

    /// A new connection, opened in the caller's thread and not pooled.
    pub(super) fn connect(&self) -> Result<Client, postgres::Error> {
        self.shared.open().map(|conn| conn.client)
    }

    /// Runs `f` on a connection, once more on a new one if the first broke.
    pub(super) fn run<T>(
        &self,
        mut f: impl FnMut(&mut Conn, Attempt) -> Result<T, JobBoardError>,
    ) -> Result<T, JobBoardError> {
        let mut conn = self.take()?;
        let result = f(&mut conn, Attempt::First);
        if !self.broke(&conn, &result) {
            return result;
        }
        drop(conn);
        let mut conn = self.take()?;
        let result = f(&mut conn, Attempt::Retry);
        self.broke(&conn, &result);
        result
    }

    fn take(&self) -> Result<r2d2::PooledConnection<Manager>, JobBoardError> {
        self.pool
            .get()
            .map_err(|e| JobBoardError::backend(BOARD, "taking a pooled connection", e))
    }

    fn broke<T>(&self, conn: &Conn, result: &Result<T, JobBoardError>) -> bool {
        let broken = match result {
            Err(e) => conn.client.is_closed() || is_connection_error(e),
            Ok(_) => false,
        };
        if broken {
            self.shared
                .generation
                .fetch_max(conn.generation + 1, Ordering::Relaxed);
        }
        broken
    }
}

/// Whether `e` says the connection (not the statement) failed.
pub(super) fn is_connection_error(e: &JobBoardError) -> bool {
    let JobBoardError::Backend {
        board: BOARD,
        source: Some(source),
        ..
    } = e
    else {
        return false;
    };
    let Some(e) = source.downcast_ref::<postgres::Error>() else {
        return false;
    };
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}
